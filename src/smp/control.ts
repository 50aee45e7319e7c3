/**
 * The control plane of the worker host, as data (DESIGN decision 2): what the main thread may ask
 * a CPU's worker over comlink (`CpuControl`), what a CPU looks like from outside (`CpuSnapshot`),
 * and what the few shared host words that make a running worker listen mean (where they are:
 * layout.ts, `controlWord`).
 *
 * A worker steps its CPU in a synchronous loop, so it reads its MessagePort only when it returns
 * to its event loop. The host therefore rings a doorbell before each call: it bumps the CPU's
 * `ATTENTION` word (one `Atomics.load` per step on the worker side, never a message) and wakes the
 * word the CPU waits on; the worker then yields to its event loop until every call the host
 * counted in `CALLS` has been served. Nothing per instruction crosses a MessagePort.
 */

import type { MessagePort } from 'node:worker_threads';
import type { Cpu, CpuStatus, FaultRecord, MapperErrorRecord } from '../cpu/cpu.ts';
import type { TlbEntrySnapshot } from '../cpu/tlb.ts';
import type { InstructionJson } from '../scenarios/scenario.ts';
import type { SharedMachine } from './share.ts';

// ---- the run state a worker publishes ---------------------------------------------------------

/** What a CPU's worker is doing, in its `STATE` word. */
export enum RunState {
  /** Building its CPU, or built and waiting for `start()`. */
  Starting = 0,
  Running = 1,
  /**
   * Past its spin phase, in `Atomics.wait` on a shared word (see the `WAIT_*` words). A CPU still
   * spinning on its word reads `Running`: it polls the doorbell itself (workers/cpu-loop.ts).
   */
  Blocked = 2,
  /** Parked in its event loop after a `PAUSE` request. */
  Paused = 3,
  /** The CPU halted (normally, on a fault, or on a failure): its task has returned. */
  Halted = 4,
  /** A wait outlived the host's timeout: its task has returned. */
  Deadlocked = 5,
  /** Stopped on request: its task has returned. */
  Stopped = 6,
}

// ---- what a CPU looks like from outside -----------------------------------------------------

/** A copy of one CPU's architectural state and counters (structured-clonable). */
export interface CpuSnapshot {
  readonly cpu: number;
  readonly status: CpuStatus;
  /** Why the CPU failed (`status === 'failed'`). */
  readonly failure: string | undefined;
  /** Index of the next instruction. */
  readonly pc: number;
  /** r0..r15 as 64-bit values. */
  readonly registers: readonly bigint[];
  /** CR2: the last faulting address. */
  readonly cr2: number;
  /** CR3: the level-4 table, its PCID, and the address space's name. */
  readonly cr3Table: number;
  readonly cr3Pcid: number;
  readonly addressSpace: string;
  /** CR4.PGE (toggle_pge leaves it set). */
  readonly pge: boolean;
  /** Modeled cycles (cost-model.ts), not wall-clock time. */
  readonly cycles: number;
  /** The step stamp of the CPU's last step. */
  readonly now: number;
  readonly stats: Cpu['stats'];
  readonly faults: readonly FaultRecord[];
  readonly mapperErrors: readonly MapperErrorRecord[];
  /** The valid TLB entries, when asked for (`InspectOptions.tlb`). */
  readonly tlb?: readonly TlbEntrySnapshot[];
}

/** What `step` did: the steps taken, why it stopped stepping, and the CPU's state after. */
export interface StepReport {
  /** `step()` calls made (fewer than asked once the CPU blocked or halted). */
  readonly steps: number;
  /**
   * `ran`: every step asked for ran; `blocked`: the last one blocked (it waits for an IPI ack, a
   * barrier or a sync point); `waiting`: the CPU was already blocked and its word had not
   * changed, so it did not step (it waits for a CPU that is paused, or not yet there);
   * `halted`: the CPU halted (its task ends, as in a run).
   */
  readonly stopped: 'ran' | 'blocked' | 'waiting' | 'halted';
  readonly state: CpuSnapshot;
}

/** What `inspect` includes beyond registers and counters. */
export interface InspectOptions {
  /** Copy the TLB's valid entries (allocates: a few hundred bytes per entry). */
  readonly tlb?: boolean;
}

