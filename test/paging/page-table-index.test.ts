import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VirtAddr } from '../../src/addr.ts';
import {
  indexAt,
  PageOffset,
  PageTableIndex,
  PageTableLevel,
} from '../../src/paging/page-table-index.ts';
import { CratePanic } from '../../src/paging/panic.ts';

const LEVELS: readonly PageTableLevel[] = [1, 2, 3, 4];
const U64_MAX = (1n << 64n) - 1n;

/** Reference from the semantics notes (§3): level L uses shift 12 + 9·(L−1). */
const refIndex = (addr: bigint, level: PageTableLevel): number =>
  Number((addr >> BigInt(12 + 9 * (level - 1))) & 511n);

const canonical = fc.oneof(
  fc.bigInt({ min: 0n, max: (1n << 47n) - 1n }),
  fc.bigInt({ min: 0xffff_8000_0000_0000n, max: U64_MAX }),
);

describe('CratePanic', () => {
  it('is an Error named CratePanic', () => {
    const p = new CratePanic('boom');
    expect(p).toBeInstanceOf(Error);
    expect(p.name).toBe('CratePanic');
    expect(p.message).toBe('boom');
  });
});

describe('PageTableIndex', () => {
  it('new accepts 0..511', () => {
    expect(PageTableIndex.new(0)).toBe(0);
    expect(PageTableIndex.new(256)).toBe(256);
    expect(PageTableIndex.new(511)).toBe(511);
  });

  it.each([512, 513, 1000, 65535, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])(
    'new(%s) panics with CratePanic',
    (i) => {
      expect(() => PageTableIndex.new(i)).toThrow(CratePanic);
      expect(() => PageTableIndex.new(i)).toThrow(/page table index .* out of range/);
    },
  );

  it('newTruncate reduces modulo 512', () => {
    expect(PageTableIndex.newTruncate(0)).toBe(0);
    expect(PageTableIndex.newTruncate(511)).toBe(511);
    expect(PageTableIndex.newTruncate(512)).toBe(0);
    expect(PageTableIndex.newTruncate(513)).toBe(1);
    expect(PageTableIndex.newTruncate(1023)).toBe(511);
    expect(PageTableIndex.newTruncate(65535)).toBe(511);
  });

  it('property: newTruncate(i) === i % 512 for u16 inputs, and new agrees below 512', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff }), (i) => {
        expect(PageTableIndex.newTruncate(i)).toBe(i % 512);
        if (i < 512) expect(PageTableIndex.new(i)).toBe(i);
        else expect(() => PageTableIndex.new(i)).toThrow(CratePanic);
      }),
    );
  });
});

describe('PageOffset', () => {
  it('new accepts 0..4095', () => {
    expect(PageOffset.new(0)).toBe(0);
    expect(PageOffset.new(4095)).toBe(4095);
  });

  it.each([4096, 4097, 65535, -1, 0.5, Number.NaN])('new(%s) panics with CratePanic', (o) => {
    expect(() => PageOffset.new(o)).toThrow(CratePanic);
    expect(() => PageOffset.new(o)).toThrow(/page offset .* out of range/);
  });

  it('newTruncate reduces modulo 4096', () => {
    expect(PageOffset.newTruncate(4095)).toBe(4095);
    expect(PageOffset.newTruncate(4096)).toBe(0);
    expect(PageOffset.newTruncate(4097)).toBe(1);
    expect(PageOffset.newTruncate(65535)).toBe(4095);
  });

  it('property: newTruncate(o) === o % 4096 for u16 inputs', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff }), (o) => {
        expect(PageOffset.newTruncate(o)).toBe(o % 4096);
      }),
    );
  });
});

