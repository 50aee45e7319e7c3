/**
 * Schedule exploration (`smpsim explore`): which hazard kinds can a scenario reach under a
 * protocol, in any interleaving of its CPUs on the deterministic host, and a schedule that shows
 * each. Small trees are walked completely (dfs.ts, with the local-step reduction of
 * reduction.ts); a tree with more leaves than `maxSchedules` is sampled instead, with
 * `maxSchedules` seeded random trials (random.ts). The result depends only on the scenario,
 * protocol, `maxSchedules` and seed: never on `jobs` or on timing.
 */

import { HAZARD_KINDS, type HazardKind } from '../check/hazard.ts';
import { scenarioToJson } from '../scenarios/load.ts';
import type { Scenario } from '../scenarios/scenario.ts';
import { comparePaths, type DfsChunk, type Witnesses } from './dfs.ts';
import { ExplorePool } from './pool.ts';
import type { RandomChunk } from './random.ts';
import { type ExploreTarget, type ExploreTask, runExploreTask } from './task.ts';
import type { Trial } from './trial.ts';

/** `--max-schedules` when not given: leaves walked before falling back to random trials. */
export const DEFAULT_MAX_SCHEDULES = 10_000;
/**
 * Leaves walked in the main thread before worker threads are started: starting them costs about
 * 0.3 s each, about as long as this many trials take in-process.
 */
export const IN_PROCESS_BUDGET = 1_000;
/** Leaves per task handed to a worker thread (each task then hands back what it left). */
export const TASK_BUDGET = 500;
/** Random trials per task, at most; fewer so that every thread gets a few tasks. */
export const RANDOM_TASK_TRIALS = 2_000;

/** Options of one exploration. */
export interface ExploreOptions {
  /** Default: the scenario's `machine.protocol`. */
  readonly protocol?: string;
  /** Default `DEFAULT_MAX_SCHEDULES`. */
  readonly maxSchedules?: number;
  /** The seed of random trials (default 1; unused when the walk is exhaustive). */
  readonly seed?: number;
  /** The local-step reduction (default true). */
  readonly reduce?: boolean;
  /** Told the counts so far after every trial in-process, and after every task on threads. */
  readonly onProgress?: (progress: ExploreProgress) => void;
}

/** How an `Explorer` spreads work; none of it changes a result. */
export interface ExplorerOptions {
  /** Threads for large trees (default 1: everything in the main thread). */
  readonly jobs?: number;
  /** Default `IN_PROCESS_BUDGET` (tests lower it to exercise the threads on small trees). */
  readonly inProcessBudget?: number;
  /** Default `TASK_BUDGET`. */
  readonly taskBudget?: number;
}

/** Where an exploration is. */
export interface ExploreProgress {
  readonly mode: 'exhaustive' | 'random';
  /** Schedules run so far in this mode. */
  readonly schedules: number;
  /** `maxSchedules`: the most this mode runs (an exhaustive walk may end sooner). */
  readonly total: number;
  /** The hazard kinds found so far in this mode, in `HAZARD_KINDS` order. */
  readonly found: readonly HazardKind[];
}

/** What an exploration found (the `explore --json` object of the scenario spec). */
export interface ExploreResult {
  readonly scenario: string;
  readonly protocol: string;
  /** Complete runs: every leaf of the reduced tree, or the random trials. */
  readonly schedules: number;
  /** True when every schedule of the reduced tree was run. */
  readonly exhaustive: boolean;
  /** The hazard kinds some schedule reached, in `HAZARD_KINDS` order. */
  readonly reachable: readonly HazardKind[];
  /** A schedule for each reachable kind: `smpsim run --schedule` with it reproduces the hazard. */
  readonly witness: Witnesses;
}

/** Counts for `onProgress`. */
class Progress {
  private schedules = 0;
  private readonly found = new Set<HazardKind>();

  constructor(
    private readonly mode: ExploreProgress['mode'],
    private readonly total: number,
    private readonly report: ((p: ExploreProgress) => void) | undefined,
  ) {
    this.emit();
  }

  /** One in-process trial. */
  readonly trial = (t: Trial): void => {
    this.add(1, t.kinds);
  };

