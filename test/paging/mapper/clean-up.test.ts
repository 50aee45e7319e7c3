/**
 * Tests of `MappedPageTable.cleanUp` and `cleanUpAddrRange` (src/paging/mapper) against
 * shared/spec/x86_64-semantics.md §8: empty child tables are unlinked and handed to the
 * deallocator bottom-up, level-1 contents are never touched, huge and non-present entries are
 * skipped, the level-4 table is never freed, and a range only visits the entries it intersects.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PhysAddr, VirtAddr } from '../../../src/addr.ts';
import { PhysicalMemory } from '../../../src/memory/physical-memory.ts';
import { BitmapFrameAllocator } from '../../../src/paging/bitmap-frame-allocator.ts';
import { PageTableFlags } from '../../../src/paging/flags.ts';
import { PhysFrame } from '../../../src/paging/frame.ts';
import type { FrameDeallocator } from '../../../src/paging/frame-allocator.ts';
import { MappedPageTable } from '../../../src/paging/mapper/index.ts';
import { Page } from '../../../src/paging/page.ts';
import {
  type AnyPageSize,
  type PageSize,
  Size1GiB,
  Size2MiB,
  Size4KiB,
} from '../../../src/paging/page-size.ts';
import type { Result } from '../../../src/result.ts';

const { PRESENT, WRITABLE, HUGE_PAGE } = PageTableFlags;
const F = PageTableFlags.of;
const ADDR_MASK = 0x000f_ffff_ffff_f000n;
const KIB4 = 4096;
const RAM_BYTES = 256 * KIB4;

function va(p4: number, p3 = 0, p2 = 0, p1 = 0): VirtAddr {
  return VirtAddr.newTruncate(p4 * 2 ** 39 + p3 * 2 ** 30 + p2 * 2 ** 21 + p1 * 2 ** 12);
}

function indexOf(addr: number, level: number): number {
  return Math.floor(addr / 2 ** (12 + 9 * (level - 1))) % 512;
}

function pg<S extends PageSize>(addr: VirtAddr, size: S): Page<S> {
  const r = Page.fromStartAddress(addr, size);
  if (!r.ok) throw r.error;
  return r.value;
}

const p4k = (addr: VirtAddr): Page<Size4KiB> => pg(addr, Size4KiB);

function fr<S extends PageSize>(addr: number, size: S): PhysFrame<S> {
  const r = PhysFrame.fromStartAddress(PhysAddr.new(addr), size);
  if (!r.ok) throw r.error;
  return r.value;
}

function okOf<T, E>(r: Result<T, E>): T {
  if (!r.ok) throw new Error(`expected ok, got ${JSON.stringify(r.error)}`);
  return r.value;
}

/** Inclusive 4 KiB page range from the page at `first` to the page at `last`. */
function range(first: VirtAddr, last: VirtAddr) {
  return Page.rangeInclusive(p4k(first), p4k(last));
}

/** Last 4 KiB page before `addr`. */
function pageBefore(addr: VirtAddr): VirtAddr {
  return VirtAddr.newUnchecked(addr - KIB4);
}

/**
 * RAM with the level-4 table in frame 0 (reserved in the bitmap, so a stray free of it would
 * throw), a `BitmapFrameAllocator` over all of RAM, and a deallocator that records what it frees.
 */
