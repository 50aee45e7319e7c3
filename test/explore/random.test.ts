/**
 * Tests of random trials (src/explore/random.ts): seeded and deterministic, independent of how
 * the trial range is split, and different seeds sample different schedules.
 */

import { describe, expect, it } from 'vitest';
import { randomTrials, trialSeed } from '../../src/explore/random.ts';
import { TrialRunner } from '../../src/explore/trial.ts';
import { formatSchedule } from '../../src/smp/hosts/deterministic.ts';
import { RACY_UNMAP, wide } from './scenarios.ts';

function schedulesOf(seed: number, from: number, to: number): string[] {
  const out: string[] = [];
  randomTrials(new TrialRunner(wide(4), 'none'), seed, from, to, (t) =>
    out.push(t.schedule.join(',')),
  );
  return out;
}

describe('randomTrials', () => {
  it('the same seed gives the same schedules and result, run after run', () => {
    expect(schedulesOf(7, 0, 30)).toEqual(schedulesOf(7, 0, 30));
    const runner = new TrialRunner(RACY_UNMAP, 'none');
    expect(randomTrials(runner, 3, 0, 20)).toEqual(randomTrials(runner, 3, 0, 20));
  });

  it('splitting the range changes nothing: trial t depends only on (seed, t)', () => {
    const whole = schedulesOf(11, 0, 40);
    expect([...schedulesOf(11, 0, 13), ...schedulesOf(11, 13, 40)]).toEqual(whole);
  });

  it('different seeds sample different schedules, and trials differ from each other', () => {
    const a = schedulesOf(1, 0, 30);
    const b = schedulesOf(2, 0, 30);
    expect(a).not.toEqual(b);
    expect(new Set(a).size).toBeGreaterThan(20); // 462 leaves: few repeats in 30
  });

  it("a witness is the lowest trial of the range showing the kind, with that trial's schedule", () => {
    const runner = new TrialRunner(RACY_UNMAP, 'none');
    const kinds: string[][] = [];
    const schedules: string[] = [];
    const c = randomTrials(runner, 5, 0, 20, (t) => {
      kinds.push([...t.kinds]);
      schedules.push(t.schedule.join(','));
    });
    const first = kinds.findIndex((k) => k.includes('dropped-flush'));
    expect(first).toBeGreaterThanOrEqual(0);
    expect(c.witnessTrial['dropped-flush']).toBe(first);
    expect(c.witness['dropped-flush']).toBe(
      formatSchedule(schedules[first]!.split(',').map(Number)),
    );
    expect(c.schedules).toBe(20);
    expect(c.from).toBe(0);
    // Both outcomes of the race were sampled.
    expect(kinds.some((k) => k.length === 0)).toBe(true);
  });

  it('trialSeed is a 32-bit value that differs between neighbouring trials and seeds', () => {
    const seeds = new Set<number>();
    for (let s = 0; s < 10; s++) for (let t = 0; t < 10; t++) seeds.add(trialSeed(s, t));
    expect(seeds.size).toBe(100);
    for (const x of seeds) expect(x >>> 0).toBe(x);
  });
});
