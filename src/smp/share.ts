/**
 * A built `Machine`'s shared state as one structured-clonable object (`shareMachine`), and one CPU
 * rebuilt from it on another thread (`rebuildCpu`): the same RAM, allocator bitmap, barrier words
 * and control block (IPI mailboxes, host words, trace rings: layout.ts), wrapped over the same
 * `SharedArrayBuffer`s (STYLE D: the same SAB in both modes). Only the driver differs from the
 * deterministic host; the `Cpu` is the very same class.
 */

import { hex, PhysAddr } from '../addr.ts';
import { BarrierBoard, type SharedBarrierBoard } from '../cpu/barrier.ts';
import type { CostModel } from '../cpu/cost-model.ts';
import { type AddressSpaceRef, Cpu, type CpuConfig, type CpuEnvironment } from '../cpu/cpu.ts';
import { PhysicalMemory } from '../memory/physical-memory.ts';
import {
  BitmapFrameAllocator,
  type SharedBitmapFrameAllocator,
} from '../paging/bitmap-frame-allocator.ts';
import { PhysFrame } from '../paging/frame.ts';
import { Size4KiB } from '../paging/page-size.ts';
import { loadScenario, scenarioToJson } from '../scenarios/load.ts';
import type { Scenario } from '../scenarios/scenario.ts';
import type { TraceRing } from '../trace/ring.ts';
import { layoutOf, type SharedControlBlock, traceRingOf } from './layout.ts';
import type { Machine } from './machine.ts';
import { type SharedShootdown, Shootdown } from './shootdown.ts';

/** The `format` tag of a `SharedMachine`, so a worker never misreads an older layout. */
export const SHARED_MACHINE_FORMAT = 'smpsim-shared-machine/1';

/**
 * One CPU's configuration, as `Machine.fromScenario` gave it: the CPU's own config without the
 * program (re-read from the scenario) and with the trace ring reduced to on/off.
 */
export type SharedCpuConfig = Omit<CpuConfig, 'program' | 'trace' | 'costs'> & {
  readonly costs: CostModel;
  /** False: the CPU writes no trace records. */
  readonly trace: boolean;
};

/** An address space as CR3 sees it. */
export interface SharedAddressSpace {
  readonly name: string;
  readonly pcid: number;
  /** The level-4 table's physical address. */
  readonly p4: number;
}

/** Everything another thread needs to run one CPU of the machine (structured-clonable). */
export interface SharedMachine {
  readonly format: typeof SHARED_MACHINE_FORMAT;
  /** The scenario as file text (`scenarioToJson`); each thread re-loads it with `loadScenario`. */
  readonly scenario: string;
  readonly memory: SharedArrayBuffer;
  readonly allocator: SharedBitmapFrameAllocator;
  readonly barriers: SharedBarrierBoard;
  /**
   * The machine's control block (layout.ts): the host words (step counter, doorbells, CR3
   * words), the IPI mailboxes and wake words, the cpumasks, the table generation, and one trace
   * ring per CPU (the CPU writes, the main thread's `machine.traces[i]` reads).
   */
  readonly control: SharedControlBlock;
  /** The machine's shootdown protocol, over the same control block. */
  readonly shootdown: SharedShootdown;
  readonly spaces: readonly SharedAddressSpace[];
  readonly cpus: readonly SharedCpuConfig[];
  /**
   * Every buffer a CPU may block on (`Cpu.blockedWords.buffer`): the barrier words and the
   * control block (the wake words). A worker publishes which one it waits on (and the word's index
   * from the buffer's start), so the host can `Atomics.notify` that word to wake it for a stop or
   * a pause.
   */
  readonly waitBuffers: readonly SharedArrayBuffer[];
}

/** A `SharedMachine` that cannot be rebuilt: the message names the part and what is wrong. */
export class SharedMachineError extends Error {
  override readonly name = 'SharedMachineError';
}

/** Options of `shareMachine`. */
export interface ShareOptions {
  /** Whether the CPUs write trace records (default true, as `Machine.fromScenario`'s default). */
  readonly trace?: boolean;
}

/**
 * Exports `machine`'s shared state. The machine must not have run: its CPUs' private state
 * (registers, TLBs) is not shared, so each thread rebuilds its CPU from the scenario.
 *
 * @throws Error if a CPU of `machine` has already stepped.
 */
