import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PhysAddr } from '../../src/addr.ts';
import { PhysFrame } from '../../src/paging/frame.ts';
import { AddressNotAligned } from '../../src/paging/page.ts';
import { type AnyPageSize, Size1GiB, Size2MiB, Size4KiB } from '../../src/paging/page-size.ts';

const TWO_POW_52 = 2 ** 52;
const p = (x: number) => PhysAddr.new(x);
const addrs = (it: Iterable<PhysFrame<AnyPageSize>>) =>
  [...it].map((f) => f.startAddress as number);

function frame<S extends AnyPageSize>(x: number, size: S): PhysFrame<S> {
  const r = PhysFrame.fromStartAddress(p(x), size);
  if (!r.ok) throw r.error;
  return r.value;
}

const physAddr = fc.bigInt({ min: 0n, max: (1n << 52n) - 1n }).map(Number);
const anySize = fc.constantFrom<AnyPageSize>(Size4KiB, Size2MiB, Size1GiB);

describe('PhysFrame.fromStartAddress', () => {
  const aligned: [AnyPageSize, number[]][] = [
    [Size4KiB, [0, 0x1000, 0x12_3000, TWO_POW_52 - 0x1000]],
    [Size2MiB, [0, 0x20_0000, 0x1_0020_0000, TWO_POW_52 - 0x20_0000]],
    [Size1GiB, [0, 0x4000_0000, 0x3_c000_0000, TWO_POW_52 - 0x4000_0000]],
  ];
  it.each(aligned)('accepts addresses aligned to %o', (size, list) => {
    for (const a of list) {
      const r = PhysFrame.fromStartAddress(p(a), size);
      expect(r.ok, a.toString(16)).toBe(true);
      if (!r.ok) continue;
      expect(r.value.startAddress).toBe(a);
      expect(r.value.size).toBe(size);
    }
  });

  const misaligned: [AnyPageSize, number[]][] = [
    [Size4KiB, [1, 0x800, 0xfff, 0x1008, TWO_POW_52 - 1]],
    [Size2MiB, [0x1000, 0x10_0000, 0x1f_f000, 0x20_1000, TWO_POW_52 - 0x1000]],
    [Size1GiB, [0x1000, 0x20_0000, 0x2000_0000, 0x4020_0000, TWO_POW_52 - 0x20_0000]],
  ];
  it.each(misaligned)(
    'rejects addresses not aligned to %o with AddressNotAligned',
    (size, list) => {
      for (const a of list) {
        const r = PhysFrame.fromStartAddress(p(a), size);
        expect(r.ok, a.toString(16)).toBe(false);
        if (r.ok) continue;
        expect(r.error).toBeInstanceOf(AddressNotAligned);
        expect(r.error.size).toBe(size);
        expect(r.error.address).toBe(`0x${a.toString(16)}`);
        expect(r.error.message).toContain(size.name);
      }
    },
  );

  it('property: succeeds exactly for multiples of the size', () => {
    fc.assert(
      fc.property(physAddr, anySize, (a, size) => {
        expect(PhysFrame.fromStartAddress(p(a), size).ok).toBe(a % size.bytes === 0);
      }),
      { numRuns: 2000 },
    );
  });

  it('fromStartAddressUnchecked builds the frame as given', () => {
    const f = PhysFrame.fromStartAddressUnchecked(p(0x3000), Size4KiB);
    expect(f.startAddress).toBe(0x3000);
    expect(f.size).toBe(Size4KiB);
  });
});

