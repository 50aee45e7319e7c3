/**
 * Tests of `MapperFlush`, `MapperFlushAll` and `FlushLedger` (src/paging/mapper/flush.ts) against
 * shared/spec/x86_64-semantics.md §7: every mutating mapper call returns the obligation for the
 * right page, `flush()` invalidates exactly once through the `InvalidationTarget`, `ignore()`
 * never does, an obligation settles only once, and the ledger exposes the ones still pending —
 * which is how a dropped (`#[must_use]`-violating) flush is detected.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PhysAddr, VirtAddr } from '../../../src/addr.ts';
import { PhysicalMemory } from '../../../src/memory/physical-memory.ts';
import { PageTableFlags } from '../../../src/paging/flags.ts';
import { PhysFrame } from '../../../src/paging/frame.ts';
import { BumpFrameAllocator } from '../../../src/paging/frame-allocator.ts';
import {
  FlushAlreadySettled,
  FlushLedger,
  type InvalidationTarget,
  MappedPageTable,
  MapperFlush,
  MapperFlushAll,
  NO_INVALIDATION,
} from '../../../src/paging/mapper/index.ts';
import { Page } from '../../../src/paging/page.ts';
import {
  type AnyPageSize,
  type PageSize,
  Size1GiB,
  Size2MiB,
  Size4KiB,
} from '../../../src/paging/page-size.ts';
import type { Result } from '../../../src/result.ts';

const { PRESENT, WRITABLE, NO_EXECUTE } = PageTableFlags;
const F = PageTableFlags.of;

function pg<S extends PageSize>(addr: bigint | number, size: S): Page<S> {
  const r = Page.fromStartAddress(VirtAddr.new(addr), size);
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

type Call = { readonly kind: 'page'; readonly page: Page<AnyPageSize> } | { readonly kind: 'all' };

/** An InvalidationTarget that records every call. */
function recorder(): InvalidationTarget & { calls: Call[] } {
  const calls: Call[] = [];
  return {
    calls,
    invalidatePage(page) {
      calls.push({ kind: 'page', page });
    },
    invalidateAll() {
      calls.push({ kind: 'all' });
    },
  };
}

function setup() {
  const memory = new PhysicalMemory(64 * 4096);
  const target = recorder();
  const mapper = new MappedPageTable(memory, fr(0, Size4KiB), { invalidation: target });
  const allocator = new BumpFrameAllocator(0x1000, 0x20000);
  return { memory, target, mapper, allocator, ledger: mapper.flushLedger };
}

const CASES = [
  {
    name: '4KiB',
    page: pg(0x0000_0040_8060_3000, Size4KiB) as Page<AnyPageSize>,
    frame: fr(0x9000, Size4KiB) as PhysFrame<AnyPageSize>,
  },
  {
    name: '2MiB',
    page: pg(0x0000_0040_8080_0000, Size2MiB) as Page<AnyPageSize>,
    frame: fr(0x20_0000, Size2MiB) as PhysFrame<AnyPageSize>,
  },
  {
    name: '1GiB',
    page: pg(0xffff_8000_4000_0000n, Size1GiB) as Page<AnyPageSize>,
    frame: fr(0x4000_0000, Size1GiB) as PhysFrame<AnyPageSize>,
  },
] as const;

