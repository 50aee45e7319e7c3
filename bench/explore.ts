/**
 * Question: how many schedules per second does `smpsim explore` run, in the main thread and on
 * worker threads, and how much does the local-step reduction cut the trees?
 *
 * Table 1 times whole explorations (wall clock; every schedule is a fresh machine, one
 * deterministic-host run and the checker): the exhaustive walk and random trials in the main
 * thread (`jobs` 1), and on 2 threads with the thread start-up included (a fresh `Explorer` per
 * run, as the CLI does) and with warm threads (one `Explorer` reused), and the whole walk as one
 * task on a single warm thread (what one thread does alone). Baselines measured in the
 * same run: the bare loop a trial is made of (build the machine in reused RAM, run it seeded, no
 * checker), a trial alone (`TrialRunner.run`: the same plus the checker and the RAM reset), and
 * the checker alone on one finished run. Table 2 counts schedules with and without the reduction (no timing).
 *
 * Run: `npx tsx bench/explore.ts [--runs N]` (about a minute).
 */

import { readFileSync } from 'node:fs';
import { renderTable } from '../src/bench/table.ts';
import { checkRun } from '../src/check/checker.ts';
import { Explorer, exploreScenario } from '../src/explore/explore.ts';
import { ExplorePool } from '../src/explore/pool.ts';
import type { ExploreTask } from '../src/explore/task.ts';
import { TrialRunner } from '../src/explore/trial.ts';
import { PhysicalMemory } from '../src/memory/physical-memory.ts';
import { scenario } from '../src/scenarios/builder.ts';
import { loadScenario, scenarioToJson } from '../src/scenarios/load.ts';
import { PROTOCOLS, type Scenario } from '../src/scenarios/scenario.ts';
import { runDeterministic } from '../src/smp/hosts/deterministic.ts';
import { Machine } from '../src/smp/machine.ts';
import { type BenchRow, machineLine, printRateTable, timeRunsAsync } from './harness.ts';

const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 5;

const BUILTIN = loadScenario(
  readFileSync(new URL('../scenarios/unmap-without-shootdown.json', import.meta.url), 'utf8'),
);

/**
 * Two CPUs, `n` stores against `n` loads and an unflushed unmap: C(2n+3, n+1) schedules, none
 * merged (no local steps), 2n + 3 steps each (6435 schedules of 15 steps for n = 6).
 */
function wide(n: number): Scenario {
  return scenario(`wide-${n}`)
    .machine({ cpus: 2, protocol: 'none' })
    .addressSpace('A', (as) =>
      as.map4k(0x40_0000, 0x20_0000, 'PRESENT|WRITABLE').map4k(0x40_1000, 0x20_1000, 'PRESENT'),
    )
    .cpu('A', (p) => {
      for (let i = 0; i < n; i++) p.store(0x40_0000 + 8 * i, i);
      p.unmap('4KiB', 0x40_1000);
    })
    .cpu('A', (p) => {
      for (let i = 0; i < n; i++) p.load(0x40_0000, 'r0');
    })
    .build();
}

