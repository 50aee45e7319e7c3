/**
 * Tests of `Explorer` (src/explore/explore.ts): exhaustive up to `maxSchedules`, random beyond;
 * every witness reproduces its hazard when replayed as `smpsim run` replays a schedule; the same
 * result byte for byte whatever the number of threads and however the tree is cut; and every
 * built-in scenario's `expect` block against what exploration finds.
 */

import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkRun } from '../../src/check/checker.ts';
import type { HazardKind } from '../../src/check/hazard.ts';
import { BUILTIN_DIR } from '../../src/cli/run.ts';
import { Explorer, exploreScenario } from '../../src/explore/explore.ts';
import { loadScenario } from '../../src/scenarios/load.ts';
import { PROTOCOLS, type Scenario } from '../../src/scenarios/scenario.ts';
import { parseSchedule, runDeterministic } from '../../src/smp/hosts/deterministic.ts';
import { Machine } from '../../src/smp/machine.ts';
import { exploreExpect } from './helpers.ts';
import { CROSSED_BARRIERS, RACY_UNMAP, wide } from './scenarios.ts';

/** What `smpsim run FILE --protocol P --schedule S` checks: the hazard kinds of that run. */
function replayKinds(s: Scenario, protocol: string, schedule: string): HazardKind[] {
  const m = Machine.fromScenario(s, { protocol });
  return checkRun(m, runDeterministic(m, { schedule: parseSchedule(schedule) })).map((h) => h.kind);
}

describe('Explorer: exhaustive or random', () => {
  it('walks every schedule when the tree has at most maxSchedules leaves', async () => {
    // wide(2): C(7,3) = 35 leaves.
    for (const max of [35, 1000]) {
      const r = await exploreScenario(wide(2), { maxSchedules: max });
      expect(r).toEqual({
        scenario: 'wide-2',
        protocol: 'none',
        schedules: 35,
        exhaustive: true,
        reachable: ['dropped-flush'],
        witness: { 'dropped-flush': expect.any(String) },
      });
    }
  });

  it('runs maxSchedules random schedules when the tree has more', async () => {
    const r = await exploreScenario(wide(2), { maxSchedules: 34, seed: 9 });
    expect(r.exhaustive).toBe(false);
    expect(r.schedules).toBe(34);
    expect(r.reachable).toEqual(['dropped-flush']);
    // Seeded: the same seed gives the same result, another seed may pick another witness.
    expect(await exploreScenario(wide(2), { maxSchedules: 34, seed: 9 })).toEqual(r);
  });

  it("uses the scenario's protocol unless told otherwise", async () => {
    expect((await exploreScenario(RACY_UNMAP)).protocol).toBe('sync-ipi');
    expect((await exploreScenario(RACY_UNMAP, { protocol: 'lazy' })).protocol).toBe('lazy');
  });

  it('the reduction cuts the tree without changing what is reachable', async () => {
    const s = RACY_UNMAP;
    const reduced = await exploreScenario(s, { protocol: 'none' });
    const full = await exploreScenario(s, { protocol: 'none', reduce: false });
    expect(reduced.reachable).toEqual(full.reachable);
    expect(reduced.schedules).toBeLessThanOrEqual(full.schedules);
  });

  it('refuses options that are not positive integers', () => {
    expect(() => new Explorer({ jobs: 0 })).toThrow(/jobs 0/);
    expect(() => new Explorer({ taskBudget: 1.5 })).toThrow(/taskBudget 1.5/);
    return expect(new Explorer().explore(RACY_UNMAP, { maxSchedules: 0 })).rejects.toThrow(
      /maxSchedules 0/,
    );
  });
});

