/**
 * Tests of `BarrierBoard` (src/cpu/barrier.ts) and of the `barrier` instruction (scenario spec):
 * a barrier opens when its last participant arrives; a CPU that halted or faulted before reaching
 * it is not waited for; two CPUs waiting at different barriers in opposite orders deadlock; a program
 * loaded later keeps its barriers (`reassign`).
 */

import { describe, expect, it } from 'vitest';
import { BarrierBoard } from '../../src/cpu/barrier.ts';
import { StepResult } from '../../src/cpu/cpu.ts';
import { type ProgramBuilder, scenario } from '../../src/scenarios/builder.ts';
import { runDeterministic } from '../../src/smp/hosts/deterministic.ts';
import { Machine } from '../../src/smp/machine.ts';

const PAGE = 0x40_0000;
const UNMAPPED = 0x7000_0000;

function machine(...programs: ((p: ProgramBuilder) => unknown)[]): Machine {
  let b = scenario('barriers')
    .machine({ protocol: 'none' })
    .addressSpace('A', (as) => as.map4k(PAGE, 0x20_0000, 'PRESENT|WRITABLE'));
  for (const program of programs) b = b.cpu('A', program);
  return Machine.fromScenario(b.build());
}

describe('BarrierBoard', () => {
  it('numbers instances per name and occurrence, and counts the participants', () => {
    const board = BarrierBoard.create([['a', undefined, 'b', 'a'], [undefined, 'a'], ['b']]);
    expect(board.names).toEqual(['a#0', 'b#0', 'a#1']);
    expect(board.instanceOf).toEqual([[0, -1, 1, 2], [-1, 0], [1]]);
    expect([0, 1, 2].map((id) => board.required(id))).toEqual([2, 2, 1]);
  });

  it('opens when the last participant arrives, not before', () => {
    const board = BarrierBoard.create([['a'], ['a'], ['a']]);
    expect(board.arrive(0)).toBe(false);
    expect(board.arrive(0)).toBe(false);
    expect(board.isOpen(0)).toBe(false);
    expect(board.words[board.releaseWord(0)]).toBe(0);
    expect(board.arrive(0)).toBe(true);
    expect(board.isOpen(0)).toBe(true);
    expect(board.words[board.releaseWord(0)]).not.toBe(0);
    expect(board.arrived(0)).toBe(3);
  });

  it('reassign moves a CPU barriers to a new program, which must name the same ones in order', () => {
    const board = BarrierBoard.create([
      ['a', undefined, 'b'],
      ['b', 'a'],
    ]);
    board.reassign(0, [undefined, 'a', undefined, undefined, 'b']);
    expect(board.instanceOf[0]).toEqual([-1, 0, -1, -1, 1]);
    expect(board.instanceOf[1]).toEqual([1, 0]); // untouched
    expect([0, 1].map((id) => board.required(id))).toEqual([2, 2]);
    expect(() => board.reassign(1, ['a', 'b'])).toThrow(
      'cpu 1: the program must keep its barriers ("b", "a") in that order, not "a", "b"',
    );
    expect(() => board.reassign(1, [undefined])).toThrow(
      /keep its barriers \("b", "a"\).*not none/,
    );
    expect(() => board.reassign(2, [])).toThrow(RangeError);
  });

  it('a withdrawn participant is not waited for (withdraw before or after the others arrive)', () => {
    const early = BarrierBoard.create([['a'], ['a']]);
    early.withdraw(0);
    expect(early.isOpen(0)).toBe(false);
    expect(early.arrive(0)).toBe(true);

    const late = BarrierBoard.create([['a'], ['a']]);
    expect(late.arrive(0)).toBe(false);
    late.withdraw(0);
    expect(late.isOpen(0)).toBe(true);
    expect(late.required(0)).toBe(1);
  });
});

