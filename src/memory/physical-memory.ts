/**
 * `PhysicalMemory`: simulated RAM over one `SharedArrayBuffer`, shared by every CPU thread.
 *
 * Data accesses are bounds-checked and never wrap. Page-table entries are 64-bit words accessed
 * atomically: every write and every read is one 64-bit `Atomics` operation on a `BigUint64Array`
 * view. Reads hand the entry out as two 32-bit halves without BigInt arithmetic: the loaded value
 * is stored into a private 8-byte scratch buffer and read back as two `Uint32` words (one
 * `Atomics.load` plus two plain reads, about 8 ns here, against 17 ns for the three 32-bit
 * `Atomics.load`s of a validated pair, and 30 ns for splitting the BigInt with `&` and `>>`).
 */

import { hex } from '../addr.ts';

/** Why a physical-memory call was refused. */
export type MemoryErrorKind =
  /** The access touches bytes at or beyond the end of RAM. */
  | 'OutOfRange'
  /** An entry access whose address is not a multiple of 8. */
  | 'Misaligned'
  /** A RAM size of 0, not a whole number of 4 KiB frames, or more than the host can allocate. */
  | 'InvalidSize';

/** A refused physical-memory access or construction; the message names the address and rule. */
export class MemoryError extends Error {
  override readonly name = 'MemoryError';
  constructor(
    readonly kind: MemoryErrorKind,
    message: string,
    /** The offending physical address, where there is one. */
    readonly address?: number,
  ) {
    super(message);
  }
}

/** An access width in bytes. */
export type Width = 1 | 2 | 4 | 8;

const FRAME_BYTES = 4096;
/**
 * The largest RAM: V8 (Node 20) cannot make a typed-array view longer than 2^32 elements, and a
 * Uint8Array view covers every byte.
 */
export const MAX_RAM_BYTES = 2 ** 32;

// Entry words are split into halves by index (lo = 2k, hi = 2k + 1), which assumes a
// little-endian host, as every platform Node runs SharedArrayBuffer on today.
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

// Element indices are taken with `addr >>> 3` (`>>> 2`), not `addr / 8`: every address that
// reaches an Atomics call is below `bytes` <= 2^32 (MAX_RAM_BYTES), where the unsigned shift is
// exact, and an integer shift spares the JIT a double division and an is-integer check per access.

/**
 * Physical RAM. Construct with a byte size, or wrap an existing buffer (`fromBuffer`) on another
 * thread: both sides then see the same bytes.
 */
export class PhysicalMemory {
  /** RAM size in bytes; a whole number of 4 KiB frames. */
  readonly bytes: number;
  /** The shared buffer; post it to a worker and wrap it there with `fromBuffer`. */
  readonly buffer: SharedArrayBuffer;
  private readonly u8: Uint8Array;
  private readonly u16: Uint16Array;
  private readonly i32: Int32Array;
  private readonly u64: BigUint64Array;
  private readonly view: DataView;
  // Scratch for splitting a loaded entry into halves: e32[0] = bits 0..31, e32[1] = bits 32..63
  // (little-endian host, checked in the constructor).
  private readonly e64 = new BigUint64Array(1);
  private readonly e32 = new Uint32Array(this.e64.buffer);

  constructor(bytesOrBuffer: number | SharedArrayBuffer) {
    if (!LITTLE_ENDIAN) throw new Error('smpsim needs a little-endian host');
    let buffer: SharedArrayBuffer;
    if (typeof bytesOrBuffer === 'number') {
      const n = bytesOrBuffer;
      if (Number.isSafeInteger(n) && n > MAX_RAM_BYTES) {
        throw new MemoryError(
          'InvalidSize',
          `RAM size ${hex(n)} is too large: this host supports at most ${hex(MAX_RAM_BYTES)} bytes (4 GiB, the longest typed array)`,
        );
      }
      if (!Number.isSafeInteger(n) || n <= 0 || n % FRAME_BYTES !== 0) {
        throw new MemoryError(
          'InvalidSize',
          `RAM size ${n} is not valid: it must be a positive multiple of 4096 bytes (whole 4 KiB frames)`,
        );
      }
      try {
        buffer = new SharedArrayBuffer(n);
      } catch (e) {
        throw new MemoryError(
          'InvalidSize',
          `RAM size ${hex(n)} (${n} bytes) could not be allocated by this host: ${(e as Error).message}`,
        );
      }
    } else {
      buffer = bytesOrBuffer;
      if (
        buffer.byteLength === 0 ||
        buffer.byteLength % FRAME_BYTES !== 0 ||
        buffer.byteLength > MAX_RAM_BYTES
      ) {
        throw new MemoryError(
          'InvalidSize',
          `buffer of ${buffer.byteLength} bytes is not whole 4 KiB frames between 4 KiB and 4 GiB`,
        );
      }
    }
    this.buffer = buffer;
    this.bytes = buffer.byteLength;
    this.u8 = new Uint8Array(buffer);
    this.u16 = new Uint16Array(buffer);
    this.i32 = new Int32Array(buffer);
    this.u64 = new BigUint64Array(buffer);
    this.view = new DataView(buffer);
  }

