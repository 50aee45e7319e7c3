/**
 * Tests of the deterministic host (src/smp/hosts/deterministic.ts), DESIGN decision 1 and the
 * scenario spec: same scenario + same seed ⇒ the same schedule and the same trace, byte for byte;
 * a run's schedule passed back reproduces it; schedules parse and print in the run-length form;
 * an impossible explicit schedule is a ScheduleError naming the step and the CPU; deadlocks are
 * reported with their wait graph; `maxSteps` bounds a run.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StepResult } from '../../src/cpu/cpu.ts';
import { type ProgramBuilder, scenario } from '../../src/scenarios/builder.ts';
import type { Scenario } from '../../src/scenarios/scenario.ts';
import {
  formatSchedule,
  parseSchedule,
  runDeterministic,
  ScheduleError,
} from '../../src/smp/hosts/deterministic.ts';
import { Machine } from '../../src/smp/machine.ts';

const PAGE = 0x40_0000;

function build(...programs: ((p: ProgramBuilder) => unknown)[]): Scenario {
  let b = scenario('det')
    .machine({ protocol: 'none' })
    .addressSpace('A', (as) =>
      as.map4k(PAGE, 0x20_0000, 'PRESENT|WRITABLE').map4k(PAGE + 0x1000, 0x20_1000, 'PRESENT'),
    );
  for (const program of programs) b = b.cpu('A', program);
  return b.build();
}

/** Two CPUs racing on one page: one remaps it, the other loads and stores through it. */
const RACE = build(
  (p) =>
    p
      .load(PAGE, 'r0')
      .unmap('4KiB', PAGE, 'r1')
      .flush()
      .mapTo('4KiB', PAGE, 'r1', 'PRESENT|WRITABLE')
      .flush()
      .store(PAGE, 1),
  (p) =>
    p
      .store(PAGE, 2)
      .load(PAGE, 'r0')
      .store(PAGE + 8, 3)
      .load(PAGE + 0x1000, 'r2'),
);

const run = (s: Scenario, options: Parameters<typeof runDeterministic>[1]) =>
  runDeterministic(Machine.fromScenario(s), options);

describe('runDeterministic: reproducibility', () => {
  it('the same scenario and seed give the same schedule and the same records, byte for byte', () => {
    for (const seed of [1, 2, 99, 123456789]) {
      const a = run(RACE, { seed });
      const b = run(RACE, { seed });
      expect(b.schedule).toEqual(a.schedule);
      expect(JSON.stringify(b.records)).toBe(JSON.stringify(a.records));
      expect(b.steps).toBe(a.steps);
      expect(a.records.length).toBeGreaterThan(0);
      expect(a.lost).toBe(0);
    }
  });

  it('different seeds can give different schedules and traces', () => {
    const base = run(RACE, { seed: 1 });
    let other: number | undefined;
    for (let seed = 2; seed < 100 && other === undefined; seed++) {
      if (formatSchedule(run(RACE, { seed }).schedule) !== formatSchedule(base.schedule)) {
        other = seed;
      }
    }
    expect(other).toBeDefined();
    const diff = run(RACE, { seed: other! });
    expect(JSON.stringify(diff.records)).not.toBe(JSON.stringify(base.records));
  });

  it('an explicit schedule reproduces a seeded run exactly', () => {
    for (const seed of [1, 7, 31]) {
      const seeded = run(RACE, { seed });
      const replay = run(RACE, { schedule: seeded.schedule, seed: seed + 1000 });
      expect(replay.schedule).toEqual(seeded.schedule);
      expect(JSON.stringify(replay.records)).toBe(JSON.stringify(seeded.records));
      // And through the printed form, as `run --schedule` would receive it.
      const printed = run(RACE, { schedule: parseSchedule(formatSchedule(seeded.schedule)) });
      expect(JSON.stringify(printed.records)).toBe(JSON.stringify(seeded.records));
    }
  });

  it('records carry the step at which they were made, in step order', () => {
    const r = run(RACE, { seed: 4 });
    for (let i = 1; i < r.records.length; i++) {
      expect(r.records[i]!.step).toBeGreaterThanOrEqual(r.records[i - 1]!.step);
    }
    for (const rec of r.records) expect(r.schedule[rec.step]).toBe(rec.cpu);
  });

  it('records that overflow the ring within one step are counted in lost, not dropped silently', () => {
    const m = Machine.fromScenario(RACE, { traceCapacity: 3 });
    const full = run(RACE, { seed: 5 });
    const small = runDeterministic(m, { seed: 5 });
    expect(small.schedule).toEqual(full.schedule);
    expect(small.lost).toBeGreaterThan(0);
    expect(small.records.length + small.lost).toBe(full.records.length);
  });

  it('a finished run has every CPU stopped and is not truncated', () => {
    const m = Machine.fromScenario(RACE);
    const r = runDeterministic(m, { seed: 3 });
    expect(r.truncated).toBe(false);
    expect(r.deadlock).toBeUndefined();
    expect(m.cpus.every((c) => c.halted)).toBe(true);
    expect(r.schedule).toHaveLength(r.steps);
  });
});

