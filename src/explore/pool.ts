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
  /** Rejects when a thread fails outside any task (e.g. while loading the worker module). */
  private readonly failed: Promise<never>;

  /** `workerFile` is for tests (a module that fails to load). */
  constructor(
    readonly threads: number,
    workerFile = WORKER_FILE,
  ) {
    this.pool = new Piscina({
      filename: workerFile,
      minThreads: threads,
      maxThreads: threads,
      // One task at a time per thread: a task is synchronous CPU work.
      concurrentTasksPerWorker: 1,
      idleTimeout: Number.POSITIVE_INFINITY,
      execArgv: workerFile.endsWith('.ts') ? ['--import', TSX_LOADER] : [],
    });
    this.failed = new Promise<never>((_, reject) => {
      // A thread that fails outside a task (e.g. a respawned one that cannot load the module)
      // is reported here; unheard, piscina's 'error' event would crash the process. Every
      // task still pending then fails with the reason.
      this.pool.on('error', (e: unknown) =>
        reject(new Error(`explore: a worker thread failed: ${(e as Error)?.message ?? String(e)}`)),
      );
    });
    this.failed.catch(() => {});
  }

  /** Runs one task on a free thread. */
  run(task: ExploreTask): Promise<ExploreTaskResult> {
    return Promise.race([this.pool.run(task) as Promise<ExploreTaskResult>, this.failed]);
  }

  /** Stops every thread. */
  async close(): Promise<void> {
    await this.pool.destroy();
  }
}
