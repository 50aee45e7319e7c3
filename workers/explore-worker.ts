/**
 * One exploration thread: piscina runs `exploreTask` for each subtree or range of random trials
 * the main thread hands out (src/explore/pool.ts). The work itself is `runExploreTask`, the same
 * function the main thread runs for small trees, so a task's result does not depend on where it
 * ran. The thread keeps its `TrialRunner` (and its RAM) from task to task of one target.
 */

import { type ExploreTask, type ExploreTaskResult, runExploreTask } from '../src/explore/task.ts';

/** The piscina task function. */
export default function exploreTask(task: ExploreTask): ExploreTaskResult {
  return runExploreTask(task);
}