describe('parseSchedule / formatSchedule', () => {
  it('parse the plain and the run-length forms, with whitespace', () => {
    expect(parseSchedule('0,1,1,0')).toEqual([0, 1, 1, 0]);
    expect(parseSchedule('0*2, 1*3 ,2')).toEqual([0, 0, 1, 1, 1, 2]);
    expect(formatSchedule([0, 0, 1, 0, 0, 0])).toBe('0*2,1,0*3');
  });

  it('property: parse(format(s)) = s for any non-empty schedule', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 63 }), { minLength: 1, maxLength: 200 }),
        (s) => {
          expect(parseSchedule(formatSchedule(s))).toEqual(s);
        },
      ),
    );
  });

  it('property: format(parse(text)) is the canonical run-length form of the same schedule', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 1, max: 4 })), {
          minLength: 1,
          maxLength: 30,
        }),
        (items) => {
          const text = items.map(([c, n]) => (n === 1 ? `${c}` : `${c}*${n}`)).join(',');
          const s = parseSchedule(text);
          expect(parseSchedule(formatSchedule(s))).toEqual(s);
          expect(formatSchedule(s).length).toBeLessThanOrEqual(text.length);
        },
      ),
    );
  });

  it.each([
    ['a', 1],
    ['0,x', 2],
    ['0,*2', 2],
    ['0*', 1],
    ['-1', 1],
    ['1.5', 1],
    ['0,,1', 2],
    ['0,1,', 3],
    ['0*2*3', 1],
  ])('rejects %j with a message naming item %i and the expected form', (text, item) => {
    expect(() => parseSchedule(text)).toThrow(ScheduleError);
    expect(() => parseSchedule(text)).toThrow(
      new RegExp(`^schedule item ${item} .* is not CPU or CPU\\*COUNT`),
    );
  });

  // A COUNT of 0 denotes no step at all: `formatSchedule` never writes it, and accepting it
  // silently hides a typo (`0*0,1` runs as `1`). It is a malformed item.
  it('rejects a zero repeat count (`0*0`)', () => {
    expect(() => parseSchedule('1,0*0')).toThrow(ScheduleError);
  });
});

describe('runDeterministic: explicit schedules that cannot run', () => {
  it('a schedule naming a nonexistent CPU throws ScheduleError naming the step and CPU', () => {
    const s = build(
      (p) => p.load(PAGE, 'r0'),
      (p) => p.load(PAGE, 'r0'),
    );
    expect(() => run(s, { schedule: [0, 5] })).toThrow(ScheduleError);
    expect(() => run(s, { schedule: [0, 5] })).toThrow(
      /schedule step 2 names cpu 5, which does not exist/,
    );
  });

  it('a schedule naming a halted CPU throws ScheduleError naming the step and CPU', () => {
    const s = build(
      (p) => p.load(PAGE, 'r0'),
      () => {},
    );
    // CPU 1 has an empty program: its first step halts it.
    expect(() => run(s, { schedule: [1, 0, 1] })).toThrow(
      /schedule step 3 names cpu 1, which has halted; runnable: 0/,
    );
  });

  it('a schedule naming a faulted CPU says so', () => {
    const s = build(
      (p) => p.load(0x7000_0000, 'r0'),
      (p) => p.load(PAGE, 'r0'),
    );
    expect(() => run(s, { schedule: [0, 0] })).toThrow(
      /schedule step 2 names cpu 0, which has faulted/,
    );
  });

  it('a schedule naming a blocked CPU throws ScheduleError naming the step and CPU', () => {
    const s = build(
      (p) => p.barrier('b').load(PAGE, 'r0'),
      (p) => p.load(PAGE, 'r0').barrier('b'),
    );
    expect(() => run(s, { schedule: [0, 0] })).toThrow(
      /schedule step 2 names cpu 0, which is blocked; runnable: 1/,
    );
  });

  // Regression: schedule steps left over after every CPU halted used to be ignored silently (a
  // witness schedule from another version of the scenario "reproduced" nothing and said nothing).
  it('a schedule with steps left after every CPU halted throws, naming how many', () => {
    const s = build((p) => p.load(PAGE, 'r0'));
    expect(() => run(s, { schedule: [0, 0, 0] })).toThrow(
      /schedule has 1 step\(s\) left after step 2, but every CPU has halted/,
    );
  });

  it('after the schedule is used up the seeded PRNG picks', () => {
    const s = build(
      (p) => p.load(PAGE, 'r0').load(PAGE, 'r1'),
      (p) => p.load(PAGE, 'r0'),
    );
    const r = run(s, { schedule: [1, 1] });
    expect(r.schedule.slice(0, 2)).toEqual([1, 1]);
    expect(r.truncated).toBe(false);
    expect(r.deadlock).toBeUndefined();
  });
});

