/**
 * The thread side of `src/bench/floors.ts`: one side of a raw Atomics round trip between two
 * worker threads, run by piscina as one task. No simulator code: these are the floors the
 * simulator's IPI path is compared with (the same measurement as bench/shootdown-latency.ts).
 */

import { performance } from 'node:perf_hooks';
import type { FloorTask } from '../src/bench/floors.ts';

/** Int32 words of the task's buffer. */
const PING = 0;
const PONG = 1;
const START = 2;

/**
 * `ping` times `trips` round trips (returns µs per trip, one sample each); `pong` answers them.
 * `wait`: both sides sleep in `Atomics.wait` and wake the other with `Atomics.notify`; `spin`:
 * both spin on `Atomics.load`.
 */
export default function floorTask(task: FloorTask): Float64Array {
  const w = new Int32Array(task.buffer);
  // The start line: both threads present before anything is timed (bounded: never a hang).
  Atomics.add(w, START, 1);
  const deadline = performance.now() + 30_000;
  while (Atomics.load(w, START) < 2) {
    if (performance.now() > deadline) throw new Error('floor: the other thread never started');
    Atomics.wait(w, START, 1, 1);
  }
  const out = new Float64Array(task.side === 'ping' ? task.trips : 0);
  const sleeps = task.mode === 'wait';
  if (task.side === 'ping') {
    let t = performance.now();
    for (let i = 1; i <= task.trips; i++) {
      // Publish the request, wake the other side, then wait for its answer.
      Atomics.store(w, PING, i);
      if (sleeps) Atomics.notify(w, PING);
      while (Atomics.load(w, PONG) !== i) if (sleeps) Atomics.wait(w, PONG, i - 1);
      const now = performance.now();
      out[i - 1] = (now - t) * 1000;
      t = now;
    }
  } else {
    for (let i = 1; i <= task.trips; i++) {
      while (Atomics.load(w, PING) !== i) if (sleeps) Atomics.wait(w, PING, i - 1);
      // Pairs with the pinger's load of PONG.
      Atomics.store(w, PONG, i);
      if (sleeps) Atomics.notify(w, PONG);
    }
  }
  return out;
}