describe('Explorer: witnesses', () => {
  it('each witness, replayed, reports its hazard; the losing order does not', async () => {
    for (const protocol of PROTOCOLS) {
      const r = await exploreScenario(RACY_UNMAP, { protocol });
      expect(r.reachable).toEqual(['dropped-flush']);
      expect(replayKinds(RACY_UNMAP, protocol, r.witness['dropped-flush']!)).toContain(
        'dropped-flush',
      );
      // CPU 1 first (then whatever the seed picks): CPU 0's unmap fails, nothing is dropped.
      expect(replayKinds(RACY_UNMAP, protocol, '1')).toEqual([]);
    }
  });

  it('a deadlock is reachable in every schedule of crossed barriers, and its witness deadlocks', async () => {
    const r = await exploreScenario(CROSSED_BARRIERS, { protocol: 'none' });
    expect(r.reachable).toEqual(['deadlock']);
    expect(replayKinds(CROSSED_BARRIERS, 'none', r.witness.deadlock!)).toEqual(['deadlock']);
  });

  it('random witnesses reproduce too', async () => {
    const r = await exploreScenario(RACY_UNMAP, { maxSchedules: 1, seed: 1 });
    // One random trial: the race goes either way, but whatever it found it can replay.
    for (const k of r.reachable)
      expect(replayKinds(RACY_UNMAP, 'sync-ipi', r.witness[k]!)).toContain(k);
    let found = false;
    for (let seed = 1; seed < 20 && !found; seed++) {
      const t = await exploreScenario(RACY_UNMAP, { maxSchedules: 1, seed });
      found = t.reachable.includes('dropped-flush');
      if (found) {
        expect(replayKinds(RACY_UNMAP, 'sync-ipi', t.witness['dropped-flush']!)).toContain(
          'dropped-flush',
        );
      }
    }
    expect(found).toBe(true);
  });
});

describe('Explorer: threads change nothing', () => {
  // wide(4): C(11,5) = 462 leaves, cut into many small subtrees for two threads.
  const cut = { inProcessBudget: 20, taskBudget: 17 };

  it('an exhaustive walk on 2 threads gives the same result as on 1, byte for byte', async () => {
    const one = await exploreScenario(wide(4), { jobs: 1 });
    const two = await exploreScenario(wide(4), { jobs: 2, ...cut });
    expect(one.schedules).toBe(462);
    expect(JSON.stringify(two)).toBe(JSON.stringify(one));
  });

  it('random trials on 2 threads give the same result as on 1', async () => {
    const opts = { maxSchedules: 300, seed: 4 };
    const one = await exploreScenario(wide(4), { ...opts, jobs: 1 });
    const two = await exploreScenario(wide(4), { ...opts, jobs: 2, ...cut });
    expect(one.exhaustive).toBe(false);
    expect(JSON.stringify(two)).toBe(JSON.stringify(one));
  });

  it('a tree found too large on the threads falls back to the same random trials', async () => {
    const opts = { maxSchedules: 200, seed: 2 };
    const one = await exploreScenario(wide(4), { ...opts, jobs: 1 });
    const explorer = new Explorer({ jobs: 2, ...cut });
    try {
      const progress: string[] = [];
      const two = await explorer.explore(wide(4), {
        ...opts,
        onProgress: (p) => progress.push(p.mode),
      });
      expect(JSON.stringify(two)).toBe(JSON.stringify(one));
      expect(progress).toContain('exhaustive');
      expect(progress.at(-1)).toBe('random');
      // The same explorer (and its threads) explores again, with the same result.
      expect(JSON.stringify(await explorer.explore(wide(4), opts))).toBe(JSON.stringify(one));
    } finally {
      await explorer.close();
    }
  });
});

const BUILTINS = readdirSync(BUILTIN_DIR)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => loadScenario(readFileSync(`${BUILTIN_DIR}${f}`, 'utf8'), f));

describe('built-in scenarios: explore against the expect block', () => {
  it('there are built-in scenarios with expect blocks', () => {
    expect(BUILTINS.some((s) => s.expect !== undefined)).toBe(true);
  });

  for (const s of BUILTINS) {
    for (const protocol of PROTOCOLS.filter((p) => s.expect?.[p] !== undefined)) {
      it(`${s.name} under ${protocol}`, async () => {
        const { result, check } = await exploreExpect(s, protocol);
        expect(check.extra).toEqual([]);
        expect(check.missing).toEqual([]);
        for (const k of result.reachable) {
          expect(replayKinds(s, protocol, result.witness[k]!)).toContain(k);
        }
      });
    }
  }
});