  add(schedules: number, kinds: Iterable<HazardKind>): void {
    this.schedules += schedules;
    for (const k of kinds) this.found.add(k);
    this.emit();
  }

  private emit(): void {
    this.report?.({
      mode: this.mode,
      schedules: this.schedules,
      total: this.total,
      found: HAZARD_KINDS.filter((k) => this.found.has(k)),
    });
  }
}

/** Kinds of a witness map. */
function kindsOf(w: Witnesses): HazardKind[] {
  return HAZARD_KINDS.filter((k) => w[k] !== undefined);
}

/**
 * Explores scenarios, on `jobs` threads when a tree is large (the main thread alone when `jobs`
 * is 1). Keeps its worker threads between explorations; `close()` stops them.
 */
export class Explorer {
  private readonly jobs: number;
  private readonly inProcessBudget: number;
  private readonly taskBudget: number;
  private pool: ExplorePool | undefined;

  constructor(options: ExplorerOptions = {}) {
    this.jobs = options.jobs ?? 1;
    this.inProcessBudget = options.inProcessBudget ?? IN_PROCESS_BUDGET;
    this.taskBudget = options.taskBudget ?? TASK_BUDGET;
    for (const [name, v] of [
      ['jobs', this.jobs],
      ['inProcessBudget', this.inProcessBudget],
      ['taskBudget', this.taskBudget],
    ] as const) {
      if (!Number.isInteger(v) || v < 1)
        throw new RangeError(`${name} ${v} must be a positive integer`);
    }
  }

  /** Explores `scenario` (see the file comment). */
  async explore(scenario: Scenario, options: ExploreOptions = {}): Promise<ExploreResult> {
    const protocol = options.protocol ?? scenario.machine.protocol;
    const max = options.maxSchedules ?? DEFAULT_MAX_SCHEDULES;
    if (!Number.isInteger(max) || max < 1) {
      throw new RangeError(`maxSchedules ${max} must be a positive integer`);
    }
    const target: ExploreTarget = {
      scenario: scenarioToJson(scenario),
      protocol,
      reduce: options.reduce ?? true,
    };
    const walk = await this.walk(target, max, new Progress('exhaustive', max, options.onProgress));
    if (walk !== undefined) {
      // Chunks in the tree's order: the first chunk showing a kind holds its first witness.
      walk.sort((a, b) => comparePaths(a.first, b.first));
      const witness: Witnesses = {};
      for (const c of walk) for (const k of kindsOf(c.witness)) witness[k] ??= c.witness[k]!;
      return result(scenario, protocol, sum(walk), true, witness);
    }
    const seed = options.seed ?? 1;
    const trials = await this.sample(
      target,
      max,
      seed,
      new Progress('random', max, options.onProgress),
    );
    const witness: Witnesses = {};
    const at: Partial<Record<HazardKind, number>> = {};
    for (const c of trials) {
      for (const k of kindsOf(c.witness)) {
        const t = c.witnessTrial[k]!;
        if (at[k] === undefined || t < at[k]!) {
          at[k] = t;
          witness[k] = c.witness[k]!;
        }
      }
    }
    return result(scenario, protocol, sum(trials), false, witness);
  }

