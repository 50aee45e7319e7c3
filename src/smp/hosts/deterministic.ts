/**
 * The deterministic host: every CPU in one thread, the next CPU chosen by a seeded PRNG, an
 * explicit schedule or a caller's chooser (DESIGN decision 1). Same machine + same seed or schedule ⇒ same trace, byte
 * for byte. A CPU that returns Blocked is not chosen again until the word it waits on changes
 * (the semantics of `Atomics.wait`); when every unhalted CPU is blocked, the run stops with a
 * deadlock and its wait graph.
 */

import { StepResult } from '../../cpu/cpu.ts';
import type { TraceRecord } from '../../trace/ring.ts';
import type { Machine } from '../machine.ts';
import { Rng } from '../rng.ts';

/** Options of `runDeterministic`. */
export interface DeterministicOptions {
  /** PRNG seed (default 1). */
  readonly seed?: number;
  /** CPU ids to run, in order; after it is used up, the seeded PRNG picks. */
  readonly schedule?: readonly number[];
  /** A bound on steps, against runaway programs (default 1,000,000). */
  readonly maxSteps?: number;
  /**
   * Picks the next CPU once `schedule` is used up, instead of the seeded PRNG (schedule
   * exploration drives the host through it). `ready` lists the runnable CPUs in ascending order;
   * the result must be one of them. `step` is the 0-based step about to run.
   */
  readonly choose?: (ready: readonly number[], step: number) => number;
  /**
   * Called after every step with the CPU that ran, what its `step()` returned and the trace
   * records that step wrote, in order (the array is the host's own: read it, do not keep it).
   */
  readonly onStep?: (cpu: number, result: StepResult, records: readonly TraceRecord[]) => void;
}

/** A deadlock: who waits for what. */
export interface Deadlock {
  readonly cpus: readonly number[];
  /** One line per blocked CPU, e.g. `cpu 0 waits at barrier b#0 (1 of 2 arrived)`. */
  readonly waits: readonly string[];
}

/** What a deterministic run did. */
export interface DeterministicRun {
  /** The CPU chosen at each step: passed back as `schedule`, it reproduces the run. */
  readonly schedule: readonly number[];
  readonly steps: number;
  /** Every trace record, in step order. */
  readonly records: readonly TraceRecord[];
  /** Records lost to ring overflow: rings are drained after each step, so only a single step that
   * writes more records than a ring holds (e.g. a full flush of a huge TLB) can lose any. */
  readonly lost: number;
  readonly deadlock?: Deadlock;
  /** Set when `maxSteps` stopped the run. */
  readonly truncated: boolean;
}

/** Thrown when an explicit schedule names a CPU that cannot run at that point. */
export class ScheduleError extends Error {
  override readonly name = 'ScheduleError';
}

/** The longest schedule `parseSchedule` accepts (the default `maxSteps`). */
export const MAX_SCHEDULE_STEPS = 1_000_000;

/** Parses `0,1,1,0` or the run-length form `0*2,1*3` (whitespace allowed). */
export function parseSchedule(text: string): number[] {
  const out: number[] = [];
  if (text.trim() === '') return out;
  const parts = text.split(',').map((p) => p.trim());
  for (const [i, part] of parts.entries()) {
    const m = /^(\d+)(?:\*(\d+))?$/.exec(part);
    if (m === null) {
      throw new ScheduleError(
        `schedule item ${i + 1} ${JSON.stringify(part)} is not CPU or CPU*COUNT (e.g. 0,1*3)`,
      );
    }
    const count = m[2] === undefined ? 1 : Number(m[2]);
    if (count < 1 || count > MAX_SCHEDULE_STEPS || out.length + count > MAX_SCHEDULE_STEPS) {
      throw new ScheduleError(
        `schedule item ${i + 1} ${JSON.stringify(part)}: a count must be from 1 to ${MAX_SCHEDULE_STEPS} steps in all`,
      );
    }
    for (let k = 0; k < count; k++) out.push(Number(m[1]));
  }
  return out;
}

/** The run-length form of a schedule: `0*2,1,0*3`. */
export function formatSchedule(schedule: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < schedule.length; ) {
    let j = i;
    while (j < schedule.length && schedule[j] === schedule[i]) j++;
    parts.push(j - i === 1 ? String(schedule[i]) : `${schedule[i]}*${j - i}`);
    i = j;
  }
  return parts.join(',');
}

/** Runs `machine` to completion (all CPUs halted), a deadlock, or `maxSteps`. */
export function runDeterministic(
  machine: Machine,
  options: DeterministicOptions = {},
): DeterministicRun {
  const rng = new Rng(options.seed ?? 1);
  const maxSteps = options.maxSteps ?? 1_000_000;
  const cpus = machine.cpus;
  const blocked = cpus.map(() => false);
  const schedule: number[] = [];
  const records: TraceRecord[] = [];
  let lost = 0;
  const runnable = (i: number): boolean => {
    const c = cpus[i]!;
    if (c.halted) return false;
    if (!blocked[i]) return true;
    // Runnable again once the word it waits on changed (Atomics.wait semantics).
    return c.blockedWords![c.blockedIndex] !== c.blockedExpected;
  };
  let step = 0;
  let finished = false;
  for (; step < maxSteps; step++) {
    const ready: number[] = [];
    for (let i = 0; i < cpus.length; i++) if (runnable(i)) ready.push(i);
    if (ready.length === 0) {
      const waiting = cpus.flatMap((c, i) => (c.halted ? [] : [i]));
      if (waiting.length === 0) {
        // An explicit schedule must fit the run exactly: leftover steps mean it was meant for
        // another run (or mistyped), which the user should hear about.
        if (options.schedule !== undefined && options.schedule.length > step) {
          throw new ScheduleError(
            `schedule has ${options.schedule.length - step} step(s) left after step ${step}, but every CPU has halted`,
          );
        }
        finished = true;
        break;
      }
      return {
        schedule,
        steps: step,
        records,
        lost,
        truncated: false,
        deadlock: describeDeadlock(machine, waiting),
      };
    }
    let pick: number;
    if (options.schedule !== undefined && step < options.schedule.length) {
      pick = options.schedule[step]!;
      if (!ready.includes(pick)) {
        const c = cpus[pick];
        const state =
          c === undefined ? 'does not exist' : c.halted ? `has ${c.status}` : 'is blocked';
        throw new ScheduleError(
          `schedule step ${step + 1} names cpu ${pick}, which ${state}; runnable: ${ready.join(', ')}`,
        );
      }
    } else if (options.choose !== undefined) {
      pick = options.choose(ready, step);
      if (!ready.includes(pick)) {
        throw new ScheduleError(
          `the chooser picked cpu ${pick} at step ${step + 1}, which cannot run; runnable: ${ready.join(', ')}`,
        );
      }
    } else {
      pick = ready[rng.below(ready.length)]!;
    }
    schedule.push(pick);
    const cpu = cpus[pick]!;
    cpu.now = step;
    const result = cpu.step();
    blocked[pick] = result === StepResult.Blocked;
    const drained = machine.traces[pick]!.drain();
    lost += drained.lost;
    for (const r of drained.records) records.push(r);
    options.onStep?.(pick, result, drained.records);
  }
  // Reaching maxSteps truncates the run only if some CPU still had work to do.
  const truncated = !finished && step >= maxSteps && cpus.some((c) => !c.halted);
  return { schedule, steps: step, records, lost, truncated };
}

function describeDeadlock(machine: Machine, waiting: number[]): Deadlock {
  return { cpus: waiting, waits: waiting.map((i) => machine.cpus[i]!.describeWait()) };
}
