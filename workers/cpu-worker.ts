/**
 * One simulated CPU on its own thread: the worker host's loop, and nothing else (STYLE D). piscina
 * runs `cpuTask` once per CPU as a long-running task; the CPU is rebuilt over the machine's shared
 * buffers (shared-machine.ts), its `CpuControl` is exposed over comlink on the task's port, and
 * after `start()` the loop calls the very same `Cpu.step()` the deterministic host calls.
 *
 * Blocked: spin on `Atomics.load` (only when the host is not oversubscribed; the host passes 0
 * otherwise), then synchronous `Atomics.wait` in slices of `waitSliceMs`, so a stop is seen even
 * if its wake-up is lost, until the word changes or `timeoutMs` of waiting has passed: that is a
 * deadlock, reported, never a hang. `Atomics.waitAsync` is avoided on purpose (nodejs/node#44729:
 * a worker whose only pending work is a waitAsync exits).
 *
 * The loop leaves its synchronous run only when the host rings the CPU's doorbell (control.ts):
 * to stop, to park for a pause, or to let its event loop answer a comlink call.
 */

import { performance } from 'node:perf_hooks';
import * as Comlink from 'comlink';
import { type Cpu, StepResult } from '../src/cpu/cpu.ts';
import {
  ATTENTION,
  CALLS,
  type CpuControl,
  type CpuEnd,
  type CpuOutcome,
  type CpuTask,
  controlWord,
  PAUSE,
  RunState,
  STATE,
  STEP_COUNTER,
  STOP,
  snapshotCpu,
  WAIT_BUFFER,
  WAIT_EXPECTED,
  WAIT_INDEX,
  WAIT_PC,
} from '../src/smp/control.ts';
import { rebuildCpu } from '../src/smp/shared-machine.ts';

/** Why the synchronous loop returned to the event loop. */
type Exit = CpuEnd | 'attention';

/** How many spin iterations pass between two looks at the doorbell. */
const SPIN_ATTENTION_EVERY = 256;

/**
 * Runs CPU `task.cpu` until it halts, deadlocks or is stopped: the piscina task function. An
 * error is rethrown as a plain `Error` whose message starts with the original name
 * (`SharedMachineError: …`), because structured cloning keeps only the built-in error names.
 */
export default async function cpuTask(task: CpuTask): Promise<CpuOutcome> {
  try {
    return await runCpu(task);
  } catch (e) {
    if (!(e instanceof Error)) throw e;
    const error = new Error(e.name === 'Error' ? e.message : `${e.name}: ${e.message}`);
    error.stack = e.stack;
    throw error;
  }
}

