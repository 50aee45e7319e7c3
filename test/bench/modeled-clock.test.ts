/**
 * The modeled-clock host: deterministic, causal (a request is never serviced before it was sent,
 * an idle CPU's clock catches up with the event that woke it), the ablations move exactly the
 * times they model, INVLPGB is charged once per broadcast, and deadlocks are reported.
 */

import { describe, expect, it } from 'vitest';
import { runModeledClock } from '../../src/bench/modeled-clock.ts';
import { shootdownProgram } from '../../src/bench/shootdown-program.ts';
import { DEFAULT_COST_MODEL as C } from '../../src/cpu/cost-model.ts';
import { scenario } from '../../src/scenarios/builder.ts';
import { Machine } from '../../src/smp/machine.ts';
import { TraceKind } from '../../src/trace/record.ts';

const program = (cpus: number, pages = 1) =>
  shootdownProgram({ cpus, pages: [pages], rounds: [2], lazyTlb: false, touch: pages });

function op(protocol: string, cpus: number, o: Parameters<typeof runModeledClock>[1] = {}) {
  const prog = program(cpus);
  const m = Machine.fromScenario(prog.scenario, { protocol });
  const run = runModeledClock(m, { watch: [0], ...o });
  const a = run.arrivals.get(0)!;
  const mark = prog.marks[1]!;
  return { run, m, cycles: a[mark.opEnd]! - a[mark.start]! };
}

describe('runModeledClock', () => {
  it('is deterministic: the same machine gives the same records, schedule and clocks', () => {
    const a = op('sync-ipi', 4).run;
    const b = op('sync-ipi', 4).run;
    expect(b.schedule).toEqual(a.schedule);
    expect(b.records).toEqual(a.records);
    expect([...b.stepCycles]).toEqual([...a.stepCycles]);
  });

  it('services a request no earlier than it was sent, and acks complete the round', () => {
    const { run, m } = op('sync-ipi', 4);
    const sends = run.records.filter((r) => r.kind === TraceKind.IpiSend);
    const receives = run.records.filter((r) => r.kind === TraceKind.IpiReceive);
    expect(receives.length).toBe(sends.length);
    for (const r of receives) {
      const sent = sends.find((s) => s.a === r.cpu && s.step < r.step)!;
      expect(run.stepCycles[r.step]).toBeGreaterThanOrEqual(run.stepCycles[sent.step]!);
    }
    expect(m.cpus.every((c) => c.status === 'halted')).toBe(true);
    expect(run.deadlock).toBeUndefined();
  });

  it('sync-ipi: each extra target adds one ipiSend; the first adds the whole round', () => {
    const local = op('sync-ipi', 1).cycles;
    expect(local).toBe(3 * C.instruction + C.mapperCall + C.invlpg);
    const one = op('sync-ipi', 2).cycles;
    expect(one - local).toBe(C.ipiSend + C.ipiReceive + C.invlpg + C.flushPage + C.ipiAck);
    expect(op('sync-ipi', 4).cycles - one).toBe(2 * C.ipiSend);
  });

  it("an idle CPU released from a barrier starts at the releaser's clock", () => {
    const s = scenario('idle')
      .machine({ cpus: 2 })
      .addressSpace('A', (as) => as.map4k(0x40_0000, 0x20_0000, 'PRESENT|WRITABLE'))
      .cpu('A', (p) => p.updateFlags('4KiB', 0x40_0000, 'PRESENT').barrier('b'))
      .cpu('A', (p) => p.barrier('b').load(0x40_0000, 'r0'))
      .build();
    const m = Machine.fromScenario(s, { protocol: 'none' });
    const run = runModeledClock(m, { watch: [1] });
    // CPU 1 waited for CPU 0's Mapper call before it could go on.
    expect(run.arrivals.get(1)![1]).toBeGreaterThanOrEqual(C.mapperCall);
  });

  it('concurrent: the IPI leaves before the local invlpg, saving its cost', () => {
    expect(op('sync-ipi', 2).cycles - op('sync-ipi', 2, { concurrentFlush: true }).cycles).toBe(
      C.invlpg,
    );
  });

  it('early-ack: the ack is stamped before the invalidation, saving its cost', () => {
    expect(op('sync-ipi', 2).cycles - op('sync-ipi', 2, { earlyAck: true }).cycles).toBe(
      C.invlpg + C.flushPage,
    );
  });

  it('broadcast: one INVLPGB per round whatever the CPU count', () => {
    expect(op('broadcast', 8).cycles).toBe(op('broadcast', 2).cycles);
    // Charged once: a dearer INVLPGB makes the 8-CPU operation dearer by exactly that much.
    const prog = program(8);
    const cycles = (invlpgb: number) => {
      const m = Machine.fromScenario(prog.scenario, {
        protocol: 'broadcast',
        costs: { ...C, invlpgb },
      });
      const a = runModeledClock(m, { watch: [0] }).arrivals.get(0)!;
      return a[prog.marks[1]!.opEnd]! - a[prog.marks[1]!.start]!;
    };
    expect(cycles(C.invlpgb + 1000) - cycles(C.invlpgb)).toBe(1000);
    expect(
      op('broadcast', 2).run.records.some((r) => r.kind === TraceKind.IpiSend && r.d === 2),
    ).toBe(true);
  });

  it('reports a deadlock with who waits for what', () => {
    const s = scenario('stuck')
      .machine({ cpus: 2 })
      .addressSpace('A')
      .cpu('A', (p) => p.barrier('x').barrier('y'))
      .cpu('A', (p) => p.barrier('y').barrier('x'))
      .build();
    const run = runModeledClock(Machine.fromScenario(s, { protocol: 'none' }));
    expect(run.deadlock?.cpus).toEqual([0, 1]);
    expect(run.deadlock?.waits[0]).toContain('waits at barrier x');
  });
});
