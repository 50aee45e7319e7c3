/**
 * `PageTableFlags` (the crate's bitflags type in `page_table.rs`), packed into 24 bits.
 *
 * In a 64-bit entry the flags live in bits 0..11 and 52..63; bits 12..51 are the physical address
 * and never flags (§1 of the semantics notes). Packing bits 52..63 down to 12..23 makes a flag word
 * a small integer, so hot paths combine and test flags with 32-bit operators and no BigInt. The
 * 64-bit form exists only at the edges (`bits`, `fromBits`, hex).
 */

import { hex } from '../addr.ts';
import { err, ok, type Result } from '../result.ts';

declare const flagsBrand: unique symbol;

/** A set of page-table entry flags. Invariant: a 24-bit integer (entry bits 0..11, 52..63). */
export type PageTableFlags = number & { readonly [flagsBrand]: 'PageTableFlags' };

const f = (bit: number): PageTableFlags =>
  (bit < 12 ? 1 << bit : (1 << (bit - 40)) >>> 0) as PageTableFlags;

/** Every named bit, by its crate name, in entry-bit order. */
const NAMED = {
  /** Bit 0: the entry is valid; without it the walker faults and ignores every other bit. */
  PRESENT: f(0),
  /** Bit 1: writes allowed (for supervisor too when CR0.WP is set). */
  WRITABLE: f(1),
  /** Bit 2: CPL-3 accesses allowed. */
  USER_ACCESSIBLE: f(2),
  /** Bit 3: write-through caching. */
  WRITE_THROUGH: f(3),
  /** Bit 4: caching disabled. */
  NO_CACHE: f(4),
  /** Bit 5: set by the walker on every entry it uses. */
  ACCESSED: f(5),
  /** Bit 6: set by the walker on the leaf on the first write. */
  DIRTY: f(6),
  /** Bit 7: a leaf at level 2 or 3 (a 2 MiB or 1 GiB page); must be 0 at level 4. */
  HUGE_PAGE: f(7),
  /** Bit 8: with CR4.PGE the TLB entry survives CR3 writes. */
  GLOBAL: f(8),
  /** Bits 9..11 and 52..62: free for the OS. */
  BIT_9: f(9),
  BIT_10: f(10),
  BIT_11: f(11),
  BIT_52: f(52),
  BIT_53: f(53),
  BIT_54: f(54),
  BIT_55: f(55),
  BIT_56: f(56),
  BIT_57: f(57),
  BIT_58: f(58),
  BIT_59: f(59),
  BIT_60: f(60),
  BIT_61: f(61),
  BIT_62: f(62),
  /** Bit 63: instruction fetches fault (with EFER.NXE). */
  NO_EXECUTE: f(63),
} as const;

/** The error of `PageTableFlags.fromBits`: the 64-bit word has address bits (12..51) set. */
export class FlagsNotValid extends Error {
  override readonly name = 'FlagsNotValid';
  constructor(readonly value: bigint) {
    super(
      `flag word ${hex(value)} has bits 12..51 set: those are the physical-address field of an entry and are never flags`,
    );
  }
}

const ADDRESS_BITS = 0x000f_ffff_ffff_f000n;

/** Constants and conversions of `PageTableFlags`. */
export const PageTableFlags = {
  ...NAMED,
  /** No flag set. */
  empty: 0 as PageTableFlags,
  /** Every bit the type can hold. */
  all: 0xffffff as PageTableFlags,

  /** Union of any number of flag sets: `PageTableFlags.of(PRESENT, WRITABLE)`. */
  of(...parts: PageTableFlags[]): PageTableFlags {
    let v = 0;
    for (const p of parts) v |= p;
    return v as PageTableFlags;
  },

  /** From the 64-bit entry form; `FlagsNotValid` when any of bits 12..51 is set. */
  fromBits(bits: bigint): Result<PageTableFlags, FlagsNotValid> {
    if (bits < 0n || bits >= 1n << 64n || (bits & ADDRESS_BITS) !== 0n)
      return err(new FlagsNotValid(bits));
    return ok((Number(bits & 0xfffn) | (Number(bits >> 52n) << 12)) as PageTableFlags);
  },

  /** From the 64-bit entry form, dropping bits 12..51 (the crate's `from_bits_truncate`). */
  fromBitsTruncate(bits: bigint): PageTableFlags {
    const b = BigInt.asUintN(64, bits);
    return (Number(b & 0xfffn) | (Number(b >> 52n) << 12)) as PageTableFlags;
  },

  /** The 64-bit entry form (`bits()` in the crate). */
  bits(flags: PageTableFlags): bigint {
    return BigInt(flags & 0xfff) | (BigInt(flags >>> 12) << 52n);
  },

  /** Lowercase hex of the 64-bit form, as the replay and scenario formats print flags. */
  hex(flags: PageTableFlags): string {
    return hex(PageTableFlags.bits(flags));
  },

  /** True if every flag of `other` is in `flags`. */
  contains(flags: PageTableFlags, other: PageTableFlags): boolean {
    return (flags & other) === other;
  },

  /** The flags of `flags` that are not in `other`. */
  difference(flags: PageTableFlags, other: PageTableFlags): PageTableFlags {
    return (flags & ~other) as PageTableFlags;
  },

  /** The flags in both. */
  intersection(flags: PageTableFlags, other: PageTableFlags): PageTableFlags {
    return (flags & other) as PageTableFlags;
  },

  /** Crate names of the set bits, low bit first: `PRESENT | WRITABLE | NO_EXECUTE`. */
  names(flags: PageTableFlags): string {
    const names = Object.entries(NAMED)
      .filter(([, bit]) => (flags & bit) !== 0)
      .map(([name]) => name);
    return names.length === 0 ? '(empty)' : names.join(' | ');
  },

  /** The flags of an entry given as its two 32-bit halves. */
  fromEntryWords(lo: number, hi: number): PageTableFlags {
    return ((lo & 0xfff) | ((hi >>> 20) << 12)) as PageTableFlags;
  },

  /** The low-word bits (0..11) of an entry with these flags. */
  entryLoBits(flags: PageTableFlags): number {
    return flags & 0xfff;
  },

  /** The high-word bits (20..31 of the high half, i.e. entry bits 52..63) of these flags. */
  entryHiBits(flags: PageTableFlags): number {
    return ((flags >>> 12) << 20) >>> 0;
  },
} as const;

/** The parent-table flags `map_to` derives from leaf flags (crate `Mapper::map_to`). */
export const PARENT_FLAGS_MASK = PageTableFlags.of(
  PageTableFlags.PRESENT,
  PageTableFlags.WRITABLE,
  PageTableFlags.USER_ACCESSIBLE,
);