describe('runDeterministic: a chooser and a step observer', () => {
  it('choose picks once the schedule is used up; onStep sees every step and its records', () => {
    const asked: { ready: readonly number[]; step: number }[] = [];
    const seen: { cpu: number; result: StepResult; records: number }[] = [];
    const r = run(RACE, {
      schedule: [1],
      choose: (ready, step) => {
        asked.push({ ready: [...ready], step });
        return ready[ready.length - 1]!; // the highest runnable CPU
      },
      onStep: (cpu, result, records) => {
        seen.push({ cpu, result, records: records.length });
        for (const rec of records) expect(rec.cpu).toBe(cpu);
      },
    });
    expect(asked[0]!.step).toBe(1);
    expect(asked.length).toBe(r.steps - 1);
    for (const [i, a] of asked.entries()) expect(r.schedule[i + 1]).toBe(a.ready.at(-1));
    expect(seen.map((x) => x.cpu)).toEqual(r.schedule);
    expect(seen.reduce((n, x) => n + x.records, 0)).toBe(r.records.length);
    expect(seen.at(-1)!.result).toBe(StepResult.Halted);
    // A chooser's run replays as an explicit schedule, record for record.
    const again = run(RACE, { schedule: r.schedule });
    expect(JSON.stringify(again.records)).toBe(JSON.stringify(r.records));
  });

  it('a chooser that names a CPU which cannot run is a ScheduleError', () => {
    expect(() => run(RACE, { choose: () => 5 })).toThrow(ScheduleError);
    expect(() => run(RACE, { choose: () => 5 })).toThrow(
      /the chooser picked cpu 5 at step 1, which cannot run; runnable: 0, 1/,
    );
  });

  it('without choose and onStep a run is what it always was (seeded PRNG)', () => {
    const a = run(RACE, { seed: 7 });
    const b = run(RACE, { seed: 7, onStep: () => {} });
    expect(b.schedule).toEqual(a.schedule);
  });
});

describe('runDeterministic: deadlock and maxSteps', () => {
  it('a deadlock returns the waiting CPUs and one wait-graph line per CPU', () => {
    const s = build(
      (p) => p.barrier('x').barrier('y'),
      (p) => p.barrier('y').barrier('x'),
      (p) => p.load(PAGE, 'r0'),
    );
    const m = Machine.fromScenario(s);
    const r = runDeterministic(m, { seed: 9 });
    expect(r.deadlock).toEqual({
      cpus: [0, 1],
      waits: [
        'cpu 0 waits at barrier x#0 (1 of 2 arrived)',
        'cpu 1 waits at barrier y#0 (1 of 2 arrived)',
      ],
    });
    expect(r.truncated).toBe(false);
    expect(m.cpus[2]!.status).toBe('halted');
    expect(r.schedule).toHaveLength(r.steps);
  });

  it('maxSteps truncates a run and says so', () => {
    const s = build((p) => {
      for (let i = 0; i < 20; i++) p.load(PAGE, 'r0');
    });
    const m = Machine.fromScenario(s);
    const r = runDeterministic(m, { maxSteps: 5 });
    expect(r.truncated).toBe(true);
    expect(r.steps).toBe(5);
    expect(r.schedule).toHaveLength(5);
    expect(m.cpus[0]!.pc).toBe(5);
    expect(m.cpus[0]!.halted).toBe(false);
  });

  it('a run that needs fewer steps than maxSteps is not truncated', () => {
    const s = build((p) => p.load(PAGE, 'r0'));
    const r = run(s, { maxSteps: 3 });
    expect(r.steps).toBe(2); // the load, then the halting step
    expect(r.truncated).toBe(false);
  });

  // `truncated` is documented as "set when maxSteps stopped the run", but it is computed as
  // `step >= maxSteps`: a run whose last CPU halts exactly at step maxSteps is reported truncated.
  it('a run that finishes exactly at maxSteps is not truncated', () => {
    const s = build((p) => p.load(PAGE, 'r0'));
    const m = Machine.fromScenario(s);
    const r = runDeterministic(m, { maxSteps: 2 });
    expect(m.cpus[0]!.halted).toBe(true);
    expect(r.truncated).toBe(false);
  });
});
