/**
 * The worker host's step loop over one CPU: step stamps, the doorbell check, `Cpu.step()`, and the
 * blocked CPU's adaptive wait. workers/cpu-worker.ts runs it under its control plane, and
 * bench/shootdown-latency.ts's replica driver runs the very same loop on its own threads, so the
 * benchmark measures the loop the host runs rather than a copy of it.
 *
 * Blocked: spin on `Atomics.load` (only when the host is not oversubscribed; the host passes 0
 * otherwise), publishing nothing and reading no clock, then publish the wait (control.ts `WAIT_*`,
 * `STATE`) and `Atomics.wait` in slices of `waitSliceMs`, so a stop is seen even if its wake-up is
 * lost, until the word changes or `timeoutMs` of waiting has passed: that is a deadlock, reported,
 * never a hang. `Atomics.waitAsync` is avoided on purpose (nodejs/node#44729:
 * a worker whose only pending work is a waitAsync exits).
 */

import { performance } from 'node:perf_hooks';
import { type Cpu, StepResult } from '../src/cpu/cpu.ts';
import { RunState } from '../src/smp/control.ts';
import {
  ATTENTION,
  controlWord,
  STATE,
  STEP_COUNTER,
  WAIT_BUFFER,
  WAIT_EXPECTED,
  WAIT_INDEX,
  WAIT_PC,
} from '../src/smp/layout.ts';
import type { Shootdown } from '../src/smp/shootdown.ts';

/** Why `CpuLoop.run` returned: the CPU halted, a wait timed out, or the doorbell rang. */
export type LoopExit = 'halted' | 'deadlock' | 'attention';

/** How many spin iterations pass between two looks at the doorbell. */
const SPIN_ATTENTION_EVERY = 256;

/**
 * The least share of `spinIterations` a spin phase keeps after spins ran out (1/16: 125 of the
 * default 2000 polls, about 1 µs here, still above a busy target's 0.7 µs answer).
 */
const MIN_SPIN_SHARE = 1 / 16;

/**
 * Below the full budget, one spin in this many takes the full budget again (when cores are held
 * by other work, that probe runs out: about 1 µs more per wait on average).
 */
const SPIN_PROBE_EVERY = 16;

/** One class of waits' spin budget (`cpuLoop`): mutable, one object per class per CPU. */
interface SpinBudget {
  /** The configured polls. */
  readonly full: number;
  /** The polls the next spin may take. */
  budget: number;
  /** The floor of `budget`: MIN_SPIN_SHARE of `full`. */
  readonly min: number;
  /** Spins taken below the full budget (every SPIN_PROBE_EVERY-th takes the full budget). */
  probes: number;
}

function spinBudgetOf(full: number): SpinBudget {
  return { full, budget: full, min: Math.ceil(full * MIN_SPIN_SHARE), probes: 0 };
}

/** The loop's settings (the host's `CpuTask` carries them). */
export interface CpuLoopOptions {
  /** `Atomics.load` polls before waiting at a barrier; 0 when CPUs outnumber cores. */
  readonly spinIterations: number;
  /**
   * `Atomics.load` polls before waiting for IPI acknowledgements (`Cpu.awaitingAcks`); 0 when CPUs
   * outnumber cores. Its own budget, halved and doubled back like the barrier one.
   */
  readonly ackSpinIterations: number;
  /** A wait longer than this (excluding time parked and the spin phase) is a deadlock. */
  readonly timeoutMs: number;
  /** The longest single `Atomics.wait`. */
  readonly waitSliceMs: number;
}

/** One CPU's step loop on the calling thread (`cpuLoop`). */
export interface CpuLoop {
  /**
   * Steps until the CPU halts, a wait times out, or the CPU's doorbell (control.ts `ATTENTION`)
   * differs from `seenAttention`; calling it again resumes where it left off, a wait included.
   */
  run(): LoopExit;
  /**
   * One step outside `run`, for a parked CPU single-stepped over the control plane: the step
   * `run` would take next, stamped and counted the same way. A CPU blocked on a word that has not
   * changed is not stepped (the deterministic host's rule): `'waiting'`. A step that blocks
   * leaves the CPU waiting, so that `run` resumes that wait.
   */
  stepOnce(): StepResult | 'waiting';
  /** The doorbell value the caller has answered. */
  seenAttention: number;
  /**
   * The global step stamps this CPU took, in order (one per `step()` call), when it writes trace
   * records; empty otherwise (`steps` counts the steps either way).
   */
  readonly stamps: number[];
  /** `step()` calls so far. */
  steps: number;
  /**
   * Milliseconds waiting past the spin phase (in `Atomics.wait` and between its slices). The spin
   * phase, at most `spinIterations` polls per episode, is not timed: its two clock reads would
   * sit on the path of every IPI a busy CPU answers within a microsecond.
   */
  blockedMs: number;
  /** Blocked episodes (a step returned Blocked), and how many of them called `Atomics.wait`. */
  episodes: number;
  slept: number;
  /**
   * `Atomics.wait` slices that ran out although the word had changed: wake-ups whose notify never
   * came (each costs up to `waitSliceMs`). 0 unless a waker skipped a notify it owed.
   */
  missedWakeups: number;
  /** Set with a `'deadlock'` exit: what the CPU waited for. */
  deadlock: string | undefined;
}

