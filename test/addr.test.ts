import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  hex,
  NotAnInteger,
  PhysAddr,
  PhysAddrNotValid,
  parseHex,
  TWO_POW_32,
  VirtAddr,
  VirtAddrNotValid,
} from '../src/addr.ts';
import { err, ok } from '../src/result.ts';

const U64_MAX = (1n << 64n) - 1n;
const TWO_POW_47 = 2 ** 47;
const TWO_POW_52 = 2 ** 52;

/** Reference canonical form: sign-extend bit 47 over bits 48..63. */
const canonicalOf = (x: bigint): bigint => BigInt.asUintN(64, BigInt.asIntN(48, x));
const isCanonical = (x: bigint): boolean => canonicalOf(x) === x;

const anyU64 = fc.bigInt({ min: 0n, max: U64_MAX });
const lowerHalf = fc.bigInt({ min: 0n, max: (1n << 47n) - 1n });
const higherHalf = fc.bigInt({ min: 0xffff_8000_0000_0000n, max: U64_MAX });
const canonical = fc.oneof(lowerHalf, higherHalf);
/** A mix that hits both canonical and non-canonical values often. */
const mixedU64 = fc.oneof(anyU64, canonical, fc.bigInt({ min: 0n, max: (1n << 53n) - 1n }));

function tryNewError(value: bigint | number): VirtAddrNotValid {
  const r = VirtAddr.tryNew(value);
  if (r.ok) throw new Error(`expected ${value} to be rejected`);
  return r.error;
}

describe('hex', () => {
  it('prints lowercase with 0x and no leading zeros', () => {
    expect(hex(0)).toBe('0x0');
    expect(hex(0n)).toBe('0x0');
    expect(hex(255)).toBe('0xff');
    expect(hex(0xabcdefn)).toBe('0xabcdef');
    expect(hex(2 ** 52 - 1)).toBe('0xfffffffffffff');
    expect(hex(U64_MAX)).toBe('0xffffffffffffffff');
  });

  it('exports 2^32', () => {
    expect(TWO_POW_32).toBe(4294967296);
  });
});

describe('result', () => {
  it('ok and err are discriminated by `ok`', () => {
    expect(ok(3)).toEqual({ ok: true, value: 3 });
    expect(err('x')).toEqual({ ok: false, error: 'x' });
  });
});

describe('VirtAddr.tryNew / new: canonical values', () => {
  const lower: (number | bigint)[] = [
    0,
    1,
    0x1000,
    0x7fff_ffff_ffff,
    0n,
    0x7fff_ffff_ffffn,
    0x1234_5678_9abcn,
  ];
  it.each(lower)('accepts lower-half %s unchanged', (v) => {
    const r = VirtAddr.tryNew(v);
    expect(r).toEqual({ ok: true, value: Number(v) });
    expect(VirtAddr.new(v)).toBe(Number(v));
    expect(VirtAddr.toBigInt(VirtAddr.new(v))).toBe(BigInt(v));
    expect(VirtAddr.isHigherHalf(VirtAddr.new(v))).toBe(false);
  });

  const higher: [bigint, number][] = [
    [0xffff_8000_0000_0000n, 0x8000_0000_0000],
    [0xffff_8000_0000_1000n, 0x8000_0000_1000],
    [0xffff_ffff_ffff_f000n, 0xffff_ffff_f000],
    [U64_MAX, 0xffff_ffff_ffff],
  ];
  it.each(higher)('accepts higher-half %s (stored as its low 48 bits)', (v, stored) => {
    const r = VirtAddr.tryNew(v);
    expect(r.ok).toBe(true);
    const a = VirtAddr.new(v);
    expect(a).toBe(stored);
    expect(VirtAddr.isHigherHalf(a)).toBe(true);
    expect(VirtAddr.toBigInt(a)).toBe(v);
    expect(VirtAddr.hex(a)).toBe(`0x${v.toString(16)}`);
  });

  it('has a canonical zero', () => {
    expect(VirtAddr.zero).toBe(0);
    expect(VirtAddr.toBigInt(VirtAddr.zero)).toBe(0n);
    expect(VirtAddr.hex(VirtAddr.zero)).toBe('0x0');
  });

  it('newUnchecked keeps the stored 48-bit form', () => {
    expect(VirtAddr.toBigInt(VirtAddr.newUnchecked(0x8000_0000_0000))).toBe(0xffff_8000_0000_0000n);
    expect(VirtAddr.newUnchecked(0x1234)).toBe(0x1234);
  });
});

