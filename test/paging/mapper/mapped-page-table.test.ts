/**
 * Rule-by-rule tests of `MappedPageTable` and `OffsetPageTable` (src/paging/mapper) against
 * shared/spec/x86_64-semantics.md §5-§6: map_to, map_to_with_table_flags, identity_map, unmap,
 * update_flags, set_flags_p4/p3/p2, translate_page, translate and translate_addr, for every page
 * size a rule applies to. Side effects are read back from RAM entry by entry with
 * `memory.loadEntry`, through a test-side walk that never uses the mapper.
 */

import { describe, expect, it } from 'vitest';
import { PhysAddr, VirtAddr } from '../../../src/addr.ts';
import { MemoryError, PhysicalMemory } from '../../../src/memory/physical-memory.ts';
import { PageTableFlags } from '../../../src/paging/flags.ts';
import { PhysFrame } from '../../../src/paging/frame.ts';
import { BumpFrameAllocator, type FrameAllocator } from '../../../src/paging/frame-allocator.ts';
import {
  MappedPageTable,
  MapperFlush,
  MapperFlushAll,
  OffsetPageTable,
  TableFrameOutsideRam,
} from '../../../src/paging/mapper/index.ts';
import { Page } from '../../../src/paging/page.ts';
import {
  type AnyPageSize,
  type PageSize,
  Size1GiB,
  Size2MiB,
  Size4KiB,
} from '../../../src/paging/page-size.ts';
import { CratePanic } from '../../../src/paging/panic.ts';
import type { Result } from '../../../src/result.ts';

// ---- fixtures -------------------------------------------------------------------------------

const {
  PRESENT,
  WRITABLE,
  USER_ACCESSIBLE,
  WRITE_THROUGH,
  NO_CACHE,
  ACCESSED,
  DIRTY,
  HUGE_PAGE,
  GLOBAL,
  BIT_9,
  BIT_11,
  BIT_52,
  BIT_62,
  NO_EXECUTE,
} = PageTableFlags;
const F = PageTableFlags.of;
const EMPTY = PageTableFlags.empty;
/** The parent flags `map_to` derives: flags ∩ {PRESENT, WRITABLE, USER_ACCESSIBLE}. */
const PWU = F(PRESENT, WRITABLE, USER_ACCESSIBLE);
/** Every leaf flag that must not reach a parent. */
const NON_PARENT = F(
  WRITE_THROUGH,
  NO_CACHE,
  ACCESSED,
  DIRTY,
  GLOBAL,
  BIT_9,
  BIT_11,
  BIT_52,
  BIT_62,
  NO_EXECUTE,
);
const ADDR_MASK = 0x000f_ffff_ffff_f000n;
const KIB4 = 4096;
const MIB2 = 2 ** 21;
const RAM_BYTES = 64 * KIB4;
/** The level-4 table lives in frame 0; allocators hand out frames from 0x1000 on. */
const P4_FRAME = 0;
const FIRST_TABLE = 0x1000;

/** The 64-bit entry value `addr | flags`, as the crate's `set_addr` writes it. */
function ent(addr: number, flags: PageTableFlags): bigint {
  return BigInt(addr) | PageTableFlags.bits(flags);
}

/** The flag bits of an entry value (everything outside bits 12..51). */
function flagBits(entry: bigint): bigint {
  return entry & ~ADDR_MASK;
}

/** The table index of a (stored 48-bit) virtual address at `level`, computed independently. */
function indexOf(addr: number, level: number): number {
  return Math.floor(addr / 2 ** (12 + 9 * (level - 1))) % 512;
}

/** The virtual address with these indices (P4 ≥ 256 gives a higher-half address). */
function va(p4: number, p3 = 0, p2 = 0, p1 = 0, offset = 0): VirtAddr {
  return VirtAddr.newTruncate(p4 * 2 ** 39 + p3 * 2 ** 30 + p2 * 2 ** 21 + p1 * 2 ** 12 + offset);
}

function pg<S extends PageSize>(addr: VirtAddr, size: S): Page<S> {
  const r = Page.fromStartAddress(addr, size);
  if (!r.ok) throw r.error;
  return r.value;
}

function fr<S extends PageSize>(addr: number, size: S): PhysFrame<S> {
  const r = PhysFrame.fromStartAddress(PhysAddr.new(addr), size);
  if (!r.ok) throw r.error;
  return r.value;
}

function okOf<T, E>(r: Result<T, E>): T {
  if (!r.ok) throw new Error(`expected ok, got ${JSON.stringify(r.error)}`);
  return r.value;
}

function errOf<T, E>(r: Result<T, E>): E {
  if (r.ok) throw new Error('expected an error, got ok');
  return r.error;
}

/** An allocator that hands out exactly the given frames, in order. */
function listAllocator(addrs: number[]): FrameAllocator & { issued: number[] } {
  const queue = [...addrs];
  const issued: number[] = [];
  return {
    issued,
    allocateFrame() {
      const a = queue.shift();
      if (a === undefined) return undefined;
      issued.push(a);
      return fr(a, Size4KiB);
    },
  };
}

/** RAM with the level-4 table in frame 0 and a bump allocator over `tableFrames` frames at 0x1000. */
function setup(tableFrames = 16, ramBytes = RAM_BYTES) {
  const memory = new PhysicalMemory(ramBytes);
  const allocator = new BumpFrameAllocator(FIRST_TABLE, FIRST_TABLE + tableFrames * KIB4);
  const mapper = new MappedPageTable(memory, fr(P4_FRAME, Size4KiB));
  /** Physical address of the level-`level` entry on the way to `addr` (follows addresses only). */
  const entryAt = (addr: number, level: number): number => {
    let table = P4_FRAME;
    for (let l = 4; l > level; l--) {
      const next = Number(memory.loadEntry(table + indexOf(addr, l) * 8) & ADDR_MASK);
      if (next === 0)
        throw new Error(`test walk: no table below level ${l} for 0x${addr.toString(16)}`);
      table = next;
    }
    return table + indexOf(addr, level) * 8;
  };
  const read = (addr: number, level: number): bigint => memory.loadEntry(entryAt(addr, level));
  const write = (addr: number, level: number, value: bigint): void =>
    memory.storeEntry(entryAt(addr, level), value);
  /** Maps with `mapTo` and expects success (the flush is ignored). */
  const map = (
    page: Page<AnyPageSize>,
    frame: PhysFrame<AnyPageSize>,
    flags: PageTableFlags = F(PRESENT, WRITABLE),
  ): void => okOf(mapper.mapTo(page, frame, flags, allocator)).ignore();
  /** A copy of all of RAM (a Buffer, so comparing two is one memcmp). */
  const snapshot = (): Buffer => Buffer.from(new Uint8Array(memory.buffer).slice());
  return { memory, allocator, mapper, entryAt, read, write, map, snapshot };
}

interface SizeCase {
  readonly name: AnyPageSize['name'];
  readonly size: AnyPageSize;
  /** The level whose entry is the leaf: 1, 2 or 3. */
  readonly leaf: 1 | 2 | 3;
  /** P4 index 1, P3 index 2, P2 index 3, P1 index 4 (as far as the size has them). */
  readonly page: Page<AnyPageSize>;
  /** Another page of the same size that shares every parent table with `page`. */
  readonly sibling: Page<AnyPageSize>;
  readonly frame: PhysFrame<AnyPageSize>;
  readonly frame2: PhysFrame<AnyPageSize>;
}

const CASES: readonly SizeCase[] = [
  {
    name: '4KiB',
    size: Size4KiB,
    leaf: 1,
    page: pg(va(1, 2, 3, 4), Size4KiB),
    sibling: pg(va(1, 2, 3, 5), Size4KiB),
    frame: fr(0xa_bcde_f000, Size4KiB),
    frame2: fr(0x5000_0000, Size4KiB),
  },
  {
    name: '2MiB',
    size: Size2MiB,
    leaf: 2,
    page: pg(va(1, 2, 3), Size2MiB),
    sibling: pg(va(1, 2, 4), Size2MiB),
    frame: fr(0x7_ffe0_0000, Size2MiB),
    frame2: fr(0x4060_0000, Size2MiB),
  },
  {
    name: '1GiB',
    size: Size1GiB,
    leaf: 3,
    page: pg(va(1, 2), Size1GiB),
    sibling: pg(va(1, 5), Size1GiB),
    frame: fr(0x8_4000_0000, Size1GiB),
    frame2: fr(0xc000_0000, Size1GiB),
  },
];
const HUGE_CASES = CASES.filter((c) => c.leaf > 1);
/** The HUGE_PAGE the mapper adds to a leaf of this size. */
const hugeOf = (c: SizeCase): PageTableFlags => (c.leaf > 1 ? HUGE_PAGE : EMPTY);
/** The parent levels a map of this size walks (4 down to leaf + 1). */
const parentLevels = (c: SizeCase): number[] => [4, 3, 2].filter((l) => l > c.leaf);

// ---- map_to: parent flags -------------------------------------------------------------------

