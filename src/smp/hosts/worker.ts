/**
 * The worker-thread host: one OS thread per simulated CPU, each running the very same
 * `Cpu.step()` the deterministic host runs, over the same shared buffers (DESIGN decisions 1 and
 * 2, STYLE D). piscina owns the threads (one long-running task per CPU); comlink over one
 * MessagePort per CPU carries the control plane (ready, start, pause/resume, inspect, stop); the
 * data plane (RAM, page tables, barriers, trace rings, step stamps) is shared memory only.
 *
 * The main thread never waits: it drains the trace rings on a timer and reacts to task results.
 * Each trace record is stamped with a global step number every CPU takes with one `Atomics.add`
 * on a shared counter before each `step()`, so the merged trace is ordered by (stamp, cpu) exactly
 * as the deterministic host orders its records by step.
 */

import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import * as Comlink from 'comlink';
import { Piscina } from 'piscina';
import type { InstructionJson } from '../../scenarios/scenario.ts';
import type { TraceRecord } from '../../trace/ring.ts';
import {
  type CpuControl,
  type CpuEnd,
  type CpuOutcome,
  type CpuSnapshot,
  type CpuTask,
  type InspectOptions,
  RunState,
  type StepReport,
} from '../control.ts';
import {
  ATTENTION,
  CALLS,
  controlWord,
  PAUSE,
  STATE,
  STEP_COUNTER,
  STOP,
  WAIT_BUFFER,
  WAIT_INDEX,
  WAIT_PC,
} from '../layout.ts';
import { checkCpuIndex, type Machine } from '../machine.ts';
import { type SharedMachine, shareMachine } from '../share.ts';
import type { Deadlock } from './deterministic.ts';

/** The worker module piscina loads in every CPU thread. */
const WORKER_FILE = fileURLToPath(new URL('../../../workers/cpu-worker.ts', import.meta.url));

/**
 * Node 20 cannot import a `.ts` worker by itself. piscina's own worker entry is JavaScript and
 * loads ours with a dynamic `import()`, which the tsx hooks named in `--import` do reach (only a
 * Worker's *entry* module misses them on Node 20: nodejs/node#47747). The loader is named by URL,
 * so the CLI works from any directory.
 */
const TSX_LOADER = import.meta.resolve('tsx');

/** Defaults of `WorkerHostOptions`. */
export const WORKER_HOST_DEFAULTS = Object.freeze({
  timeoutMs: 5000,
  spinIterations: 2000,
  ackSpinIterations: 12_000,
  waitSliceMs: 50,
  drainIntervalMs: 1,
  controlTimeoutMs: 5000,
  startupTimeoutMs: 60_000,
});

/** Options of `runOnWorkers` and `WorkerHost`. */
export interface WorkerHostOptions {
  /** A CPU that waits longer than this (milliseconds, time paused excluded) is deadlocked. */
  readonly timeoutMs?: number;
  /**
   * `Atomics.load` polls of the awaited word before `Atomics.wait`, at most. Applied only when the
   * CPUs do not outnumber `os.availableParallelism()`; otherwise 0, since a spinner then steals
   * the core of the CPU it waits for (BASELINES: 2-6 ms per hop when oversubscribed). A CPU whose
   * spins run out (other processes hold the cores) halves its next spin, down to 1/16 of this,
   * and doubles it back after each spin that succeeds (workers/cpu-loop.ts).
   */
  readonly spinIterations?: number;
  /**
   * The same for a CPU waiting for acknowledgements of its IPIs, with a budget of its own: about
   * 100 µs here (8 ns a poll), to outlast a sleeping target's wake-up (40-60 µs on this VM), so
   * that an idle-target shootdown costs the initiator one wake-up, not two (Linux's initiator
   * never sleeps: it spins in csd_lock_wait). bench/shootdown-latency.ts, Table 5.
   */
  readonly ackSpinIterations?: number;
  /** The longest single `Atomics.wait` (bounds how late a stop is seen if its wake-up is lost). */
  readonly waitSliceMs?: number;
  /** How often the main thread drains the trace rings. */
  readonly drainIntervalMs?: number;
  /** A control call (inspect, pause, ...) unanswered after this long rejects. */
  readonly controlTimeoutMs?: number;
  /** Threads that are not all built after this long fail the run. */
  readonly startupTimeoutMs?: number;
  /** Whether CPUs write trace records (default true; false matches `Machine` built with `trace: false`). */
  readonly trace?: boolean;
  /**
   * Park every CPU before its first instruction (default false): the host is `paused` once
   * `whenStarted()` resolves, ready for `step()`, `inspect()` and `resume()`.
   */
  readonly startPaused?: boolean;
  /** Aborting it stops the run (as `stop()` does): for Ctrl-C. */
  readonly signal?: AbortSignal;
}

