/**
 * The sweep engine of `smpsim bench shootdown`: for each protocol variant and CPU count, one
 * machine runs the microbenchmark of `shootdown-program.ts` (every page count as a phase of
 * rounds), on the modeled clock (`modeled-clock.ts`: modeled cycles, deterministic) and on the
 * worker-thread host (`smp/hosts/worker.ts`: wall clock). Each phase starts with warm-up rounds;
 * the rest are the repeats that the medians, p99s, minima and maxima are taken over.
 *
 * - Modeled clock: CPU 0's clock at each instruction gives every round's *operation* (its
 *   unmaps, their flushes and the free: the span Amit's `madvise` measures) and the whole round
 *   (with the remap). The IPIs of an operation are CPU 0's `IpiSend` records within it.
 * - Wall clock: the real `WorkerHost`, fresh threads per run (start-up untimed). CPU 0 stores a
 *   round counter to RAM; the main thread samples it about every millisecond, and each sample
 *   interval in which rounds completed gives one sample of the mean round time in it. Per-round
 *   times are not observable without changing the host, so p99 is over these windows.
 *
 * The remote part of a point is its median minus the same variant's median on 1 CPU (the same
 * program with nobody to shoot down), so the sweep always runs 1 CPU.
 */

import { performance } from 'node:perf_hooks';
import type { CostModel } from '../cpu/cost-model.ts';
import { WorkerHost } from '../smp/hosts/worker.ts';
import { Machine } from '../smp/machine.ts';
import { TraceKind } from '../trace/record.ts';
import { runModeledClock } from './modeled-clock.ts';
import { COUNTER_FRAME, counterValue, shootdownProgram } from './shootdown-program.ts';
import { type Summary, summarize } from './summary.ts';
import type { Variant } from './variant.ts';

/** One point on the modeled clock (cycles). */
export interface ModeledPoint {
  readonly variant: string;
  readonly cpus: number;
  readonly pages: number;
  /** The operation: unmap `pages` pages, flush each, free (cycles, one sample per round). */
  readonly op: Summary;
  /** The whole round: the operation, then the remap (cycles). */
  readonly round: Summary;
  /** `op.median` minus the 1-CPU `op.median` of the same variant (cycles). */
  remote: number;
  /** Interrupting IPIs CPU 0 sent per operation (median over rounds). */
  readonly ipis: number;
  /** Lazy requests (no interrupt) and INVLPGB broadcasts per operation. */
  readonly lazyRequests: number;
  readonly broadcasts: number;
}

/** One point on the wall clock (microseconds). */
export interface WallPoint {
  readonly variant: string;
  readonly cpus: number;
  readonly pages: number;
  /** Mean round time per sample window (µs). */
  readonly round: Summary;
  /** Timed rounds (after warm-up). */
  readonly rounds: number;
  /** `round.median` minus the 1-CPU `round.median` of the same variant (µs). */
  remote: number;
}

/** Settings of a modeled-clock row. */
export interface ModeledRowOptions {
  readonly costs: CostModel;
  readonly warmup: number;
  readonly repeats: number;
  /** Pages each idle CPU loads first (default 64, one TLB's worth). */
  readonly touch?: number;
}

