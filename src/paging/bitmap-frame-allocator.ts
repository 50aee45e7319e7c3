/**
 * `BitmapFrameAllocator`: a lowest-free-first frame allocator whose state lives in one
 * `SharedArrayBuffer`, so CPU threads can allocate and free frames concurrently with `Atomics`.
 */

import { hex, PhysAddr } from '../addr.ts';
import { PhysFrame } from './frame.ts';
import {
  checkFrameRange,
  type FrameAllocator,
  FrameAllocatorError,
  type FrameDeallocator,
} from './frame-allocator.ts';
import { Size4KiB } from './page-size.ts';

export { FrameAllocatorError, type FrameAllocatorErrorKind } from './frame-allocator.ts';

/** What `shared()` returns: structured-clonable, so it can be posted to a worker thread. */
export interface SharedBitmapFrameAllocator {
  /** Header and bitmap words; see `BitmapFrameAllocator` for the layout. */
  readonly buffer: SharedArrayBuffer;
  /** The first frame's address. */
  readonly start: number;
  /** One past the last frame's address. */
  readonly end: number;
}

const FRAME_BYTES = Size4KiB.bytes;
/** Word 0: the hint. Word 1: the frame count, so `fromShared` can reject a mismatched range. */
const HINT = 0;
const COUNT = 1;
const HEADER_WORDS = 2;
/** The frame count must fit the header's Int32 (and keeps the bitmap under 256 MiB). */
const MAX_FRAMES = 0x7fff_ffff;

/**
 * Lowest-free-first allocator over the 4 KiB frames of `[start, end)`.
 *
 * Layout of the shared `Int32Array`: word 0 is the hint, the lowest bitmap word that may hold a
 * free bit; word 1 the frame count; then one bit per frame (bit `i % 32` of bitmap word
 * `i / 32`, set = in use). Bits past the last frame are set at creation so scans need no bound
 * check. Every access to the buffer is an `Atomics` operation; bits are claimed with
 * `compareExchange` and released with `Atomics.and`, never a plain read-modify-write.
 *
 * Hint invariant: once every call has returned, the hint is at most the lowest bitmap word with a
 * free bit. So single-threaded use returns exactly the lowest free frame, and "full" (undefined)
 * is never stale: a call that begins after a free has returned, and after the calls in flight
 * during that free have returned, finds the freed frame. Under contention each call still takes
 * the lowest frame it sees free, but "lowest" is only as exact as the race allows.
 *
 * Frames are handed out with stale contents: the mapper zeroes the ones it uses as page tables.
 */
export class BitmapFrameAllocator implements FrameAllocator, FrameDeallocator {
  /** The first frame's address. */
  readonly start: PhysAddr;
  /** One past the last frame's address. */
  readonly end: PhysAddr;
  /** The number of frames in `[start, end)`. */
  readonly frameCount: number;
  private readonly buffer: SharedArrayBuffer;
  private readonly words: Int32Array;
  /** Index of the word after the last bitmap word. */
  private readonly limit: number;

  private constructor(buffer: SharedArrayBuffer, start: number, end: number) {
    this.buffer = buffer;
    this.start = start as PhysAddr;
    this.end = end as PhysAddr;
    this.frameCount = (end - start) / FRAME_BYTES;
    this.words = new Int32Array(buffer);
    this.limit = this.words.length;
  }

  /**
   * A new allocator with every frame of `[start, end)` free. Throws `FrameAllocatorError`
   * ('InvalidRange') unless the range is 4 KiB aligned, below 2^52, not reversed, and holds
   * fewer than 2^31 frames.
   */
  static create(range: { start: number; end: number }): BitmapFrameAllocator {
    const { start, end } = range;
    checkFrameRange('bitmap allocator', start, end);
    const frames = (end - start) / FRAME_BYTES;
    if (frames > MAX_FRAMES) {
      throw new FrameAllocatorError(
        'InvalidRange',
        `bitmap allocator range [${hex(start)}, ${hex(end)}) holds ${frames} frames: at most ${MAX_FRAMES} are supported`,
      );
    }
    const bitmapWords = Math.ceil(frames / 32);
    let buffer: SharedArrayBuffer;
    try {
      buffer = new SharedArrayBuffer((HEADER_WORDS + bitmapWords) * 4);
    } catch (e) {
      throw new FrameAllocatorError(
        'InvalidRange',
        `bitmap allocator range [${hex(start)}, ${hex(end)}) needs a bitmap this host could not allocate: ${(e as Error).message}`,
      );
    }
    const words = new Int32Array(buffer);
    // Not yet shared with any thread, but the file's rule is Atomics for every buffer access.
    Atomics.store(words, COUNT, frames);
    const tailBits = frames % 32;
    if (tailBits !== 0) {
      // Marks the bits past the last frame used, so they are never handed out.
      Atomics.store(words, HEADER_WORDS + bitmapWords - 1, ~((1 << tailBits) - 1));
    }
    return new BitmapFrameAllocator(buffer, start, end);
  }