  /** Stops the worker threads, if any were started. */
  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    await pool?.close();
  }

  /**
   * Walks the whole tree, or returns undefined as soon as it is known to have more than `max`
   * leaves. With one job it is all walked here. Otherwise the first `inProcessBudget` leaves
   * are walked here, and what is left goes to the threads as subtrees, each walked `taskBudget`
   * leaves at a time (a task hands back the subtrees it did not reach).
   */
  private async walk(
    target: ExploreTarget,
    max: number,
    progress: Progress,
  ): Promise<DfsChunk[] | undefined> {
    const inProcess = this.jobs === 1 ? max + 1 : Math.min(this.inProcessBudget, max + 1);
    const first = runDfs(target, [], inProcess, progress.trial);
    const chunks: DfsChunk[] = [first];
    let total = first.schedules;
    if (total > max) return undefined;
    const queue = [...first.rest];
    if (queue.length === 0) return chunks;
    const pool = this.startPool();
    const inflight = new Set<Promise<void>>();
    let failure: { error: unknown } | undefined;
    while (failure === undefined && total <= max && (queue.length > 0 || inflight.size > 0)) {
      while (total <= max && queue.length > 0 && inflight.size < 2 * pool.threads) {
        const task: ExploreTask = {
          ...target,
          kind: 'dfs',
          prefix: queue.shift()!,
          budget: Math.max(1, Math.min(this.taskBudget, max + 1 - total)),
        };
        // Never rejects: a failure is kept and ends the loop.
        const p: Promise<void> = pool
          .run(task)
          .then((r) => {
            if (r.kind !== 'dfs') throw new Error('explore: a walk task answered with trials');
            chunks.push(r);
            total += r.schedules;
            queue.push(...r.rest);
            progress.add(r.schedules, kindsOf(r.witness));
          })
          .catch((error: unknown) => {
            failure ??= { error };
          });
        inflight.add(p);
        void p.finally(() => inflight.delete(p));
      }
      if (inflight.size > 0) await Promise.race(inflight);
    }
    // Tasks still running when the count passed `max` finish (each is bounded by its budget).
    await Promise.all(inflight);
    if (failure !== undefined) throw failure.error;
    return total > max ? undefined : chunks;
  }

  /** Runs random trials `[0, n)`: in-process for few trials or one job, else on the threads. */
  private async sample(
    target: ExploreTarget,
    n: number,
    seed: number,
    progress: Progress,
  ): Promise<RandomChunk[]> {
    if (this.jobs === 1 || n <= this.inProcessBudget) {
      return [runRandom(target, seed, 0, n, progress.trial)];
    }
    const pool = this.startPool();
    const size = Math.min(RANDOM_TASK_TRIALS, Math.ceil(n / (4 * pool.threads)));
    const tasks: Promise<RandomChunk>[] = [];
    for (let from = 0; from < n; from += size) {
      const task: ExploreTask = {
        ...target,
        kind: 'random',
        seed,
        from,
        to: Math.min(n, from + size),
      };
      tasks.push(
        pool.run(task).then((r) => {
          if (r.kind !== 'random') throw new Error('explore: a trials task answered with a walk');
          progress.add(r.schedules, kindsOf(r.witness));
          return r;
        }),
      );
    }
    return Promise.all(tasks);
  }

  private startPool(): ExplorePool {
    this.pool ??= new ExplorePool(this.jobs);
    return this.pool;
  }
}

function runDfs(
  target: ExploreTarget,
  prefix: readonly number[],
  budget: number,
  onTrial: (t: Trial) => void,
): DfsChunk {
  const r = runExploreTask({ ...target, kind: 'dfs', prefix, budget }, onTrial);
  if (r.kind !== 'dfs') throw new Error('unreachable');
  return r;
}

function runRandom(
  target: ExploreTarget,
  seed: number,
  from: number,
  to: number,
  onTrial: (t: Trial) => void,
): RandomChunk {
  const r = runExploreTask({ ...target, kind: 'random', seed, from, to }, onTrial);
  if (r.kind !== 'random') throw new Error('unreachable');
  return r;
}

function sum(chunks: readonly { readonly schedules: number }[]): number {
  return chunks.reduce((n, c) => n + c.schedules, 0);
}

function result(
  scenario: Scenario,
  protocol: string,
  schedules: number,
  exhaustive: boolean,
  witness: Witnesses,
): ExploreResult {
  const reachable = kindsOf(witness);
  const ordered: Witnesses = {};
  for (const k of reachable) ordered[k] = witness[k]!;
  return { scenario: scenario.name, protocol, schedules, exhaustive, reachable, witness: ordered };
}

/** Explores one scenario with a fresh `Explorer` of `jobs` threads, and stops them. */
export async function exploreScenario(
  scenario: Scenario,
  options: ExploreOptions & ExplorerOptions = {},
): Promise<ExploreResult> {
  const explorer = new Explorer(options);
  try {
    return await explorer.explore(scenario, options);
  } finally {
    await explorer.close();
  }
}