export function shareMachine(machine: Machine, options: ShareOptions = {}): SharedMachine {
  const stepped = machine.cpus.find(
    (c) => c.status !== 'running' || c.pc !== 0 || c.stats.instructions !== 0,
  );
  if (stepped !== undefined) {
    throw new Error(
      `cpu ${stepped.id} of this machine has already run (${stepped.status}, pc ${stepped.pc}): share a freshly built Machine`,
    );
  }
  const s = machine.scenario;
  const m = s.machine;
  const spaces = [...machine.setup.spaces.values()].map((space) => ({
    name: space.name,
    pcid: space.pcid,
    p4: space.p4.startAddress as number,
  }));
  const barriers = machine.barriers.shared();
  const shootdown = machine.shootdown.shared();
  return {
    format: SHARED_MACHINE_FORMAT,
    scenario: JSON.stringify(scenarioToJson(s)),
    memory: machine.setup.memory.buffer,
    allocator: machine.setup.allocator.shared(),
    barriers,
    shootdown,
    spaces,
    cpus: s.cpus.map((c, id) => ({
      id,
      tlb: { entries: m.tlb.entries, ways: m.tlb.ways },
      pge: m.pge,
      pcide: m.pcid,
      wp: m.wp,
      nxe: m.nxe,
      addressSpace: c.as,
      costs: { ...machine.cpus[id]!.costs },
      trace: options.trace ?? true,
    })),
    control: machine.control,
    waitBuffers: [barriers.buffer, machine.control.buffer],
  };
}

/** One CPU rebuilt over the shared buffers, with the shared objects it was built from. */
export interface RebuiltCpu {
  readonly cpu: Cpu;
  readonly env: CpuEnvironment;
  readonly scenario: Scenario;
  /** The whole control block as Int32 words (host words at `controlWord`, layout.ts). */
  readonly control: Int32Array;
  /** The same `waitBuffers` objects as `shared.waitBuffers` (compare `blockedWords.buffer`). */
  readonly waitBuffers: readonly SharedArrayBuffer[];
  /** `env.shootdown` as its class: a host that sleeps on a wake word sets its `sleepIndex` word. */
  readonly shootdown: Shootdown;
}

/**
 * Rebuilds CPU `id` of a shared machine: wraps RAM, the allocator, the barrier board and the
 * CPU's trace ring over the shared buffers, re-loads the scenario for the program, and constructs
 * the `Cpu` exactly as `Machine.fromScenario` does.
 *
 * @throws SharedMachineError for an unknown format, a CPU id out of range, or an address space
 * whose level-4 table is not a 4 KiB frame inside RAM; `ScenarioError` if the scenario text no
 * longer loads; `FrameAllocatorError` for a mismatched allocator buffer.
 */
export function rebuildCpu(shared: SharedMachine, id: number): RebuiltCpu {
  if (shared.format !== SHARED_MACHINE_FORMAT) {
    throw new SharedMachineError(
      `shared machine format ${JSON.stringify(shared.format)} is not ${SHARED_MACHINE_FORMAT}`,
    );
  }
  const config = shared.cpus[id];
  if (!Number.isInteger(id) || config === undefined) {
    throw new SharedMachineError(
      `cpu ${id} does not exist: the shared machine has ${shared.cpus.length} CPUs`,
    );
  }
  const scenario = loadScenario(shared.scenario, 'shared machine');
  const memory = PhysicalMemory.fromBuffer(shared.memory);
  const spaces = new Map<string, AddressSpaceRef>();
  for (const space of shared.spaces) {
    if (space.p4 % Size4KiB.bytes !== 0 || !memory.contains(space.p4, Size4KiB.bytes)) {
      throw new SharedMachineError(
        `address space ${space.name}: level-4 table ${hex(space.p4)} is not a 4 KiB frame inside RAM [0x0, ${hex(memory.bytes)})`,
      );
    }
    spaces.set(space.name, {
      name: space.name,
      pcid: space.pcid,
      p4: PhysFrame.fromStartAddressUnchecked(PhysAddr.newUnchecked(space.p4), Size4KiB),
    });
  }
  const barriers = BarrierBoard.fromShared(shared.barriers);
  if (shared.shootdown.control.buffer !== shared.control.buffer) {
    throw new SharedMachineError('the shootdown state is not over the shared control block');
  }
  const shootdown = Shootdown.fromShared(shared.shootdown);
  // As Machine.fromScenario wires it: waiters block on their wake words, so an opening barrier
  // must bump them. `onOpen` is a callback, not shared state, so every thread sets its own.
  // (The cpumasks were set by the machine's `shootdown.start` calls, in the shared buffer.)
  barriers.onOpen = () => shootdown.wakeAll();
  const env: CpuEnvironment = {
    memory,
    allocator: BitmapFrameAllocator.fromShared(shared.allocator),
    spaces,
    barriers,
    shootdown,
  };
  const program = scenario.cpus[id]?.program;
  if (program === undefined) {
    throw new SharedMachineError(`cpu ${id}: the shared scenario has no program for it`);
  }
  const cpuConfig: CpuConfig = {
    id,
    tlb: config.tlb,
    pge: config.pge,
    pcide: config.pcide,
    wp: config.wp,
    nxe: config.nxe,
    addressSpace: config.addressSpace,
    program,
    costs: config.costs,
    ...(config.trace ? { trace: ringOf(shared, id) } : {}),
  };
  return {
    cpu: new Cpu(cpuConfig, env),
    env,
    scenario,
    control: new Int32Array(shared.control.buffer),
    waitBuffers: shared.waitBuffers,
    shootdown,
  };
}

/** CPU `id`'s trace ring in the shared control block. */
function ringOf(shared: SharedMachine, id: number): TraceRing {
  return traceRingOf(shared.control, layoutOf(shared.control), id);
}
