/**
 * The calibration check of the cost model: the modeled `sync-ipi` 1-page shootdown (an `unmap`
 * and its `flush`, up to the free that may follow them) on 1 CPU and on 2, run on the modeled
 * clock, against Amit 2019's 661 ns and 1,436 ns (cost-model.ts `CALIBRATION`).
 */

import { CALIBRATION, type CostModel, cyclesToNs } from '../cpu/cost-model.ts';
import { modeledRow } from './sweep.ts';
import { parseVariant } from './variant.ts';

/** The modeled operation with no remote CPU and with one, and their ratio. */
export interface Calibration {
  /** Cycles and ns of the operation on 1 CPU. */
  readonly localCycles: number;
  readonly localNs: number;
  /** Cycles and ns with one remote CPU of the same address space. */
  readonly remoteCycles: number;
  readonly remoteNs: number;
  readonly ratio: number;
  /** The published figures and ratio. */
  readonly target: typeof CALIBRATION;
  /** |ratio / target - 1| <= tolerance. */
  readonly within: boolean;
}

/** Runs the calibration operation under `costs`. */
export function calibrate(costs: CostModel): Calibration {
  const variant = parseVariant('sync-ipi');
  const op = (cpus: number) =>
    modeledRow(variant, cpus, [1], { costs, warmup: 1, repeats: 1, touch: 1 })[0]!.op.median;
  const localCycles = op(1);
  const remoteCycles = op(2);
  const ratio = remoteCycles / localCycles;
  return {
    localCycles,
    localNs: cyclesToNs(costs, localCycles),
    remoteCycles,
    remoteNs: cyclesToNs(costs, remoteCycles),
    ratio,
    target: CALIBRATION,
    within: Math.abs(ratio / CALIBRATION.ratio - 1) <= CALIBRATION.tolerance,
  };
}

/** One line for the terminal. */
export function describeCalibration(c: Calibration): string {
  return `calibration (modeled clock): sync-ipi 1-page unmap+flush ${c.localCycles} cycles (${c.localNs.toFixed(0)} ns) alone, ${c.remoteCycles} cycles (${c.remoteNs.toFixed(0)} ns) with 1 remote CPU: ratio ${c.ratio.toFixed(3)}; ${c.target.source}: ${c.target.localNs} / ${c.target.remoteNs} ns, ratio ${c.target.ratio.toFixed(3)} -> ${c.within ? `within ${c.target.tolerance * 100}%` : `NOT within ${c.target.tolerance * 100}%`}`;
}
