/**
 * Worker thread for the concurrent `BitmapFrameAllocator` tests: either races the other workers
 * to allocate and free frames ('race'), or plays one side of the free-during-scan hint race
 * ('taker' / 'freer').
 */

import { parentPort, workerData } from 'node:worker_threads';
import { PhysAddr } from '../../src/addr.ts';
import {
  BitmapFrameAllocator,
  type SharedBitmapFrameAllocator,
} from '../../src/paging/bitmap-frame-allocator.ts';
import { PhysFrame } from '../../src/paging/frame.ts';
import { Size4KiB } from '../../src/paging/page-size.ts';

/** Input of a 'race' worker: allocate, free and reallocate against the other workers. */
export interface RaceWorkerInput {
  readonly mode: 'race';
  /** The allocator under test, from `shared()`. */
  readonly shared: SharedBitmapFrameAllocator;
  /** One Int32 per frame: the id of the worker that holds it, 0 when none does. */
  readonly owners: SharedArrayBuffer;
  /** One Int32 counting workers that reached the start line. */
  readonly barrier: SharedArrayBuffer;
  /** This worker's id, 1-based (0 means "no owner"). */
  readonly id: number;
  /** How many workers take part (the barrier waits for all of them). */
  readonly workers: number;
  /** Allocate-then-free rounds before the final fill. */
  readonly rounds: number;
  /** Every `fillEvery`-th round allocates until the allocator is full instead of a small batch. */
  readonly fillEvery: number;
  /** Seed for the batch sizes and the choice of frames to free. */
  readonly seed: number;
}

/** What a 'race' worker posts back when it is done. */
export interface RaceWorkerOutput {
  /** Start addresses of the frames this worker holds at the end. */
  readonly held: number[];
  /** Times a frame handed to this worker was, per the owner table, held by another worker. */
  readonly conflicts: number;
  /** Messages of any allocator errors (a double free would show up here). */
  readonly errors: string[];
  /** Frames this worker allocated in total. */
  readonly allocations: number;
}

/**
 * Input of the hint-race pair. The allocator starts full. The taker allocates in a loop; the
 * freer frees one frame at a time and waits for the taker to get it. A call of the taker that
 * starts after a free has returned must find that frame, so two "full" answers in a row after
 * the free mean the hint hid it.
 */
export interface HintWorkerInput {
  readonly mode: 'taker' | 'freer';
  readonly shared: SharedBitmapFrameAllocator;
  /** Zeroed Int32 control words (at least 5); see the `CONTROL_*` indices. */
  readonly control: SharedArrayBuffer;
  /** Frees the freer performs. */
  readonly rounds: number;
  readonly seed: number;
}

/** What a hint-race worker posts back. */
export interface HintWorkerOutput {
  /** Frees after which the taker answered "full" twice with the freed frame still free. */
  readonly violations: number;
  /** Frees the freer completed (0 for the taker). */
  readonly frees: number;
}

/** Control word: workers at the start line. */
const CONTROL_BARRIER = 0;
/** Control word: frames the taker got so far. */
const CONTROL_TAKEN = 1;
/** Control word: times the taker was told "full". */
const CONTROL_FULL = 2;
/** Control word: set to 1 by the freer when it is done. */
const CONTROL_STOP = 3;
/** Control word: index of the frame the taker holds now. */
const CONTROL_HELD = 4;

const FRAME_BYTES = 4096;

/** xorshift32 from `seed`: deterministic choices, different per worker. */
function rng(seed: number): () => number {
  let s = seed | 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
}

function frameAt(addr: number): PhysFrame<Size4KiB> {
  return PhysFrame.fromStartAddressUnchecked(PhysAddr.newUnchecked(addr), Size4KiB);
}

/** Spins until `count` workers have arrived, so their work really overlaps. */
function startLine(words: Int32Array, index: number, count: number): void {
  // Counts this worker in; every worker spins on the total.
  Atomics.add(words, index, 1);
  // Polls the arrival count; a spin rather than Atomics.wait keeps the start as tight as possible.
  while (Atomics.load(words, index) < count) {}
}

