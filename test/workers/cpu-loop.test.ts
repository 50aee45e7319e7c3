/**
 * Tests of the worker host's step loop (workers/cpu-loop.ts) on a scripted stand-in CPU, in this
 * thread: a blocked CPU spins without publishing anything or reading the clock and publishes its
 * wait only when the spin runs out; the spin budget halves after each spin that runs out (down to
 * 1/16), doubles back after each that succeeds, and below the full budget every 16th spin probes
 * with the full budget. `Atomics.load`/`Atomics.store` are wrapped to count polls and publications
 * and to answer the wait at a chosen poll. Waits for IPI acks spin with their own budget.
 */

import { afterEach, describe, expect, it } from 'vitest';
import { type Cpu, StepResult } from '../../src/cpu/cpu.ts';
import { controlLayout } from '../../src/smp/layout.ts';
import type { Shootdown } from '../../src/smp/shootdown.ts';
import { cpuLoop } from '../../workers/cpu-loop.ts';

/** When the scripted wait is answered: at that poll of the spin, or once the CPU publishes. */
type Answer = number | 'after-spin';

interface Episode {
  /** Polls of the awaited word before the spin phase ended. */
  polls: number;
  /** Stores to the control block (the published wait) during the episode. */
  published: number;
}

const original = { load: Atomics.load, store: Atomics.store };
afterEach(() => {
  Atomics.load = original.load;
  Atomics.store = original.store;
});

/**
 * Runs `answers.length` blocked episodes of a stand-in CPU; returns what each one did. Episode
 * `i` waits for IPI acks when `acks[i]` (else at a barrier), spinning with `ackSpinIterations`.
 */
function run(
  answers: readonly Answer[],
  spinIterations: number,
  ackSpinIterations = spinIterations,
  acks: readonly boolean[] = [],
): Episode[] {
  const wake = new Int32Array(new SharedArrayBuffer(16));
  const control = new Int32Array(new SharedArrayBuffer(controlLayout(1, 0, 1).words * 4));
  let episode = -1;
  const episodes: Episode[] = [];
  let spinning = false;
  const cpu = {
    id: 0,
    now: 0,
    pc: 0,
    blockedWords: wake,
    blockedIndex: 0,
    blockedExpected: 0,
    step(): StepResult {
      if (episode + 1 === answers.length) return StepResult.Halted;
      episode++;
      episodes.push({ polls: 0, published: 0 });
      spinning = true;
      cpu.blockedExpected = original.load(wake, 0);
      return StepResult.Blocked;
    },
    describeWait: () => 'scripted',
    get awaitingAcks(): boolean {
      return acks[episode] === true;
    },
  };
  const shootdown = {
    wake,
    wakeIndex: () => 0,
    announceSleep: (_cpu: number, on: boolean) => Atomics.store(wake, 2, on ? 1 : 0),
  };
  Atomics.load = ((typed: Int32Array, index: number) => {
    if (typed === wake && index === 0 && spinning) {
      const e = episodes[episode]!;
      e.polls++;
      if (answers[episode] === e.polls) Atomics.add(wake, 0, 1);
    }
    return original.load(typed, index);
  }) as typeof Atomics.load;
  Atomics.store = ((typed: Int32Array, index: number, value: number) => {
    if (typed === control) {
      episodes[episode]!.published++;
      // The wait is published: the spin is over; answer it if the script says so.
      if (spinning && answers[episode] === 'after-spin') Atomics.add(wake, 0, 1);
      spinning = false;
    }
    return original.store(typed, index, value);
  }) as typeof Atomics.store;
  const loop = cpuLoop(
    cpu as unknown as Cpu,
    control,
    [wake.buffer as SharedArrayBuffer],
    shootdown as unknown as Shootdown,
    { spinIterations, ackSpinIterations, timeoutMs: 5000, waitSliceMs: 50 },
  );
  expect(loop.run()).toBe('halted');
  expect(loop.episodes).toBe(answers.length);
  return episodes;
}

describe('cpuLoop: the blocked CPU', () => {
  it('spins without publishing its wait; publishes only once the spin ran out', () => {
    const episodes = run([5, 'after-spin', 1], 160);
    expect(episodes.map((e) => e.published > 0)).toEqual([false, true, false]);
    expect(episodes[1]!.polls).toBe(160);
  });

  it('halves its spin after each that ran out, down to 1/16, and probes with the full spin every 16th', () => {
    const never = Array<Answer>(20).fill('after-spin');
    const polls = run(never, 1600).map((e) => e.polls);
    // 1600 ran out, then 800, 400, 200, 100 (the floor); the 16th spin below the full budget
    // (episode 17) takes 1600 again.
    expect(polls.slice(0, 6)).toEqual([1600, 800, 400, 200, 100, 100]);
    expect(polls[16]).toBe(1600);
    expect(polls.filter((p) => p === 1600)).toHaveLength(2);
    expect(
      polls
        .slice(5)
        .filter((p) => p !== 1600)
        .every((p) => p === 100),
    ).toBe(true);
  });

  it('doubles its spin back after each spin that succeeded', () => {
    const answers: Answer[] = ['after-spin', 'after-spin', 'after-spin', 'after-spin', 50, 150];
    // Budgets: 1600, 800, 400, 200, then 100 (answered at poll 50: next 200), then 200 (answered
    // at poll 150: next 400), then 400 runs out.
    answers.push('after-spin');
    const polls = run(answers, 1600).map((e) => e.polls);
    expect(polls).toEqual([1600, 800, 400, 200, 50, 150, 400]);
  });

  it('spins for IPI acks with a budget of its own, which barrier run-outs do not shrink', () => {
    // Barrier waits (budget 160) that run out, interleaved with ack waits (budget 1600) answered
    // at poll 1000: the ack spins keep their full budget, the barrier spins halve.
    const answers: Answer[] = ['after-spin', 1000, 'after-spin', 1000, 'after-spin', 'after-spin'];
    const acks = [false, true, false, true, false, true];
    const episodes = run(answers, 160, 1600, acks);
    expect(episodes.map((e) => e.polls)).toEqual([160, 1000, 80, 1000, 40, 1600]);
    // Only the waits whose spin ran out published (and slept).
    expect(episodes.map((e) => e.published > 0)).toEqual([true, false, true, false, true, true]);
  });
});