describe('mapTo: parent flags are the leaf flags ∩ {PRESENT, WRITABLE, USER_ACCESSIBLE}', () => {
  it.each(CASES)('$name: new parents get exactly PRESENT|WRITABLE|USER_ACCESSIBLE', (c) => {
    const { mapper, allocator, read } = setup();
    const leafFlags = F(PWU, NON_PARENT);
    okOf(mapper.mapTo(c.page, c.frame, leafFlags, allocator)).ignore();
    parentLevels(c).forEach((level, i) => {
      // Tables come from the allocator in walk order: P3 table first, then P2, then P1.
      expect(read(c.page.startAddress, level)).toBe(ent(FIRST_TABLE + i * KIB4, PWU));
    });
    expect(read(c.page.startAddress, c.leaf)).toBe(
      ent(c.frame.startAddress, F(leafFlags, hugeOf(c))),
    );
    expect(allocator.issuedCount).toBe(4 - c.leaf);
  });

  it.each(CASES)('$name: NO_EXECUTE, GLOBAL and the other leaf bits never reach a parent', (c) => {
    const { mapper, allocator, read } = setup();
    okOf(mapper.mapTo(c.page, c.frame, F(PRESENT, NON_PARENT), allocator)).ignore();
    for (const level of parentLevels(c)) {
      expect(flagBits(read(c.page.startAddress, level))).toBe(PageTableFlags.bits(PRESENT));
    }
  });

  it.each(CASES)('$name: a parent flag the leaf lacks is not derived (PRESENT|USER only)', (c) => {
    const { mapper, allocator, read } = setup();
    okOf(mapper.mapTo(c.page, c.frame, F(PRESENT, USER_ACCESSIBLE, GLOBAL), allocator)).ignore();
    for (const level of parentLevels(c)) {
      expect(flagBits(read(c.page.startAddress, level))).toBe(
        PageTableFlags.bits(F(PRESENT, USER_ACCESSIBLE)),
      );
    }
  });

  it.each(CASES)('$name: the leaf is frame | flags, HUGE_PAGE added for huge sizes', (c) => {
    const { mapper, allocator, read } = setup();
    okOf(mapper.mapTo(c.page, c.frame, F(PRESENT, NO_EXECUTE), allocator)).ignore();
    expect(read(c.page.startAddress, c.leaf)).toBe(
      ent(c.frame.startAddress, F(PRESENT, NO_EXECUTE, hugeOf(c))),
    );
  });

  it.each(CASES)('$name: new tables are zeroed (allocator frames come with stale bytes)', (c) => {
    const { memory, mapper, allocator, entryAt } = setup();
    for (let a = FIRST_TABLE; a < FIRST_TABLE + 4 * KIB4; a += 8) {
      memory.storeEntry(a, 0xdead_beef_dead_beefn);
    }
    okOf(mapper.mapTo(c.page, c.frame, F(PRESENT, WRITABLE), allocator)).ignore();
    for (let i = 0; i < 4 - c.leaf; i++) {
      const table = FIRST_TABLE + i * KIB4;
      const used = entryAt(c.page.startAddress, 3 - i);
      for (let a = table; a < table + KIB4; a += 8) {
        if (a !== used) expect(memory.loadEntry(a)).toBe(0n);
      }
    }
  });

  it.each(CASES)('$name: a second page under the same parents allocates nothing', (c) => {
    const { mapper, allocator, read, map } = setup();
    map(c.page, c.frame);
    const issued = allocator.issuedCount;
    okOf(mapper.mapTo(c.sibling, c.frame2, F(PRESENT), allocator)).ignore();
    expect(allocator.issuedCount).toBe(issued);
    expect(read(c.sibling.startAddress, c.leaf)).toBe(
      ent(c.frame2.startAddress, F(PRESENT, hugeOf(c))),
    );
  });

  it.each(CASES)('$name: nothing checks that the leaf flags contain PRESENT', (c) => {
    const { mapper, allocator, read, map } = setup();
    map(c.sibling, c.frame2); // parents exist, so no parent is created without PRESENT
    okOf(mapper.mapTo(c.page, c.frame, F(WRITABLE), allocator)).ignore();
    expect(read(c.page.startAddress, c.leaf)).toBe(
      ent(c.frame.startAddress, F(WRITABLE, hugeOf(c))),
    );
  });
});

// ---- map_to_with_table_flags ----------------------------------------------------------------

describe('mapToWithTableFlags: flags are inserted into existing parents, never removed', () => {
  it.each(CASES)('$name: new parents get the given table flags verbatim', (c) => {
    const { mapper, allocator, read } = setup();
    const table = F(PRESENT, NO_EXECUTE, BIT_9);
    okOf(
      mapper.mapToWithTableFlags(c.page, c.frame, F(PRESENT, WRITABLE), table, allocator),
    ).ignore();
    for (const level of parentLevels(c)) {
      expect(flagBits(read(c.page.startAddress, level))).toBe(PageTableFlags.bits(table));
    }
  });

  it.each(CASES)('$name: missing table flags are OR-ed in, the address is kept', (c) => {
    const { mapper, allocator, read, map } = setup();
    map(c.page, c.frame, F(PRESENT, WRITABLE));
    const before = parentLevels(c).map((l) => read(c.page.startAddress, l));
    okOf(
      mapper.mapToWithTableFlags(
        c.sibling,
        c.frame2,
        F(PRESENT),
        F(PRESENT, USER_ACCESSIBLE, NO_EXECUTE),
        allocator,
      ),
    ).ignore();
    parentLevels(c).forEach((level, i) => {
      expect(read(c.page.startAddress, level)).toBe(
        before[i]! | PageTableFlags.bits(F(USER_ACCESSIBLE, NO_EXECUTE)),
      );
    });
  });

  it.each(CASES)('$name: table flags that are not asked for are not removed', (c) => {
    const { mapper, allocator, read, map } = setup();
    map(c.page, c.frame, F(PRESENT, WRITABLE, USER_ACCESSIBLE));
    const before = parentLevels(c).map((l) => read(c.page.startAddress, l));
    okOf(
      mapper.mapToWithTableFlags(c.sibling, c.frame2, F(PRESENT), F(PRESENT), allocator),
    ).ignore();
    okOf(mapper.unmap(c.sibling)).flush.ignore();
    okOf(mapper.mapToWithTableFlags(c.sibling, c.frame2, F(PRESENT), EMPTY, allocator)).ignore();
    expect(parentLevels(c).map((l) => read(c.page.startAddress, l))).toEqual(before);
  });

  it.each(CASES)(
    '$name: the insertion persists when the call then fails with PageAlreadyMapped',
    (c) => {
      const { mapper, allocator, read, map } = setup();
      map(c.page, c.frame, F(PRESENT));
      const r = mapper.mapToWithTableFlags(
        c.page,
        c.frame2,
        F(PRESENT),
        F(PRESENT, GLOBAL),
        allocator,
      );
      expect(errOf(r)).toEqual({ kind: 'PageAlreadyMapped', frame: c.frame2 });
      for (const level of parentLevels(c)) {
        expect(flagBits(read(c.page.startAddress, level))).toBe(
          PageTableFlags.bits(F(PRESENT, GLOBAL)),
        );
      }
    },
  );

  it('4KiB under a 2 MiB leaf: flags are inserted into P4, P3 and the huge P2 entry, then ParentEntryHugePage', () => {
    const { mapper, allocator, read, map } = setup();
    const huge = pg(va(1, 2, 3), Size2MiB);
    map(huge, fr(0x4000_0000, Size2MiB), F(PRESENT));
    const r = mapper.mapToWithTableFlags(
      pg(va(1, 2, 3, 7), Size4KiB),
      fr(0x9000, Size4KiB),
      F(PRESENT, WRITABLE),
      F(PRESENT, WRITABLE, USER_ACCESSIBLE),
      allocator,
    );
    expect(errOf(r)).toEqual({ kind: 'ParentEntryHugePage' });
    expect(read(huge.startAddress, 4)).toBe(ent(FIRST_TABLE, PWU));
    expect(read(huge.startAddress, 3)).toBe(ent(FIRST_TABLE + KIB4, PWU));
    expect(read(huge.startAddress, 2)).toBe(ent(0x4000_0000, F(PWU, HUGE_PAGE)));
    expect(allocator.issuedCount).toBe(2);
  });

  it.each([
    ['4KiB', pg(va(1, 2, 3, 7), Size4KiB), fr(0x9000, Size4KiB)],
    ['2MiB', pg(va(1, 2, 3), Size2MiB), fr(0x20_0000, Size2MiB)],
  ] as const)(
    '%s under a 1 GiB leaf: the huge P3 entry gains the flags, then ParentEntryHugePage',
    (_, page, frame) => {
      const { mapper, allocator, read, map } = setup();
      map(pg(va(1, 2), Size1GiB), fr(0x4000_0000, Size1GiB), F(PRESENT));
      const r = mapper.mapToWithTableFlags(
        page as Page<AnyPageSize>,
        frame as PhysFrame<AnyPageSize>,
        F(PRESENT),
        F(PRESENT, USER_ACCESSIBLE, NO_EXECUTE),
        allocator,
      );
      expect(errOf(r)).toEqual({ kind: 'ParentEntryHugePage' });
      expect(read(va(1, 2), 3)).toBe(
        ent(0x4000_0000, F(PRESENT, USER_ACCESSIBLE, NO_EXECUTE, HUGE_PAGE)),
      );
      expect(allocator.issuedCount).toBe(1);
    },
  );

  it.each(CASES)(
    '$name under a HUGE P4 entry: the P4 entry gains the flags, then ParentEntryHugePage',
    (c) => {
      const { mapper, allocator, read, write, map } = setup();
      map(c.sibling, c.frame2);
      write(c.page.startAddress, 4, ent(FIRST_TABLE, F(PRESENT, HUGE_PAGE)));
      const r = mapper.mapToWithTableFlags(
        c.page,
        c.frame,
        F(PRESENT),
        F(PRESENT, WRITABLE),
        allocator,
      );
      expect(errOf(r)).toEqual({ kind: 'ParentEntryHugePage' });
      expect(read(c.page.startAddress, 4)).toBe(ent(FIRST_TABLE, F(PRESENT, WRITABLE, HUGE_PAGE)));
    },
  );

  it('§11: a map under a 2 MiB leaf lacking PRESENT/WRITABLE makes the leaf present before failing', () => {
    const { mapper, allocator, read, write, map } = setup();
    const huge = pg(va(1, 2, 3), Size2MiB);
    map(pg(va(1, 2, 4), Size2MiB), fr(0x20_0000, Size2MiB));
    write(huge.startAddress, 2, ent(0x4000_0000, F(HUGE_PAGE, NO_EXECUTE)));
    expect(mapper.translate(va(1, 2, 3, 0, 5)).kind).toBe('NotMapped');
    const r = mapper.mapTo(
      pg(va(1, 2, 3, 1), Size4KiB),
      fr(0x9000, Size4KiB),
      F(PRESENT, WRITABLE),
      allocator,
    );
    expect(errOf(r)).toEqual({ kind: 'ParentEntryHugePage' });
    expect(read(huge.startAddress, 2)).toBe(
      ent(0x4000_0000, F(PRESENT, WRITABLE, HUGE_PAGE, NO_EXECUTE)),
    );
    expect(mapper.translateAddr(va(1, 2, 3, 0, 5))).toBe(0x4000_0005);
  });

  it.each(CASES)(
    '$name: HUGE_PAGE in the table flags of an existing parent is OR-ed in, so the call fails with ParentEntryHugePage',
    (c) => {
      const { mapper, allocator, read, map } = setup();
      map(c.sibling, c.frame2);
      const r = mapper.mapToWithTableFlags(
        c.page,
        c.frame,
        F(PRESENT),
        F(PRESENT, HUGE_PAGE),
        allocator,
      );
      expect(errOf(r)).toEqual({ kind: 'ParentEntryHugePage' });
      expect(read(c.page.startAddress, 4)).toBe(ent(FIRST_TABLE, F(PRESENT, WRITABLE, HUGE_PAGE)));
    },
  );
});