/** Runs one variant on `cpus` CPUs for every page count, on the modeled clock. */
export function modeledRow(
  variant: Variant,
  cpus: number,
  pages: readonly number[],
  o: ModeledRowOptions,
): ModeledPoint[] {
  const rounds = pages.map(() => o.warmup + o.repeats);
  const prog = shootdownProgram({
    cpus,
    pages,
    rounds,
    lazyTlb: variant.lazyTlbSkip,
    touch: o.touch ?? 64,
  });
  const machine = Machine.fromScenario(prog.scenario, {
    protocol: variant.protocol,
    costs: o.costs,
  });
  const run = runModeledClock(machine, {
    watch: [0],
    concurrentFlush: variant.concurrent,
    earlyAck: variant.earlyAck,
  });
  if (run.deadlock !== undefined || run.truncated || run.lost > 0) {
    throw new Error(
      `bench: ${variant.name} on ${cpus} CPUs did not finish cleanly (${run.deadlock?.waits.join('; ') ?? (run.truncated ? 'step limit' : `${run.lost} trace records lost`)})`,
    );
  }
  const failed = machine.cpus.find((c) => c.status !== 'halted');
  if (failed !== undefined) {
    throw new Error(`bench: cpu ${failed.id} ${failed.status}: ${failed.failure ?? ''}`);
  }
  // CPU 0's sends, by the instruction they belong to.
  const sends = new Map<number, { ipis: number; lazy: number; broadcast: number }>();
  let pc = -1;
  for (const r of run.records) {
    if (r.cpu !== 0) continue;
    if (r.kind === TraceKind.Instruction) pc = r.a;
    else if (r.kind === TraceKind.IpiSend) {
      const s = sends.get(pc) ?? { ipis: 0, lazy: 0, broadcast: 0 };
      if ((r.d & 1) !== 0) s.lazy++;
      else if ((r.d & 2) !== 0) s.broadcast++;
      else s.ipis++;
      sends.set(pc, s);
    }
  }
  const arrivals = run.arrivals.get(0)!;
  return pages.map((p, phase) => {
    const marks = prog.marks.filter((m) => m.phase === phase && m.round >= o.warmup);
    const count = (key: 'ipis' | 'lazy' | 'broadcast') =>
      summarize(
        marks.map((m) => {
          let c = 0;
          for (let i = m.start; i < m.opEnd; i++) c += sends.get(i)?.[key] ?? 0;
          return c;
        }),
      ).median;
    return {
      variant: variant.name,
      cpus,
      pages: p,
      op: summarize(marks.map((m) => arrivals[m.opEnd]! - arrivals[m.start]!)),
      round: summarize(marks.map((m) => arrivals[m.end]! - arrivals[m.start]!)),
      remote: 0,
      ipis: count('ipis'),
      lazyRequests: count('lazy'),
      broadcasts: count('broadcast'),
    };
  });
}

/** Settings of a wall-clock row. */
export interface WallRowOptions {
  readonly costs: CostModel;
  /** Target wall time of each phase's timed rounds (ms): the round counts follow from it. */
  readonly phaseMs: number;
  /** Timed rounds per phase at least (the repeats). */
  readonly minRounds: number;
  /**
   * Wall time (ms) of the warm-up phase of 1-page rounds every run starts with (fresh threads
   * run cold for the first 150-200 ms: bench/shootdown-latency.ts), untimed.
   */
  readonly warmupMs: number;
  /** Warm-up rounds at the start of every phase (more for short rounds: a tenth of the timed). */
  readonly warmup: number;
  readonly touch?: number;
  readonly signal?: AbortSignal;
}

/** What one wall-clock row cost, besides its points. */
export interface WallRow {
  readonly points: WallPoint[];
  /** Thread start-up (ms, untimed). */
  readonly startupMs: number;
  /** The run itself (ms), warm-up phase included. */
  readonly wallMs: number;
}

/**
 * A rough guess of a round's wall time (µs) on this kind of machine, to size the phases: a step
 * costs about a microsecond, and each IPI round wakes the idle targets (tens of µs, BASELINES).
 */
function guessRoundUs(variant: Variant, cpus: number, pages: number): number {
  const targets = variant.lazyTlbSkip ? 0 : cpus - 1;
  const rounds =
    variant.protocol === 'sync-ipi' || variant.protocol === 'broadcast'
      ? pages
      : variant.protocol === 'batched'
        ? 1
        : 0;
  return 4 * pages * 1.5 + rounds * targets * 15;
}

/** The most rounds a lazy phase may run: each holds a freed frame until the CPUs' next epoch. */
const LAZY_ROUNDS = 1500;
const MAX_ROUNDS = 5000;