  /** Wraps a buffer created by another `PhysicalMemory` (typically on another thread). */
  static fromBuffer(buffer: SharedArrayBuffer): PhysicalMemory {
    return new PhysicalMemory(buffer);
  }

  /** True if `[addr, addr + width)` lies inside RAM. */
  contains(addr: number, width = 1): boolean {
    return addr >= 0 && Number.isInteger(addr) && addr + width <= this.bytes;
  }

  private check(addr: number, width: number): void {
    if (!(addr >= 0 && addr + width <= this.bytes && Number.isInteger(addr))) {
      throw new MemoryError(
        'OutOfRange',
        `physical access of ${width} byte(s) at ${Number.isSafeInteger(addr) && addr >= 0 ? hex(addr) : String(addr)} is outside RAM [0x0, ${hex(this.bytes)})`,
        addr,
      );
    }
  }

  private checkEntry(addr: number): void {
    this.check(addr, 8);
    // `& 7`, not `% 8`: on a double `%` is an fmod call (16 ns measured), `&` keeps the low bits.
    if ((addr & 7) !== 0) {
      throw new MemoryError(
        'Misaligned',
        `page-table entry address ${hex(addr)} is not 8-byte aligned`,
        addr,
      );
    }
  }

  // ---- data plane: loads and stores of 1/2/4/8 bytes -------------------------------------------

  /**
   * Reads `width` bytes (little-endian) as an unsigned number; widths 1, 2, 4 only (use `read64`
   * for 8). Naturally aligned accesses are single `Atomics` loads, so a racing store on another
   * thread is seen whole or not at all, as on x86; unaligned ones are assembled byte by byte.
   */
  read(addr: number, width: 1 | 2 | 4): number {
    this.check(addr, width);
    if ((addr & (width - 1)) === 0) {
      if (width === 1) return Atomics.load(this.u8, addr);
      if (width === 2) return Atomics.load(this.u16, addr >>> 1);
      return Atomics.load(this.i32, addr >>> 2) >>> 0;
    }
    return width === 2 ? this.view.getUint16(addr, true) : this.view.getUint32(addr, true);
  }

  /** Writes the low `width` bytes of `value` (widths 1, 2, 4); aligned stores are atomic. */
  write(addr: number, width: 1 | 2 | 4, value: number): void {
    this.check(addr, width);
    if ((addr & (width - 1)) === 0) {
      if (width === 1) Atomics.store(this.u8, addr, value);
      else if (width === 2) Atomics.store(this.u16, addr >>> 1, value);
      else Atomics.store(this.i32, addr >>> 2, value | 0);
      return;
    }
    if (width === 2) this.view.setUint16(addr, value, true);
    else this.view.setUint32(addr, value >>> 0, true);
  }

  /** Reads 8 bytes as an unsigned 64-bit value; atomic when 8-byte aligned. */
  read64(addr: number): bigint {
    this.check(addr, 8);
    return (addr & 7) === 0
      ? Atomics.load(this.u64, addr >>> 3)
      : this.view.getBigUint64(addr, true);
  }

  /** Writes an unsigned 64-bit value (taken modulo 2^64); atomic when 8-byte aligned. */
  write64(addr: number, value: bigint): void {
    this.check(addr, 8);
    const v = BigInt.asUintN(64, value);
    if ((addr & 7) === 0) Atomics.store(this.u64, addr >>> 3, v);
    else this.view.setBigUint64(addr, v, true);
  }

  /** Reads any width as a bigint (the scenario register form). */
  readValue(addr: number, width: Width): bigint {
    return width === 8 ? this.read64(addr) : BigInt(this.read(addr, width));
  }

  /** Writes any width from a bigint (truncated to the width). */
  writeValue(addr: number, width: Width, value: bigint): void {
    if (width === 8) this.write64(addr, value);
    else this.write(addr, width, Number(BigInt.asUintN(width * 8, value)));
  }

  /** Copies bytes out of RAM (bounds-checked). */
  readBytes(addr: number, length: number): Uint8Array {
    this.check(addr, length);
    return this.u8.slice(addr, addr + length);
  }

  /** Copies bytes into RAM (bounds-checked). */
  writeBytes(addr: number, bytes: Uint8Array): void {
    this.check(addr, bytes.length);
    this.u8.set(bytes, addr);
  }