// ---- FrameAllocationFailed ------------------------------------------------------------------

describe('map: FrameAllocationFailed without rollback', () => {
  const runs = CASES.flatMap((c) =>
    Array.from({ length: 4 - c.leaf }, (_, frames) => ({ ...c, frames })),
  );

  it.each(runs)(
    '$name with $frames free frame(s): fails, and the tables already created stay linked',
    (c) => {
      const { mapper, allocator, memory, entryAt, read } = setup(c.frames);
      const r = mapper.mapTo(c.page, c.frame, F(PRESENT, WRITABLE), allocator);
      expect(errOf(r)).toEqual({ kind: 'FrameAllocationFailed' });
      expect(allocator.issuedCount).toBe(c.frames);
      // Levels 4, 3, … link the allocated tables in order; the next level's entry stays unused.
      for (let i = 0; i < c.frames; i++) {
        expect(read(c.page.startAddress, 4 - i)).toBe(
          ent(FIRST_TABLE + i * KIB4, F(PRESENT, WRITABLE)),
        );
      }
      expect(memory.loadEntry(entryAt(c.page.startAddress, 4 - c.frames))).toBe(0n);
      expect(mapper.flushLedger.created).toBe(0);
      expect(mapper.translate(c.page.startAddress)).toEqual({ kind: 'NotMapped' });
    },
  );

  it.each(runs)('$name with $frames free frame(s): a retry reuses the linked tables', (c) => {
    const { mapper, allocator, memory, read } = setup(c.frames);
    errOf(mapper.mapTo(c.page, c.frame, F(PRESENT, WRITABLE), allocator));
    const more = new BumpFrameAllocator(FIRST_TABLE + c.frames * KIB4, FIRST_TABLE + 8 * KIB4);
    okOf(mapper.mapTo(c.page, c.frame, F(PRESENT, WRITABLE), more)).ignore();
    expect(more.issuedCount).toBe(4 - c.leaf - c.frames);
    expect(read(c.page.startAddress, c.leaf)).toBe(
      ent(c.frame.startAddress, F(PRESENT, WRITABLE, hugeOf(c))),
    );
    expect(memory.loadEntry(P4_FRAME + 1 * 8)).toBe(ent(FIRST_TABLE, F(PRESENT, WRITABLE)));
  });

  it('an allocator is only asked when an entry is unused (a full allocator is fine for existing parents)', () => {
    const { mapper, map } = setup();
    map(pg(va(1, 2, 3, 4), Size4KiB), fr(0x9000, Size4KiB));
    const empty = new BumpFrameAllocator(0, 0);
    okOf(
      mapper.mapTo(pg(va(1, 2, 3, 5), Size4KiB), fr(0xa000, Size4KiB), F(PRESENT), empty),
    ).ignore();
    expect(
      errOf(mapper.mapTo(pg(va(1, 2, 4, 5), Size4KiB), fr(0xa000, Size4KiB), F(PRESENT), empty)),
    ).toEqual({
      kind: 'FrameAllocationFailed',
    });
  });
});

// ---- PageAlreadyMapped ----------------------------------------------------------------------

describe('map: PageAlreadyMapped carries the frame passed in', () => {
  it.each(CASES)('$name: a used leaf → PageAlreadyMapped(argument frame), entry unchanged', (c) => {
    const { mapper, allocator, read, map } = setup();
    map(c.page, c.frame, F(PRESENT, WRITABLE));
    const before = read(c.page.startAddress, c.leaf);
    const error = errOf(mapper.mapTo(c.page, c.frame2, F(PRESENT, USER_ACCESSIBLE), allocator));
    expect(error).toEqual({ kind: 'PageAlreadyMapped', frame: c.frame2 });
    if (error.kind === 'PageAlreadyMapped') {
      expect(error.frame).toBe(c.frame2);
      expect(error.frame.equals(c.frame)).toBe(false);
    }
    expect(read(c.page.startAddress, c.leaf)).toBe(before);
    expect(mapper.flushLedger.created).toBe(1);
  });

  it.each(CASES)('$name: the same frame again is still PageAlreadyMapped', (c) => {
    const { mapper, allocator, map } = setup();
    map(c.page, c.frame);
    expect(errOf(mapper.mapTo(c.page, c.frame, F(PRESENT, WRITABLE), allocator))).toEqual({
      kind: 'PageAlreadyMapped',
      frame: c.frame,
    });
  });

  it.each(CASES)('$name: a non-present but non-zero leaf counts as mapped', (c) => {
    const { mapper, allocator, read, write, map } = setup();
    map(c.sibling, c.frame2);
    for (const value of [ent(c.frame.startAddress, F(WRITABLE)), 0x2n, 1n << 63n, 1n << 52n]) {
      write(c.page.startAddress, c.leaf, value);
      expect(errOf(mapper.mapTo(c.page, c.frame2, F(PRESENT), allocator))).toEqual({
        kind: 'PageAlreadyMapped',
        frame: c.frame2,
      });
      expect(read(c.page.startAddress, c.leaf)).toBe(value);
    }
  });

  it.each(HUGE_CASES)('$name: a leaf slot holding a table pointer is PageAlreadyMapped', (c) => {
    const { mapper, allocator, read, map } = setup();
    map(pg(VirtAddr.add(c.page.startAddress, 0x5000), Size4KiB), fr(0x9000, Size4KiB));
    const before = read(c.page.startAddress, c.leaf);
    expect(errOf(mapper.mapTo(c.page, c.frame, F(PRESENT), allocator))).toEqual({
      kind: 'PageAlreadyMapped',
      frame: c.frame,
    });
    expect(read(c.page.startAddress, c.leaf)).toBe(before);
  });
});

// ---- identity_map ---------------------------------------------------------------------------

describe('identityMap', () => {
  it.each(CASES)(
    '$name: maps the page at the frame address, up to the last frame below 2^47',
    (c) => {
      const { mapper, allocator } = setup();
      const frame = fr(2 ** 47 - c.size.bytes, c.size);
      const flush = okOf(mapper.identityMap(frame, F(PRESENT, WRITABLE), allocator));
      expect(flush.page().startAddress).toBe(frame.startAddress);
      expect(flush.page().size).toBe(c.size);
      flush.ignore();
      expect(mapper.translateAddr(VirtAddr.new(frame.startAddress + 0x123))).toBe(
        frame.startAddress + 0x123,
      );
      expect(errOf(mapper.identityMap(frame, F(PRESENT), allocator))).toEqual({
        kind: 'PageAlreadyMapped',
        frame,
      });
    },
  );

  it.each(CASES)('$name: a frame at or above 2^47 is a CratePanic, nothing is allocated', (c) => {
    const { mapper, allocator, snapshot } = setup();
    const before = snapshot();
    for (const addr of [2 ** 47, 2 ** 48, 2 ** 51]) {
      expect(() => mapper.identityMap(fr(addr, c.size), F(PRESENT), allocator)).toThrow(CratePanic);
    }
    expect(allocator.issuedCount).toBe(0);
    expect(snapshot().equals(before)).toBe(true);
  });

  it('derives the parent flags like mapTo', () => {
    const { mapper, allocator, read } = setup();
    okOf(
      mapper.identityMap(fr(0x3000_0000, Size4KiB), F(PWU, NO_EXECUTE, GLOBAL), allocator),
    ).ignore();
    expect(flagBits(read(0x3000_0000, 4))).toBe(PageTableFlags.bits(PWU));
    expect(read(0x3000_0000, 1)).toBe(ent(0x3000_0000, F(PWU, NO_EXECUTE, GLOBAL)));
  });
});

// ---- crate panics ---------------------------------------------------------------------------

