/**
 * Tests of the local-step reduction (src/explore/reduction.ts): which steps are pure local
 * steps; schedule counts of tiny scenarios counted by hand, with and without the reduction; and
 * soundness: the reduced tree reaches exactly the outcomes the full tree reaches, for every
 * protocol, while the opposite merge (no scheduling point *before* a local step) misses one.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StepResult } from '../../src/cpu/cpu.ts';
import { isPureLocalStep, LOCAL_OPS, ReducedChooser } from '../../src/explore/reduction.ts';
import { type ProgramBuilder, scenario } from '../../src/scenarios/builder.ts';
import { INSTRUCTION_OPS } from '../../src/scenarios/load.ts';
import { PROTOCOLS, type Protocol, type Scenario } from '../../src/scenarios/scenario.ts';
import { runDeterministic } from '../../src/smp/hosts/deterministic.ts';
import { Machine } from '../../src/smp/machine.ts';
import { EvictReason, FlushOutcome, TraceKind } from '../../src/trace/record.ts';
import type { TraceRecord } from '../../src/trace/ring.ts';
import { outcomeOf, outcomes } from './helpers.ts';

const P = 0x40_0000;
const Q = 0x40_1000;

function rec(kind: TraceKind, fields: Partial<TraceRecord> = {}): TraceRecord {
  return { seq: 0, kind, cpu: 0, step: 0, a: 0, b: 0, c: 0, d: 0, ...fields };
}
const ins = (op: (typeof INSTRUCTION_OPS)[number]) =>
  rec(TraceKind.Instruction, { b: INSTRUCTION_OPS.indexOf(op) });

/** Two pages mapped in one address space, one program per CPU. */
function build(protocol: Protocol, ...programs: ((p: ProgramBuilder) => unknown)[]): Scenario {
  let b = scenario('reduction')
    .machine({ protocol, ramBytes: 0x40_0000 })
    .addressSpace('A', (as) =>
      as.map4k(P, 0x20_0000, 'PRESENT|WRITABLE').map4k(Q, 0x20_1000, 'PRESENT|WRITABLE'),
    );
  for (const program of programs) b = b.cpu('A', program);
  return b.build();
}

describe('isPureLocalStep', () => {
  it('accepts each local instruction with only its own records', () => {
    for (const op of LOCAL_OPS) expect(isPureLocalStep([ins(op)])).toBe(true);
    expect(
      isPureLocalStep([
        ins('invlpg'),
        rec(TraceKind.TlbEvict, { d: EvictReason.Invlpg }),
        rec(TraceKind.Maintenance),
      ]),
    ).toBe(true);
    expect(
      isPureLocalStep([ins('ignore'), rec(TraceKind.Flush, { b: FlushOutcome.Ignored })]),
    ).toBe(true);
  });

  it('rejects shared instructions, and local ones whose poll or halt did shared work', () => {
    for (const op of INSTRUCTION_OPS.filter((o) => !LOCAL_OPS.includes(o))) {
      expect(isPureLocalStep([ins(op)]), op).toBe(false);
    }
    // A step with no instruction: a wait resumed, a halt.
    expect(isPureLocalStep([])).toBe(false);
    expect(isPureLocalStep([rec(TraceKind.BarrierPass)])).toBe(false);
    // The interrupt-point poll serviced a shootdown, posted a lazy request, released a frame.
    expect(isPureLocalStep([rec(TraceKind.IpiReceive), ins('invlpg')])).toBe(false);
    expect(
      isPureLocalStep([rec(TraceKind.TlbEvict, { d: EvictReason.Shootdown }), ins('invlpg')]),
    ).toBe(false);
    expect(isPureLocalStep([rec(TraceKind.IpiSend), ins('assert')])).toBe(false);
    expect(isPureLocalStep([rec(TraceKind.FrameFree), ins('assert')])).toBe(false);
    // A failed assert halts the CPU, which the others see.
    expect(isPureLocalStep([ins('assert'), rec(TraceKind.Halt, { a: 2 })])).toBe(false);
    // A dropped flush is not an ignore's own record.
    expect(
      isPureLocalStep([ins('ignore'), rec(TraceKind.Flush, { b: FlushOutcome.Dropped })]),
    ).toBe(false);
    // Any record kind it does not know (e.g. one added later) is a scheduling point.
    expect(isPureLocalStep([ins('invlpg'), rec(99 as TraceKind)])).toBe(false);
  });
});

