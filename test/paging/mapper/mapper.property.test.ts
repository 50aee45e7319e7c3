/**
 * Model-based property test of `MappedPageTable` (src/paging/mapper): random sequences of
 * mapTo / mapToWithTableFlags / unmap / updateFlags / translate / translatePage over a fixed set
 * of pages of all three sizes, checked after every step against a plain `Map` model and against a
 * full walk of every table reachable from P4 (shared/spec/x86_64-semantics.md §5-§6).
 *
 * The pages are chosen so that no page's leaf entry lies on another page's walk: a 2 MiB page's
 * P2 entry is never a 4 KiB page's table pointer, and a 1 GiB page's P3 entry never a 2 MiB or
 * 4 KiB page's. Parent flags always contain PRESENT and never HUGE_PAGE, so the only panic left
 * to model is HUGE_PAGE in the flags of a free 4 KiB leaf.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PhysAddr, VirtAddr } from '../../../src/addr.ts';
import { PhysicalMemory } from '../../../src/memory/physical-memory.ts';
import { PageTableFlags } from '../../../src/paging/flags.ts';
import { PhysFrame } from '../../../src/paging/frame.ts';
import { BumpFrameAllocator } from '../../../src/paging/frame-allocator.ts';
import { MappedPageTable, MapperFlush } from '../../../src/paging/mapper/index.ts';
import { Page } from '../../../src/paging/page.ts';
import {
  type AnyPageSize,
  type PageSize,
  Size1GiB,
  Size2MiB,
  Size4KiB,
} from '../../../src/paging/page-size.ts';
import { CratePanic } from '../../../src/paging/panic.ts';

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
const ADDR_MASK = 0x000f_ffff_ffff_f000n;
const KIB4 = 4096;
const RAM_BYTES = 64 * KIB4;
const P4 = 0;

function va(p4: number, p3 = 0, p2 = 0, p1 = 0): VirtAddr {
  return VirtAddr.newTruncate(p4 * 2 ** 39 + p3 * 2 ** 30 + p2 * 2 ** 21 + p1 * 2 ** 12);
}

function pg<S extends PageSize>(addr: VirtAddr, size: S): Page<AnyPageSize> {
  const r = Page.fromStartAddress(addr, size);
  if (!r.ok) throw r.error;
  return r.value as unknown as Page<AnyPageSize>;
}

function fr<S extends PageSize>(addr: number, size: S): PhysFrame<AnyPageSize> {
  const r = PhysFrame.fromStartAddress(PhysAddr.new(addr), size);
  if (!r.ok) throw r.error;
  return r.value as unknown as PhysFrame<AnyPageSize>;
}

/** The pages under test: lower and higher half, sharing tables where that is allowed. */
const PAGES: readonly Page<AnyPageSize>[] = [
  pg(va(0, 0, 0, 0), Size4KiB),
  pg(va(0, 0, 0, 1), Size4KiB),
  pg(va(0, 0, 0, 511), Size4KiB),
  pg(va(0, 0, 3, 7), Size4KiB),
  pg(va(256, 0, 0, 0), Size4KiB),
  pg(va(511, 511, 511, 511), Size4KiB),
  pg(va(0, 0, 1), Size2MiB),
  pg(va(0, 0, 2), Size2MiB),
  pg(va(0, 5, 0), Size2MiB),
  pg(va(511, 511, 510), Size2MiB),
  pg(va(0, 1), Size1GiB),
  pg(va(0, 2), Size1GiB),
  pg(va(511, 510), Size1GiB),
  pg(va(1, 0), Size1GiB),
];

/** Leaf frames per size, including ones with high address bits (bits 32..51). */
const FRAMES: Readonly<Record<AnyPageSize['name'], readonly PhysFrame<AnyPageSize>[]>> = {
  '4KiB': [0x9000, 0x1_0000_0000, 0xa_bcde_f000, 2 ** 52 - KIB4].map((a) => fr(a, Size4KiB)),
  '2MiB': [0x20_0000, 0x2_0060_0000, 2 ** 52 - 2 ** 21].map((a) => fr(a, Size2MiB)),
  '1GiB': [0x4000_0000, 0x8_4000_0000, 2 ** 52 - 2 ** 30].map((a) => fr(a, Size1GiB)),
};

