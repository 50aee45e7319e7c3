/**
 * Tests of the control block's layout (src/smp/layout.ts): every region of every shape lies inside
 * the block, no two overlap, each starts on a 64-byte line, the hot words that must not share a
 * line do not, the ack times are Float64-aligned; bad shapes and mismatched buffers are refused
 * with the value named; a machine's CPUs write their trace rings and CR3 words into its one block.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { scenario } from '../../src/scenarios/builder.ts';
import { runDeterministic } from '../../src/smp/hosts/deterministic.ts';
import { runOnWorkers } from '../../src/smp/hosts/worker.ts';
import {
  ControlLayoutError,
  CPU_STATUS,
  CPU_WAKE,
  CR3_PCID,
  CR3_SPACE,
  controlLayout,
  controlWord,
  createControlBlock,
  HEADER_WORDS,
  HOST_CPU_WORDS,
  LINE_WORDS,
  layoutOf,
  SLOT_WORDS,
  STEP_COUNTER,
  WAIT_PC,
} from '../../src/smp/layout.ts';
import { Machine } from '../../src/smp/machine.ts';
import { TraceKind } from '../../src/trace/record.ts';
import { TraceRing } from '../../src/trace/ring.ts';

/** A named range of Int32 words [start, end). */
interface Region {
  readonly name: string;
  readonly start: number;
  readonly end: number;
}

/** Every region of a layout, as the module's doc table lists them. */
function regions(cpus: number, spaces: number, capacity: number): Region[] {
  const l = controlLayout(cpus, spaces, capacity);
  const out: Region[] = [{ name: 'header', start: 0, end: HEADER_WORDS }];
  for (let c = 0; c < cpus; c++)
    out.push({ name: `host ${c}`, start: controlWord(c, 0), end: controlWord(c, HOST_CPU_WORDS) });
  for (let i = 0; i < cpus; i++)
    for (let t = 0; t < cpus; t++)
      out.push({ name: `slot ${i}->${t}`, start: l.slot(i, t), end: l.slot(i, t) + SLOT_WORDS });
  for (let c = 0; c < cpus; c++)
    out.push({ name: `ipi ${c}`, start: l.ipiCpu(c), end: l.ipiCpu(c) + l.ipiCpuWords });
  for (let s = 0; s < spaces; s++)
    out.push({ name: `cpumask ${s}`, start: l.cpumask(s), end: l.cpumask(s) + 2 });
  out.push({ name: 'generation', start: l.tableGeneration, end: l.tableGeneration + 1 });
  for (let c = 0; c < cpus; c++)
    out.push({
      name: `ring ${c}`,
      start: l.traceRing(c),
      end: l.traceRing(c) + TraceRing.bytes(capacity) / 4,
    });
  return out;
}

const line = (word: number) => Math.floor(word / LINE_WORDS);

describe('controlLayout', () => {
  it('places every region inside the block, disjoint and in the documented order', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 64 }),
        fc.integer({ min: 0, max: 6 }),
        fc.integer({ min: 1, max: 300 }),
        (cpus, spaces, capacity) => {
          const l = controlLayout(cpus, spaces, capacity);
          const rs = regions(cpus, spaces, capacity);
          for (let i = 1; i < rs.length; i++) {
            // In order and disjoint: each starts at or after the previous one's end.
            expect(rs[i]!.start, `${rs[i]!.name} after ${rs[i - 1]!.name}`).toBeGreaterThanOrEqual(
              rs[i - 1]!.end,
            );
          }
          expect(rs.at(-1)!.end).toBeLessThanOrEqual(l.words);
          expect(l.words % LINE_WORDS).toBe(0);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('starts each region kind and each CPU trace ring on a line, and keeps ack times Float64-aligned', () => {
    for (const cpus of [1, 2, 3, 7, 8, 33, 64]) {
      const l = controlLayout(cpus, 3, 17);
      expect(l.slot(0, 0) % LINE_WORDS).toBe(0);
      for (let c = 0; c < cpus; c++) {
        expect(controlWord(c, 0) % LINE_WORDS).toBe(0);
        expect(l.traceRing(c) % LINE_WORDS).toBe(0);
        // Float64 ack times: the first is at an even word of an even-aligned CPU block.
        expect(l.ackCycles(c) % 2).toBe(0);
        // Its requests' SEQ and ACK words and its ack times are inside its own IPI words, and
        // for up to 6 CPUs every initiator's SEQ is on the WAKE word's line.
        const start = l.ipiCpu(c);
        expect(start % LINE_WORDS).toBe(0);
        for (let i = 0; i < cpus; i++) {
          for (const w of [l.reqSeq(i, c), l.reqAck(i, c)]) {
            expect(w).toBeGreaterThan(start + CPU_STATUS);
            expect(w).toBeLessThan(l.ackCycles(c));
          }
          if (cpus <= 6) expect(l.reqSeq(i, c) - start).toBeLessThan(LINE_WORDS);
        }
        expect(l.ackCycles(c) + 2 * cpus).toBeLessThanOrEqual(start + l.ipiCpuWords);
      }
    }
  });

  it('keeps the hot words apart: step counter, doorbells, the table generation and the WAKE words', () => {
    for (const cpus of [1, 2, 4, 9, 64]) {
      const l = controlLayout(cpus, 4, 8);
      const doorbells = Array.from({ length: cpus }, (_, c) => line(controlWord(c, 0)));
      expect(new Set(doorbells).size).toBe(cpus); // one line per CPU's host words
      expect(doorbells).not.toContain(line(STEP_COUNTER));
      const wakeLines = new Set<number>();
      for (let c = 0; c < cpus; c++) {
        wakeLines.add(line(l.ipiCpu(c) + CPU_WAKE));
        wakeLines.add(line(l.ipiCpu(c) + CPU_STATUS));
      }
      // A full line of padding on each side, whatever the buffer's alignment (16 bytes at least).
      expect(l.tableGeneration - (l.ipiCpu(cpus - 1) + l.ipiCpuWords)).toBeGreaterThanOrEqual(
        LINE_WORDS,
      );
      expect(wakeLines.has(line(l.tableGeneration))).toBe(false);
      expect(l.traceRing(0) - l.tableGeneration).toBeGreaterThan(LINE_WORDS);
    }
    // The CR3 words are in the CPU's own host line, past the published wait.
    expect(CR3_SPACE).toBeGreaterThan(WAIT_PC);
    expect(CR3_PCID).toBeLessThan(HOST_CPU_WORDS);
  });

  it('refuses shapes it cannot lay out, naming the value and the rule', () => {
    expect(() => controlLayout(0, 1, 8)).toThrow(ControlLayoutError);
    expect(() => controlLayout(0, 1, 8)).toThrow('0 CPUs is not an integer in 1..64');
    expect(() => controlLayout(65, 1, 8)).toThrow('65 CPUs is not an integer in 1..64');
    expect(() => controlLayout(1.5, 1, 8)).toThrow('1.5 CPUs');
    expect(() => controlLayout(2, -1, 8)).toThrow('-1 address spaces is not a count');
    expect(() => controlLayout(2, 1, 0)).toThrow(
      'trace ring capacity 0 must be a positive integer',
    );
  });

  it('layoutOf refuses a buffer whose size is not its shape', () => {
    const block = createControlBlock(controlLayout(2, 1, 8));
    expect(layoutOf(block).words * 4).toBe(block.buffer.byteLength);
    expect(() => layoutOf({ ...block, cpus: 3 })).toThrow(
      /control block: \d+ bytes, but 3 CPUs, 1 address spaces and trace rings of 8 records take \d+/,
    );
  });
});

