/**
 * Tests of `TrialRunner` (src/explore/trial.ts): a trial is an ordinary deterministic-host run
 * (its schedule replays it record for record), its kinds are the checker's, and its path says
 * which alternative was taken at each scheduling point.
 */

import { describe, expect, it } from 'vitest';
import { checkRun } from '../../src/check/checker.ts';
import { TrialRunner } from '../../src/explore/trial.ts';
import { PROTOCOLS } from '../../src/scenarios/scenario.ts';
import { runDeterministic } from '../../src/smp/hosts/deterministic.ts';
import { Machine } from '../../src/smp/machine.ts';
import type { TraceRecord } from '../../src/trace/ring.ts';
import { CROSSED_BARRIERS, RACY_UNMAP, wide } from './scenarios.ts';

describe('TrialRunner', () => {
  it("a trial's schedule replays it exactly, and its kinds are the checker's", () => {
    for (const protocol of PROTOCOLS) {
      for (const s of [RACY_UNMAP, wide(2)]) {
        let records: readonly TraceRecord[] = [];
        const runner = new TrialRunner(s, protocol, {
          observe: (_m, run) => {
            records = run.records;
          },
        });
        for (const pick of [0, 1]) {
          const trial = runner.run((n) => Math.min(pick, n - 1));
          const m = Machine.fromScenario(s, { protocol });
          const replay = runDeterministic(m, { schedule: trial.schedule });
          expect(JSON.stringify(replay.records)).toBe(JSON.stringify(records));
          expect(trial.kinds).toEqual([...new Set(checkRun(m, replay).map((h) => h.kind))]);
        }
      }
    }
  });

  it('the first runner to go wins the racy unmap: CPU 0 first drops its flush, CPU 1 first does not', () => {
    const runner = new TrialRunner(RACY_UNMAP, 'sync-ipi');
    const zeroFirst = runner.run(() => 0);
    expect(zeroFirst.schedule[0]).toBe(0);
    expect(zeroFirst.kinds).toEqual(['dropped-flush']);
    const oneFirst = runner.run(() => 1);
    expect(oneFirst.schedule[0]).toBe(1);
    expect(oneFirst.kinds).toEqual([]);
  });

  it('records the choice and the number of alternatives at every scheduling point', () => {
    const asked: number[] = [];
    const trial = new TrialRunner(wide(2), 'none').run((n) => {
      asked.push(n);
      return n - 1;
    });
    expect(trial.options).toEqual(asked);
    expect(trial.choices).toEqual(asked.map((n) => n - 1));
    expect(trial.options.every((n) => n === 2)).toBe(true);
  });

  it('a deadlocked trial reports deadlock', () => {
    expect(new TrialRunner(CROSSED_BARRIERS, 'none').run(() => 0).kinds).toEqual(['deadlock']);
  });
});
