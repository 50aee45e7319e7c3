import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FlagsNotValid, PARENT_FLAGS_MASK, PageTableFlags } from '../../src/paging/flags.ts';

const U64_MAX = (1n << 64n) - 1n;
const ADDRESS_BITS = 0x000f_ffff_ffff_f000n;

/** Every named bit of the crate's `PageTableFlags`, with its entry bit (semantics §1). */
const NAMED_BITS: readonly [string, number][] = [
  ['PRESENT', 0],
  ['WRITABLE', 1],
  ['USER_ACCESSIBLE', 2],
  ['WRITE_THROUGH', 3],
  ['NO_CACHE', 4],
  ['ACCESSED', 5],
  ['DIRTY', 6],
  ['HUGE_PAGE', 7],
  ['GLOBAL', 8],
  ['BIT_9', 9],
  ['BIT_10', 10],
  ['BIT_11', 11],
  ['BIT_52', 52],
  ['BIT_53', 53],
  ['BIT_54', 54],
  ['BIT_55', 55],
  ['BIT_56', 56],
  ['BIT_57', 57],
  ['BIT_58', 58],
  ['BIT_59', 59],
  ['BIT_60', 60],
  ['BIT_61', 61],
  ['BIT_62', 62],
  ['NO_EXECUTE', 63],
];

const flagNamed = (name: string): PageTableFlags =>
  (PageTableFlags as unknown as Record<string, PageTableFlags>)[name]!;

/** Any 64-bit word with bits 12..51 clear. */
const validWord = fc.bigInt({ min: 0n, max: U64_MAX }).map((x) => x & ~ADDRESS_BITS);
/** Any flag set the type can hold (24 packed bits). */
const anyFlags = fc.integer({ min: 0, max: 0xffffff }).map((n) => n as PageTableFlags);

describe('PageTableFlags named bits', () => {
  it('names exactly the 24 bits outside 12..51', () => {
    const upper = Object.keys(PageTableFlags).filter((k) => /^[A-Z0-9_]+$/.test(k));
    expect(upper.sort()).toEqual(NAMED_BITS.map(([n]) => n).sort());
    const bits = NAMED_BITS.map(([, b]) => b);
    for (let b = 0; b < 64; b++) expect(bits.includes(b), `bit ${b}`).toBe(b < 12 || b > 51);
  });

  it.each(NAMED_BITS)(
    '%s is entry bit %i and round-trips through bits()/fromBits()',
    (name, bit) => {
      const flag = flagNamed(name);
      expect(PageTableFlags.bits(flag)).toBe(1n << BigInt(bit));
      expect(PageTableFlags.fromBits(1n << BigInt(bit))).toEqual({ ok: true, value: flag });
      expect(PageTableFlags.fromBitsTruncate(1n << BigInt(bit))).toBe(flag);
      expect(PageTableFlags.names(flag)).toBe(name);
      expect(PageTableFlags.hex(flag)).toBe(`0x${(1n << BigInt(bit)).toString(16)}`);
    },
  );

  it('named bits are distinct single bits of a 24-bit integer', () => {
    const seen = new Set<number>();
    for (const [name] of NAMED_BITS) {
      const f = flagNamed(name);
      expect(Number.isInteger(f) && f > 0 && f <= 0xffffff).toBe(true);
      expect(f & (f - 1)).toBe(0);
      expect(seen.has(f)).toBe(false);
      seen.add(f);
    }
    expect(PageTableFlags.of(...[...seen].map((f) => f as PageTableFlags))).toBe(
      PageTableFlags.all,
    );
  });

  it('empty and all', () => {
    expect(PageTableFlags.empty).toBe(0);
    expect(PageTableFlags.bits(PageTableFlags.empty)).toBe(0n);
    expect(PageTableFlags.bits(PageTableFlags.all)).toBe(0xfff0_0000_0000_0fffn);
    expect(PageTableFlags.fromBits(0xfff0_0000_0000_0fffn)).toEqual({
      ok: true,
      value: PageTableFlags.all,
    });
    expect(PageTableFlags.hex(PageTableFlags.empty)).toBe('0x0');
    expect(PageTableFlags.hex(PageTableFlags.all)).toBe('0xfff0000000000fff');
  });
});

