import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PhysAddr, VirtAddr } from '../../src/addr.ts';
import {
  type InvpcidType,
  MAX_PCID,
  TLB_DIRTY,
  TLB_FILL_ATTR_MASK,
  TLB_GLOBAL,
  TLB_NX,
  TLB_SIZE_CLASS_MASK,
  TLB_SIZE_CLASS_SHIFT,
  TLB_USER,
  TLB_VALID,
  TLB_WRITABLE,
  Tlb,
  TlbConfigError,
  TlbInvariantViolation,
  type TlbSizeShift,
  tlbAttrOf,
} from '../../src/cpu/tlb.ts';
import { PageTableFlags } from '../../src/paging/flags.ts';

const KiB4 = 2 ** 12;
const MiB2 = 2 ** 21;
const GiB1 = 2 ** 30;

const va = (x: bigint | number) => VirtAddr.new(x);
const pa = (x: number) => PhysAddr.new(x);
/** An address already in the stored 48-bit form (arithmetic on higher-half addresses). */
const stored = (low48: number) => VirtAddr.newUnchecked(low48);

/** A 64-entry, 4-way TLB (16 sets): page `set + 16 * k` of 4 KiB lands in `set`. */
const tlb64 = () => new Tlb({ entries: 64, ways: 4 });
/** The 4 KiB page that is the `k`-th page of set `set` in a 16-set TLB. */
const pageInSet = (set: number, k: number) => va((set + 16 * k) * KiB4);

function fill4k(t: Tlb, page: VirtAddr, frame: number, pcid = 0, attr = 0): number {
  return t.fill(page, 12, pa(frame), pcid, attr);
}

/** Collects the evicted slots' page starts and PCIDs through the hook. */
function recorder(t: Tlb) {
  const seen: { pageStart: number; pcid: number; frame: number }[] = [];
  const hook = (slot: number) => {
    expect(t.isValid(slot)).toBe(true); // called before the slot is cleared
    seen.push({ pageStart: t.pageStartOf(slot), pcid: t.pcidOf(slot), frame: t.frameOf(slot) });
  };
  return { seen, hook };
}

