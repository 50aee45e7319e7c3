/**
 * Tests of the exhaustive walk (src/explore/dfs.ts): every leaf once, in the tree's order; a walk
 * cut into budgeted chunks and their leftover subtrees visits the same leaves and finds the same
 * first witnesses as one walk; bad prefixes are refused.
 */

import { describe, expect, it } from 'vitest';
import { comparePaths, type DfsChunk, exploreSubtree } from '../../src/explore/dfs.ts';
import { TrialRunner } from '../../src/explore/trial.ts';
import { RACY_UNMAP, wide } from './scenarios.ts';

/** Walks the whole subtree in chunks of `budget` leaves, following every chunk's `rest`. */
function chunked(runner: TrialRunner, budget: number, leaves: string[]): DfsChunk[] {
  const out: DfsChunk[] = [];
  const queue: (readonly number[])[] = [[]];
  while (queue.length > 0) {
    const c = exploreSubtree(runner, queue.pop()!, budget, (t) => leaves.push(t.choices.join(',')));
    out.push(c);
    queue.push(...c.rest);
  }
  return out;
}

describe('exploreSubtree', () => {
  it('visits every leaf once, in lexicographic order of paths', () => {
    // wide(2): CPU 0 has 4 steps, CPU 1 has 3, no local steps: C(7,3) = 35 leaves.
    const paths: (readonly number[])[] = [];
    const schedules = new Set<string>();
    const c = exploreSubtree(new TrialRunner(wide(2), 'none'), [], 1000, (t) => {
      paths.push(t.choices);
      schedules.add(t.schedule.join(','));
    });
    expect(c.schedules).toBe(35);
    expect(schedules.size).toBe(35);
    expect(c.rest).toEqual([]);
    expect(c.first).toEqual(paths[0]);
    for (let i = 1; i < paths.length; i++) {
      expect(comparePaths(paths[i - 1]!, paths[i]!)).toBeLessThan(0);
    }
    // Every schedule has CPU 0's 4 steps and CPU 1's 3.
    for (const s of schedules) {
      const picks = s.split(',');
      expect(picks.filter((x) => x === '0').length).toBe(4);
      expect(picks.filter((x) => x === '1').length).toBe(3);
    }
  });

  it('the first witness is the first leaf in the walk that shows the kind', () => {
    const c = exploreSubtree(new TrialRunner(RACY_UNMAP, 'none'), [], 1000);
    expect(Object.keys(c.witness)).toEqual(['dropped-flush']);
    // The first leaf runs CPU 0 first, and its unmap wins.
    expect(c.witness['dropped-flush']).toMatch(/^0/);
    const cpu1First = exploreSubtree(new TrialRunner(RACY_UNMAP, 'none'), [1], 1000);
    expect(cpu1First.witness).toEqual({});
  });

  for (const budget of [1, 2, 7, 34]) {
    it(`chunks of ${budget} leaves and their leftovers cover the tree exactly once`, () => {
      const runner = new TrialRunner(wide(2), 'none');
      const whole: string[] = [];
      const one = exploreSubtree(runner, [], 1000, (t) => whole.push(t.choices.join(',')));
      const parts: string[] = [];
      const chunks = chunked(runner, budget, parts);
      expect(chunks.reduce((n, c) => n + c.schedules, 0)).toBe(one.schedules);
      expect([...parts].sort()).toEqual([...whole].sort());
      // In the tree's order, the chunks' first witnesses are the whole walk's.
      chunks.sort((a, b) => comparePaths(a.first, b.first));
      expect(chunks[0]!.first).toEqual(one.first);
      const witness: Record<string, string> = {};
      for (const c of chunks) for (const [k, w] of Object.entries(c.witness)) witness[k] ??= w;
      expect(witness).toEqual(one.witness);
    });
  }

  it('a chunk that ran out of budget says what is left, in the tree order', () => {
    const c = exploreSubtree(new TrialRunner(wide(2), 'none'), [], 3);
    expect(c.schedules).toBe(3);
    expect(c.rest.length).toBeGreaterThan(0);
    for (let i = 1; i < c.rest.length; i++) {
      expect(comparePaths(c.rest[i - 1]!, c.rest[i]!)).toBeLessThan(0);
    }
  });

  it('refuses a path the tree does not have', () => {
    const runner = new TrialRunner(RACY_UNMAP, 'none');
    expect(() => exploreSubtree(runner, [2], 10)).toThrow(/alternative 2 of 2/);
    expect(() => exploreSubtree(runner, [0, 0, 0, 0, 0, 0, 0, 0], 10)).toThrow(
      /deeper than the run/,
    );
  });
});

describe('comparePaths', () => {
  it('orders lexicographically, a prefix first', () => {
    expect(comparePaths([0, 1], [0, 2])).toBeLessThan(0);
    expect(comparePaths([1], [0, 5])).toBeGreaterThan(0);
    expect(comparePaths([0], [0, 0])).toBeLessThan(0);
    expect(comparePaths([3, 1], [3, 1])).toBe(0);
  });
});
