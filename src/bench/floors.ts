/**
 * The raw Atomics floors measured in the same run as the wall-clock figures (BASELINES: the
 * machine drifts up to 2x between runs): the round trip between two worker threads when both
 * sleep in `Atomics.wait` and wake each other with `Atomics.notify`, and when both spin on
 * `Atomics.load`. A simulated IPI round on the worker host is one of these plus the simulator's
 * own work, so they bound from below what `smpsim bench shootdown` can show on the wall clock.
 * The threads are a piscina pool of two running `workers/bench-worker.ts`.
 */

import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { type Summary, summarize } from './summary.ts';

/** How a floor's two threads wait for each other. */
export type FloorMode = 'wait' | 'spin';

/** One side of a round-trip run (the task `workers/bench-worker.ts` runs). */
export interface FloorTask {
  readonly side: 'ping' | 'pong';
  readonly mode: FloorMode;
  readonly trips: number;
  /** Int32 words: [0] ping sequence, [1] pong sequence, [2] start line. */
  readonly buffer: SharedArrayBuffer;
}

/** One measured floor. */
export interface Floor {
  readonly name: string;
  readonly mode: FloorMode;
  /** µs per round trip, over every timed trip. */
  readonly roundTrip: Summary;
  /** Round trips per timed run, and timed runs (after one warm-up run). */
  readonly trips: number;
  readonly runs: number;
}

const WORKER_FILE = fileURLToPath(new URL('../../workers/bench-worker.ts', import.meta.url));
const TSX_LOADER = import.meta.resolve('tsx');

/** Measures both floors: one warm-up run, then `runs` timed runs of each. */
export async function measureFloors(
  options: { runs?: number; waitTrips?: number; spinTrips?: number } = {},
): Promise<Floor[]> {
  const runs = options.runs ?? 3;
  const pool = new Piscina({
    filename: WORKER_FILE,
    minThreads: 2,
    maxThreads: 2,
    concurrentTasksPerWorker: 1,
    idleTimeout: Number.POSITIVE_INFINITY,
    // Node 20 reaches a .ts task module only through tsx's hooks (see smp/hosts/worker.ts).
    execArgv: WORKER_FILE.endsWith('.ts') ? ['--import', TSX_LOADER] : [],
  });
  try {
    const floor = async (mode: FloorMode, trips: number, name: string): Promise<Floor> => {
      const samples: number[] = [];
      for (let i = 0; i <= runs; i++) {
        const buffer = new SharedArrayBuffer(16);
        const [rtt] = await Promise.all([
          pool.run({
            side: 'ping',
            mode,
            trips,
            buffer,
          } satisfies FloorTask) as Promise<Float64Array>,
          pool.run({
            side: 'pong',
            mode,
            trips,
            buffer,
          } satisfies FloorTask) as Promise<Float64Array>,
        ]);
        if (i > 0) for (const x of rtt) samples.push(x);
      }
      return { name, mode, roundTrip: summarize(samples), trips, runs };
    };
    return [
      await floor('wait', options.waitTrips ?? 2000, 'Atomics.wait/notify round trip'),
      await floor('spin', options.spinTrips ?? 20_000, 'spin on Atomics.load round trip'),
    ];
  } finally {
    await pool.destroy();
  }
}