  /**
   * Wraps the state another `BitmapFrameAllocator` exported with `shared()` (typically on
   * another thread); both then allocate from the same bitmap. Throws `FrameAllocatorError`
   * ('InvalidRange') if the object does not describe a bitmap of that range.
   */
  static fromShared(shared: SharedBitmapFrameAllocator): BitmapFrameAllocator {
    const { buffer, start, end } = shared;
    checkFrameRange('shared bitmap allocator', start, end);
    if (!(buffer instanceof SharedArrayBuffer)) {
      throw new FrameAllocatorError(
        'InvalidRange',
        'shared bitmap allocator buffer is not a SharedArrayBuffer: pass the object returned by shared()',
      );
    }
    const frames = (end - start) / FRAME_BYTES;
    const expected = (HEADER_WORDS + Math.ceil(frames / 32)) * 4;
    // The count is written once before the buffer is shared; the load just follows the rule.
    const stored =
      buffer.byteLength >= HEADER_WORDS * 4 ? Atomics.load(new Int32Array(buffer), COUNT) : -1;
    if (buffer.byteLength !== expected || stored !== frames) {
      throw new FrameAllocatorError(
        'InvalidRange',
        `shared bitmap allocator buffer of ${buffer.byteLength} bytes does not hold the bitmap of [${hex(start)}, ${hex(end)}) (${frames} frames)`,
      );
    }
    return new BitmapFrameAllocator(buffer, start, end);
  }

  /** The structured-clonable state to post to another thread and wrap with `fromShared`. */
  shared(): SharedBitmapFrameAllocator {
    return { buffer: this.buffer, start: this.start, end: this.end };
  }

  /**
   * Claims the lowest free frame, or returns undefined when every frame is in use. Lock-free:
   * a failed claim means another thread changed the word, and the scan retries with its new value.
   */
  allocateFrame(): PhysFrame<Size4KiB> | undefined {
    const words = this.words;
    // Where every word below is full (or was, when the hint was raised; see lowerHint).
    const hint = Atomics.load(words, HINT);
    for (let w = hint + HEADER_WORDS; w < this.limit; w++) {
      // A snapshot of the word; the compareExchange below fails if it is stale.
      let v = Atomics.load(words, w);
      while (v !== -1) {
        const inv = ~v;
        const bit = inv & -inv;
        // Claims the lowest clear bit only if no other thread changed the word since `v`.
        const prev = Atomics.compareExchange(words, w, v, v | bit);
        if (prev === v) {
          const index = (w - HEADER_WORDS) * 32 + (31 - Math.clz32(bit));
          this.raiseHint(hint, (v | bit) === -1 ? w + 1 - HEADER_WORDS : w - HEADER_WORDS);
          return PhysFrame.fromStartAddressUnchecked(
            PhysAddr.newUnchecked(this.start + index * FRAME_BYTES),
            Size4KiB,
          );
        }
        v = prev;
      }
    }
    this.raiseHint(hint, this.limit - HEADER_WORDS);
    return undefined;
  }

  /**
   * Frees a frame. Throws `FrameAllocatorError`: 'FrameNotOwned' if it is outside
   * `[start, end)` or not 4 KiB aligned, 'DoubleFree' if it is already free.
   */
  deallocateFrame(frame: PhysFrame<Size4KiB>): void {
    const index = this.indexOf(frame, 'free');
    const w = HEADER_WORDS + (index >>> 5);
    const mask = 1 << (index & 31);
    // One atomic RMW: clears the bit and reports whether it was set, whatever other bits race.
    const prev = Atomics.and(this.words, w, ~mask);
    if ((prev & mask) === 0) {
      throw new FrameAllocatorError(
        'DoubleFree',
        `cannot free frame ${hex(frame.startAddress)}: it is already free (double free)`,
        frame.startAddress,
      );
    }
    this.lowerHint(w - HEADER_WORDS);
  }

  /**
   * Marks a specific frame used (memory the simulation owns by other means, such as the boot
   * page tables). Throws 'FrameNotOwned' as `deallocateFrame` does, 'AlreadyAllocated' if the
   * frame is in use. The hint needs no update: setting a bit cannot hide a free one.
   */
  reserve(frame: PhysFrame<Size4KiB>): void {
    const index = this.indexOf(frame, 'reserve');
    const mask = 1 << (index & 31);
    // One atomic RMW: sets the bit and reports whether another thread or call had set it.
    const prev = Atomics.or(this.words, HEADER_WORDS + (index >>> 5), mask);
    if ((prev & mask) !== 0) {
      throw new FrameAllocatorError(
        'AlreadyAllocated',
        `cannot reserve frame ${hex(frame.startAddress)}: it is already allocated`,
        frame.startAddress,
      );
    }
  }