async function runCpu(task: CpuTask): Promise<CpuOutcome> {
  const { cpu, control, waitBuffers } = rebuildCpu(task.shared, task.cpu);
  const word = (w: number) => controlWord(task.cpu, w);
  const stamps: number[] = [];
  let served = 0;
  let started = false;
  let startedAt = 0;
  let blockedMs = 0;
  /** True while the CPU is blocked (its last step returned Blocked and the word has not changed). */
  let waiting = false;
  /** Milliseconds spent waiting in the current blocked episode. */
  let waitedMs = 0;
  let deadlock: string | undefined;
  let seenAttention = Atomics.load(control, word(ATTENTION));
  // Settled by control calls: the loop awaits them while it yields or is parked.
  let onStart: () => void = () => {};
  const startCalled = new Promise<void>((resolve) => {
    onStart = resolve;
  });
  let wakeParked: (() => void) | undefined;
  const served1 = <T>(value: T): T => {
    served++;
    wakeParked?.();
    return value;
  };

  const controlApi: CpuControl = {
    ready: () => served1(task.cpu),
    start: () => {
      served1(undefined);
      if (started) throw new Error(`cpu ${task.cpu}: start() called twice`);
      started = true;
      onStart();
    },
    pause: () => served1(snapshotCpu(cpu)),
    resume: () => {
      Atomics.store(control, word(PAUSE), 0);
      return served1(undefined);
    },
    inspect: (options) => served1(snapshotCpu(cpu, options)),
    stop: () => {
      Atomics.store(control, word(STOP), 1);
      onStart(); // a CPU stopped before it started ends at once
      return served1(undefined);
    },
  };
  Comlink.expose(controlApi, task.port as unknown as Comlink.Endpoint);

  /** Steps until the CPU halts, a wait times out, or the doorbell rings. */
  const runSync = (): Exit => {
    for (;;) {
      if (waiting) {
        // Resume the wait the doorbell interrupted: a blocked CPU is not stepped again until its
        // word changes (the deterministic host's rule), so no step stamp is taken for it.
        const w = waitUntilChanged(cpu);
        if (w !== undefined) return w;
      }
      if (Atomics.load(control, word(ATTENTION)) !== seenAttention) return 'attention';
      cpu.now = Atomics.add(control, STEP_COUNTER, 1);
      stamps.push(cpu.now);
      const r = cpu.step();
      if (r === StepResult.Halted) return 'halted';
      if (r === StepResult.Blocked) {
        waiting = true;
        waitedMs = 0;
        const w = waitUntilChanged(cpu);
        if (w !== undefined) return w;
      }
    }
  };

  /**
   * Waits for `cpu.blockedWords[blockedIndex]` to leave `blockedExpected`: undefined once it has
   * (`waiting` is cleared), else why it stopped waiting. `waitedMs` adds up over the episode's
   * interruptions, so inspecting a blocked CPU does not hide its deadlock; time parked does not count.
   */
  const waitUntilChanged = (c: Cpu): Exit | undefined => {
    const words = c.blockedWords!;
    const index = c.blockedIndex;
    const expected = c.blockedExpected;
    // The host wakes us through its own whole-buffer view: publish the index from the buffer's
    // start (the shootdown wake words are a view at an offset).
    Atomics.store(
      control,
      word(WAIT_BUFFER),
      waitBuffers.indexOf(words.buffer as SharedArrayBuffer),
    );
    Atomics.store(control, word(WAIT_INDEX), index + words.byteOffset / 4);
    Atomics.store(control, word(WAIT_EXPECTED), expected);
    Atomics.store(control, word(WAIT_PC), c.pc);
    Atomics.store(control, word(STATE), RunState.Blocked);
    const t0 = performance.now();
    const waited = waitedMs;
    try {
      for (let i = 0; i < task.spinIterations; i++) {
        if (Atomics.load(words, index) !== expected) {
          waiting = false;
          return undefined;
        }
        if (
          i % SPIN_ATTENTION_EVERY === 0 &&
          Atomics.load(control, word(ATTENTION)) !== seenAttention
        ) {
          return 'attention';
        }
      }
      // The doorbell is read after the wait words were published: a host that rang it before
      // reading them is seen here; one that rang it after notifies the word we wait on (and a
      // wake-up lost in between costs at most one slice).
      for (;;) {
        if (Atomics.load(words, index) !== expected) {
          waiting = false;
          return undefined;
        }
        if (Atomics.load(control, word(ATTENTION)) !== seenAttention) return 'attention';
        const left = task.timeoutMs - waited - (performance.now() - t0);
        if (left <= 0) {
          deadlock = describeWait(c);
          Atomics.store(control, word(STATE), RunState.Deadlocked);
          return 'deadlock';
        }
        Atomics.wait(words, index, expected, Math.min(left, task.waitSliceMs));
      }
    } finally {
      const spent = performance.now() - t0;
      waitedMs = waited + spent;
      blockedMs += spent;
      if (deadlock === undefined) Atomics.store(control, word(STATE), RunState.Running);
    }
  };

  /** What a blocked CPU waits for, in the deterministic host's words (`describeDeadlock`). */
  const describeWait = (c: Cpu): string => c.describeWait();

  /** Yields to the event loop until a control call (or a safety tick) arrives. */
  const nextCall = () =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, 50);
      function done() {
        clearTimeout(timer);
        wakeParked = undefined;
        resolve();
      }
      wakeParked = done;
    });

  const finish = (end: CpuEnd): CpuOutcome => {
    const state =
      end === 'halted'
        ? RunState.Halted
        : end === 'deadlock'
          ? RunState.Deadlocked
          : RunState.Stopped;
    Atomics.store(control, word(STATE), state);
    return {
      cpu: task.cpu,
      end,
      final: snapshotCpu(cpu, { tlb: true }),
      stamps: Int32Array.from(stamps),
      wallMs: started ? performance.now() - startedAt : 0,
      blockedMs,
      ...(deadlock === undefined ? {} : { deadlock }),
    };
  };

  await startCalled;
  startedAt = performance.now();
  let answered = 0;
  for (;;) {
    // Read the doorbell before the request words: a request made after this read rings it again
    // (runSync sees that); one made before set its STOP/PAUSE/CALLS word first, seen below.
    seenAttention = Atomics.load(control, word(ATTENTION));
    if (Atomics.load(control, word(STOP)) !== 0) return finish('stopped');
    const paused = Atomics.load(control, word(PAUSE)) !== 0;
    if (paused || served < Atomics.load(control, word(CALLS))) {
      // Serve the calls the host posted; stay parked while paused (resume() and stop() unpark).
      if (paused) Atomics.store(control, word(STATE), RunState.Paused);
      await nextCall();
      continue;
    }
    if (answered !== served) {
      // Let the answers go out (and serve whatever arrives meanwhile) before the loop takes
      // the thread again.
      answered = served;
      await yieldToEventLoop();
      continue;
    }
    Atomics.store(control, word(STATE), RunState.Running);
    const exit = runSync();
    if (exit !== 'attention') return finish(exit);
  }
}

/**
 * comlink posts each answer a few promise reactions after its handler returned: this lets every
 * pending microtask (and so every answer) go out before the synchronous loop takes the thread.
 */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
