/**
 * Ranges of equally sized blocks (the shared shape of the crate's `PageRange`,
 * `PageRangeInclusive`, `PhysFrameRange` and `PhysFrameRangeInclusive`).
 *
 * Blocks are ordered by their start address; virtual pages use the 48-bit stored form, in which
 * the lower half comes before the higher half with no hole, exactly like the crate's `Step`.
 */

/** A block with a numeric start address and a size in bytes (a `Page` or a `PhysFrame`). */
export interface Block {
  readonly startAddress: number;
  readonly size: { readonly bytes: number };
}

/** `[start, end)` when `inclusive` is false, `[start, end]` when true; iterable, start first. */
export class BlockRange<T extends Block> implements Iterable<T> {
  /** @internal Built by `Page.range`, `PhysFrame.range` and their inclusive forms. */
  constructor(
    readonly start: T,
    readonly end: T,
    readonly inclusive: boolean,
    private readonly at: (startAddress: number) => T,
  ) {}

  /** True when the range holds no block (`start >= end`, or `start > end` when inclusive). */
  isEmpty(): boolean {
    return this.inclusive
      ? this.start.startAddress > this.end.startAddress
      : this.start.startAddress >= this.end.startAddress;
  }

  /** The number of blocks in the range. */
  get length(): number {
    if (this.isEmpty()) return 0;
    const n = (this.end.startAddress - this.start.startAddress) / this.start.size.bytes;
    return this.inclusive ? n + 1 : n;
  }

  /** Total bytes covered. */
  get bytes(): number {
    return this.length * this.start.size.bytes;
  }

  *[Symbol.iterator](): Iterator<T> {
    const step = this.start.size.bytes;
    const n = this.length;
    // Counting instead of comparing addresses avoids stepping past the last block, which is the
    // overflow the crate's inclusive iterator guards against at the top page.
    for (let i = 0; i < n; i++) yield this.at(this.start.startAddress + i * step);
  }
}
