/**
 * The workload benchmark on the modeled clock, tiny: each protocol sends the IPIs its definition
 * says (batching one round per period, broadcast and lazy none), lazy holds frees and keeps stale
 * windows longest, and the checker finds no hazard under any protocol. No timing is asserted.
 */

import { describe, expect, it } from 'vitest';
import { parseVariant } from '../../src/bench/variant.ts';
import {
  renderWorkloadReport,
  runWorkloadBench,
  workloadScenario,
} from '../../src/bench/workload.ts';
import { DEFAULT_COST_MODEL } from '../../src/cpu/cost-model.ts';

describe('bench workload (modeled clock)', () => {
  it("shows the literature's qualitative results on a tiny run", async () => {
    const periods = 4;
    const pages = 10;
    const cpus = 3;
    const r = await runWorkloadBench({
      cpus,
      periods,
      unmapPages: pages,
      loads: 100,
      variants: ['sync-ipi', 'batched', 'lazy', 'broadcast'].map(parseVariant),
      costs: DEFAULT_COST_MODEL,
      modeled: true,
      wall: false,
    });
    const by = Object.fromEntries(r.modeled!.map((m) => [m.variant, m]));
    const unmapping = periods - 1;
    expect(by['sync-ipi']!.ipis).toBe(unmapping * pages * (cpus - 1));
    expect(by.batched!.ipis).toBe(unmapping * (cpus - 1));
    expect(by.broadcast!.ipis).toBe(0);
    expect(by.broadcast!.broadcasts).toBe(unmapping * pages * (cpus - 1));
    expect(by.lazy!.ipis).toBe(0);
    expect(by.lazy!.lazyRequests).toBeGreaterThan(0);
    expect(by.lazy!.heldFrees).toBeGreaterThan(0);
    expect(by.lazy!.staleMeanCycles).toBeGreaterThan(by['sync-ipi']!.staleMeanCycles);
    for (const m of r.modeled!) {
      expect(m.hazards).toBe(0);
      expect(m.staleUses).toBe(0);
      expect(m.staleWindows).toBe(unmapping * pages * (cpus - 1));
      expect(m.loads).toBeGreaterThan(0);
      expect(m.tlbMissRate).toBeGreaterThan(0);
      expect(m.tlbMissRate).toBeLessThan(1);
    }
    expect(by['sync-ipi']!.throughput).toBeLessThan(by.batched!.throughput);
    expect(renderWorkloadReport(r)).toContain('Modeled clock (deterministic host)');
  });

  it('refuses more buffer pages than registers hold', () => {
    expect(() =>
      workloadScenario({ cpus: 2, periods: 1, unmapPages: 16, workingSet: 4, loads: 1 }),
    ).toThrow('unmapPages must be from 1 to 15');
  });
});