describe('ReducedChooser', () => {
  it('asks only at real choices and runs a CPU on after a pure local step', () => {
    const asked: number[] = [];
    const c = new ReducedChooser((n) => {
      asked.push(n);
      return n - 1;
    }, true);
    expect(c.choose([0, 1, 2])).toBe(2);
    c.onStep(2, StepResult.Ran, [ins('invlpg')]);
    expect(c.choose([0, 1, 2])).toBe(2); // runs on: no question
    c.onStep(2, StepResult.Ran, [ins('load')]);
    expect(c.choose([1])).toBe(1); // one runnable CPU: no question
    c.onStep(1, StepResult.Ran, [ins('assert')]);
    expect(c.choose([0, 1])).toBe(1);
    expect(asked).toEqual([3]);
    expect(c.choices).toEqual([2]);
    expect(c.options).toEqual([3]);
  });

  it('without the reduction asks after local steps too, and rejects a bad answer', () => {
    const c = new ReducedChooser(() => 0, false);
    c.onStep(1, StepResult.Ran, [ins('invlpg')]);
    expect(c.choose([0, 1])).toBe(0);
    expect(() => new ReducedChooser(() => 2, true).choose([0, 1])).toThrow(/returned 2 for 2/);
  });
});

describe('schedule counts, by hand', () => {
  it('two CPUs of 2 and 3 steps: C(5,2) = 10 interleavings; merging the invlpg gives C(4,2) = 6', () => {
    // cpu0: store, halt. cpu1: invlpg, load, halt (the invlpg runs on into the load).
    const s = build(
      'none',
      (p) => p.store(P, 1),
      (p) => p.invlpg(Q).load(Q, 'r0'),
    );
    const full = outcomes(s, 'none', { reduce: false });
    const reduced = outcomes(s, 'none');
    expect(full.schedules).toBe(10);
    expect(full.schedulesSeen.size).toBe(10); // all distinct
    expect(reduced.schedules).toBe(6);
    expect(reduced.schedulesSeen.size).toBe(6);
    // Every reduced schedule has cpu1's invlpg directly followed by its load.
    for (const sched of reduced.schedulesSeen) expect(sched).toMatch(/(^|,)1,1/);
  });

  it('three CPUs of 2, 2 and 3 steps: 7!/(2!2!3!) = 210, and 6!/(2!2!2!) = 90 reduced', () => {
    const s = build(
      'sync-ipi',
      (p) => p.store(P, 1),
      (p) => p.load(Q, 'r0'),
      (p) => p.assert('r0', 0).load(P, 'r1'),
    );
    expect(outcomes(s, 'sync-ipi', { reduce: false }).schedules).toBe(210);
    expect(outcomes(s, 'sync-ipi').schedules).toBe(90);
  });

  it('a barrier: the first to arrive waits, so 2 x C(5,2) = 20 schedules', () => {
    // Whoever arrives first blocks (no choice while it waits); once the other passes, the
    // waiter has 3 steps left (resume, access, halt) and the other 2 (access, halt).
    const s = build(
      'none',
      (p) => p.barrier('b').store(P, 1),
      (p) => p.barrier('b').load(P, 'r0'),
    );
    expect(outcomes(s, 'none', { reduce: false }).schedules).toBe(20);
    expect(outcomes(s, 'none').schedules).toBe(20); // no local steps to merge
  });
});

/**
 * CPU 1 unmaps P (flushing under the protocol), maps it to frame 0x202000 and stores 0x22
 * there; CPU 0 caches P, runs an invlpg of an unrelated page, and loads P again. r1 = 0x22 on
 * CPU 0 needs CPU 0 to acknowledge the shootdown *at the invlpg*: acknowledging at the first load
 * makes that load fault (P is unmapped and CPU 1 still waits), and at the second load CPU 1 is
 * still blocked. So only a scheduling point before the invlpg reaches it.
 */
const ACK_AT_LOCAL_STEP = build(
  'sync-ipi',
  (p) => p.load(P, 'r0').invlpg(Q).load(P, 'r1'),
  (p) =>
    p
      .unmap('4KiB', P, 'r2')
      .flush()
      .mapTo('4KiB', P, 0x20_2000, 'PRESENT|WRITABLE')
      .ignore()
      .store(P, 0x22),
);

/**
 * Every leaf's outcome under the opposite merge: after a CPU's step, if its next instruction is
 * local, it runs on (no scheduling point *before* a local step). Written here only to show that
 * this variant is unsound.
 */
function mergeBeforeOutcomes(s: Scenario, protocol: string): Set<string> {
  const found = new Set<string>();
  let path: number[] = [];
  for (;;) {
    const machine = Machine.fromScenario(s, { protocol });
    const choices: number[] = [];
    const options: number[] = [];
    let runOn = -1;
    runDeterministic(machine, {
      choose: (ready) => {
        if (runOn >= 0 && ready.includes(runOn)) return runOn;
        if (ready.length === 1) return ready[0]!;
        const c = path[choices.length] ?? 0;
        choices.push(c);
        options.push(ready.length);
        return ready[c]!;
      },
      onStep: (cpu, result) => {
        const c = machine.cpus[cpu]!;
        const next = s.cpus[cpu]!.program[c.pc];
        runOn =
          result === StepResult.Ran &&
          !c.halted &&
          next !== undefined &&
          LOCAL_OPS.includes(next.op)
            ? cpu
            : -1;
      },
    });
    found.add(outcomeOf(machine));
    let d = choices.length - 1;
    while (d >= 0 && choices[d]! + 1 >= options[d]!) d--;
    if (d < 0) return found;
    path = [...choices.slice(0, d), choices[d]! + 1];
  }
}

