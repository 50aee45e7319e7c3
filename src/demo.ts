/**
 * `npm start`: the main job a newcomer runs first (about 20-40 s on 2 cores).
 *
 * 1. Every built-in hazard scenario on worker threads (each CPU its own thread), under protocol
 *    `none` (the crate's flush(): local invlpg only) and under `sync-ipi` (a real shootdown):
 *    which hazards the coherence checker found, and which appeared or disappeared.
 * 2. A 4-CPU machine on worker threads: what a 1-page `sync-ipi` shootdown costs the initiator
 *    with 1, 2 and 3 idle targets (wall clock), beside the raw Atomics.wait/notify round trip
 *    measured in the same run and the modeled cycles of the deterministic host.
 * 3. The HTML report of one hazard, written to out/ (its path is printed).
 *
 * `npm run tour` walks through the paging core instead (translations, the entries each walk
 * reads, a dropped MapperFlush, the replay conformance samples).
 */

import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { runModeledClock } from './bench/modeled-clock.ts';
import { checkRun } from './check/checker.ts';
import type { HazardKind } from './check/hazard.ts';
import { BUILTIN_DIR, resolveScenario } from './cli/run.ts';
import { DEFAULT_COST_MODEL } from './cpu/cost-model.ts';
import { renderHtmlReport } from './report/html.ts';
import { buildRunReport } from './report/run-report.ts';
import { scenario } from './scenarios/builder.ts';
import type { Protocol, Scenario } from './scenarios/scenario.ts';
import { runDeterministic } from './smp/hosts/deterministic.ts';
import { applyFinalState, runOnWorkers } from './smp/hosts/worker.ts';
import { Machine } from './smp/machine.ts';

const log = (s = '') => process.stdout.write(`${s}\n`);
const t0 = performance.now();
const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

log(
  `smpsim demo: ${cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${availableParallelism()} cores, node ${process.version}`,
);
log();

// ---- 1. the hazard library, none vs sync-ipi, on worker threads --------------------------------

log('1. The built-in hazard scenarios on worker threads (one thread per simulated CPU), under');
log("   protocol none (the crate's flush(): invlpg on the calling CPU only) and sync-ipi (IPIs to");
log('   every CPU that may cache the address space, wait for their acks):');
log();

async function hazardsOnWorkers(s: Scenario, protocol: Protocol): Promise<HazardKind[]> {
  const machine = Machine.fromScenario(s, { protocol, traceCapacity: 1 << 14 });
  const run = await runOnWorkers(machine);
  applyFinalState(machine, run);
  return [...new Set(checkRun(machine, run).map((h) => h.kind))].sort();
}

const names = readdirSync(BUILTIN_DIR)
  .filter((f) => f.endsWith('.json'))
  .map((f) => f.slice(0, -5))
  .sort();
const show = (kinds: readonly string[]) => (kinds.length === 0 ? '-' : kinds.join(', '));
const rows: string[][] = [];
let unexpected = 0;
const gone = new Map<string, number>();
for (const name of names) {
  const s = resolveScenario(name);
  const none = await hazardsOnWorkers(s, 'none');
  const sync = await hazardsOnWorkers(s, 'sync-ipi');
  const disappeared = none.filter((k) => !sync.includes(k));
  const appeared = sync.filter((k) => !none.includes(k));
  for (const k of disappeared) gone.set(k, (gone.get(k) ?? 0) + 1);
  // The scenario's own expect block says what every schedule can reach; a real run is one
  // schedule, so it may find less, never more.
  const beyond = (p: Protocol, found: readonly string[]) =>
    found.filter((k) => !(s.expect?.[p] ?? []).includes(k as HazardKind));
  const extra = [...beyond('none', none), ...beyond('sync-ipi', sync)];
  if (extra.length > 0) unexpected++;
  rows.push([
    name,
    String(s.cpus.length),
    show(none),
    show(sync),
    [
      disappeared.length > 0 ? `gone: ${disappeared.join(', ')}` : '',
      appeared.length > 0 ? `new: ${appeared.join(', ')}` : '',
      disappeared.length === 0 && appeared.length === 0
        ? none.length === 0
          ? 'safe either way'
          : 'a shootdown cannot fix this'
        : '',
      extra.length > 0 ? `NOT IN EXPECT: ${extra.join(', ')}` : '',
    ]
      .filter((x) => x !== '')
      .join('; '),
  ]);
}
const head = ['scenario', 'CPUs', 'hazards under none', 'under sync-ipi', 'what the shootdown did'];
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
log(`   ${head.map((h, i) => h.padEnd(widths[i]!)).join('  ')}`.trimEnd());
log(`   ${widths.map((w) => '-'.repeat(w)).join('  ')}`);
for (const r of rows) log(`   ${r.map((c, i) => c.padEnd(widths[i]!)).join('  ')}`.trimEnd());
log();
log('   sync-ipi removed:');
for (const [k, n] of gone) log(`     ${k} in ${n} scenario${n === 1 ? '' : 's'}`);
log('   What stays under sync-ipi is not a missing shootdown: a GLOBAL entry surviving CR3, a');
log('   frame freed before its flush, DIRTY cleared while a CPU still writes, a dropped flush.');
if (unexpected > 0)
  log(`   ${unexpected} scenario(s) found a hazard their expect block does not list (see above).`);