/** One CPU's part of a worker run. */
export interface WorkerCpuRun {
  readonly cpu: number;
  readonly end: CpuEnd;
  /** Its final state, sent by its worker (the main thread's `machine.cpus` did not run). */
  readonly state: CpuSnapshot;
  /** Wall-clock milliseconds from `start()` to the end of its loop. */
  readonly wallMs: number;
  /**
   * Of which waiting in `Atomics.wait` past the spin phase (the spin phase, at most
   * `spinIterations` polls per wait, is not timed: its clock reads would sit on every IPI's path).
   */
  readonly blockedMs: number;
  /** `step()` calls it made. */
  readonly steps: number;
  /**
   * Waits that ended only when their `waitSliceMs` slice ran out, the awaited word having
   * changed meanwhile: wake-ups whose notify never came. 0 in a correct run.
   */
  readonly missedWakeups: number;
}

/**
 * What a worker run did. The fields shared with `DeterministicRun` mean the same, so
 * `buildRunReport(machine, run, …)` accepts it once `applyFinalState` has copied the CPUs back.
 */
export interface WorkerRun {
  /** The CPU that took each global step stamp. A plausible interleaving, not a replayable one:
   * stamps are taken before each step, and steps of different CPUs overlap in real time. Empty
   * when the run wrote no trace (`stamp: 'cpu-step'`). */
  readonly schedule: readonly number[];
  /** Step stamps taken (every `step()` call of every CPU). */
  readonly steps: number;
  /** Every trace record, ordered by (stamp, cpu, sequence). */
  readonly records: readonly TraceRecord[];
  /** Records lost to ring overflow (the main thread drains every `drainIntervalMs`). */
  readonly lost: number;
  /** Set when a wait outlived `timeoutMs`: the CPUs blocked then, and what each waited for. */
  readonly deadlock?: Deadlock;
  /** Always false: straight-line programs end, and `timeoutMs` bounds every wait. */
  readonly truncated: false;
  /** True when `stop()` (or the abort signal) ended the run early. */
  readonly stopped: boolean;
  readonly cpus: readonly WorkerCpuRun[];
  /** Wall-clock milliseconds from the start line (all CPUs built) to the last CPU's end. */
  readonly wallMs: number;
  /** Wall-clock milliseconds spent starting the threads and building the CPUs. */
  readonly startupMs: number;
  /** The spin count the CPUs used at barriers (0 when oversubscribed). */
  readonly spinIterations: number;
  /** The spin count the CPUs used waiting for acks (0 when oversubscribed). */
  readonly ackSpinIterations: number;
  /**
   * What the step stamps are: `global-step`, one shared counter, `Atomics.add` before every
   * `step()`; `cpu-step` without a trace (`trace: false`): each CPU counts its own steps, so fault
   * and Mapper-error reports carry that CPU's step number and `schedule` is empty.
   */
  readonly stamp: 'global-step' | 'cpu-step';
}

