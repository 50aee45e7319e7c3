/**
 * What the coherence checker reports: one `Hazard` per time a TLB held, and used, something the
 * page tables (or the allocator) no longer said. The kinds and their definitions are those of the
 * scenario spec (docs/scenario.md, "Hazard kinds"); their names are fixed there.
 */

import { HAZARD_KINDS, type HazardKind } from '../scenarios/scenario.ts';

// The kind names belong to the scenario format (its `expect` blocks name them); one list.
export { HAZARD_KINDS, type HazardKind };

/** Whether a string names a hazard kind. */
export function isHazardKind(s: string): s is HazardKind {
  return (HAZARD_KINDS as readonly string[]).includes(s);
}

/** One event in the chain that led to a hazard, in the order they happened. */
export interface StoryEvent {
  /** Host step of the event (the deterministic host's step count; on workers, the CPU's own). */
  readonly step: number;
  /** The CPU the event happened on. */
  readonly cpu: number;
  /** What the event was, in a sentence a student can follow. */
  readonly text: string;
  /** Global trace sequence number of the record behind it (links to the timeline). */
  readonly seq: number;
}

/** One reported hazard. */
export interface Hazard {
  readonly kind: HazardKind;
  /** The CPU whose access (or halt, or wait) went wrong. */
  readonly cpu: number;
  /** The virtual address involved (canonical low 48 bits), or undefined (deadlock). */
  readonly addr: number | undefined;
  /** The physical frame(s) involved: the stale one first, then what the tables say now. */
  readonly frames: readonly number[];
  /** The step of the offending access. */
  readonly step: number;
  /** One line: why this is the hazard. */
  readonly why: string;
  /** The chain of events that led to it, oldest first, ending with the offending access. */
  readonly story: readonly StoryEvent[];
}