describe('map: the CratePanic cases of §6', () => {
  it.each(CASES)(
    '$name: HUGE_PAGE in the parent flags of a new entry panics; the entry stays unused',
    (c) => {
      const { mapper, allocator, memory } = setup();
      expect(() =>
        mapper.mapToWithTableFlags(c.page, c.frame, F(PRESENT), F(PRESENT, HUGE_PAGE), allocator),
      ).toThrow(CratePanic);
      // set_frame asserts before writing; the frame was already taken from the allocator.
      expect(memory.loadEntry(P4_FRAME + 8)).toBe(0n);
      expect(allocator.issuedCount).toBe(1);
    },
  );

  it('HUGE_PAGE in the parent flags is not a panic when the P4 entry exists: it is inserted there first, then ParentEntryHugePage', () => {
    // Flag insertion makes the existing P4 entry huge, so the walk stops before the unused P3
    // entry that would have panicked.
    const { mapper, allocator, read, map } = setup();
    map(pg(va(1, 7), Size1GiB), fr(0x4000_0000, Size1GiB));
    expect(
      errOf(
        mapper.mapToWithTableFlags(
          pg(va(1, 2, 3, 4), Size4KiB),
          fr(0x9000, Size4KiB),
          F(PRESENT),
          F(PRESENT, HUGE_PAGE),
          allocator,
        ),
      ),
    ).toEqual({ kind: 'ParentEntryHugePage' });
    expect(read(va(1), 4)).toBe(ent(FIRST_TABLE, F(PRESENT, WRITABLE, HUGE_PAGE)));
    expect(read(va(1, 2), 3)).toBe(0n);
  });

  it.each(CASES)(
    '$name: leaf flags without PRESENT → parent flags without PRESENT → a new parent panics, left linked',
    (c) => {
      const { mapper, allocator, memory } = setup();
      expect(() => mapper.mapTo(c.page, c.frame, F(WRITABLE, NO_EXECUTE), allocator)).toThrow(
        /entry should be mapped at this point/,
      );
      // set_frame wrote the entry (frame | insert flags) before the walk step panicked.
      expect(memory.loadEntry(P4_FRAME + 8)).toBe(ent(FIRST_TABLE, F(WRITABLE)));
      expect(allocator.issuedCount).toBe(1);
    },
  );

  it.each(CASES)(
    '$name: empty table flags on a new entry panic, the entry holds the bare address',
    (c) => {
      const { mapper, allocator, memory } = setup();
      expect(() =>
        mapper.mapToWithTableFlags(c.page, c.frame, F(PRESENT), EMPTY, allocator),
      ).toThrow(CratePanic);
      expect(memory.loadEntry(P4_FRAME + 8)).toBe(ent(FIRST_TABLE, EMPTY));
    },
  );

  // Documented deviation (README, createNextTable): the crate zeroes a new table in step 4, after
  // the walk step, so a map that then panics leaves the allocator frame's old bytes in a linked
  // table. The port zeroes before linking, so a walker on another CPU never follows the new entry
  // into stale bytes; this test pins that choice.
  it('a table linked by a map that then panics (no PRESENT) is already zeroed (deviation: zeroed before linking)', () => {
    const { mapper, allocator, memory } = setup();
    memory.storeEntry(FIRST_TABLE + 16, 0xdead_b000n);
    const page = pg(va(1, 2, 3, 4), Size4KiB);
    expect(() => mapper.mapTo(page, fr(0x9000, Size4KiB), F(WRITABLE), allocator)).toThrow(
      CratePanic,
    );
    expect(memory.loadEntry(P4_FRAME + 8)).toBe(ent(FIRST_TABLE, F(WRITABLE)));
    expect(memory.loadEntry(FIRST_TABLE + 16)).toBe(0n);
  });

  it.each(CASES)(
    '$name: a used but non-present parent panics when PRESENT is not inserted (after inserting the rest)',
    (c) => {
      const { mapper, allocator, read, map } = setup();
      map(c.sibling, c.frame2);
      okOf(mapper.setFlagsP4Entry(c.page, F(WRITABLE))).ignore();
      expect(() => mapper.mapTo(c.page, c.frame, F(WRITABLE, USER_ACCESSIBLE), allocator)).toThrow(
        CratePanic,
      );
      expect(read(c.page.startAddress, 4)).toBe(ent(FIRST_TABLE, F(WRITABLE, USER_ACCESSIBLE)));
      expect(read(c.page.startAddress, c.leaf)).toBe(0n);
    },
  );

  it.each(CASES)(
    '$name: with PRESENT in the parent flags a non-present parent is silently made present',
    (c) => {
      const { mapper, allocator, read, map } = setup();
      map(c.sibling, c.frame2);
      okOf(mapper.setFlagsP4Entry(c.page, F(WRITABLE))).ignore();
      okOf(mapper.mapTo(c.page, c.frame, F(PRESENT), allocator)).ignore();
      expect(read(c.page.startAddress, 4)).toBe(ent(FIRST_TABLE, F(PRESENT, WRITABLE)));
      expect(mapper.translateAddr(c.page.startAddress)).toBe(c.frame.startAddress);
    },
  );

  it('4KiB: HUGE_PAGE in the leaf flags panics when the P1 entry is free; parents stay linked, leaf unused', () => {
    const { mapper, allocator, read } = setup();
    const page = pg(va(1, 2, 3, 4), Size4KiB);
    expect(() =>
      mapper.mapTo(page, fr(0x9000, Size4KiB), F(PRESENT, HUGE_PAGE), allocator),
    ).toThrow(CratePanic);
    expect(read(page.startAddress, 2)).toBe(ent(FIRST_TABLE + 2 * KIB4, PRESENT));
    expect(read(page.startAddress, 1)).toBe(0n);
  });

  it('4KiB: HUGE_PAGE in the leaf flags on a used P1 entry is PageAlreadyMapped, not a panic', () => {
    const { mapper, allocator, read, write, map } = setup();
    const page = pg(va(1, 2, 3, 4), Size4KiB);
    map(page, fr(0x9000, Size4KiB));
    const frame = fr(0xa000, Size4KiB);
    expect(errOf(mapper.mapTo(page, frame, F(PRESENT, HUGE_PAGE), allocator))).toEqual({
      kind: 'PageAlreadyMapped',
      frame,
    });
    write(page.startAddress, 1, 0x2n); // used, non-present
    expect(errOf(mapper.mapTo(page, frame, F(PRESENT, HUGE_PAGE), allocator))).toEqual({
      kind: 'PageAlreadyMapped',
      frame,
    });
    expect(read(page.startAddress, 1)).toBe(0x2n);
  });

  it('translate and translateAddr through a present P4 entry with HUGE_PAGE panic', () => {
    const { mapper, map } = setup();
    const page = pg(va(1, 2, 3, 4), Size4KiB);
    map(page, fr(0x9000, Size4KiB));
    okOf(mapper.setFlagsP4Entry(page, F(PRESENT, WRITABLE, HUGE_PAGE))).ignore();
    expect(() => mapper.translate(page.startAddress)).toThrow(
      /level 4 entry has huge page bit set/,
    );
    expect(() => mapper.translateAddr(page.startAddress)).toThrow(CratePanic);
    // The Mapper methods report it as an error instead.
    expect(errOf(mapper.translatePage(page))).toEqual({ kind: 'ParentEntryHugePage' });
    expect(errOf(mapper.unmap(page))).toEqual({ kind: 'ParentEntryHugePage' });
  });

  it('a non-present P4 entry with HUGE_PAGE is NotMapped for translate (PRESENT is checked first)', () => {
    const { mapper, map } = setup();
    const page = pg(va(1, 2, 3, 4), Size4KiB);
    map(page, fr(0x9000, Size4KiB));
    okOf(mapper.setFlagsP4Entry(page, F(WRITABLE, HUGE_PAGE))).ignore();
    expect(mapper.translate(page.startAddress)).toEqual({ kind: 'NotMapped' });
    expect(mapper.translateAddr(page.startAddress)).toBeUndefined();
  });

  // The walk step checks PRESENT before HUGE_PAGE (PageTableEntry::frame: FrameNotPresent
  // first). With parent flags lacking PRESENT, a used entry that is HUGE_PAGE but non-present
  // stays non-present after flag insertion, so create_next_table panics ("entry should be
  // mapped at this point"); it is not ParentEntryHugePage.
  const nonPresentHuge = [
    {
      name: '4KiB under a non-present 2 MiB leaf',
      page: pg(va(1, 2, 3, 4), Size4KiB) as Page<AnyPageSize>,
      frame: fr(0x9000, Size4KiB) as PhysFrame<AnyPageSize>,
      level: 2,
    },
    {
      name: '4KiB under a non-present 1 GiB leaf',
      page: pg(va(1, 2, 3, 4), Size4KiB) as Page<AnyPageSize>,
      frame: fr(0x9000, Size4KiB) as PhysFrame<AnyPageSize>,
      level: 3,
    },
    {
      name: '2MiB under a non-present 1 GiB leaf',
      page: pg(va(1, 2, 3), Size2MiB) as Page<AnyPageSize>,
      frame: fr(0x20_0000, Size2MiB) as PhysFrame<AnyPageSize>,
      level: 3,
    },
    {
      name: '1GiB under a non-present HUGE P4 entry',
      page: pg(va(1, 2), Size1GiB) as Page<AnyPageSize>,
      frame: fr(0x4000_0000, Size1GiB) as PhysFrame<AnyPageSize>,
      level: 4,
    },
  ];
  for (const parentFlags of [F(WRITABLE), EMPTY]) {
    it.each(nonPresentHuge)(
      `$name with parent flags ${PageTableFlags.names(parentFlags)}: panics (PRESENT is checked before HUGE_PAGE; regression)`,
      ({ page, frame, level }) => {
        const { mapper, allocator, write, map } = setup();
        map(pg(va(1, 2, 8, 8), Size4KiB), fr(0x8000, Size4KiB)); // P4[1], P3[2], P2 table exist
        write(page.startAddress, level, ent(0x4000_0000, F(WRITABLE, HUGE_PAGE)));
        expect(() =>
          mapper.mapToWithTableFlags(page, frame, F(PRESENT), parentFlags, allocator),
        ).toThrow(CratePanic);
      },
    );
  }
});

// ---- unmap ----------------------------------------------------------------------------------

