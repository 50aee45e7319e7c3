/**
 * Physical frames (the crate's `PhysFrame<S>`, `PhysFrameRange<S>`, `PhysFrameRangeInclusive<S>`),
 * the physical mirror of `page.ts`.
 */

import { hex, PhysAddr } from '../addr.ts';
import { err, ok, type Result } from '../result.ts';
import { AddressNotAligned } from './page.ts';
import type { PageSize, Size4KiB } from './page-size.ts';
import { BlockRange } from './range.ts';

/**
 * A physical frame of size `S`. Invariant: `startAddress` is below 2^52 and a multiple of
 * `size.bytes`.
 */
export class PhysFrame<S extends PageSize = Size4KiB> {
  private constructor(
    /** The first byte of the frame. */
    readonly startAddress: PhysAddr,
    /** The frame size (same literal-type role as `Page.size`). */
    readonly size: S,
  ) {}

  /** `AddressNotAligned` unless `addr` is a multiple of the frame size. */
  static fromStartAddress<S extends PageSize>(
    addr: PhysAddr,
    size: S,
  ): Result<PhysFrame<S>, AddressNotAligned> {
    return addr % size.bytes === 0
      ? ok(new PhysFrame(addr, size))
      : err(new AddressNotAligned(hex(addr), size));
  }

  /** Builds without the alignment check (internal hot paths only). */
  static fromStartAddressUnchecked<S extends PageSize>(addr: PhysAddr, size: S): PhysFrame<S> {
    return new PhysFrame(addr, size);
  }

  /** The frame that contains `addr` (aligns down; never fails). */
  static containingAddress<S extends PageSize>(addr: PhysAddr, size: S): PhysFrame<S> {
    return new PhysFrame(PhysAddr.alignDown(addr, size.bytes), size);
  }

  /** `[start, end)`. */
  static range<S extends PageSize>(start: PhysFrame<S>, end: PhysFrame<S>): PhysFrameRange<S> {
    return new BlockRange(start, end, false, (a) => new PhysFrame(a as PhysAddr, start.size));
  }

  /** `[start, end]`. */
  static rangeInclusive<S extends PageSize>(
    start: PhysFrame<S>,
    end: PhysFrame<S>,
  ): PhysFrameRangeInclusive<S> {
    return new BlockRange(start, end, true, (a) => new PhysFrame(a as PhysAddr, start.size));
  }

  /** `self + n` frames; throws when the result reaches 2^52. */
  add(n: number): PhysFrame<S> {
    return new PhysFrame(PhysAddr.add(this.startAddress, n * this.size.bytes), this.size);
  }

  /** True if both are the same frame of the same size. */
  equals(other: PhysFrame<PageSize>): boolean {
    return this.startAddress === other.startAddress && this.size === other.size;
  }

  toString(): string {
    return `PhysFrame[${this.size.name}](${hex(this.startAddress)})`;
  }
}

/** Half-open range of frames (the crate's `PhysFrameRange<S>`). */
export type PhysFrameRange<S extends PageSize = Size4KiB> = BlockRange<PhysFrame<S>>;
/** Closed range of frames (the crate's `PhysFrameRangeInclusive<S>`). */
export type PhysFrameRangeInclusive<S extends PageSize = Size4KiB> = BlockRange<PhysFrame<S>>;