describe('PageTableFlags.fromBits', () => {
  it.each(Array.from({ length: 40 }, (_, i) => i + 12))(
    'rejects address bit %i with FlagsNotValid',
    (bit) => {
      const word = 1n << BigInt(bit);
      for (const w of [word, word | 0x3n, word | (1n << 63n)]) {
        const r = PageTableFlags.fromBits(w);
        expect(r.ok).toBe(false);
        if (r.ok) return;
        expect(r.error).toBeInstanceOf(FlagsNotValid);
        expect(r.error.name).toBe('FlagsNotValid');
        expect(r.error.value).toBe(w);
        expect(r.error.message).toContain(`0x${w.toString(16)}`);
      }
    },
  );

  it('rejects words outside 64 unsigned bits', () => {
    for (const w of [-1n, 1n << 64n, U64_MAX + 0x10n]) {
      const r = PageTableFlags.fromBits(w);
      expect(r.ok, String(w)).toBe(false);
      if (!r.ok) expect(r.error).toBeInstanceOf(FlagsNotValid);
    }
  });

  it('fromBitsTruncate drops bits 12..51 and keeps the rest', () => {
    expect(PageTableFlags.fromBitsTruncate(0x000f_ffff_ffff_f000n)).toBe(PageTableFlags.empty);
    expect(PageTableFlags.fromBitsTruncate(U64_MAX)).toBe(PageTableFlags.all);
    expect(PageTableFlags.fromBitsTruncate(0x8000_0000_1234_5003n)).toBe(
      PageTableFlags.of(PageTableFlags.NO_EXECUTE, PageTableFlags.PRESENT, PageTableFlags.WRITABLE),
    );
  });

  it('property: bits(fromBits(w)) === w for every word with bits 12..51 clear', () => {
    fc.assert(
      fc.property(validWord, (w) => {
        const r = PageTableFlags.fromBits(w);
        expect(r.ok).toBe(true);
        if (r.ok) expect(PageTableFlags.bits(r.value)).toBe(w);
      }),
      { numRuns: 2000 },
    );
  });

  it('property: fromBits(bits(f)) === f for every flag set; bits never touch 12..51', () => {
    fc.assert(
      fc.property(anyFlags, (f) => {
        const b = PageTableFlags.bits(f);
        expect(b & ADDRESS_BITS).toBe(0n);
        expect(PageTableFlags.fromBits(b)).toEqual({ ok: true, value: f });
        expect(PageTableFlags.fromBitsTruncate(b)).toBe(f);
      }),
      { numRuns: 2000 },
    );
  });

  it('property: fromBits fails exactly when an address bit is set; fromBitsTruncate = fromBits(w & ~mask)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: U64_MAX }), (w) => {
        expect(PageTableFlags.fromBits(w).ok).toBe((w & ADDRESS_BITS) === 0n);
        const t = PageTableFlags.fromBitsTruncate(w);
        expect(PageTableFlags.bits(t)).toBe(w & ~ADDRESS_BITS);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('PageTableFlags set operations', () => {
  const { PRESENT, WRITABLE, USER_ACCESSIBLE, NO_EXECUTE, HUGE_PAGE, BIT_52 } = PageTableFlags;

  it('of, contains, difference, intersection', () => {
    const pw = PageTableFlags.of(PRESENT, WRITABLE);
    expect(PageTableFlags.of()).toBe(PageTableFlags.empty);
    expect(PageTableFlags.bits(pw)).toBe(0x3n);
    expect(PageTableFlags.bits(PageTableFlags.of(PRESENT, NO_EXECUTE))).toBe(
      0x8000_0000_0000_0001n,
    );
    expect(PageTableFlags.contains(pw, PRESENT)).toBe(true);
    expect(PageTableFlags.contains(pw, pw)).toBe(true);
    expect(PageTableFlags.contains(pw, PageTableFlags.empty)).toBe(true);
    expect(PageTableFlags.contains(pw, NO_EXECUTE)).toBe(false);
    expect(PageTableFlags.contains(PRESENT, pw)).toBe(false);
    expect(
      PageTableFlags.difference(PageTableFlags.of(PRESENT, NO_EXECUTE, BIT_52), NO_EXECUTE),
    ).toBe(PageTableFlags.of(PRESENT, BIT_52));
    expect(PageTableFlags.difference(PageTableFlags.all, PageTableFlags.all)).toBe(
      PageTableFlags.empty,
    );
    expect(
      PageTableFlags.intersection(
        PageTableFlags.of(PRESENT, NO_EXECUTE),
        PageTableFlags.of(NO_EXECUTE, HUGE_PAGE),
      ),
    ).toBe(NO_EXECUTE);
  });

  it('property: difference/intersection agree with the 64-bit form', () => {
    fc.assert(
      fc.property(anyFlags, anyFlags, (a, b) => {
        const A = PageTableFlags.bits(a);
        const B = PageTableFlags.bits(b);
        expect(PageTableFlags.bits(PageTableFlags.of(a, b))).toBe(A | B);
        expect(PageTableFlags.bits(PageTableFlags.intersection(a, b))).toBe(A & B);
        expect(PageTableFlags.bits(PageTableFlags.difference(a, b))).toBe(A & ~B);
        expect(PageTableFlags.contains(a, b)).toBe((A & B) === B);
        const d = PageTableFlags.difference(a, b);
        expect(d >= 0 && d <= 0xffffff).toBe(true);
      }),
    );
  });

  it('PARENT_FLAGS_MASK is PRESENT | WRITABLE | USER_ACCESSIBLE', () => {
    expect(PARENT_FLAGS_MASK).toBe(PageTableFlags.of(PRESENT, WRITABLE, USER_ACCESSIBLE));
    expect(PageTableFlags.bits(PARENT_FLAGS_MASK)).toBe(0x7n);
  });
});

describe('PageTableFlags.names', () => {
  it('lists set bits low first, joined with |', () => {
    const { PRESENT, WRITABLE, NO_EXECUTE, BIT_9, BIT_62 } = PageTableFlags;
    expect(PageTableFlags.names(PageTableFlags.empty)).toBe('(empty)');
    expect(PageTableFlags.names(PageTableFlags.of(NO_EXECUTE, WRITABLE, PRESENT))).toBe(
      'PRESENT | WRITABLE | NO_EXECUTE',
    );
    expect(PageTableFlags.names(PageTableFlags.of(BIT_62, BIT_9))).toBe('BIT_9 | BIT_62');
    expect(PageTableFlags.names(PageTableFlags.all)).toBe(NAMED_BITS.map(([n]) => n).join(' | '));
  });
});

describe('PageTableFlags entry-word helpers', () => {
  it('split flags into the low word (bits 0..11) and the high word (bits 20..31 = entry 52..63)', () => {
    const f = PageTableFlags.of(
      PageTableFlags.PRESENT,
      PageTableFlags.GLOBAL,
      PageTableFlags.BIT_52,
      PageTableFlags.NO_EXECUTE,
    );
    expect(PageTableFlags.entryLoBits(f)).toBe(0x101);
    expect(PageTableFlags.entryHiBits(f)).toBe(0x8010_0000);
    expect(PageTableFlags.fromEntryWords(0xffff_f101, 0x801f_ffff)).toBe(f);
    expect(PageTableFlags.entryHiBits(PageTableFlags.all)).toBe(0xfff0_0000);
    expect(PageTableFlags.entryLoBits(PageTableFlags.all)).toBe(0xfff);
  });

  it('property: fromEntryWords agrees with fromBitsTruncate on the joined word', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffff_ffff }),
        fc.integer({ min: 0, max: 0xffff_ffff }),
        (lo, hi) => {
          const word = (BigInt(hi) << 32n) | BigInt(lo);
          expect(PageTableFlags.fromEntryWords(lo, hi)).toBe(PageTableFlags.fromBitsTruncate(word));
        },
      ),
    );
  });

  it('property: entryLoBits/entryHiBits rebuild bits()', () => {
    fc.assert(
      fc.property(anyFlags, (f) => {
        const lo = PageTableFlags.entryLoBits(f);
        const hi = PageTableFlags.entryHiBits(f);
        expect(lo >= 0 && hi >= 0).toBe(true);
        expect((BigInt(hi) << 32n) | BigInt(lo)).toBe(PageTableFlags.bits(f));
        expect(PageTableFlags.fromEntryWords(lo, hi)).toBe(f);
      }),
    );
  });
});
