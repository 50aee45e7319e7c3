/**
 * The unit of exploration work, as data: a subtree to walk or a range of random trials, of one
 * scenario under one protocol. The same `runExploreTask` runs it in the main thread and in a
 * worker thread (workers/explore-worker.ts), so where a task ran never changes its result.
 */

import { validateScenario } from '../scenarios/load.ts';
import type { ScenarioJson } from '../scenarios/scenario.ts';
import { type DfsChunk, exploreSubtree } from './dfs.ts';
import { type RandomChunk, randomTrials } from './random.ts';
import { type Trial, TrialRunner } from './trial.ts';

/** What to explore: the scenario as its file would say it (structured-clonable), and how. */
export interface ExploreTarget {
  readonly scenario: ScenarioJson;
  readonly protocol: string;
  /** The local-step reduction (default on). */
  readonly reduce: boolean;
}

/** A task posted to a worker (or run in-process). */
export type ExploreTask = ExploreTarget &
  (
    | { readonly kind: 'dfs'; readonly prefix: readonly number[]; readonly budget: number }
    | { readonly kind: 'random'; readonly seed: number; readonly from: number; readonly to: number }
  );

/** A task's answer. */
export type ExploreTaskResult =
  | ({ readonly kind: 'dfs' } & DfsChunk)
  | ({ readonly kind: 'random' } & RandomChunk);

/** The last target's runner: a thread explores one scenario and protocol at a time. */
let cached: { key: string; runner: TrialRunner } | undefined;

function runnerFor(target: ExploreTarget): TrialRunner {
  const key = JSON.stringify([target.scenario, target.protocol, target.reduce]);
  if (cached?.key !== key) {
    cached = {
      key,
      runner: new TrialRunner(validateScenario(target.scenario), target.protocol, {
        reduce: target.reduce,
      }),
    };
  }
  return cached.runner;
}

/** Runs one task; `onTrial` is told about every trial (progress, in-process only). */
export function runExploreTask(
  task: ExploreTask,
  onTrial?: (trial: Trial) => void,
): ExploreTaskResult {
  const runner = runnerFor(task);
  if (task.kind === 'dfs') {
    return { kind: 'dfs', ...exploreSubtree(runner, task.prefix, task.budget, onTrial) };
  }
  return { kind: 'random', ...randomTrials(runner, task.seed, task.from, task.to, onTrial) };
}