/**
 * The loop over `cpu`. `beforeStep` runs before each step (the benchmark's round clock; the host
 * passes none).
 *
 * A closure rather than a class: the class version of this very loop made a busy-target shootdown
 * 0.3-0.5 µs slower (of about 1 µs) in bench/shootdown-latency.ts's replica driver, in runs
 * alternating with this one on the same threads.
 */
export function cpuLoop(
  cpu: Cpu,
  control: Int32Array,
  waitBuffers: readonly SharedArrayBuffer[],
  shootdown: Shootdown,
  options: CpuLoopOptions,
  beforeStep?: (cpu: Cpu) => void,
): CpuLoop {
  const attention = controlWord(cpu.id, ATTENTION);
  const wake = shootdown.wake;
  const word = (w: number) => controlWord(cpu.id, w);
  const { spinIterations, timeoutMs, waitSliceMs } = options;
  /**
   * The polls the next spin phase may take, one budget per class of wait (barriers, IPI acks):
   * the full count, halved after every spin that ran out, down to MIN_SPIN_SHARE of it, and
   * doubled back after every spin that saw its word change. Spins run out when another process
   * holds the core of the CPU awaited: on a 2-core machine shared with other jobs a busy-target
   * shootdown then cost about 18 µs (the full spin, then a context switch); with the budget at its
   * floor, the spin costs a microsecond or two. Below the full budget, one spin in
   * SPIN_PROBE_EVERY takes the full budget, to find out whether the cores are free again.
   */
  const barrierSpin = spinBudgetOf(spinIterations);
  const ackSpin = spinBudgetOf(options.ackSpinIterations);
  /** True while the CPU is blocked (its last step returned Blocked and the word has not changed). */
  let waiting = false;
  /** Milliseconds spent waiting in the current blocked episode. */
  let waitedMs = 0;
  /** The current blocked episode has called `Atomics.wait` (counted in `slept`). */
  let episodeSlept = false;
  /** The current blocked episode's spin phase is over (ran out, or the doorbell cut it short). */
  let spun = false;

  /**
   * Global stamps only when there are records to merge: the shared counter's line moves between
   * the cores at every step of every CPU, and one such transfer sat on the critical path of each
   * busy-target shootdown (bench/shootdown-latency.ts, Table 4: about 0.1 µs of 0.7). Without a
   * trace, `cpu.now` is the CPU's own step count (what its fault and Mapper-error reports carry).
   */
  const globalStamps = cpu.traced;

  const loop: CpuLoop = {
    run,
    stepOnce,
    seenAttention: Atomics.load(control, attention),
    stamps: [],
    steps: 0,
    blockedMs: 0,
    episodes: 0,
    slept: 0,
    missedWakeups: 0,
    deadlock: undefined,
  };
  return loop;

  function run(): LoopExit {
    for (;;) {
      if (waiting) {
        // Resume the wait the doorbell interrupted: a blocked CPU is not stepped again until its
        // word changes (the deterministic host's rule), so no step stamp is taken for it.
        const w = waitUntilChanged();
        if (w !== undefined) return w;
      }
      if (Atomics.load(control, attention) !== loop.seenAttention) return 'attention';
      if (beforeStep !== undefined) beforeStep(cpu);
      const r = stampedStep();
      if (r === StepResult.Halted) return 'halted';
      if (r === StepResult.Blocked) {
        const w = waitUntilChanged();
        if (w !== undefined) return w;
      }
    }
  }

  function stepOnce(): StepResult | 'waiting' {
    if (waiting) {
      if (Atomics.load(cpu.blockedWords!, cpu.blockedIndex) === cpu.blockedExpected)
        return 'waiting';
      waiting = false;
    }
    return stampedStep();
  }

  /** Takes the step stamp, steps, and opens a blocked episode if the step blocked. */
  function stampedStep(): StepResult {
    // The global step stamp every trace record of this step carries (worker.ts: merge order).
    if (globalStamps) {
      cpu.now = Atomics.add(control, STEP_COUNTER, 1);
      loop.stamps.push(cpu.now);
    } else cpu.now = loop.steps;
    loop.steps++;
    const r = cpu.step();
    if (r === StepResult.Blocked) {
      waiting = true;
      waitedMs = 0;
      loop.episodes++;
      episodeSlept = false;
      spun = false;
    }
    return r;
  }

  /**
   * Waits for `cpu.blockedWords[blockedIndex]` to leave `blockedExpected`: undefined once it has
   * (`waiting` is cleared), else why it stopped waiting. First the spin phase, once per episode
   * (an episode the doorbell interrupted resumes in the wait phase), then `sleepUntilChanged`.
   */
  function waitUntilChanged(): LoopExit | undefined {
    const words = cpu.blockedWords!;
    const index = cpu.blockedIndex;
    const expected = cpu.blockedExpected;
    if (!spun) {
      spun = true;
      // Nothing is published while spinning (STATE stays Running), so the host's doorbell does
      // not notify this CPU: the spin reads the doorbell itself every SPIN_ATTENTION_EVERY polls.
      // Below the full budget, every SPIN_PROBE_EVERY-th spin takes the full budget again: a
      // CPU awaiting idle targets (which take a wake-up to answer) would otherwise stay at the
      // floor after one slow wake-up, and pay its own wake-up on every shootdown.
      const spin = cpu.awaitingAcks ? ackSpin : barrierSpin;
      const budget =
        spin.budget < spin.full && ++spin.probes % SPIN_PROBE_EVERY === 0 ? spin.full : spin.budget;
      for (let i = 0; i < budget; i++) {
        if (Atomics.load(words, index) !== expected) {
          waiting = false;
          spin.budget = Math.min(spin.full, 2 * budget);
          return undefined;
        }
        if (
          i % SPIN_ATTENTION_EVERY === 0 &&
          Atomics.load(control, attention) !== loop.seenAttention
        ) {
          return 'attention';
        }
      }
      // The spin ran out: the CPU it waits for is asleep, or not running at all because other
      // work holds the host's cores, in which case spinning only delays it further.
      spin.budget = Math.max(spin.min, spin.budget >> 1);
    }
    return sleepUntilChanged(words, index, expected);
  }

  /**
   * The wait phase: publish what the CPU waits on, then `Atomics.wait` in slices until the word
   * changes, the doorbell rings, or the episode's waiting reaches `timeoutMs`. `waitedMs` adds up
   * over the episode's interruptions, so inspecting a blocked CPU does not hide its deadlock; time
   * parked does not count.
   */
  function sleepUntilChanged(
    words: Int32Array,
    index: number,
    expected: number,
  ): LoopExit | undefined {
    // The host wakes us through its own whole-buffer view: publish the index from the buffer's
    // start (the shootdown wake words are a view at an offset).
    Atomics.store(
      control,
      word(WAIT_BUFFER),
      waitBuffers.indexOf(words.buffer as SharedArrayBuffer),
    );
    Atomics.store(control, word(WAIT_INDEX), index + words.byteOffset / 4);
    Atomics.store(control, word(WAIT_EXPECTED), expected);
    Atomics.store(control, word(WAIT_PC), cpu.pc);
    // Last: the host reads the WAIT_* words only once it sees Blocked (worker.ts `ring`).
    Atomics.store(control, word(STATE), RunState.Blocked);
    // Sleeping on the CPU's wake word: announce it, so that wakers notify (Shootdown.wakeUp;
    // this store precedes the word's re-check below and the comparison inside Atomics.wait).
    // Barrier words are always notified.
    const announced = words === wake && index === shootdown.wakeIndex(cpu.id);
    if (announced) shootdown.announceSleep(cpu.id, true);
    const t0 = performance.now();
    const waited = waitedMs;
    try {
      // The doorbell is read after STATE was published: a host that rang it before reading
      // STATE is seen here; one that rang it after notifies the word we wait on (and a wake-up
      // lost in between costs at most one slice).
      for (;;) {
        if (Atomics.load(words, index) !== expected) {
          waiting = false;
          return undefined;
        }
        if (Atomics.load(control, attention) !== loop.seenAttention) return 'attention';
        const left = timeoutMs - waited - (performance.now() - t0);
        if (left <= 0) {
          loop.deadlock = cpu.describeWait();
          Atomics.store(control, word(STATE), RunState.Deadlocked);
          return 'deadlock';
        }
        if (!episodeSlept) {
          episodeSlept = true;
          loop.slept++;
        }
        const woke = Atomics.wait(words, index, expected, Math.min(left, waitSliceMs));
        if (woke === 'timed-out' && Atomics.load(words, index) !== expected) loop.missedWakeups++;
      }
    } finally {
      if (announced) shootdown.announceSleep(cpu.id, false);
      const spent = performance.now() - t0;
      waitedMs = waited + spent;
      loop.blockedMs += spent;
      if (loop.deadlock === undefined) Atomics.store(control, word(STATE), RunState.Running);
    }
  }
}