describe('PhysFrame.containingAddress', () => {
  it('aligns down for every size', () => {
    expect(PhysFrame.containingAddress(p(0x1fff), Size4KiB).startAddress).toBe(0x1000);
    expect(PhysFrame.containingAddress(p(0x3f_ffff), Size2MiB).startAddress).toBe(0x20_0000);
    expect(PhysFrame.containingAddress(p(0x7fff_ffff), Size1GiB).startAddress).toBe(0x4000_0000);
    expect(PhysFrame.containingAddress(p(TWO_POW_52 - 1), Size4KiB).startAddress).toBe(
      TWO_POW_52 - 0x1000,
    );
    expect(PhysFrame.containingAddress(p(TWO_POW_52 - 1), Size1GiB).startAddress).toBe(
      TWO_POW_52 - 2 ** 30,
    );
    expect(PhysFrame.containingAddress(p(5), Size2MiB).size).toBe(Size2MiB);
  });

  it('property: the frame contains the address and starts aligned', () => {
    fc.assert(
      fc.property(physAddr, anySize, (a, size) => {
        const f = PhysFrame.containingAddress(p(a), size);
        expect(f.startAddress % size.bytes).toBe(0);
        expect(f.startAddress <= a && a < f.startAddress + size.bytes).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('PhysFrame arithmetic, equality, printing', () => {
  it('add moves by whole frames and throws at 2^52', () => {
    expect(frame(0x1000, Size4KiB).add(2).startAddress).toBe(0x3000);
    expect(frame(0, Size2MiB).add(3).startAddress).toBe(0x60_0000);
    expect(frame(0, Size2MiB).add(3).size).toBe(Size2MiB);
    expect(frame(TWO_POW_52 - 0x2000, Size4KiB).add(1).startAddress).toBe(TWO_POW_52 - 0x1000);
    expect(() => frame(TWO_POW_52 - 0x1000, Size4KiB).add(1)).toThrow(RangeError);
    expect(() => frame(TWO_POW_52 - 2 ** 30, Size1GiB).add(1)).toThrow(RangeError);
    expect(() => frame(0, Size4KiB).add(-1)).toThrow(RangeError);
  });

  it('equals compares address and size', () => {
    expect(frame(0x1000, Size4KiB).equals(frame(0x1000, Size4KiB))).toBe(true);
    expect(frame(0x1000, Size4KiB).equals(frame(0x2000, Size4KiB))).toBe(false);
    expect(frame(0, Size4KiB).equals(frame(0, Size1GiB))).toBe(false);
  });

  it('toString', () => {
    expect(frame(0x20_0000, Size2MiB).toString()).toBe('PhysFrame[2MiB](0x200000)');
    expect(frame(0, Size4KiB).toString()).toBe('PhysFrame[4KiB](0x0)');
  });
});

describe('PhysFrameRange / PhysFrameRangeInclusive', () => {
  it('half-open range: iteration, length, bytes', () => {
    const r = PhysFrame.range(frame(0x1000, Size4KiB), frame(0x4000, Size4KiB));
    expect(r.inclusive).toBe(false);
    expect(r.length).toBe(3);
    expect(r.bytes).toBe(3 * 4096);
    expect(addrs(r)).toEqual([0x1000, 0x2000, 0x3000]);
    expect([...r].every((f) => f.size === Size4KiB)).toBe(true);
  });

  it('half-open range is empty when start >= end', () => {
    for (const [s, e] of [
      [0x1000, 0x1000],
      [0x5000, 0x1000],
    ] as const) {
      const r = PhysFrame.range(frame(s, Size4KiB), frame(e, Size4KiB));
      expect(r.isEmpty()).toBe(true);
      expect(r.length).toBe(0);
      expect(addrs(r)).toEqual([]);
    }
  });

  it('inclusive range: single frame, empty only when start > end', () => {
    const one = PhysFrame.rangeInclusive(frame(0x1000, Size4KiB), frame(0x1000, Size4KiB));
    expect(one.isEmpty()).toBe(false);
    expect(one.length).toBe(1);
    expect(addrs(one)).toEqual([0x1000]);
    const none = PhysFrame.rangeInclusive(frame(0x2000, Size4KiB), frame(0x1000, Size4KiB));
    expect(none.isEmpty()).toBe(true);
    expect(none.length).toBe(0);
    expect(addrs(none)).toEqual([]);
  });

  it('inclusive range reaches the top frame below 2^52', () => {
    const top = frame(TWO_POW_52 - 0x1000, Size4KiB);
    const r = PhysFrame.rangeInclusive(frame(TWO_POW_52 - 0x3000, Size4KiB), top);
    expect(r.length).toBe(3);
    expect(addrs(r)).toEqual([TWO_POW_52 - 0x3000, TWO_POW_52 - 0x2000, TWO_POW_52 - 0x1000]);
    const g = PhysFrame.rangeInclusive(
      frame(TWO_POW_52 - 2 ** 31, Size1GiB),
      frame(TWO_POW_52 - 2 ** 30, Size1GiB),
    );
    expect(addrs(g)).toEqual([TWO_POW_52 - 2 ** 31, TWO_POW_52 - 2 ** 30]);
  });

  it('huge-frame ranges step by their size', () => {
    const r = PhysFrame.range(frame(0, Size2MiB), frame(0x80_0000, Size2MiB));
    expect(addrs(r)).toEqual([0, 0x20_0000, 0x40_0000, 0x60_0000]);
    expect(r.bytes).toBe(0x80_0000);
  });

  it('property: inclusive length is exclusive length + 1 for the same non-empty bounds', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 30 }), fc.integer({ min: 0, max: 64 }), (s, n) => {
        const a = frame(s * 4096, Size4KiB);
        const b = frame((s + n) * 4096, Size4KiB);
        expect(PhysFrame.range(a, b).length).toBe(n);
        expect(PhysFrame.rangeInclusive(a, b).length).toBe(n + 1);
        expect(addrs(PhysFrame.rangeInclusive(a, b))).toEqual(
          Array.from({ length: n + 1 }, (_, i) => (s + i) * 4096),
        );
      }),
    );
  });
});
