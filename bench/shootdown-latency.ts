/**
 * Question: what does a simulated 1-page TLB shootdown (`sync-ipi`) cost the initiator, in wall
 * clock, next to the raw signalling floors between two Node worker threads measured in the same
 * run (an `Atomics.wait`/`notify` round trip, a spin-on-`Atomics.load` round trip)?
 *
 * The program: CPU 0 runs `update_flags` + `flush` on one 4 KiB page of address space A, round
 * after round; every other CPU runs in A, so each flush posts one IPI to each of them and waits
 * for their acks. A target is *busy* (a stream of TLB-hit loads on a page of its own in A: it
 * services the IPI at its next instruction boundary) or *idle* (waiting at a barrier: it sleeps
 * in `Atomics.wait` on its wake word and must be woken). A busy target loads a page other than the
 * flushed one on purpose: that is the shape of this machine's kernel baseline (a sibling thread
 * spinning on the other core while its process calls mprotect, BASELINES.md), and a target that
 * reads the flushed page instead re-walks the tables after every flush, contending with CPU 0's
 * next `update_flags` for the page-table line: a cost of the workload, not of the shootdown. That
 * shape is measured too, in the row `busy on the flushed page`. In idle rows CPU 0 pauses after each flush so that the
 * target's spin phase (2000 polls, about 16 µs) has run out and it really sleeps when the next IPI
 * comes (the `slept` column counts how often it did). The initiator's cost of one shootdown is a
 * sync-ipi round minus the median round of the same program under protocol `none` (local flush
 * only), measured in the same run.
 *
 * Two drivers of the very same `Cpu.step()` and `Shootdown` over the same shared buffers:
 *
 * - replica (Tables 1 and 5): this file's own worker threads, started once and so warm, rebuild
 *   each CPU with `rebuildCpu` and run the worker host's own step loop (workers/cpu-loop.ts: step
 *   stamp, doorbell load, `spinIterations` polls when blocked, then `Atomics.wait` slices; no
 *   spinning when the CPUs outnumber the cores, as the host rules), without its control plane.
 *   CPU 0 reads the clock at each round's start and end (a hook the loop calls before each step),
 *   so p99 is across rounds. Busy targets loop over a short
 *   load stream until CPU 0 is done (the scenario ISA has no loops); CPU 0's idle-row pause is a
 *   busy-wait in the driver, outside the timed round.
 * - WorkerHost (Table 2, the cross-check): the real `WorkerHost`, fresh piscina threads per run.
 *   CPU 0 stores its round count to RAM after each round, the main thread samples it every 1 ms,
 *   and the mean round is taken over 40-95% of the program, past the threads' cold start (whose
 *   own mean is printed). Means only, spread across runs; idle rows pause with GAP_LOADS loads.
 *   A busy target's finite stream ends with a flag store and the end barrier (so it stays in the
 *   cpumask); the timed window ends where the flag appeared if that was earlier (a loaded machine),
 *   and the run is stopped once CPU 0 has done its rounds.
 *
 * Every run is checked through the shared mailbox: under sync-ipi the requests posted to each
 * target (`Shootdown.requestsTo`) equal the rounds and CPU 0's acks (`acksTo`) equal rounds x
 * targets (none: both 0); a small traced WorkerHost run also counts the IpiSend / IpiReceive / ShootdownDone records.
 *
 * Then where the time goes (Table 4: the protocol's compute on one thread, both CPUs stepped in
 * lockstep, plus a few primitives) and the effect of the WorkerHost's `spinIterations` and
 * `waitSliceMs` options (Table 5). About 90 s and 4 GB of memory (`--quick`: about 45 s; `--focus`, only the floors,
 * the 1-target replica rows and Table 4, for iterating on the IPI path: about 20 s).
 *
 * Run: `npx tsx bench/shootdown-latency.ts [--quick] [--focus] [--runs N]`.
 */

import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { type Cpu, StepResult } from '../src/cpu/cpu.ts';
import { scenario } from '../src/scenarios/builder.ts';
import type { Scenario } from '../src/scenarios/scenario.ts';
import { runOnWorkers, WORKER_HOST_DEFAULTS, WorkerHost } from '../src/smp/hosts/worker.ts';
import { Machine } from '../src/smp/machine.ts';
import { rebuildCpu, type SharedMachine, shareMachine } from '../src/smp/share.ts';
import { TraceKind } from '../src/trace/record.ts';
import { cpuLoop } from '../workers/cpu-loop.ts';
import { machineLine, median, percentile, printTable } from './harness.ts';

// ---- parameters -------------------------------------------------------------------------------

const argv = process.argv.slice(2);
const QUICK = argv.includes('--quick');
/** Only the floors, the 1-target replica rows and Table 4 (for iterating on the IPI path). */
const FOCUS = argv.includes('--focus');
const runsArg = argv.indexOf('--runs');
/** Timed runs per row (after one warm-up run). */
const RUNS = runsArg >= 0 ? Number(argv[runsArg + 1]) : QUICK ? 3 : 5;
/** Timed runs per WorkerHost row (each starts fresh threads: about 0.5-2 s). */
const HOST_RUNS = QUICK ? 2 : 3;
const CORES = availableParallelism();
/** The page every CPU caches and CPU 0 updates and flushes. */
const PAGE = 0x40_0000;
/** CPU 0's page for its filler loads (idle rows). */
const FILLER_PAGE = 0x40_1000;
/** A busy target's own page (its TLB-hit stream), in A but never flushed. */
const TARGET_PAGE = 0x40_3000;
/** Where CPU 0 stores its round count (WorkerHost rows), and the frame the main thread reads. */
const COUNTER_PAGE = 0x40_2000;
const COUNTER_FRAME = 0x20_2000;
/**
 * Idle rows: CPU 0's pause between a flush and the next round, so that the target's spin phase
 * (2000 polls, about 16 µs here) has run out and it sleeps. The replica pauses in the driver (not
 * timed); the WorkerHost programs do GAP_LOADS local loads instead (about 20-45 µs).
 */
const PAUSE_MS = 0.1;
const GAP_LOADS = 200;
/** Loads in a busy target's stream (the replica loops over it). */
const BUSY_LOADS = 256;
/** The `wake` floor's pause between round trips (ms), so that the ponger sleeps. */
const WAKE_GAP_MS = 0.05;
/**
 * WorkerHost rows: CPU 0's rounds under sync-ipi and none, and a busy target's stream. Fresh
 * threads need about 150-200 ms to warm up (rounds then cost about 30-50 µs: the initiator's spin
 * runs out while the cold target services), and a busy target must outlast CPU 0: its TLB-hit
 * loads take about 0.1 µs each, so 1,000,000 of them ran out during the warm-up on a loaded
 * machine. 2,000,000 last about 200 ms; the program makes the benchmark's peak memory about 4 GB.
 */
