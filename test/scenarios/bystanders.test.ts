/**
 * Tests of `withCpus` (src/scenarios/bystanders.ts): the bystanders' shape, a unique end barrier,
 * the range rule; and what the bystanders do in a run: they stay in the cpumask until the
 * scenario's CPUs are done, so a sync-ipi flush interrupts them too, the scenario's hazards are
 * the same, and a CPU that faults does not keep them waiting.
 */

import { describe, expect, it } from 'vitest';
import { checkRun } from '../../src/check/checker.ts';
import { resolveScenario } from '../../src/cli/run.ts';
import { scenario } from '../../src/scenarios/builder.ts';
import { CpusError, withCpus } from '../../src/scenarios/bystanders.ts';
import { loadScenario, scenarioToJson } from '../../src/scenarios/load.ts';
import { runDeterministic } from '../../src/smp/hosts/deterministic.ts';
import { runOnWorkers } from '../../src/smp/hosts/worker.ts';
import { Machine } from '../../src/smp/machine.ts';
import { TraceKind } from '../../src/trace/record.ts';

const PAGE = 0x40_0000;

describe('withCpus', () => {
  const s = resolveScenario('unmap-without-shootdown');

  it('adds idle CPUs in CPU 0 address space and ends every program at one new barrier', () => {
    const big = withCpus(s, 5);
    expect(big.machine.cpus).toBe(5);
    expect(big.cpus).toHaveLength(5);
    for (const [i, cpu] of big.cpus.entries()) {
      const own = s.cpus[i]?.program ?? [];
      expect(cpu.program.slice(0, own.length)).toEqual(own);
      expect(cpu.program.at(-1)).toEqual({ op: 'barrier', name: 'bystanders-end' });
      expect(cpu.program).toHaveLength(own.length + 1);
      expect(cpu.as).toBe(s.cpus[i]?.as ?? s.cpus[0]!.as);
    }
    // Still a valid scenario: it survives the file format (worker threads re-load it).
    const again = loadScenario(JSON.stringify(scenarioToJson(big)), 'bystanders');
    expect(again.cpus).toHaveLength(5);
  });

  it('is the scenario itself at its own CPU count, and refuses counts out of range', () => {
    expect(withCpus(s, 2)).toBe(s);
    expect(() => withCpus(s, 1)).toThrow(CpusError);
    expect(() => withCpus(s, 1)).toThrow(
      '--cpus 1: unmap-without-shootdown programs 2 CPUs, so the machine needs from 2 to 64',
    );
    expect(() => withCpus(s, 65)).toThrow(/--cpus 65: .* from 2 to 64/);
    expect(() => withCpus(s, 2.5)).toThrow(/--cpus 2.5/);
  });

  it('picks an end barrier name no program uses', () => {
    const taken = scenario('taken')
      .machine({ cpus: 1 })
      .addressSpace('A', (as) => as.map4k(PAGE, 0x20_0000, 'PRESENT'))
      .cpu('A', (p) => p.barrier('bystanders-end').barrier('bystanders-end-2'))
      .build();
    expect(withCpus(taken, 2).cpus[1]!.program).toEqual([
      { op: 'barrier', name: 'bystanders-end-3' },
    ]);
  });
});

describe('bystanders in a run', () => {
  const s = resolveScenario('unmap-without-shootdown');

  it('receive the IPIs of every sync-ipi flush of their address space, then halt', () => {
    const m = Machine.fromScenario(withCpus(s, 4), { protocol: 'sync-ipi' });
    const run = runDeterministic(m);
    expect(run.deadlock).toBeUndefined();
    const sends = run.records.filter((r) => r.kind === TraceKind.IpiSend).map((r) => r.a);
    expect(sends.sort()).toEqual([1, 2, 3]);
    expect(m.cpus.map((c) => c.status)).toEqual(['halted', 'faulted', 'halted', 'halted']);
    expect(checkRun(m, run)).toEqual([]);
  });

  it('leave the scenario hazards as they are (protocol none: the stale translation)', () => {
    const kinds = (cpus: number) => {
      const m = Machine.fromScenario(withCpus(s, cpus), { protocol: 'none' });
      return [...new Set(checkRun(m, runDeterministic(m)).map((h) => h.kind))];
    };
    expect(kinds(6)).toEqual(kinds(2));
    expect(kinds(2)).toEqual(['stale-translation']);
  });

  it('run on worker threads too (8 CPUs: oversubscribed, so through Atomics.wait)', async () => {
    const m = Machine.fromScenario(withCpus(s, 8), { protocol: 'sync-ipi' });
    const run = await runOnWorkers(m, { timeoutMs: 5000 });
    expect(run.deadlock).toBeUndefined();
    expect(run.cpus.map((c) => c.end)).toEqual(Array(8).fill('halted'));
    expect(m.shootdown.acksTo(0)).toBe(7);
  });
});
