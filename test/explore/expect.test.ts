/**
 * Tests of the `expect` comparison (src/explore/expect.ts): exact set equality per protocol,
 * with what is missing and what is extra named; protocols the block does not name pass.
 */

import { describe, expect, it } from 'vitest';
import { checkExpect, describeMismatch } from '../../src/explore/expect.ts';
import type { ExploreResult } from '../../src/explore/explore.ts';
import { RACY_UNMAP } from './scenarios.ts';

const result = (protocol: string, reachable: ExploreResult['reachable']): ExploreResult => ({
  scenario: RACY_UNMAP.name,
  protocol,
  schedules: 1,
  exhaustive: true,
  reachable,
  witness: {},
});

describe('checkExpect', () => {
  it('passes exactly the expected set', () => {
    const c = checkExpect(RACY_UNMAP, result('none', ['dropped-flush']));
    expect(c).toEqual({
      protocol: 'none',
      expected: ['dropped-flush'],
      missing: [],
      extra: [],
      ok: true,
    });
    expect(describeMismatch(c)).toBe('');
  });

  it('names what is missing and what is extra, in the spec order of kinds', () => {
    const c = checkExpect(RACY_UNMAP, result('sync-ipi', ['stale-translation', 'deadlock']));
    expect(c.ok).toBe(false);
    expect(c.missing).toEqual(['dropped-flush']);
    expect(c.extra).toEqual(['stale-translation', 'deadlock']);
    expect(describeMismatch(c)).toBe('missing dropped-flush; extra stale-translation, deadlock');
    expect(describeMismatch(checkExpect(RACY_UNMAP, result('none', [])))).toBe(
      'missing dropped-flush',
    );
  });

  it('a protocol the block does not name, or a scenario without one, always passes', () => {
    expect(checkExpect(RACY_UNMAP, result('lazy', ['deadlock']))).toMatchObject({
      expected: undefined,
      ok: true,
    });
    const { expect: _, ...bare } = RACY_UNMAP;
    expect(checkExpect(bare, result('none', ['deadlock'])).ok).toBe(true);
  });
});