const HOST_BUSY_ROUNDS = 20_000;
const HOST_NONE_ROUNDS = 150_000;
const HOST_BUSY_LOADS = 2_000_000;
const HOST_IDLE_ROUNDS = 2500;
/** Round trips per raw-floor run. */
const SLEEP_TRIPS = QUICK ? 4_000 : 10_000;
const SPIN_TRIPS = QUICK ? 50_000 : 200_000;
/** Replica threads: CPU 0 and up to 8 targets. */
const THREADS = 9;
/** A wait/notify round trip faster than this (µs) had both threads on one core (VM: no IPI). */
const FAST_WAKE_US = 20;
/** The issue's goals. */
const GOAL_BUSY_VS_SPIN = 2;
const GOAL_IDLE_VS_WAIT = 1.25;
const GOAL_P99_OVER_MEDIAN = 10;

// ---- the worker side --------------------------------------------------------------------------

/** The raw floors: `wait` both sides sleep, `wake` the pinger spins and the ponger sleeps. */
type FloorMode = 'wait' | 'wake' | 'spin';

/** One side of a raw round trip: `ping` times `n` round trips, `pong` answers them. */
interface PingJob {
  readonly kind: 'ping' | 'pong';
  readonly mode: FloorMode;
  readonly n: number;
  /** Int32 words: [0] ping sequence, [1] pong sequence, [2] start line. */
  readonly sab: SharedArrayBuffer;
}

/** One simulated CPU for the replica driver. */
interface CpuJob {
  readonly kind: 'cpu';
  readonly shared: SharedMachine;
  readonly id: number;
  readonly spinIterations: number;
  readonly ackSpinIterations: number;
  readonly waitSliceMs: number;
  readonly timeoutMs: number;
  /** CPU 0: round r starts at pc `r * roundLength`. */
  readonly roundLength: number;
  /** CPU 0: rounds in the program. */
  readonly rounds: number;
  /** CPU 0: busy-wait this long (ms, untimed) before each round after the first. */
  readonly pauseMs: number;
  /** A busy target: back to pc 0 on reaching this pc until CPU 0 is done (0: never). */
  readonly loopAt: number;
  /** Int32 words: [0] CPUs ready, [1] go, [2] CPU 0 done. */
  readonly sync: SharedArrayBuffer;
}

/** Table 4's one-thread measurement, run in a pool thread (warm, like the replica's). */
interface LockstepJob {
  readonly kind: 'lockstep';
  readonly protocol: string;
  readonly rounds: number;
}

type Job = PingJob | CpuJob | LockstepJob;

interface CpuResult {
  readonly id: number;
  /** CPU 0: `performance.now()` when round r started and ended (r = 0..rounds-1). */
  readonly starts: Float64Array;
  readonly ends: Float64Array;
  readonly status: string;
  readonly failure: string | undefined;
  /** Time spinning or in `Atomics.wait` (ms), as the host loop counts it. */
  readonly blockedMs: number;
  /** Blocked episodes, and how many of them ended after an `Atomics.wait` call. */
  readonly episodes: number;
  readonly slept: number;
}

/**
 * workers/cpu-worker.ts's step loop (the same `CpuLoop`), minus the control plane (never rung
 * here); the round clock and the busy target's loop run before each step.
 */
function runReplicaCpu(job: CpuJob): CpuResult {
  const { cpu, control, waitBuffers, shootdown } = rebuildCpu(job.shared, job.id);
  const sync = new Int32Array(job.sync);
  const starts = new Float64Array(job.rounds);
  const ends = new Float64Array(job.rounds);
  const timing = job.id === 0;
  const end = job.rounds * job.roundLength;
  let lastPc = -1;
  const beforeStep = (c: Cpu): void => {
    const pc = c.pc;
    if (pc === lastPc) return;
    lastPc = pc;
    if (timing && pc % job.roundLength === 0 && pc <= end) {
      const r = pc / job.roundLength;
      let t = performance.now();
      if (r > 0) ends[r - 1] = t;
      if (r === job.rounds) Atomics.store(sync, 2, 1);
      else {
        if (r > 0 && job.pauseMs > 0) {
          while (t - ends[r - 1]! < job.pauseMs) t = performance.now();
        }
        starts[r] = t;
      }
    } else if (job.loopAt > 0 && pc === job.loopAt && Atomics.load(sync, 2) === 0) {
      c.pc = 0;
    }
  };
  const loop = cpuLoop(cpu, control, waitBuffers, shootdown, job, beforeStep);

  // The start line: every CPU is rebuilt before any steps.
  Atomics.add(sync, 0, 1);
  while (Atomics.load(sync, 1) === 0) Atomics.wait(sync, 1, 0, 1000);
  const exit = loop.run();
  if (exit === 'attention') throw new Error('replica: unexpected doorbell');
  if (exit === 'deadlock') throw new Error(`replica: ${loop.deadlock}`);
  return {
    id: job.id,
    starts,
    ends,
    status: cpu.status,
    failure: cpu.failure,
    blockedMs: loop.blockedMs,
    episodes: loop.episodes,
    slept: loop.slept,
  };
}

/** Raw round trips: the pinger returns milliseconds per round trip. */
function runPing(job: PingJob): Float64Array {
  const w = new Int32Array(job.sab);
  Atomics.add(w, 2, 1);
  while (Atomics.load(w, 2) < 2) {}
  const out = new Float64Array(job.n);
  if (job.kind === 'ping') {
    const sleeps = job.mode === 'wait';
    const wakes = job.mode !== 'spin';
    let t = performance.now();
    for (let i = 1; i <= job.n; i++) {
      if (job.mode === 'wake') {
        // Let the ponger fall asleep first (it would catch the next request still awake).
        while (performance.now() - t < WAKE_GAP_MS) {}
        t = performance.now();
      }
      Atomics.store(w, 0, i);
      if (wakes) Atomics.notify(w, 0);
      if (sleeps) {
        while (Atomics.load(w, 1) !== i) Atomics.wait(w, 1, i - 1);
      } else {
        while (Atomics.load(w, 1) !== i) {}
      }
      // One clock read per round trip: sample i is the time between two reads.
      const now = performance.now();
      out[i - 1] = now - t;
      t = now;
    }
  } else {
    const sleeps = job.mode !== 'spin';
    for (let i = 1; i <= job.n; i++) {
      if (sleeps) {
        while (Atomics.load(w, 0) !== i) Atomics.wait(w, 0, i - 1);
      } else {
        while (Atomics.load(w, 0) !== i) {}
      }
      Atomics.store(w, 1, i);
      if (job.mode === 'wait') Atomics.notify(w, 1);
    }
  }
  return out;
}

