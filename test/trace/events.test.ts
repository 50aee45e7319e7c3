/**
 * Decoding trace records into typed events, checked on the records a real run produces.
 */

import { describe, expect, it } from 'vitest';
import { resolveScenario } from '../../src/cli/run.ts';
import { runDeterministic } from '../../src/smp/hosts/deterministic.ts';
import { Machine } from '../../src/smp/machine.ts';
import { decodeEvent } from '../../src/trace/events.ts';

describe('decodeEvent', () => {
  const machine = Machine.fromScenario(resolveScenario('unmap-without-shootdown'), {
    protocol: 'none',
  });
  const run = runDeterministic(machine, { seed: 1 });
  const events = run.records.map(decodeEvent);

  it('decodes every record of a run to a known type', () => {
    expect(events.length).toBeGreaterThan(20);
    expect(events.filter((e) => e.type === 'unknown')).toEqual([]);
  });

  it('tells the story of the stale hit: fill, unmap, local evict, then a hit on cpu 1', () => {
    const story = events
      .filter((e) => ['tlb-fill', 'mapper', 'tlb-evict', 'tlb-hit', 'flush'].includes(e.type))
      .map((e) => `${e.cpu}:${e.type}`);
    expect(story).toEqual([
      '0:tlb-fill',
      '1:tlb-fill',
      '0:mapper',
      '0:tlb-evict',
      '0:flush',
      '1:tlb-hit',
    ]);
    const hit = events.find((e) => e.type === 'tlb-hit');
    expect(hit).toMatchObject({
      cpu: 1,
      type: 'tlb-hit',
      addr: 0x40_0000,
      frame: 0x20_0000,
      access: 'read',
    });
    const flush = events.find((e) => e.type === 'flush');
    expect(flush).toMatchObject({ type: 'flush', page: 0x40_0000, outcome: 'flushed' });
  });

  it('an unknown kind decodes to type unknown instead of throwing', () => {
    const r = { seq: 0, kind: 999 as never, cpu: 0, step: 0, a: 0, b: 0, c: 0, d: 0 };
    expect(decodeEvent(r)).toMatchObject({ type: 'unknown', kind: 999 });
  });
});