const LEAF_FLAG_POOL = [
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
];
const leafFlags = fc.subarray(LEAF_FLAG_POOL).map((parts) => F(...parts));
/** Leaf flags that also keep HUGE_PAGE rare (it panics on a free 4 KiB leaf). */
const mapFlags = fc
  .tuple(fc.subarray(LEAF_FLAG_POOL.filter((f) => f !== HUGE_PAGE)), fc.nat(9))
  .map(([parts, n]) => F(...parts, n === 0 ? HUGE_PAGE : PageTableFlags.empty));
/** Table flags: PRESENT always, HUGE_PAGE never, anything else. */
const tableFlags = fc
  .subarray(LEAF_FLAG_POOL.filter((f) => f !== HUGE_PAGE && f !== PRESENT))
  .map((parts) => F(PRESENT, ...parts));

type Op =
  | {
      readonly t: 'map';
      readonly slot: number;
      readonly frame: number;
      readonly flags: PageTableFlags;
      /** Table flags for mapToWithTableFlags; undefined for mapTo (which then needs PRESENT). */
      readonly table: PageTableFlags | undefined;
      readonly flush: boolean;
    }
  | { readonly t: 'unmap'; readonly slot: number; readonly flush: boolean }
  | {
      readonly t: 'update';
      readonly slot: number;
      readonly flags: PageTableFlags;
      readonly flush: boolean;
    }
  | { readonly t: 'translate'; readonly slot: number; readonly offset: number };

const slot = fc.nat(PAGES.length - 1);
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant('map' as const),
      slot,
      frame: fc.nat(2),
      flags: mapFlags,
      table: fc.option(tableFlags, { nil: undefined }),
      flush: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ t: fc.constant('unmap' as const), slot, flush: fc.boolean() }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('update' as const),
      slot,
      flags: leafFlags,
      flush: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ t: fc.constant('translate' as const), slot, offset: fc.nat() }),
  },
);

const leafLevel = (size: AnyPageSize): number =>
  size === Size4KiB ? 1 : size === Size2MiB ? 2 : 3;
const span = (level: number): number => 2 ** (12 + 9 * (level - 1));
/** Key of the level-`level` entry that maps `addr`. */
const entryKey = (level: number, addr: number): string =>
  `${level}:${Math.floor(addr / span(level))}`;
const ent = (addr: number, flags: PageTableFlags): bigint =>
  BigInt(addr) | PageTableFlags.bits(flags);

/** Which page of PAGES has its leaf entry at this level and address, if any. */
const LEAF_AT = new Map<string, number>(
  PAGES.map((p, i) => [entryKey(leafLevel(p.size), p.startAddress), i] as const),
);

interface Model {
  /** Mapped slots: the frame and the leaf flags exactly as stored (HUGE_PAGE included). */
  readonly leaves: Map<number, { frame: PhysFrame<AnyPageSize>; flags: PageTableFlags }>;
  /** Table-pointer entries by entryKey: the union of every table flag inserted there. */
  readonly parents: Map<string, number>;
}

