/**
 * Frame allocation interfaces (the crate's `FrameAllocator<Size4KiB>` and `FrameDeallocator`),
 * their error type, and `BumpFrameAllocator`, the simplest allocator that satisfies them.
 */

import { hex, PhysAddr } from '../addr.ts';
import { PhysFrame } from './frame.ts';
import { Size4KiB } from './page-size.ts';

/**
 * Hands out unused 4 KiB frames (the crate's `FrameAllocator<Size4KiB>::allocate_frame`).
 *
 * Frames come back with whatever bytes they held: the mapper zeroes each frame it turns into a
 * page table, so an allocator never touches RAM (and does not need to know about it).
 */
export interface FrameAllocator {
  /** An unused frame, now owned by the caller, or undefined when none is left (crate's `None`). */
  allocateFrame(): PhysFrame<Size4KiB> | undefined;
}

/** Takes back frames handed out by a `FrameAllocator` (the crate's `FrameDeallocator`). */
export interface FrameDeallocator {
  /** Returns `frame` to the pool; the caller must no longer use it. */
  deallocateFrame(frame: PhysFrame<Size4KiB>): void;
}

/** Why a frame-allocator call was refused. */
export type FrameAllocatorErrorKind =
  /** The frame lies outside the allocator's `[start, end)` or is not 4 KiB aligned. */
  | 'FrameNotOwned'
  /** The frame was freed while it was already free. */
  | 'DoubleFree'
  /** `reserve` of a frame that is already in use. */
  | 'AlreadyAllocated'
  /** A construction range that is unaligned, reversed, too large or not an exact address. */
  | 'InvalidRange';

/** A refused frame-allocator call; the message names the frame (lowercase hex) and the rule. */
export class FrameAllocatorError extends Error {
  override readonly name = 'FrameAllocatorError';
  constructor(
    readonly kind: FrameAllocatorErrorKind,
    message: string,
    /** The start address of the offending frame, for the per-frame kinds. */
    readonly frame?: number,
  ) {
    super(message);
  }
}

const FRAME_BYTES = Size4KiB.bytes;
const TWO_POW_52 = 2 ** 52;

/**
 * Checks a `[start, end)` construction range shared by every allocator: both bounds exact,
 * 4 KiB aligned, below 2^52 (they are `PhysAddr`s), and `start <= end`.
 * @internal
 */
export function checkFrameRange(what: string, start: number, end: number): void {
  for (const [name, value] of [
    ['start', start],
    ['end', end],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new FrameAllocatorError(
        'InvalidRange',
        `${what} ${name} ${value} is not valid: it must be a non-negative safe integer`,
      );
    }
    if (value >= TWO_POW_52) {
      throw new FrameAllocatorError(
        'InvalidRange',
        `${what} ${name} ${hex(value)} is not valid: it must be below 2^52 (a physical address)`,
      );
    }
    if (value % FRAME_BYTES !== 0) {
      throw new FrameAllocatorError(
        'InvalidRange',
        `${what} ${name} ${hex(value)} is not 4 KiB aligned: it must be a multiple of 0x1000`,
      );
    }
  }
  if (start > end) {
    throw new FrameAllocatorError(
      'InvalidRange',
      `${what} range [${hex(start)}, ${hex(end)}) is reversed: start must be <= end`,
    );
  }
}

/**
 * Hands out the 4 KiB frames of `[start, end)` in ascending order, once each: frames are never
 * reused, so everything it ever handed out is exactly `[start, start + issuedCount * 4 KiB)`,
 * which is what the replay format records. Single-threaded (the boot-time allocator).
 */
export class BumpFrameAllocator implements FrameAllocator {
  /** The first frame's address. */
  readonly start: PhysAddr;
  /** One past the last frame's address. */
  readonly end: PhysAddr;
  private next: number;

  /** Throws `FrameAllocatorError` ('InvalidRange') unless `[start, end)` is a valid frame range. */
  constructor(start: number, end: number) {
    checkFrameRange('bump allocator', start, end);
    this.start = start as PhysAddr;
    this.end = end as PhysAddr;
    this.next = start;
  }

  /** The next frame in ascending order, or undefined once `end` is reached. */
  allocateFrame(): PhysFrame<Size4KiB> | undefined {
    if (this.next >= this.end) return undefined;
    const frame = PhysFrame.fromStartAddressUnchecked(PhysAddr.newUnchecked(this.next), Size4KiB);
    this.next += FRAME_BYTES;
    return frame;
  }

  /** How many frames have been handed out so far. */
  get issuedCount(): number {
    return (this.next - this.start) / FRAME_BYTES;
  }

  /** How many frames are left. */
  get remainingCount(): number {
    return (this.end - this.next) / FRAME_BYTES;
  }

  /** Every frame handed out so far, in the order it was handed out (ascending). */
  issued(): PhysFrame<Size4KiB>[] {
    const frames: PhysFrame<Size4KiB>[] = [];
    for (let a = this.start as number; a < this.next; a += FRAME_BYTES) {
      frames.push(PhysFrame.fromStartAddressUnchecked(PhysAddr.newUnchecked(a), Size4KiB));
    }
    return frames;
  }

  /** True if the byte at `addr` lies in a frame this allocator has handed out. */
  hasIssued(addr: number): boolean {
    return addr >= this.start && addr < this.next;
  }
}
