/**
 * The microbenchmark program: round marks match the instructions, every phase has its rounds,
 * lazy-TLB CPUs leave the cpumask, bad specs are refused.
 */

import { describe, expect, it } from 'vitest';
import { MAX_PAGES, shootdownProgram } from '../../src/bench/shootdown-program.ts';

describe('shootdownProgram', () => {
  it('marks each round: unmaps and flushes, then the free, then the remap and the counter', () => {
    const { scenario, marks } = shootdownProgram({
      cpus: 3,
      pages: [1, 4],
      rounds: [2, 3],
      lazyTlb: false,
      touch: 2,
    });
    expect(marks.map((m) => [m.phase, m.round])).toEqual([
      [0, 0],
      [0, 1],
      [1, 0],
      [1, 1],
      [1, 2],
    ]);
    const p0 = scenario.cpus[0]!.program;
    for (const m of marks) {
      const pages = m.phase === 0 ? 1 : 4;
      expect(p0[m.start]!.op).toBe('unmap');
      expect(m.opEnd - m.start).toBe(2 * pages + 1);
      expect(p0[m.opEnd - 1]!.op).toBe('free_frame');
      expect(p0[m.end - 1]!.op).toBe('store');
    }
    expect(marks.at(-1)!.end).toBe(p0.length - 1);
    expect(p0.at(-1)).toMatchObject({ op: 'barrier' });
    expect(scenario.cpus[1]!.program.map((i) => i.op)).toEqual([
      'load',
      'load',
      'barrier',
      'barrier',
    ]);
  });

  it('lazyTlb: idle CPUs switch to K before idling and back after', () => {
    const { scenario } = shootdownProgram({
      cpus: 2,
      pages: [1],
      rounds: [1],
      lazyTlb: true,
      touch: 1,
    });
    expect(scenario.addressSpaces.map((a) => a.name)).toEqual(['A', 'K']);
    expect(scenario.cpus[1]!.program.map((i) => i.op)).toEqual([
      'load',
      'mov_cr3',
      'barrier',
      'barrier',
      'mov_cr3',
    ]);
  });

  it('refuses page counts out of range and mismatched rounds', () => {
    const spec = { cpus: 2, pages: [1], rounds: [1], lazyTlb: false, touch: 1 };
    expect(() => shootdownProgram({ ...spec, pages: [0] })).toThrow('page counts');
    expect(() => shootdownProgram({ ...spec, pages: [MAX_PAGES + 1] })).toThrow('page counts');
    expect(() => shootdownProgram({ ...spec, rounds: [1, 2] })).toThrow('one round count');
  });
});