/** Walks every table reachable from P4 and compares each used entry with the model. */
function checkTables(memory: PhysicalMemory, allocator: BumpFrameAllocator, model: Model): void {
  const issued = new Set(allocator.issued().map((f) => f.startAddress as number));
  const tables = new Set<number>([P4]);
  const leavesSeen = new Set<number>();
  let pointers = 0;
  const visit = (table: number, level: number, base: number): void => {
    for (let i = 0; i < 512; i++) {
      const e = memory.loadEntry(table + i * 8);
      if (e === 0n) continue;
      const addr = base + i * span(level);
      const key = entryKey(level, addr);
      const slotIndex = LEAF_AT.get(key);
      if (level === 1 || (slotIndex !== undefined && level <= 3)) {
        // A leaf: its address bits must be exactly the model's frame.
        expect(slotIndex, `used leaf entry at ${key} belongs to no page`).toBeDefined();
        const leaf = model.leaves.get(slotIndex!);
        expect(leaf, `leaf of page ${slotIndex} is used but not mapped in the model`).toBeDefined();
        expect(e).toBe(ent(leaf!.frame.startAddress, leaf!.flags));
        leavesSeen.add(slotIndex!);
        continue;
      }
      // A table pointer: present, not huge, to a frame the allocator issued, linked once.
      const child = Number(e & ADDR_MASK);
      expect(e & 0x81n).toBe(1n);
      expect(issued.has(child) || child === P4, `table 0x${child.toString(16)} not issued`).toBe(
        true,
      );
      expect(tables.has(child), `table 0x${child.toString(16)} linked twice`).toBe(false);
      tables.add(child);
      pointers++;
      const inserted = model.parents.get(key);
      expect(inserted, `table pointer at ${key} is not in the model`).toBeDefined();
      expect(e & ~ADDR_MASK).toBe(PageTableFlags.bits(inserted as PageTableFlags));
      visit(child, level - 1, addr);
    }
  };
  visit(P4, 4, 0);
  expect(leavesSeen.size).toBe(model.leaves.size);
  expect(pointers).toBe(model.parents.size);
  // No table frame leaked: every frame the allocator issued is linked exactly once.
  expect(allocator.issuedCount).toBe(pointers);
}