describe('unmap', () => {
  it.each(CASES)('$name: returns the mapped frame, zeroes the leaf and frees no table', (c) => {
    const { mapper, allocator, read, map } = setup();
    map(c.page, c.frame, F(PRESENT, WRITABLE, GLOBAL));
    map(c.sibling, c.frame2);
    const parents = parentLevels(c).map((l) => read(c.page.startAddress, l));
    const { frame, flush } = okOf(mapper.unmap(c.page));
    expect(frame).toEqual(c.frame);
    expect(frame.size).toBe(c.size);
    expect(flush).toBeInstanceOf(MapperFlush);
    expect(flush.page()).toBe(c.page);
    flush.ignore();
    expect(read(c.page.startAddress, c.leaf)).toBe(0n);
    expect(parentLevels(c).map((l) => read(c.page.startAddress, l))).toEqual(parents);
    expect(read(c.sibling.startAddress, c.leaf)).not.toBe(0n);
    expect(allocator.issuedCount).toBe(4 - c.leaf);
    expect(errOf(mapper.unmap(c.page))).toEqual({ kind: 'PageNotMapped' });
  });

  it.each(CASES)('$name: nothing mapped (P4 entry unused) → PageNotMapped', (c) => {
    const { mapper } = setup();
    expect(errOf(mapper.unmap(c.page))).toEqual({ kind: 'PageNotMapped' });
    expect(mapper.flushLedger.created).toBe(0);
  });

  it.each(CASES)('$name: parents exist, leaf unused → PageNotMapped', (c) => {
    const { mapper, map } = setup();
    map(c.sibling, c.frame2);
    expect(errOf(mapper.unmap(c.page))).toEqual({ kind: 'PageNotMapped' });
  });

  it.each(CASES)('$name: a non-present non-zero leaf → PageNotMapped, entry intact', (c) => {
    const { mapper, read, map } = setup();
    map(c.page, c.frame);
    okOf(mapper.updateFlags(c.page, F(WRITABLE, NO_EXECUTE))).ignore();
    const before = read(c.page.startAddress, c.leaf);
    expect(before).toBe(ent(c.frame.startAddress, F(WRITABLE, NO_EXECUTE, hugeOf(c))));
    expect(errOf(mapper.unmap(c.page))).toEqual({ kind: 'PageNotMapped' });
    expect(read(c.page.startAddress, c.leaf)).toBe(before);
  });

  it.each(CASES)('$name: a non-present (non-zero) parent → PageNotMapped', (c) => {
    const { mapper, read, map } = setup();
    map(c.page, c.frame);
    okOf(mapper.setFlagsP4Entry(c.page, F(WRITABLE, USER_ACCESSIBLE))).ignore();
    expect(errOf(mapper.unmap(c.page))).toEqual({ kind: 'PageNotMapped' });
    expect(read(c.page.startAddress, c.leaf)).not.toBe(0n);
  });

  it.each(CASES)('$name: a HUGE P4 entry → ParentEntryHugePage', (c) => {
    const { mapper, map } = setup();
    map(c.page, c.frame);
    okOf(mapper.setFlagsP4Entry(c.page, F(PRESENT, WRITABLE, HUGE_PAGE))).ignore();
    expect(errOf(mapper.unmap(c.page))).toEqual({ kind: 'ParentEntryHugePage' });
  });

  it('4KiB under a 2 MiB leaf → ParentEntryHugePage, the huge leaf is intact', () => {
    const { mapper, read, map } = setup();
    map(pg(va(1, 2, 3), Size2MiB), fr(0x20_0000, Size2MiB));
    expect(errOf(mapper.unmap(pg(va(1, 2, 3, 4), Size4KiB)))).toEqual({
      kind: 'ParentEntryHugePage',
    });
    expect(read(va(1, 2, 3), 2)).toBe(ent(0x20_0000, F(PRESENT, WRITABLE, HUGE_PAGE)));
  });

  it.each([
    ['4KiB', pg(va(1, 2, 3, 4), Size4KiB)],
    ['2MiB', pg(va(1, 2, 3), Size2MiB)],
  ] as const)('%s under a 1 GiB leaf → ParentEntryHugePage', (_, page) => {
    const { mapper, map } = setup();
    map(pg(va(1, 2), Size1GiB), fr(0x4000_0000, Size1GiB));
    expect(errOf(mapper.unmap(page as Page<AnyPageSize>))).toEqual({ kind: 'ParentEntryHugePage' });
  });

  it('4KiB: a present P1 entry with HUGE_PAGE → ParentEntryHugePage, entry intact', () => {
    const { mapper, read, map } = setup();
    const page = pg(va(1, 2, 3, 4), Size4KiB);
    map(page, fr(0x9000, Size4KiB));
    okOf(mapper.updateFlags(page, F(PRESENT, HUGE_PAGE))).ignore();
    expect(errOf(mapper.unmap(page))).toEqual({ kind: 'ParentEntryHugePage' });
    expect(read(page.startAddress, 1)).toBe(ent(0x9000, F(PRESENT, HUGE_PAGE)));
  });

  it('4KiB: a non-present P1 entry with HUGE_PAGE → PageNotMapped (PRESENT is checked first)', () => {
    const { mapper, map } = setup();
    const page = pg(va(1, 2, 3, 4), Size4KiB);
    map(page, fr(0x9000, Size4KiB));
    okOf(mapper.updateFlags(page, F(HUGE_PAGE))).ignore();
    expect(errOf(mapper.unmap(page))).toEqual({ kind: 'PageNotMapped' });
  });

  it.each(HUGE_CASES)(
    '$name: the leaf slot holds a table pointer → ParentEntryHugePage, entry intact',
    (c) => {
      const { mapper, read, map } = setup();
      map(pg(VirtAddr.add(c.page.startAddress, 0x5000), Size4KiB), fr(0x9000, Size4KiB));
      const before = read(c.page.startAddress, c.leaf);
      expect(errOf(mapper.unmap(c.page))).toEqual({ kind: 'ParentEntryHugePage' });
      expect(read(c.page.startAddress, c.leaf)).toBe(before);
    },
  );

  it.each(HUGE_CASES)(
    '$name: a leaf address not aligned to the size → InvalidFrameAddress, entry intact',
    (c) => {
      const { mapper, read, write, map } = setup();
      map(c.sibling, c.frame2);
      for (const misaligned of [
        c.frame.startAddress + KIB4,
        c.frame.startAddress + c.size.bytes / 2,
      ]) {
        const value = ent(misaligned, F(PRESENT, WRITABLE, HUGE_PAGE));
        write(c.page.startAddress, c.leaf, value);
        expect(errOf(mapper.unmap(c.page))).toEqual({
          kind: 'InvalidFrameAddress',
          addr: misaligned,
        });
        expect(read(c.page.startAddress, c.leaf)).toBe(value);
      }
    },
  );

  it('4KiB never reports InvalidFrameAddress (every entry address is 4 KiB aligned)', () => {
    const { mapper, write, map } = setup();
    const page = pg(va(1, 2, 3, 4), Size4KiB);
    map(page, fr(0x9000, Size4KiB));
    write(page.startAddress, 1, ent(0x000f_ffff_ffff_f000, F(PRESENT)));
    expect(okOf(mapper.unmap(page)).frame.startAddress).toBe(0x000f_ffff_ffff_f000);
  });
});

// ---- update_flags ---------------------------------------------------------------------------

describe('updateFlags', () => {
  it.each(CASES)(
    '$name: keeps the address, replaces the flags (HUGE_PAGE added for huge sizes)',
    (c) => {
      const { mapper, read, map } = setup();
      map(c.page, c.frame, F(PRESENT, WRITABLE, GLOBAL, NO_EXECUTE));
      const parents = parentLevels(c).map((l) => read(c.page.startAddress, l));
      const flush = okOf(mapper.updateFlags(c.page, F(PRESENT, USER_ACCESSIBLE, BIT_52)));
      expect(flush).toBeInstanceOf(MapperFlush);
      expect(flush.page()).toBe(c.page);
      flush.ignore();
      expect(read(c.page.startAddress, c.leaf)).toBe(
        ent(c.frame.startAddress, F(PRESENT, USER_ACCESSIBLE, BIT_52, hugeOf(c))),
      );
      expect(parentLevels(c).map((l) => read(c.page.startAddress, l))).toEqual(parents);
    },
  );

  it.each(CASES)('$name: flags without PRESENT are accepted verbatim', (c) => {
    const { mapper, read, map } = setup();
    map(c.page, c.frame);
    okOf(mapper.updateFlags(c.page, F(WRITABLE))).ignore();
    expect(read(c.page.startAddress, c.leaf)).toBe(
      ent(c.frame.startAddress, F(WRITABLE, hugeOf(c))),
    );
    // A non-present but non-zero leaf is still "mapped" for update_flags.
    okOf(mapper.updateFlags(c.page, EMPTY)).ignore();
    expect(read(c.page.startAddress, c.leaf)).toBe(ent(c.frame.startAddress, hugeOf(c)));
  });

  it('4KiB: HUGE_PAGE is accepted verbatim on a P1 entry', () => {
    const { mapper, read, map } = setup();
    const page = pg(va(1, 2, 3, 4), Size4KiB);
    map(page, fr(0x9000, Size4KiB));
    okOf(mapper.updateFlags(page, F(PRESENT, HUGE_PAGE))).ignore();
    expect(read(page.startAddress, 1)).toBe(ent(0x9000, F(PRESENT, HUGE_PAGE)));
  });

  it('4KiB: an entry whose address is 0 but flags are set is updated (only == 0 is unmapped)', () => {
    const { mapper, read, write, map } = setup();
    const page = pg(va(1, 2, 3, 4), Size4KiB);
    map(pg(va(1, 2, 3, 5), Size4KiB), fr(0x9000, Size4KiB));
    write(page.startAddress, 1, 1n << 63n);
    okOf(mapper.updateFlags(page, F(PRESENT))).ignore();
    expect(read(page.startAddress, 1)).toBe(1n);
  });

  it.each(CASES)('$name: parents exist, leaf unused → PageNotMapped, nothing written', (c) => {
    const { mapper, map, snapshot } = setup();
    map(c.sibling, c.frame2);
    const before = snapshot();
    expect(errOf(mapper.updateFlags(c.page, F(PRESENT)))).toEqual({ kind: 'PageNotMapped' });
    expect(snapshot().equals(before)).toBe(true);
    expect(mapper.flushLedger.created).toBe(1);
  });

  it.each(CASES)('$name: no parent → PageNotMapped; non-present parent → PageNotMapped', (c) => {
    const { mapper, map } = setup();
    expect(errOf(mapper.updateFlags(c.page, F(PRESENT)))).toEqual({ kind: 'PageNotMapped' });
    map(c.page, c.frame);
    okOf(mapper.setFlagsP4Entry(c.page, F(WRITABLE))).ignore();
    expect(errOf(mapper.updateFlags(c.page, F(PRESENT)))).toEqual({ kind: 'PageNotMapped' });
  });

  it.each(CASES)('$name: a HUGE P4 entry → ParentEntryHugePage', (c) => {
    const { mapper, map } = setup();
    map(c.page, c.frame);
    okOf(mapper.setFlagsP4Entry(c.page, F(PRESENT, HUGE_PAGE))).ignore();
    expect(errOf(mapper.updateFlags(c.page, F(PRESENT)))).toEqual({ kind: 'ParentEntryHugePage' });
  });

  it.each([
    ['4KiB under a 2 MiB leaf', pg(va(1, 2, 3, 4), Size4KiB), pg(va(1, 2, 3), Size2MiB)],
    ['4KiB under a 1 GiB leaf', pg(va(1, 2, 3, 4), Size4KiB), pg(va(1, 2), Size1GiB)],
    ['2MiB under a 1 GiB leaf', pg(va(1, 2, 3), Size2MiB), pg(va(1, 2), Size1GiB)],
  ] as const)('%s → ParentEntryHugePage', (_, page, huge) => {
    const { mapper, map } = setup();
    map(huge as Page<AnyPageSize>, fr(0x4000_0000, huge.size) as PhysFrame<AnyPageSize>);
    expect(errOf(mapper.updateFlags(page as Page<AnyPageSize>, F(PRESENT)))).toEqual({
      kind: 'ParentEntryHugePage',
    });
  });

  it('2MiB on a P2 table pointer turns it into a huge leaf at the table address', () => {
    const { mapper, read, map } = setup();
    map(pg(va(1, 2, 3, 4), Size4KiB), fr(0x9000, Size4KiB));
    const p1Table = FIRST_TABLE + 2 * KIB4;
    expect(read(va(1, 2, 3), 2)).toBe(ent(p1Table, F(PRESENT, WRITABLE)));
    okOf(mapper.updateFlags(pg(va(1, 2, 3), Size2MiB), F(PRESENT, WRITABLE))).ignore();
    expect(read(va(1, 2, 3), 2)).toBe(ent(p1Table, F(PRESENT, WRITABLE, HUGE_PAGE)));
    const t = mapper.translate(va(1, 2, 3, 4, 0x10));
    expect(t).toEqual({
      kind: 'Mapped',
      frame: PhysFrame.containingAddress(PhysAddr.new(p1Table), Size2MiB),
      offset: 4 * KIB4 + 0x10,
      flags: F(PRESENT, WRITABLE, HUGE_PAGE),
    });
  });

  it('1GiB on a P3 table pointer turns it into a huge leaf at the table address', () => {
    const { mapper, read, map } = setup();
    map(pg(va(1, 2, 3, 4), Size4KiB), fr(0x9000, Size4KiB));
    const p2Table = FIRST_TABLE + KIB4;
    okOf(mapper.updateFlags(pg(va(1, 2), Size1GiB), F(PRESENT))).ignore();
    expect(read(va(1, 2), 3)).toBe(ent(p2Table, F(PRESENT, HUGE_PAGE)));
    expect(mapper.translateAddr(va(1, 2, 3, 4, 0x10))).toBe(3 * MIB2 + 4 * KIB4 + 0x10);
  });
});

