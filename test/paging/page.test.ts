import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VirtAddr } from '../../src/addr.ts';
import { AddressNotAligned, as4KiBPageRange, Page } from '../../src/paging/page.ts';
import {
  type AnyPageSize,
  PAGE_SIZES,
  pageSizeByName,
  Size1GiB,
  Size2MiB,
  Size4KiB,
} from '../../src/paging/page-size.ts';
import { PageTableIndex } from '../../src/paging/page-table-index.ts';

const U64_MAX = (1n << 64n) - 1n;
const v = (x: bigint | number) => VirtAddr.new(x);
const big = (p: { startAddress: VirtAddr }) => VirtAddr.toBigInt(p.startAddress);
const ix = (i: number) => PageTableIndex.new(i);

function page<S extends AnyPageSize>(x: bigint | number, size: S): Page<S> {
  const r = Page.fromStartAddress(v(x), size);
  if (!r.ok) throw r.error;
  return r.value;
}

const canonical = fc.oneof(
  fc.bigInt({ min: 0n, max: (1n << 47n) - 1n }),
  fc.bigInt({ min: 0xffff_8000_0000_0000n, max: U64_MAX }),
);
const anySize = fc.constantFrom<AnyPageSize>(Size4KiB, Size2MiB, Size1GiB);
const index = fc.integer({ min: 0, max: 511 }).map((i) => PageTableIndex.new(i));

describe('page sizes', () => {
  it('have the crate sizes and names', () => {
    expect(Size4KiB).toEqual({ shift: 12, bytes: 4096, name: '4KiB' });
    expect(Size2MiB).toEqual({ shift: 21, bytes: 2 * 1024 * 1024, name: '2MiB' });
    expect(Size1GiB).toEqual({ shift: 30, bytes: 1024 * 1024 * 1024, name: '1GiB' });
    for (const s of PAGE_SIZES) expect(2 ** s.shift).toBe(s.bytes);
    expect(PAGE_SIZES).toEqual([Size4KiB, Size2MiB, Size1GiB]);
    expect(
      Object.isFrozen(Size4KiB) && Object.isFrozen(Size2MiB) && Object.isFrozen(Size1GiB),
    ).toBe(true);
  });

  it('are found by name', () => {
    expect(pageSizeByName('4KiB')).toBe(Size4KiB);
    expect(pageSizeByName('2MiB')).toBe(Size2MiB);
    expect(pageSizeByName('1GiB')).toBe(Size1GiB);
    expect(pageSizeByName('4K')).toBeUndefined();
    expect(pageSizeByName('')).toBeUndefined();
  });
});

