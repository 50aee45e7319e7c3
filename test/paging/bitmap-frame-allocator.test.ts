/**
 * Tests of `BitmapFrameAllocator` (src/paging/bitmap-frame-allocator.ts): the rules and error
 * kinds, a model-based property test, and a real multi-threaded race over `worker_threads`.
 */

import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PhysAddr } from '../../src/addr.ts';
import {
  BitmapFrameAllocator,
  FrameAllocatorError,
  type FrameAllocatorErrorKind,
} from '../../src/paging/bitmap-frame-allocator.ts';
import { PhysFrame } from '../../src/paging/frame.ts';
import { Size2MiB, Size4KiB } from '../../src/paging/page-size.ts';
// Types only: importing the worker module for real would run its body on this thread.
import type {
  HintWorkerInput,
  HintWorkerOutput,
  RaceWorkerInput,
  RaceWorkerOutput,
} from './bitmap-worker.ts';

/** The 4 KiB frame at `addr` (unchecked, so tests can also build unaligned ones). */
function frame(addr: number): PhysFrame<Size4KiB> {
  return PhysFrame.fromStartAddressUnchecked(PhysAddr.newUnchecked(addr), Size4KiB);
}

function addrs(frames: readonly PhysFrame<Size4KiB>[]): number[] {
  return frames.map((f) => f.startAddress);
}

/** Runs `f`, expecting a `FrameAllocatorError` of `kind`, and returns it. */
function failure(kind: FrameAllocatorErrorKind, f: () => unknown): FrameAllocatorError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(FrameAllocatorError);
    expect((e as FrameAllocatorError).kind).toBe(kind);
    return e as FrameAllocatorError;
  }
  throw new Error(`expected a ${kind} error`);
}

const BASE = 0x100000;

describe('BitmapFrameAllocator: allocation', () => {
  it('hands out frames lowest first, then undefined when full', () => {
    const a = BitmapFrameAllocator.create({ start: BASE, end: BASE + 3 * 0x1000 });
    expect(a.frameCount).toBe(3);
    expect(a.freeCount()).toBe(3);
    const got = [a.allocateFrame(), a.allocateFrame(), a.allocateFrame()];
    expect(got.map((f) => f?.startAddress)).toEqual([BASE, BASE + 0x1000, BASE + 0x2000]);
    for (const f of got) expect(f?.size).toBe(Size4KiB);
    expect(a.allocateFrame()).toBeUndefined();
    expect(a.freeCount()).toBe(0);
    expect(a.allocatedCount()).toBe(3);
  });

  it('reuses the lowest freed frame first, across bitmap words', () => {
    const a = BitmapFrameAllocator.create({ start: 0, end: 100 * 0x1000 });
    for (let i = 0; i < 100; i++) expect(a.allocateFrame()?.startAddress).toBe(i * 0x1000);
    expect(a.allocateFrame()).toBeUndefined();
    for (const i of [70, 33, 95, 64, 31]) a.deallocateFrame(frame(i * 0x1000));
    expect(a.freeCount()).toBe(5);
    expect(addrs([1, 2, 3, 4, 5].map(() => a.allocateFrame()!))).toEqual(
      [31, 33, 64, 70, 95].map((i) => i * 0x1000),
    );
    expect(a.allocateFrame()).toBeUndefined();
  });

  it('never hands out the padding bits past the last frame', () => {
    for (const n of [1, 31, 32, 33, 63, 64, 65]) {
      const a = BitmapFrameAllocator.create({ start: 0x7000, end: 0x7000 + n * 0x1000 });
      let count = 0;
      while (a.allocateFrame()) count++;
      expect(count).toBe(n);
      expect(a.allocatedFrames()).toHaveLength(n);
      expect(a.freeCount()).toBe(0);
    }
  });

  it('an empty range is valid and always full', () => {
    const a = BitmapFrameAllocator.create({ start: BASE, end: BASE });
    expect(a.frameCount).toBe(0);
    expect(a.allocateFrame()).toBeUndefined();
    expect(a.freeCount()).toBe(0);
    expect(a.allocatedFrames()).toEqual([]);
  });

  it('allocatedFrames lists the frames in use in ascending order', () => {
    const a = BitmapFrameAllocator.create({ start: BASE, end: BASE + 40 * 0x1000 });
    a.reserve(frame(BASE + 39 * 0x1000));
    a.reserve(frame(BASE + 32 * 0x1000));
    a.allocateFrame();
    a.allocateFrame();
    a.reserve(frame(BASE + 31 * 0x1000));
    expect(addrs(a.allocatedFrames())).toEqual([0, 1, 31, 32, 39].map((i) => BASE + i * 0x1000));
    expect(a.isAllocated(frame(BASE + 31 * 0x1000))).toBe(true);
    expect(a.isAllocated(frame(BASE + 30 * 0x1000))).toBe(false);
    expect(a.freeCount()).toBe(35);
  });

  it('skips reserved frames', () => {
    const a = BitmapFrameAllocator.create({ start: 0, end: 4 * 0x1000 });
    a.reserve(frame(0));
    a.reserve(frame(0x2000));
    expect(a.allocateFrame()?.startAddress).toBe(0x1000);
    expect(a.allocateFrame()?.startAddress).toBe(0x3000);
    expect(a.allocateFrame()).toBeUndefined();
  });
});