describe('PageTableLevel', () => {
  it('address span of one entry and of one table', () => {
    expect(LEVELS.map((l) => PageTableLevel.entryAddressSpace(l))).toEqual([
      2 ** 12,
      2 ** 21,
      2 ** 30,
      2 ** 39,
    ]);
    expect(LEVELS.map((l) => PageTableLevel.tableAddressSpace(l))).toEqual([
      2 ** 21,
      2 ** 30,
      2 ** 39,
      2 ** 48,
    ]);
  });

  it('next lower / higher', () => {
    expect(LEVELS.map((l) => PageTableLevel.nextLower(l))).toEqual([undefined, 1, 2, 3]);
    expect(LEVELS.map((l) => PageTableLevel.nextHigher(l))).toEqual([2, 3, 4, undefined]);
  });
});

describe('indexAt', () => {
  const v = (x: bigint) => VirtAddr.new(x);
  const indices = (x: bigint) => [4, 3, 2, 1].map((l) => indexAt(v(x), l as PageTableLevel));

  it('splits an address into its four 9-bit fields', () => {
    // p4 = 0x0ab, p3 = 0x155, p2 = 0x1ff, p1 = 0x001, offset = 0x234
    const x = (0x0abn << 39n) | (0x155n << 30n) | (0x1ffn << 21n) | (0x001n << 12n) | 0x234n;
    expect(indices(x)).toEqual([0x0ab, 0x155, 0x1ff, 0x001]);
  });

  it('handles every level boundary, including p3 straddling the 32-bit halves', () => {
    expect(indices(0n)).toEqual([0, 0, 0, 0]);
    expect(indices(0xfffn)).toEqual([0, 0, 0, 0]);
    expect(indices(0x1000n)).toEqual([0, 0, 0, 1]);
    expect(indices(0x20_0000n)).toEqual([0, 0, 1, 0]);
    expect(indices(0x4000_0000n)).toEqual([0, 1, 0, 0]);
    expect(indices(0x8000_0000n)).toEqual([0, 2, 0, 0]);
    expect(indices(0xc000_0000n)).toEqual([0, 3, 0, 0]);
    expect(indices(0x1_0000_0000n)).toEqual([0, 4, 0, 0]);
    expect(indices(0x7f_c000_0000n)).toEqual([0, 511, 0, 0]);
    expect(indices(0x80_0000_0000n)).toEqual([1, 0, 0, 0]);
    expect(indices(0x7f_ffff_ffffn)).toEqual([0, 511, 511, 511]);
    expect(indices(0x7fff_ffff_ffffn)).toEqual([255, 511, 511, 511]);
  });

  it('gives P4 index >= 256 for higher-half addresses', () => {
    expect(indices(0xffff_8000_0000_0000n)).toEqual([256, 0, 0, 0]);
    expect(
      indices(0xffff_0000_0000_0000n | (257n << 39n) | (2n << 30n) | (1n << 21n) | (1n << 12n)),
    ).toEqual([257, 2, 1, 1]);
    expect(indices(0xffff_8080_4020_1000n)).toEqual([257, 1, 1, 1]);
    expect(indices(0xffff_ff80_0000_0000n)).toEqual([511, 0, 0, 0]);
    expect(indices(0xffff_ffff_ffff_f000n)).toEqual([511, 511, 511, 511]);
    expect(indices(U64_MAX)).toEqual([511, 511, 511, 511]);
  });

  it('property: agrees with the BigInt reference on the stored form, for every level', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 48n) - 1n }), (x) => {
        const addr = VirtAddr.newUnchecked(Number(x));
        for (const level of LEVELS) {
          expect(indexAt(addr, level)).toBe(refIndex(BigInt(addr), level));
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('property: agrees with the BigInt reference on the canonical 64-bit value', () => {
    fc.assert(
      fc.property(canonical, (x) => {
        const addr = VirtAddr.new(x);
        for (const level of LEVELS) {
          expect(indexAt(addr, level)).toBe(refIndex(x, level));
        }
        expect(indexAt(addr, 4) >= 256).toBe(VirtAddr.isHigherHalf(addr));
      }),
      { numRuns: 3000 },
    );
  });
});
