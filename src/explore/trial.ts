/**
 * One exploration trial: a fresh machine for the scenario, one run of the deterministic host
 * whose scheduling points are decided by the caller (through the reduction), and the hazard kinds
 * the checker finds in it. Exhaustive and random exploration differ only in how they decide.
 */

import { checkRun } from '../check/checker.ts';
import { HAZARD_KINDS, type HazardKind } from '../check/hazard.ts';
import type { Scenario } from '../scenarios/scenario.ts';
import { type DeterministicRun, runDeterministic } from '../smp/hosts/deterministic.ts';
import { Machine } from '../smp/machine.ts';
import { RamPool } from './ram-pool.ts';
import { type Decide, ReducedChooser } from './reduction.ts';

/** What one trial found. */
export interface Trial {
  /** The hazard kinds the checker reported, in `HAZARD_KINDS` order, each once. */
  readonly kinds: readonly HazardKind[];
  /** The CPU of every step: `smpsim run --schedule` with it replays the trial. */
  readonly schedule: readonly number[];
  /** The index chosen at each scheduling point (the trial's path in the schedule tree). */
  readonly choices: readonly number[];
  /** How many alternatives each scheduling point had. */
  readonly options: readonly number[];
}

/**
 * Records per trace ring: more than one step can write (every TLB entry evicted, a request
 * serviced and one sent per other CPU, and a few dozen more), since the host drains after each
 * step and the checker must see every record. Smaller than the default ring, which is cheaper
 * to allocate thousands of times.
 */
function traceCapacity(s: Scenario): number {
  return s.machine.tlb.entries + 4 * s.machine.cpus + 256;
}

/** Options of a `TrialRunner`. */
export interface TrialOptions {
  /** The local-step reduction (reduction.ts; default true); false runs every interleaving. */
  readonly reduce?: boolean;
  /** Sees each finished run's machine and host run before its RAM is reused (tests). */
  readonly observe?: (machine: Machine, run: DeterministicRun) => void;
}

/** Runs trials of one scenario under one protocol. Not thread-safe: one runner per thread. */
export class TrialRunner {
  readonly reduce: boolean;
  private readonly observe: TrialOptions['observe'];
  private readonly ram: RamPool;
  private readonly capacity: number;

  constructor(
    readonly scenario: Scenario,
    readonly protocol: string,
    options: TrialOptions = {},
  ) {
    this.reduce = options.reduce ?? true;
    this.observe = options.observe;
    this.ram = new RamPool(scenario);
    this.capacity = traceCapacity(scenario);
  }

  /** Runs one trial, asking `decide` at every scheduling point. */
  run(decide: Decide): Trial {
    const memory = this.ram.take();
    const machine = Machine.fromScenario(this.scenario, {
      protocol: this.protocol,
      memory,
      traceCapacity: this.capacity,
    });
    const chooser = new ReducedChooser(decide, this.reduce);
    const run = runDeterministic(machine, { choose: chooser.choose, onStep: chooser.onStep });
    if (run.lost > 0) {
      throw new Error(
        `explore: ${run.lost} trace records were lost in one step (ring of ${this.capacity}): the checker would miss events`,
      );
    }
    const found = new Set(checkRun(machine, run).map((h) => h.kind));
    this.observe?.(machine, run);
    this.ram.give(memory, machine, run.records, run.lost);
    return {
      kinds: HAZARD_KINDS.filter((k) => found.has(k)),
      schedule: run.schedule,
      choices: chooser.choices,
      options: chooser.options,
    };
  }
}
