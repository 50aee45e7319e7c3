/**
 * The sweep engine on the modeled clock: IPIs per operation per protocol, the 33-page ceiling,
 * the remote part. Its worker-thread rows are run by test/cli/bench.test.ts.
 */

import { describe, expect, it } from 'vitest';
import { fillRemote, type ModeledPoint, modeledRow } from '../../src/bench/sweep.ts';
import { parseVariant } from '../../src/bench/variant.ts';
import { DEFAULT_COST_MODEL as C } from '../../src/cpu/cost-model.ts';

const o = { costs: C, warmup: 1, repeats: 2, touch: 4 };

function row(variant: string, cpus: number, pages: number[]): ModeledPoint[] {
  return modeledRow(parseVariant(variant), cpus, pages, o);
}

describe('modeledRow', () => {
  it('counts IPIs per operation the way each protocol sends them', () => {
    const at = (v: string) => row(v, 3, [2, 34]);
    const [s2, s34] = at('sync-ipi');
    expect([s2!.ipis, s34!.ipis]).toEqual([2 * 2, 34 * 2]);
    const [b2, b34] = at('batched');
    expect([b2!.ipis, b34!.ipis]).toEqual([2, 2]);
    const [c2] = at('broadcast');
    expect([c2!.ipis, c2!.broadcasts]).toEqual([0, 2 * 2]);
    const [l2] = at('lazy');
    expect(l2!.ipis).toBe(0);
    const [k2] = at('sync-ipi+lazy-tlb-skip');
    expect([k2!.ipis, k2!.lazyRequests, k2!.broadcasts]).toEqual([0, 0, 0]);
  });

  it('summarizes the repeats, and the remote part is the cost beyond 1 CPU', () => {
    const points = [...row('batched', 1, [33, 34]), ...row('batched', 2, [33, 34])];
    fillRemote(points, (p) => p.op.median);
    for (const p of points) {
      expect(p.op.n).toBe(2);
      expect(p.op.min).toBeLessThanOrEqual(p.op.median);
      expect(p.op.max).toBeGreaterThanOrEqual(p.op.p99);
      expect(p.round.median).toBeGreaterThan(p.op.median);
    }
    const remote = (pages: number) => points.find((p) => p.cpus === 2 && p.pages === pages)!.remote;
    // 33 pages are flushed one by one at the target, 34 in full (the 33-page ceiling). The free
    // that sends the batch runs again once it is done, but is charged its base cost once.
    const round = C.ipiSend + C.ipiReceive + C.ipiAck;
    expect(remote(33)).toBe(round + 33 * (C.invlpg + C.flushPage));
    expect(remote(34)).toBe(round + C.cr3Write);
    expect(points.filter((p) => p.cpus === 1).map((p) => p.remote)).toEqual([0, 0]);
  });
});