describe('Tlb geometry', () => {
  it('accepts power-of-two set counts, including direct-mapped and fully associative', () => {
    for (const [entries, ways] of [
      [64, 4],
      [64, 64],
      [64, 1],
      [1, 1],
      [12, 3],
    ] as const) {
      const t = new Tlb({ entries, ways });
      expect(t.capacity).toBe(entries);
      expect(t.ways).toBe(ways);
      expect(t.sets).toBe(entries / ways);
      expect(t.validCount()).toBe(0);
      t.checkInvariants();
    }
  });

  it('rejects impossible geometries with TlbConfigError naming the values and the rule', () => {
    const cases: [number, number, RegExp][] = [
      [48, 4, /entries: 48, ways: 4.*12 must be a power of two/],
      [64, 0, /ways: 0.*ways must be an integer ≥ 1/],
      [64, 1.5, /ways must be an integer/],
      [0, 1, /entries: 0.*entries must be an integer ≥ 1/],
      [10, 4, /multiple of ways/],
      [2 ** 25, 1, /at most/],
    ];
    for (const [entries, ways, message] of cases) {
      let error: unknown;
      try {
        new Tlb({ entries, ways });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(TlbConfigError);
      expect((error as TlbConfigError).message).toMatch(message);
      expect((error as TlbConfigError).entries).toBe(entries);
      expect((error as TlbConfigError).ways).toBe(ways);
    }
  });
});

describe('Tlb lookup', () => {
  it('hits a filled 4 KiB page for every byte in it and reports its fields', () => {
    const t = tlb64();
    const slot = fill4k(t, va(0x40_0000), 0x9000, 3, TLB_WRITABLE | TLB_USER | TLB_NX);
    for (const addr of [0x40_0000, 0x40_0123, 0x40_0fff]) {
      expect(t.lookup(va(addr), 3)).toBe(slot);
    }
    expect(t.frameOf(slot)).toBe(0x9000);
    expect(t.physAddrOf(slot, va(0x40_0123))).toBe(0x9123);
    expect(t.pageStartOf(slot)).toBe(0x40_0000);
    expect(t.sizeShiftOf(slot)).toBe(12);
    expect(t.pcidOf(slot)).toBe(3);
    expect(t.attrOf(slot)).toBe(TLB_VALID | TLB_WRITABLE | TLB_USER | TLB_NX);
    expect(t.validCount()).toBe(1);
    t.checkInvariants();
  });

  it('misses on an empty TLB, on neighbouring pages and on an unknown PCID', () => {
    const t = tlb64();
    expect(t.lookup(va(0x40_0000), 0)).toBe(-1);
    fill4k(t, va(0x40_0000), 0x9000);
    expect(t.lookup(va(0x3f_ffff), 0)).toBe(-1);
    expect(t.lookup(va(0x40_1000), 0)).toBe(-1);
    expect(t.lookup(va(0x40_0000), 1)).toBe(-1);
    // Same low 32 bits, different high half: the split-halves arithmetic must keep them apart.
    expect(t.lookup(va(0x1_0040_0000), 0)).toBe(-1);
  });

  it('peek finds the same slot as lookup without counting as a use', () => {
    const t = new Tlb({ entries: 2, ways: 2 });
    const a = fill4k(t, va(0x1000), 0x1000);
    fill4k(t, va(0x2000), 0x2000);
    expect(t.peek(va(0x1000), 0)).toBe(a);
    fill4k(t, va(0x3000), 0x3000); // page 0x1000 is still the LRU one: peek did not touch it
    expect(t.peek(va(0x1000), 0)).toBe(-1);
  });

  it('indexes sets with address bits from both 32-bit halves when there are enough sets', () => {
    // 2^21 direct-mapped sets: the 4 KiB set index reaches address bit 32, the 2 MiB one bit 41
    // and the 1 GiB one bit 50 (beyond 48, so all 18 page-number bits), all above the low half.
    const t = new Tlb({ entries: 2 ** 21, ways: 1 });
    const cases: [bigint, TlbSizeShift][] = [
      [0x1_2345_6000n, 12],
      [0xffff_ffff_ffff_f000n, 12],
      [0x3ff_ffe0_0000n, 21],
      [0xffff_fedc_ba20_0000n, 21],
      [0x7fff_c000_0000n, 30],
      [0xffff_9234_4000_0000n, 30],
    ];
    for (const [addr, shift] of cases) {
      const page = va(addr);
      const slot = t.fill(page, shift, pa(0), 0, 0);
      const expected = Number((BigInt(page) >> BigInt(shift)) & BigInt(t.sets - 1));
      expect(slot).toBe(expected);
      expect(t.lookup(page, 0)).toBe(slot);
      expect(t.lookup(stored(page + 2 ** shift - 1), 0)).toBe(slot);
    }
    t.checkInvariants();
  });

  it('handles higher-half addresses (stored as their low 48 bits)', () => {
    const t = tlb64();
    const page = va(0xffff_ffff_8000_1000n);
    const slot = fill4k(t, page, 0x7000, 0, TLB_GLOBAL);
    expect(t.lookup(va(0xffff_ffff_8000_1abcn), 5)).toBe(slot);
    expect(t.physAddrOf(slot, va(0xffff_ffff_8000_1abcn))).toBe(0x7abc);
    expect(t.lookup(va(0x7fff_8000_1000), 5)).toBe(-1);
  });
});

describe('Tlb replacement', () => {
  it('evicts the least recently used way of a full set, lookups counting as uses', () => {
    const t = tlb64();
    const [a, b, c, d, e, f] = [0, 1, 2, 3, 4, 5].map((k) => pageInSet(7, k));
    for (const [i, p] of [a, b, c, d].entries()) fill4k(t, p, (i + 1) * KiB4);
    expect(t.lastFillEvicted).toBe(false);
    // Fill order a b c d; touching a then b leaves c as the least recently used.
    expect(t.lookup(a, 0)).toBeGreaterThanOrEqual(0);
    expect(t.lookup(b, 0)).toBeGreaterThanOrEqual(0);
    const slotC = t.peek(c, 0);
    expect(fill4k(t, e, 0x5000)).toBe(slotC);
    expect(t.lastFillEvicted).toBe(true);
    expect(t.lastFillRefreshed).toBe(false);
    expect(t.lastFillEvictions).toBe(1);
    expect(t.lastEvictedPageStart).toBe(c);
    expect(t.lastEvictedFrame).toBe(3 * KiB4);
    expect(t.lookup(c, 0)).toBe(-1);
    for (const p of [a, b, d, e]) expect(t.peek(p, 0)).toBeGreaterThanOrEqual(0);
    // d is now the oldest use (a and b were looked up, e was just filled).
    fill4k(t, f, 0x6000);
    expect(t.lastEvictedPageStart).toBe(d);
    expect(t.validCount()).toBe(4);
    t.checkInvariants();
  });

  it('never evicts from another set', () => {
    const t = tlb64();
    const home = [0, 1, 2, 3].map((k) => pageInSet(2, k));
    for (const p of home) fill4k(t, p, 0x1000);
    for (let k = 0; k < 40; k++) fill4k(t, pageInSet(3, k), 0x2000);
    for (const p of home) expect(t.peek(p, 0)).toBeGreaterThanOrEqual(0);
    const bySet = t.entries().map((e) => e.set);
    expect(bySet.filter((s) => s === 2)).toHaveLength(4);
    expect(bySet.filter((s) => s === 3)).toHaveLength(4);
    expect(t.validCount()).toBe(8);
  });

  it('refills the same page and PCID in place, reporting a refresh', () => {
    const t = tlb64();
    const page = va(0x40_0000);
    const slot = fill4k(t, page, 0x9000, 1, 0);
    expect(fill4k(t, page, 0xa000, 1, TLB_DIRTY | TLB_WRITABLE)).toBe(slot);
    expect(t.validCount()).toBe(1);
    expect(t.lastFillEvicted).toBe(true);
    expect(t.lastFillRefreshed).toBe(true);
    expect(t.lastEvictedFrame).toBe(0x9000);
    expect(t.lastEvictedPcid).toBe(1);
    expect(t.lastEvictedAttr).toBe(TLB_VALID);
    expect(t.frameOf(slot)).toBe(0xa000);
    expect(t.attrOf(slot) & TLB_DIRTY).toBe(TLB_DIRTY);
  });

  it('a refill under another PCID of a page cached GLOBAL replaces the global entry', () => {
    // Otherwise a write that re-walks to set DIRTY would keep hitting the old clean global entry.
    const t = tlb64();
    const page = va(0x40_0000);
    const slot = fill4k(t, page, 0x9000, 1, TLB_GLOBAL);
    const { seen, hook } = recorder(t);
    expect(t.fill(page, 12, pa(0x9000), 2, TLB_GLOBAL | TLB_DIRTY, hook)).toBe(slot);
    expect(t.lastFillRefreshed).toBe(true);
    expect(seen).toEqual([{ pageStart: 0x40_0000, pcid: 1, frame: 0x9000 }]);
    expect(t.validCount()).toBe(1);
  });

  it('a GLOBAL fill also evicts non-global copies of the page under other PCIDs', () => {
    const t = tlb64();
    const page = va(0x40_0000);
    fill4k(t, page, 0x1000, 1);
    fill4k(t, page, 0x2000, 2);
    fill4k(t, pageInSet(0, 3), 0x3000, 1);
    const { seen, hook } = recorder(t);
    t.fill(page, 12, pa(0x4000), 3, TLB_GLOBAL, hook);
    expect(t.lastFillEvictions).toBe(2);
    expect(seen.map((e) => e.pcid).sort()).toEqual([1, 2]);
    expect(t.validCount()).toBe(2);
    for (const pcid of [0, 1, 2, 3]) expect(t.frameOf(t.lookup(page, pcid))).toBe(0x4000);
    t.checkInvariants();
  });

  it('setDirty marks the entry dirty and refuses an empty slot', () => {
    const t = tlb64();
    const slot = fill4k(t, va(0x5000), 0x5000, 0, TLB_WRITABLE);
    t.setDirty(slot);
    expect(t.attrOf(slot)).toBe(TLB_VALID | TLB_WRITABLE | TLB_DIRTY);
    expect(t.entries()[0]!.dirty).toBe(true);
    expect(() => t.setDirty((slot + 1) % t.capacity)).toThrow(RangeError);
  });

  it('fill rejects misaligned pages and frames, bad sizes, PCIDs and attribute bits', () => {
    const t = tlb64();
    expect(() => t.fill(va(0x1234), 12, pa(0), 0, 0)).toThrow(/page start/);
    expect(() => t.fill(va(0x1000), 21, pa(0), 0, 0)).toThrow(/2\^21-aligned/);
    expect(() => t.fill(va(0x20_0000), 21, pa(0x1000), 0, 0)).toThrow(/frame/);
    expect(() => t.fill(va(0x1000), 13 as TlbSizeShift, pa(0), 0, 0)).toThrow(/size shift 13/);
    expect(() => t.fill(va(0x1000), 12, pa(0), MAX_PCID + 1, 0)).toThrow(/PCID 4096/);
    expect(() => t.fill(va(0x1000), 12, pa(0), 0, TLB_VALID)).toThrow(/attribute bits/);
    expect(t.validCount()).toBe(0);
  });
});

describe('Tlb huge pages', () => {
  it('a 2 MiB entry hits for every address inside it and invlpg on any of them evicts it', () => {
    const t = tlb64();
    const start = 5 * MiB2;
    for (const inner of [0, 0x1000, 0x12_3456, MiB2 - 1]) {
      const slot = t.fill(va(start), 21, pa(3 * MiB2), 0, TLB_WRITABLE);
      expect(t.sizeShiftOf(slot)).toBe(21);
      expect(t.pageStartOf(slot)).toBe(start);
      for (const probe of [0, 0xfff, 0x10_0000, MiB2 - 1]) {
        expect(t.lookup(va(start + probe), 0)).toBe(slot);
      }
      expect(t.physAddrOf(slot, va(start + 0x12_3456))).toBe(3 * MiB2 + 0x12_3456);
      expect(t.lookup(va(start - 1), 0)).toBe(-1);
      expect(t.lookup(va(start + MiB2), 0)).toBe(-1);
      expect(t.invlpg(va(start + inner), 0)).toBe(1);
      expect(t.lookup(va(start), 0)).toBe(-1);
      t.checkInvariants();
    }
  });

  it('a 1 GiB entry hits for every address inside it and invlpg on any of them evicts it', () => {
    const t = tlb64();
    // The top 1 GiB of the higher half: the page start is above 2^32 in both halves' arithmetic.
    const start = va(0xffff_ffff_c000_0000n);
    for (const inner of [0, 0x1000, 0x2345_6789, GiB1 - 1]) {
      const slot = t.fill(start, 30, pa(7 * GiB1), 0, TLB_GLOBAL);
      expect(t.sizeShiftOf(slot)).toBe(30);
      for (const probe of [0, 0x20_0000, 0x3fff_ffff]) {
        expect(t.lookup(stored(start + probe), 9)).toBe(slot);
      }
      expect(t.physAddrOf(slot, stored(start + 0x2345_6789))).toBe(7 * GiB1 + 0x2345_6789);
      expect(t.lookup(stored(start - 1), 9)).toBe(-1);
      expect(t.invlpg(stored(start + inner), 9)).toBe(1);
      expect(t.validCount()).toBe(0);
    }
  });

  it('prefers a 4 KiB entry over a 2 MiB and a 1 GiB entry covering the same address', () => {
    const t = tlb64();
    const slot1g = t.fill(va(0), 30, pa(GiB1), 0, 0);
    const slot2m = t.fill(va(0), 21, pa(MiB2), 0, 0);
    const slot4k = t.fill(va(0), 12, pa(KiB4), 0, 0);
    expect(t.lookup(va(0x10), 0)).toBe(slot4k);
    expect(t.lookup(va(0x1010), 0)).toBe(slot2m);
    expect(t.lookup(va(MiB2 + 0x10), 0)).toBe(slot1g);
    // invlpg evicts every size that translates the address.
    const { seen, hook } = recorder(t);
    expect(t.invlpg(va(0x10), 0, hook)).toBe(3);
    expect(seen.map((e) => e.frame).sort((x, y) => x - y)).toEqual([KiB4, MiB2, GiB1]);
    t.checkInvariants();
  });

  it('reports the size class in the attribute word', () => {
    const t = tlb64();
    const s = t.fill(va(GiB1), 30, pa(0), 0, 0);
    expect((t.attrOf(s) & TLB_SIZE_CLASS_MASK) >> TLB_SIZE_CLASS_SHIFT).toBe(2);
  });
});

describe('Tlb PCIDs and GLOBAL', () => {
  it('caches the same page under two PCIDs and selects by PCID', () => {
    const t = tlb64();
    const page = va(0x7000);
    const s1 = fill4k(t, page, 0x1000, 1);
    const s2 = fill4k(t, page, 0x2000, 2);
    expect(s1).not.toBe(s2);
    expect(t.validCount()).toBe(2);
    expect(t.frameOf(t.lookup(page, 1))).toBe(0x1000);
    expect(t.frameOf(t.lookup(page, 2))).toBe(0x2000);
    expect(t.lookup(page, 3)).toBe(-1);
  });

  it('a GLOBAL entry hits under any PCID', () => {
    const t = tlb64();
    const slot = fill4k(t, va(0x7000), 0x1000, 1, TLB_GLOBAL);
    for (const pcid of [0, 1, 2, MAX_PCID]) expect(t.lookup(va(0x7abc), pcid)).toBe(slot);
  });

  it('a CR3 write keeps GLOBAL entries and, with a PCID, evicts only that PCID', () => {
    const t = tlb64();
    fill4k(t, va(0x1000), 0x1000, 1, TLB_GLOBAL);
    fill4k(t, va(0x2000), 0x2000, 1);
    fill4k(t, va(0x3000), 0x3000, 2);
    t.fill(va(MiB2), 21, pa(MiB2), 1, 0);
    const { seen, hook } = recorder(t);
    expect(t.flushNonGlobal(1, hook)).toBe(2);
    expect(seen.map((e) => e.pageStart).sort((a, b) => a - b)).toEqual([0x2000, MiB2]);
    expect(t.lookup(va(0x1000), 1)).toBeGreaterThanOrEqual(0);
    expect(t.lookup(va(0x3000), 2)).toBeGreaterThanOrEqual(0);
    // PCIDE off: every PCID's non-global entries go, GLOBAL still survives.
    expect(t.flushNonGlobal()).toBe(1);
    expect(t.lookup(va(0x3000), 2)).toBe(-1);
    expect(t.lookup(va(0x1000), 7)).toBeGreaterThanOrEqual(0);
    expect(t.flushNonGlobal()).toBe(0);
    t.checkInvariants();
  });

  it("invlpg evicts the GLOBAL entry and this PCID's entry, never another page or PCID", () => {
    const t = tlb64();
    fill4k(t, va(0x1000), 0x1000, 1, TLB_GLOBAL);
    fill4k(t, va(0x1000), 0x2000, 2); // a non-global copy for PCID 2 would conflict with GLOBAL
    fill4k(t, va(0x2000), 0x3000, 2);
    fill4k(t, va(0x2000), 0x4000, 3);
    expect(t.validCount()).toBe(3); // the PCID-2 fill replaced the global entry of 0x1000
    fill4k(t, va(0x5000), 0x5000, 1, TLB_GLOBAL);
    expect(t.invlpg(va(0x5abc), 2)).toBe(1); // GLOBAL, filled under PCID 1, evicted from PCID 2
    expect(t.invlpg(va(0x2000), 2)).toBe(1);
    expect(t.lookup(va(0x2000), 3)).toBeGreaterThanOrEqual(0);
    expect(t.lookup(va(0x1000), 2)).toBeGreaterThanOrEqual(0);
    expect(t.invlpg(va(0x9000), 2)).toBe(0);
  });

  it('flushAll evicts everything, GLOBAL and huge entries included', () => {
    const t = tlb64();
    fill4k(t, va(0x1000), 0x1000, 1, TLB_GLOBAL);
    fill4k(t, va(0x2000), 0x2000, 2);
    t.fill(va(GiB1), 30, pa(GiB1), 3, TLB_GLOBAL);
    expect(t.flushAll()).toBe(3);
    expect(t.validCount()).toBe(0);
    expect(t.lookup(va(0x1000), 1)).toBe(-1);
    expect(t.lookup(va(GiB1), 3)).toBe(-1);
    t.checkInvariants();
    // With a hook, every victim is reported before it goes.
    fill4k(t, va(0x1000), 0x1000, 1, TLB_GLOBAL);
    fill4k(t, va(0x2000), 0x2000, 2);
    const { seen, hook } = recorder(t);
    expect(t.flushAll(hook)).toBe(2);
    expect(seen).toHaveLength(2);
    t.checkInvariants();
  });
});

describe('Tlb INVPCID', () => {
  /** Global G (PCID 1) and non-global A1, B1 (PCID 1), A2 (PCID 2) and a 2 MiB H1 (PCID 1). */
  function populated() {
    const t = tlb64();
    fill4k(t, va(0x1000), 0x1000, 1, TLB_GLOBAL); // G
    fill4k(t, va(0x2000), 0x2000, 1); // A1
    fill4k(t, va(0x3000), 0x3000, 1); // B1
    fill4k(t, va(0x2000), 0x4000, 2); // A2
    t.fill(va(4 * MiB2), 21, pa(MiB2), 1, 0); // H1
    return t;
  }
  const cached = (t: Tlb) =>
    t
      .entries()
      .map((e) => `${e.pageStart.toString(16)}/${e.pcid}`)
      .sort();

  it('type 0 evicts one address of one PCID, any size, but not GLOBAL entries', () => {
    const t = populated();
    expect(t.invpcid(0, 1, va(0x2abc))).toBe(1);
    expect(cached(t)).toEqual(['1000/1', '2000/2', '3000/1', '800000/1']);
    expect(t.invpcid(0, 1, va(0x1000))).toBe(0); // global survives
    expect(t.invpcid(0, 1, va(4 * MiB2 + 0x1234))).toBe(1);
    expect(cached(t)).toEqual(['1000/1', '2000/2', '3000/1']);
  });

  it('type 1 evicts every non-global entry of one PCID', () => {
    const t = populated();
    expect(t.invpcid(1, 1, VirtAddr.zero)).toBe(3);
    expect(cached(t)).toEqual(['1000/1', '2000/2']);
  });

  it('type 2 evicts everything, GLOBAL included, in every PCID', () => {
    const t = populated();
    expect(t.invpcid(2, 0, VirtAddr.zero)).toBe(5);
    expect(t.validCount()).toBe(0);
  });

  it('type 3 evicts every non-global entry of every PCID', () => {
    const t = populated();
    const { seen, hook } = recorder(t);
    expect(t.invpcid(3, 0, VirtAddr.zero, hook)).toBe(4);
    expect(seen).toHaveLength(4);
    expect(cached(t)).toEqual(['1000/1']);
  });

  it('another type is refused like the #GP(0) hardware raises', () => {
    expect(() => tlb64().invpcid(4 as InvpcidType, 0, VirtAddr.zero)).toThrow(/#GP/);
  });
});

describe('Tlb attributes and invariants', () => {
  it('tlbAttrOf maps page-table flags to TLB attribute bits', () => {
    const F = PageTableFlags;
    expect(tlbAttrOf(F.of(F.PRESENT, F.ACCESSED))).toBe(0);
    expect(
      tlbAttrOf(F.of(F.PRESENT, F.WRITABLE, F.USER_ACCESSIBLE, F.GLOBAL, F.DIRTY, F.NO_EXECUTE)),
    ).toBe(TLB_FILL_ATTR_MASK);
    expect(tlbAttrOf(F.NO_EXECUTE)).toBe(TLB_NX);
  });

  it('entries() describes each valid entry', () => {
    const t = tlb64();
    t.fill(va(0xffff_ffff_ffe0_0000n), 21, pa(2 ** 52 - MiB2), 7, TLB_USER | TLB_GLOBAL);
    expect(t.entries()).toEqual([
      expect.objectContaining({
        set: 15, // 2 MiB page number 0x7ffffff: low four bits set
        pageStart: 0xffff_ffe0_0000,
        sizeShift: 21,
        frame: 2 ** 52 - MiB2,
        pcid: 7,
        global: true,
        writable: false,
        user: true,
        nx: false,
        dirty: false,
      }),
    ]);
  });

  it('checkInvariants catches a corrupted entry', () => {
    const t = tlb64();
    const slot = fill4k(t, va(0x1000), 0x1000);
    const arrays = t as unknown as { tags: Float64Array; attrs: Int32Array };
    arrays.tags[slot] += 4096; // now in the wrong set
    expect(() => t.checkInvariants()).toThrow(TlbInvariantViolation);
    arrays.tags[slot] -= 4096;
    t.checkInvariants();
    arrays.attrs[slot] |= 3 << TLB_SIZE_CLASS_SHIFT;
    expect(() => t.checkInvariants()).toThrow(/size class 3/);
  });
});

// ---------------------------------------------------------------- model-based property

interface ModelEntry {
  pageStart: number;
  shift: TlbSizeShift;
  frame: number;
  pcid: number;
  attr: number;
  use: number;
}

/** The reference: per-set lists with explicit use stamps, every rule written the obvious way. */
class Model {
  readonly sets: ModelEntry[][];
  private clock = 0;
  constructor(
    readonly nsets: number,
    readonly ways: number,
  ) {
    this.sets = Array.from({ length: nsets }, () => []);
  }

  static setOf(pageStart: number, shift: number, nsets: number): number {
    return Number((BigInt(pageStart) >> BigInt(shift)) & BigInt(nsets - 1));
  }

  private static align(addr: number, shift: number): number {
    return Number((BigInt(addr) >> BigInt(shift)) << BigInt(shift));
  }

  private static global(e: ModelEntry): boolean {
    return (e.attr & TLB_GLOBAL) !== 0;
  }

  private answers(e: ModelEntry, addr: number, pcid: number): boolean {
    return e.pageStart === Model.align(addr, e.shift) && (Model.global(e) || e.pcid === pcid);
  }

  lookup(addr: number, pcid: number): ModelEntry | undefined {
    for (const shift of [12, 21, 30] as const) {
      const set = this.sets[Model.setOf(Model.align(addr, shift), shift, this.nsets)]!;
      const hits = set.filter((e) => e.shift === shift && this.answers(e, addr, pcid));
      expect(hits.length).toBeLessThanOrEqual(1);
      if (hits[0]) {
        hits[0].use = ++this.clock;
        return hits[0];
      }
    }
    return undefined;
  }

  fill(pageStart: number, shift: TlbSizeShift, frame: number, pcid: number, attr: number) {
    const index = Model.setOf(pageStart, shift, this.nsets);
    const set = this.sets[index]!;
    const global = (attr & TLB_GLOBAL) !== 0;
    const conflict = (e: ModelEntry) =>
      e.pageStart === pageStart &&
      e.shift === shift &&
      (global || Model.global(e) || e.pcid === pcid);
    let removed = set.filter(conflict);
    let kept = set.filter((e) => !conflict(e));
    if (removed.length === 0 && kept.length === this.ways) {
      const oldest = kept.reduce((a, b) => (b.use < a.use ? b : a));
      removed = [oldest];
      kept = kept.filter((e) => e !== oldest);
    }
    kept.push({ pageStart, shift, frame, pcid, attr, use: ++this.clock });
    this.sets[index] = kept;
    return removed;
  }

  private removeWhere(pred: (e: ModelEntry) => boolean): ModelEntry[] {
    const removed: ModelEntry[] = [];
    for (let i = 0; i < this.sets.length; i++) {
      removed.push(...this.sets[i]!.filter(pred));
      this.sets[i] = this.sets[i]!.filter((e) => !pred(e));
    }
    return removed;
  }

  invlpg(addr: number, pcid: number) {
    return this.removeWhere((e) => this.answers(e, addr, pcid));
  }

  flushNonGlobal(pcid: number | undefined) {
    return this.removeWhere((e) => !Model.global(e) && (pcid === undefined || e.pcid === pcid));
  }

  flushAll() {
    return this.removeWhere(() => true);
  }

  invpcid(type: InvpcidType, pcid: number, addr: number) {
    switch (type) {
      case 0:
        return this.removeWhere(
          (e) => !Model.global(e) && e.pcid === pcid && e.pageStart === Model.align(addr, e.shift),
        );
      case 1:
        return this.flushNonGlobal(pcid);
      case 2:
        return this.flushAll();
      case 3:
        return this.flushNonGlobal(undefined);
    }
  }

  all(): ModelEntry[] {
    return this.sets.flat();
  }
}

const key = (e: { pageStart: number; pcid: number; frame: number }, shift: number, attr: number) =>
  `${e.pageStart.toString(16)}/${shift}/${e.pcid}/${e.frame.toString(16)}/${attr}`;

/** 1 GiB regions: low, above 2^32 (set bits from the high half), top of each canonical half. */
const BASES = [0, GiB1, 0x12_4000_0000, 0x7fff_c000_0000, 0xffff_c000_0000];
const FRAMES = [0, GiB1, 5 * GiB1, 2 ** 52 - GiB1];

const addrArb = fc
  .tuple(
    fc.integer({ min: 0, max: BASES.length - 1 }),
    fc.integer({ min: 0, max: 2 }),
    fc.integer({ min: 0, max: 5 }),
    fc.integer({ min: 0, max: 4095 }),
  )
  .map(([b, m, k, off]) => BASES[b]! + m * MiB2 + k * KiB4 + off);
const pcidArb = fc.constantFrom(0, 1, 2, MAX_PCID);

type Op =
  | { op: 'fill'; addr: number; shift: TlbSizeShift; frame: number; pcid: number; attr: number }
  | { op: 'lookup'; addr: number; pcid: number; dirty: boolean }
  | { op: 'touch'; nth: number; offset: number; dirty: boolean }
  | { op: 'invlpg'; addr: number; pcid: number }
  | { op: 'flushNonGlobal'; pcid: number | undefined }
  | { op: 'flushAll' }
  | { op: 'invpcid'; type: InvpcidType; pcid: number; addr: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant('fill' as const),
      addr: addrArb,
      shift: fc.constantFrom<TlbSizeShift>(12, 12, 21, 30),
      frame: fc.constantFrom(...FRAMES),
      pcid: pcidArb,
      attr: fc.integer({ min: 0, max: 31 }).map((x) => (x << 1) & TLB_FILL_ATTR_MASK),
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant('lookup' as const),
      addr: addrArb,
      pcid: pcidArb,
      dirty: fc.boolean(),
    }),
  },
  {
    // A lookup of a page filled earlier (the `nth` fill, modulo their count), so hits are common.
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('touch' as const),
      nth: fc.nat(),
      offset: fc.integer({ min: 0, max: GiB1 - 1 }),
      dirty: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('invlpg' as const), addr: addrArb, pcid: pcidArb }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('flushNonGlobal' as const),
      pcid: fc.option(pcidArb, { nil: undefined }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ op: 'flushAll' as const }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('invpcid' as const),
      type: fc.constantFrom<InvpcidType>(0, 1, 2, 3),
      pcid: pcidArb,
      addr: addrArb,
    }),
  },
);