describe('every mutating call returns the obligation for the page it changed', () => {
  it.each(CASES)(
    '$name: mapTo, mapToWithTableFlags, updateFlags and unmap return MapperFlush(page)',
    ({ page, frame }) => {
      const { mapper, allocator, ledger } = setup();
      const mapped = okOf(mapper.mapTo(page, frame, F(PRESENT, WRITABLE), allocator));
      expect(mapped).toBeInstanceOf(MapperFlush);
      expect(mapped.page()).toBe(page);
      mapped.ignore();
      const updated = okOf(mapper.updateFlags(page, F(PRESENT)));
      expect(updated).toBeInstanceOf(MapperFlush);
      expect(updated.page()).toBe(page);
      updated.ignore();
      const { frame: unmappedFrame, flush } = okOf(mapper.unmap(page));
      expect(unmappedFrame).toEqual(frame);
      expect(flush).toBeInstanceOf(MapperFlush);
      expect(flush.page()).toBe(page);
      flush.ignore();
      const again = okOf(
        mapper.mapToWithTableFlags(page, frame, F(PRESENT), F(PRESENT, WRITABLE), allocator),
      );
      expect(again.page()).toBe(page);
      again.ignore();
      expect(ledger.created).toBe(4);
      expect(ledger.pendingCount).toBe(0);
    },
  );

  it.each(CASES)(
    '$name: identityMap returns MapperFlush for the page at the frame address',
    ({ frame }) => {
      const { mapper, allocator } = setup();
      const flush = okOf(mapper.identityMap(frame, F(PRESENT), allocator));
      expect(flush).toBeInstanceOf(MapperFlush);
      expect(flush.page().startAddress).toBe(frame.startAddress);
      expect(flush.page().size).toBe(frame.size);
      flush.ignore();
    },
  );

  it.each(CASES)('$name: setFlagsP4Entry / P3 / P2 return MapperFlushAll', ({ page, frame }) => {
    const { mapper, allocator } = setup();
    okOf(mapper.mapTo(page, frame, F(PRESENT, WRITABLE), allocator)).ignore();
    const p4 = okOf(mapper.setFlagsP4Entry(page, F(PRESENT, WRITABLE)));
    expect(p4).toBeInstanceOf(MapperFlushAll);
    p4.ignore();
    if (page.size !== Size1GiB) {
      const p3 = okOf(mapper.setFlagsP3Entry(page, F(PRESENT, WRITABLE)));
      expect(p3).toBeInstanceOf(MapperFlushAll);
      p3.ignore();
    }
    if (page.size === Size4KiB) {
      const p2 = okOf(mapper.setFlagsP2Entry(page, F(PRESENT, WRITABLE)));
      expect(p2).toBeInstanceOf(MapperFlushAll);
      p2.ignore();
    }
  });

  it('failed calls create no obligation', () => {
    const { mapper, allocator, ledger } = setup();
    const page = CASES[0].page;
    expect(mapper.unmap(page).ok).toBe(false);
    expect(mapper.updateFlags(page, F(PRESENT)).ok).toBe(false);
    expect(mapper.setFlagsP4Entry(page, F(PRESENT)).ok).toBe(false);
    expect(mapper.setFlagsP2Entry(CASES[1].page, F(PRESENT)).ok).toBe(false);
    expect(mapper.mapTo(page, CASES[0].frame, F(PRESENT), new BumpFrameAllocator(0, 0)).ok).toBe(
      false,
    );
    okOf(mapper.mapTo(page, CASES[0].frame, F(PRESENT), allocator)).ignore();
    expect(mapper.mapTo(page, CASES[0].frame, F(PRESENT), allocator).ok).toBe(false);
    expect(ledger.created).toBe(1);
    expect(ledger.pending()).toEqual([]);
  });
});

