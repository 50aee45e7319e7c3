import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PhysAddr } from '../../src/addr.ts';
import { MemoryError, PhysicalMemory } from '../../src/memory/physical-memory.ts';
import { PageTableFlags } from '../../src/paging/flags.ts';
import { PhysFrame } from '../../src/paging/frame.ts';
import { Size4KiB } from '../../src/paging/page-size.ts';
import {
  entryAddr,
  entryHi,
  entryLo,
  PageTable,
  PageTableEntry,
} from '../../src/paging/page-table.ts';
import { PageTableIndex } from '../../src/paging/page-table-index.ts';
import { CratePanic } from '../../src/paging/panic.ts';

const U64_MAX = (1n << 64n) - 1n;
const ADDR_MASK = 0x000f_ffff_ffff_f000n;
const { PRESENT, WRITABLE, HUGE_PAGE, NO_EXECUTE, ACCESSED, DIRTY, BIT_52, BIT_9 } = PageTableFlags;
const F = PageTableFlags.of;
const ix = (i: number) => PageTableIndex.new(i);
const frameAt = (a: number) => PhysFrame.fromStartAddressUnchecked(PhysAddr.new(a), Size4KiB);

/** Any 4 KiB aligned physical address below 2^52. */
const entryAddress = fc
  .bigInt({ min: 0n, max: (1n << 40n) - 1n })
  .map((n) => PhysAddr.new(Number(n) * 4096));
const anyFlags = fc.integer({ min: 0, max: 0xffffff }).map((n) => n as PageTableFlags);
const anyU64 = fc.bigInt({ min: 0n, max: U64_MAX });

describe('PageTableEntry: unused vs non-present', () => {
  it('only the all-zero entry is unused', () => {
    expect(new PageTableEntry(0, 0).isUnused()).toBe(true);
    expect(PageTableEntry.fromBits(0n).isUnused()).toBe(true);
    expect(PageTableEntry.withAddr(PhysAddr.zero, PageTableFlags.empty).isUnused()).toBe(true);
  });

  it.each([
    ['WRITABLE only', 0x2n],
    ['address only', 0x1000n],
    ['NO_EXECUTE only (high half)', 1n << 63n],
    ['BIT_52 only', 1n << 52n],
    ['top address bit only', 1n << 51n],
  ])('a non-present non-zero entry (%s) is not unused', (_, bits) => {
    const e = PageTableEntry.fromBits(bits);
    expect(e.isUnused()).toBe(false);
    expect(e.frame()).toEqual({ ok: false, error: 'FrameNotPresent' });
  });
});