function setup(allocatorEnd = RAM_BYTES) {
  const memory = new PhysicalMemory(RAM_BYTES);
  const bitmap = BitmapFrameAllocator.create({ start: 0, end: allocatorEnd });
  bitmap.reserve(fr(0, Size4KiB));
  const mapper = new MappedPageTable(memory, fr(0, Size4KiB));
  const freed: number[] = [];
  const dealloc: FrameDeallocator = {
    deallocateFrame(frame) {
      freed.push(frame.startAddress);
      bitmap.deallocateFrame(frame);
    },
  };
  const map = (page: Page<AnyPageSize>, frame: PhysFrame<AnyPageSize>): void =>
    okOf(mapper.mapTo(page, frame, F(PRESENT, WRITABLE), bitmap)).ignore();
  const unmap = (page: Page<AnyPageSize>): void => okOf(mapper.unmap(page)).flush.ignore();
  /** Maps then unmaps a 4 KiB page: leaves its P3/P2/P1 chain allocated and empty. */
  const emptyChain = (addr: VirtAddr): void => {
    map(p4k(addr), fr(0x9000_0000, Size4KiB));
    unmap(p4k(addr));
  };
  /** Physical address of the level-`level` entry on the way to `addr` (follows addresses only). */
  const entryAt = (addr: number, level: number): number => {
    let table = 0;
    for (let l = 4; l > level; l--) {
      table = Number(memory.loadEntry(table + indexOf(addr, l) * 8) & ADDR_MASK);
      if (table === 0) throw new Error('test walk: missing table');
    }
    return table + indexOf(addr, level) * 8;
  };
  const read = (addr: number, level: number): bigint => memory.loadEntry(entryAt(addr, level));
  /** The table the level-`level` entry on the way to `addr` points to. */
  const tableAt = (addr: number, level: number): number => Number(read(addr, level) & ADDR_MASK);
  const allocated = (): number[] => bitmap.allocatedFrames().map((f) => f.startAddress);
  const snapshot = (): Buffer => Buffer.from(new Uint8Array(memory.buffer).slice());
  return {
    memory,
    bitmap,
    mapper,
    freed,
    dealloc,
    map,
    unmap,
    emptyChain,
    read,
    tableAt,
    allocated,
    snapshot,
  };
}