describe('a machine over its control block', () => {
  const PAGE = 0x40_0000;
  const twoSpaces = () =>
    scenario('two-spaces')
      .machine({ protocol: 'sync-ipi', cpus: 2 })
      .addressSpace('A', (as) => as.map4k(PAGE, 0x20_0000, 'PRESENT|WRITABLE'))
      .addressSpace('B', (as) => as.map4k(PAGE, 0x20_1000, 'PRESENT|WRITABLE'))
      .cpu('A', (p) => p.load(PAGE, 'r0').movCr3('B').load(PAGE, 'r1'))
      .cpu('B', (p) => p.load(PAGE, 'r0'))
      .build();

  it('puts each CPU trace ring in the block, where records of one CPU never reach another ring', () => {
    const m = Machine.fromScenario(twoSpaces(), { traceCapacity: 32 });
    const layout = layoutOf(m.control);
    m.traces.forEach((ring, id) => {
      expect(ring.buffer).toBe(m.control.buffer);
      expect(ring.byteOffset).toBe(layout.traceRing(id) * 4);
      expect(ring.capacity).toBe(32);
    });
    m.traces[0]!.push(TraceKind.IpiSend, 0, 1, 2, 3, 4, 5);
    expect(m.traces[1]!.drain().records).toHaveLength(0);
    expect(m.traces[0]!.drain().records.map((r) => r.a)).toEqual([2]);
  });

  it('publishes each CPU CR3 (address space and PCID) at its start and at every mov_cr3', () => {
    const m = Machine.fromScenario(twoSpaces());
    const pcids = [...m.setup.spaces.values()].map((s) => s.pcid);
    expect([0, 1].map((c) => m.shootdown.activeSpace(c))).toEqual([
      { addressSpace: 'A', pcid: 0 },
      { addressSpace: 'B', pcid: 0 },
    ]);
    expect(pcids).toHaveLength(2);
    runDeterministic(m);
    expect(m.shootdown.activeSpace(0).addressSpace).toBe('B');
    expect(m.shootdown.activeSpace(0).pcid).toBe(m.cpus[0]!.cr3Pcid);
  });

  it('shows the main thread where each worker CPU runs, through the shared CR3 words', async () => {
    const m = Machine.fromScenario(twoSpaces());
    const run = await runOnWorkers(m, { timeoutMs: 2000 });
    expect(run.cpus.map((c) => c.state.addressSpace)).toEqual(['B', 'B']);
    expect([0, 1].map((c) => m.shootdown.activeSpace(c).addressSpace)).toEqual(['B', 'B']);
  });

  it('refuses a ring that does not fit its buffer or is misaligned', () => {
    const buffer = new SharedArrayBuffer(TraceRing.bytes(4) + 8);
    expect(TraceRing.over(buffer, 8, 4).capacity).toBe(4);
    expect(() => TraceRing.over(buffer, 4, 4)).toThrow(/8-byte boundary/);
    expect(() => TraceRing.over(buffer, 16, 4)).toThrow(/does not fit/);
  });
});