describe('Page.fromStartAddress', () => {
  const aligned: [AnyPageSize, bigint[]][] = [
    [Size4KiB, [0n, 0x1000n, 0x7fff_ffff_f000n, 0xffff_8000_0000_0000n, 0xffff_ffff_ffff_f000n]],
    [Size2MiB, [0n, 0x20_0000n, 0x7fff_ffe0_0000n, 0xffff_8000_0020_0000n, 0xffff_ffff_ffe0_0000n]],
    [
      Size1GiB,
      [0n, 0x4000_0000n, 0x7fff_c000_0000n, 0xffff_8000_4000_0000n, 0xffff_ffff_c000_0000n],
    ],
  ];
  it.each(aligned)('accepts addresses aligned to %o', (size, addrs) => {
    for (const a of addrs) {
      const r = Page.fromStartAddress(v(a), size);
      expect(r.ok, a.toString(16)).toBe(true);
      if (!r.ok) continue;
      expect(big(r.value)).toBe(a);
      expect(r.value.size).toBe(size);
    }
  });

  const misaligned: [AnyPageSize, bigint[]][] = [
    [Size4KiB, [1n, 0x800n, 0xfffn, 0x1001n, 0xffff_8000_0000_0008n, U64_MAX]],
    [
      Size2MiB,
      [0x1000n, 0x10_0000n, 0x1f_f000n, 0x20_1000n, 0xffff_8000_0000_1000n, 0xffff_ffff_fff0_0000n],
    ],
    [
      Size1GiB,
      [
        0x1000n,
        0x20_0000n,
        0x2000_0000n,
        0x4020_0000n,
        0xffff_8000_0020_0000n,
        0xffff_ffff_ffe0_0000n,
      ],
    ],
  ];
  it.each(misaligned)(
    'rejects addresses not aligned to %o with AddressNotAligned',
    (size, addrs) => {
      for (const a of addrs) {
        const r = Page.fromStartAddress(v(a), size);
        expect(r.ok, a.toString(16)).toBe(false);
        if (r.ok) continue;
        expect(r.error).toBeInstanceOf(AddressNotAligned);
        expect(r.error.name).toBe('AddressNotAligned');
        expect(r.error.size).toBe(size);
        expect(r.error.address).toBe(`0x${a.toString(16)}`);
        expect(r.error.message).toContain(size.name);
        expect(r.error.message).toContain(`0x${a.toString(16)}`);
      }
    },
  );

  it('property: succeeds exactly for multiples of the size', () => {
    fc.assert(
      fc.property(canonical, anySize, (x, size) => {
        const r = Page.fromStartAddress(v(x), size);
        expect(r.ok).toBe(x % BigInt(size.bytes) === 0n);
      }),
      { numRuns: 2000 },
    );
  });

  it('fromStartAddressUnchecked builds the page as given', () => {
    const p = Page.fromStartAddressUnchecked(v(0x2000), Size4KiB);
    expect(p.startAddress).toBe(0x2000);
    expect(p.size).toBe(Size4KiB);
  });
});