/** A CPU worker threw (or its thread died): the run is over and every thread is gone. */
export class WorkerHostError extends Error {
  override readonly name = 'WorkerHostError';
  constructor(
    /** The CPU whose worker failed, or -1 when the pool failed outside any task. */
    readonly cpu: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Where a host is in its single run. */
export type WorkerHostPhase =
  | 'idle'
  | 'starting'
  | 'running'
  | 'paused'
  | 'stopping'
  | 'done'
  | 'failed';

/** Machines that have run on a host: their shared RAM is no longer the scenario's initial state. */
const USED = new WeakSet<Machine>();

/**
 * Runs every CPU of `machine` on its own worker thread until all halt, a wait outlives
 * `timeoutMs` (a deadlock, reported in the result), or the signal aborts. Rejects with a
 * `WorkerHostError` naming the CPU when a worker throws; every thread has exited by then.
 */
export function runOnWorkers(
  machine: Machine,
  options: WorkerHostOptions = {},
): Promise<WorkerRun> {
  return new WorkerHost(machine, options).start();
}

/**
 * A handle on one worker run: `start()` once, then `pause()`, `resume()`, `inspect()` and
 * `stop()` (the CLI's Ctrl-C) while it runs.
 */
export class WorkerHost {
  private readonly opts: Required<Omit<WorkerHostOptions, 'signal'>>;
  private readonly signal: AbortSignal | undefined;
  private phaseNow: WorkerHostPhase = 'idle';
  private pool: Piscina | undefined;
  private readonly live = new Set<Worker>();
  private readonly seen = new WeakSet<Worker>();
  private remotes: Comlink.Remote<CpuControl>[] = [];
  private ports: MessagePort[] = [];
  private control = new Int32Array(new SharedArrayBuffer(0));
  private waitViews: Int32Array<SharedArrayBuffer>[] = [];
  private outcomes: (CpuOutcome | undefined)[] = [];
  private deadlock: Deadlock | undefined;
  private onStarted: () => void = () => {};
  private onNotStarted: (e: Error) => void = () => {};
  private readonly startedPromise = new Promise<void>((resolve, reject) => {
    this.onStarted = resolve;
    this.onNotStarted = reject;
  });
  /** Settles `startedPromise` for a run that ended (a no-op once it resolved). */
  private settleStarted(error: unknown): void {
    this.onNotStarted(
      error instanceof Error ? error : new Error('the run ended before every CPU started'),
    );
  }
  private stopRequested = false;
  private failure: WorkerHostError | undefined;
  private onFailure: (e: WorkerHostError) => void = () => {};
  private finished: Promise<unknown> = Promise.resolve();

  constructor(
    readonly machine: Machine,
    options: WorkerHostOptions = {},
  ) {
    this.opts = {
      timeoutMs: options.timeoutMs ?? WORKER_HOST_DEFAULTS.timeoutMs,
      spinIterations: options.spinIterations ?? WORKER_HOST_DEFAULTS.spinIterations,
      ackSpinIterations: options.ackSpinIterations ?? WORKER_HOST_DEFAULTS.ackSpinIterations,
      waitSliceMs: options.waitSliceMs ?? WORKER_HOST_DEFAULTS.waitSliceMs,
      drainIntervalMs: options.drainIntervalMs ?? WORKER_HOST_DEFAULTS.drainIntervalMs,
      controlTimeoutMs: options.controlTimeoutMs ?? WORKER_HOST_DEFAULTS.controlTimeoutMs,
      startupTimeoutMs: options.startupTimeoutMs ?? WORKER_HOST_DEFAULTS.startupTimeoutMs,
      trace: options.trace ?? true,
      startPaused: options.startPaused ?? false,
    };
    // Nobody need await whenStarted(): a run that ends before starting rejects it unobserved.
    this.startedPromise.catch(() => {});
    for (const key of ['timeoutMs', 'waitSliceMs', 'drainIntervalMs'] as const) {
      if (!(this.opts[key] > 0)) throw new RangeError(`${key} ${this.opts[key]} must be positive`);
    }
    for (const key of ['spinIterations', 'ackSpinIterations'] as const) {
      if (!Number.isInteger(this.opts[key]) || this.opts[key] < 0) {
        throw new RangeError(`${key} ${this.opts[key]} must be a non-negative integer`);
      }
    }
    this.signal = options.signal;
  }

  /** Where the run is. */
  get phase(): WorkerHostPhase {
    return this.phaseNow;
  }

  /** CPU threads alive right now (0 before `start()` and once the run has settled). */
  get liveThreads(): number {
    return this.live.size;
  }

  /**
   * Starts the run; resolves when every CPU has ended and every thread has exited.
   *
   * @throws Error at once when called a second time, or when `machine` already ran (on any host).
   */
  start(): Promise<WorkerRun> {
    if (this.phaseNow !== 'idle') {
      throw new Error(
        `WorkerHost.start() called twice (the host is ${this.phaseNow}): a host runs its machine once; build a new Machine and WorkerHost for another run`,
      );
    }
    if (USED.has(this.machine)) {
      throw new Error(
        'this machine already ran on workers: its shared RAM is no longer the initial state; build a new Machine',
      );
    }
    const shared = shareMachine(this.machine, { trace: this.opts.trace });
    USED.add(this.machine);
    this.phaseNow = 'starting';
    const done = this.run(shared);
    this.finished = done.catch(() => {});
    return done;
  }

  /**
   * Stops every CPU at its next step boundary (a waiting CPU is woken) and resolves once every
   * thread has exited; the run then resolves with `stopped: true`. CPUs that do not stop within
   * `controlTimeoutMs` are terminated. Does nothing after the run ended.
   */
  async stop(): Promise<void> {
    if (this.phaseNow === 'idle') {
      this.phaseNow = 'done';
      return;
    }
    if (this.phaseNow === 'done' || this.phaseNow === 'failed') return;
    this.requestStop();
    const grace = setTimeout(() => {
      void this.pool?.destroy();
    }, this.opts.controlTimeoutMs);
    await this.finished;
    clearTimeout(grace);
  }

  /**
   * Resolves once every CPU is built and started (the host is then `running`, or `paused` with
   * `startPaused`); rejects if the run failed or was stopped first.
   */
  whenStarted(): Promise<void> {
    return this.startedPromise;
  }

  /**
   * Single-steps CPU `cpu` of a paused host: up to `count` (default 1) of its steps, each servicing
   * the IPIs posted to it at the instruction boundary, as in a run. Stepping never waits: it stops
   * early when a step blocks (an IPI ack, a barrier, a sync point) or the CPU halts, and a blocked
   * CPU whose word has not changed does not step (`stopped: 'waiting'`): the CPUs it waits for are
   * paused too. Other CPUs stay parked; `resume()` goes on from there.
   *
   * @throws Error unless the host is paused; RangeError for a CPU or count out of range, or a CPU
   * that has already ended.
   */
  async step(cpu: number, count = 1): Promise<StepReport> {
    this.expectPhase('step', ['paused']);
    this.checkCpu(cpu);
    if (!Number.isInteger(count) || count < 1) {
      throw new RangeError(`step count ${count} must be a positive integer`);
    }
    const ended = this.outcomes[cpu];
    if (ended !== undefined) {
      throw new RangeError(`cpu ${cpu} has ended (${ended.end}): there is nothing to step`);
    }
    return this.call(cpu, (r) => r.step(count));
  }

  /**
   * Loads `program` (the file's form, as a scenario's `cpus[i].program`) into CPU `cpu` before its
   * first step: before `start()`, or while paused with `startPaused` before the CPU was stepped.
   * The CPU's thread validates and loads it, then the main thread's machine follows
   * (`Machine.loadProgram`: the reports show the loaded program). The program must name the same
   * barriers in the same order as the one it replaces.
   *
   * @throws ScenarioError for an invalid instruction (the message names the field); Error in any
   * other phase, for a CPU that has stepped, or for other barriers.
   */
  async load(cpu: number, program: readonly InstructionJson[]): Promise<void> {
    this.expectPhase('load', ['idle', 'paused']);
    if (this.phaseNow === 'paused') {
      this.checkCpu(cpu);
      if (this.outcomes[cpu] !== undefined)
        throw new Error(`cpu ${cpu} has ended: nothing to load`);
      // The worker first: it alone knows whether its CPU has stepped. Its rules are the main
      // thread's, over the same scenario, so the main thread's load below cannot fail.
      await this.call(cpu, (r) => r.load(program));
    }
    this.machine.loadProgram(cpu, program);
  }

  /** Parks every running CPU at its next step boundary; resolves with their states once parked. */
  async pause(): Promise<CpuSnapshot[]> {
    this.expectPhase('pause', ['running']);
    this.phaseNow = 'paused';
    return Promise.all(
      this.cpuIds().map(async (cpu) => {
        const ended = this.outcomes[cpu];
        if (ended !== undefined) return ended.final;
        Atomics.store(this.control, controlWord(cpu, PAUSE), 1);
        return this.call(cpu, (r) => r.pause());
      }),
    );
  }

  /** Unparks the CPUs `pause()` parked. */
  async resume(): Promise<void> {
    this.expectPhase('resume', ['paused']);
    this.phaseNow = 'running';
    await Promise.all(
      this.cpuIds().map(async (cpu) => {
        Atomics.store(this.control, controlWord(cpu, PAUSE), 0);
        if (this.outcomes[cpu] === undefined) await this.call(cpu, (r) => r.resume());
      }),
    );
  }

  /** @throws RangeError unless `cpu` is a CPU of this machine. */
  private checkCpu(cpu: number): void {
    checkCpuIndex(cpu, this.machine.cpus.length);
  }

  /**
   * CPU `cpu`'s registers, counters and (with `{ tlb: true }`) TLB entries, taken between two of
   * its steps. After the CPU ended, its final state (which includes the TLB).
   */
  async inspect(cpu: number, options: InspectOptions = {}): Promise<CpuSnapshot> {
    this.checkCpu(cpu);
    const ended = this.outcomes[cpu];
    if (ended !== undefined) return ended.final;
    this.expectPhase('inspect', ['running', 'paused']);
    return this.call(cpu, (r) => r.inspect(options));
  }

  // ---- the run ---------------------------------------------------------------------------------

  private async run(shared: SharedMachine): Promise<WorkerRun> {
    const t0 = performance.now();
    const machine = this.machine;
    const n = machine.cpus.length;
    this.control = new Int32Array(shared.control.buffer);
    this.waitViews = shared.waitBuffers.map((b) => new Int32Array(b));
    this.outcomes = machine.cpus.map(() => undefined);
    // No spinning when the CPUs outnumber the cores: a spinner steals the awaited CPU's core.
    const spare = n <= availableParallelism();
    const spinIterations = spare ? this.opts.spinIterations : 0;
    const ackSpinIterations = spare ? this.opts.ackSpinIterations : 0;
    const failed = new Promise<never>((_, reject) => {
      this.onFailure = reject;
    });
    failed.catch(() => {});

    const pool = new Piscina({
      filename: WORKER_FILE,
      minThreads: n,
      maxThreads: n,
      concurrentTasksPerWorker: 1,
      idleTimeout: Number.POSITIVE_INFINITY,
      // No Atomics doorbell between tasks: a finished worker keeps its event loop, so it can
      // still answer inspect() until the pool is destroyed.
      atomics: 'disabled',
      execArgv: WORKER_FILE.endsWith('.ts') ? ['--import', TSX_LOADER] : [],
    });
    this.pool = pool;
    this.track(pool);
    pool.on('workerCreate', () => this.track(pool));
    pool.on('error', (e: unknown) =>
      this.fail(
        new WorkerHostError(-1, `a CPU worker failed outside its task: ${describe(e)}`, {
          cause: e,
        }),
      ),
    );
    const onAbort = () => this.requestStop();
    this.signal?.addEventListener('abort', onAbort, { once: true });
    if (this.signal?.aborted === true) this.requestStop();

    const records: TraceRecord[] = [];
    let lost = 0;
    const drain = () => {
      try {
        for (const ring of machine.traces) {
          const d = ring.drain();
          lost += d.lost;
          for (const r of d.records) records.push(r);
        }
      } catch (e) {
        this.fail(
          new WorkerHostError(-1, `draining the trace rings: ${describe(e)}`, { cause: e }),
        );
      }
    };
    let timer: NodeJS.Timeout | undefined;
    let tStart = t0;
    try {
      const tasks = machine.cpus.map((_, cpu) =>
        this.launch(pool, shared, cpu, spinIterations, ackSpinIterations),
      );
      const settled = Promise.all(tasks);
      settled.catch(() => {});

      // The start line: no CPU steps before every CPU is built, so a thread that starts late
      // (64 threads on 2 cores take a while) is not mistaken for a deadlock.
      await race(
        Promise.all(
          this.cpuIds().map((cpu) => this.call(cpu, (r) => r.ready(), this.opts.startupTimeoutMs)),
        ),
        failed,
      );
      tStart = performance.now();
      timer = setInterval(drain, this.opts.drainIntervalMs);
      if (!this.stopRequested) {
        if (this.opts.startPaused) {
          for (const cpu of this.cpuIds()) Atomics.store(this.control, controlWord(cpu, PAUSE), 1);
        }
        this.phaseNow = this.opts.startPaused ? 'paused' : 'running';
        this.onStarted();
        await race(
          Promise.all(this.cpuIds().map((cpu) => this.call(cpu, (r) => r.start()))),
          failed,
        );
      }
      await race(settled, failed);
    } catch (e) {
      const error =
        e instanceof WorkerHostError
          ? e
          : (this.failure ?? new WorkerHostError(-1, `worker host: ${describe(e)}`, { cause: e }));
      this.phaseNow = 'failed';
      this.settleStarted(error);
      clearInterval(timer);
      await this.teardown();
      throw error;
    } finally {
      this.signal?.removeEventListener('abort', onAbort);
    }
    const tEnd = performance.now();
    this.settleStarted(undefined);
    clearInterval(timer);
    drain();
    await this.teardown();
    if (this.failure !== undefined) {
      this.phaseNow = 'failed';
      throw this.failure;
    }
    this.phaseNow = 'done';

    const outcomes = this.outcomes as CpuOutcome[];
    // Without a trace the CPUs take no global stamps (cpu-loop.ts): no interleaving to report.
    const globalStamps = this.opts.trace;
    const steps = globalStamps
      ? Atomics.load(this.control, STEP_COUNTER)
      : outcomes.reduce((n, o) => n + o.steps, 0);
    const schedule = new Array<number>(globalStamps ? steps : 0).fill(-1);
    for (const o of outcomes) for (const s of o.stamps) schedule[s] = o.cpu;
    records.sort((a, b) => a.step - b.step || a.cpu - b.cpu || a.seq - b.seq);
    return {
      schedule,
      steps,
      records,
      lost,
      ...(this.deadlock === undefined ? {} : { deadlock: this.deadlock }),
      truncated: false,
      stopped: this.stopRequested && this.deadlock === undefined,
      cpus: outcomes.map((o) => ({
        cpu: o.cpu,
        end: o.end,
        state: o.final,
        wallMs: o.wallMs,
        blockedMs: o.blockedMs,
        missedWakeups: o.missedWakeups,
        steps: o.steps,
      })),
      wallMs: tEnd - tStart,
      startupMs: tStart - t0,
      spinIterations,
      ackSpinIterations,
      stamp: globalStamps ? 'global-step' : 'cpu-step',
    };
  }

  /** Posts CPU `cpu`'s task; resolves with its outcome, or fails the run. */
  private launch(
    pool: Piscina,
    shared: SharedMachine,
    cpu: number,
    spinIterations: number,
    ackSpinIterations: number,
  ): Promise<CpuOutcome> {
    const { port1, port2 } = new MessageChannel();
    this.ports.push(port1);
    this.remotes[cpu] = Comlink.wrap<CpuControl>(port1 as unknown as Comlink.Endpoint);
    const task: CpuTask = {
      shared,
      cpu,
      port: port2,
      spinIterations,
      ackSpinIterations,
      timeoutMs: this.opts.timeoutMs,
      waitSliceMs: Math.min(this.opts.waitSliceMs, this.opts.timeoutMs),
    };
    return (pool.run(task, { transferList: [port2] }) as Promise<CpuOutcome>).then(
      (outcome) => {
        this.outcomes[cpu] = outcome;
        if (outcome.end === 'deadlock' && this.deadlock === undefined) {
          this.deadlock = this.describeDeadlock(cpu, outcome.deadlock);
          this.requestStop();
        }
        return outcome;
      },
      (e: unknown) => {
        const error = new WorkerHostError(cpu, `cpu ${cpu}: ${describe(e)}`, { cause: e });
        this.fail(error);
        throw error;
      },
    );
  }

  /** The CPUs blocked when CPU `first` reported its deadlock, and what each waits for. */
  private describeDeadlock(first: number, firstWait: string | undefined): Deadlock {
    const b = this.machine.barriers;
    const cpus: number[] = [];
    const waits: string[] = [];
    for (const cpu of this.cpuIds()) {
      const state = Atomics.load(this.control, controlWord(cpu, STATE));
      if (cpu === first) {
        cpus.push(cpu);
        waits.push(firstWait ?? `cpu ${cpu} is blocked`);
        continue;
      }
      const own = this.outcomes[cpu]?.deadlock;
      if (own !== undefined) {
        cpus.push(cpu);
        waits.push(own);
        continue;
      }
      if (state !== RunState.Blocked && state !== RunState.Deadlocked) continue;
      // The deterministic host's wording (describeDeadlock).
      const pc = Atomics.load(this.control, controlWord(cpu, WAIT_PC));
      const id = b.instanceOf[cpu]?.[pc] ?? -1;
      cpus.push(cpu);
      waits.push(
        id >= 0
          ? `cpu ${cpu} waits at barrier ${b.names[id]} (${b.arrived(id)} of ${b.required(id)} arrived)`
          : `cpu ${cpu} is blocked at instruction ${pc}`,
      );
    }
    return { cpus, waits };
  }

  // ---- control plane ---------------------------------------------------------------------------

  /**
   * One comlink call to CPU `cpu`: posts it, then rings the doorbell so the worker's loop yields
   * to its event loop to answer. Rejects after `timeoutMs` rather than hang.
   */
  private call<T>(
    cpu: number,
    f: (remote: Comlink.Remote<CpuControl>) => Promise<T>,
    timeoutMs = this.opts.controlTimeoutMs,
  ): Promise<T> {
    const pending = f(this.remotes[cpu]!);
    Atomics.add(this.control, controlWord(cpu, CALLS), 1);
    this.ring(cpu);
    return withTimeout(
      pending,
      timeoutMs,
      `cpu ${cpu}: no answer to a control call within ${timeoutMs} ms`,
    );
  }

  /** Rings CPU `cpu`'s doorbell, and wakes the word it waits on if it is blocked. */
  private ring(cpu: number): void {
    const c = this.control;
    Atomics.add(c, controlWord(cpu, ATTENTION), 1);
    // Read after the doorbell: a CPU that published its wait before we rang is woken here; one
    // that publishes it later sees the doorbell before it waits, and one still spinning (STATE
    // Running) polls the doorbell itself.
    if (Atomics.load(c, controlWord(cpu, STATE)) !== RunState.Blocked) return;
    const buffer = this.waitViews[Atomics.load(c, controlWord(cpu, WAIT_BUFFER))];
    if (buffer !== undefined) Atomics.notify(buffer, Atomics.load(c, controlWord(cpu, WAIT_INDEX)));
  }

  /** Asks every CPU still running to stop (shared STOP word, doorbell, and a comlink stop() that
   * also unparks a paused one). */
  private requestStop(): void {
    if (this.stopRequested) return;
    this.stopRequested = true;
    if (this.phaseNow === 'running' || this.phaseNow === 'paused') this.phaseNow = 'stopping';
    for (const cpu of this.cpuIds()) {
      if (this.outcomes[cpu] !== undefined) continue;
      Atomics.store(this.control, controlWord(cpu, STOP), 1);
      if (this.remotes[cpu] !== undefined) this.call(cpu, (r) => r.stop()).catch(() => {});
      else this.ring(cpu);
    }
  }

  private fail(error: WorkerHostError): void {
    if (this.failure !== undefined) return;
    this.failure = error;
    this.onFailure(error);
  }

  /** Ends every thread and closes every port. */
  private async teardown(): Promise<void> {
    if (this.pool !== undefined) {
      this.track(this.pool);
      await this.pool.destroy();
    }
    for (const port of this.ports) port.close();
    this.ports = [];
  }

  private track(pool: Piscina): void {
    for (const worker of pool.threads) {
      if (this.seen.has(worker)) continue;
      this.seen.add(worker);
      this.live.add(worker);
      worker.once('exit', () => this.live.delete(worker));
    }
  }

  private cpuIds(): number[] {
    return this.machine.cpus.map((_, i) => i);
  }

  private expectPhase(action: string, phases: readonly WorkerHostPhase[]): void {
    if (!phases.includes(this.phaseNow)) {
      throw new Error(
        `WorkerHost.${action}(): the host is ${this.phaseNow}, not ${phases.join(' or ')}`,
      );
    }
  }
}

/**
 * Copies a worker run's final CPU states into `machine.cpus` (registers, status, failure, pc,
 * CR2/CR3, PGE, cycles, stats, faults, Mapper errors), so `buildRunReport(machine, run, …)` reports
 * the workers' CPUs. TLB contents are not copied (the TLB's storage is private to `Tlb`).
 */
export function applyFinalState(machine: Machine, run: WorkerRun): void {
  for (const { cpu: id, state } of run.cpus) {
    const cpu = machine.cpus[id]!;
    for (const [i, v] of state.registers.entries()) cpu.setRegister(i, v);
    cpu.status = state.status;
    cpu.failure = state.failure;
    cpu.pc = state.pc;
    cpu.cr2 = state.cr2;
    cpu.cr3Table = state.cr3Table;
    cpu.cr3Pcid = state.cr3Pcid;
    cpu.addressSpace = state.addressSpace;
    cpu.pge = state.pge;
    cpu.cycles = state.cycles;
    cpu.now = state.now;
    Object.assign(cpu.stats, state.stats);
    cpu.faults.splice(0, cpu.faults.length, ...state.faults);
    cpu.mapperErrors.splice(0, cpu.mapperErrors.length, ...state.mapperErrors);
  }
}

function describe(e: unknown): string {
  if (e instanceof Error) return e.name !== 'Error' ? `${e.name}: ${e.message}` : e.message;
  return String(e);
}

function race<T>(p: Promise<T>, failed: Promise<never>): Promise<T> {
  return Promise.race([p, failed]);
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
