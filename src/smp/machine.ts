/**
 * `Machine`: a scenario turned into CPUs over one shared RAM and one control block (layout.ts:
 * host words, IPI mailboxes, cpumasks, CR3 words, the table generation, one trace ring per CPU).
 * Hosts (deterministic, worker threads) drive its CPUs; the machine itself never runs.
 */

import { BarrierBoard } from '../cpu/barrier.ts';
import { type CostModel, DEFAULT_COST_MODEL } from '../cpu/cost-model.ts';
import { Cpu } from '../cpu/cpu.ts';
import type { PhysicalMemory } from '../memory/physical-memory.ts';
import type { Scenario } from '../scenarios/scenario.ts';
import { type ScenarioSetup, setupScenario } from '../scenarios/setup.ts';
import { TraceRing } from '../trace/ring.ts';
import { controlLayout, createControlBlock, type SharedControlBlock } from './layout.ts';
import { Shootdown } from './shootdown.ts';

/** Options of `Machine.fromScenario`. */
export interface MachineOptions {
  /** Records per CPU trace ring (the host drains after each step, so this only bounds a burst). */
  readonly traceCapacity?: number;
  /** The modeled-cycle costs. */
  readonly costs?: CostModel;
  /** False: no trace records at all (benchmarks of the bare step loop). */
  readonly trace?: boolean;
  /** False: no coherence probe on TLB hits (bench/checker.ts measures what it costs). */
  readonly probe?: boolean;
  /** The shootdown protocol (default: the scenario's `machine.protocol`). */
  readonly protocol?: string;
  /** All-zero RAM of `machine.ramBytes` to build in instead of a fresh one (see `setupScenario`). */
  readonly memory?: PhysicalMemory;
}

/** CPUs, RAM, allocator and address spaces of one scenario run. */
export class Machine {
  private constructor(
    readonly scenario: Scenario,
    readonly setup: ScenarioSetup,
    readonly barriers: BarrierBoard,
    readonly cpus: readonly Cpu[],
    readonly traces: readonly TraceRing[],
    readonly shootdown: Shootdown,
    /** The control block every host word, mailbox and trace ring lives in (layout.ts). */
    readonly control: SharedControlBlock,
  ) {}

  /** Builds the initial state of `scenario` (spec order: reserve, P4 tables, mappings) and its CPUs. */
  static fromScenario(scenario: Scenario, options: MachineOptions = {}): Machine {
    const setup = setupScenario(scenario, options.memory);
    const barriers = BarrierBoard.create(
      scenario.cpus.map((c) =>
        c.program.map((ins) => (ins.op === 'barrier' ? ins.name : undefined)),
      ),
    );
    const m = scenario.machine;
    const layout = controlLayout(
      scenario.cpus.length,
      scenario.addressSpaces.length,
      options.traceCapacity ?? 4096,
    );
    const control = createControlBlock(layout);
    const traces = scenario.cpus.map((_, id) =>
      TraceRing.over(control.buffer, layout.traceRing(id) * 4, layout.traceCapacity),
    );
    const shootdown = Shootdown.create(
      options.protocol ?? m.protocol,
      control,
      scenario.addressSpaces.map((a) => a.name),
    );
    // A barrier that opens wakes every CPU: waiters block on their wake word (so that they keep
    // servicing invalidations while they wait) rather than on the barrier's own word.
    barriers.onOpen = () => shootdown.wakeAll();
    const env = {
      memory: setup.memory,
      allocator: setup.allocator,
      spaces: setup.spaces,
      barriers,
      shootdown,
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
            ...(options.probe === false ? { probe: false } : {}),
          },
          env,
        ),
    );
    cpus.forEach((cpu, id) => {
      shootdown.start(cpu, scenario.cpus[id]!.as);
    });
    return new Machine(scenario, setup, barriers, cpus, traces, shootdown, control);
  }
}
