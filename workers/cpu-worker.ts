/**
 * One simulated CPU on its own thread: the worker host's loop, and nothing else (STYLE D). piscina
 * runs `cpuTask` once per CPU as a long-running task; the CPU is rebuilt over the machine's shared
 * buffers (share.ts), its `CpuControl` is exposed over comlink on the task's port, and
 * after `start()` the step loop (cpu-loop.ts: stamps, the doorbell, adaptive waits when blocked)
 * calls the very same `Cpu.step()` the deterministic host calls.
 *
 * The loop leaves its synchronous run only when the host rings the CPU's doorbell (control.ts):
 * to stop, to park for a pause, or to let its event loop answer a comlink call.
 */

import { performance } from 'node:perf_hooks';
import * as Comlink from 'comlink';
import { StepResult } from '../src/cpu/cpu.ts';
import {
  type CpuControl,
  type CpuEnd,
  type CpuOutcome,
  type CpuTask,
  RunState,
  type StepReport,
  snapshotCpu,
} from '../src/smp/control.ts';
import { ATTENTION, CALLS, controlWord, PAUSE, STATE, STOP } from '../src/smp/layout.ts';
import { loadInto, replaceProgram } from '../src/smp/machine.ts';
import { rebuildCpu } from '../src/smp/share.ts';
import { cpuLoop } from './cpu-loop.ts';

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
  const {
    cpu,
    control,
    waitBuffers,
    shootdown,
    env,
    scenario: built,
  } = rebuildCpu(task.shared, task.cpu);
  /** This thread's copy of the scenario, with the programs loaded since (`load`). */
  let scenario = built;
  const word = (w: number) => controlWord(task.cpu, w);
  const loop = cpuLoop(cpu, control, waitBuffers, shootdown, task);
  let served = 0;
  let started = false;
  let startedAt = 0;
  // Settled by control calls: the loop awaits them while it yields or is parked.
  let onStart: () => void = () => {};
  const startCalled = new Promise<void>((resolve) => {
    onStart = resolve;
  });
  let wakeParked: (() => void) | undefined;
  /** Set when a single step (control call `step`) halted the CPU: the task then ends. */
  let haltedByStep = false;
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
    load: (program) => {
      served1(undefined);
      if (!started || Atomics.load(control, word(PAUSE)) === 0 || loop.steps !== 0) {
        throw new Error(
          `cpu ${task.cpu}: load() needs a CPU parked before its first step (WorkerHost startPaused)`,
        );
      }
      const next = replaceProgram(scenario, task.cpu, program);
      loadInto(cpu, env.barriers, scenario, next);
      scenario = next;
    },
    step: (count) => {
      served1(undefined);
      // The host checks these first; its view may lag by the halting step's own answer.
      if (haltedByStep) {
        throw new Error(`cpu ${task.cpu} has ended (halted): there is nothing to step`);
      }
      if (!started || Atomics.load(control, word(PAUSE)) === 0) {
        throw new Error(`cpu ${task.cpu}: step() needs a CPU parked by pause()`);
      }
      let steps = 0;
      let stopped: StepReport['stopped'] = 'ran';
      while (steps < count) {
        const r = loop.stepOnce();
        if (r === 'waiting') {
          stopped = 'waiting';
          break;
        }
        steps++;
        if (r === StepResult.Halted) {
          haltedByStep = true;
          stopped = 'halted';
          break;
        }
        if (r === StepResult.Blocked) {
          stopped = 'blocked';
          break;
        }
      }
      return { steps, stopped, state: snapshotCpu(cpu, { tlb: true }) };
    },
    stop: () => {
      Atomics.store(control, word(STOP), 1);
      onStart(); // a CPU stopped before it started ends at once
      return served1(undefined);
    },
  };
  Comlink.expose(controlApi, task.port as unknown as Comlink.Endpoint);

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
      stamps: Int32Array.from(loop.stamps),
      steps: loop.steps,
      wallMs: started ? performance.now() - startedAt : 0,
      blockedMs: loop.blockedMs,
      missedWakeups: loop.missedWakeups,
      ...(loop.deadlock === undefined ? {} : { deadlock: loop.deadlock }),
    };
  };

  await startCalled;
  startedAt = performance.now();
  let answered = 0;
  for (;;) {
    // Read the doorbell before the request words: a request made after this read rings it again
    // (`loop.run()` sees that); one made before set its STOP/PAUSE/CALLS word first, seen below.
    loop.seenAttention = Atomics.load(control, word(ATTENTION));
    if (haltedByStep) return finish('halted');
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
    const exit = loop.run();
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