  /** Zeroes one 4 KiB frame; `addr` must be its 4 KiB-aligned start. */
  zeroFrame(addr: number): void {
    this.check(addr, FRAME_BYTES);
    if (addr % FRAME_BYTES !== 0) {
      throw new MemoryError('Misaligned', `frame address ${hex(addr)} is not 4 KiB aligned`, addr);
    }
    // Entry by entry with Atomics so that a walker on another thread never sees a torn entry.
    const first = addr >>> 3;
    for (let i = 0; i < 512; i++) Atomics.store(this.u64, first + i, 0n);
  }

  // ---- page-table entries: atomic 64-bit words ------------------------------------------------

  /**
   * Loads the entry at `addr` as its two unsigned 32-bit halves into `out[0]` (bits 0..31) and
   * `out[1]` (bits 32..63), without allocating a result. Atomic as a whole: it is one 64-bit
   * `Atomics.load`, so both halves are those of one value the entry held at one instant.
   */
  loadEntryWords(addr: number, out: Uint32Array): void {
    this.checkEntry(addr);
    this.loadEntryWordsUnchecked(addr, out);
  }

  /**
   * `loadEntryWords` without the range and alignment checks, for walkers that already checked the
   * table: `addr` must be 8-byte aligned and inside RAM (past the end, Atomics throws a bare
   * RangeError; a misaligned address reads the entry it falls in).
   */
  loadEntryWordsUnchecked(addr: number, out: Uint32Array): void {
    // One 64-bit atomic load: ECMAScript's memory model makes an aligned Atomics access of one
    // BigUint64Array element a single tear-free event (ECMA-262 §29, "tear free" reads), and
    // every writer below stores all 64 bits at once, so a walker on another thread can never
    // combine halves of two different values. (Three 32-bit loads, low/high/low with a retry, did
    // not guarantee that: a low half that changed and changed back between the two low reads let
    // the high half of another value through; test/memory/physical-memory.test.ts races it.) The
    // scratch buffer is private to this object and this thread, and nothing runs between the
    // store and the two reads, so it needs no synchronisation.
    this.e64[0] = Atomics.load(this.u64, addr >>> 3);
    out[0] = this.e32[0]!;
    out[1] = this.e32[1]!;
  }

  /** The 64-bit value of two 32-bit halves, built in the scratch buffer (no BigInt arithmetic). */
  private joinWords(lo: number, hi: number): bigint {
    // 0n is a constant: the common zero (an unused entry) allocates nothing.
    if ((lo | hi) === 0) return 0n;
    this.e32[0] = lo;
    this.e32[1] = hi;
    return this.e64[0]!;
  }

  /** Loads the entry at `addr` as a 64-bit bigint (convenient; allocates). */
  loadEntry(addr: number): bigint {
    this.checkEntry(addr);
    return Atomics.load(this.u64, addr >>> 3);
  }

  /** Stores a whole entry from its halves, as one 64-bit atomic store. */
  storeEntryWords(addr: number, lo: number, hi: number): void {
    this.checkEntry(addr);
    Atomics.store(this.u64, addr >>> 3, this.joinWords(lo, hi));
  }

  /** Stores a whole entry from a 64-bit value, atomically. */
  storeEntry(addr: number, value: bigint): void {
    this.checkEntry(addr);
    Atomics.store(this.u64, addr >>> 3, BigInt.asUintN(64, value));
  }

  /**
   * Atomically replaces the entry if it still equals `expected`; returns the value it held (equal
   * to `expected` exactly when the exchange happened), like `Atomics.compareExchange`.
   */
  compareExchangeEntry(addr: number, expected: bigint, replacement: bigint): bigint {
    this.checkEntry(addr);
    return Atomics.compareExchange(
      this.u64,
      addr >>> 3,
      BigInt.asUintN(64, expected),
      BigInt.asUintN(64, replacement),
    );
  }

  /** The halves form of `compareExchangeEntry`; returns true when the exchange happened. */
  compareExchangeEntryWords(
    addr: number,
    expLo: number,
    expHi: number,
    newLo: number,
    newHi: number,
  ): boolean {
    this.checkEntry(addr);
    const expected = this.joinWords(expLo, expHi);
    return (
      Atomics.compareExchange(this.u64, addr >>> 3, expected, this.joinWords(newLo, newHi)) ===
      expected
    );
  }

  /** Atomically ORs `bits` into the entry and returns the previous value. */
  fetchOrEntry(addr: number, bits: bigint): bigint {
    this.checkEntry(addr);
    return Atomics.or(this.u64, addr >>> 3, BigInt.asUintN(64, bits));
  }
}

/** Joins two unsigned 32-bit halves into one 64-bit bigint. */
export function wordsToBigInt(lo: number, hi: number): bigint {
  return hi === 0 ? BigInt(lo >>> 0) : (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}
