/**
 * `Machine`: a scenario turned into CPUs over one shared RAM and one control block (layout.ts:
 * host words, IPI mailboxes, cpumasks, CR3 words, the table generation, one trace ring per CPU).
 * Hosts (deterministic, worker threads) drive its CPUs; the machine itself never runs.
 */

import { BarrierBoard } from '../cpu/barrier.ts';
import { type CostModel, DEFAULT_COST_MODEL } from '../cpu/cost-model.ts';
import { Cpu } from '../cpu/cpu.ts';
import type { PhysicalMemory } from '../memory/physical-memory.ts';
import { scenarioToJson, validateScenario } from '../scenarios/load.ts';
import type { Instruction, InstructionJson, Scenario } from '../scenarios/scenario.ts';
import { type ScenarioSetup, setupScenario } from '../scenarios/setup.ts';
import type { TraceRing } from '../trace/ring.ts';
import {
  controlLayout,
  createControlBlock,
  type SharedControlBlock,
  traceRingOf,
} from './layout.ts';
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
    private scenarioNow: Scenario,
    readonly setup: ScenarioSetup,
    readonly barriers: BarrierBoard,
    readonly cpus: readonly Cpu[],
    readonly traces: readonly TraceRing[],
    readonly shootdown: Shootdown,
    /** The control block every host word, mailbox and trace ring lives in (layout.ts). */
    readonly control: SharedControlBlock,
  ) {}

  /** The scenario the machine runs: as built, with any program `loadProgram` replaced. */
  get scenario(): Scenario {
    return this.scenarioNow;
  }

  /**
   * Loads `program` (in the file's form, as in a scenario's `cpus[i].program`) into CPU `cpu`
   * before it has stepped: the control plane's "load program" (`WorkerHost.load` also sends it to
   * the CPU's thread). The scenario with the new program is validated as a file would be, so an
   * error names the field (`cpus[1].program[2].addr`). The barrier board was built from the
   * scenario's programs: the new program must name the same barriers in the same order.
   *
   * @throws ScenarioError for an invalid instruction; Error for a CPU that has stepped, or other
   * barriers; RangeError for a CPU out of range.
   */
  loadProgram(cpu: number, program: readonly InstructionJson[]): Scenario {
    const next = replaceProgram(this.scenarioNow, cpu, program);
    loadInto(this.cpus[cpu]!, this.barriers, this.scenarioNow, next);
    this.scenarioNow = next;
    return next;
  }
  /** Builds the initial state of `scenario` (spec order: reserve, P4 tables, mappings) and its CPUs. */
  static fromScenario(scenario: Scenario, options: MachineOptions = {}): Machine {
    const setup = setupScenario(scenario, options.memory);
    const barriers = BarrierBoard.create(scenario.cpus.map((c) => barrierNames(c.program)));
    const m = scenario.machine;
    const layout = controlLayout(
      scenario.cpus.length,
      scenario.addressSpaces.length,
      options.traceCapacity ?? 4096,
    );
    const control = createControlBlock(layout);
    const traces = scenario.cpus.map((_, id) => traceRingOf(control, layout, id));
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

/** Per instruction, the barrier it names or undefined (`BarrierBoard.create`'s input). */
export function barrierNames(program: readonly Instruction[]): (string | undefined)[] {
  return program.map((ins) => (ins.op === 'barrier' ? ins.name : undefined));
}

/** @throws RangeError unless `cpu` is one of a machine's `cpus` CPUs (the control plane's rule). */
export function checkCpuIndex(cpu: number, cpus: number): void {
  if (!Number.isInteger(cpu) || cpu < 0 || cpu >= cpus) {
    throw new RangeError(`cpu ${cpu} does not exist: the machine has ${cpus} CPUs`);
  }
}

/**
 * `scenario` with CPU `cpu`'s program replaced by `program` (the file's form), validated as a
 * scenario file is.
 *
 * @throws RangeError for a CPU out of range; ScenarioError for an invalid program.
 */
export function replaceProgram(
  scenario: Scenario,
  cpu: number,
  program: readonly InstructionJson[],
): Scenario {
  checkCpuIndex(cpu, scenario.cpus.length);
  const json = scenarioToJson(scenario);
  const cpus = json.cpus.map((c, i) => (i === cpu ? { ...c, program: [...program] } : c));
  return validateScenario({ ...json, cpus });
}

/**
 * Loads CPU `target`'s program of `next` into it and its barrier positions into `barriers`, all
 * or nothing: the CPU refuses once it has stepped, the board refuses other barriers (and then the
 * CPU gets its program of `current` back).
 */
export function loadInto(
  target: Cpu,
  barriers: BarrierBoard,
  current: Scenario,
  next: Scenario,
): void {
  const program = next.cpus[target.id]!.program;
  target.loadProgram(program);
  try {
    barriers.reassign(target.id, barrierNames(program));
  } catch (e) {
    target.loadProgram(current.cpus[target.id]!.program);
    throw e;
  }
}