describe('BitmapFrameAllocator: errors', () => {
  const a = () => BitmapFrameAllocator.create({ start: 0x10000, end: 0x14000 });

  it('FrameNotOwned: freeing a frame below, at or above the end of the range', () => {
    for (const addr of [0xf000, 0x14000, 0x100000]) {
      const e = failure('FrameNotOwned', () => a().deallocateFrame(frame(addr)));
      expect(e.frame).toBe(addr);
      expect(e.message).toBe(
        `cannot free frame 0x${addr.toString(16)}: it is outside this allocator's range [0x10000, 0x14000)`,
      );
    }
  });

  it('FrameNotOwned: freeing an unaligned or non-4 KiB frame', () => {
    const e = failure('FrameNotOwned', () => a().deallocateFrame(frame(0x10800)));
    expect(e.message).toBe('cannot free frame 0x10800: it is not a 4 KiB aligned 4 KiB frame');
    const huge = PhysFrame.fromStartAddressUnchecked(PhysAddr.new(0), Size2MiB);
    failure('FrameNotOwned', () => a().deallocateFrame(huge as unknown as PhysFrame<Size4KiB>));
  });

  it('FrameNotOwned: reserve and isAllocated check the range too', () => {
    expect(failure('FrameNotOwned', () => a().reserve(frame(0x20000))).message).toMatch(
      /^cannot reserve frame 0x20000: it is outside/,
    );
    expect(failure('FrameNotOwned', () => a().isAllocated(frame(0x1000))).message).toMatch(
      /^cannot query frame 0x1000: it is outside/,
    );
  });

  it('DoubleFree: freeing a frame that was never allocated or is already free', () => {
    const x = a();
    const e = failure('DoubleFree', () => x.deallocateFrame(frame(0x13000)));
    expect(e.frame).toBe(0x13000);
    expect(e.message).toBe('cannot free frame 0x13000: it is already free (double free)');
    const f = x.allocateFrame()!;
    x.deallocateFrame(f);
    failure('DoubleFree', () => x.deallocateFrame(f));
    // The failed free changed nothing.
    expect(x.freeCount()).toBe(4);
    expect(x.allocateFrame()?.startAddress).toBe(0x10000);
  });

  it('AlreadyAllocated: reserving a frame in use', () => {
    const x = a();
    const f = x.allocateFrame()!;
    const e = failure('AlreadyAllocated', () => x.reserve(f));
    expect(e.frame).toBe(0x10000);
    expect(e.message).toBe('cannot reserve frame 0x10000: it is already allocated');
    x.reserve(frame(0x12000));
    failure('AlreadyAllocated', () => x.reserve(frame(0x12000)));
    expect(x.freeCount()).toBe(2);
  });

  it('InvalidRange: create rejects unaligned, reversed and out-of-range bounds', () => {
    expect(
      failure('InvalidRange', () => BitmapFrameAllocator.create({ start: 0x123, end: 0x2000 }))
        .message,
    ).toBe('bitmap allocator start 0x123 is not 4 KiB aligned: it must be a multiple of 0x1000');
    expect(
      failure('InvalidRange', () => BitmapFrameAllocator.create({ start: 0x2000, end: 0x1000 }))
        .message,
    ).toBe('bitmap allocator range [0x2000, 0x1000) is reversed: start must be <= end');
    failure('InvalidRange', () => BitmapFrameAllocator.create({ start: 0, end: 2 ** 52 }));
    failure('InvalidRange', () => BitmapFrameAllocator.create({ start: -4096, end: 0 }));
    expect(
      failure('InvalidRange', () => BitmapFrameAllocator.create({ start: 0, end: 2 ** 44 }))
        .message,
    ).toBe(
      'bitmap allocator range [0x0, 0x100000000000) holds 4294967296 frames: at most 2147483647 are supported',
    );
  });

  it('InvalidRange: fromShared rejects a buffer that does not match the range', () => {
    const x = a();
    const { buffer } = x.shared();
    failure('InvalidRange', () =>
      BitmapFrameAllocator.fromShared({ buffer, start: 0x10000, end: 0x10000 + 64 * 0x1000 }),
    );
    failure('InvalidRange', () =>
      BitmapFrameAllocator.fromShared({ buffer: new SharedArrayBuffer(0), start: 0, end: 0 }),
    );
    // Same byte length (one bitmap word either way) but a different frame count.
    failure('InvalidRange', () =>
      BitmapFrameAllocator.fromShared({ buffer, start: 0x10000, end: 0x13000 }),
    );
    failure('InvalidRange', () =>
      BitmapFrameAllocator.fromShared({
        buffer: new ArrayBuffer(12) as unknown as SharedArrayBuffer,
        start: 0x10000,
        end: 0x14000,
      }),
    );
  });
});