  /** True if the frame is in use. Throws 'FrameNotOwned' for a frame outside the range. */
  isAllocated(frame: PhysFrame<Size4KiB>): boolean {
    const index = this.indexOf(frame, 'query');
    // A snapshot; another thread may change the bit right after.
    return (Atomics.load(this.words, HEADER_WORDS + (index >>> 5)) & (1 << (index & 31))) !== 0;
  }

  /** How many frames are free (a snapshot, word by word, while other threads run). */
  freeCount(): number {
    let used = 0;
    for (let w = HEADER_WORDS; w < this.limit; w++) {
      // A per-word snapshot; exact once other threads are quiescent.
      used += popcount32(Atomics.load(this.words, w));
    }
    // Padding bits are set, so they count as used and are subtracted back out.
    return (this.limit - HEADER_WORDS) * 32 - used;
  }

  /** How many frames are in use (a snapshot, like `freeCount`). */
  allocatedCount(): number {
    return this.frameCount - this.freeCount();
  }

  /** Every frame in use, in ascending order (a snapshot, like `freeCount`). */
  allocatedFrames(): PhysFrame<Size4KiB>[] {
    const frames: PhysFrame<Size4KiB>[] = [];
    for (let w = HEADER_WORDS; w < this.limit; w++) {
      // A per-word snapshot; exact once other threads are quiescent.
      let v = Atomics.load(this.words, w);
      while (v !== 0) {
        const bit = v & -v;
        const index = (w - HEADER_WORDS) * 32 + (31 - Math.clz32(bit));
        if (index >= this.frameCount) break;
        frames.push(
          PhysFrame.fromStartAddressUnchecked(
            PhysAddr.newUnchecked(this.start + index * FRAME_BYTES),
            Size4KiB,
          ),
        );
        v &= ~bit;
      }
    }
    return frames;
  }

  /** The frame's bit index, or 'FrameNotOwned' if it is not one of this allocator's frames. */
  private indexOf(frame: PhysFrame<Size4KiB>, action: string): number {
    const addr = frame.startAddress;
    if (addr % FRAME_BYTES !== 0 || frame.size.bytes !== FRAME_BYTES) {
      throw new FrameAllocatorError(
        'FrameNotOwned',
        `cannot ${action} frame ${hex(addr)}: it is not a 4 KiB aligned 4 KiB frame`,
        addr,
      );
    }
    if (addr < this.start || addr >= this.end) {
      throw new FrameAllocatorError(
        'FrameNotOwned',
        `cannot ${action} frame ${hex(addr)}: it is outside this allocator's range [${hex(this.start)}, ${hex(this.end)})`,
        addr,
      );
    }
    return (addr - this.start) / FRAME_BYTES;
  }

  /**
   * Moves the hint from `from` (the value this scan started at) up to bitmap word `to`, then
   * re-checks the skipped words. The re-check closes the race with a free that cleared a bit in
   * a skipped word after our scan saw it full but found the hint already low enough to leave
   * alone: either the re-check sees that bit, or that free's own `lowerHint` runs after the raise.
   */
  private raiseHint(from: number, to: number): void {
    if (to <= from) return;
    // Only if no other thread moved the hint since this scan read it; otherwise leave theirs.
    if (Atomics.compareExchange(this.words, HINT, from, to) !== from) return;
    for (let w = from; w < to; w++) {
      // Re-reads each skipped word after the raise is visible (Atomics are sequentially consistent).
      if (Atomics.load(this.words, HEADER_WORDS + w) !== -1) {
        this.lowerHint(w);
        return;
      }
    }
  }

  /** Lowers the hint to bitmap word `w` unless it is already at or below it. */
  private lowerHint(w: number): void {
    // The current hint; the loop below retries if another thread moves it meanwhile.
    let cur = Atomics.load(this.words, HINT);
    while (cur > w) {
      // Installs `w` only over the value we compared against, so a lower hint is never raised.
      const prev = Atomics.compareExchange(this.words, HINT, cur, w);
      if (prev === cur) return;
      cur = prev;
    }
  }
}

/** The number of set bits in a 32-bit word (SWAR popcount). */
function popcount32(x: number): number {
  let v = x - ((x >>> 1) & 0x5555_5555);
  v = (v & 0x3333_3333) + ((v >>> 2) & 0x3333_3333);
  return Math.imul((v + (v >>> 4)) & 0x0f0f_0f0f, 0x0101_0101) >>> 24;
}