// ---- set_flags_p4 / p3 / p2 -----------------------------------------------------------------

describe('setFlagsP4Entry / setFlagsP3Entry / setFlagsP2Entry', () => {
  it.each(CASES)(
    '$name: setFlagsP4Entry replaces the P4 entry flags verbatim, address kept',
    (c) => {
      const { mapper, read, map } = setup();
      map(c.page, c.frame, F(PRESENT, WRITABLE, USER_ACCESSIBLE));
      const leaf = read(c.page.startAddress, c.leaf);
      const flags = F(PRESENT, NO_EXECUTE, BIT_9, GLOBAL);
      const flush = okOf(mapper.setFlagsP4Entry(c.page, flags));
      expect(flush).toBeInstanceOf(MapperFlushAll);
      flush.ignore();
      expect(read(c.page.startAddress, 4)).toBe(ent(FIRST_TABLE, flags));
      expect(read(c.page.startAddress, c.leaf)).toBe(leaf);
      // Non-present and HUGE_PAGE are written verbatim too; a non-zero entry is still "mapped".
      okOf(mapper.setFlagsP4Entry(c.page, F(WRITABLE))).ignore();
      expect(read(c.page.startAddress, 4)).toBe(ent(FIRST_TABLE, F(WRITABLE)));
      okOf(mapper.setFlagsP4Entry(c.page, F(HUGE_PAGE))).ignore();
      expect(read(c.page.startAddress, 4)).toBe(ent(FIRST_TABLE, F(HUGE_PAGE)));
    },
  );

  it.each(CASES)('$name: setFlagsP4Entry on an unused P4 entry → PageNotMapped', (c) => {
    const { mapper, snapshot } = setup();
    const before = snapshot();
    expect(errOf(mapper.setFlagsP4Entry(c.page, F(PRESENT)))).toEqual({ kind: 'PageNotMapped' });
    expect(snapshot().equals(before)).toBe(true);
    expect(mapper.flushLedger.created).toBe(0);
  });

  it.each(CASES.filter((c) => c.leaf < 3))(
    '$name: setFlagsP3Entry replaces the P3 entry flags verbatim',
    (c) => {
      const { mapper, read, map } = setup();
      map(c.page, c.frame);
      const flags = F(PRESENT, USER_ACCESSIBLE, NO_CACHE);
      const flush = okOf(mapper.setFlagsP3Entry(c.page, flags));
      expect(flush).toBeInstanceOf(MapperFlushAll);
      flush.ignore();
      expect(read(c.page.startAddress, 3)).toBe(ent(FIRST_TABLE + KIB4, flags));
      expect(read(c.page.startAddress, 4)).toBe(ent(FIRST_TABLE, F(PRESENT, WRITABLE)));
      okOf(mapper.setFlagsP3Entry(c.page, EMPTY)).ignore();
      expect(read(c.page.startAddress, 3)).toBe(ent(FIRST_TABLE + KIB4, EMPTY));
      // Non-zero although flagless: still "mapped" for set_flags.
      okOf(mapper.setFlagsP3Entry(c.page, F(PRESENT))).ignore();
      expect(read(c.page.startAddress, 3)).toBe(ent(FIRST_TABLE + KIB4, F(PRESENT)));
    },
  );

  it.each(CASES.filter((c) => c.leaf < 3))(
    '$name: setFlagsP3Entry errors: no P4 entry, non-present P4, unused P3, HUGE P4',
    (c) => {
      const { mapper, map } = setup();
      expect(errOf(mapper.setFlagsP3Entry(c.page, F(PRESENT)))).toEqual({ kind: 'PageNotMapped' });
      map(pg(va(1, 7), Size1GiB), fr(0x4000_0000, Size1GiB)); // P4[1] exists, P3[2] unused
      expect(errOf(mapper.setFlagsP3Entry(c.page, F(PRESENT)))).toEqual({ kind: 'PageNotMapped' });
      okOf(mapper.setFlagsP4Entry(c.page, F(WRITABLE))).ignore();
      map(c.page, c.frame, F(PRESENT)); // PRESENT re-inserted into P4
      okOf(mapper.setFlagsP4Entry(c.page, F(WRITABLE))).ignore();
      expect(errOf(mapper.setFlagsP3Entry(c.page, F(PRESENT)))).toEqual({ kind: 'PageNotMapped' });
      okOf(mapper.setFlagsP4Entry(c.page, F(PRESENT, HUGE_PAGE))).ignore();
      expect(errOf(mapper.setFlagsP3Entry(c.page, F(PRESENT)))).toEqual({
        kind: 'ParentEntryHugePage',
      });
    },
  );

  it('1GiB: setFlagsP3Entry is always ParentEntryHugePage, without looking at the table', () => {
    const { mapper, map, snapshot } = setup();
    const page = pg(va(1, 2), Size1GiB);
    expect(errOf(mapper.setFlagsP3Entry(page, F(PRESENT)))).toEqual({
      kind: 'ParentEntryHugePage',
    });
    map(page, fr(0x4000_0000, Size1GiB));
    const before = snapshot();
    expect(errOf(mapper.setFlagsP3Entry(page, F(PRESENT)))).toEqual({
      kind: 'ParentEntryHugePage',
    });
    expect(snapshot().equals(before)).toBe(true);
    expect(mapper.flushLedger.created).toBe(1);
  });

  it('4KiB: setFlagsP2Entry replaces the P2 entry flags verbatim', () => {
    const { mapper, read, map } = setup();
    const page = pg(va(1, 2, 3, 4), Size4KiB);
    map(page, fr(0x9000, Size4KiB));
    const flush = okOf(mapper.setFlagsP2Entry(page, F(PRESENT, WRITE_THROUGH, BIT_62)));
    expect(flush).toBeInstanceOf(MapperFlushAll);
    flush.ignore();
    expect(read(page.startAddress, 2)).toBe(
      ent(FIRST_TABLE + 2 * KIB4, F(PRESENT, WRITE_THROUGH, BIT_62)),
    );
    expect(read(page.startAddress, 1)).toBe(ent(0x9000, F(PRESENT, WRITABLE)));
  });

  it('4KiB: setFlagsP2Entry errors: no parents, unused P2, non-present P3, HUGE P3, HUGE P4', () => {
    const { mapper, map } = setup();
    const page = pg(va(1, 2, 3, 4), Size4KiB);
    expect(errOf(mapper.setFlagsP2Entry(page, F(PRESENT)))).toEqual({ kind: 'PageNotMapped' });
    map(pg(va(1, 2, 4, 4), Size4KiB), fr(0x9000, Size4KiB)); // P2[3] unused
    expect(errOf(mapper.setFlagsP2Entry(page, F(PRESENT)))).toEqual({ kind: 'PageNotMapped' });
    map(page, fr(0xa000, Size4KiB));
    okOf(mapper.setFlagsP3Entry(page, F(WRITABLE))).ignore();
    expect(errOf(mapper.setFlagsP2Entry(page, F(PRESENT)))).toEqual({ kind: 'PageNotMapped' });
    okOf(mapper.setFlagsP3Entry(page, F(PRESENT, HUGE_PAGE))).ignore();
    expect(errOf(mapper.setFlagsP2Entry(page, F(PRESENT)))).toEqual({
      kind: 'ParentEntryHugePage',
    });
    okOf(mapper.setFlagsP3Entry(page, F(PRESENT))).ignore();
    okOf(mapper.setFlagsP4Entry(page, F(PRESENT, HUGE_PAGE))).ignore();
    expect(errOf(mapper.setFlagsP2Entry(page, F(PRESENT)))).toEqual({
      kind: 'ParentEntryHugePage',
    });
  });

  it.each(HUGE_CASES)(
    '$name: setFlagsP2Entry is always ParentEntryHugePage, RAM untouched',
    (c) => {
      const { mapper, map, snapshot } = setup();
      expect(errOf(mapper.setFlagsP2Entry(c.page, F(PRESENT)))).toEqual({
        kind: 'ParentEntryHugePage',
      });
      map(c.page, c.frame);
      const before = snapshot();
      expect(errOf(mapper.setFlagsP2Entry(c.page, F(PRESENT)))).toEqual({
        kind: 'ParentEntryHugePage',
      });
      expect(snapshot().equals(before)).toBe(true);
    },
  );

  it('setting HUGE_PAGE on a P3 table pointer makes it a 1 GiB leaf at the table address', () => {
    const { mapper, map } = setup();
    const page = pg(va(1, 2, 3, 4), Size4KiB);
    map(page, fr(0x9000, Size4KiB));
    okOf(mapper.setFlagsP3Entry(page, F(PRESENT, WRITABLE, HUGE_PAGE))).ignore();
    expect(mapper.translate(page.startAddress)).toEqual({
      kind: 'Mapped',
      frame: fr(0, Size1GiB),
      offset: 3 * MIB2 + 4 * KIB4,
      flags: F(PRESENT, WRITABLE, HUGE_PAGE),
    });
    expect(errOf(mapper.translatePage(page))).toEqual({ kind: 'ParentEntryHugePage' });
  });

  it('clearing HUGE_PAGE from a 2 MiB leaf makes the walker use the huge frame as a P1 table', () => {
    const { mapper, memory, map } = setup(16, 2 * MIB2);
    const huge = pg(va(1, 2, 3), Size2MiB);
    map(huge, fr(MIB2, Size2MiB), F(PRESENT, WRITABLE));
    // The frame's RAM now doubles as a page table: entry 4 maps 0xabc000.
    memory.storeEntry(MIB2 + 4 * 8, ent(0xabc000, F(PRESENT, NO_EXECUTE)));
    const page = pg(va(1, 2, 3, 4), Size4KiB);
    okOf(mapper.setFlagsP2Entry(page, F(PRESENT, WRITABLE))).ignore();
    expect(mapper.translate(VirtAddr.add(page.startAddress, 0x10))).toEqual({
      kind: 'Mapped',
      frame: fr(0xabc000, Size4KiB),
      offset: 0x10,
      flags: F(PRESENT, NO_EXECUTE),
    });
    expect(okOf(mapper.translatePage(page))).toEqual(fr(0xabc000, Size4KiB));
  });
});