describe('BitmapFrameAllocator: shared state', () => {
  it('shared() is structured-clonable and fromShared wraps the same bitmap', () => {
    const a = BitmapFrameAllocator.create({ start: BASE, end: BASE + 8 * 0x1000 });
    const shared = structuredClone(a.shared());
    expect(shared.buffer).toBeInstanceOf(SharedArrayBuffer);
    const b = BitmapFrameAllocator.fromShared(shared);
    expect(b.start).toBe(BASE);
    expect(b.end).toBe(BASE + 8 * 0x1000);
    expect(a.allocateFrame()?.startAddress).toBe(BASE);
    expect(b.allocateFrame()?.startAddress).toBe(BASE + 0x1000);
    b.deallocateFrame(frame(BASE));
    expect(a.isAllocated(frame(BASE))).toBe(false);
    expect(a.allocateFrame()?.startAddress).toBe(BASE);
    expect(addrs(b.allocatedFrames())).toEqual([BASE, BASE + 0x1000]);
    expect(a.freeCount()).toBe(6);
  });
});

type Op =
  | { readonly t: 'alloc' }
  | { readonly t: 'free'; readonly i: number }
  | { readonly t: 'freeAny'; readonly i: number }
  | { readonly t: 'reserve'; readonly i: number };

describe('BitmapFrameAllocator: model-based property', () => {
  it('matches a Set model: lowest free first, never twice, counts consistent', () => {
    const op: fc.Arbitrary<Op> = fc.oneof(
      { weight: 4, arbitrary: fc.constant({ t: 'alloc' } as const) },
      { weight: 2, arbitrary: fc.record({ t: fc.constant('free' as const), i: fc.nat() }) },
      { weight: 1, arbitrary: fc.record({ t: fc.constant('freeAny' as const), i: fc.nat() }) },
      { weight: 1, arbitrary: fc.record({ t: fc.constant('reserve' as const), i: fc.nat() }) },
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 30 }),
        fc.integer({ min: 0, max: 100 }),
        fc.array(op, { maxLength: 300 }),
        fc.boolean(),
        (startFrame, n, ops, twoHandles) => {
          const start = startFrame * 0x1000;
          const a = BitmapFrameAllocator.create({ start, end: start + n * 0x1000 });
          // Alternating between two wrappers of one buffer must not change anything.
          const b = twoHandles ? BitmapFrameAllocator.fromShared(a.shared()) : a;
          const model = new Set<number>();
          const at = (i: number) => frame(start + i * 0x1000);
          ops.forEach((o, step) => {
            const x = step % 2 === 0 ? a : b;
            switch (o.t) {
              case 'alloc': {
                let lowest = 0;
                while (lowest < n && model.has(lowest)) lowest++;
                const f = x.allocateFrame();
                if (lowest === n) {
                  expect(f).toBeUndefined();
                } else {
                  expect(f?.startAddress).toBe(start + lowest * 0x1000);
                  model.add(lowest);
                }
                break;
              }
              case 'free': {
                if (model.size === 0) break;
                const i = [...model][o.i % model.size];
                x.deallocateFrame(at(i));
                model.delete(i);
                break;
              }
              case 'freeAny': {
                if (n === 0) break;
                const i = o.i % n;
                if (model.has(i)) {
                  x.deallocateFrame(at(i));
                  model.delete(i);
                } else {
                  failure('DoubleFree', () => x.deallocateFrame(at(i)));
                }
                break;
              }
              case 'reserve': {
                if (n === 0) break;
                const i = o.i % n;
                if (model.has(i)) {
                  failure('AlreadyAllocated', () => x.reserve(at(i)));
                } else {
                  x.reserve(at(i));
                  model.add(i);
                }
                break;
              }
            }
            expect(x.freeCount()).toBe(n - model.size);
          });
          const sorted = [...model].sort((p, q) => p - q);
          expect(addrs(a.allocatedFrames())).toEqual(sorted.map((i) => start + i * 0x1000));
          for (let i = 0; i < n; i++) expect(b.isAllocated(at(i))).toBe(model.has(i));
          expect(a.allocatedCount()).toBe(model.size);
        },
      ),
      { numRuns: 300 },
    );
  });
});