describe('soundness: the reduced tree reaches every outcome of the full tree', () => {
  it('reaches the outcome that needs an acknowledgement at a local step; merging the other way misses it', () => {
    const full = outcomes(ACK_AT_LOCAL_STEP, 'sync-ipi', { reduce: false });
    const reduced = outcomes(ACK_AT_LOCAL_STEP, 'sync-ipi');
    const seesNewMapping = (o: string) => o.startsWith('halted|0x0 0x22 ');
    expect([...full.outcomes].some(seesNewMapping)).toBe(true);
    expect(reduced.outcomes).toEqual(full.outcomes);
    expect(reduced.schedules).toBeLessThan(full.schedules);
    // Outcomes are compared without hazard kinds here (the variant does not run the checker).
    const strip = (set: Set<string>) => new Set([...set].map((o) => o.split(' :: ')[0]!));
    const before = mergeBeforeOutcomes(ACK_AT_LOCAL_STEP, 'sync-ipi');
    expect([...before].some(seesNewMapping)).toBe(false);
    for (const o of strip(before)) expect(strip(full.outcomes).has(o)).toBe(true);
  });

  /** Small two-CPU programs mixing local steps with shootdowns, waits, frees and asserts. */
  const MIXED: Record<string, Scenario> = {
    'remap race': build(
      'none',
      (p) =>
        p
          .load(P, 'r0')
          .unmap('4KiB', P, 'r1')
          .flush()
          .mapTo('4KiB', P, 'r1', 'PRESENT|WRITABLE')
          .flush(),
      (p) => p.store(P, 2).invlpg(Q).load(P, 'r0').assert('r0', 2).flushAll().load(Q, 'r2'),
    ),
    'free while cached': build(
      'none',
      (p) =>
        p.load(Q, 'r0').unmap('4KiB', Q, 'r1').flush().freeFrame('r1').invlpg(P).allocFrame('r3'),
      (p) => p.load(Q, 'r0').togglePge().assert('r0', 0).load(Q, 'r2'),
    ),
    'mutual shootdowns': build(
      'none',
      (p) => p.load(Q, 'r0').updateFlags('4KiB', P, 'PRESENT').flush().invlpg(Q).store(Q, 5),
      (p) => p.load(P, 'r0').updateFlags('4KiB', Q, 'PRESENT').flush().assert('r0', 0).store(P, 6),
    ),
  };

  for (const [name, s] of Object.entries(MIXED)) {
    for (const protocol of PROTOCOLS) {
      it(`${name}, ${protocol}`, () => {
        const full = outcomes(s, protocol, { reduce: false });
        const reduced = outcomes(s, protocol);
        expect(reduced.outcomes).toEqual(full.outcomes);
        expect(reduced.schedules).toBeLessThan(full.schedules);
      });
    }
  }
});

describe('soundness on random programs (fast-check)', () => {
  /** One instruction of a small mix: accesses, local steps, Mapper calls and their flushes. */
  const instruction = fc.constantFrom<(p: ProgramBuilder) => unknown>(
    (p) => p.load(P, 'r0'),
    (p) => p.load(Q, 'r1'),
    (p) => p.store(P, 7),
    (p) => p.store(Q, 8),
    (p) => p.invlpg(P),
    (p) => p.flushAll(),
    (p) => p.togglePge(),
    (p) => p.assert('r0', 0),
    (p) => p.ignore(),
    (p) => p.unmap('4KiB', P, 'r2').flush(),
    (p) => p.updateFlags('4KiB', Q, 'PRESENT').flush(),
    (p) => p.mapTo('4KiB', P, 0x20_2000, 'PRESENT|WRITABLE').ignore(),
  );
  const program = fc.array(instruction, { minLength: 1, maxLength: 3 });

  it('the reduced and the full tree reach the same outcomes', () => {
    fc.assert(
      fc.property(program, program, fc.constantFrom(...PROTOCOLS), (a, b, protocol) => {
        const s = build(
          protocol,
          (p) => {
            for (const f of a) f(p);
          },
          (p) => {
            for (const f of b) f(p);
          },
        );
        const full = outcomes(s, protocol, { reduce: false });
        const reduced = outcomes(s, protocol);
        expect(reduced.outcomes).toEqual(full.outcomes);
        expect(reduced.schedules).toBeLessThanOrEqual(full.schedules);
      }),
      // Each run walks both trees completely; FC_RUNS raises this for a long exploration.
      { numRuns: process.env.FC_RUNS === undefined ? 30 : Number(process.env.FC_RUNS) },
    );
  });
});