// ---- translate_page -------------------------------------------------------------------------

describe('translatePage', () => {
  it.each(CASES)('$name: returns the mapped frame', (c) => {
    const { mapper, map } = setup();
    map(c.page, c.frame);
    const frame = okOf(mapper.translatePage(c.page));
    expect(frame).toEqual(c.frame);
    expect(frame.size).toBe(c.size);
  });

  it.each(CASES)('$name: PRESENT is not checked', (c) => {
    const { mapper, map } = setup();
    map(c.page, c.frame);
    okOf(mapper.updateFlags(c.page, F(WRITABLE))).ignore();
    expect(okOf(mapper.translatePage(c.page))).toEqual(c.frame);
  });

  it.each(HUGE_CASES)(
    '$name: HUGE_PAGE is not checked either (an aligned flagless leaf is a frame)',
    (c) => {
      const { mapper, write, map } = setup();
      map(c.sibling, c.frame2);
      write(c.page.startAddress, c.leaf, ent(c.frame.startAddress, F(WRITABLE)));
      expect(okOf(mapper.translatePage(c.page))).toEqual(c.frame);
    },
  );

  it.each(CASES)('$name: leaf unused, no parent, non-present parent → PageNotMapped', (c) => {
    const { mapper, map } = setup();
    expect(errOf(mapper.translatePage(c.page))).toEqual({ kind: 'PageNotMapped' });
    map(c.sibling, c.frame2);
    expect(errOf(mapper.translatePage(c.page))).toEqual({ kind: 'PageNotMapped' });
    map(c.page, c.frame);
    okOf(mapper.setFlagsP4Entry(c.page, F(WRITABLE))).ignore();
    expect(errOf(mapper.translatePage(c.page))).toEqual({ kind: 'PageNotMapped' });
  });

  it.each(CASES)('$name: a HUGE P4 entry → ParentEntryHugePage', (c) => {
    const { mapper, map } = setup();
    map(c.page, c.frame);
    okOf(mapper.setFlagsP4Entry(c.page, F(PRESENT, HUGE_PAGE))).ignore();
    expect(errOf(mapper.translatePage(c.page))).toEqual({ kind: 'ParentEntryHugePage' });
  });

  it.each([
    ['4KiB under a 2 MiB leaf', pg(va(1, 2, 3, 4), Size4KiB), pg(va(1, 2, 3), Size2MiB)],
    ['4KiB under a 1 GiB leaf', pg(va(1, 2, 3, 4), Size4KiB), pg(va(1, 2), Size1GiB)],
    ['2MiB under a 1 GiB leaf', pg(va(1, 2, 3), Size2MiB), pg(va(1, 2), Size1GiB)],
  ] as const)('%s → ParentEntryHugePage', (_, page, huge) => {
    const { mapper, map } = setup();
    map(huge as Page<AnyPageSize>, fr(0x4000_0000, huge.size) as PhysFrame<AnyPageSize>);
    expect(errOf(mapper.translatePage(page as Page<AnyPageSize>))).toEqual({
      kind: 'ParentEntryHugePage',
    });
  });

  it('2MiB on a P2 table pointer → InvalidFrameAddress(P1 table address)', () => {
    const { mapper, map } = setup();
    map(pg(va(1, 2, 3, 4), Size4KiB), fr(0x9000, Size4KiB));
    expect(errOf(mapper.translatePage(pg(va(1, 2, 3), Size2MiB)))).toEqual({
      kind: 'InvalidFrameAddress',
      addr: FIRST_TABLE + 2 * KIB4,
    });
  });

  it('1GiB on a P3 table pointer → InvalidFrameAddress(P2 table address)', () => {
    const { mapper, map } = setup();
    map(pg(va(1, 2, 3, 4), Size4KiB), fr(0x9000, Size4KiB));
    expect(errOf(mapper.translatePage(pg(va(1, 2), Size1GiB)))).toEqual({
      kind: 'InvalidFrameAddress',
      addr: FIRST_TABLE + KIB4,
    });
  });

  it.each(HUGE_CASES)('$name: a misaligned huge leaf → InvalidFrameAddress', (c) => {
    const { mapper, write, map } = setup();
    map(c.sibling, c.frame2);
    const addr = c.frame.startAddress + 0x3000;
    write(c.page.startAddress, c.leaf, ent(addr, F(PRESENT, HUGE_PAGE)));
    expect(errOf(mapper.translatePage(c.page))).toEqual({ kind: 'InvalidFrameAddress', addr });
  });

  it('2MiB on a table pointer whose table sits at a 2 MiB-aligned address → Ok(table frame)', () => {
    const memory = new PhysicalMemory(2 * MIB2 + 4 * KIB4);
    const mapper = new MappedPageTable(memory, fr(0, Size4KiB));
    const allocator = listAllocator([0x1000, 0x2000, 2 * MIB2]);
    okOf(
      mapper.mapTo(pg(va(1, 2, 3, 4), Size4KiB), fr(0x9000, Size4KiB), F(PRESENT), allocator),
    ).ignore();
    expect(okOf(mapper.translatePage(pg(va(1, 2, 3), Size2MiB)))).toEqual(fr(2 * MIB2, Size2MiB));
  });
});

// ---- translate / translateAddr --------------------------------------------------------------

describe('translate / translateAddr', () => {
  const offsetsOf = (c: SizeCase): number[] => [0, 1, 0xfff, c.size.bytes - 1, c.size.bytes >>> 1];

  it.each(CASES)('$name: Mapped with the frame, the offset and the leaf flags', (c) => {
    const { mapper, map } = setup();
    const flags = F(PRESENT, WRITABLE, NO_EXECUTE, GLOBAL);
    map(c.page, c.frame, flags);
    for (const offset of offsetsOf(c)) {
      const addr = VirtAddr.add(c.page.startAddress, offset);
      expect(mapper.translate(addr)).toEqual({
        kind: 'Mapped',
        frame: c.frame,
        offset,
        flags: F(flags, hugeOf(c)),
      });
      expect(mapper.translateAddr(addr)).toBe(c.frame.startAddress + offset);
    }
    const t = mapper.translate(c.page.startAddress);
    expect(t.kind === 'Mapped' && t.frame.size).toBe(c.size);
  });

  it.each(CASES)('$name: flags are the leaf entry’s only, parents not folded in', (c) => {
    const { mapper, allocator } = setup();
    okOf(
      mapper.mapToWithTableFlags(
        c.page,
        c.frame,
        F(PRESENT, WRITABLE, USER_ACCESSIBLE),
        F(PRESENT, NO_EXECUTE),
        allocator,
      ),
    ).ignore();
    const t = mapper.translate(c.page.startAddress);
    expect(t).toMatchObject({
      kind: 'Mapped',
      flags: F(PRESENT, WRITABLE, USER_ACCESSIBLE, hugeOf(c)),
    });
  });

  it('4KiB: a non-present leaf is still Mapped, and translateAddr returns an address', () => {
    const { mapper, map } = setup();
    const page = pg(va(1, 2, 3, 4), Size4KiB);
    map(page, fr(0x9000, Size4KiB));
    okOf(mapper.updateFlags(page, F(WRITABLE, DIRTY))).ignore();
    expect(mapper.translate(VirtAddr.add(page.startAddress, 0x42))).toEqual({
      kind: 'Mapped',
      frame: fr(0x9000, Size4KiB),
      offset: 0x42,
      flags: F(WRITABLE, DIRTY),
    });
    expect(mapper.translateAddr(VirtAddr.add(page.startAddress, 0x42))).toBe(0x9042);
  });

  it('4KiB: a leaf with only high flag bits (address 0) is Mapped to frame 0', () => {
    const { mapper, write, map } = setup();
    map(pg(va(1, 2, 3, 5), Size4KiB), fr(0x9000, Size4KiB));
    write(va(1, 2, 3, 4), 1, 1n << 63n);
    expect(mapper.translate(va(1, 2, 3, 4, 7))).toEqual({
      kind: 'Mapped',
      frame: fr(0, Size4KiB),
      offset: 7,
      flags: NO_EXECUTE,
    });
    expect(mapper.translateAddr(va(1, 2, 3, 4, 7))).toBe(7);
  });

  it.each(HUGE_CASES)('$name: a non-present huge leaf is NotMapped', (c) => {
    const { mapper, map } = setup();
    map(c.page, c.frame);
    okOf(mapper.updateFlags(c.page, F(WRITABLE))).ignore();
    expect(mapper.translate(VirtAddr.add(c.page.startAddress, 5))).toEqual({ kind: 'NotMapped' });
    expect(mapper.translateAddr(VirtAddr.add(c.page.startAddress, 5))).toBeUndefined();
    // translatePage disagrees by design: it does not check PRESENT.
    expect(okOf(mapper.translatePage(c.page))).toEqual(c.frame);
  });

  it.each(HUGE_CASES)('$name: a misaligned huge frame is aligned down, never an error', (c) => {
    const { mapper, write, map } = setup();
    map(c.sibling, c.frame2);
    const stored = c.frame.startAddress + 0x5000;
    write(c.page.startAddress, c.leaf, ent(stored, F(PRESENT, WRITABLE, HUGE_PAGE)));
    const offset = 0x1234;
    const addr = VirtAddr.add(c.page.startAddress, offset);
    expect(mapper.translate(addr)).toEqual({
      kind: 'Mapped',
      frame: c.frame,
      offset,
      flags: F(PRESENT, WRITABLE, HUGE_PAGE),
    });
    expect(mapper.translateAddr(addr)).toBe(c.frame.startAddress + offset);
  });

  it.each(CASES)(
    '$name: NotMapped when the P4 entry, a parent or the leaf is missing or non-present',
    (c) => {
      const { mapper, read, write, map } = setup();
      expect(mapper.translate(c.page.startAddress)).toEqual({ kind: 'NotMapped' });
      map(c.sibling, c.frame2);
      expect(mapper.translate(c.page.startAddress)).toEqual({ kind: 'NotMapped' });
      expect(mapper.translateAddr(c.page.startAddress)).toBeUndefined();
      map(c.page, c.frame);
      for (const level of parentLevels(c)) {
        const before = read(c.page.startAddress, level);
        write(c.page.startAddress, level, before & ~1n);
        expect(mapper.translate(c.page.startAddress)).toEqual({ kind: 'NotMapped' });
        expect(mapper.translateAddr(c.page.startAddress)).toBeUndefined();
        write(c.page.startAddress, level, before);
      }
      expect(mapper.translateAddr(c.page.startAddress)).toBe(c.frame.startAddress);
    },
  );

  it.each([
    {
      name: '4KiB',
      page: pg(VirtAddr.new(0xffff_8000_0000_0000n), Size4KiB) as Page<AnyPageSize>,
      frame: fr(0x7000, Size4KiB) as PhysFrame<AnyPageSize>,
      p4: 256,
    },
    {
      name: '4KiB top page',
      page: pg(VirtAddr.new(0xffff_ffff_ffff_f000n), Size4KiB) as Page<AnyPageSize>,
      frame: fr(0x7000, Size4KiB) as PhysFrame<AnyPageSize>,
      p4: 511,
    },
    {
      name: '2MiB',
      page: pg(VirtAddr.new(0xffff_ffff_ffe0_0000n), Size2MiB) as Page<AnyPageSize>,
      frame: fr(0x60_0000, Size2MiB) as PhysFrame<AnyPageSize>,
      p4: 511,
    },
    {
      name: '1GiB',
      page: pg(VirtAddr.new(0xffff_c000_4000_0000n), Size1GiB) as Page<AnyPageSize>,
      frame: fr(0x4000_0000, Size1GiB) as PhysFrame<AnyPageSize>,
      p4: 384,
    },
  ])('higher half, $name: map, translate, update, unmap', ({ page, frame, p4 }) => {
    const { mapper, memory, allocator } = setup();
    okOf(mapper.mapTo(page, frame, F(PRESENT, WRITABLE), allocator)).ignore();
    expect(memory.loadEntry(P4_FRAME + p4 * 8)).toBe(ent(FIRST_TABLE, F(PRESENT, WRITABLE)));
    for (let i = 0; i < 512; i++) {
      if (i !== p4) expect(memory.loadEntry(P4_FRAME + i * 8)).toBe(0n);
    }
    const last = VirtAddr.add(page.startAddress, page.size.bytes - 1);
    expect(mapper.translateAddr(last)).toBe(frame.startAddress + page.size.bytes - 1);
    expect(mapper.translate(last)).toMatchObject({ kind: 'Mapped', offset: page.size.bytes - 1 });
    // The lower-half address with the same low 47 bits is a different page.
    expect(
      mapper.translateAddr(VirtAddr.newUnchecked(page.startAddress - 2 ** 47)),
    ).toBeUndefined();
    okOf(mapper.updateFlags(page, F(PRESENT))).ignore();
    expect(okOf(mapper.translatePage(page))).toEqual(frame);
    expect(okOf(mapper.unmap(page)).frame).toEqual(frame);
    expect(mapper.translateAddr(page.startAddress)).toBeUndefined();
  });
});