// ---- the main thread: threads and jobs --------------------------------------------------------

/** Registers tsx's hooks inside the thread, then imports this file (Node 20: nodejs/node#47747). */
function bootstrap(): string {
  return `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})
  .then((tsx) => { tsx.register(); return import(${JSON.stringify(import.meta.url)}); })`;
}

/** Long-lived threads running this file's worker side, one job at a time each. */
class Pool {
  private readonly workers: Worker[];
  constructor(n: number) {
    this.workers = Array.from(
      { length: n },
      () => new Worker(bootstrap(), { eval: true, workerData: 'shootdown-latency' }),
    );
  }

  run<T>(i: number, job: Job): Promise<T> {
    const w = this.workers[i]!;
    return new Promise((resolve, reject) => {
      const onMessage = (m: { ok: boolean; value?: T; error?: string }) => {
        w.off('error', onError);
        if (m.ok) resolve(m.value as T);
        else reject(new Error(`worker ${i}: ${m.error}`));
      };
      const onError = (e: Error) => {
        w.off('message', onMessage);
        reject(e);
      };
      w.once('message', onMessage);
      w.once('error', onError);
      w.postMessage(job);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- scenarios and checks ---------------------------------------------------------------------

type Load = 'busy' | 'idle';

interface Shape {
  readonly load: Load;
  readonly targets: number;
  /** Untimed rounds first (JIT, caches), then timed ones. */
  readonly warm: number;
  readonly timed: number;
  /** A busy target's stream (the replica loops over it; the WorkerHost needs a long one). */
  readonly busyLoads: number;
  /** The page a busy target's stream loads: its own (TARGET_PAGE), or the flushed one (PAGE). */
  readonly busyPage: number;
  /** Idle rows: CPU 0's local loads after each flush (WorkerHost programs). */
  readonly gapLoads: number;
  /** CPU 0 ends each round storing the rounds done to COUNTER_PAGE (WorkerHost programs). */
  readonly counter: boolean;
}

const busy = (
  targets: number,
  warm: number,
  timed: number,
  busyLoads = BUSY_LOADS,
  busyPage = TARGET_PAGE,
): Shape => ({
  load: 'busy',
  targets,
  warm,
  timed,
  busyLoads,
  busyPage,
  gapLoads: 0,
  counter: false,
});

const idle = (targets: number, warm: number, timed: number, gapLoads = 0): Shape => ({
  load: 'idle',
  targets,
  warm,
  timed,
  busyLoads: 0,
  busyPage: TARGET_PAGE,
  gapLoads,
  counter: false,
});

const totalRounds = (s: Shape) => s.warm + s.timed;

/** Instructions per round of CPU 0. */
const roundLength = (s: Shape) => 2 + s.gapLoads + (s.counter ? 1 : 0);

function buildScenario(s: Shape): Scenario {
  let b = scenario(`shootdown-${s.load}-${s.targets}`)
    .machine({ cpus: s.targets + 1 })
    .addressSpace('A', (as) => {
      as.map4k(PAGE, 0x20_0000, 'PRESENT|WRITABLE');
      as.map4k(FILLER_PAGE, 0x20_1000, 'PRESENT|WRITABLE');
      as.map4k(COUNTER_PAGE, COUNTER_FRAME, 'PRESENT|WRITABLE');
      as.map4k(TARGET_PAGE, 0x20_3000, 'PRESENT|WRITABLE');
    })
    .cpu('A', (p) => {
      for (let r = 0; r < totalRounds(s); r++) {
        p.updateFlags('4KiB', PAGE, r % 2 === 0 ? 'PRESENT' : 'PRESENT|WRITABLE').flush();
        for (let i = 0; i < s.gapLoads; i++) p.load(FILLER_PAGE + (i % 512) * 8, 'r1');
        if (s.counter) p.store(COUNTER_PAGE, r + 1, { width: 4 });
      }
      // Idle targets wait here (a halted CPU leaves the cpumask and gets no IPIs), and so do
      // the WorkerHost's busy targets once their stream has run out.
      if (s.load === 'idle' || s.counter) p.barrier('end');
    });
  for (let t = 0; t < s.targets; t++) {
    b = b.cpu('A', (p) => {
      if (s.load === 'idle') p.barrier('end');
      else {
        for (let i = 0; i < s.busyLoads; i++) p.load(s.busyPage + (i % 512) * 8, 'r0');
        // WorkerHost: a busy stream cannot loop, and on a loaded machine it may run out before
        // CPU 0 is done. It says so (the sampler ends the timed window there) and then waits in
        // the cpumask, so every round still posts to it.
        if (s.counter) p.store(COUNTER_PAGE + 4 * (t + 1), 1, { width: 4 }).barrier('end');
      }
    });
  }
  return b.build();
}

/** Under sync-ipi every round posted one request to each target and got every ack; none: nothing. */
function checkMailbox(m: Machine, protocol: string, rounds: number, what: string): void {
  const pending = m.cpus.slice(1).map((c) => m.shootdown.requestsTo(c.id));
  const acks = m.shootdown.acksTo(0);
  const per = protocol === 'sync-ipi' ? rounds : 0;
  if (pending.some((p) => p !== per) || acks !== per * pending.length) {
    throw new Error(
      `${what} (${protocol}): expected ${per} IPIs to each target and ${per * pending.length} acks, got pending [${pending.join(', ')}] and ${acks} acks`,
    );
  }
}

/** A tiny traced WorkerHost run: the trace says one IPI per target per flush. */
async function calibrate(): Promise<string> {
  const rounds = 20;
  const shape = idle(2, 0, rounds);
  const m = Machine.fromScenario(buildScenario(shape), { protocol: 'sync-ipi' });
  const run = await runOnWorkers(m);
  const count = (k: TraceKind) => run.records.filter((r) => r.kind === k).length;
  const sends = count(TraceKind.IpiSend);
  const receives = count(TraceKind.IpiReceive);
  const dones = count(TraceKind.ShootdownDone);
  if (run.lost > 0 || sends !== 2 * rounds || receives !== 2 * rounds || dones !== rounds) {
    throw new Error(
      `calibration: ${sends} IpiSend, ${receives} IpiReceive, ${dones} ShootdownDone records for ${rounds} flushes to 2 targets (${run.lost} lost)`,
    );
  }
  return `IPI check: traced WorkerHost run, ${rounds} flushes x 2 idle targets -> ${sends} IpiSend, ${receives} IpiReceive, ${dones} ShootdownDone; every run below: requests to each target = rounds, acks to CPU 0 = rounds x targets (none: 0)`;
}

// ---- the raw floors ---------------------------------------------------------------------------

interface Floor {
  readonly name: string;
  readonly mode: FloorMode;
  /** µs per round trip, pooled over the timed runs. */
  readonly samples: number[];
  readonly runMedians: number[];
}

/** One run of a floor: µs per round trip. */
async function floorRun(pool: Pool, mode: FloorMode): Promise<number[]> {
  const n = mode === 'spin' ? SPIN_TRIPS : SLEEP_TRIPS;
  const sab = new SharedArrayBuffer(16);
  const [rtt] = await Promise.all([
    pool.run<Float64Array>(0, { kind: 'ping', mode, n, sab }),
    pool.run<Float64Array>(1, { kind: 'pong', mode, n, sab }),
  ]);
  return Array.from(rtt, (ms) => ms * 1000);
}

async function floor(pool: Pool, mode: FloorMode, name: string): Promise<Floor> {
  const samples: number[] = [];
  const runMedians: number[] = [];
  await floorRun(pool, mode); // warm-up
  for (let i = 0; i < RUNS; i++) {
    const xs = await floorRun(pool, mode);
    for (const x of xs) samples.push(x);
    runMedians.push(median(xs));
  }
  return { name, mode, samples, runMedians };
}

// ---- the replica driver -----------------------------------------------------------------------

interface HostOptions {
  readonly spinIterations: number;
  readonly ackSpinIterations: number;
  readonly waitSliceMs: number;
}

const DEFAULT_OPTIONS: HostOptions = {
  spinIterations: WORKER_HOST_DEFAULTS.spinIterations,
  ackSpinIterations: WORKER_HOST_DEFAULTS.ackSpinIterations,
  waitSliceMs: WORKER_HOST_DEFAULTS.waitSliceMs,
};

interface ReplicaRun {
  /** Milliseconds per timed round of CPU 0. */
  readonly rounds: number[];
  readonly cpus: CpuResult[];
}

async function replicaRun(
  pool: Pool,
  s: Scenario,
  shape: Shape,
  protocol: string,
  o: HostOptions,
): Promise<ReplicaRun> {
  const m = Machine.fromScenario(s, { protocol, trace: false });
  const shared = shareMachine(m, { trace: false });
  const n = m.cpus.length;
  const sync = new SharedArrayBuffer(16);
  const sw = new Int32Array(sync);
  const jobs = m.cpus.map((_, id) =>
    pool.run<CpuResult>(id, {
      kind: 'cpu',
      shared,
      id,
      // The host's rule: no spinning when the CPUs outnumber the cores.
      spinIterations: n <= CORES ? o.spinIterations : 0,
      ackSpinIterations: n <= CORES ? o.ackSpinIterations : 0,
      waitSliceMs: o.waitSliceMs,
      timeoutMs: WORKER_HOST_DEFAULTS.timeoutMs,
      roundLength: roundLength(shape),
      rounds: totalRounds(shape),
      pauseMs: shape.load === 'idle' && shape.gapLoads === 0 ? PAUSE_MS : 0,
      loopAt: shape.load === 'busy' && id > 0 ? shape.busyLoads : 0,
      sync,
    }),
  );
  while (Atomics.load(sw, 0) < n) await sleep(1);
  Atomics.store(sw, 1, 1);
  Atomics.notify(sw, 1);
  const cpus = await Promise.all(jobs);
  for (const c of cpus) {
    if (c.status !== 'halted') {
      throw new Error(`replica cpu ${c.id} ended ${c.status}: ${c.failure ?? ''}`);
    }
  }
  checkMailbox(m, protocol, totalRounds(shape), `replica ${shape.load} x${shape.targets}`);
  const { starts, ends } = cpus[0]!;
  const rounds: number[] = [];
  for (let r = shape.warm; r < totalRounds(shape); r++) rounds.push(ends[r]! - starts[r]!);
  return { rounds, cpus };
}

interface LatencyRow {
  readonly name: string;
  readonly shape: Shape;
  readonly runs: number;
  /** Per flush (µs): a sync-ipi round minus the median none round, pooled over the timed runs. */
  readonly latency: number[];
  /** The median of each timed run (µs). */
  readonly runMedians: number[];
  /** The median none round (µs): update_flags + local flush. */
  readonly noneMedian: number;
  /** Share of the targets' blocked episodes that went to sleep in Atomics.wait. */
  readonly sleptShare: number;
  /**
   * With `pairedFloor`: the medians (µs) of that floor's runs, one right before each timed
   * sync-ipi run, so that the goal's ratio compares runs minutes apart on a drifting machine with
   * no drift between them.
   */
  readonly floorMedians: number[];
  readonly note: string;
}

/** One warm-up pair, then `runs` pairs of (none, sync-ipi) runs of the same program, alternating. */
async function replicaRow(
  pool: Pool,
  name: string,
  shape: Shape,
  o: HostOptions = DEFAULT_OPTIONS,
  runs = RUNS,
  note = '',
  pairedFloor?: FloorMode,
): Promise<LatencyRow> {
  const s = buildScenario(shape);
  await replicaRun(pool, s, shape, 'none', o);
  await replicaRun(pool, s, shape, 'sync-ipi', o);
  const none: number[] = [];
  const sync: ReplicaRun[] = [];
  const floorMedians: number[] = [];
  for (let i = 0; i < runs; i++) {
    for (const x of (await replicaRun(pool, s, shape, 'none', o)).rounds) none.push(x);
    if (pairedFloor !== undefined) floorMedians.push(median(await floorRun(pool, pairedFloor)));
    sync.push(await replicaRun(pool, s, shape, 'sync-ipi', o));
  }
  const base = median(none);
  const latency: number[] = [];
  const runMedians: number[] = [];
  let episodes = 0;
  let slept = 0;
  for (const r of sync) {
    const us = r.rounds.map((ms) => (ms - base) * 1000);
    for (const x of us) latency.push(x);
    runMedians.push(median(us));
    for (const c of r.cpus.slice(1)) {
      episodes += c.episodes;
      slept += c.slept;
    }
  }
  return {
    name,
    shape,
    runs,
    latency,
    runMedians,
    noneMedian: base * 1000,
    sleptShare: episodes === 0 ? 0 : slept / episodes,
    floorMedians,
    note,
  };
}

// ---- the real WorkerHost ----------------------------------------------------------------------

interface HostRow {
  readonly name: string;
  /** The sync-ipi program; the none program may be longer (its rounds are shorter). */
  readonly shape: Shape;
  readonly noneShape: Shape;
  /** Per flush (µs), one per run: the mean sync-ipi round minus the median none round. */
  readonly perFlush: number[];
  /** The none round (µs), median over runs. */
  readonly noneRound: number;
  /** The mean sync-ipi round over the first COLD share of the rounds (µs), one per run. */
  readonly coldRound: number[];
  /** Thread startup per run (ms). */
  readonly startupMs: number[];
}

/** The window of CPU 0's rounds a WorkerHost run is timed over (past the cold start). */
const WINDOW = [0.4, 0.95] as const;
/** The share of the rounds reported as the cold start. */
const COLD = 0.2;

interface HostResult {
  /** Mean ms per round inside WINDOW, and over the first COLD of the rounds. */
  readonly msPerRound: number;
  readonly coldMsPerRound: number;
  readonly startupMs: number;
}

/** Mean ms per round between the first and the last sample with rounds in [lo, hi] of `rounds`. */
function slope(
  samples: readonly (readonly [number, number])[],
  lo: number,
  hi: number,
  why = 'make the program longer',
): number {
  const inside = samples.filter(([, r]) => r >= lo && r <= hi);
  const first = inside[0];
  const last = inside.at(-1);
  if (first === undefined || last === undefined || last[1] - first[1] < 0.5 * (hi - lo)) {
    throw new Error(
      `WorkerHost: ${inside.length} counter samples between rounds ${lo} and ${hi}: ${why}`,
    );
  }
  return (last[0] - first[0]) / (last[1] - first[1]);
}

/**
 * One WorkerHost run. The main thread samples CPU 0's round counter in RAM every millisecond (an
 * `Atomics.load`, nothing the CPUs see), so the mean round is timed inside WINDOW, past the cold
 * start of fresh threads. Busy targets would run on after CPU 0 halted: the run is stopped then.
 */
async function hostRun(s: Scenario, shape: Shape, protocol: string): Promise<HostResult> {
  const m = Machine.fromScenario(s, { protocol, trace: false });
  const ram = new Int32Array(m.setup.memory.buffer);
  const host = new WorkerHost(m, { trace: false });
  const rounds = totalRounds(shape);
  const samples: [number, number][] = [[performance.now(), 0]];
  /** CPU 0's rounds when a busy target's stream was first seen to have run out. */
  let ranOut = Number.POSITIVE_INFINITY;
  const timer = setInterval(() => {
    const done = Atomics.load(ram, COUNTER_FRAME / 4);
    samples.push([performance.now(), done]);
    // (Under none a busy target receives nothing: one load will do, see hostRow's callers.)
    if (shape.load === 'busy' && protocol === 'sync-ipi' && ranOut === Number.POSITIVE_INFINITY) {
      for (let t = 1; t <= shape.targets; t++)
        if (Atomics.load(ram, COUNTER_FRAME / 4 + t) !== 0) ranOut = done;
    }
    // CPU 0 is done (it waits at the end barrier, or halted): busy targets would run on.
    if (done === rounds && host.phase === 'running') void host.stop();
  }, 1);
  let run: Awaited<ReturnType<WorkerHost['start']>>;
  try {
    run = await host.start();
  } finally {
    clearInterval(timer);
  }
  if (run.deadlock !== undefined) {
    throw new Error(`WorkerHost deadlock: ${run.deadlock.waits.join('; ')}`);
  }
  const c0 = run.cpus[0]!;
  const done = Atomics.load(ram, COUNTER_FRAME / 4);
  if (done !== rounds || c0.state.failure !== undefined) {
    throw new Error(
      `WorkerHost: cpu 0 ended ${c0.end} (${c0.state.status}) after ${done} of ${rounds} rounds`,
    );
  }
  checkMailbox(m, protocol, rounds, `WorkerHost ${shape.load} x${shape.targets}`);
  // The cold start counts from the first round done, not from thread startup.
  const started = samples.findIndex(([, r]) => r > 0);
  const hi = Math.min(WINDOW[1] * rounds, ranOut);
  return {
    msPerRound: slope(
      samples,
      WINDOW[0] * rounds,
      hi,
      hi < WINDOW[1] * rounds
        ? `the busy target's ${shape.busyLoads} loads ran out at round ${ranOut} of ${rounds} (this machine is loaded: rerun)`
        : undefined,
    ),
    coldMsPerRound: slope(samples.slice(Math.max(0, started - 1)), 0, COLD * rounds),
    startupMs: run.startupMs,
  };
}

/** `HOST_RUNS` pairs of (none, sync-ipi) WorkerHost runs. */
async function hostRow(name: string, shape: Shape, noneShape: Shape): Promise<HostRow> {
  const syncScenario = buildScenario(shape);
  const noneScenario = buildScenario(noneShape);
  const none: number[] = [];
  const sync: HostResult[] = [];
  const startupMs: number[] = [];
  for (let i = 0; i < HOST_RUNS; i++) {
    const n = await hostRun(noneScenario, noneShape, 'none');
    const y = await hostRun(syncScenario, shape, 'sync-ipi');
    none.push(n.msPerRound);
    sync.push(y);
    startupMs.push(n.startupMs, y.startupMs);
  }
  const base = median(none);
  return {
    name,
    shape,
    noneShape,
    perFlush: sync.map((y) => (y.msPerRound - base) * 1000),
    noneRound: base * 1000,
    coldRound: sync.map((y) => y.coldMsPerRound * 1000),
    startupMs,
  };
}

// ---- where the time goes: one thread, no waiting ----------------------------------------------

/** Median ns per round of each part (each includes one `performance.now()` read). */
interface Lockstep {
  /** CPU 0's flush step: the local invlpg, then (sync-ipi) posting the request. */
  readonly flush: number;
  /** The target's interrupt point (`Shootdown.poll`): servicing the request under sync-ipi. */
  readonly service: number;
  /** CPU 0's resuming step under sync-ipi (poll, the ack check, `complete`); nothing under none. */
  readonly resume: number;
  /** The target's next step: a TLB-hit load on its own page (the flush evicts nothing of it). */
  readonly targetStep: number;
}

/**
 * CPUs 0 and 1 of the busy 1-target program stepped on this thread in the order a shootdown
 * takes: CPU 0's update_flags and flush (it blocks), the target's poll (the start of its next
 * step, where it services the request), CPU 0's resuming step, then the target's load.
 */
function lockstep(protocol: string, rounds: number): Lockstep {
  const shape = busy(1, 2000, rounds);
  const m = Machine.fromScenario(buildScenario(shape), { protocol, trace: false });
  const [c0, c1] = [m.cpus[0]!, m.cpus[1]!];
  const parts = {
    flush: [] as number[],
    service: [] as number[],
    resume: [] as number[],
    targetStep: [] as number[],
  };
  let now = 0;
  for (let r = 0; r < totalRounds(shape); r++) {
    c0.now = now++;
    c0.step();
    const t0 = performance.now();
    c0.now = now++;
    const blocked = c0.step() === StepResult.Blocked;
    const t1 = performance.now();
    m.shootdown.poll(c1, false, Atomics.load(m.shootdown.wake, m.shootdown.wakeIndex(1)));
    const t2 = performance.now();
    if (blocked) {
      c0.now = now++;
      if (c0.step() !== StepResult.Ran) throw new Error('lockstep: the flush did not complete');
    }
    const t3 = performance.now();
    if (c1.pc === shape.busyLoads) c1.pc = 0;
    c1.now = now++;
    c1.step();
    const t4 = performance.now();
    if (r >= shape.warm) {
      parts.flush.push((t1 - t0) * 1e6);
      parts.service.push((t2 - t1) * 1e6);
      parts.resume.push((t3 - t2) * 1e6);
      parts.targetStep.push((t4 - t3) * 1e6);
    }
  }
  checkMailbox(m, protocol, totalRounds(shape), 'lockstep');
  return {
    flush: median(parts.flush),
    service: median(parts.service),
    resume: median(parts.resume),
    targetStep: median(parts.targetStep),
  };
}

/** ns per call of a few primitives on the hot path of a shootdown (median of RUNS runs). */
function primitives(): { name: string; ns: number }[] {
  const w = new Int32Array(new SharedArrayBuffer(64));
  const n = 1_000_000;
  let sink = 0;
  const time = (body: () => void) => {
    body();
    const xs: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now();
      body();
      xs.push(((performance.now() - t0) * 1e6) / n);
    }
    return median(xs);
  };
  const rows = [
    {
      name: 'Atomics.notify, nobody waiting (now called only for a CPU whose host sleeps)',
      ns: time(() => {
        for (let i = 0; i < n; i++) sink += Atomics.notify(w, 3);
      }),
    },
    {
      name: 'performance.now() (2 per blocked episode, now only once its spin ran out)',
      ns: time(() => {
        for (let i = 0; i < n; i++) sink += performance.now();
      }),
    },
    {
      name: 'Atomics.store (5 published wait words, now only once a spin ran out)',
      ns: time(() => {
        for (let i = 0; i < n; i++) Atomics.store(w, i & 7, i);
      }),
    },
  ];
  if (sink === 0.5) console.log(sink);
  return rows;
}

// ---- output -----------------------------------------------------------------------------------

function us(x: number): string {
  return Math.abs(x) >= 1000 ? x.toFixed(0) : Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(2);
}

const mean = (xs: readonly number[]) => xs.reduce((a, x) => a + x, 0) / xs.length;

const range = (xs: readonly number[]) => `${us(Math.min(...xs))}-${us(Math.max(...xs))}`;

const plural = (t: number) => `${t} target${t > 1 ? 's' : ''}`;

function latencyCells(r: LatencyRow): string[] {
  return [
    r.name,
    `${r.shape.timed}x${r.runs}`,
    us(median(r.latency)),
    us(percentile(r.latency, 99)),
    (percentile(r.latency, 99) / median(r.latency)).toFixed(1),
    us(mean(r.latency)),
    range(r.runMedians),
    us(r.noneMedian),
    r.shape.load === 'idle' ? `${(100 * r.sleptShare).toFixed(0)}%` : '',
    r.note,
  ];
}

const LATENCY_HEAD = [
  'row',
  'rounds x runs',
  'median µs',
  'p99 µs',
  'p99/med',
  'mean µs',
  'run medians µs',
  'none round µs',
  'slept',
  'note',
];

// ---- main -------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const t0 = performance.now();
  const progress = (what: string) =>
    process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1)} s] ${what}\n`);
  console.log(machineLine());
  console.log(
    `bench/shootdown-latency.ts${QUICK ? ' --quick' : ''}: wall clock throughout; ${RUNS} timed runs after 1 warm-up run per row unless named; ${CORES} cores, so 3+ CPUs are oversubscribed (and then do not spin)`,
  );
  const pool = new Pool(THREADS);
  try {
    console.log(await calibrate());
    progress('calibrated');

    // 1. Raw floors between two worker threads.
    const wait = await floor(pool, 'wait', 'floor: Atomics.wait/notify round trip');
    const spin = await floor(pool, 'spin', 'floor: spin on Atomics.load round trip');
    const wake = await floor(pool, 'wake', 'floor: notify a sleeper, spin for the reply');
    const floors = [wait, spin, wake];
    progress('floors');

    // The replica threads' JIT warms up on a few untimed runs of both kinds of program.
    for (const shape of [busy(1, 0, 3000), idle(2, 0, 300)]) {
      const sc = buildScenario(shape);
      for (let i = 0; i < 3; i++) {
        await replicaRun(pool, sc, shape, 'none', DEFAULT_OPTIONS);
        await replicaRun(pool, sc, shape, 'sync-ipi', DEFAULT_OPTIONS);
      }
    }
    progress('replica warm-up');

    // 2-3. The simulator (replica driver): busy and idle targets, 1-8 of them. Busy targets on
    // more CPUs than cores cost a scheduler time slice per flush, so those rows are short.
    const rows: LatencyRow[] = [];
    const targetCounts = FOCUS ? [1] : [1, 2, 4, 8];
    for (const t of targetCounts) {
      const fits = t + 1 <= CORES;
      const timed = fits ? (QUICK ? 2000 : 5000) : t <= 2 ? 300 : t <= 4 ? 100 : 50;
      rows.push(
        await replicaRow(
          pool,
          `busy, ${plural(t)} (${t + 1} CPUs)`,
          busy(t, fits ? 200 : 10, timed),
          DEFAULT_OPTIONS,
          fits ? RUNS : Math.min(RUNS, 3),
          fits ? '' : `${Math.min(RUNS, 3)} runs; p99 of ${timed * Math.min(RUNS, 3)} rounds`,
          // The goal's row: a spin-floor run right before each of its sync-ipi runs.
          t === 1 ? 'spin' : undefined,
        ),
      );
      progress(rows.at(-1)!.name);
    }
    rows.push(
      await replicaRow(
        pool,
        'busy on the flushed page, 1 target (2 CPUs)',
        busy(1, 200, QUICK ? 2000 : 5000, BUSY_LOADS, PAGE),
        DEFAULT_OPTIONS,
        RUNS,
        'the target loads the page CPU 0 flushes: it re-walks after every flush',
      ),
    );
    progress(rows.at(-1)!.name);
    for (const t of targetCounts) {
      rows.push(
        await replicaRow(
          pool,
          `idle, ${plural(t)} (${t + 1} CPUs)`,
          idle(t, 100, QUICK ? 800 : 2000),
        ),
      );
      progress(rows.at(-1)!.name);
    }
    const row = (name: string) => rows.find((r) => r.name.startsWith(name))!;
    const busy1 = row('busy, 1 target');
    const idle1 = row('idle, 1 target');

    printTable(
      'Table 1. Raw floors (µs per round trip) and the 1-page sync-ipi initiator latency (µs per flush = sync-ipi round - median none round); wall clock; replica driver, p99 across rounds pooled over runs',
      LATENCY_HEAD,
      [
        ...floors.map((f) => [
          f.name,
          `${f.samples.length / RUNS}x${RUNS}`,
          us(median(f.samples)),
          us(percentile(f.samples, 99)),
          (percentile(f.samples, 99) / median(f.samples)).toFixed(1),
          us(mean(f.samples)),
          range(f.runMedians),
          '',
          '',
          f.mode === 'wake'
            ? 'one sleeper woken, the other spins (an idle target, a spinning initiator)'
            : f.mode === 'wait'
              ? `${((100 * f.samples.filter((x) => x < FAST_WAKE_US).length) / f.samples.length).toFixed(0)}% < ${FAST_WAKE_US} µs: both threads on one core (no cross-core wake)`
              : '',
        ]),
        ...rows.map(latencyCells),
      ],
    );

    // The same through the real WorkerHost.
    const hostRows: HostRow[] = [];
    if (!FOCUS) {
      hostRows.push(
        await hostRow(
          'busy, 1 target (2 CPUs)',
          { ...busy(1, 0, HOST_BUSY_ROUNDS, HOST_BUSY_LOADS), counter: true },
          // Under none the target receives nothing and has a core of its own: one load will do.
          { ...busy(1, 0, HOST_NONE_ROUNDS, 1), counter: true },
        ),
      );
      progress('WorkerHost busy');
      const idleHost = (t: number) => ({
        ...idle(t, 0, HOST_IDLE_ROUNDS, GAP_LOADS),
        counter: true,
      });
      hostRows.push(await hostRow('idle, 1 target (2 CPUs)', idleHost(1), idleHost(1)));
      progress('WorkerHost idle 1');
      printTable(
        `Table 2. Cross-check through the real WorkerHost (wall clock, µs per flush = CPU 0's mean round under sync-ipi - the median under none; rounds timed by a counter CPU 0 stores to RAM, sampled by the main thread every 1 ms, over rounds ${WINDOW[0] * 100}-${WINDOW[1] * 100}% of the program; ${HOST_RUNS} runs per protocol, fresh threads each)`,
        [
          'row',
          'rounds sync/none',
          'median µs',
          'min-max µs',
          'none round µs',
          `first ${COLD * 100}% µs/round`,
          'replica median/mean µs',
          'note',
        ],
        hostRows.map((h) => [
          h.name,
          `${totalRounds(h.shape)}/${totalRounds(h.noneShape)}`,
          us(median(h.perFlush)),
          range(h.perFlush),
          us(h.noneRound),
          us(median(h.coldRound)),
          `${us(median(row(h.name).latency))}/${us(mean(row(h.name).latency))}`,
          `${h.shape.load === 'idle' ? `${GAP_LOADS} gap loads per round; ` : `target: ${h.shape.busyLoads} loads; `}thread startup ${range(h.startupMs).replace(/\.\d+/g, '')} ms, untimed`,
        ]),
      );
    }

    // 4. Goals.
    const spinRtt = median(spin.samples);
    // The idle goal's floor: the wait/notify round trips that crossed cores. The floor's two
    // threads sleep in turn, so the scheduler may run both on one core (about 4 µs a round trip,
    // no cross-core wake-up); a simulated idle target never can, since its initiator spins on the
    // other core meanwhile. On a loaded machine most floor samples can be of that kind.
    const crossCore = wait.samples.filter((x) => x >= FAST_WAKE_US);
    const waitRtt = crossCore.length >= wait.samples.length / 10 ? median(crossCore) : Number.NaN;
    const wakeRtt = median(wake.samples);
    const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met');
    const vsFloor = (what: string, x: number, f: number, limit: number, note: string) =>
      Number.isNaN(f)
        ? [
            what,
            us(x),
            'n/a',
            'n/a',
            `<= ${limit}x`,
            'no floor',
            `fewer than 10% of the floor's round trips crossed cores; ${note}`,
          ]
        : [
            what,
            us(x),
            us(f),
            `${(x / f).toFixed(2)}x`,
            `<= ${limit}x`,
            verdict(x / f <= limit),
            note,
          ];
    const tail = (r: LatencyRow) => {
      const ratio = percentile(r.latency, 99) / median(r.latency);
      return [
        `${r.name}: p99 / median (replica, per round)`,
        us(percentile(r.latency, 99)),
        us(median(r.latency)),
        `${ratio.toFixed(1)}x`,
        `< ${GOAL_P99_OVER_MEDIAN}x`,
        verdict(ratio < GOAL_P99_OVER_MEDIAN),
        `the median is ${(median(r.latency) / spinRtt).toFixed(0)}x the spin round trip`,
      ];
    };
    const waitNote = `against the wait/notify round trips >= ${FAST_WAKE_US} µs (cross-core: ${((100 * crossCore.length) / wait.samples.length).toFixed(0)}% of them; all: median ${us(median(wait.samples))} µs, run medians ${range(wait.runMedians)} µs); vs the one-wake floor (${us(wakeRtt)} µs): `;
    printTable(
      'Table 3. Goals (wall clock, medians unless named)',
      ['goal', 'measured µs', 'against µs', 'ratio', 'goal', 'verdict', 'note'],
      [
        vsFloor(
          'busy 1 target / spin round trip (replica)',
          median(busy1.latency),
          median(busy1.floorMedians),
          GOAL_BUSY_VS_SPIN,
          `against the spin floor run right before each sync-ipi run (run medians ${range(busy1.floorMedians)} µs); per-run ratios ${range(busy1.runMedians.map((x, i) => x / busy1.floorMedians[i]!))}; vs Table 1's floor ${(median(busy1.latency) / spinRtt).toFixed(2)}x; mean ${us(mean(busy1.latency))} µs; see Table 4`,
        ),
        ...(FOCUS
          ? []
          : [
              vsFloor(
                'busy 1 target / spin round trip (WorkerHost)',
                median(hostRows[0]!.perFlush),
                spinRtt,
                GOAL_BUSY_VS_SPIN,
                'a mean, not a median',
              ),
            ]),
        vsFloor(
          'idle 1 target / wait-notify round trip (replica)',
          median(idle1.latency),
          waitRtt,
          GOAL_IDLE_VS_WAIT,
          `${waitNote}${(median(idle1.latency) / wakeRtt).toFixed(2)}x`,
        ),
        ...(FOCUS
          ? []
          : [
              vsFloor(
                'idle 1 target / wait-notify round trip (WorkerHost)',
                median(hostRows[1]!.perFlush),
                waitRtt,
                GOAL_IDLE_VS_WAIT,
                `a mean; ${waitNote}${(median(hostRows[1]!.perFlush) / wakeRtt).toFixed(2)}x`,
              ),
              tail(row('idle, 8 targets')),
              tail(row('busy, 8 targets')),
            ]),
      ],
    );

    // Where the time goes.
    const lockRounds = QUICK ? 20_000 : 50_000;
    // In a pool thread: on the main thread (which built every machine above but stepped none) the
    // same steps measured 2-3 times slower.
    const lock = (protocol: string) =>
      pool.run<Lockstep>(0, { kind: 'lockstep', protocol, rounds: lockRounds });
    await lock('none');
    await lock('sync-ipi');
    const ls = { none: await lock('none'), sync: await lock('sync-ipi') };
    const prims = primitives();
    const part = (k: keyof Lockstep) => ls.sync[k] - ls.none[k];
    const critical =
      part('flush') + part('service') + part('resume') + spinRtt * 1000 + ls.none.targetStep / 2;
    const measured = median(busy1.latency) * 1000;
    const partRow = (name: string, k: keyof Lockstep, note: string) => [
      name,
      part(k).toFixed(0),
      `${ls.sync[k].toFixed(0)} - ${ls.none[k].toFixed(0)}; ${note}`,
    ];
    printTable(
      'Table 4. Where a busy-target flush goes (wall clock, ns): the protocol on one thread (CPUs 0 and 1 stepped in lockstep, no waiting; median per round, sync-ipi minus none), primitives per call, and the critical path they add up to',
      ['part', 'ns', 'note'],
      [
        partRow(
          "initiator's flush step: post the request",
          'flush',
          'Shootdown.flush/sendRound/post',
        ),
        partRow(
          "target's interrupt point: service it",
          'service',
          'Shootdown.poll/service, the charge, the ack, evictRemote',
        ),
        partRow("initiator's resuming step", 'resume', 'poll, waiting, complete'),
        ['spin round trip (the two cache-line handoffs)', (spinRtt * 1000).toFixed(0), 'Table 1'],
        [
          'half a target step (the IPI waits for the step in progress)',
          (ls.none.targetStep / 2).toFixed(0),
          `a TLB-hit load step: ${ls.none.targetStep.toFixed(0)} (none), ${ls.sync.targetStep.toFixed(0)} (sync-ipi: the page it loads is not the flushed one)`,
        ],
        [
          'critical path, sum of the above',
          critical.toFixed(0),
          `measured busy 1-target flush: median ${measured.toFixed(0)}, mean ${(mean(busy1.latency) * 1000).toFixed(0)}; goal <= ${(GOAL_BUSY_VS_SPIN * median(busy1.floorMedians) * 1000).toFixed(0)} (2x the spin floor run beside it)`,
        ],
        [
          'measured - sum: the further cache-line handoffs',
          (measured - critical).toFixed(0),
          measured > 10 * critical
            ? 'none: the two threads shared a core in this run (see the run medians in Table 1)'
            : measured < critical
              ? 'none: the parts above overlap on two cores, or were slowed in this run (see their sync - none)'
              : `about ${((2 * (measured - critical)) / (spinRtt * 1000)).toFixed(1)} handoffs of half a spin round trip: lines the round trip moves besides the two the spin floor moves`,
        ],
        ...prims.map((p) => [p.name, p.ns.toFixed(1), 'ns per call']),
      ],
    );
    progress('lockstep');

    // The WorkerHost's options (replica driver).
    if (!FOCUS) {
      const sweep: LatencyRow[] = [];
      const busyShape = busy(1, 200, QUICK ? 1000 : 2000);
      const idleShape = (t: number) => idle(t, 100, QUICK ? 400 : 1000);
      const sweepRuns = Math.min(RUNS, 3);
      // The initiator waits for acks: its spin is ackSpinIterations (a target waiting at the
      // end barrier spins spinIterations, which these rows do not reach).
      const variant = (name: string, shape: Shape, option: Partial<HostOptions>) => ({
        name,
        shape,
        option,
      });
      const variants = [
        ...[0, 200, 2000, 50_000].map((n) =>
          variant(`busy, 1 target, ackSpinIterations ${n}`, busyShape, { ackSpinIterations: n }),
        ),
        ...[0, 2000, 5000, 50_000].map((n) =>
          variant(`idle, 1 target, ackSpinIterations ${n}`, idleShape(1), { ackSpinIterations: n }),
        ),
        ...[1, 1000].map((ms) =>
          variant(`idle, 8 targets, waitSliceMs ${ms}`, idleShape(8), { waitSliceMs: ms }),
        ),
      ];
      for (const v of variants) {
        const options = { ...DEFAULT_OPTIONS, ...v.option };
        sweep.push(await replicaRow(pool, v.name, v.shape, options, sweepRuns));
      }
      progress('sweep');
      printTable(
        `Table 5. WorkerHost options (replica driver, ${sweepRuns} runs each; defaults ackSpinIterations ${DEFAULT_OPTIONS.ackSpinIterations}, spinIterations ${DEFAULT_OPTIONS.spinIterations} and waitSliceMs ${DEFAULT_OPTIONS.waitSliceMs} are Table 1); wall clock`,
        LATENCY_HEAD,
        sweep.map(latencyCells),
      );
    }
  } finally {
    await pool.close();
  }
  console.log(`\ntotal ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

// ---- entry ------------------------------------------------------------------------------------

if (!isMainThread) {
  if (workerData !== 'shootdown-latency') throw new Error('unexpected worker data');
  parentPort!.on('message', (job: Job) => {
    try {
      const value =
        job.kind === 'cpu'
          ? runReplicaCpu(job)
          : job.kind === 'lockstep'
            ? lockstep(job.protocol, job.rounds)
            : runPing(job);
      parentPort!.postMessage({ ok: true, value });
    } catch (e) {
      parentPort!.postMessage({ ok: false, error: e instanceof Error ? e.message : String(e) });
    }
  });
} else {
  await main();
}
