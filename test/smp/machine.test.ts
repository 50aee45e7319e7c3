/**
 * Tests of `Machine.loadProgram` (src/smp/machine.ts), the control plane's "load program" on the
 * machine itself: the scenario with the new program is validated as a file would be (errors name
 * the field), the barriers must stay, a CPU that has stepped refuses, and a run then executes the
 * loaded program and reports it.
 */

import { describe, expect, it } from 'vitest';
import { resolveScenario } from '../../src/cli/run.ts';
import { buildRunReport } from '../../src/report/run-report.ts';
import { ScenarioError } from '../../src/scenarios/load.ts';
import { runDeterministic } from '../../src/smp/hosts/deterministic.ts';
import { Machine } from '../../src/smp/machine.ts';

const s = () => resolveScenario('unmap-without-shootdown');
/** CPU 1's program with one more load and an assert, the same three barriers in order. */
const reader = [
  { op: 'barrier', name: 'stored' },
  { op: 'load', addr: '0x400000', reg: 'r2' },
  { op: 'load', addr: '0x400008', reg: 'r3' },
  { op: 'assert', reg: 'r2', value: '0x5ca1ab1e' },
  { op: 'barrier', name: 'cached' },
  { op: 'barrier', name: 'unmapped' },
] as const;

describe('Machine.loadProgram', () => {
  it('runs and reports the loaded program', () => {
    const m = Machine.fromScenario(s(), { protocol: 'sync-ipi' });
    const next = m.loadProgram(1, reader);
    expect(m.scenario).toBe(next);
    expect(m.scenario.cpus[1]!.program.map((i) => i.op)).toEqual([
      'barrier',
      'load',
      'load',
      'assert',
      'barrier',
      'barrier',
    ]);
    const run = runDeterministic(m);
    expect(run.deadlock).toBeUndefined();
    expect(m.cpus[1]!.register(2)).toBe(0x5ca1ab1en);
    expect(m.cpus[1]!.pc).toBe(reader.length);
    const report = buildRunReport(m, run, { protocol: 'sync-ipi', host: 'deterministic', seed: 1 });
    expect(report.failures).toEqual([]);
  });

  it('names the field of an invalid instruction, as a scenario file would', () => {
    const m = Machine.fromScenario(s());
    const bad = [{ op: 'load', addr: '0x800000000000', reg: 'r0' }] as const;
    expect(() => m.loadProgram(0, bad)).toThrow(ScenarioError);
    expect(() => m.loadProgram(0, bad)).toThrow(/cpus\[0\]\.program\[0\]\.addr/);
    expect(() => m.loadProgram(2, reader)).toThrow('cpu 2 does not exist: the machine has 2 CPUs');
    // Nothing changed.
    expect(m.scenario.cpus[0]!.program[0]!.op).toBe('store');
  });

  it('keeps the barriers: a program that drops or reorders them is refused, all or nothing', () => {
    const m = Machine.fromScenario(s());
    const before = m.barriers.instanceOf[1];
    expect(() => m.loadProgram(1, [{ op: 'load', addr: '0x400000', reg: 'r0' }])).toThrow(
      'cpu 1: the program must keep its barriers ("stored", "cached", "unmapped") in that order, not none',
    );
    expect(m.barriers.instanceOf[1]).toEqual(before);
    // The CPU still runs its scenario program: the run is the unmodified one.
    const reference = Machine.fromScenario(s());
    expect(runDeterministic(m).records).toEqual(runDeterministic(reference).records);
  });

  it('refuses a CPU that has already stepped', () => {
    const m = Machine.fromScenario(s());
    m.cpus[0]!.step();
    expect(() =>
      m.loadProgram(0, [
        { op: 'barrier', name: 'stored' },
        { op: 'barrier', name: 'cached' },
        { op: 'barrier', name: 'unmapped' },
      ]),
    ).toThrow(/cpu 0 has already run \(running, pc 1\): load a program before its first step/);
    expect(m.barriers.instanceOf[0]).toEqual(Machine.fromScenario(s()).barriers.instanceOf[0]);
  });
});
