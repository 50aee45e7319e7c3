/**
 * `smpsim bench shootdown` without its terminal and files: the calibration check, the sweep on
 * the modeled clock, the raw Atomics floors and the sweep on the worker-thread host, in that
 * order (the floors right before the wall-clock figures they are compared with).
 */

import { performance } from 'node:perf_hooks';
import type { CostModel } from '../cpu/cost-model.ts';
import { type Calibration, calibrate } from './calibration.ts';
import { type Floor, measureFloors } from './floors.ts';
import { machineLine } from './machine-line.ts';
import { fillRemote, type ModeledPoint, modeledRow, type WallPoint, wallRow } from './sweep.ts';
import type { Variant } from './variant.ts';

/** The sweep's settings. */
export interface ShootdownBenchOptions {
  readonly cpus: readonly number[];
  readonly pages: readonly number[];
  readonly variants: readonly Variant[];
  readonly costs: CostModel;
  /** Run the sweep on the modeled clock (deterministic host). */
  readonly modeled: boolean;
  /** Run the sweep on the worker-thread host (wall clock), up to `wallMaxCpus` CPUs. */
  readonly wall: boolean;
  readonly wallMaxCpus: number;
  /** Modeled clock: warm-up and timed rounds per phase. */
  readonly warmup: number;
  readonly repeats: number;
  /** Wall clock: target time of a phase's timed rounds (ms), and rounds at least. */
  readonly phaseMs: number;
  readonly minRounds: number;
  /** Wall clock: the warm-up phase each worker run starts with (ms). */
  readonly warmupMs: number;
  /** Timed runs of each floor. */
  readonly floorRuns: number;
  /** Called after each unit of work (`units()` of them), with what was just done. */
  readonly onProgress?: (done: string) => void;
  readonly signal?: AbortSignal;
}

/** One worker-host run (one variant, one CPU count, every page count). */
export interface WallRun {
  readonly variant: string;
  readonly cpus: number;
  readonly startupMs: number;
  readonly wallMs: number;
}

/** Everything one `smpsim bench shootdown` measured. */
export interface ShootdownBenchResult {
  readonly format: 'smpsim-bench-shootdown/1';
  readonly machine: string;
  readonly costs: CostModel;
  readonly calibration: Calibration;
  readonly settings: {
    readonly cpus: readonly number[];
    readonly pages: readonly number[];
    readonly variants: readonly string[];
    readonly warmup: number;
    readonly repeats: number;
    readonly wallCpus: readonly number[];
    readonly phaseMs: number;
    readonly minRounds: number;
  };
  /** Modeled cycles (deterministic host on the modeled clock). */
  readonly modeled?: {
    readonly clock: string;
    readonly unit: 'cycles';
    readonly points: ModeledPoint[];
  };
  /** Wall clock (worker-thread host), with the floors measured just before. */
  readonly wall?: {
    readonly clock: string;
    readonly unit: 'µs';
    readonly floors: Floor[];
    readonly points: WallPoint[];
    readonly runs: WallRun[];
  };
  readonly seconds: number;
}

/** The CPU counts actually run: the list's, plus 1 (the baseline of every remote part). */
export function sweepCpus(cpus: readonly number[]): number[] {
  return [...new Set([1, ...cpus])].sort((a, b) => a - b);
}

/** The worker host's CPU counts. */
export function wallCpus(o: Pick<ShootdownBenchOptions, 'cpus' | 'wallMaxCpus'>): number[] {
  return sweepCpus(o.cpus).filter((n) => n <= o.wallMaxCpus);
}

/** How many units of work `runShootdownBench` reports through `onProgress`. */
export function benchUnits(o: ShootdownBenchOptions): number {
  const modeled = o.modeled ? o.variants.length * sweepCpus(o.cpus).length : 0;
  const wall = o.wall ? 1 + o.variants.filter((v) => v.onWorkers).length * wallCpus(o).length : 0;
  return 1 + modeled + wall;
}

/** Runs the whole benchmark. */
export async function runShootdownBench(o: ShootdownBenchOptions): Promise<ShootdownBenchResult> {
  const t0 = performance.now();
  const tick = o.onProgress ?? (() => {});
  const calibration = calibrate(o.costs);
  tick('calibration');
  const cpus = sweepCpus(o.cpus);
  let modeled: ShootdownBenchResult['modeled'];
  if (o.modeled) {
    const points: ModeledPoint[] = [];
    for (const v of o.variants) {
      for (const n of cpus) {
        points.push(
          ...modeledRow(v, n, o.pages, { costs: o.costs, warmup: o.warmup, repeats: o.repeats }),
        );
        tick(`modeled ${v.name}, ${n} CPUs`);
        // Let a Ctrl-C (or the progress bar's redraw) through between rows.
        await new Promise((r) => setImmediate(r));
        if (o.signal?.aborted) throw new Error('bench: interrupted');
      }
    }
    fillRemote(points, (p) => p.op.median);
    modeled = {
      clock: 'modeled cycles (deterministic host, modeled clock)',
      unit: 'cycles',
      points,
    };
  }
  let wall: ShootdownBenchResult['wall'];
  if (o.wall) {
    const floors = await measureFloors({ runs: o.floorRuns });
    tick('floors');
    const points: WallPoint[] = [];
    const runs: WallRun[] = [];
    for (const v of o.variants.filter((x) => x.onWorkers)) {
      for (const n of wallCpus(o)) {
        const row = await wallRow(v, n, o.pages, {
          costs: o.costs,
          phaseMs: o.phaseMs,
          minRounds: o.minRounds,
          warmupMs: o.warmupMs,
          warmup: 2,
          ...(o.signal === undefined ? {} : { signal: o.signal }),
        });
        points.push(...row.points);
        runs.push({ variant: v.name, cpus: n, startupMs: row.startupMs, wallMs: row.wallMs });
        tick(`workers ${v.name}, ${n} CPUs`);
      }
    }
    fillRemote(points, (p) => p.round.median);
    wall = { clock: 'wall clock (worker-thread host)', unit: 'µs', floors, points, runs };
  }
  return {
    format: 'smpsim-bench-shootdown/1',
    machine: machineLine(),
    costs: o.costs,
    calibration,
    settings: {
      cpus,
      pages: [...o.pages],
      variants: o.variants.map((v) => v.name),
      warmup: o.warmup,
      repeats: o.repeats,
      wallCpus: o.wall ? wallCpus(o) : [],
      phaseMs: o.phaseMs,
      minRounds: o.minRounds,
    },
    ...(modeled === undefined ? {} : { modeled }),
    ...(wall === undefined ? {} : { wall }),
    seconds: (performance.now() - t0) / 1000,
  };
}