function run(ops: readonly Op[]): void {
  const memory = new PhysicalMemory(RAM_BYTES);
  const allocator = new BumpFrameAllocator(KIB4, RAM_BYTES);
  const calls: Page<AnyPageSize>[] = [];
  const mapper = new MappedPageTable(
    memory,
    PhysFrame.fromStartAddressUnchecked(PhysAddr.zero, Size4KiB),
    {
      invalidation: {
        invalidatePage: (p) => calls.push(p),
        invalidateAll: () => {
          throw new Error('no MapperFlushAll expected');
        },
      },
    },
  );
  const model: Model = { leaves: new Map(), parents: new Map() };
  let obligations = 0;

  const settle = (flush: MapperFlush<AnyPageSize>, page: Page<AnyPageSize>, doFlush: boolean) => {
    expect(flush).toBeInstanceOf(MapperFlush);
    expect(flush.page()).toBe(page);
    obligations++;
    const before = calls.length;
    if (doFlush) flush.flush();
    else flush.ignore();
    expect(calls.length).toBe(before + (doFlush ? 1 : 0));
    if (doFlush) expect(calls[calls.length - 1]).toBe(page);
  };

  for (const o of ops) {
    const page = PAGES[o.slot]!;
    const huge = page.size !== Size4KiB;
    const current = model.leaves.get(o.slot);
    switch (o.t) {
      case 'map': {
        const frame = FRAMES[page.size.name][o.frame % FRAMES[page.size.name].length]!;
        const flags = o.table === undefined ? F(o.flags, PRESENT) : o.flags;
        const insert =
          o.table ?? PageTableFlags.intersection(flags, F(PRESENT, WRITABLE, USER_ACCESSIBLE));
        const call = () =>
          o.table === undefined
            ? mapper.mapTo(page, frame, flags, allocator)
            : mapper.mapToWithTableFlags(page, frame, flags, o.table, allocator);
        // Parents are created or get the table flags OR-ed in, whatever happens at the leaf.
        for (let level = 4; level > leafLevel(page.size); level--) {
          const key = entryKey(level, page.startAddress);
          model.parents.set(key, (model.parents.get(key) ?? 0) | insert);
        }
        if (current === undefined && !huge && (flags & HUGE_PAGE) !== 0) {
          expect(call).toThrow(CratePanic);
          break;
        }
        const r = call();
        if (current !== undefined) {
          expect(r.ok).toBe(false);
          if (!r.ok) {
            expect(r.error).toEqual({ kind: 'PageAlreadyMapped', frame });
            expect((r.error as { frame: unknown }).frame).toBe(frame);
          }
        } else {
          expect(r.ok, JSON.stringify(!r.ok && r.error)).toBe(true);
          if (r.ok) settle(r.value, page, o.flush);
          model.leaves.set(o.slot, { frame, flags: huge ? F(flags, HUGE_PAGE) : flags });
        }
        break;
      }
      case 'unmap': {
        const r = mapper.unmap(page);
        if (current === undefined || (current.flags & PRESENT) === 0) {
          expect(r).toEqual({ ok: false, error: { kind: 'PageNotMapped' } });
        } else if (!huge && (current.flags & HUGE_PAGE) !== 0) {
          expect(r).toEqual({ ok: false, error: { kind: 'ParentEntryHugePage' } });
        } else {
          expect(r.ok).toBe(true);
          if (r.ok) {
            expect(r.value.frame).toEqual(current.frame);
            expect(r.value.frame.size).toBe(page.size);
            settle(r.value.flush, page, o.flush);
          }
          model.leaves.delete(o.slot);
        }
        break;
      }
      case 'update': {
        const r = mapper.updateFlags(page, o.flags);
        if (current === undefined) {
          expect(r).toEqual({ ok: false, error: { kind: 'PageNotMapped' } });
        } else {
          expect(r.ok).toBe(true);
          if (r.ok) settle(r.value, page, o.flush);
          current.flags = huge ? F(o.flags, HUGE_PAGE) : o.flags;
        }
        break;
      }
      case 'translate': {
        const offset = o.offset % page.size.bytes;
        const addr = VirtAddr.add(page.startAddress, offset);
        const visible = current !== undefined && (!huge || (current.flags & PRESENT) !== 0);
        if (visible) {
          expect(mapper.translate(addr)).toEqual({
            kind: 'Mapped',
            frame: current.frame,
            offset,
            flags: current.flags,
          });
          expect(mapper.translateAddr(addr)).toBe(current.frame.startAddress + offset);
        } else {
          expect(mapper.translate(addr)).toEqual({ kind: 'NotMapped' });
          expect(mapper.translateAddr(addr)).toBeUndefined();
        }
        const tp = mapper.translatePage(page);
        if (current === undefined) {
          expect(tp).toEqual({ ok: false, error: { kind: 'PageNotMapped' } });
        } else {
          // translate_page checks neither PRESENT nor HUGE_PAGE.
          expect(tp).toEqual({ ok: true, value: current.frame });
        }
        break;
      }
    }
    checkTables(memory, allocator, model);
  }
  expect(mapper.flushLedger.created).toBe(obligations);
  expect(mapper.flushLedger.pendingCount).toBe(0);
}

describe('MappedPageTable against a model', () => {
  it('random map / unmap / updateFlags / translate sequences keep RAM and results in step with the model', () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 60, size: 'max' }), (ops) => run(ops)),
      { numRuns: 300 },
    );
  });

  it('a fixed sequence over every page: map all, remap, update, unmap all', () => {
    const ops: Op[] = [];
    PAGES.forEach((_, i) => {
      ops.push({
        t: 'map',
        slot: i,
        frame: i,
        flags: F(PRESENT, WRITABLE, NO_EXECUTE),
        table: undefined,
        flush: true,
      });
      ops.push({ t: 'translate', slot: i, offset: 0x12345 });
    });
    PAGES.forEach((_, i) => {
      ops.push({
        t: 'map',
        slot: i,
        frame: i + 1,
        flags: F(PRESENT),
        table: F(PRESENT, GLOBAL),
        flush: false,
      });
      ops.push({ t: 'update', slot: i, flags: F(WRITABLE, DIRTY), flush: false });
      ops.push({ t: 'translate', slot: i, offset: 7 });
      ops.push({ t: 'unmap', slot: i, flush: true });
      ops.push({ t: 'update', slot: i, flags: F(PRESENT, WRITABLE), flush: true });
      ops.push({ t: 'unmap', slot: i, flush: true });
      ops.push({ t: 'translate', slot: i, offset: 0 });
    });
    run(ops);
  });
});