async function main(): Promise<void> {
  console.log(machineLine());
  const WIDE = wide(6);
  const wideLeaves = (await exploreScenario(WIDE, { maxSchedules: 1e6 })).schedules;
  const builtinLeaves = (await exploreScenario(BUILTIN, { protocol: 'sync-ipi' })).schedules;
  const TRIALS = 5000;
  const rows: BenchRow[] = [];

  const runner = new TrialRunner(WIDE, 'none');
  rows.push({
    name: `baseline: build + run, no checker (${WIDE.name})`,
    ops: 2000,
    seconds: await timeRunsAsync(RUNS, async () => {
      // Reusing one RAM as trials do: fresh 16 MiB RAM per run is what explore avoids
      // (src/explore/ram-pool.ts), and thousands of them exhaust memory before GC frees them.
      const ram = new PhysicalMemory(WIDE.machine.ramBytes);
      for (let seed = 0; seed < 2000; seed++) {
        const m = Machine.fromScenario(WIDE, { memory: ram });
        runDeterministic(m, { seed });
        ram.writeBytes(0, new Uint8Array(0x8000)); // the tables this scenario writes
        ram.writeBytes(0x20_0000, new Uint8Array(0x2000)); // and its two data frames
      }
    }),
    note: 'a trial without the checker',
  });
  rows.push({
    name: `baseline: one trial (${WIDE.name})`,
    ops: 2000,
    seconds: await timeRunsAsync(RUNS, async () => {
      for (let i = 0; i < 2000; i++) runner.run((n) => i % n);
    }),
    note: 'pooled RAM + checker',
  });
  rows.push({
    name: `checker alone (${WIDE.name})`,
    ops: 2000,
    seconds: await timeRunsAsync(RUNS, async () => {
      const m = Machine.fromScenario(WIDE);
      const run = runDeterministic(m, { seed: 1 });
      for (let i = 0; i < 2000; i++) checkRun(m, run);
    }),
  });
  rows.push({
    name: `walk ${BUILTIN.name}, sync-ipi, jobs 1`,
    ops: builtinLeaves,
    seconds: await timeRunsAsync(RUNS, () => exploreScenario(BUILTIN, { protocol: 'sync-ipi' })),
    note: 'exhaustive',
  });
  rows.push({
    name: `walk ${WIDE.name}, jobs 1`,
    ops: wideLeaves,
    seconds: await timeRunsAsync(RUNS, () => exploreScenario(WIDE, { maxSchedules: 1e6, jobs: 1 })),
    note: 'exhaustive',
  });
  rows.push({
    name: `walk ${WIDE.name}, jobs 2 (start-up included)`,
    ops: wideLeaves,
    seconds: await timeRunsAsync(RUNS, () => exploreScenario(WIDE, { maxSchedules: 1e6, jobs: 2 })),
    note: 'first 1000 in-process',
  });
  const single = new ExplorePool(1);
  const wholeTree: ExploreTask = {
    scenario: scenarioToJson(WIDE),
    protocol: 'none',
    reduce: true,
    kind: 'dfs',
    prefix: [],
    budget: 1e6,
  };
  rows.push({
    name: `walk ${WIDE.name} as one task, 1 warm thread`,
    ops: wideLeaves,
    seconds: await timeRunsAsync(RUNS, () => single.run(wholeTree)),
    note: 'a thread alone, against jobs 1',
  });
  await single.close();
  const warm = new Explorer({ jobs: 2 });
  rows.push({
    name: `walk ${WIDE.name}, jobs 2, warm threads`,
    ops: wideLeaves,
    seconds: await timeRunsAsync(RUNS, () => warm.explore(WIDE, { maxSchedules: 1e6 })),
    note: 'first 1000 in-process',
  });
  rows.push({
    name: `random ${WIDE.name}, jobs 1`,
    ops: TRIALS,
    seconds: await timeRunsAsync(RUNS, () =>
      exploreScenario(WIDE, { maxSchedules: TRIALS, jobs: 1 }),
    ),
    note: 'includes the walk that finds the tree too big',
  });
  rows.push({
    name: `random ${WIDE.name}, jobs 2, warm threads`,
    ops: TRIALS,
    seconds: await timeRunsAsync(RUNS, () => warm.explore(WIDE, { maxSchedules: TRIALS })),
    note: 'includes the walk that finds the tree too big',
  });
  await warm.close();
  printRateTable('Table 1: schedules per second (ops = schedules)', rows);

  const head = ['scenario', 'protocol', 'every interleaving', 'reduced'];
  const body: string[][] = [];
  for (const s of [BUILTIN]) {
    for (const protocol of PROTOCOLS) {
      const full = await exploreScenario(s, { protocol, reduce: false, maxSchedules: 1e6 });
      const reduced = await exploreScenario(s, { protocol, maxSchedules: 1e6 });
      body.push([s.name, protocol, String(full.schedules), String(reduced.schedules)]);
    }
  }
  process.stdout.write(
    `\n${renderTable('Table 2: schedules in the tree, without and with the local-step reduction', head, body, [0, 1])}`,
  );
}

await main();
