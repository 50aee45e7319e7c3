/**
 * Small scenarios the exploration tests share, each with a known schedule tree.
 */

import { scenario } from '../../src/scenarios/builder.ts';
import type { Scenario } from '../../src/scenarios/scenario.ts';

export const P = 0x40_0000;
export const Q = 0x40_1000;

/**
 * Both CPUs unmap P; CPU 0 never flushes. Whoever runs first wins: if CPU 0 does, its
 * MapperFlush is dropped when it halts (`dropped-flush`); if CPU 1 does, CPU 0's unmap fails with
 * PageNotMapped and nothing is pending. No CPU accesses memory, so no other kind can arise.
 */
export const RACY_UNMAP: Scenario = scenario('racy-unmap')
  .describe(
    'Two CPUs unmap the same page; the one that never flushes drops its MapperFlush if it wins.',
  )
  .machine({ cpus: 2, ramBytes: 0x40_0000, protocol: 'sync-ipi' })
  .addressSpace('A', (as) => as.map4k(P, 0x20_0000, 'PRESENT|WRITABLE'))
  .cpu('A', (p) => p.unmap('4KiB', P))
  .cpu('A', (p) => p.unmap('4KiB', P).flush())
  .expect('none', ['dropped-flush'])
  .expect('sync-ipi', ['dropped-flush'])
  .build();

/** Two barriers named in opposite orders: every schedule deadlocks. */
export const CROSSED_BARRIERS: Scenario = scenario('crossed-barriers')
  .machine({ cpus: 2, ramBytes: 0x40_0000 })
  .addressSpace('A', (as) => as.map4k(P, 0x20_0000, 'PRESENT|WRITABLE'))
  .cpu('A', (p) => p.barrier('a').barrier('b'))
  .cpu('A', (p) => p.barrier('b').barrier('a'))
  .build();

/**
 * A tree of a few thousand leaves (for splitting it across threads, and for random trials):
 * `stores` stores on CPU 0 against as many loads on CPU 1, and CPU 0 ends with an unmap it
 * does not flush (dropped-flush in every schedule).
 */
export function wide(stores: number): Scenario {
  return scenario(`wide-${stores}`)
    .machine({ cpus: 2, ramBytes: 0x40_0000, protocol: 'none' })
    .addressSpace('A', (as) =>
      as.map4k(P, 0x20_0000, 'PRESENT|WRITABLE').map4k(Q, 0x20_1000, 'PRESENT|WRITABLE'),
    )
    .cpu('A', (p) => {
      for (let i = 0; i < stores; i++) p.store(P + 8 * i, i);
      p.unmap('4KiB', Q);
    })
    .cpu('A', (p) => {
      for (let i = 0; i < stores; i++) p.load(P, 'r0');
    })
    .build();
}