describe('cleanUp', () => {
  it('unlinks and frees every empty table bottom-up; P4 stays', () => {
    const s = setup();
    const addr = va(1, 2, 3, 4);
    s.emptyChain(addr);
    const [p3, p2, p1] = [s.tableAt(addr, 4), s.tableAt(addr, 3), s.tableAt(addr, 2)];
    expect([p3, p2, p1]).toEqual([0x1000, 0x2000, 0x3000]);
    s.mapper.cleanUp(s.dealloc);
    expect(s.freed).toEqual([p1, p2, p3]);
    expect(s.memory.loadEntry(1 * 8)).toBe(0n);
    expect(s.allocated()).toEqual([0]);
    expect(s.mapper.translate(addr)).toEqual({ kind: 'NotMapped' });
    expect(s.mapper.flushLedger.created).toBe(2); // map + unmap only
    // The freed frames are reused by the next map.
    s.map(p4k(addr), fr(0x9000_0000, Size4KiB));
    expect(s.allocated()).toEqual([0, 0x1000, 0x2000, 0x3000]);
  });

  it('is idempotent, and on an empty level-4 table frees nothing (P4 is never freed)', () => {
    const s = setup();
    s.mapper.cleanUp(s.dealloc);
    expect(s.freed).toEqual([]);
    s.emptyChain(va(1, 2, 3, 4));
    s.mapper.cleanUp(s.dealloc);
    s.mapper.cleanUp(s.dealloc);
    expect(s.freed).toHaveLength(3);
    expect(s.freed).not.toContain(0);
    expect(s.allocated()).toEqual([0]);
  });

  it('keeps a P1 table with a present leaf, and RAM is unchanged', () => {
    const s = setup();
    s.map(p4k(va(1, 2, 3, 4)), fr(0x9000_0000, Size4KiB));
    const ram = s.snapshot();
    s.mapper.cleanUp(s.dealloc);
    expect(s.freed).toEqual([]);
    expect(s.snapshot().equals(ram)).toBe(true);
  });

  it.each([
    ['a non-present leaf (address only)', 0x9000_0000n],
    ['a leaf with only WRITABLE', 0x2n],
    ['a leaf with only NO_EXECUTE (high half)', 1n << 63n],
  ])('P1 contents are untouched: %s keeps its table', (_, value) => {
    const s = setup();
    const addr = va(1, 2, 3, 4);
    s.map(p4k(addr), fr(0x9000_0000, Size4KiB));
    s.memory.storeEntry(s.tableAt(addr, 2) + 4 * 8, value);
    const ram = s.snapshot();
    s.mapper.cleanUp(s.dealloc);
    expect(s.freed).toEqual([]);
    expect(s.snapshot().equals(ram)).toBe(true);
  });

  it('frees only the empty siblings and keeps the tables that still hold them', () => {
    const s = setup();
    const gone = va(1, 2, 3, 4);
    const kept = va(1, 2, 4, 4);
    s.map(p4k(gone), fr(0x9000_0000, Size4KiB));
    s.map(p4k(kept), fr(0x9000_1000, Size4KiB));
    const p1Gone = s.tableAt(gone, 2);
    const p1Kept = s.tableAt(kept, 2);
    s.unmap(p4k(gone));
    s.mapper.cleanUp(s.dealloc);
    expect(s.freed).toEqual([p1Gone]);
    expect(s.read(gone, 2)).toBe(0n);
    expect(s.tableAt(kept, 2)).toBe(p1Kept);
    expect(s.mapper.translateAddr(kept)).toBe(0x9000_1000);
  });

  it('frees a whole empty P3 subtree while its P3 table stays for a sibling', () => {
    const s = setup();
    const gone = va(1, 2, 3, 4);
    const kept = va(1, 5, 0, 0);
    s.map(p4k(gone), fr(0x9000_0000, Size4KiB));
    s.map(p4k(kept), fr(0x9000_1000, Size4KiB));
    const p2 = s.tableAt(gone, 3);
    const p1 = s.tableAt(gone, 2);
    const p3 = s.tableAt(gone, 4);
    s.unmap(p4k(gone));
    s.mapper.cleanUp(s.dealloc);
    expect(s.freed).toEqual([p1, p2]);
    expect(s.read(gone, 3)).toBe(0n);
    expect(s.tableAt(kept, 4)).toBe(p3);
  });

  it('skips huge leaves: a 2 MiB and a 1 GiB leaf keep their tables', () => {
    const s = setup();
    s.map(pg(va(1, 2, 3), Size2MiB), fr(0x20_0000, Size2MiB));
    s.map(pg(va(2, 7), Size1GiB), fr(0x4000_0000, Size1GiB));
    const ram = s.snapshot();
    s.mapper.cleanUp(s.dealloc);
    expect(s.freed).toEqual([]);
    expect(s.snapshot().equals(ram)).toBe(true);
  });

  it('a huge leaf is not followed, even when it points at an empty table frame', () => {
    const s = setup();
    const addr = va(1, 2, 3, 4);
    s.emptyChain(addr);
    const p1 = s.tableAt(addr, 2);
    // update_flags on the 2 MiB page turns the P2 table pointer into a huge leaf at the P1 table.
    okOf(s.mapper.updateFlags(pg(va(1, 2, 3), Size2MiB), F(PRESENT, WRITABLE))).ignore();
    s.mapper.cleanUp(s.dealloc);
    expect(s.freed).toEqual([]);
    expect(s.read(addr, 2)).toBe(BigInt(p1) | PageTableFlags.bits(F(PRESENT, WRITABLE, HUGE_PAGE)));
    expect(s.allocated()).toContain(p1);
  });

  it('a present P4 entry with HUGE_PAGE is skipped', () => {
    const s = setup();
    const addr = va(1, 2, 3, 4);
    s.emptyChain(addr);
    okOf(s.mapper.setFlagsP4Entry(p4k(addr), F(PRESENT, HUGE_PAGE))).ignore();
    s.mapper.cleanUp(s.dealloc);
    expect(s.freed).toEqual([]);
  });

  it.each([
    ['P2', 2],
    ['P3', 3],
    ['P4', 4],
  ] as const)('a non-present %s entry is skipped (its empty subtree is not freed)', (_, level) => {
    const s = setup();
    const addr = va(1, 2, 3, 4);
    s.emptyChain(addr);
    const page = p4k(addr);
    const r =
      level === 2
        ? s.mapper.setFlagsP2Entry(page, F(WRITABLE))
        : level === 3
          ? s.mapper.setFlagsP3Entry(page, F(WRITABLE))
          : s.mapper.setFlagsP4Entry(page, F(WRITABLE));
    okOf(r).ignore();
    const ram = s.snapshot();
    s.mapper.cleanUp(s.dealloc);
    expect(s.freed).toEqual([]);
    expect(s.snapshot().equals(ram)).toBe(true);
  });

  it('frees the tables a failed map left linked (FrameAllocationFailed, no rollback)', () => {
    const s = setup(3 * KIB4); // frame 0 is P4, so two frames for tables
    const addr = va(1, 2, 3, 4);
    const r = s.mapper.mapTo(p4k(addr), fr(0x9000_0000, Size4KiB), F(PRESENT), s.bitmap);
    expect(r).toEqual({ ok: false, error: { kind: 'FrameAllocationFailed' } });
    expect(s.allocated()).toEqual([0, 0x1000, 0x2000]);
    s.mapper.cleanUp(s.dealloc);
    expect(s.freed).toEqual([0x2000, 0x1000]);
    expect(s.allocated()).toEqual([0]);
  });
});

