/**
 * Virtual and physical addresses (the crate's `src/addr.rs`).
 *
 * Both are branded `number`s, so hot paths never allocate: a physical address is below 2^52 and a
 * canonical virtual address is fully determined by its low 48 bits (bits 48..63 copy bit 47), and
 * both fit a double exactly. The 64-bit canonical form exists only at the edges (`toBigInt`, hex).
 */

import { err, ok, type Result } from './result.ts';

declare const virtBrand: unique symbol;
declare const physBrand: unique symbol;

/**
 * A canonical x86_64 virtual address, stored as its low 48 bits (0 ≤ value < 2^48).
 *
 * Invariant: always canonical. Higher-half addresses (`0xffff_8000_0000_0000..`) are stored as
 * `0x8000_0000_0000..0xffff_ffff_ffff`; `VirtAddr.toBigInt` restores the sign extension.
 */
export type VirtAddr = number & { readonly [virtBrand]: 'VirtAddr' };

/** A physical address below 2^52 (the architectural MAXPHYADDR limit the crate enforces). */
export type PhysAddr = number & { readonly [physBrand]: 'PhysAddr' };

/** 2^32, for splitting addresses into 32-bit halves without 32-bit-truncating operators. */
export const TWO_POW_32 = 4294967296;
const TWO_POW_47 = 2 ** 47;
const TWO_POW_48 = 2 ** 48;
const TWO_POW_52 = 2 ** 52;
const LOW_48_MASK = (1n << 48n) - 1n;
const LOW_52_MASK = (1n << 52n) - 1n;
const U64_MASK = (1n << 64n) - 1n;

/** Lowercase hex with `0x` and no leading zeros, the form every output format uses. */
export function hex(value: bigint | number): string {
  return `0x${value.toString(16)}`;
}

/** The error of `VirtAddr.tryNew`: bits 48..63 of the value are not copies of bit 47. */
export class VirtAddrNotValid extends Error {
  override readonly name = 'VirtAddrNotValid';
  constructor(readonly value: bigint) {
    super(
      `virtual address ${hex(value)} is not canonical: bits 48..63 must all equal bit 47 (x86_64 48-bit sign extension)`,
    );
  }
}

/** The error of `PhysAddr.tryNew`: the value has bits 52..63 set. */
export class PhysAddrNotValid extends Error {
  override readonly name = 'PhysAddrNotValid';
  constructor(readonly value: bigint) {
    super(`physical address ${hex(value)} is not valid: it must be below 2^52 (bits 52..63 clear)`);
  }
}

/** Thrown when a `number` argument is not a non-negative safe integer (it could not be exact). */
export class NotAnInteger extends Error {
  override readonly name = 'NotAnInteger';
  constructor(
    readonly what: string,
    readonly value: number,
  ) {
    super(`${what} ${value} is not a non-negative safe integer: pass a bigint for large values`);
  }
}

function toU64(what: string, value: bigint | number): bigint {
  if (typeof value === 'bigint') {
    if (value < 0n || value > U64_MASK) {
      throw new RangeError(`${what} ${value} does not fit in 64 unsigned bits`);
    }
    return value;
  }
  if (!Number.isSafeInteger(value) || value < 0) throw new NotAnInteger(what, value);
  return BigInt(value);
}