function race(input: RaceWorkerInput): RaceWorkerOutput {
  const allocator = BitmapFrameAllocator.fromShared(input.shared);
  const owners = new Int32Array(input.owners);
  const start = input.shared.start;
  const random = rng(input.seed);
  const held: number[] = [];
  const errors: string[] = [];
  let conflicts = 0;
  let allocations = 0;

  /** Allocates up to `max` frames, stopping early when the allocator is full. */
  const allocate = (max: number): void => {
    for (let n = 0; n < max; n++) {
      const frame = allocator.allocateFrame();
      if (!frame) return;
      allocations++;
      const i = (frame.startAddress - start) / FRAME_BYTES;
      // Claims the frame in the independent owner table; a non-zero owner means a duplicate.
      if (Atomics.compareExchange(owners, i, 0, input.id) !== 0) conflicts++;
      held.push(frame.startAddress);
    }
  };

  /** Frees a random half of the frames held. */
  const freeSome = (): void => {
    for (let k = held.length - 1; k >= 0; k--) {
      if (random() % 2 === 0) continue;
      const addr = held[k];
      held[k] = held[held.length - 1];
      held.pop();
      // Releases ownership before the frame goes back, so its next holder finds the slot empty.
      Atomics.compareExchange(owners, (addr - start) / FRAME_BYTES, input.id, 0);
      try {
        allocator.deallocateFrame(frameAt(addr));
      } catch (e) {
        errors.push((e as Error).message);
      }
    }
  };

  startLine(new Int32Array(input.barrier), 0, input.workers);
  // Small batches keep every worker competing for the same lowest words; the periodic and final
  // fills drive the allocator to full, where it must answer undefined without losing a free frame.
  for (let r = 1; r <= input.rounds; r++) {
    allocate(r % input.fillEvery === 0 ? Number.POSITIVE_INFINITY : 1 + (random() % 64));
    freeSome();
  }
  allocate(Number.POSITIVE_INFINITY);
  return { held, conflicts, errors, allocations };
}

function taker(input: HintWorkerInput): HintWorkerOutput {
  const allocator = BitmapFrameAllocator.fromShared(input.shared);
  const control = new Int32Array(input.control);
  startLine(control, CONTROL_BARRIER, 2);
  // Polls the freer's stop flag between calls.
  while (Atomics.load(control, CONTROL_STOP) === 0) {
    const frame = allocator.allocateFrame();
    if (frame) {
      // Publishes which frame it holds before counting it, so the freer never frees it.
      Atomics.store(control, CONTROL_HELD, (frame.startAddress - input.shared.start) / FRAME_BYTES);
      // Tells the freer its frame was taken.
      Atomics.add(control, CONTROL_TAKEN, 1);
    } else {
      // Counted after the call has returned, which the freer's reasoning relies on.
      Atomics.add(control, CONTROL_FULL, 1);
    }
  }
  return { violations: 0, frees: 0 };
}

function freer(input: HintWorkerInput): HintWorkerOutput {
  const allocator = BitmapFrameAllocator.fromShared(input.shared);
  const control = new Int32Array(input.control);
  const random = rng(input.seed);
  const frames = (input.shared.end - input.shared.start) / FRAME_BYTES;
  let violations = 0;
  let frees = 0;
  startLine(control, CONTROL_BARRIER, 2);
  for (let r = 0; r < input.rounds; r++) {
    // The taker holds exactly this frame; every other one is the freer's to free.
    const takerHolds = Atomics.load(control, CONTROL_HELD);
    let i = random() % frames;
    if (i === takerHolds) i = (i + 1) % frames;
    // Snapshot before the free: the taker's count moves once it has the frame.
    const taken = Atomics.load(control, CONTROL_TAKEN);
    allocator.deallocateFrame(frameAt(input.shared.start + i * FRAME_BYTES));
    frees++;
    // "Full" answers counted from here on come from calls that returned after the free did.
    const full = Atomics.load(control, CONTROL_FULL);
    // Waits for the taker; polls both of its counters. The "full" count is read before the
    // taken count: if the taker had got the frame before its second "full" answer, the taken
    // count read afterwards would show it (the taker bumps its counters in program order).
    for (;;) {
      const fullNow = Atomics.load(control, CONTROL_FULL);
      if (Atomics.load(control, CONTROL_TAKEN) !== taken) break;
      if (fullNow - full >= 2) {
        // A whole call started after the free returned and still saw "full": the frame is lost.
        violations++;
        break;
      }
    }
    if (violations > 0) break;
  }
  // Releases the taker.
  Atomics.store(control, CONTROL_STOP, 1);
  return { violations, frees };
}

const input = workerData as RaceWorkerInput | HintWorkerInput;
const output =
  input.mode === 'race' ? race(input) : input.mode === 'taker' ? taker(input) : freer(input);
parentPort!.postMessage(output);