describe('flush() and ignore()', () => {
  it.each(CASES)(
    '$name: MapperFlush.flush() calls invalidatePage(page) exactly once',
    ({ page, frame }) => {
      const { mapper, allocator, target, ledger } = setup();
      const flush = okOf(mapper.mapTo(page, frame, F(PRESENT), allocator));
      expect(target.calls).toEqual([]);
      expect(flush.state).toBe('pending');
      flush.flush();
      expect(target.calls).toEqual([{ kind: 'page', page }]);
      expect((target.calls[0] as { page: unknown }).page).toBe(page);
      expect(flush.state).toBe('flushed');
      expect(ledger.flushed).toBe(1);
      expect(ledger.ignored).toBe(0);
    },
  );

  it('MapperFlushAll.flush() and flushAll() call invalidateAll exactly once each', () => {
    const { mapper, allocator, target, ledger } = setup();
    const { page, frame } = CASES[0];
    okOf(mapper.mapTo(page, frame, F(PRESENT), allocator)).ignore();
    const a = okOf(mapper.setFlagsP4Entry(page, F(PRESENT, WRITABLE)));
    const b = okOf(mapper.setFlagsP3Entry(page, F(PRESENT, WRITABLE)));
    a.flush();
    expect(target.calls).toEqual([{ kind: 'all' }]);
    b.flushAll();
    expect(target.calls).toEqual([{ kind: 'all' }, { kind: 'all' }]);
    expect(a.state).toBe('flushed');
    expect(b.state).toBe('flushed');
    expect(ledger.flushed).toBe(2);
  });

  it('ignore() invalidates nothing, on either type', () => {
    const { mapper, allocator, target, ledger } = setup();
    const { page, frame } = CASES[0];
    const one = okOf(mapper.mapTo(page, frame, F(PRESENT), allocator));
    const all = okOf(mapper.setFlagsP4Entry(page, F(PRESENT)));
    one.ignore();
    all.ignore();
    expect(target.calls).toEqual([]);
    expect(one.state).toBe('ignored');
    expect(all.state).toBe('ignored');
    expect(ledger.ignored).toBe(2);
    expect(ledger.flushed).toBe(0);
  });

  it.each([
    ['flush', 'flush'],
    ['flush', 'ignore'],
    ['ignore', 'flush'],
    ['ignore', 'ignore'],
  ] as const)(
    'MapperFlush: %s then %s throws FlushAlreadySettled and changes nothing',
    (first, second) => {
      const { mapper, allocator, target, ledger } = setup();
      const flush = okOf(mapper.mapTo(CASES[0].page, CASES[0].frame, F(PRESENT), allocator));
      flush[first]();
      const calls = target.calls.length;
      const counts = [ledger.created, ledger.flushed, ledger.ignored];
      expect(() => flush[second]()).toThrow(FlushAlreadySettled);
      expect(() => flush[second]()).toThrow(/already (flushed|ignored)/);
      expect(target.calls.length).toBe(calls);
      expect([ledger.created, ledger.flushed, ledger.ignored]).toEqual(counts);
      expect(flush.state).toBe(first === 'flush' ? 'flushed' : 'ignored');
      expect(ledger.pending()).toEqual([]);
    },
  );

  it.each([
    ['flush', 'flush'],
    ['flushAll', 'ignore'],
    ['ignore', 'flushAll'],
    ['ignore', 'ignore'],
  ] as const)(
    'MapperFlushAll: %s then %s throws FlushAlreadySettled and changes nothing',
    (first, second) => {
      const { mapper, allocator, target, ledger } = setup();
      okOf(mapper.mapTo(CASES[0].page, CASES[0].frame, F(PRESENT), allocator)).ignore();
      const all = okOf(mapper.setFlagsP4Entry(CASES[0].page, F(PRESENT)));
      all[first]();
      const calls = target.calls.length;
      expect(() => all[second]()).toThrow(FlushAlreadySettled);
      expect(target.calls.length).toBe(calls);
      expect(ledger.flushed + ledger.ignored).toBe(2);
    },
  );

  it('the default target (NO_INVALIDATION) accepts flushes and does nothing', () => {
    const mapper = new MappedPageTable(new PhysicalMemory(16 * 4096), fr(0, Size4KiB));
    expect(mapper.invalidation).toBe(NO_INVALIDATION);
    const flush = okOf(
      mapper.mapTo(
        CASES[0].page,
        CASES[0].frame,
        F(PRESENT),
        new BumpFrameAllocator(0x1000, 0x8000),
      ),
    );
    flush.flush();
    expect(flush.state).toBe('flushed');
  });
});