/** Constructors and conversions of `VirtAddr` (the crate's `VirtAddr::new`, `try_new`, …). */
export const VirtAddr = {
  /** The canonical zero address. */
  zero: 0 as VirtAddr,

  /** Checked constructor: returns `VirtAddrNotValid` unless the 64-bit value is canonical. */
  tryNew(value: bigint | number): Result<VirtAddr, VirtAddrNotValid> {
    if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) {
      // A non-negative number below 2^47 is canonical as is; 2^47..2^64 as a number has bits
      // 48..63 clear while bit 47 (or higher) is set, which is never canonical.
      return value < TWO_POW_47 ? ok(value as VirtAddr) : err(new VirtAddrNotValid(BigInt(value)));
    }
    const v = toU64('virtual address', value);
    const low = v & LOW_48_MASK;
    const canonical = BigInt.asUintN(64, BigInt.asIntN(48, low));
    return canonical === v ? ok(Number(low) as VirtAddr) : err(new VirtAddrNotValid(v));
  },

  /** Like the crate's `VirtAddr::new`: throws `VirtAddrNotValid` on a non-canonical value. */
  new(value: bigint | number): VirtAddr {
    const r = VirtAddr.tryNew(value);
    if (!r.ok) throw r.error;
    return r.value;
  },

  /** The crate's `new_truncate`: sign-extends bit 47 over bits 48..63, discarding them. */
  newTruncate(value: bigint | number): VirtAddr {
    if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) {
      return (value % TWO_POW_48) as VirtAddr;
    }
    return Number(toU64('virtual address', value) & LOW_48_MASK) as VirtAddr;
  },

  /** Builds from the stored 48-bit form without checks (internal hot paths only). */
  newUnchecked(low48: number): VirtAddr {
    return low48 as VirtAddr;
  },

  /** The canonical 64-bit value (sign-extended), as the crate's `as_u64`. */
  toBigInt(addr: VirtAddr): bigint {
    return addr < TWO_POW_47 ? BigInt(addr) : BigInt(addr) | (~LOW_48_MASK & U64_MASK);
  },

  /** Lowercase hex of the canonical 64-bit value. */
  hex(addr: VirtAddr): string {
    return hex(VirtAddr.toBigInt(addr));
  },

  /** True for the upper half (`0xffff_8000_0000_0000` and above). */
  isHigherHalf(addr: VirtAddr): boolean {
    return addr >= TWO_POW_47;
  },

  /**
   * `addr + bytes`, throwing like the crate's `Add` impl when the result leaves the canonical
   * half it started in (there is no stepping over the non-canonical hole with `+`).
   */
  add(addr: VirtAddr, bytes: number): VirtAddr {
    const sum = VirtAddr.toBigInt(addr) + BigInt(bytes);
    const r = VirtAddr.tryNew(sum);
    if (!r.ok) throw new RangeError(`${VirtAddr.hex(addr)} + ${bytes} leaves the canonical range`);
    return r.value;
  },

  /** Aligns down to a power-of-two boundary; always stays canonical (bits 47.. are untouched). */
  alignDown(addr: VirtAddr, align: number): VirtAddr {
    return (addr - (addr % align)) as VirtAddr;
  },

  /** True if `addr` is a multiple of the power of two `align`. */
  isAligned(addr: VirtAddr, align: number): boolean {
    return addr % align === 0;
  },

  /** The 12-bit offset inside a 4 KiB page. */
  pageOffset(addr: VirtAddr): number {
    return addr % 4096;
  },
} as const;

/** Constructors and conversions of `PhysAddr`. */
export const PhysAddr = {
  zero: 0 as PhysAddr,

  /** Checked constructor: `PhysAddrNotValid` when the value is 2^52 or above. */
  tryNew(value: bigint | number): Result<PhysAddr, PhysAddrNotValid> {
    if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) {
      return value < TWO_POW_52 ? ok(value as PhysAddr) : err(new PhysAddrNotValid(BigInt(value)));
    }
    const v = toU64('physical address', value);
    return v <= LOW_52_MASK ? ok(Number(v) as PhysAddr) : err(new PhysAddrNotValid(v));
  },

  /** Like the crate's `PhysAddr::new`: throws `PhysAddrNotValid` at 2^52 or above. */
  new(value: bigint | number): PhysAddr {
    const r = PhysAddr.tryNew(value);
    if (!r.ok) throw r.error;
    return r.value;
  },

  /** The crate's `new_truncate`: reduces the value modulo 2^52. */
  newTruncate(value: bigint | number): PhysAddr {
    if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) {
      return (value % TWO_POW_52) as PhysAddr;
    }
    return Number(toU64('physical address', value) & LOW_52_MASK) as PhysAddr;
  },

  /** Builds without checks (internal hot paths only). */
  newUnchecked(value: number): PhysAddr {
    return value as PhysAddr;
  },

  toBigInt(addr: PhysAddr): bigint {
    return BigInt(addr);
  },

  hex(addr: PhysAddr): string {
    return hex(addr);
  },

  alignDown(addr: PhysAddr, align: number): PhysAddr {
    return (addr - (addr % align)) as PhysAddr;
  },

  isAligned(addr: PhysAddr, align: number): boolean {
    return addr % align === 0;
  },

  /** `addr + bytes`, throwing like the crate when the result reaches 2^52. */
  add(addr: PhysAddr, bytes: number): PhysAddr {
    const sum = addr + bytes;
    if (!Number.isSafeInteger(sum) || sum < 0 || sum >= TWO_POW_52) {
      throw new RangeError(`${hex(addr)} + ${bytes} is not a valid physical address (< 2^52)`);
    }
    return sum as PhysAddr;
  },
} as const;

/**
 * Parses a `0x…` hex string of at most 64 bits into a bigint, or returns undefined. Every input
 * format uses it, so all of them accept and reject the same spellings.
 */
export function parseHex(text: string): bigint | undefined {
  if (!/^0x[0-9a-fA-F]{1,64}$/.test(text)) return undefined;
  const value = BigInt(text);
  return value <= U64_MASK ? value : undefined;
}