describe('PageTableEntry: address / flags split', () => {
  it('splits bits 12..51 from bits 0..11 and 52..63', () => {
    const bits = 0xfff0_0000_0000_0fffn | ADDR_MASK;
    const e = PageTableEntry.fromBits(bits);
    expect(e.addr()).toBe(2 ** 52 - 4096);
    expect(e.flags()).toBe(PageTableFlags.all);
    expect(e.bits()).toBe(bits);
    expect(e.lo).toBe(0xffff_ffff);
    expect(e.hi).toBe(0xffff_ffff);
  });

  it('a concrete mixed entry', () => {
    const e = PageTableEntry.fromBits(0x8010_0001_2345_6063n);
    expect(e.addr()).toBe(0x1_2345_6000);
    expect(e.flags()).toBe(F(NO_EXECUTE, BIT_52, PRESENT, WRITABLE, ACCESSED, DIRTY));
    expect(PageTableFlags.bits(e.flags())).toBe(0x8010_0000_0000_0063n);
    expect(e.lo).toBe(0x2345_6063);
    expect(e.hi).toBe(0x8010_0001);
  });

  it('fromBits takes the value modulo 2^64 and keeps both halves unsigned', () => {
    expect(PageTableEntry.fromBits(-1n).bits()).toBe(U64_MAX);
    expect(PageTableEntry.fromBits(1n << 64n).isUnused()).toBe(true);
    const e = PageTableEntry.fromBits(0x8000_0000_8000_0000n);
    expect(e.lo).toBe(0x8000_0000);
    expect(e.hi).toBe(0x8000_0000);
  });

  it('property: fromBits(x): bits() === x, addr() === x & mask, flags() === x & ~mask', () => {
    fc.assert(
      fc.property(anyU64, (x) => {
        const e = PageTableEntry.fromBits(x);
        expect(e.bits()).toBe(x);
        expect(BigInt(e.addr())).toBe(x & ADDR_MASK);
        expect(PageTableFlags.bits(e.flags())).toBe(x & ~ADDR_MASK);
        expect(e.isUnused()).toBe(x === 0n);
        expect(e.lo >= 0 && e.lo <= 0xffff_ffff && e.hi >= 0 && e.hi <= 0xffff_ffff).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });

  it('property: withAddr(addr, flags) gives back addr and flags; bits() === addr | bits(flags)', () => {
    fc.assert(
      fc.property(entryAddress, anyFlags, (addr, flags) => {
        const e = PageTableEntry.withAddr(addr, flags);
        expect(e.addr()).toBe(addr);
        expect(e.flags()).toBe(flags);
        expect(e.bits()).toBe(BigInt(addr) | PageTableFlags.bits(flags));
        expect(PageTableEntry.fromBits(e.bits())).toEqual(e);
      }),
      { numRuns: 3000 },
    );
  });

  it('withAddr panics on an address that is not 4 KiB aligned', () => {
    for (const a of [1, 0x800, 0x1008, 2 ** 52 - 1]) {
      expect(() => PageTableEntry.withAddr(PhysAddr.new(a), PRESENT), a.toString(16)).toThrow(
        CratePanic,
      );
    }
  });

  it('entryAddr / entryLo / entryHi helpers', () => {
    expect(entryAddr(0x2345_6063, 0x8010_0001)).toBe(0x1_2345_6000);
    expect(entryAddr(0xffff_ffff, 0xffff_ffff)).toBe(2 ** 52 - 4096);
    const flags = F(PRESENT, NO_EXECUTE, BIT_9);
    expect(entryLo(0xf_ffff_f000, flags)).toBe(0xffff_f201);
    expect(entryHi(0xf_ffff_f000, flags)).toBe(0x8000_000f);
    expect(entryLo(2 ** 52 - 4096, PageTableFlags.all)).toBe(0xffff_ffff);
    expect(entryHi(2 ** 52 - 4096, PageTableFlags.all)).toBe(0xffff_ffff);
  });
});

describe('PageTableEntry.frame', () => {
  it('returns the 4 KiB frame of a present, non-huge entry', () => {
    const e = PageTableEntry.withAddr(PhysAddr.new(0xabc_d000), F(PRESENT, WRITABLE, NO_EXECUTE));
    const r = e.frame();
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.startAddress).toBe(0xabc_d000);
    expect(r.value.size).toBe(Size4KiB);
  });

  it('a present entry with address 0 still has a frame', () => {
    const r = PageTableEntry.withAddr(PhysAddr.zero, PRESENT).frame();
    expect(r.ok && r.value.startAddress).toBe(0);
  });

  it('HugeFrame when PRESENT and HUGE_PAGE', () => {
    const e = PageTableEntry.withAddr(PhysAddr.new(0x20_0000), F(PRESENT, HUGE_PAGE));
    expect(e.frame()).toEqual({ ok: false, error: 'HugeFrame' });
  });

  it('FrameNotPresent is checked before HugeFrame', () => {
    const e = PageTableEntry.withAddr(PhysAddr.new(0x20_0000), F(HUGE_PAGE, WRITABLE));
    expect(e.frame()).toEqual({ ok: false, error: 'FrameNotPresent' });
  });

  it('property: frame() follows PRESENT then HUGE_PAGE', () => {
    fc.assert(
      fc.property(anyU64, (x) => {
        const r = PageTableEntry.fromBits(x).frame();
        if ((x & 1n) === 0n) expect(r).toEqual({ ok: false, error: 'FrameNotPresent' });
        else if ((x & 0x80n) !== 0n) expect(r).toEqual({ ok: false, error: 'HugeFrame' });
        else expect(r.ok && BigInt(r.value.startAddress)).toBe(x & ADDR_MASK);
      }),
      { numRuns: 2000 },
    );
  });

  it('toString names unused entries and shows address and flags otherwise', () => {
    expect(new PageTableEntry(0, 0).toString()).toBe('0x0 (unused)');
    expect(PageTableEntry.withAddr(PhysAddr.new(0x5000), F(PRESENT, WRITABLE)).toString()).toBe(
      '0x5003 (0x5000 PRESENT | WRITABLE)',
    );
    expect(PageTableEntry.fromBits(0x2000n).toString()).toBe('0x2000 (0x2000 (empty))');
  });
});

describe('PageTable view on PhysicalMemory', () => {
  const setup = () => {
    const memory = new PhysicalMemory(4 * 4096);
    return { memory, table: new PageTable(memory, frameAt(0x1000)) };
  };

  it('starts empty over zeroed RAM', () => {
    const { table } = setup();
    expect(table.isEmpty()).toBe(true);
    for (const i of [0, 1, 255, 256, 511]) expect(table.entry(ix(i)).isUnused()).toBe(true);
    expect([...table.usedEntries()]).toEqual([]);
  });

  it('entryAddress is frame start + 8 * index', () => {
    const { table } = setup();
    expect(table.entryAddress(ix(0))).toBe(0x1000);
    expect(table.entryAddress(ix(5))).toBe(0x1028);
    expect(table.entryAddress(ix(511))).toBe(0x1ff8);
  });

  it('setEntry writes the 64-bit entry little-endian at its address; entry reads it back', () => {
    const { memory, table } = setup();
    const e = PageTableEntry.withAddr(
      PhysAddr.new(0xf_ffff_f000),
      F(PRESENT, WRITABLE, NO_EXECUTE, BIT_52),
    );
    table.setEntry(ix(5), e);
    expect(memory.read64(0x1028)).toBe(e.bits());
    expect(memory.read(0x1028, 4)).toBe(e.lo);
    expect(memory.read(0x102c, 4)).toBe(e.hi);
    expect(table.entry(ix(5))).toEqual(e);
    expect(table.entry(ix(5)).bits()).toBe(0x8010_000f_ffff_f003n);
    expect(table.entry(ix(4)).isUnused()).toBe(true);
    expect(table.entry(ix(6)).isUnused()).toBe(true);
    expect(table.isEmpty()).toBe(false);
    expect([...table.usedEntries()]).toEqual([[5, e]]);
  });

  it('entry sees writes made directly to RAM', () => {
    const { memory, table } = setup();
    memory.write64(0x1ff8, 0xffff_ffff_ffff_ffffn);
    const e = table.entry(ix(511));
    expect(e.bits()).toBe(U64_MAX);
    expect(e.lo).toBe(0xffff_ffff);
    expect(e.hi).toBe(0xffff_ffff);
  });

  it('isEmpty notices an entry whose only set bit is in the high half', () => {
    const { table } = setup();
    table.setEntry(ix(300), PageTableEntry.fromBits(1n << 63n));
    expect(table.isEmpty()).toBe(false);
    expect([...table.usedEntries()].map(([i]) => i)).toEqual([300]);
  });

  it('setEntry with an unused entry clears it', () => {
    const { table } = setup();
    table.setEntry(ix(7), PageTableEntry.fromBits(0x1003n));
    table.setEntry(ix(7), new PageTableEntry(0, 0));
    expect(table.isEmpty()).toBe(true);
  });

  it('usedEntries lists used entries in index order', () => {
    const { table } = setup();
    const a = PageTableEntry.fromBits(0x3003n);
    const b = PageTableEntry.fromBits(0x2n);
    const c = PageTableEntry.fromBits(0x8000_0000_0000_0000n);
    table.setEntry(ix(511), c);
    table.setEntry(ix(0), a);
    table.setEntry(ix(100), b);
    expect([...table.usedEntries()]).toEqual([
      [0, a],
      [100, b],
      [511, c],
    ]);
  });

  it('zero clears all 512 entries and nothing outside the frame', () => {
    const { memory, table } = setup();
    memory.write64(0x0ff8, 0x1111n);
    memory.write64(0x2000, 0x2222n);
    for (let i = 0; i < 512; i++)
      table.setEntry(ix(i), PageTableEntry.fromBits(BigInt(i + 1) * 0x1001n));
    expect(table.isEmpty()).toBe(false);
    table.zero();
    expect(table.isEmpty()).toBe(true);
    expect(memory.read64(0x0ff8)).toBe(0x1111n);
    expect(memory.read64(0x2000)).toBe(0x2222n);
  });

  it('two tables in different frames are independent; two views of one frame agree', () => {
    const { memory, table } = setup();
    const other = new PageTable(memory, frameAt(0x2000));
    const same = new PageTable(memory, frameAt(0x1000));
    table.setEntry(ix(3), PageTableEntry.fromBits(0x5003n));
    expect(other.isEmpty()).toBe(true);
    expect(same.entry(ix(3)).bits()).toBe(0x5003n);
    other.zero();
    expect(table.entry(ix(3)).bits()).toBe(0x5003n);
  });

  it('works for a table in the last frame of RAM', () => {
    const { memory } = setup();
    const last = new PageTable(memory, frameAt(0x3000));
    last.setEntry(ix(511), PageTableEntry.fromBits(0x7003n));
    expect(memory.read64(0x3ff8)).toBe(0x7003n);
    expect(last.entry(ix(511)).bits()).toBe(0x7003n);
    last.zero();
    expect(last.isEmpty()).toBe(true);
  });

  it('a table whose frame lies outside RAM throws MemoryError OutOfRange', () => {
    const { memory } = setup();
    const outside = new PageTable(memory, frameAt(0x4000));
    const expectOutOfRange = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        expect(e).toBeInstanceOf(MemoryError);
        expect((e as MemoryError).kind).toBe('OutOfRange');
        return;
      }
      throw new Error('expected a MemoryError');
    };
    expectOutOfRange(() => outside.entry(ix(0)));
    expectOutOfRange(() => outside.setEntry(ix(0), PageTableEntry.fromBits(1n)));
    expectOutOfRange(() => outside.zero());
    expectOutOfRange(() => outside.isEmpty());
  });

  it('property: setEntry/entry round-trip any 64-bit entry at any index', () => {
    const { table } = setup();
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 511 }), anyU64, (i, x) => {
        const e = PageTableEntry.fromBits(x);
        table.setEntry(ix(i), e);
        expect(table.entry(ix(i)).bits()).toBe(x);
        expect(table.entry(ix(i))).toEqual(e);
        table.setEntry(ix(i), new PageTableEntry(0, 0));
      }),
      { numRuns: 1000 },
    );
    expect(table.isEmpty()).toBe(true);
  });
});