const GEOMETRIES = [
  { entries: 8, ways: 2 },
  { entries: 4, ways: 4 },
  { entries: 4, ways: 1 },
  { entries: 64, ways: 4 },
];
const FC_RUNS = Number(process.env['FC_RUNS'] ?? 200);

describe('Tlb against a reference model', () => {
  it('agrees on every lookup, eviction and count, and keeps its invariants', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...GEOMETRIES),
        fc.array(opArb, { maxLength: 80 }),
        (geometry, ops) => {
          const t = new Tlb(geometry);
          const m = new Model(t.sets, t.ways);
          const evicted: string[] = [];
          const hook = (slot: number) =>
            evicted.push(
              key(
                { pageStart: t.pageStartOf(slot), pcid: t.pcidOf(slot), frame: t.frameOf(slot) },
                t.sizeShiftOf(slot),
                t.attrOf(slot) & TLB_FILL_ATTR_MASK,
              ),
            );
          const modelKeys = (es: ModelEntry[]) => es.map((e) => key(e, e.shift, e.attr)).sort();

          const checkLookup = (addr: number, pcid: number, dirty: boolean) => {
            const want = m.lookup(addr, pcid);
            const slot = t.lookup(stored(addr), pcid);
            if (want === undefined) {
              expect(slot).toBe(-1);
              return;
            }
            expect(slot).toBeGreaterThanOrEqual(0);
            expect(
              key(
                { pageStart: t.pageStartOf(slot), pcid: t.pcidOf(slot), frame: t.frameOf(slot) },
                t.sizeShiftOf(slot),
                t.attrOf(slot) & TLB_FILL_ATTR_MASK,
              ),
            ).toBe(key(want, want.shift, want.attr));
            expect(t.physAddrOf(slot, stored(addr))).toBe(want.frame + (addr - want.pageStart));
            if (dirty) {
              t.setDirty(slot);
              want.attr |= TLB_DIRTY;
            }
          };
          const filled: { start: number; shift: TlbSizeShift; pcid: number }[] = [];

          for (const o of ops) {
            evicted.length = 0;
            let removed: ModelEntry[] = [];
            let n = -1;
            switch (o.op) {
              case 'fill': {
                const start = Number((BigInt(o.addr) >> BigInt(o.shift)) << BigInt(o.shift));
                filled.push({ start, shift: o.shift, pcid: o.pcid });
                removed = m.fill(start, o.shift, o.frame, o.pcid, o.attr);
                const slot = t.fill(stored(start), o.shift, pa(o.frame), o.pcid, o.attr, hook);
                expect(t.pageStartOf(slot)).toBe(start);
                expect(t.lastFillEvicted).toBe(removed.length > 0);
                expect(t.lastFillEvictions).toBe(removed.length);
                if (t.lastFillEvicted) {
                  const last = key(
                    {
                      pageStart: t.lastEvictedPageStart,
                      pcid: t.lastEvictedPcid,
                      frame: t.lastEvictedFrame,
                    },
                    t.lastEvictedSizeShift,
                    t.lastEvictedAttr & TLB_FILL_ATTR_MASK,
                  );
                  expect(modelKeys(removed)).toContain(last);
                }
                break;
              }
              case 'lookup':
                checkLookup(o.addr, o.pcid, o.dirty);
                break;
              case 'touch': {
                const f = filled[o.nth % Math.max(1, filled.length)];
                if (f) checkLookup(f.start + (o.offset % 2 ** f.shift), f.pcid, o.dirty);
                break;
              }
              case 'invlpg':
                removed = m.invlpg(o.addr, o.pcid);
                n = t.invlpg(stored(o.addr), o.pcid, hook);
                break;
              case 'flushNonGlobal':
                removed = m.flushNonGlobal(o.pcid);
                n = t.flushNonGlobal(o.pcid, hook);
                break;
              case 'flushAll':
                removed = m.flushAll();
                n = t.flushAll(hook);
                break;
              case 'invpcid':
                removed = m.invpcid(o.type, o.pcid, o.addr);
                n = t.invpcid(o.type, o.pcid, stored(o.addr), hook);
                break;
            }
            if (n >= 0) expect(n).toBe(removed.length);
            expect(evicted.sort()).toEqual(modelKeys(removed));

            t.checkInvariants();
            const entries = t.entries();
            expect(t.validCount()).toBe(entries.length);
            for (const e of entries)
              expect(e.set).toBe(Model.setOf(e.pageStart, e.sizeShift, t.sets));
            const attrOf = (e: (typeof entries)[number]) =>
              (e.global ? TLB_GLOBAL : 0) |
              (e.writable ? TLB_WRITABLE : 0) |
              (e.user ? TLB_USER : 0) |
              (e.nx ? TLB_NX : 0) |
              (e.dirty ? TLB_DIRTY : 0);
            expect(entries.map((e) => key(e, e.sizeShift, attrOf(e))).sort()).toEqual(
              modelKeys(m.all()),
            );
          }
        },
      ),
      { numRuns: FC_RUNS },
    );
  });
});