describe('cleanUpAddrRange', () => {
  it('tables outside the range are kept even if empty', () => {
    const s = setup();
    s.emptyChain(va(1, 2, 3, 4));
    s.emptyChain(va(2, 0, 0, 0));
    const outside = [s.tableAt(va(1), 4), s.tableAt(va(1, 2), 3), s.tableAt(va(1, 2, 3), 2)];
    const inside = [s.tableAt(va(2), 4), s.tableAt(va(2), 3), s.tableAt(va(2), 2)];
    s.mapper.cleanUpAddrRange(range(va(2), pageBefore(va(3))), s.dealloc);
    expect(s.freed).toEqual([...inside].reverse());
    expect(s.memory.loadEntry(2 * 8)).toBe(0n);
    expect([s.tableAt(va(1), 4), s.tableAt(va(1, 2), 3), s.tableAt(va(1, 2, 3), 2)]).toEqual(
      outside,
    );
    expect(s.allocated()).toEqual([0, ...outside]);
  });

  it('visits only the P2 entries the range covers', () => {
    const s = setup();
    s.emptyChain(va(1, 2, 3, 4));
    s.emptyChain(va(1, 2, 4, 4));
    const p1At3 = s.tableAt(va(1, 2, 3), 2);
    const p1At4 = s.tableAt(va(1, 2, 4), 2);
    s.mapper.cleanUpAddrRange(range(va(1, 2, 4), pageBefore(va(1, 2, 5))), s.dealloc);
    expect(s.freed).toEqual([p1At4]);
    expect(s.read(va(1, 2, 4), 2)).toBe(0n);
    expect(s.tableAt(va(1, 2, 3), 2)).toBe(p1At3);
  });

  it('the range end is inclusive: a range ending one page short of a P2 span leaves it', () => {
    const s = setup();
    s.emptyChain(va(1, 2, 4, 4));
    const p1 = s.tableAt(va(1, 2, 4), 2);
    s.mapper.cleanUpAddrRange(range(va(1, 2, 0), pageBefore(va(1, 2, 4))), s.dealloc);
    expect(s.freed).toEqual([]);
    s.mapper.cleanUpAddrRange(range(va(1, 2, 0), va(1, 2, 4)), s.dealloc);
    expect(s.freed[0]).toBe(p1);
    expect(s.freed).toHaveLength(3);
  });

  it('a one-page range frees the whole empty chain above that page', () => {
    const s = setup();
    s.emptyChain(va(1, 2, 3, 4));
    s.mapper.cleanUpAddrRange(range(va(1, 2, 3, 9), va(1, 2, 3, 9)), s.dealloc);
    expect(s.freed).toEqual([0x3000, 0x2000, 0x1000]);
    expect(s.allocated()).toEqual([0]);
  });

  it('an empty table beside the range keeps itself and its parents', () => {
    const s = setup();
    s.emptyChain(va(1, 2, 3, 4));
    s.mapper.cleanUpAddrRange(range(va(1, 2, 5), va(1, 2, 6)), s.dealloc);
    expect(s.freed).toEqual([]);
  });

  it('an empty range (start after end) frees nothing', () => {
    const s = setup();
    s.emptyChain(va(1, 2, 3, 4));
    s.mapper.cleanUpAddrRange(range(va(1, 3), va(1, 2)), s.dealloc);
    expect(s.freed).toEqual([]);
  });

  it('a higher-half range frees only higher-half tables', () => {
    const s = setup();
    s.emptyChain(va(1, 2, 3, 4));
    s.emptyChain(va(256, 1, 1, 1));
    s.emptyChain(va(511, 511, 511, 511));
    const lower = s.tableAt(va(1), 4);
    s.mapper.cleanUpAddrRange(
      range(VirtAddr.new(0xffff_8000_0000_0000n), VirtAddr.new(0xffff_ffff_ffff_f000n)),
      s.dealloc,
    );
    expect(s.freed).toHaveLength(6);
    expect(s.memory.loadEntry(256 * 8)).toBe(0n);
    expect(s.memory.loadEntry(511 * 8)).toBe(0n);
    expect(s.tableAt(va(1), 4)).toBe(lower);
    expect(s.allocated()).toHaveLength(4);
  });

  it('a range across two P4 entries frees what it covers in each, clipped per level', () => {
    const s = setup();
    s.emptyChain(va(1, 2, 3, 4)); // P4[1]'s P3[2]: before the range starts
    s.emptyChain(va(2, 0, 0, 0)); // P4[2]'s P3[0]: inside the range
    s.emptyChain(va(2, 9, 0, 0)); // P4[2]'s P3[9]: after the range ends
    const p3Of1 = s.tableAt(va(1), 4);
    const p3Of2 = s.tableAt(va(2), 4);
    const chain20 = [s.tableAt(va(2, 0), 3), s.tableAt(va(2, 0, 0), 2)];
    s.mapper.cleanUpAddrRange(range(va(1, 100), pageBefore(va(2, 1))), s.dealloc);
    // P4[1]'s P3 keeps its P3[2] link (not visited), so it is not empty.
    // P4[2]'s P3 loses P3[0] but keeps P3[9], so it is not empty either.
    expect(s.freed).toEqual([...chain20].reverse());
    expect(s.tableAt(va(1), 4)).toBe(p3Of1);
    expect(s.tableAt(va(2), 4)).toBe(p3Of2);
    expect(s.read(va(2, 0), 3)).toBe(0n);
    expect(s.read(va(2, 9), 3)).not.toBe(0n);
  });
});

