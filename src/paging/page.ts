/**
 * Virtual pages (the crate's `Page<S>`, `PageRange<S>`, `PageRangeInclusive<S>`).
 */

import { hex, VirtAddr } from '../addr.ts';
import { err, ok, type Result } from '../result.ts';
import {
  type AnyPageSize,
  type NotGiantPageSize,
  type PageSize,
  Size1GiB,
  Size2MiB,
  Size4KiB,
} from './page-size.ts';
import { indexAt, type PageTableIndex } from './page-table-index.ts';
import { BlockRange } from './range.ts';

/** The error of `fromStartAddress`: the address is not a multiple of the page size. */
export class AddressNotAligned extends Error {
  override readonly name = 'AddressNotAligned';
  constructor(
    readonly address: string,
    readonly size: PageSize,
  ) {
    super(
      `address ${address} is not aligned to ${size.name}: it must be a multiple of ${hex(size.bytes)}`,
    );
  }
}

/**
 * A virtual page of size `S`. Invariant: `startAddress` is canonical and a multiple of
 * `size.bytes`; `size` is one of the three page sizes, and its literal type keeps a 2 MiB page
 * from being used where a 4 KiB page is expected.
 */
export class Page<S extends PageSize = Size4KiB> {
  private constructor(
    /** The first byte of the page. */
    readonly startAddress: VirtAddr,
    /** The page size (a runtime stand-in for the crate's type parameter). */
    readonly size: S,
  ) {}

  /** `AddressNotAligned` unless `addr` is a multiple of the size (crate `from_start_address`). */
  static fromStartAddress<S extends PageSize>(
    addr: VirtAddr,
    size: S,
  ): Result<Page<S>, AddressNotAligned> {
    return addr % size.bytes === 0
      ? ok(new Page(addr, size))
      : err(new AddressNotAligned(VirtAddr.hex(addr), size));
  }

  /** Builds without the alignment check (internal hot paths only). */
  static fromStartAddressUnchecked<S extends PageSize>(addr: VirtAddr, size: S): Page<S> {
    return new Page(addr, size);
  }

  /** The page that contains `addr` (aligns down; never fails). */
  static containingAddress<S extends PageSize>(addr: VirtAddr, size: S): Page<S> {
    return new Page(VirtAddr.alignDown(addr, size.bytes), size);
  }

  /** The 4 KiB page with these four table indices (P4 ≥ 256 gives a higher-half page). */
  static fromPageTableIndices(
    p4: PageTableIndex,
    p3: PageTableIndex,
    p2: PageTableIndex,
    p1: PageTableIndex,
  ): Page<Size4KiB> {
    return new Page(
      VirtAddr.newUnchecked(p4 * 2 ** 39 + p3 * 2 ** 30 + p2 * 2 ** 21 + p1 * 2 ** 12),
      Size4KiB,
    );
  }

  /** The 2 MiB page with these three table indices. */
  static fromPageTableIndices2MiB(
    p4: PageTableIndex,
    p3: PageTableIndex,
    p2: PageTableIndex,
  ): Page<Size2MiB> {
    return new Page(VirtAddr.newUnchecked(p4 * 2 ** 39 + p3 * 2 ** 30 + p2 * 2 ** 21), Size2MiB);
  }

  /** The 1 GiB page with these two table indices. */
  static fromPageTableIndices1GiB(p4: PageTableIndex, p3: PageTableIndex): Page<Size1GiB> {
    return new Page(VirtAddr.newUnchecked(p4 * 2 ** 39 + p3 * 2 ** 30), Size1GiB);
  }

  /** `[start, end)`. */
  static range<S extends PageSize>(start: Page<S>, end: Page<S>): PageRange<S> {
    return new BlockRange(start, end, false, (a) => new Page(a as VirtAddr, start.size));
  }

  /** `[start, end]`. */
  static rangeInclusive<S extends PageSize>(start: Page<S>, end: Page<S>): PageRangeInclusive<S> {
    return new BlockRange(start, end, true, (a) => new Page(a as VirtAddr, start.size));
  }

  /** The level-4 index of the page. */
  p4Index(): PageTableIndex {
    return indexAt(this.startAddress, 4);
  }

  /** The level-3 index of the page. */
  p3Index(): PageTableIndex {
    return indexAt(this.startAddress, 3);
  }

  /** The level-2 index; only 4 KiB and 2 MiB pages have one (a compile error on 1 GiB pages). */
  p2Index(this: Page<NotGiantPageSize>): PageTableIndex {
    return indexAt(this.startAddress, 2);
  }

  /** The level-1 index; only 4 KiB pages have one. */
  p1Index(this: Page<Size4KiB>): PageTableIndex {
    return indexAt(this.startAddress, 1);
  }

  /** `self + n` pages; throws when the result leaves the canonical half (crate `Add`). */
  add(n: number): Page<S> {
    return new Page(VirtAddr.add(this.startAddress, n * this.size.bytes), this.size);
  }

  /** `self - n` pages. */
  sub(n: number): Page<S> {
    return new Page(VirtAddr.add(this.startAddress, -n * this.size.bytes), this.size);
  }

  /** The number of pages from `other` to this page (crate `Page - Page`), in stored order. */
  since(other: Page<S>): number {
    return (this.startAddress - other.startAddress) / this.size.bytes;
  }

  /** True if both are the same page of the same size. */
  equals(other: Page<AnyPageSize>): boolean {
    return this.startAddress === other.startAddress && this.size === other.size;
  }

  toString(): string {
    return `Page[${this.size.name}](${VirtAddr.hex(this.startAddress)})`;
  }
}

/** Half-open range of pages (the crate's `PageRange<S>`). */
export type PageRange<S extends PageSize = Size4KiB> = BlockRange<Page<S>>;
/** Closed range of pages (the crate's `PageRangeInclusive<S>`). */
export type PageRangeInclusive<S extends PageSize = Size4KiB> = BlockRange<Page<S>>;

/** Re-expresses a 2 MiB page range in 4 KiB pages (crate `PageRange::as_4kib_page_range`). */
export function as4KiBPageRange(range: PageRange<Size2MiB>): PageRange<Size4KiB> {
  return Page.range(
    Page.fromStartAddressUnchecked(range.start.startAddress, Size4KiB),
    Page.fromStartAddressUnchecked(range.end.startAddress, Size4KiB),
  );
}