// ---- tables outside RAM ---------------------------------------------------------------------

describe('a walk into a table frame outside RAM throws TableFrameOutsideRam', () => {
  const page4k = pg(va(1, 2, 3, 4), Size4KiB);
  const outside = 2 ** 32;

  function expectOutside(fn: () => unknown, entryAddress: number, tableAddress: number): void {
    let thrown: unknown;
    try {
      fn();
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(TableFrameOutsideRam);
    expect(thrown).not.toBeInstanceOf(RangeError);
    expect(thrown).not.toBeInstanceOf(MemoryError);
    const e = thrown as TableFrameOutsideRam;
    expect(e.name).toBe('TableFrameOutsideRam');
    expect(e.entryAddress).toBe(entryAddress);
    expect(e.tableAddress).toBe(tableAddress);
  }

  it('through a P4 entry: every operation that walks refuses', () => {
    const { mapper, memory, allocator, snapshot } = setup();
    memory.storeEntry(P4_FRAME + 8, ent(outside, F(PRESENT, WRITABLE)));
    const before = snapshot();
    const e = P4_FRAME + 8;
    expectOutside(() => mapper.translate(page4k.startAddress), e, outside);
    expectOutside(() => mapper.translateAddr(page4k.startAddress), e, outside);
    expectOutside(() => mapper.translatePage(page4k), e, outside);
    expectOutside(() => mapper.translatePage(pg(va(1, 2), Size1GiB)), e, outside);
    expectOutside(() => mapper.unmap(page4k), e, outside);
    expectOutside(() => mapper.unmap(pg(va(1, 2), Size1GiB)), e, outside);
    expectOutside(() => mapper.updateFlags(page4k, F(PRESENT)), e, outside);
    expectOutside(() => mapper.setFlagsP3Entry(page4k, F(PRESENT)), e, outside);
    expectOutside(() => mapper.setFlagsP2Entry(page4k, F(PRESENT)), e, outside);
    expectOutside(
      () => mapper.mapTo(page4k, fr(0x9000, Size4KiB), F(PRESENT), allocator),
      e,
      outside,
    );
    expectOutside(
      () => mapper.mapTo(pg(va(1, 2), Size1GiB), fr(0, Size1GiB), F(PRESENT), allocator),
      e,
      outside,
    );
    expectOutside(() => mapper.cleanUp({ deallocateFrame() {} }), e, outside);
    expect(snapshot().equals(before)).toBe(true);
    expect(allocator.issuedCount).toBe(0);
    // The P4 entry itself is still editable: set_flags_p4 does not walk through it.
    okOf(mapper.setFlagsP4Entry(page4k, F(PRESENT))).ignore();
  });

  it('through a lower-level entry (P2 → P1 outside RAM)', () => {
    const { mapper, entryAt, write, map } = setup();
    map(page4k, fr(0x9000, Size4KiB));
    const p2Entry = entryAt(page4k.startAddress, 2);
    write(page4k.startAddress, 2, ent(outside + 0x5000, F(PRESENT)));
    expectOutside(() => mapper.translate(page4k.startAddress), p2Entry, outside + 0x5000);
    expectOutside(() => mapper.unmap(page4k), p2Entry, outside + 0x5000);
    // A 2 MiB operation stops at the P2 entry and does not follow it.
    expect(errOf(mapper.unmap(pg(va(1, 2, 3), Size2MiB)))).toEqual({ kind: 'ParentEntryHugePage' });
  });

  it('the boundary: a table in the last frame of RAM works, one frame further is refused', () => {
    const { mapper, memory } = setup();
    memory.storeEntry(P4_FRAME + 8, ent(RAM_BYTES - KIB4, F(PRESENT)));
    expect(mapper.translate(page4k.startAddress)).toEqual({ kind: 'NotMapped' });
    memory.storeEntry(P4_FRAME + 8, ent(RAM_BYTES, F(PRESENT)));
    expectOutside(() => mapper.translate(page4k.startAddress), P4_FRAME + 8, RAM_BYTES);
  });

  it('a frame from the allocator outside RAM is refused before anything is written', () => {
    const { mapper, memory } = setup();
    const allocator = listAllocator([outside]);
    expectOutside(
      () => mapper.mapTo(page4k, fr(0x9000, Size4KiB), F(PRESENT), allocator),
      P4_FRAME + 8,
      outside,
    );
    expect(memory.loadEntry(P4_FRAME + 8)).toBe(0n);
  });

  it('a level-4 frame outside RAM is refused by the constructor', () => {
    const memory = new PhysicalMemory(RAM_BYTES);
    expect(() => new MappedPageTable(memory, fr(RAM_BYTES, Size4KiB))).toThrow(
      TableFrameOutsideRam,
    );
    expect(() => new MappedPageTable(memory, fr(RAM_BYTES - KIB4, Size4KiB))).not.toThrow();
  });
});

// ---- OffsetPageTable ------------------------------------------------------------------------

describe('OffsetPageTable forwards to MappedPageTable unchanged', () => {
  it('keeps its offset and gives identical results and RAM', () => {
    const a = setup();
    const memory = new PhysicalMemory(RAM_BYTES);
    const offset = VirtAddr.new(0xffff_8880_0000_0000n);
    const opt = new OffsetPageTable(memory, fr(0, Size4KiB), offset);
    const allocator = new BumpFrameAllocator(FIRST_TABLE, FIRST_TABLE + 16 * KIB4);
    expect(opt.physOffset()).toBe(offset);
    expect(new OffsetPageTable(memory, fr(0, Size4KiB)).physOffset()).toBe(VirtAddr.zero);
    expect(opt).toBeInstanceOf(MappedPageTable);
    const results: unknown[][] = [[], []];
    const run = (m: MappedPageTable, alloc: FrameAllocator, out: unknown[]): void => {
      for (const c of CASES) {
        const r = m.mapTo(c.page, c.frame, F(PRESENT, WRITABLE, NO_EXECUTE), alloc);
        out.push(r.ok);
        if (r.ok) r.value.ignore();
        out.push(m.translate(VirtAddr.add(c.page.startAddress, 0x77)));
        out.push(m.translatePage(c.page));
        out.push(m.mapTo(c.page, c.frame2, F(PRESENT), alloc));
      }
      const u = m.unmap(CASES[0]!.page);
      out.push(u.ok && u.value.frame);
    };
    run(a.mapper, a.allocator, results[0]!);
    run(opt, allocator, results[1]!);
    expect(JSON.stringify(results[1], replacer)).toBe(JSON.stringify(results[0], replacer));
    expect(Buffer.from(new Uint8Array(memory.buffer)).equals(a.snapshot())).toBe(true);
  });
});

/** JSON replacer that drops flush obligations (they hold ledgers and targets). */
function replacer(_key: string, value: unknown): unknown {
  return value instanceof MapperFlush || value instanceof MapperFlushAll ? 'flush' : value;
}