describe('Page.containingAddress', () => {
  it('aligns down for every size, in both halves', () => {
    expect(big(Page.containingAddress(v(0x1fff), Size4KiB))).toBe(0x1000n);
    expect(big(Page.containingAddress(v(0x3f_ffff), Size2MiB))).toBe(0x20_0000n);
    expect(big(Page.containingAddress(v(0x7fff_ffff_ffffn), Size1GiB))).toBe(0x7fff_c000_0000n);
    expect(big(Page.containingAddress(v(0xffff_8000_0000_0123n), Size4KiB))).toBe(
      0xffff_8000_0000_0000n,
    );
    expect(big(Page.containingAddress(v(U64_MAX), Size4KiB))).toBe(0xffff_ffff_ffff_f000n);
    expect(big(Page.containingAddress(v(U64_MAX), Size2MiB))).toBe(0xffff_ffff_ffe0_0000n);
    expect(big(Page.containingAddress(v(U64_MAX), Size1GiB))).toBe(0xffff_ffff_c000_0000n);
    expect(Page.containingAddress(v(0x1234), Size2MiB).size).toBe(Size2MiB);
  });

  it('property: the page contains the address and starts aligned', () => {
    fc.assert(
      fc.property(canonical, anySize, (x, size) => {
        const p = Page.containingAddress(v(x), size);
        const start = big(p);
        expect(start % BigInt(size.bytes)).toBe(0n);
        expect(start <= x && x < start + BigInt(size.bytes)).toBe(true);
        expect(Page.fromStartAddress(p.startAddress, size).ok).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('Page table indices', () => {
  it('fromPageTableIndices composes a 4 KiB page', () => {
    const p = Page.fromPageTableIndices(ix(1), ix(2), ix(3), ix(4));
    expect(big(p)).toBe((1n << 39n) | (2n << 30n) | (3n << 21n) | (4n << 12n));
    expect(p.size).toBe(Size4KiB);
    expect([p.p4Index(), p.p3Index(), p.p2Index(), p.p1Index()]).toEqual([1, 2, 3, 4]);
    expect(big(Page.fromPageTableIndices(ix(0), ix(0), ix(0), ix(0)))).toBe(0n);
    expect(big(Page.fromPageTableIndices(ix(255), ix(511), ix(511), ix(511)))).toBe(
      0x7fff_ffff_f000n,
    );
  });

  it('P4 index >= 256 gives a sign-extended higher-half page', () => {
    const p = Page.fromPageTableIndices(ix(256), ix(0), ix(0), ix(0));
    expect(big(p)).toBe(0xffff_8000_0000_0000n);
    expect(VirtAddr.isHigherHalf(p.startAddress)).toBe(true);
    expect(big(Page.fromPageTableIndices(ix(511), ix(511), ix(511), ix(511)))).toBe(
      0xffff_ffff_ffff_f000n,
    );
    expect(big(Page.fromPageTableIndices2MiB(ix(256), ix(1), ix(2)))).toBe(0xffff_8000_4040_0000n);
    expect(big(Page.fromPageTableIndices2MiB(ix(511), ix(511), ix(511)))).toBe(
      0xffff_ffff_ffe0_0000n,
    );
    expect(big(Page.fromPageTableIndices1GiB(ix(256), ix(3)))).toBe(0xffff_8000_c000_0000n);
    expect(big(Page.fromPageTableIndices1GiB(ix(511), ix(511)))).toBe(0xffff_ffff_c000_0000n);
  });

  it('2 MiB and 1 GiB variants carry their size', () => {
    const p2 = Page.fromPageTableIndices2MiB(ix(1), ix(2), ix(3));
    expect(p2.size).toBe(Size2MiB);
    expect(big(p2)).toBe((1n << 39n) | (2n << 30n) | (3n << 21n));
    expect([p2.p4Index(), p2.p3Index(), p2.p2Index()]).toEqual([1, 2, 3]);
    const p1 = Page.fromPageTableIndices1GiB(ix(1), ix(2));
    expect(p1.size).toBe(Size1GiB);
    expect(big(p1)).toBe((1n << 39n) | (2n << 30n));
    expect([p1.p4Index(), p1.p3Index()]).toEqual([1, 2]);
  });

  it('property: indices round-trip and the address is the sign-extended composition', () => {
    fc.assert(
      fc.property(index, index, index, index, (p4, p3, p2, p1) => {
        const raw =
          (BigInt(p4) << 39n) | (BigInt(p3) << 30n) | (BigInt(p2) << 21n) | (BigInt(p1) << 12n);
        const expected = BigInt.asUintN(64, BigInt.asIntN(48, raw));
        const p = Page.fromPageTableIndices(p4, p3, p2, p1);
        expect(big(p)).toBe(expected);
        expect([p.p4Index(), p.p3Index(), p.p2Index(), p.p1Index()]).toEqual([p4, p3, p2, p1]);
        const q = Page.fromPageTableIndices2MiB(p4, p3, p2);
        expect(big(q)).toBe(expected & ~0x1f_ffffn);
        expect([q.p4Index(), q.p3Index(), q.p2Index()]).toEqual([p4, p3, p2]);
        const g = Page.fromPageTableIndices1GiB(p4, p3);
        expect(big(g)).toBe(expected & ~0x3fff_ffffn);
        expect([g.p4Index(), g.p3Index()]).toEqual([p4, p3]);
      }),
      { numRuns: 2000 },
    );
  });

  it('index accessors of containing pages match the address', () => {
    const a = v(0xffff_8123_4567_89abn);
    const p = Page.containingAddress(a, Size4KiB);
    const ref = (shift: bigint) => Number((0xffff_8123_4567_89abn >> shift) & 511n);
    expect([p.p4Index(), p.p3Index(), p.p2Index(), p.p1Index()]).toEqual([
      ref(39n),
      ref(30n),
      ref(21n),
      ref(12n),
    ]);
  });
});

describe('Page arithmetic, equality, printing', () => {
  it('add / sub move by whole pages', () => {
    expect(big(page(0x1000, Size4KiB).add(3))).toBe(0x4000n);
    expect(big(page(0x4000, Size4KiB).sub(3))).toBe(0x1000n);
    expect(big(page(0, Size2MiB).add(2))).toBe(0x40_0000n);
    expect(big(page(0xffff_8000_0000_0000n, Size1GiB).add(1))).toBe(0xffff_8000_4000_0000n);
    expect(page(0, Size2MiB).add(1).size).toBe(Size2MiB);
  });

  it('add / sub throw when leaving the canonical range', () => {
    expect(() => page(0x7fff_ffff_f000n, Size4KiB).add(1)).toThrow();
    expect(() => page(0xffff_ffff_ffff_f000n, Size4KiB).add(1)).toThrow();
    expect(() => page(0, Size4KiB).sub(1)).toThrow();
    expect(() => page(0xffff_8000_0000_0000n, Size4KiB).sub(1)).toThrow();
  });

  it('since counts pages', () => {
    expect(page(0x5000, Size4KiB).since(page(0x1000, Size4KiB))).toBe(4);
    expect(page(0x80_0000, Size2MiB).since(page(0, Size2MiB))).toBe(4);
    expect(
      page(0xffff_8000_0000_3000n, Size4KiB).since(page(0xffff_8000_0000_0000n, Size4KiB)),
    ).toBe(3);
    expect(page(0x1000, Size4KiB).since(page(0x1000, Size4KiB))).toBe(0);
  });

  it('equals compares address and size', () => {
    expect(page(0, Size4KiB).equals(page(0, Size4KiB))).toBe(true);
    expect(page(0, Size4KiB).equals(page(0x1000, Size4KiB))).toBe(false);
    expect(page(0, Size4KiB).equals(page(0, Size2MiB))).toBe(false);
  });

  it('toString shows size and canonical address', () => {
    expect(page(0xffff_8000_0000_0000n, Size2MiB).toString()).toBe(
      'Page[2MiB](0xffff800000000000)',
    );
    expect(page(0x1000, Size4KiB).toString()).toBe('Page[4KiB](0x1000)');
  });
});

describe('PageRange (half-open)', () => {
  it('iterates [start, end) with length and bytes', () => {
    const r = Page.range(page(0x1000, Size4KiB), page(0x4000, Size4KiB));
    expect(r.inclusive).toBe(false);
    expect(r.isEmpty()).toBe(false);
    expect(r.length).toBe(3);
    expect(r.bytes).toBe(3 * 4096);
    expect([...r].map(big)).toEqual([0x1000n, 0x2000n, 0x3000n]);
    expect([...r].every((p) => p.size === Size4KiB)).toBe(true);
    // iterable more than once
    expect([...r].length).toBe(3);
  });

  it('is empty when start == end or start > end', () => {
    for (const [s, e] of [
      [0x1000, 0x1000],
      [0x2000, 0x1000],
    ] as const) {
      const r = Page.range(page(s, Size4KiB), page(e, Size4KiB));
      expect(r.isEmpty()).toBe(true);
      expect(r.length).toBe(0);
      expect(r.bytes).toBe(0);
      expect([...r]).toEqual([]);
    }
  });

  it('works for huge sizes and in the higher half', () => {
    const r = Page.range(
      page(0xffff_8000_0000_0000n, Size2MiB),
      page(0xffff_8000_0060_0000n, Size2MiB),
    );
    expect(r.length).toBe(3);
    expect([...r].map(big)).toEqual([
      0xffff_8000_0000_0000n,
      0xffff_8000_0020_0000n,
      0xffff_8000_0040_0000n,
    ]);
    const g = Page.range(page(0, Size1GiB), page(0x1_0000_0000n, Size1GiB));
    expect(g.length).toBe(4);
    expect(g.bytes).toBe(2 ** 32);
  });

  it('top page as exclusive end covers up to it', () => {
    const r = Page.range(
      page(0xffff_ffff_ffff_d000n, Size4KiB),
      page(0xffff_ffff_ffff_f000n, Size4KiB),
    );
    expect([...r].map(big)).toEqual([0xffff_ffff_ffff_d000n, 0xffff_ffff_ffff_e000n]);
  });

  it('as4KiBPageRange re-expresses a 2 MiB range in 4 KiB pages', () => {
    const r = Page.range(page(0x20_0000, Size2MiB), page(0x60_0000, Size2MiB));
    const small = as4KiBPageRange(r);
    expect(small.start.size).toBe(Size4KiB);
    expect(big(small.start)).toBe(0x20_0000n);
    expect(big(small.end)).toBe(0x60_0000n);
    expect(small.length).toBe(1024);
    expect(small.bytes).toBe(r.bytes);
    const pages = [...small];
    expect(big(pages[0]!)).toBe(0x20_0000n);
    expect(big(pages[1023]!)).toBe(0x5f_f000n);
    expect(as4KiBPageRange(Page.range(page(0, Size2MiB), page(0, Size2MiB))).isEmpty()).toBe(true);
  });

  it('property: length equals the iterated count and pages are consecutive', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 20 }),
        fc.integer({ min: -8, max: 40 }),
        (s, n) => {
          const start = page(s * 4096, Size4KiB);
          const end = page(Math.max(0, s + n) * 4096, Size4KiB);
          const r = Page.range(start, end);
          const pages = [...r];
          expect(pages.length).toBe(r.length);
          expect(r.length).toBe(Math.max(0, Math.max(0, s + n) - s));
          expect(r.isEmpty()).toBe(r.length === 0);
          pages.forEach((p, i) => {
            expect(p.startAddress).toBe((s + i) * 4096);
          });
        },
      ),
    );
  });
});

describe('PageRangeInclusive (closed)', () => {
  it('iterates [start, end]', () => {
    const r = Page.rangeInclusive(page(0x1000, Size4KiB), page(0x3000, Size4KiB));
    expect(r.inclusive).toBe(true);
    expect(r.length).toBe(3);
    expect([...r].map(big)).toEqual([0x1000n, 0x2000n, 0x3000n]);
  });

  it('holds one page when start == end and is empty only when start > end', () => {
    const one = Page.rangeInclusive(page(0x1000, Size4KiB), page(0x1000, Size4KiB));
    expect(one.isEmpty()).toBe(false);
    expect(one.length).toBe(1);
    expect([...one].map(big)).toEqual([0x1000n]);
    const none = Page.rangeInclusive(page(0x2000, Size4KiB), page(0x1000, Size4KiB));
    expect(none.isEmpty()).toBe(true);
    expect(none.length).toBe(0);
    expect([...none]).toEqual([]);
  });

  it('iterates up to and including the top page 0xffff_ffff_ffff_f000 without overflow', () => {
    const top = page(0xffff_ffff_ffff_f000n, Size4KiB);
    const single = Page.rangeInclusive(top, top);
    expect([...single].map(big)).toEqual([0xffff_ffff_ffff_f000n]);
    const r = Page.rangeInclusive(page(0xffff_ffff_ffff_d000n, Size4KiB), top);
    expect(r.length).toBe(3);
    expect(r.bytes).toBe(3 * 4096);
    expect([...r].map(big)).toEqual([
      0xffff_ffff_ffff_d000n,
      0xffff_ffff_ffff_e000n,
      0xffff_ffff_ffff_f000n,
    ]);
    // every yielded page is a valid, canonical page
    for (const p of r) expect(Page.fromStartAddress(p.startAddress, Size4KiB).ok).toBe(true);
  });

  it('top huge pages inclusive', () => {
    const top2m = page(0xffff_ffff_ffe0_0000n, Size2MiB);
    expect([...Page.rangeInclusive(top2m, top2m)].map(big)).toEqual([0xffff_ffff_ffe0_0000n]);
    const top1g = page(0xffff_ffff_c000_0000n, Size1GiB);
    const r = Page.rangeInclusive(page(0xffff_ffff_8000_0000n, Size1GiB), top1g);
    expect([...r].map(big)).toEqual([0xffff_ffff_8000_0000n, 0xffff_ffff_c000_0000n]);
  });
});
