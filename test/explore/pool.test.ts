/**
 * Tests of the exploration threads (src/explore/pool.ts, workers/explore-worker.ts) and of the
 * task protocol (src/explore/task.ts): a task gives the same answer on a thread as in the main
 * thread, and a failing task rejects with the reason instead of hanging.
 */

import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ExplorePool } from '../../src/explore/pool.ts';
import { type ExploreTask, runExploreTask } from '../../src/explore/task.ts';
import { scenarioToJson } from '../../src/scenarios/load.ts';
import { RACY_UNMAP, wide } from './scenarios.ts';

const pool = new ExplorePool(1);
afterAll(() => pool.close());

const target = (s = wide(2)) => ({ scenario: scenarioToJson(s), protocol: 'none', reduce: true });

describe('ExplorePool and runExploreTask', () => {
  it('a walk task answers the same on a thread and in-process', async () => {
    const task: ExploreTask = { ...target(), kind: 'dfs', prefix: [1], budget: 5 };
    const here = runExploreTask(task);
    expect(here).toMatchObject({ kind: 'dfs', schedules: 5 });
    expect(await pool.run(task)).toEqual(here);
  });

  it('a random task answers the same on a thread and in-process', async () => {
    const task: ExploreTask = { ...target(RACY_UNMAP), kind: 'random', seed: 3, from: 10, to: 30 };
    const here = runExploreTask(task);
    expect(here).toMatchObject({ kind: 'random', from: 10, schedules: 20 });
    expect(await pool.run(task)).toEqual(here);
  });

  it('a thread that fails to start makes its task reject instead of hanging', async () => {
    const broken = new ExplorePool(1, fileURLToPath(new URL('broken-worker.ts', import.meta.url)));
    try {
      const task: ExploreTask = { ...target(), kind: 'dfs', prefix: [], budget: 1 };
      // piscina reports a module that throws while loading by its fallback loader's error
      // (`Unknown file extension ".ts"`), naming the file.
      await expect(broken.run(task)).rejects.toThrow(/broken-worker\.ts|fails to load/);
    } finally {
      await broken.close();
    }
  });

  it('a task that fails on the thread rejects with its message', async () => {
    const task: ExploreTask = { ...target(RACY_UNMAP), kind: 'dfs', prefix: [5], budget: 1 };
    await expect(pool.run(task)).rejects.toThrow(/alternative 5 of 2/);
  });
});
