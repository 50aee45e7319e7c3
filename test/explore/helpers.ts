/**
 * Helpers shared by the exploration tests: scenarios small enough to count by hand, every leaf's
 * outcome (to compare reductions), and `exploreExpect`, the check of a scenario's `expect` block.
 */

import { hex } from '../../src/addr.ts';
import type { HazardKind } from '../../src/check/hazard.ts';
import { exploreSubtree } from '../../src/explore/dfs.ts';
import { checkExpect, type ExpectCheck } from '../../src/explore/expect.ts';
import { type ExploreResult, exploreScenario } from '../../src/explore/explore.ts';
import { type TrialOptions, TrialRunner } from '../../src/explore/trial.ts';
import type { Scenario } from '../../src/scenarios/scenario.ts';
import type { DeterministicRun } from '../../src/smp/hosts/deterministic.ts';
import type { Machine } from '../../src/smp/machine.ts';

/**
 * What a run ended with, as one string: each CPU's status, registers r0..r3, faults, Mapper
 * errors and failure, and the hazard kinds. Step numbers are left out: reordering independent
 * steps changes them and nothing else.
 */
export function outcomeOf(machine: Machine, kinds: readonly HazardKind[] = []): string {
  const cpus = machine.cpus.map((c) =>
    [
      c.status,
      [0, 1, 2, 3].map((r) => hex(c.register(r))).join(' '),
      c.faults.map((f) => `#PF ${hex(f.addr)} ${hex(f.errorCode)}`).join(' '),
      c.mapperErrors.map((e) => `${e.op}:${e.err}`).join(' '),
      c.failure ?? '',
    ].join('|'),
  );
  return `${cpus.join(' / ')} :: ${kinds.join(',')}`;
}

/** Every leaf of the (reduced or full) tree: its count and the set of distinct outcomes. */
export function outcomes(
  s: Scenario,
  protocol: string,
  options: TrialOptions = {},
): { schedules: number; outcomes: Set<string>; schedulesSeen: Set<string> } {
  const found = new Set<string>();
  const seen = new Set<string>();
  let last: { machine: Machine; run: DeterministicRun } | undefined;
  const runner = new TrialRunner(s, protocol, {
    ...options,
    observe: (machine, run) => {
      last = { machine, run };
    },
  });
  const chunk = exploreSubtree(runner, [], Number.MAX_SAFE_INTEGER, (trial) => {
    found.add(outcomeOf(last!.machine, trial.kinds));
    seen.add(trial.schedule.join(','));
  });
  return { schedules: chunk.schedules, outcomes: found, schedulesSeen: seen };
}

/**
 * Explores `scenario` under `protocol` (exhaustively when the tree has at most `maxSchedules`
 * leaves) and compares the reachable kinds with its `expect` block: the check every built-in
 * scenario must pass.
 */
export async function exploreExpect(
  scenario: Scenario,
  protocol: string,
  maxSchedules = 20_000,
): Promise<{ result: ExploreResult; check: ExpectCheck }> {
  const result = await exploreScenario(scenario, { protocol, maxSchedules });
  return { result, check: checkExpect(scenario, result) };
}
