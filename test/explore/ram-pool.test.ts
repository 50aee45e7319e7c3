/**
 * Tests of `RamPool` (src/explore/ram-pool.ts): after a run the RAM it hands back is all zero
 * again, whatever the run wrote (stores, A/D bits, tables the Mapper built, allocated and freed
 * frames), and a run in reused RAM is the same run as in fresh RAM, record for record.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RamPool } from '../../src/explore/ram-pool.ts';
import type { PhysicalMemory } from '../../src/memory/physical-memory.ts';
import { scenario } from '../../src/scenarios/builder.ts';
import { PROTOCOLS } from '../../src/scenarios/scenario.ts';
import { runDeterministic } from '../../src/smp/hosts/deterministic.ts';
import { Machine } from '../../src/smp/machine.ts';

const P = 0x40_0000;
const HUGE = 0x4000_0000;

/** Two CPUs writing through every path that writes RAM, in 2 MiB of RAM (fast to scan). */
const WRITER = scenario('writer')
  .machine({ ramBytes: 0x40_0000 })
  .addressSpace('A', (as) =>
    as
      .map4k(P, 0x10_0000, 'PRESENT|WRITABLE')
      .map4k(P + 0x1000, 0x10_1000, 'PRESENT|WRITABLE')
      .map2m(0x80_0000, 0x20_0000, 'PRESENT|WRITABLE'),
  )
  .cpu('A', (p) =>
    p
      .store(P, 0x1111)
      .store(0x80_0000 + 0x1_2345, 0x77, { width: 1 })
      .allocFrame('r1')
      .mapTo('4KiB', HUGE, 'r1', 'PRESENT|WRITABLE') // new P3, P2 and P1 tables
      .flush()
      .store(HUGE + 8, 0x2222)
      .unmap('4KiB', P, 'r2')
      .flush()
      .freeFrame('r2'),
  )
  .cpu('A', (p) =>
    p
      .load(P, 'r0')
      .store(P + 0x1000, 0x3333)
      .allocFrame('r3')
      .freeFrame('r3')
      .load(HUGE + 8, 'r4')
      // The level-1 table of P, made by the setup (frame 0x3000): a freed table holds entries.
      .freeFrame(0x3000),
  )
  .build();

function allZero(m: PhysicalMemory): boolean {
  for (let a = 0; a < m.bytes; a += 8) if (m.read64(a) !== 0n) return false;
  return true;
}

describe('RamPool', () => {
  it('hands out the same RAM again, all zero, after runs that wrote it in every way', () => {
    fc.assert(
      fc.property(fc.constantFrom(...PROTOCOLS), fc.nat(), (protocol, seed) => {
        const pool = new RamPool(WRITER);
        const ram = pool.take();
        const machine = Machine.fromScenario(WRITER, { protocol, memory: ram });
        const run = runDeterministic(machine, { seed });
        expect(allZero(ram)).toBe(false);
        pool.give(ram, machine, run.records, run.lost);
        const again = pool.take();
        expect(again).toBe(ram);
        expect(allZero(again)).toBe(true);
      }),
      { numRuns: 20 },
    );
  });

  it('a run in reused RAM is the same run as in fresh RAM', () => {
    const pool = new RamPool(WRITER);
    for (let seed = 1; seed <= 10; seed++) {
      const ram = pool.take();
      const reused = Machine.fromScenario(WRITER, { memory: ram });
      const a = runDeterministic(reused, { seed });
      const b = runDeterministic(Machine.fromScenario(WRITER), { seed });
      expect(JSON.stringify(a.records)).toBe(JSON.stringify(b.records));
      pool.give(ram, reused, a.records, a.lost);
    }
  });

  it('drops RAM whose run lost trace records (what it wrote is unknown)', () => {
    const pool = new RamPool(WRITER);
    const ram = pool.take();
    const machine = Machine.fromScenario(WRITER, { memory: ram });
    const run = runDeterministic(machine);
    pool.give(ram, machine, run.records, 1);
    const next = pool.take();
    expect(next).not.toBe(ram);
    expect(allZero(next)).toBe(true);
  });
});
