/**
 * `TraceRing`: one CPU's single-producer, single-consumer ring of trace records in a
 * `SharedArrayBuffer` (the ringbuf.js shape: the same class over the same buffer on both sides).
 *
 * The writer never blocks: when the reader falls behind by more than the capacity, the oldest
 * records are overwritten and the reader reports exactly how many it lost.
 */

import {
  F_A,
  F_B,
  F_C,
  F_CPU,
  F_D,
  F_KIND,
  F_SEQ,
  F_STEP,
  RECORD_WORDS,
  type TraceKind,
} from './record.ts';

const HEAD_MODULUS = 2 ** 31;

function checkCapacity(capacity: number): void {
  if (!Number.isInteger(capacity) || capacity < 1) {
    throw new RangeError(`trace ring capacity ${capacity} must be a positive integer`);
  }
}

/** A decoded record. */
export interface TraceRecord {
  readonly seq: number;
  readonly kind: TraceKind;
  readonly cpu: number;
  readonly step: number;
  readonly a: number;
  readonly b: number;
  readonly c: number;
  readonly d: number;
}

/** What `drain` returns: the records in order, and how many were overwritten before being read. */
export interface Drained {
  readonly records: TraceRecord[];
  readonly lost: number;
}

/** A ring of fixed-size records; `capacity` records of `RECORD_WORDS` doubles. */
export class TraceRing {
  readonly capacity: number;
  readonly buffer: SharedArrayBuffer;
  /** Where in `buffer` the ring starts (a machine's rings live in its control block). */
  readonly byteOffset: number;
  // [0] = records written so far, modulo 2^31 (an Int32 word, because Atomics has no Float64);
  // the reader reconstructs the full count from its own, so it may lag by up to 2^31 records.
  private readonly head: Int32Array;
  private readonly data: Float64Array;
  private tail = 0; // reader side only
  private written = 0; // writer side only: mirrors head without an atomic read

  private constructor(buffer: SharedArrayBuffer, byteOffset: number, capacity: number) {
    this.buffer = buffer;
    this.byteOffset = byteOffset;
    this.head = new Int32Array(buffer, byteOffset, 2);
    this.data = new Float64Array(buffer, byteOffset + 8, capacity * RECORD_WORDS);
    this.capacity = capacity;
    this.written = Atomics.load(this.head, 0);
    this.tail = this.written;
  }

  /** A new ring for `capacity` records (at least 1), in a buffer of its own. */
  static create(capacity: number): TraceRing {
    checkCapacity(capacity);
    return new TraceRing(new SharedArrayBuffer(TraceRing.bytes(capacity)), 0, capacity);
  }

  /** Bytes a ring of `capacity` records takes: an 8-byte head, then the records. */
  static bytes(capacity: number): number {
    return 8 + capacity * RECORD_WORDS * 8;
  }

  /** Wraps a ring created elsewhere (typically on another thread); it reads from the current head
   * on, so records pushed before it was made are neither returned nor counted as lost. */
  static fromBuffer(buffer: SharedArrayBuffer): TraceRing {
    return new TraceRing(buffer, 0, (buffer.byteLength - 8) / (RECORD_WORDS * 8));
  }

  /**
   * The ring of `capacity` records at `byteOffset` (a multiple of 8) of `buffer`, such as a CPU's
   * ring in a machine's control block (smp/layout.ts); like `fromBuffer`, it reads from the
   * current head on.
   */
  static over(buffer: SharedArrayBuffer, byteOffset: number, capacity: number): TraceRing {
    checkCapacity(capacity);
    if (
      !Number.isInteger(byteOffset) ||
      byteOffset % 8 !== 0 ||
      byteOffset < 0 ||
      byteOffset + TraceRing.bytes(capacity) > buffer.byteLength
    ) {
      throw new RangeError(
        `trace ring at byte ${byteOffset} of ${capacity} records does not fit a ${buffer.byteLength}-byte buffer at an 8-byte boundary`,
      );
    }
    return new TraceRing(buffer, byteOffset, capacity);
  }

  /** Appends one record. Writer side only. */
  push(
    kind: TraceKind,
    cpu: number,
    step: number,
    a: number,
    b: number,
    c: number,
    d: number,
  ): void {
    const seq = this.written;
    const base = (seq % this.capacity) * RECORD_WORDS;
    const data = this.data;
    data[base + F_SEQ] = seq;
    data[base + F_KIND] = kind;
    data[base + F_CPU] = cpu;
    data[base + F_STEP] = step;
    data[base + F_A] = a;
    data[base + F_B] = b;
    data[base + F_C] = c;
    data[base + F_D] = d;
    this.written = seq + 1;
    // Publishes the record: the reader loads head with Atomics before reading the fields.
    Atomics.store(this.head, 0, this.written % HEAD_MODULUS);
  }

  /** Records written so far. */
  get count(): number {
    return this.written;
  }

  /** Everything written since the last drain, oldest first. Reader side only. */
  drain(): Drained {
    // Pairs with the Atomics.store in push: records below head are complete.
    const headMod = Atomics.load(this.head, 0);
    const head = this.tail + ((headMod - (this.tail % HEAD_MODULUS) + HEAD_MODULUS) % HEAD_MODULUS);
    let from = this.tail;
    let lost = 0;
    if (head - from > this.capacity) {
      lost = head - from - this.capacity;
      from = head - this.capacity;
    }
    const records: TraceRecord[] = [];
    for (let s = from; s < head; s++) {
      const base = (s % this.capacity) * RECORD_WORDS;
      const d = this.data;
      // The writer may lap the reader while it copies (it writes seq first, then the fields): a
      // record whose sequence number is not `s` before and after the copy was overwritten, and
      // counts as lost rather than being reported with mixed fields.
      if (d[base + F_SEQ] !== s) {
        lost++;
        continue;
      }
      const record: TraceRecord = {
        seq: s,
        kind: d[base + F_KIND]! as TraceKind,
        cpu: d[base + F_CPU]!,
        step: d[base + F_STEP]!,
        a: d[base + F_A]!,
        b: d[base + F_B]!,
        c: d[base + F_C]!,
        d: d[base + F_D]!,
      };
      if (d[base + F_SEQ] !== s) {
        lost++;
        continue;
      }
      records.push(record);
    }
    this.tail = head;
    return { records, lost };
  }
}