/** Runs one variant on `cpus` worker threads for every page count (wall clock). */
export async function wallRow(
  variant: Variant,
  cpus: number,
  pages: readonly number[],
  o: WallRowOptions,
): Promise<WallRow> {
  const cap = variant.protocol === 'lazy' ? LAZY_ROUNDS : MAX_ROUNDS;
  const roundsFor = (p: number, ms: number) =>
    Math.max(o.minRounds, Math.min(cap, Math.round((ms * 1000) / guessRoundUs(variant, cpus, p))));
  // Phase 0 is the run's warm-up; the measured phases follow.
  const phases = [1, ...pages];
  const timed = [0, ...pages.map((p) => roundsFor(p, o.phaseMs))];
  const warm = [
    roundsFor(1, o.warmupMs),
    ...timed.slice(1).map((t) => Math.max(o.warmup, Math.ceil(t / 10))),
  ];
  const prog = shootdownProgram({
    cpus,
    pages: phases,
    rounds: timed.map((t, i) => t + warm[i]!),
    lazyTlb: variant.lazyTlbSkip,
    touch: o.touch ?? 64,
    ramBytes: (variant.protocol === 'lazy' ? 64 : 16) * 1024 * 1024,
  });
  const machine = Machine.fromScenario(prog.scenario, {
    protocol: variant.protocol,
    costs: o.costs,
    trace: false,
  });
  const ram = new Int32Array(machine.setup.memory.buffer);
  const counter = COUNTER_FRAME / 4;
  // Idle CPUs may wait the whole run (lazy, lazy-tlb-skip): no deadlock timeout in sight.
  const host = new WorkerHost(machine, {
    trace: false,
    timeoutMs: 600_000,
    ...(o.signal === undefined ? {} : { signal: o.signal }),
  });
  const samples: [number, number][] = [];
  const timer = setInterval(() => {
    // Pairs with CPU 0's store of the counter (an aligned 4-byte store, atomic).
    samples.push([performance.now(), Atomics.load(ram, counter)]);
  }, 1);
  let run: Awaited<ReturnType<WorkerHost['start']>>;
  try {
    run = await host.start();
  } finally {
    clearInterval(timer);
  }
  samples.push([performance.now(), Atomics.load(ram, counter)]);
  if (run.stopped) throw new Error('bench: stopped');
  if (run.deadlock !== undefined) {
    throw new Error(`bench: ${variant.name} on ${cpus} workers: ${run.deadlock.waits.join('; ')}`);
  }
  const bad = run.cpus.find((c) => c.state.status !== 'halted');
  if (bad !== undefined) {
    throw new Error(`bench: worker cpu ${bad.cpu} ${bad.state.status}: ${bad.state.failure ?? ''}`);
  }
  const points = pages.map((p, i) => {
    const phase = i + 1;
    const lo = counterValue(phase, warm[phase]! - 1);
    const hi = counterValue(phase, warm[phase]! + timed[phase]! - 1);
    const windows: number[] = [];
    let anchor: [number, number] | undefined;
    for (const [t, v] of samples) {
      if (v < lo || v > hi) {
        anchor = undefined;
        continue;
      }
      if (anchor === undefined) anchor = [t, v];
      else if (v > anchor[1]) {
        windows.push(((t - anchor[0]) * 1000) / (v - anchor[1]));
        anchor = [t, v];
      }
    }
    if (windows.length === 0) {
      // The phase ran within one sample interval: its mean over the samples that bracket it
      // (an overestimate by up to a sample interval, and one sample only).
      const before = samples.findLast(([, v]) => v < lo && v > 0) ?? samples[0]!;
      const after = samples.find(([, v]) => v >= hi) ?? samples.at(-1)!;
      windows.push(((after[0] - before[0]) * 1000) / Math.max(1, hi - Math.max(before[1], lo)));
    }
    return {
      variant: variant.name,
      cpus,
      pages: p,
      round: summarize(windows),
      rounds: timed[phase]!,
      remote: 0,
    };
  });
  return { points, startupMs: run.startupMs, wallMs: run.wallMs };
}

/** Fills `remote` of every point from the 1-CPU point of its variant and page count. */
export function fillRemote<T extends ModeledPoint | WallPoint>(
  points: T[],
  value: (p: T) => number,
): void {
  for (const p of points) {
    const base = points.find((q) => q.variant === p.variant && q.pages === p.pages && q.cpus === 1);
    p.remote = base === undefined ? Number.NaN : value(p) - value(base);
  }
}