describe('barrier instruction', () => {
  it('CPUs block at the barrier until the last participant arrives, then all go on', () => {
    const m = machine(
      (p) => p.barrier('b').load(PAGE, 'r0'),
      (p) => p.barrier('b').load(PAGE, 'r0'),
      (p) => p.load(PAGE, 'r0').barrier('b'),
    );
    const [c0, c1, c2] = m.cpus;
    expect(c0!.step()).toBe(StepResult.Blocked);
    expect(c1!.step()).toBe(StepResult.Blocked);
    expect(c0!.step()).toBe(StepResult.Blocked); // still waiting: nothing changed
    expect(c0!.pc).toBe(0);
    expect(c2!.step()).toBe(StepResult.Ran); // the load
    expect(c2!.step()).toBe(StepResult.Ran); // the last arrival opens the barrier
    expect(c2!.pc).toBe(2);
    expect(c0!.blockedWords![c0!.blockedIndex]).not.toBe(c0!.blockedExpected);
    expect(c0!.step()).toBe(StepResult.Ran); // leaves the barrier
    expect(c0!.pc).toBe(1);
    expect(c1!.step()).toBe(StepResult.Ran);
    expect(c0!.step()).toBe(StepResult.Ran); // the load after the barrier
    expect(c0!.stats.tlbMisses).toBe(1);
  });

  it('under the deterministic host every CPU passes the barrier', () => {
    const m = machine(
      (p) => p.barrier('b').load(PAGE, 'r0'),
      (p) => p.load(PAGE, 'r0').barrier('b'),
    );
    const run = runDeterministic(m, { seed: 3 });
    expect(run.deadlock).toBeUndefined();
    expect(m.cpus.map((c) => c.status)).toEqual(['halted', 'halted']);
  });

  it('a CPU that faults before the barrier is not waited for', () => {
    const m = machine(
      (p) => p.barrier('b').load(PAGE, 'r0'),
      (p) => p.load(UNMAPPED, 'r0').barrier('b'),
    );
    // CPU 0 arrives first and blocks; then CPU 1 faults.
    const run = runDeterministic(m, { schedule: [0, 1] });
    expect(run.deadlock).toBeUndefined();
    expect(m.cpus[1]!.status).toBe('faulted');
    expect(m.cpus[0]!.status).toBe('halted');
    expect(m.cpus[0]!.stats.tlbMisses).toBe(1); // it ran the load after the barrier
  });

  it('a CPU that fails (assert) before the barrier is not waited for', () => {
    const m = machine(
      (p) => p.barrier('b').load(PAGE, 'r0'),
      (p) => p.assert('r0', 1).barrier('b'),
    );
    const run = runDeterministic(m, { schedule: [0, 1] });
    expect(run.deadlock).toBeUndefined();
    expect(m.cpus.map((c) => c.status)).toEqual(['halted', 'failed']);
  });

  it('a CPU that faults before several barriers withdraws from each of them', () => {
    const m = machine(
      (p) => p.barrier('b1').barrier('b2').load(PAGE, 'r0'),
      (p) => p.load(UNMAPPED, 'r0').barrier('b1').barrier('b2'),
    );
    const run = runDeterministic(m, { schedule: [0, 1] });
    expect(run.deadlock).toBeUndefined();
    expect(m.cpus[0]!.status).toBe('halted');
  });

  it('a CPU that faults after passing a barrier withdraws only from the ones ahead', () => {
    const m = machine(
      (p) => p.barrier('b1').barrier('b2').barrier('b3'),
      (p) => p.barrier('b1').load(UNMAPPED, 'r0').barrier('b2').barrier('b3'),
      (p) => p.barrier('b1').barrier('b2').barrier('b3'),
    );
    const run = runDeterministic(m, { seed: 5 });
    expect(run.deadlock).toBeUndefined();
    expect(m.cpus.map((c) => c.status)).toEqual(['halted', 'faulted', 'halted']);
    const ids = ['b1#0', 'b2#0', 'b3#0'].map((n) => m.barriers.names.indexOf(n));
    expect(ids.map((id) => m.barriers.required(id))).toEqual([3, 2, 2]);
    expect(ids.map((id) => m.barriers.arrived(id))).toEqual([3, 2, 2]);
  });

  it('two CPUs at different barriers in opposite orders deadlock', () => {
    const m = machine(
      (p) => p.barrier('a').barrier('b'),
      (p) => p.barrier('b').barrier('a'),
    );
    const run = runDeterministic(m, { seed: 1 });
    expect(run.deadlock).toBeDefined();
    expect(run.deadlock!.cpus).toEqual([0, 1]);
    expect(run.deadlock!.waits).toEqual([
      'cpu 0 waits at barrier a#0 (1 of 2 arrived)',
      'cpu 1 waits at barrier b#0 (1 of 2 arrived)',
    ]);
    expect(m.cpus.map((c) => c.status)).toEqual(['running', 'running']);
  });
});