describe('cleanUp property: after unmapping any subset, exactly the empty tables are freed', () => {
  const PAGES: readonly Page<AnyPageSize>[] = [
    p4k(va(0, 0, 0, 1)),
    p4k(va(0, 0, 0, 2)),
    p4k(va(0, 0, 7, 3)),
    p4k(va(0, 3, 1, 1)),
    p4k(va(3, 3, 3, 3)),
    p4k(va(300, 0, 0, 0)),
    p4k(va(511, 511, 511, 511)),
    pg(va(0, 0, 8), Size2MiB),
    pg(va(0, 4, 0), Size2MiB),
    pg(va(511, 511, 510), Size2MiB),
    pg(va(0, 5), Size1GiB),
    pg(va(4, 0), Size1GiB),
  ];
  const frameFor = (page: Page<AnyPageSize>, i: number): PhysFrame<AnyPageSize> =>
    fr((i + 1) * page.size.bytes, page.size) as PhysFrame<AnyPageSize>;

  /** Every table reachable from P4 through present non-huge entries above level 1. */
  function reachableTables(memory: PhysicalMemory): number[] {
    const out: number[] = [];
    const visit = (table: number, level: number): void => {
      if (level === 1) return;
      for (let i = 0; i < 512; i++) {
        const e = memory.loadEntry(table + i * 8);
        if ((e & 1n) === 0n || (e & 0x80n) !== 0n) continue;
        const child = Number(e & ADDR_MASK);
        out.push(child);
        visit(child, level - 1);
      }
    };
    visit(0, 4);
    return out.sort((a, b) => a - b);
  }

  it('holds for random subsets', () => {
    fc.assert(
      fc.property(
        fc.subarray([...PAGES.keys()]),
        fc.subarray([...PAGES.keys()]),
        (mappedIdx, unmapIdx) => {
          const s = setup();
          for (const i of mappedIdx) s.map(PAGES[i]!, frameFor(PAGES[i]!, i));
          for (const i of unmapIdx) if (mappedIdx.includes(i)) s.unmap(PAGES[i]!);
          const tablesBefore = s.allocated().filter((a) => a !== 0);
          s.mapper.cleanUp(s.dealloc);
          const remaining = reachableTables(s.memory);
          // Every frame that was a table is either still reachable or was freed, never both.
          expect([...remaining, ...s.freed].sort((a, b) => a - b)).toEqual(tablesBefore);
          expect(s.allocated()).toEqual([0, ...remaining]);
          // No reachable table below P4 is empty any more.
          for (const t of remaining) {
            let used = false;
            for (let i = 0; i < 512 && !used; i++) used = s.memory.loadEntry(t + i * 8) !== 0n;
            expect(used).toBe(true);
          }
          // Mappings are untouched.
          PAGES.forEach((page, i) => {
            const live = mappedIdx.includes(i) && !unmapIdx.includes(i);
            expect(s.mapper.translateAddr(page.startAddress)).toBe(
              live ? frameFor(page, i).startAddress : undefined,
            );
          });
        },
      ),
      { numRuns: 60 },
    );
  });
});
