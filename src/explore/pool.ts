/**
 * `ExplorePool`: worker threads for exploration tasks (piscina, as the worker host uses it). Each
 * thread loads workers/explore-worker.ts through tsx, which costs about 0.3 s per thread, so the
 * explorer starts a pool only for trees that outgrow its in-process budget.
 */

import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { ExploreTask, ExploreTaskResult } from './task.ts';

/** The worker module piscina loads in every exploration thread. */
const WORKER_FILE = fileURLToPath(new URL('../../workers/explore-worker.ts', import.meta.url));

/**
 * Node 20 cannot import a `.ts` worker entry by itself; piscina's own entry is JavaScript and
 * reaches ours with a dynamic `import()`, which the tsx hooks named in `--import` do see
 * (nodejs/node#47747; the same arrangement as src/smp/hosts/worker.ts).
 */
const TSX_LOADER = import.meta.resolve('tsx');

/** A fixed set of exploration threads. */
export class ExplorePool {
  private readonly pool: Piscina;

  constructor(readonly threads: number) {
    this.pool = new Piscina({
      filename: WORKER_FILE,
      minThreads: threads,
      maxThreads: threads,
      // One task at a time per thread: a task is synchronous CPU work.
      concurrentTasksPerWorker: 1,
      idleTimeout: Number.POSITIVE_INFINITY,
      execArgv: WORKER_FILE.endsWith('.ts') ? ['--import', TSX_LOADER] : [],
    });
  }

  /** Runs one task on a free thread. */
  run(task: ExploreTask): Promise<ExploreTaskResult> {
    return this.pool.run(task) as Promise<ExploreTaskResult>;
  }

  /** Stops every thread. */
  async close(): Promise<void> {
    await this.pool.destroy();
  }
}