describe('VirtAddr.tryNew / new: non-canonical values', () => {
  const bad: (number | bigint)[] = [
    // bit 47 set without the sign extension
    0x8000_0000_0000,
    0x8000_0000_0000n,
    0xffff_ffff_ffff,
    0xffff_ffff_ffffn,
    // bit 48+ set with bit 47 clear
    0x1_0000_0000_0000,
    0x1_0000_0000_0000n,
    2 ** 52,
    Number.MAX_SAFE_INTEGER,
    0x0001_8000_0000_0000n,
    // partial sign extension
    0xffff_7fff_ffff_ffffn,
    0x7fff_8000_0000_0000n,
    0xfffe_8000_0000_0000n,
    0x8000_0000_0000_0000n,
    0x0000_8000_0000_0001n,
  ];
  it.each(bad)('rejects %s with VirtAddrNotValid carrying the value', (v) => {
    const e = tryNewError(v);
    expect(e).toBeInstanceOf(VirtAddrNotValid);
    expect(e.name).toBe('VirtAddrNotValid');
    expect(e.value).toBe(BigInt(v));
    expect(e.message).toContain(hex(BigInt(v)));
    expect(() => VirtAddr.new(v)).toThrow(VirtAddrNotValid);
  });

  it('throws NotAnInteger for number inputs that are not non-negative safe integers', () => {
    for (const v of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, 2 ** 64]) {
      expect(() => VirtAddr.tryNew(v), String(v)).toThrow(NotAnInteger);
      expect(() => VirtAddr.new(v), String(v)).toThrow(NotAnInteger);
      expect(() => VirtAddr.newTruncate(v), String(v)).toThrow(NotAnInteger);
    }
    const e = new NotAnInteger('virtual address', -1);
    expect(e.name).toBe('NotAnInteger');
    expect(e.value).toBe(-1);
  });

  it('throws RangeError for bigint inputs outside 64 unsigned bits', () => {
    for (const v of [-1n, 1n << 64n]) {
      expect(() => VirtAddr.tryNew(v)).toThrow(RangeError);
      expect(() => VirtAddr.newTruncate(v)).toThrow(RangeError);
    }
  });
});

describe('VirtAddr.newTruncate', () => {
  const cases: [bigint, bigint][] = [
    [0n, 0n],
    [0x7fff_ffff_ffffn, 0x7fff_ffff_ffffn],
    // bit 47 set: sign-extended into the higher half
    [0x8000_0000_0000n, 0xffff_8000_0000_0000n],
    [0xffff_ffff_f000n, 0xffff_ffff_ffff_f000n],
    // bits 48..63 discarded
    [0x1_2345_6789_abcdn, 0x2345_6789_abcdn],
    [0x7fff_8000_0000_0000n, 0xffff_8000_0000_0000n],
    [0xffff_7fff_ffff_ffffn, 0x7fff_ffff_ffffn],
    [0x8000_0000_0000_0000n, 0n],
    [U64_MAX, U64_MAX],
  ];
  it.each(cases)('truncates %s to %s', (input, expected) => {
    expect(VirtAddr.toBigInt(VirtAddr.newTruncate(input))).toBe(expected);
    if (input <= BigInt(Number.MAX_SAFE_INTEGER)) {
      expect(VirtAddr.newTruncate(Number(input))).toBe(VirtAddr.newTruncate(input));
    }
  });

  it('property: the result is always canonical, and equals the input when that is canonical', () => {
    fc.assert(
      fc.property(mixedU64, (x) => {
        const t = VirtAddr.newTruncate(x);
        const big = VirtAddr.toBigInt(t);
        expect(isCanonical(big)).toBe(true);
        expect(VirtAddr.tryNew(big)).toEqual({ ok: true, value: t });
        expect(big).toBe(canonicalOf(x));
        if (isCanonical(x)) expect(big).toBe(x);
        expect(Number.isSafeInteger(t) && t >= 0 && t < 2 ** 48).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('property: number and bigint inputs agree', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: BigInt(Number.MAX_SAFE_INTEGER) }), (x) => {
        expect(VirtAddr.newTruncate(Number(x))).toBe(VirtAddr.newTruncate(x));
      }),
    );
  });
});

