/**
 * Tests of `TraceRing` (src/trace/ring.ts), DESIGN decision 6: records come out in push order with
 * consecutive sequence numbers; a reader that falls behind by more than the capacity is told
 * exactly how many records it lost (no silent loss); the head counter kept modulo 2^31 wraps
 * without losing or duplicating records; a ring opened with `fromBuffer` over the same buffer sees
 * the same records.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RECORD_WORDS, TraceKind } from '../../src/trace/record.ts';
import { type TraceRecord, TraceRing } from '../../src/trace/ring.ts';

/** Pushes records numbered `from..to-1` (the number goes in `a`, and `step`). */
function pushRange(ring: TraceRing, from: number, to: number): void {
  for (let i = from; i < to; i++) ring.push(TraceKind.Access, 3, i, i, i * 2, -1, 0.5);
}

const as = (records: readonly TraceRecord[]) => records.map((r) => r.a);

describe('TraceRing', () => {
  it('rejects a capacity that is not a positive integer', () => {
    expect(() => TraceRing.create(0)).toThrow(RangeError);
    expect(() => TraceRing.create(1.5)).toThrow(/positive integer/);
  });

  it('a record keeps every field; drain returns records oldest first', () => {
    const ring = TraceRing.create(8);
    ring.push(TraceKind.TlbFill, 2, 17, 0x40_0000, 0x20_0000, 0x25, 4095);
    ring.push(TraceKind.Fault, 2, 18, 0x7000_0000, 6, 0, 0);
    const { records, lost } = ring.drain();
    expect(lost).toBe(0);
    expect(records).toEqual([
      {
        seq: 0,
        kind: TraceKind.TlbFill,
        cpu: 2,
        step: 17,
        a: 0x40_0000,
        b: 0x20_0000,
        c: 0x25,
        d: 4095,
      },
      { seq: 1, kind: TraceKind.Fault, cpu: 2, step: 18, a: 0x7000_0000, b: 6, c: 0, d: 0 },
    ]);
    expect(ring.drain()).toEqual({ records: [], lost: 0 });
  });

  it('sequence numbers are consecutive across drains', () => {
    const ring = TraceRing.create(4);
    pushRange(ring, 0, 3);
    const first = ring.drain();
    pushRange(ring, 3, 7);
    const second = ring.drain();
    expect(first.records.map((r) => r.seq)).toEqual([0, 1, 2]);
    expect(second.records.map((r) => r.seq)).toEqual([3, 4, 5, 6]);
    expect(second.lost).toBe(0);
    expect(ring.count).toBe(7);
  });

  it('overflow: the oldest records are overwritten and counted as lost', () => {
    const ring = TraceRing.create(4);
    pushRange(ring, 0, 10);
    const { records, lost } = ring.drain();
    expect(lost).toBe(6);
    expect(as(records)).toEqual([6, 7, 8, 9]);
    expect(records.map((r) => r.seq)).toEqual([6, 7, 8, 9]);
  });

  it('property: records read + lost = records written, reads are in order, never duplicated', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 16 }),
        fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 20 }),
        (capacity, bursts) => {
          const ring = TraceRing.create(capacity);
          let written = 0;
          let lostTotal = 0;
          const seen: number[] = [];
          for (const n of bursts) {
            pushRange(ring, written, written + n);
            written += n;
            const { records, lost } = ring.drain();
            expect(lost).toBe(Math.max(0, n - capacity));
            lostTotal += lost;
            seen.push(...as(records));
          }
          expect(seen.length + lostTotal).toBe(written);
          for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThan(seen[i - 1]!);
        },
      ),
    );
  });

  it('a small ring wraps its slots many times without losing what is drained in time', () => {
    const ring = TraceRing.create(3);
    const all: number[] = [];
    for (let i = 0; i < 3000; i += 3) {
      pushRange(ring, i, i + 3);
      const { records, lost } = ring.drain();
      expect(lost).toBe(0);
      all.push(...as(records));
    }
    expect(all).toEqual(Array.from({ length: 3000 }, (_, i) => i));
  });

  it('the head counter (kept modulo 2^31) wraps without losing or repeating records', () => {
    const ring = TraceRing.create(4);
    // Start the shared head just below 2^31, as after ~2^31 records.
    Atomics.store(new Int32Array(ring.buffer, 0, 2), 0, 2 ** 31 - 3);
    const writer = TraceRing.fromBuffer(ring.buffer);
    const reader = TraceRing.fromBuffer(ring.buffer);
    const seqs: number[] = [];
    const values: number[] = [];
    for (let i = 0; i < 12; i += 2) {
      pushRange(writer, i, i + 2);
      const { records, lost } = reader.drain();
      expect(lost).toBe(0);
      seqs.push(...records.map((r) => r.seq));
      values.push(...as(records));
    }
    expect(values).toEqual(Array.from({ length: 12 }, (_, i) => i));
    expect(seqs).toEqual(Array.from({ length: 12 }, (_, i) => 2 ** 31 - 3 + i));
    expect(Atomics.load(new Int32Array(ring.buffer, 0, 2), 0)).toBe(9); // wrapped
  });

  it('an overflow across the head wrap still counts the lost records exactly', () => {
    const ring = TraceRing.create(4);
    Atomics.store(new Int32Array(ring.buffer, 0, 2), 0, 2 ** 31 - 2);
    const writer = TraceRing.fromBuffer(ring.buffer);
    const reader = TraceRing.fromBuffer(ring.buffer);
    pushRange(writer, 0, 10);
    const { records, lost } = reader.drain();
    expect(lost).toBe(6);
    expect(as(records)).toEqual([6, 7, 8, 9]);
  });

  it('fromBuffer: a writer on one view and a reader on another see the same records', () => {
    const reader = TraceRing.create(16);
    const writer = TraceRing.fromBuffer(reader.buffer);
    expect(writer.capacity).toBe(16);
    expect(reader.buffer.byteLength).toBe(8 + 16 * RECORD_WORDS * 8);
    pushRange(writer, 0, 5);
    const direct = TraceRing.create(16);
    pushRange(direct, 0, 5);
    expect(reader.drain()).toEqual(direct.drain());
  });

  it('fromBuffer: a writer attached later continues the sequence where the head is', () => {
    const reader = TraceRing.create(8);
    pushRange(TraceRing.fromBuffer(reader.buffer), 0, 3);
    pushRange(TraceRing.fromBuffer(reader.buffer), 3, 6);
    const { records, lost } = reader.drain();
    expect(lost).toBe(0);
    expect(records.map((r) => [r.seq, r.a])).toEqual([
      [0, 0],
      [1, 1],
      [2, 2],
      [3, 3],
      [4, 4],
      [5, 5],
    ]);
  });
});