/** Copies `cpu`'s state (the worker calls this; so can any host, on its own CPUs). */
export function snapshotCpu(cpu: Cpu, options: InspectOptions = {}): CpuSnapshot {
  const registers: bigint[] = [];
  for (let i = 0; i < 16; i++) registers.push(cpu.register(i));
  return {
    cpu: cpu.id,
    status: cpu.status,
    failure: cpu.failure,
    pc: cpu.pc,
    registers,
    cr2: cpu.cr2,
    cr3Table: cpu.cr3Table,
    cr3Pcid: cpu.cr3Pcid,
    addressSpace: cpu.addressSpace,
    pge: cpu.pge,
    cycles: cpu.cycles,
    now: cpu.now,
    stats: { ...cpu.stats },
    faults: cpu.faults.map((f) => ({ ...f })),
    mapperErrors: cpu.mapperErrors.map((e) => ({ ...e })),
    ...(options.tlb === true ? { tlb: cpu.tlb.entries() } : {}),
  };
}

// ---- the comlink interface ------------------------------------------------------------------

/**
 * What each CPU worker exposes over comlink on the MessagePort its task carries. Every call is
 * answered only when the worker is in its event loop, so the host rings the doorbell (`CALLS`,
 * `ATTENTION`) before each one; `WorkerHost` does that for you.
 */
export interface CpuControl {
  /** Resolves once the CPU is built (the start line: the host starts no CPU before all are). */
  ready(): number;
  /** Starts stepping. A second call is an error. */
  start(): void;
  /** Answers once the CPU is parked (the host has set `PAUSE` first). */
  pause(): CpuSnapshot;
  /** Unparks a paused CPU. */
  resume(): void;
  /**
   * Loads a program (the file's form) into a parked CPU that has not stepped yet; its thread's
   * copy of the scenario and of the barrier board follow (`Machine.loadProgram`'s rules).
   */
  load(program: readonly InstructionJson[]): void;
  /**
   * Single-steps a parked CPU: up to `count` steps of the step loop (stamps, IPI servicing at
   * each instruction boundary), never waiting. An error unless the CPU is parked by `PAUSE`.
   */
  step(count: number): StepReport;
  /** The CPU's state between two steps (or while blocked, or after it ended). */
  inspect(options?: InspectOptions): CpuSnapshot;
  /** Stops the CPU (also unparks it, so a paused CPU ends too). */
  stop(): void;
}

// ---- what a worker's task returns ----------------------------------------------------------

/** How a CPU's run ended. */
export type CpuEnd = 'halted' | 'deadlock' | 'stopped';

/** A CPU task's result: its final state, how it ended, and its own clocks. */
export interface CpuOutcome {
  readonly cpu: number;
  readonly end: CpuEnd;
  readonly final: CpuSnapshot;
  /**
   * The global step stamps this CPU took, in order (one per `step()` call); empty when the CPU
   * writes no trace records (workers/cpu-loop.ts: then it takes no global stamps).
   */
  readonly stamps: Int32Array;
  /** `step()` calls the CPU made. */
  readonly steps: number;
  /** Wall-clock milliseconds from `start()` to the end of the loop. */
  readonly wallMs: number;
  /** Of which waiting past the spin phase, in `Atomics.wait` (the spin phase is not timed). */
  readonly blockedMs: number;
  /** `Atomics.wait` slices that ran out although their word had changed (0 in a correct run). */
  readonly missedWakeups: number;
  /** With `end === 'deadlock'`: what the CPU waited for, e.g. `cpu 0 waits at barrier a#0 (1 of 2 arrived)`. */
  readonly deadlock?: string;
}

/** The task piscina hands each CPU worker (structured-cloned; `port` is transferred). */
export interface CpuTask {
  readonly shared: SharedMachine;
  readonly cpu: number;
  /** The comlink endpoint for `CpuControl`. */
  readonly port: MessagePort;
  /** `Atomics.load` polls before waiting at a barrier; 0 when CPUs outnumber cores. */
  readonly spinIterations: number;
  /** `Atomics.load` polls before waiting for IPI acks; 0 when CPUs outnumber cores. */
  readonly ackSpinIterations: number;
  /** A wait longer than this (excluding time parked and the spin phase) is a deadlock. */
  readonly timeoutMs: number;
  /** The longest single `Atomics.wait`: bounds how late a stop is seen if its wake-up is lost. */
  readonly waitSliceMs: number;
}
