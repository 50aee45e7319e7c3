/**
 * Random exploration, for schedule trees too large to walk: trial `t` of seed `s` takes a uniform
 * choice at every scheduling point from its own PRNG, seeded from `(s, t)` alone. Any range of
 * trials can thus run on any thread and the results are the same as in one loop.
 */

import { formatSchedule } from '../smp/hosts/deterministic.ts';
import { Rng } from '../smp/rng.ts';
import type { Witnesses } from './dfs.ts';
import type { Trial, TrialRunner } from './trial.ts';

/** The result of trials `[from, from + schedules)`. */
export interface RandomChunk {
  readonly from: number;
  readonly schedules: number;
  /** For each hazard kind, the first trial of the range showing it and its schedule. */
  readonly witness: Witnesses;
  /** The trial index of each witness (merging keeps the lowest). */
  readonly witnessTrial: Partial<Record<keyof Witnesses, number>>;
}

/** The PRNG seed of trial `trial` of an exploration seeded with `seed` (both 32-bit). */
export function trialSeed(seed: number, trial: number): number {
  // One mulberry32 output over a golden-ratio spread of the pair: neighbouring trials get
  // unrelated streams.
  return new Rng((seed ^ Math.imul(trial + 1, 0x9e37_79b9)) >>> 0).nextU32();
}

/** Runs trials `[from, to)` of `seed`; `onTrial` is told about each (progress). */
export function randomTrials(
  runner: TrialRunner,
  seed: number,
  from: number,
  to: number,
  onTrial?: (trial: Trial) => void,
): RandomChunk {
  const witness: Witnesses = {};
  const witnessTrial: Partial<Record<keyof Witnesses, number>> = {};
  for (let t = from; t < to; t++) {
    const rng = new Rng(trialSeed(seed, t));
    const trial = runner.run((options) => rng.below(options));
    for (const k of trial.kinds) {
      if (witness[k] === undefined) {
        witness[k] = formatSchedule(trial.schedule);
        witnessTrial[k] = t;
      }
    }
    onTrial?.(trial);
  }
  return { from, schedules: to - from, witness, witnessTrial };
}