/**
 * A bootstrap that registers tsx's hooks inside the worker thread, then imports the TypeScript
 * worker. `execArgv: ['--import', 'tsx']` is not enough on Node 20: hooks named in a Worker's
 * execArgv do not apply to its entry module, which fails with "Unknown file extension .ts"
 * (nodejs/node#47747, fixed in Node 22). Node 20 is what package.json promises.
 */
const WORKER_BOOTSTRAP = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})
  .then((tsx) => { tsx.register(); return import(${JSON.stringify(new URL('./bitmap-worker.ts', import.meta.url).href)}); })`;

/** Enough bytes for the hint-race control words of bitmap-worker.ts. */
const CONTROL_BYTES = 64;

/** Starts one thread running bitmap-worker.ts and resolves with its report. */
function runWorker(input: RaceWorkerInput): Promise<RaceWorkerOutput>;
function runWorker(input: HintWorkerInput): Promise<HintWorkerOutput>;
function runWorker(input: RaceWorkerInput | HintWorkerInput): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_BOOTSTRAP, { eval: true, workerData: input });
    worker.once('message', (m: unknown) => {
      resolve(m);
      void worker.terminate();
    });
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (code !== 0) reject(new Error(`bitmap worker (${input.mode}) exited with code ${code}`));
    });
  });
}

describe('BitmapFrameAllocator: concurrent workers', () => {
  it('four threads racing to allocate and free never hold one frame at once', async () => {
    const workers = 4;
    const frames = 2048 + 17; // not a multiple of 32, so the padding bits are in play
    const start = 0x4000_0000;
    const a = BitmapFrameAllocator.create({ start, end: start + frames * 0x1000 });
    a.reserve(frame(start + 5 * 0x1000)); // owned by the main thread throughout
    const owners = new SharedArrayBuffer(frames * 4);
    const barrier = new SharedArrayBuffer(4);
    const outputs = await Promise.all(
      Array.from({ length: workers }, (_, k) =>
        runWorker({
          mode: 'race',
          shared: a.shared(),
          owners,
          barrier,
          id: k + 1,
          workers,
          rounds: 4000,
          fillEvery: 500,
          seed: 0x9e37_79b9 * (k + 1),
        }),
      ),
    );

    expect(outputs.flatMap((o) => o.errors)).toEqual([]);
    expect(outputs.map((o) => o.conflicts)).toEqual(outputs.map(() => 0));
    // Every worker really took part (more than one pass over the whole range between them).
    for (const o of outputs) expect(o.allocations).toBeGreaterThan(0);
    expect(outputs.reduce((s, o) => s + o.allocations, 0)).toBeGreaterThan(frames * 4);

    const holder = new Map<number, number>();
    outputs.forEach((o, k) => {
      for (const addr of o.held) {
        expect(holder.get(addr), `frame 0x${addr.toString(16)} held twice`).toBeUndefined();
        holder.set(addr, k + 1);
      }
    });
    holder.set(start + 5 * 0x1000, 0);
    const union = [...holder.keys()].sort((p, q) => p - q);
    expect(addrs(a.allocatedFrames())).toEqual(union);
    // Each worker ends with a fill that runs until undefined, after its own last free, so the
    // last one to finish saw a full allocator: a lost free bit (a hint bug) would leave one free.
    expect(a.freeCount()).toBe(0);
    expect(union).toHaveLength(frames);
  });

  it('a frame freed while another thread scans past it is never hidden by the hint', async () => {
    // 256 bitmap words, so each "full" scan is long enough for a free to land inside it.
    const frames = 256 * 32;
    const a = BitmapFrameAllocator.create({ start: 0, end: frames * 0x1000 });
    while (a.allocateFrame()) {}
    // Zeroed control words; in particular the taker starts out holding frame 0.
    const control = new SharedArrayBuffer(CONTROL_BYTES);
    const common = { shared: a.shared(), control, rounds: 20_000, seed: 0x2545_f491 };
    const [taker, freer] = await Promise.all([
      runWorker({ ...common, mode: 'taker' }),
      runWorker({ ...common, mode: 'freer' }),
    ]);
    expect(taker.violations).toBe(0);
    expect(freer.violations).toBe(0);
    expect(freer.frees).toBe(20_000);
    // Every freed frame was taken again, so the allocator ends full.
    expect(a.freeCount()).toBe(0);
  });
});
