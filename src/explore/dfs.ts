/**
 * Exhaustive exploration: a depth-first walk of the schedule tree by re-execution. A node is a
 * scheduling point, a branch the runnable CPU chosen there, a leaf a complete run. Each trial
 * replays a path (a list of choice indices) and takes the first alternative beyond it; the next
 * path bumps the deepest choice that has an untried alternative. Leaves come out in the tree's
 * lexicographic order, so "the first leaf that shows a hazard" is the same however the tree is
 * cut into subtrees for worker threads.
 */

import type { HazardKind } from '../check/hazard.ts';
import { formatSchedule } from '../smp/hosts/deterministic.ts';
import type { Trial, TrialRunner } from './trial.ts';

/** For each hazard kind found, the schedule of the first trial (in the walk's order) showing it. */
export type Witnesses = Partial<Record<HazardKind, string>>;

/** The result of walking (part of) one subtree. */
export interface DfsChunk {
  /** The path of the chunk's first leaf: chunks sorted by it are in the tree's order. */
  readonly first: readonly number[];
  /** Leaves (complete runs) visited. */
  readonly schedules: number;
  readonly witness: Witnesses;
  /** The subtrees left when `budget` ran out, as path prefixes, in the tree's order. */
  readonly rest: readonly (readonly number[])[];
}

/**
 * Visits the leaves of the subtree at `prefix` in order, at most `budget` of them (>= 1).
 * `onLeaf` is told about each leaf as it is visited (progress).
 *
 * @throws Error if a replayed path does not exist: the tree changed between runs, which would
 *   mean the simulation is not deterministic
 */
export function exploreSubtree(
  runner: TrialRunner,
  prefix: readonly number[],
  budget: number,
  onLeaf?: (trial: Trial) => void,
): DfsChunk {
  const witness: Witnesses = {};
  let first: readonly number[] | undefined;
  let schedules = 0;
  let path: readonly number[] = prefix;
  for (;;) {
    const replay = path;
    let depth = 0;
    const trial = runner.run((options) => {
      const c = depth < replay.length ? replay[depth]! : 0;
      if (c >= options) {
        throw new Error(
          `explore: path ${replay.join(',')} asks for alternative ${c} of ${options} at scheduling point ${depth}: the schedule tree changed between runs`,
        );
      }
      depth++;
      return c;
    });
    if (trial.choices.length < prefix.length) {
      throw new Error(
        `explore: prefix ${prefix.join(',')} is deeper than the run (${trial.choices.length} scheduling points)`,
      );
    }
    first ??= trial.choices;
    schedules++;
    for (const k of trial.kinds) witness[k] ??= formatSchedule(trial.schedule);
    onLeaf?.(trial);
    const { choices, options } = trial;
    let d = choices.length - 1;
    while (d >= prefix.length && choices[d]! + 1 >= options[d]!) d--;
    if (d < prefix.length) return { first, schedules, witness, rest: [] };
    if (schedules >= budget) return { first, schedules, witness, rest: rightOf(trial, prefix) };
    path = [...choices.slice(0, d), choices[d]! + 1];
  }
}

/**
 * The unvisited part of the subtree at `prefix` after `leaf`, as subtrees in the tree's order:
 * the later siblings of each node on the leaf's path, deepest first.
 */
function rightOf(leaf: Trial, prefix: readonly number[]): number[][] {
  const out: number[][] = [];
  for (let d = leaf.choices.length - 1; d >= prefix.length; d--) {
    for (let c = leaf.choices[d]! + 1; c < leaf.options[d]!; c++) {
      out.push([...leaf.choices.slice(0, d), c]);
    }
  }
  return out;
}

/** Compares two paths lexicographically (the tree's order of their subtrees). */
export function comparePaths(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i]! - b[i]!;
  }
  return a.length - b.length;
}