log(`   [${elapsed()}] run any of them: ./bin/smpsim.js run NAME --protocol none --host workers`);
log();

// ---- 2. a 4-CPU machine: the shootdown's cost ---------------------------------------------------

const ROUNDS = 300;
const RUNS = 3;
const PAGE = 0x40_0000;
const RW = 'PRESENT | WRITABLE | USER_ACCESSIBLE';

/** CPU 0 changes a page's flags and flushes ROUNDS times; CPUs 1..targets share its space. */
function shootdownMachine(targets: number): Scenario {
  const b = scenario(`shootdown-${targets}`)
    .machine({ cpus: 4, ramBytes: 0x40_0000 })
    .addressSpace('A', (as) => as.map4k(PAGE, 0x20_0000, RW))
    .addressSpace('B', (as) => as.map4k(PAGE, 0x30_0000, RW))
    .cpu('A', (p) => {
      for (let i = 0; i < ROUNDS; i++)
        p.updateFlags('4KiB', PAGE, `${RW} | ACCESSED | DIRTY`).flush();
      p.barrier('end');
    });
  // Idle targets: they wait at the barrier (asleep in Atomics.wait) and wake for each IPI.
  for (let cpu = 1; cpu < 4; cpu++) b.cpu(cpu <= targets ? 'A' : 'B', (p) => p.barrier('end'));
  return b.build();
}

/** Milliseconds CPU 0 spent on its program, on worker threads. */
async function cpu0Ms(s: Scenario, protocol: Protocol): Promise<number> {
  const m = Machine.fromScenario(s, { protocol, trace: false });
  const run = await runOnWorkers(m);
  return run.cpus[0]!.wallMs;
}

/**
 * CPU 0's modeled cycles on the modeled clock (src/bench/modeled-clock.ts: a request reaches an
 * idle target at the sender's time, so the remote work is on the initiator's path).
 */
function cpu0Cycles(s: Scenario, protocol: Protocol): number {
  const m = Machine.fromScenario(s, { protocol, trace: false });
  runModeledClock(m);
  return m.cpus[0]!.cycles;
}

/**
 * The raw Atomics.wait/notify round trip between two threads, in microseconds (median): the main
 * thread wakes a sleeping thread and waits for its reply. `gapUs` of spinning before each trip
 * lets the other thread really fall asleep (back to back, it is often still on its way into the
 * wait, and the trip is much cheaper than waking a sleeper).
 */