describe('FlushLedger', () => {
  it('detects a dropped flush: an obligation neither flushed nor ignored stays in pending()', () => {
    const { mapper, allocator, ledger } = setup();
    const settled = okOf(mapper.mapTo(CASES[0].page, CASES[0].frame, F(PRESENT), allocator));
    // The caller drops this one: it is neither flushed nor ignored.
    const dropped = okOf(mapper.mapTo(CASES[1].page, CASES[1].frame, F(PRESENT), allocator));
    settled.flush();
    expect(ledger.pendingCount).toBe(1);
    expect(ledger.pending()).toEqual([dropped]);
    expect(ledger.pending()[0]).toBe(dropped);
    expect((ledger.pending()[0] as MapperFlush<AnyPageSize>).page()).toBe(CASES[1].page);
    expect(dropped.state).toBe('pending');
  });

  it('counts created, flushed and ignored; pending() lists the rest oldest first', () => {
    const { mapper, allocator, ledger } = setup();
    const a = okOf(mapper.mapTo(CASES[0].page, CASES[0].frame, F(PRESENT), allocator));
    const b = okOf(mapper.mapTo(CASES[1].page, CASES[1].frame, F(PRESENT), allocator));
    const c = okOf(mapper.setFlagsP4Entry(CASES[0].page, F(PRESENT, NO_EXECUTE)));
    const d = okOf(mapper.mapTo(CASES[2].page, CASES[2].frame, F(PRESENT), allocator));
    expect(ledger.created).toBe(4);
    expect(ledger.pending()).toEqual([a, b, c, d]);
    c.flush();
    a.ignore();
    expect(ledger.pending()).toEqual([b, d]);
    expect(ledger.pending()[0]).toBe(b);
    expect([ledger.created, ledger.flushed, ledger.ignored, ledger.pendingCount]).toEqual([
      4, 1, 1, 2,
    ]);
    d.flush();
    b.flush();
    expect(ledger.pending()).toEqual([]);
    expect([ledger.created, ledger.flushed, ledger.ignored, ledger.pendingCount]).toEqual([
      4, 3, 1, 0,
    ]);
  });

  it('pending() returns a fresh array (mutating it does not settle anything)', () => {
    const { mapper, allocator, ledger } = setup();
    okOf(mapper.mapTo(CASES[0].page, CASES[0].frame, F(PRESENT), allocator));
    ledger.pending().length = 0;
    expect(ledger.pendingCount).toBe(1);
  });

  it('a ledger shared by two mappers (options.ledger) sees both, in creation order', () => {
    const ledger = new FlushLedger();
    const target = recorder();
    const m1 = new MappedPageTable(new PhysicalMemory(16 * 4096), fr(0, Size4KiB), {
      ledger,
      invalidation: target,
    });
    const m2 = new MappedPageTable(new PhysicalMemory(16 * 4096), fr(0, Size4KiB), { ledger });
    expect(m1.flushLedger).toBe(ledger);
    expect(m2.flushLedger).toBe(ledger);
    const x = okOf(
      m1.mapTo(CASES[0].page, CASES[0].frame, F(PRESENT), new BumpFrameAllocator(0x1000, 0x8000)),
    );
    const y = okOf(
      m2.mapTo(CASES[0].page, CASES[0].frame, F(PRESENT), new BumpFrameAllocator(0x1000, 0x8000)),
    );
    expect(ledger.pending()).toEqual([x, y]);
    y.flush();
    expect(target.calls).toEqual([]); // m2 has no target of its own
    x.flush();
    expect(target.calls).toEqual([{ kind: 'page', page: CASES[0].page }]);
    expect(ledger.flushed).toBe(2);
  });

  type Action =
    | { readonly type: 'create'; readonly all: boolean }
    | { readonly type: 'settle'; readonly pick: number; readonly how: 'flush' | 'ignore' };

  const action: fc.Arbitrary<Action> = fc.oneof(
    fc.record({ type: fc.constant('create' as const), all: fc.boolean() }),
    fc.record({
      type: fc.constant('settle' as const),
      pick: fc.nat(),
      how: fc.constantFrom('flush' as const, 'ignore' as const),
    }),
  );

  it('property: settled in any order, pending() is exactly the unsettled obligations, oldest first', () => {
    fc.assert(
      fc.property(fc.array(action, { maxLength: 60 }), (actions) => {
        const ledger = new FlushLedger();
        const target = recorder();
        const created: (MapperFlush<AnyPageSize> | MapperFlushAll)[] = [];
        const settled = new Set<number>();
        let flushed = 0;
        let ignored = 0;
        for (const a of actions) {
          if (a.type === 'create') {
            const page = Page.containingAddress(VirtAddr.new(created.length * 4096), Size4KiB);
            created.push(
              a.all
                ? new MapperFlushAll(target, ledger)
                : (new MapperFlush(page, target, ledger) as MapperFlush<AnyPageSize>),
            );
          } else if (created.length > 0) {
            const i = a.pick % created.length;
            const o = created[i]!;
            const callsBefore = target.calls.length;
            if (settled.has(i)) {
              // Settling twice is refused and changes nothing.
              expect(() => o[a.how]()).toThrow(FlushAlreadySettled);
              expect(target.calls.length).toBe(callsBefore);
            } else {
              o[a.how]();
              settled.add(i);
              if (a.how === 'flush') flushed++;
              else ignored++;
              expect(target.calls.length).toBe(callsBefore + (a.how === 'flush' ? 1 : 0));
            }
          }
          const expected = created.filter((_, i) => !settled.has(i));
          const pending = ledger.pending();
          expect(pending.length).toBe(expected.length);
          pending.forEach((o, i) => {
            expect(o).toBe(expected[i]);
            expect(o.state).toBe('pending');
          });
          expect(ledger.pendingCount).toBe(expected.length);
          expect([ledger.created, ledger.flushed, ledger.ignored]).toEqual([
            created.length,
            flushed,
            ignored,
          ]);
        }
      }),
      { numRuns: 300 },
    );
  });
});
