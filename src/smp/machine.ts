/**
 * `Machine`: a scenario turned into CPUs over one shared RAM, with one trace ring per CPU. Hosts
 * (deterministic today; worker threads later) drive its CPUs; the machine itself never runs.
 */

import { BarrierBoard } from '../cpu/barrier.ts';
import { type CostModel, DEFAULT_COST_MODEL } from '../cpu/cost-model.ts';
import { Cpu } from '../cpu/cpu.ts';
import type { Scenario } from '../scenarios/scenario.ts';
import { type ScenarioSetup, setupScenario } from '../scenarios/setup.ts';
import { TraceRing } from '../trace/ring.ts';

/** Options of `Machine.fromScenario`. */
export interface MachineOptions {
  /** Records per CPU trace ring (the host drains after each step, so this only bounds a burst). */
  readonly traceCapacity?: number;
  /** The modeled-cycle costs. */
  readonly costs?: CostModel;
  /** False: no trace records at all (benchmarks of the bare step loop). */
  readonly trace?: boolean;
}

/** CPUs, RAM, allocator and address spaces of one scenario run. */
export class Machine {
  private constructor(
    readonly scenario: Scenario,
    readonly setup: ScenarioSetup,
    readonly barriers: BarrierBoard,
    readonly cpus: readonly Cpu[],
    readonly traces: readonly TraceRing[],
  ) {}

  /** Builds the initial state of `scenario` (spec order: reserve, P4 tables, mappings) and its CPUs. */
  static fromScenario(scenario: Scenario, options: MachineOptions = {}): Machine {
    const setup = setupScenario(scenario);
    const barriers = BarrierBoard.create(
      scenario.cpus.map((c) =>
        c.program.map((ins) => (ins.op === 'barrier' ? ins.name : undefined)),
      ),
    );
    const m = scenario.machine;
    const traces = scenario.cpus.map(() => TraceRing.create(options.traceCapacity ?? 4096));
    const env = {
      memory: setup.memory,
      allocator: setup.allocator,
      spaces: setup.spaces,
      barriers,
    };
    const cpus = scenario.cpus.map(
      (c, id) =>
        new Cpu(
          {
            id,
            tlb: m.tlb,
            pge: m.pge,
            pcide: m.pcid,
            wp: m.wp,
            nxe: m.nxe,
            addressSpace: c.as,
            program: c.program,
            costs: options.costs ?? DEFAULT_COST_MODEL,
            ...(options.trace === false ? {} : { trace: traces[id]! }),
          },
          env,
        ),
    );
    return new Machine(scenario, setup, barriers, cpus, traces);
  }
}