async function waitNotifyFloor(trips: number, gapUs: number): Promise<number> {
  const sab = new SharedArrayBuffer(8);
  const w = new Int32Array(sab);
  // Plain JavaScript in the thread: this measures the primitive, not the simulator.
  const worker = new Worker(
    `const { workerData } = require('node:worker_threads');
     const w = new Int32Array(workerData);
     for (let i = 1; ; i++) {
       while (Atomics.load(w, 0) !== 2 * i - 1) Atomics.wait(w, 0, 2 * (i - 1));
       if (Atomics.load(w, 1) === 1) break;
       Atomics.store(w, 0, 2 * i); Atomics.notify(w, 0);
     }`,
    { eval: true, workerData: sab },
  );
  const samples: number[] = [];
  for (let i = 1; i <= trips; i++) {
    const until = performance.now() + gapUs / 1000;
    while (performance.now() < until);
    const t = performance.now();
    Atomics.store(w, 0, 2 * i - 1);
    Atomics.notify(w, 0);
    while (Atomics.load(w, 0) !== 2 * i) Atomics.wait(w, 0, 2 * i - 1, 1000);
    samples.push((performance.now() - t) * 1000);
  }
  Atomics.store(w, 1, 1);
  Atomics.store(w, 0, 2 * trips + 1);
  Atomics.notify(w, 0);
  await worker.terminate();
  return median(samples.slice(trips / 10));
}

log("2. A 4-CPU machine on worker threads: the initiator's cost of one 1-page sync-ipi shootdown");
log(`   (update_flags + flush, ${ROUNDS} rounds per run, median of ${RUNS} runs; targets idle in`);
log('   Atomics.wait until the IPI wakes them; minus the same run under none):');
log();
const floor = await waitNotifyFloor(1000, 200);
const backToBack = await waitNotifyFloor(2000, 0);
const lrows: string[][] = [];
for (const targets of [1, 2, 3]) {
  const s = shootdownMachine(targets);
  const sync: number[] = [];
  const none: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    sync.push(await cpu0Ms(s, 'sync-ipi'));
    none.push(await cpu0Ms(s, 'none'));
  }
  const us = ((median(sync) - median(none)) * 1000) / ROUNDS;
  const cycles = (cpu0Cycles(s, 'sync-ipi') - cpu0Cycles(s, 'none')) / ROUNDS;
  lrows.push([
    String(targets),
    us.toFixed(1),
    (us / floor).toFixed(2),
    cycles.toFixed(0),
    (cycles / DEFAULT_COST_MODEL.clockGhz).toFixed(0),
  ]);
}
const lhead = [
  'targets',
  'wall µs / shootdown',
  'x wait/notify floor',
  'modeled cycles',
  `modeled ns at ${DEFAULT_COST_MODEL.clockGhz} GHz`,
];
const lw = lhead.map((h, i) => Math.max(h.length, ...lrows.map((r) => r[i]!.length)));
log(`   ${lhead.map((h, i) => h.padStart(lw[i]!)).join('  ')}`);
log(`   ${lw.map((w) => '-'.repeat(w)).join('  ')}`);
for (const r of lrows) log(`   ${r.map((c, i) => c.padStart(lw[i]!)).join('  ')}`);
log();
log(
  `   raw floor, same run: Atomics.wait/notify round trip waking a sleeping thread ${floor.toFixed(1)} µs`,
);
log(`   (back to back, the other thread not yet asleep: ${backToBack.toFixed(1)} µs)`);
log('   Wall clock is the simulator on this machine; modeled cycles come from the cost model of');
log('   src/cpu/cost-model.ts, calibrated so that an unmap+flush of one page costs 661 ns with no');
log('   remote CPU and 1,436 ns with one (Amit 2019, Haswell): see smpsim bench shootdown.');
log(`   [${elapsed()}] more: npx tsx bench/shootdown-latency.ts`);
log();

// ---- 3. the HTML report -------------------------------------------------------------------------

const reportScenario = resolveScenario('unmap-without-shootdown');
const machine = Machine.fromScenario(reportScenario, { protocol: 'none' });
const run = runDeterministic(machine);
const hazards = checkRun(machine, run);
const report = buildRunReport(
  machine,
  run,
  { protocol: 'none', host: 'deterministic', seed: 1 },
  hazards,
);
mkdirSync('out', { recursive: true });
const path = resolve('out/smpsim-demo.html');
writeFileSync(
  path,
  renderHtmlReport({ scenario: reportScenario, report, records: run.records, hazards }),
);
log('3. The run behind the first row, as an HTML page (CPU lanes, IPIs, the hazard and its story,');
log('   a step slider over every TLB):');
log(`   ${path}`);
log();
log(`done in ${elapsed()}.`);
