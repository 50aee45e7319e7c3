/**
 * A scenario's `expect` block against what exploration found: under each protocol it names, the
 * reachable hazard kinds must be exactly the listed ones (scenario spec, `expect`).
 */

import { HAZARD_KINDS, type HazardKind } from '../check/hazard.ts';
import type { Protocol, Scenario } from '../scenarios/scenario.ts';
import type { ExploreResult } from './explore.ts';

/** The verdict for one protocol. */
export interface ExpectCheck {
  readonly protocol: string;
  /** The kinds `expect` lists for the protocol, or undefined when it names no such protocol. */
  readonly expected: readonly HazardKind[] | undefined;
  /** Expected but not reachable. */
  readonly missing: readonly HazardKind[];
  /** Reachable but not expected. */
  readonly extra: readonly HazardKind[];
  /** True when nothing is expected for the protocol, or the sets are equal. */
  readonly ok: boolean;
}

/** Compares `result` with `scenario.expect[result.protocol]`. */
export function checkExpect(scenario: Scenario, result: ExploreResult): ExpectCheck {
  const expected = scenario.expect?.[result.protocol as Protocol];
  if (expected === undefined) {
    return { protocol: result.protocol, expected, missing: [], extra: [], ok: true };
  }
  const want = new Set(expected);
  const got = new Set(result.reachable);
  const missing = HAZARD_KINDS.filter((k) => want.has(k) && !got.has(k));
  const extra = HAZARD_KINDS.filter((k) => got.has(k) && !want.has(k));
  return {
    protocol: result.protocol,
    expected,
    missing,
    extra,
    ok: missing.length === 0 && extra.length === 0,
  };
}

/** `missing stale-translation; extra deadlock`, or `''` when they agree. */
export function describeMismatch(check: ExpectCheck): string {
  const parts: string[] = [];
  if (check.missing.length > 0) parts.push(`missing ${check.missing.join(', ')}`);
  if (check.extra.length > 0) parts.push(`extra ${check.extra.join(', ')}`);
  return parts.join('; ');
}
