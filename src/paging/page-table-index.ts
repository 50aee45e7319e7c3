/**
 * `PageTableIndex`, `PageOffset` and `PageTableLevel` (the crate's `page_table.rs` helpers).
 */

import { CratePanic } from './panic.ts';

declare const indexBrand: unique symbol;
declare const offsetBrand: unique symbol;

/** An index into a page table. Invariant: only ever 0..512. */
export type PageTableIndex = number & { readonly [indexBrand]: 'PageTableIndex' };

/** An offset inside a 4 KiB page. Invariant: only ever 0..4096. */
export type PageOffset = number & { readonly [offsetBrand]: 'PageOffset' };

export const PageTableIndex = {
  /** Panics (throws `CratePanic`) for 512 or more, like the crate's `PageTableIndex::new`. */
  new(index: number): PageTableIndex {
    if (!Number.isInteger(index) || index < 0 || index >= 512) {
      throw new CratePanic(`page table index ${index} is out of range: it must be below 512`);
    }
    return index as PageTableIndex;
  },
  /** Reduces modulo 512. */
  newTruncate(index: number): PageTableIndex {
    return (index & 511) as PageTableIndex;
  },
} as const;

export const PageOffset = {
  /** Panics (throws `CratePanic`) for 4096 or more, like the crate's `PageOffset::new`. */
  new(offset: number): PageOffset {
    if (!Number.isInteger(offset) || offset < 0 || offset >= 4096) {
      throw new CratePanic(`page offset ${offset} is out of range: it must be below 4096`);
    }
    return offset as PageOffset;
  },
  /** Reduces modulo 4096. */
  newTruncate(offset: number): PageOffset {
    return (offset & 4095) as PageOffset;
  },
} as const;

/** A paging level: 4 is the PML4 (P4), 1 the page table (P1). */
export type PageTableLevel = 1 | 2 | 3 | 4;

export const PageTableLevel = {
  /** Bytes mapped by one entry of a table at this level: 2^(12 + 9·(level − 1)). */
  entryAddressSpace(level: PageTableLevel): number {
    return 2 ** (12 + 9 * (level - 1));
  },
  /** Bytes mapped by a whole table at this level: 2^(12 + 9·level). */
  tableAddressSpace(level: PageTableLevel): number {
    return 2 ** (12 + 9 * level);
  },
  /** The level below, or undefined at level 1. */
  nextLower(level: PageTableLevel): PageTableLevel | undefined {
    return level === 1 ? undefined : ((level - 1) as PageTableLevel);
  },
  /** The level above, or undefined at level 4. */
  nextHigher(level: PageTableLevel): PageTableLevel | undefined {
    return level === 4 ? undefined : ((level + 1) as PageTableLevel);
  },
} as const;

/**
 * The table index of a 48-bit virtual address at a level, with 32-bit operators only: the
 * address is split into halves first because JS bitwise operators truncate to 32 bits.
 */
export function indexAt(addr: number, level: PageTableLevel): PageTableIndex {
  const lo = addr >>> 0;
  const hi = (addr / 4294967296) >>> 0;
  switch (level) {
    case 4:
      return ((hi >>> 7) & 511) as PageTableIndex;
    case 3:
      return (((hi << 2) | (lo >>> 30)) & 511) as PageTableIndex;
    case 2:
      return ((lo >>> 21) & 511) as PageTableIndex;
    case 1:
      return ((lo >>> 12) & 511) as PageTableIndex;
  }
}