describe('VirtAddr properties', () => {
  it('toBigInt(new(x)) === x for canonical x (bigint input)', () => {
    fc.assert(
      fc.property(canonical, (x) => {
        const a = VirtAddr.new(x);
        expect(VirtAddr.toBigInt(a)).toBe(x);
        expect(VirtAddr.isHigherHalf(a)).toBe(x >= 1n << 47n);
        expect(VirtAddr.hex(a)).toBe(`0x${x.toString(16)}`);
      }),
      { numRuns: 2000 },
    );
  });

  it('toBigInt(new(x)) === x for lower-half x given as a number', () => {
    fc.assert(
      fc.property(lowerHalf, (x) => {
        expect(VirtAddr.toBigInt(VirtAddr.new(Number(x)))).toBe(x);
      }),
    );
  });

  it('tryNew succeeds exactly for canonical values', () => {
    fc.assert(
      fc.property(mixedU64, (x) => {
        const r = VirtAddr.tryNew(x);
        expect(r.ok).toBe(isCanonical(x));
        if (!r.ok) expect(r.error.value).toBe(x);
        if (x <= BigInt(Number.MAX_SAFE_INTEGER)) {
          expect(VirtAddr.tryNew(Number(x)).ok).toBe(r.ok);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('VirtAddr arithmetic and alignment', () => {
  it('add moves by bytes and refuses to leave the canonical half', () => {
    expect(VirtAddr.add(VirtAddr.new(0x1000), 0x10)).toBe(0x1010);
    expect(VirtAddr.add(VirtAddr.new(0x1000), -0x1000)).toBe(0);
    expect(VirtAddr.toBigInt(VirtAddr.add(VirtAddr.new(0xffff_8000_0000_0000n), 0x2000))).toBe(
      0xffff_8000_0000_2000n,
    );
    // into the non-canonical hole
    expect(() => VirtAddr.add(VirtAddr.new(0x7fff_ffff_ffff), 1)).toThrow(RangeError);
    // below zero
    expect(() => VirtAddr.add(VirtAddr.zero, -1)).toThrow(RangeError);
    // past 2^64
    expect(() => VirtAddr.add(VirtAddr.new(U64_MAX), 1)).toThrow(RangeError);
    // backwards into the hole from the higher half
    expect(() => VirtAddr.add(VirtAddr.new(0xffff_8000_0000_0000n), -1)).toThrow(RangeError);
  });

  it('alignDown stays canonical in both halves', () => {
    expect(VirtAddr.alignDown(VirtAddr.new(0x1fff), 4096)).toBe(0x1000);
    const hi = VirtAddr.alignDown(VirtAddr.new(0xffff_8000_0012_3456n), 4096);
    expect(VirtAddr.toBigInt(hi)).toBe(0xffff_8000_0012_3000n);
    const hi1g = VirtAddr.alignDown(VirtAddr.new(0xffff_ffff_ffff_ffffn), 2 ** 30);
    expect(VirtAddr.toBigInt(hi1g)).toBe(0xffff_ffff_c000_0000n);
    const bottom = VirtAddr.alignDown(VirtAddr.new(0xffff_8000_1234_5678n), 2 ** 39);
    expect(VirtAddr.toBigInt(bottom)).toBe(0xffff_8000_0000_0000n);
  });

  it('isAligned and pageOffset', () => {
    expect(VirtAddr.isAligned(VirtAddr.new(0x20_0000), 2 ** 21)).toBe(true);
    expect(VirtAddr.isAligned(VirtAddr.new(0x20_1000), 2 ** 21)).toBe(false);
    expect(VirtAddr.isAligned(VirtAddr.new(0xffff_8000_0000_0000n), 2 ** 30)).toBe(true);
    expect(VirtAddr.pageOffset(VirtAddr.new(0x1234))).toBe(0x234);
    expect(VirtAddr.pageOffset(VirtAddr.new(0xffff_ffff_ffff_ffffn))).toBe(0xfff);
  });

  it('property: alignDown(a, size) is aligned, canonical, <= a and within size of a', () => {
    fc.assert(
      fc.property(canonical, fc.constantFrom(12, 21, 30, 39), (x, shift) => {
        const align = 2 ** shift;
        const a = VirtAddr.new(x);
        const d = VirtAddr.alignDown(a, align);
        const db = VirtAddr.toBigInt(d);
        expect(db).toBe(x & ~(BigInt(align) - 1n));
        expect(isCanonical(db)).toBe(true);
        expect(VirtAddr.isAligned(d, align)).toBe(true);
      }),
    );
  });
});

describe('PhysAddr', () => {
  it('accepts values below 2^52, as numbers and bigints', () => {
    for (const v of [0, 1, 0x1000, TWO_POW_52 - 1, 0n, (1n << 52n) - 1n]) {
      expect(PhysAddr.tryNew(v)).toEqual({ ok: true, value: Number(v) });
      expect(PhysAddr.new(v)).toBe(Number(v));
      expect(PhysAddr.toBigInt(PhysAddr.new(v))).toBe(BigInt(v));
    }
    expect(PhysAddr.zero).toBe(0);
  });

  it('rejects values at or above 2^52 with PhysAddrNotValid', () => {
    for (const v of [
      TWO_POW_52,
      TWO_POW_52 + 1,
      Number.MAX_SAFE_INTEGER,
      1n << 52n,
      1n << 63n,
      U64_MAX,
    ]) {
      const r = PhysAddr.tryNew(v);
      expect(r.ok, String(v)).toBe(false);
      if (r.ok) continue;
      expect(r.error).toBeInstanceOf(PhysAddrNotValid);
      expect(r.error.name).toBe('PhysAddrNotValid');
      expect(r.error.value).toBe(BigInt(v));
      expect(r.error.message).toContain(hex(BigInt(v)));
      expect(() => PhysAddr.new(v)).toThrow(PhysAddrNotValid);
    }
  });

  it('throws for inputs that are not u64 values', () => {
    for (const v of [-1, 0.5, Number.NaN, 2 ** 53]) {
      expect(() => PhysAddr.tryNew(v), String(v)).toThrow(NotAnInteger);
      expect(() => PhysAddr.newTruncate(v), String(v)).toThrow(NotAnInteger);
    }
    expect(() => PhysAddr.tryNew(-1n)).toThrow(RangeError);
    expect(() => PhysAddr.tryNew(1n << 64n)).toThrow(RangeError);
  });

  it('newTruncate reduces modulo 2^52', () => {
    expect(PhysAddr.newTruncate(TWO_POW_52)).toBe(0);
    expect(PhysAddr.newTruncate(TWO_POW_52 + 5)).toBe(5);
    expect(PhysAddr.newTruncate(1n << 52n)).toBe(0);
    expect(PhysAddr.newTruncate(U64_MAX)).toBe(TWO_POW_52 - 1);
    expect(PhysAddr.newTruncate(0xabc0_0000_0000_1000n)).toBe(0x1000);
  });

  it('property: tryNew succeeds exactly below 2^52; newTruncate is x mod 2^52', () => {
    fc.assert(
      fc.property(fc.oneof(anyU64, fc.bigInt({ min: 0n, max: (1n << 53n) - 1n })), (x) => {
        const r = PhysAddr.tryNew(x);
        expect(r.ok).toBe(x < 1n << 52n);
        if (r.ok) expect(PhysAddr.toBigInt(r.value)).toBe(x);
        expect(PhysAddr.newTruncate(x)).toBe(Number(x % (1n << 52n)));
        if (x <= BigInt(Number.MAX_SAFE_INTEGER)) {
          expect(PhysAddr.tryNew(Number(x)).ok).toBe(r.ok);
          expect(PhysAddr.newTruncate(Number(x))).toBe(PhysAddr.newTruncate(x));
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('hex, alignDown, isAligned, newUnchecked', () => {
    expect(PhysAddr.hex(PhysAddr.new(0xf_ffff_ffff_f000))).toBe('0xffffffffff000');
    expect(PhysAddr.alignDown(PhysAddr.new(0x12_3456), 2 ** 21)).toBe(0);
    expect(PhysAddr.alignDown(PhysAddr.new(0x4012_3456), 2 ** 30)).toBe(0x4000_0000);
    expect(PhysAddr.isAligned(PhysAddr.new(0x20_0000), 2 ** 21)).toBe(true);
    expect(PhysAddr.isAligned(PhysAddr.new(0x20_0008), 2 ** 12)).toBe(false);
    expect(PhysAddr.newUnchecked(0x1000)).toBe(0x1000);
  });

  it('add throws when the result leaves [0, 2^52)', () => {
    expect(PhysAddr.add(PhysAddr.new(0x1000), 0x1000)).toBe(0x2000);
    expect(PhysAddr.add(PhysAddr.new(TWO_POW_52 - 4096), 4095)).toBe(TWO_POW_52 - 1);
    expect(() => PhysAddr.add(PhysAddr.new(TWO_POW_52 - 4096), 4096)).toThrow(RangeError);
    expect(() => PhysAddr.add(PhysAddr.zero, -1)).toThrow(RangeError);
  });

  it('is independent of the virtual 47-bit rule', () => {
    // 2^47 is a fine physical address even though it is not canonical as a virtual one
    expect(PhysAddr.tryNew(TWO_POW_47).ok).toBe(true);
    expect(VirtAddr.tryNew(TWO_POW_47).ok).toBe(false);
  });
});

describe('parseHex', () => {
  it('parses 0x-prefixed hex of up to 64 bits', () => {
    expect(parseHex('0x0')).toBe(0n);
    expect(parseHex('0xff')).toBe(255n);
    expect(parseHex('0xFF')).toBe(255n);
    expect(parseHex('0xffffffffffffffff')).toBe(U64_MAX);
    expect(parseHex(`0x${'0'.repeat(63)}1`)).toBe(1n);
  });

  it('rejects anything else', () => {
    for (const s of [
      '',
      '0x',
      'ff',
      '0X1',
      ' 0x1',
      '0x1 ',
      '0x-1',
      '-0x1',
      '0xg',
      '0x1_000',
      '0x10000000000000000',
      `0x${'0'.repeat(64)}1`,
      '12',
    ]) {
      expect(parseHex(s), JSON.stringify(s)).toBeUndefined();
    }
  });

  it('property: round-trips hex()', () => {
    fc.assert(
      fc.property(anyU64, (x) => {
        expect(parseHex(hex(x))).toBe(x);
      }),
    );
  });
});
