/**
 * Tests of `BumpFrameAllocator` and `FrameAllocatorError` (src/paging/frame-allocator.ts).
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BumpFrameAllocator,
  type FrameAllocator,
  FrameAllocatorError,
} from '../../src/paging/frame-allocator.ts';
import { Size4KiB } from '../../src/paging/page-size.ts';

function invalidRange(start: number, end: number): FrameAllocatorError {
  try {
    new BumpFrameAllocator(start, end);
  } catch (e) {
    expect(e).toBeInstanceOf(FrameAllocatorError);
    const error = e as FrameAllocatorError;
    expect(error.kind).toBe('InvalidRange');
    expect(error.name).toBe('FrameAllocatorError');
    return error;
  }
  throw new Error(`expected [${start}, ${end}) to be rejected`);
}

describe('BumpFrameAllocator', () => {
  it('hands out the frames of [start, end) in ascending order, then undefined', () => {
    const a = new BumpFrameAllocator(0x10000, 0x13000);
    const frames = [a.allocateFrame(), a.allocateFrame(), a.allocateFrame()];
    expect(frames.map((f) => f?.startAddress)).toEqual([0x10000, 0x11000, 0x12000]);
    for (const f of frames) expect(f?.size).toBe(Size4KiB);
    expect(a.allocateFrame()).toBeUndefined();
    expect(a.allocateFrame()).toBeUndefined();
    expect(a.issuedCount).toBe(3);
    expect(a.remainingCount).toBe(0);
  });

  it('is usable through the FrameAllocator interface', () => {
    const a: FrameAllocator = new BumpFrameAllocator(0, 0x1000);
    expect(a.allocateFrame()?.startAddress).toBe(0);
    expect(a.allocateFrame()).toBeUndefined();
  });

  it('an empty range is valid and never hands out a frame', () => {
    const a = new BumpFrameAllocator(0x5000, 0x5000);
    expect(a.allocateFrame()).toBeUndefined();
    expect(a.issued()).toEqual([]);
    expect(a.issuedCount).toBe(0);
  });

  it('enumerates exactly the frames it handed out', () => {
    const a = new BumpFrameAllocator(0x200000, 0x210000);
    expect(a.issued()).toEqual([]);
    const got = [a.allocateFrame()!, a.allocateFrame()!];
    expect(a.issued().map((f) => f.startAddress)).toEqual(got.map((f) => f.startAddress));
    expect(a.issued().every((f, i) => f.equals(got[i]))).toBe(true);
    expect(a.issuedCount).toBe(2);
    expect(a.remainingCount).toBe(14);
    expect(a.hasIssued(0x200000)).toBe(true);
    expect(a.hasIssued(0x201fff)).toBe(true);
    expect(a.hasIssued(0x202000)).toBe(false);
    expect(a.hasIssued(0x1ff000)).toBe(false);
  });

  it('works near the top of the physical address space', () => {
    const top = 2 ** 52 - 0x1000;
    const a = new BumpFrameAllocator(top - 0x1000, top);
    expect(a.allocateFrame()?.startAddress).toBe(top - 0x1000);
    expect(a.allocateFrame()).toBeUndefined();
  });

  it('rejects an unaligned start or end, naming the value and the rule', () => {
    expect(invalidRange(0x1001, 0x3000).message).toBe(
      'bump allocator start 0x1001 is not 4 KiB aligned: it must be a multiple of 0x1000',
    );
    expect(invalidRange(0x1000, 0x3fff).message).toBe(
      'bump allocator end 0x3fff is not 4 KiB aligned: it must be a multiple of 0x1000',
    );
  });

  it('rejects a reversed range', () => {
    expect(invalidRange(0x3000, 0x1000).message).toBe(
      'bump allocator range [0x3000, 0x1000) is reversed: start must be <= end',
    );
  });

  it('rejects bounds at or above 2^52', () => {
    expect(invalidRange(0, 2 ** 52).message).toBe(
      'bump allocator end 0x10000000000000 is not valid: it must be below 2^52 (a physical address)',
    );
    expect(invalidRange(2 ** 52, 2 ** 52 + 0x1000).message).toMatch(/start 0x10000000000000/);
  });

  it('rejects negative, fractional and unsafe bounds', () => {
    expect(invalidRange(-0x1000, 0x1000).message).toBe(
      'bump allocator start -4096 is not valid: it must be a non-negative safe integer',
    );
    expect(invalidRange(0, 0.5).message).toMatch(/end 0.5 is not valid/);
    expect(invalidRange(0, Number.NaN).message).toMatch(/end NaN is not valid/);
    expect(invalidRange(0, 2 ** 60).message).toMatch(/non-negative safe integer/);
  });

  it('property: frames are distinct, ascending, contiguous and all inside the range', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 39 }),
        fc.integer({ min: 0, max: 64 }),
        fc.integer({ min: 0, max: 80 }),
        (startFrame, frames, requests) => {
          const start = startFrame * 0x1000;
          const a = new BumpFrameAllocator(start, start + frames * 0x1000);
          const got: number[] = [];
          for (let i = 0; i < requests; i++) {
            const f = a.allocateFrame();
            if (f) got.push(f.startAddress);
            else expect(i).toBeGreaterThanOrEqual(frames);
          }
          const n = Math.min(frames, requests);
          expect(got).toEqual(Array.from({ length: n }, (_, i) => start + i * 0x1000));
          expect(a.issued().map((f) => f.startAddress)).toEqual(got);
          expect(a.issuedCount + a.remainingCount).toBe(frames);
        },
      ),
    );
  });
});

describe('FrameAllocatorError', () => {
  it('carries its kind, frame and message', () => {
    const e = new FrameAllocatorError('DoubleFree', 'frame 0x1000 is free', 0x1000);
    expect(e).toBeInstanceOf(Error);
    expect(e.kind).toBe('DoubleFree');
    expect(e.frame).toBe(0x1000);
    expect(e.message).toBe('frame 0x1000 is free');
    expect(e.name).toBe('FrameAllocatorError');
  });
});
