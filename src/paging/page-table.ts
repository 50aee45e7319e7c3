/**
 * `PageTableEntry` and `PageTable` (the crate's `page_table.rs`): the 64-bit entry format and a
 * view of one 4 KiB table in simulated RAM.
 */

import { hex, type PhysAddr, TWO_POW_32 } from '../addr.ts';
import type { PhysicalMemory } from '../memory/physical-memory.ts';
import { wordsToBigInt } from '../memory/physical-memory.ts';
import { err, ok, type Result } from '../result.ts';
import { PageTableFlags } from './flags.ts';
import { PhysFrame } from './frame.ts';
import { Size4KiB } from './page-size.ts';
import type { PageTableIndex } from './page-table-index.ts';
import { CratePanic } from './panic.ts';

/** Why `PageTableEntry.frame` has no 4 KiB frame to give (the crate's `FrameError`). */
export type FrameError =
  /** The entry lacks PRESENT. */
  | 'FrameNotPresent'
  /** The entry maps a huge page (HUGE_PAGE set), not a 4 KiB frame or a table. */
  | 'HugeFrame';

/** The physical address field (bits 12..51) of an entry given as its two 32-bit halves. */
export function entryAddr(lo: number, hi: number): number {
  return (hi & 0xfffff) * TWO_POW_32 + (lo >>> 12) * 4096;
}

/** The low half of an entry holding `addr` (4 KiB aligned, < 2^52) and `flags`. */
export function entryLo(addr: number, flags: PageTableFlags): number {
  // `>>> 0` is ToUint32, i.e. addr modulo 2^32 for an integer addr; `%` would be an fmod call.
  return ((addr >>> 0) + (flags & 0xfff)) >>> 0;
}

/** The high half of an entry holding `addr` and `flags`. */
export function entryHi(addr: number, flags: PageTableFlags): number {
  return (Math.floor(addr / TWO_POW_32) | PageTableFlags.entryHiBits(flags)) >>> 0;
}

/**
 * An immutable snapshot of one 64-bit entry, as two unsigned 32-bit halves. Read it from RAM with
 * `PageTable.entry`; the hot paths of the mapper and walker use the halves directly instead.
 */
export class PageTableEntry {
  constructor(
    /** Entry bits 0..31, unsigned. */
    readonly lo: number,
    /** Entry bits 32..63, unsigned. */
    readonly hi: number,
  ) {}

  /** From the 64-bit value. */
  static fromBits(bits: bigint): PageTableEntry {
    const v = BigInt.asUintN(64, bits);
    return new PageTableEntry(Number(v & 0xffff_ffffn), Number(v >> 32n));
  }

  /** An entry pointing at `addr` (4 KiB aligned, < 2^52) with `flags` (crate `set_addr`). */
  static withAddr(addr: PhysAddr, flags: PageTableFlags): PageTableEntry {
    if (addr % 4096 !== 0) throw new CratePanic(`entry address ${hex(addr)} is not 4 KiB aligned`);
    return new PageTableEntry(entryLo(addr, flags), entryHi(addr, flags));
  }

  /** The 64-bit value. */
  bits(): bigint {
    return wordsToBigInt(this.lo, this.hi);
  }

  /** True when all 64 bits are zero (a non-present but non-zero entry is *not* unused). */
  isUnused(): boolean {
    return this.lo === 0 && this.hi === 0;
  }

  /** Bits 12..51: always 4 KiB aligned, possibly zero. */
  addr(): PhysAddr {
    return entryAddr(this.lo, this.hi) as PhysAddr;
  }

  /** Bits 0..11 and 52..63. */
  flags(): PageTableFlags {
    return PageTableFlags.fromEntryWords(this.lo, this.hi);
  }

  /** The 4 KiB frame, or why not: FrameNotPresent is checked before HugeFrame, as in the crate. */
  frame(): Result<PhysFrame<Size4KiB>, FrameError> {
    if ((this.lo & PageTableFlags.PRESENT) === 0) return err('FrameNotPresent');
    if ((this.lo & PageTableFlags.HUGE_PAGE) !== 0) return err('HugeFrame');
    return ok(PhysFrame.fromStartAddressUnchecked(this.addr(), Size4KiB));
  }

  /** `0x… (PRESENT | WRITABLE)`. */
  toString(): string {
    return `${hex(this.bits())} (${this.isUnused() ? 'unused' : `${hex(this.addr())} ${PageTableFlags.names(this.flags())}`})`;
  }
}

/**
 * A view of one 512-entry page table in simulated RAM. Reads and writes go straight to the shared
 * buffer with atomics, so a walker on another thread sees each entry change whole.
 */
export class PageTable {
  private readonly scratch = new Uint32Array(2);

  constructor(
    readonly memory: PhysicalMemory,
    /** The 4 KiB frame that holds the table. */
    readonly frame: PhysFrame<Size4KiB>,
  ) {}

  /** The physical address of entry `index`. */
  entryAddress(index: PageTableIndex): PhysAddr {
    return (this.frame.startAddress + index * 8) as PhysAddr;
  }

  /** A snapshot of entry `index`. */
  entry(index: PageTableIndex): PageTableEntry {
    this.memory.loadEntryWords(this.entryAddress(index), this.scratch);
    return new PageTableEntry(this.scratch[0]!, this.scratch[1]!);
  }

  /** Replaces entry `index` atomically. */
  setEntry(index: PageTableIndex, entry: PageTableEntry): void {
    this.memory.storeEntryWords(this.entryAddress(index), entry.lo, entry.hi);
  }

  /** Writes 0 to all 512 entries (crate `PageTable::zero`). */
  zero(): void {
    this.memory.zeroFrame(this.frame.startAddress);
  }

  /** True when all 512 entries are unused. */
  isEmpty(): boolean {
    for (let i = 0; i < 512; i++) {
      this.memory.loadEntryWords(this.frame.startAddress + i * 8, this.scratch);
      if (this.scratch[0] !== 0 || this.scratch[1] !== 0) return false;
    }
    return true;
  }

  /** `[index, entry]` for every used entry, in index order. */
  *usedEntries(): Generator<[PageTableIndex, PageTableEntry]> {
    for (let i = 0; i < 512; i++) {
      const e = this.entry(i as PageTableIndex);
      if (!e.isUnused()) yield [i as PageTableIndex, e];
    }
  }
}
