/**
 * `Cpu`: one simulated x86_64 core, pure and step-driven (DESIGN decision 1). `step()` executes one
 * instruction and returns Ran, Halted or Blocked; it never waits. Every host (one thread, or one
 * worker per CPU) drives the same code.
 */

import { hex, type PhysAddr, VirtAddr } from '../addr.ts';
import { MemoryError, type PhysicalMemory } from '../memory/physical-memory.ts';
import type { BitmapFrameAllocator } from '../paging/bitmap-frame-allocator.ts';
import { PhysFrame } from '../paging/frame.ts';
import { FrameAllocatorError } from '../paging/frame-allocator.ts';
import type { InvalidationTarget, MapperFlush, MapperFlushAll } from '../paging/mapper/flush.ts';
import { OffsetPageTable } from '../paging/mapper/offset-page-table.ts';
import { Page } from '../paging/page.ts';
import { type AnyPageSize, Size4KiB } from '../paging/page-size.ts';
import { CratePanic } from '../paging/panic.ts';
import type { Result } from '../result.ts';
import { INSTRUCTION_OPS } from '../scenarios/load.ts';
import type { FrameOperand, Instruction, Register } from '../scenarios/scenario.ts';
import { EvictReason, FlushOutcome, MaintenanceOp, StaleBits, TraceKind } from '../trace/record.ts';
import type { TraceRing } from '../trace/ring.ts';
import type { BarrierBoard } from './barrier.ts';
import { type CostModel, DEFAULT_COST_MODEL } from './cost-model.ts';
import {
  type AccessKind,
  type PageFault,
  PF_FETCH,
  PF_PRESENT,
  PF_USER,
  PF_WRITE,
} from './fault.ts';
import type { ShootdownPort, SyncPoint } from './shootdown-port.ts';
import {
  TLB_DIRTY,
  TLB_GLOBAL,
  TLB_NX,
  TLB_USER,
  TLB_WRITABLE,
  Tlb,
  type TlbConfig,
} from './tlb.ts';
import { Walker, WalkOutcome } from './walker.ts';

/** What one `step()` did. */
export enum StepResult {
  /** An instruction executed (or faulted, which also stops the CPU: see `status`). */
  Ran = 0,
  /** The CPU has stopped; stepping it again does nothing. */
  Halted = 1,
  /** The CPU waits until `words[blockedIndex]` differs from `blockedExpected`. */
  Blocked = 2,
}

/** Why a CPU is no longer running. */
export type CpuStatus = 'running' | 'halted' | 'faulted' | 'failed';

/** An address space a CPU can load into CR3. */
export interface AddressSpaceRef {
  readonly name: string;
  readonly pcid: number;
  /** The level-4 table frame. */
  readonly p4: PhysFrame<Size4KiB>;
}

/** Machine-wide state every CPU shares (RAM, allocator, address spaces, barriers). */
export interface CpuEnvironment {
  readonly memory: PhysicalMemory;
  readonly allocator: BitmapFrameAllocator;
  readonly spaces: ReadonlyMap<string, AddressSpaceRef>;
  readonly barriers: BarrierBoard;
  /** The shootdown protocol; absent, `flush()` is local only (protocol `none`). */
  readonly shootdown?: ShootdownPort;
}

/** One CPU's configuration. */
export interface CpuConfig {
  readonly id: number;
  readonly tlb: TlbConfig;
  /** CR4.PGE: GLOBAL leaves make global TLB entries. */
  readonly pge: boolean;
  /** CR4.PCIDE: TLB entries are tagged with the PCID in CR3. */
  readonly pcide: boolean;
  /** CR0.WP. */
  readonly wp: boolean;
  /** EFER.NXE. */
  readonly nxe: boolean;
  /** The address space in CR3 at start. */
  readonly addressSpace: string;
  readonly program: readonly Instruction[];
  readonly costs?: CostModel;
  /** Where the CPU appends its trace records; none: no trace (benchmarks). */
  readonly trace?: TraceRing;
  /**
   * The coherence probe on TLB hits (with a trace only; default true). Off only to measure what
   * it costs (bench/checker.ts): without it the checker sees no stale translations.
   */
  readonly probe?: boolean;
}

/** A Mapper call (or allocator call) that returned an error; the program goes on. */
export interface MapperErrorRecord {
  readonly cpu: number;
  readonly step: number;
  readonly op: string;
  readonly err: string;
}

/** A page fault the CPU took (it stops the program). */
export interface FaultRecord extends PageFault {
  readonly cpu: number;
  readonly step: number;
  readonly pc: number;
}

const REGISTERS = 16;
const ACCESS_CODE: Record<AccessKind, number> = { read: 0, write: 1, fetch: 2 };

function regIndex(reg: Register): number {
  return Number(reg.slice(1));
}

/**
 * One simulated CPU: registers, a private TLB, a walker, and a straight-line program.
 *
 * @remarks Hosts set `now` (the global step, or any monotonically increasing stamp) before each
 * `step()`; trace records and fault reports carry it.
 */
export class Cpu {
  readonly id: number;
  readonly tlb: Tlb;
  readonly walker: Walker;
  readonly costs: CostModel;
  /** General registers r0..r15, each as [lo, hi] 32-bit halves: no BigInt on the hot path. */
  readonly regs = new Uint32Array(REGISTERS * 2);
  /** CR3: the level-4 table and the PCID (0 unless CR4.PCIDE). */
  cr3Table: number;
  cr3Pcid: number;
  /** The name of the address space in CR3. */
  addressSpace: string;
  /** CR4.PGE (toggled by `toggle_pge`, which leaves it set). */
  pge: boolean;
  readonly pcide: boolean;
  readonly wp: boolean;
  readonly nxe: boolean;
  /** CR2: the last faulting address. */
  cr2 = 0;
  /** Index of the next instruction. */
  pc = 0;
  /** Modeled cycles spent so far (see `cost-model.ts`). */
  cycles = 0;
  /** Global step stamp, set by the host before each `step()`. */
  now = 0;
  status: CpuStatus = 'running';
  /** Why the CPU failed (`status === 'failed'`): an assertion or a machine error. */
  failure: string | undefined;
  /** The obligation returned by this CPU's last Mapper call, until flushed or ignored. */
  pendingFlush: MapperFlush<AnyPageSize> | MapperFlushAll | undefined;
  readonly faults: FaultRecord[] = [];
  readonly mapperErrors: MapperErrorRecord[] = [];
  /** Counters by reason (v86/gem5 habit): read them at any time. */
  readonly stats = {
    instructions: 0,
    tlbHits: 0,
    tlbMisses: 0,
    tlbMissDirtyRewalk: 0,
    walks: 0,
    faults: 0,
    evictions: 0,
  };
  /** When blocked: the shared word array, index and the value it waits to change from. */
  blockedWords: Int32Array | undefined;
  blockedIndex = 0;
  blockedExpected = 0;

  private readonly env: CpuEnvironment;
  private readonly scratch = new Uint32Array(2);
  private program: readonly Instruction[];
  private readonly trace: TraceRing | undefined;
  /** Whether the CPU writes trace records (hosts need global step stamps only then). */
  readonly traced: boolean;
  private readonly mappers = new Map<string, OffsetPageTable>();
  private readonly invalidation: InvalidationTarget;
  /** The barrier instance this CPU arrived at and waits on, or -1. */
  private waitingBarrier = -1;
  /** What the CPU is waiting for, if anything. */
  private wait: 'none' | 'flush' | 'sync' | 'barrier' = 'none';
  /** The current instruction's sync point already completed (do not send the batch twice). */
  private syncDone = false;
  private readonly port: ShootdownPort | undefined;
  private readonly evictHook: (slot: number) => void;
  private evictReason: EvictReason = EvictReason.Capacity;
  /** During a fill: the page being filled (so a refresh in place is not reported), else -1. */
  private refillPage = -1;
  /** `opIndex[pc]`: the instruction's index in INSTRUCTION_OPS, recorded in Instruction records. */
  private opIndex: readonly number[];
  /** `regAt[pc]`: the register index an instruction names in its `reg` field, or -1. */
  private regAt: readonly number[];
  /** The machine's page-table generation word (shared), or a private one without a port. */
  private readonly generation: Int32Array;
  /**
   * Per TLB slot: the page-table generation at which the entry was last known to agree with the
   * tables (filled, or probed and found current). A hit whose slot lags the machine's generation
   * is probed once (the coherence probe); -1 forces a probe (after a CR3 write).
   */
  private readonly checkedGen: Int32Array;
  private readonly probe: boolean;
  /** `port.wakeIndex(id)`, once: it is read at every step. */
  private readonly wakeIndex: number;

  constructor(config: CpuConfig, env: CpuEnvironment) {
    this.id = config.id;
    this.env = env;
    this.port = env.shootdown;
    this.program = config.program;
    this.opIndex = Cpu.opIndexOf(config.program);
    this.regAt = Cpu.regAtOf(config.program);
    this.trace = config.trace;
    this.traced = config.trace !== undefined;
    this.costs = config.costs ?? DEFAULT_COST_MODEL;
    this.tlb = new Tlb(config.tlb);
    this.generation = env.shootdown?.tableGeneration ?? new Int32Array(1);
    this.checkedGen = new Int32Array(this.tlb.capacity);
    this.probe = config.probe ?? true;
    this.wakeIndex = env.shootdown?.wakeIndex(config.id) ?? 0;
    this.pge = config.pge;
    this.pcide = config.pcide;
    this.wp = config.wp;
    this.nxe = config.nxe;
    this.walker = new Walker(env.memory, (entry, bits, level) =>
      this.record(TraceKind.AdSet, entry, bits, level, 0),
    );
    const space = this.space(config.addressSpace);
    this.addressSpace = space.name;
    this.cr3Table = space.p4.startAddress;
    this.cr3Pcid = this.pcide ? space.pcid : 0;
    this.evictHook = (slot) => {
      // A fill that refreshes the same page for the same PCID in place (the DIRTY re-walk) is
      // not an eviction: the translation stays cached.
      if (
        this.refillPage >= 0 &&
        this.tlb.pageStartOf(slot) === this.refillPage &&
        this.tlb.pcidOf(slot) === this.cr3Pcid
      ) {
        return;
      }
      this.stats.evictions++;
      this.record(
        TraceKind.TlbEvict,
        this.tlb.pageStartOf(slot),
        this.tlb.frameOf(slot),
        this.tlb.attrOf(slot),
        this.evictReason,
      );
    };
    // MapperFlush.flush() on this CPU: the local half of every protocol (`none` is only this).
    this.invalidation = {
      invalidatePage: (page) => this.invlpg(page.startAddress),
      invalidateAll: () => this.reloadCr3(),
    };
  }

  /** Register `i` as a 64-bit value. */
  register(i: number): bigint {
    return (BigInt(this.regs[i * 2 + 1]!) << 32n) | BigInt(this.regs[i * 2]!);
  }

  /** Sets register `i`. */
  setRegister(i: number, value: bigint): void {
    const v = BigInt.asUintN(64, value);
    this.regs[i * 2] = Number(v & 0xffff_ffffn);
    this.regs[i * 2 + 1] = Number(v >> 32n);
  }

  /**
   * What this CPU waits for, in words, for deadlock and timeout reports: the barrier and its
   * arrivals, or the CPUs that have not acknowledged its shootdown.
   */
  describeWait(): string {
    const b = this.env.barriers;
    if (this.wait === 'barrier') {
      const id = this.waitingBarrier;
      return `cpu ${this.id} waits at barrier ${b.names[id]} (${b.arrived(id)} of ${b.required(id)} arrived)`;
    }
    if ((this.wait === 'flush' || this.wait === 'sync') && this.port !== undefined) {
      const missing = this.port.unacknowledged(this);
      const what = this.wait === 'flush' ? 'its flush' : `its ${this.port.protocol} batch`;
      return `cpu ${this.id} waits for ${missing.length === 0 ? 'nothing (acknowledged)' : `cpu ${missing.join(', cpu ')}`} to acknowledge ${what} (instruction ${this.pc}, protocol ${this.port.protocol})`;
    }
    return `cpu ${this.id} is blocked at instruction ${this.pc}`;
  }

  /** True when the CPU has stopped for good. */
  get halted(): boolean {
    return this.status !== 'running';
  }

  /** Executes one instruction (or resumes a blocked one). */
  step(): StepResult {
    if (this.status !== 'running') return StepResult.Halted;
    const port = this.port;
    // Read before any condition is checked, so an event that arrives after the check still
    // changes the word this CPU then waits on (no lost wake-up on worker threads).
    const wake = port === undefined ? 0 : Atomics.load(port.wake, this.wakeIndex);
    // Interrupt point: incoming invalidations are serviced at every instruction boundary, and
    // also while waiting, so two CPUs shooting each other down never deadlock (scenario spec).
    if (port !== undefined) port.poll(this, false, wake);
    if (this.wait !== 'none') {
      const resumed = this.resume(wake);
      if (resumed !== undefined) return resumed;
    }
    if (this.pc >= this.program.length) {
      if (port !== undefined) {
        if (!this.syncDone && port.syncPoint(this, 'halt')) return this.waitFor('sync', wake);
        // Halting is an epoch boundary (lazy invalidations apply now).
        port.poll(this, true, wake);
      }
      this.halt('halted');
      return StepResult.Halted;
    }
    const ins = this.program[this.pc]!;
    // An instruction that runs again after its sync point's wait (syncDone) was counted and
    // charged when it first started.
    if (!this.syncDone) {
      this.stats.instructions++;
      this.cycles += this.costs.instruction;
    }
    if (this.trace !== undefined)
      this.record(TraceKind.Instruction, this.pc, this.opIndex[this.pc]!, 0, 0);
    try {
      const r = this.execute(ins, wake);
      if (r === StepResult.Ran && this.status === 'running') {
        this.pc++;
        this.syncDone = false;
      }
      return r;
    } catch (e) {
      // A machine error (not a #PF): RAM access outside the buffer, a crate panic in a Mapper
      // call. The CPU stops with the reason; the host reports it.
      if (e instanceof MemoryError || e instanceof CratePanic) {
        this.fail(`cpu ${this.id}, instruction ${this.pc} (${ins.op}): ${e.message}`);
        return StepResult.Ran;
      }
      throw e;
    }
  }

  /**
   * Resumes a wait: returns Blocked while it lasts, Ran when a flush or barrier wait ended (the
   * instruction is done), or undefined when a sync point's wait ended (the instruction runs now).
   */
  private resume(wake: number): StepResult | undefined {
    const port = this.port;
    switch (this.wait) {
      case 'barrier': {
        if (!this.env.barriers.isOpen(this.waitingBarrier)) return this.block(wake);
        // Leaving the barrier is the epoch boundary too: lazy requests that arrived while this
        // CPU waited inside it apply before it goes on.
        port?.poll(this, true, wake);
        this.record(TraceKind.BarrierPass, this.waitingBarrier, 1, 0, 0);
        this.waitingBarrier = -1;
        this.wait = 'none';
        this.blockedWords = undefined;
        this.pc++;
        this.syncDone = false;
        return StepResult.Ran;
      }
      case 'flush':
      case 'sync': {
        if (port!.waiting(this, wake)) return this.block(wake);
        port!.complete(this);
        const was = this.wait;
        this.wait = 'none';
        this.blockedWords = undefined;
        if (was === 'flush') {
          this.pc++;
          return StepResult.Ran;
        }
        this.syncDone = true;
        return undefined;
      }
      default:
        return undefined;
    }
  }

  private static opIndexOf(program: readonly Instruction[]): number[] {
    return program.map((ins) => INSTRUCTION_OPS.indexOf(ins.op));
  }

  private static regAtOf(program: readonly Instruction[]): number[] {
    return program.map((ins) => ('reg' in ins && ins.reg !== undefined ? regIndex(ins.reg) : -1));
  }

  /**
   * Replaces the CPU's program before its first step (a host's `load`). The barrier board is the
   * caller's to keep in step (`BarrierBoard.reassign`): its instances come from the programs.
   *
   * @throws Error once the CPU has stepped.
   */
  loadProgram(program: readonly Instruction[]): void {
    if (this.pc !== 0 || this.stats.instructions !== 0 || this.status !== 'running') {
      throw new Error(
        `cpu ${this.id} has already run (${this.status}, pc ${this.pc}): load a program before its first step`,
      );
    }
    this.program = program;
    this.opIndex = Cpu.opIndexOf(program);
    this.regAt = Cpu.regAtOf(program);
  }

  /**
   * True while the CPU waits for acknowledgements of its own shootdown requests (a flush, or a
   * sync point's batch or lazy round), not at a barrier: hosts may spin longer for these, since
   * an ack is due within one wake-up of the target, as Linux's initiator spins in csd_lock_wait.
   */
  get awaitingAcks(): boolean {
    return this.wait === 'flush' || this.wait === 'sync';
  }

  /** Starts waiting (`what`) on this CPU's wake word, whose value was `wake` before the check. */
  private waitFor(what: 'flush' | 'sync' | 'barrier', wake: number): StepResult {
    this.wait = what;
    return this.block(wake);
  }

  private block(wake: number): StepResult {
    const port = this.port;
    if (port === undefined) {
      // Without a shootdown port only barriers block, on their own release word.
      this.blockedWords = this.env.barriers.words;
      this.blockedIndex = this.env.barriers.releaseWord(this.waitingBarrier);
      this.blockedExpected = 0;
    } else {
      this.blockedWords = port.wake;
      this.blockedIndex = this.wakeIndex;
      this.blockedExpected = wake;
    }
    return StepResult.Blocked;
  }

  /** A sync point of the shootdown protocol before `point`: true when the CPU must wait first. */
  private mustSync(point: SyncPoint): boolean {
    return this.port !== undefined && !this.syncDone && this.port.syncPoint(this, point);
  }

  private execute(ins: Instruction, wake: number): StepResult {
    switch (ins.op) {
      case 'load': {
        const pa = this.translate(ins.addr, 'read', ins.user);
        if (pa < 0) return StepResult.Ran;
        // The register index was parsed once at construction (`Number("r3".slice(1))` per step
        // measured 10 ns).
        this.readInto(this.regAt[this.pc]!, pa, ins.width);
        if (this.trace !== undefined)
          this.record(TraceKind.Access, ins.addr, pa, ins.width, ACCESS_CODE.read);
        return StepResult.Ran;
      }
      case 'store': {
        const pa = this.translate(ins.addr, 'write', ins.user);
        if (pa < 0) return StepResult.Ran;
        this.env.memory.writeValue(pa, ins.width, ins.value);
        this.record(TraceKind.Access, ins.addr, pa, ins.width, ACCESS_CODE.write);
        return StepResult.Ran;
      }
      case 'fetch': {
        const pa = this.translate(ins.addr, 'fetch', ins.user);
        if (pa >= 0) this.record(TraceKind.Access, ins.addr, pa, 1, ACCESS_CODE.fetch);
        return StepResult.Ran;
      }
      case 'map_to':
      case 'unmap':
      case 'update_flags':
      case 'set_flags_p4_entry':
      case 'set_flags_p3_entry':
      case 'set_flags_p2_entry':
        this.mapperCall(ins);
        return StepResult.Ran;
      case 'flush':
      case 'ignore': {
        const pending = this.pendingFlush;
        if (pending === undefined) return StepResult.Ran;
        this.pendingFlush = undefined;
        const page = 'page' in pending ? pending.page().startAddress : -1;
        if (ins.op === 'flush') pending.flush();
        else pending.ignore();
        this.record(
          TraceKind.Flush,
          page,
          ins.op === 'flush' ? FlushOutcome.Flushed : FlushOutcome.Ignored,
          0,
          0,
        );
        // flush() = the local invalidation above plus the protocol's remote part.
        const port = this.port;
        if (ins.op === 'flush' && port !== undefined && port.flush(this, page))
          return this.waitFor('flush', wake);
        return StepResult.Ran;
      }
      case 'invlpg':
        this.invlpg(ins.addr);
        return StepResult.Ran;
      case 'flush_all':
        this.reloadCr3();
        return StepResult.Ran;
      case 'toggle_pge': {
        // Clearing CR4.PGE flushes the whole TLB, GLOBAL entries included (SDM §4.10.4.1);
        // setting it again leaves the TLB empty.
        this.evictReason = EvictReason.PgeToggle;
        const n = this.tlb.flushAll(this.evictHook);
        this.pge = true;
        this.cycles += this.costs.pgeToggle;
        this.record(TraceKind.Maintenance, MaintenanceOp.TogglePge, -1, -1, n);
        return StepResult.Ran;
      }
      case 'mov_cr3': {
        if (this.mustSync('mov_cr3')) return this.waitFor('sync', wake);
        const from = this.addressSpace;
        this.port?.poll(this, true, wake); // an epoch boundary
        this.movCr3(ins.as, ins.noflush);
        this.port?.switchSpace(this, from, ins.as);
        return StepResult.Ran;
      }
      case 'invpcid': {
        const pcid = ins.type === 0 || ins.type === 1 ? ins.pcid : -1;
        const addr = ins.type === 0 ? ins.addr : VirtAddr.zero;
        this.evictReason = EvictReason.Invpcid;
        const n = this.tlb.invpcid(ins.type, Math.max(pcid, 0), addr, this.evictHook);
        this.cycles += this.costs.invpcid;
        this.record(
          TraceKind.Maintenance,
          MaintenanceOp.Invpcid,
          ins.type === 0 ? ins.addr : -1,
          pcid,
          n,
        );
        return StepResult.Ran;
      }
      case 'alloc_frame': {
        const frame = this.env.allocator.allocateFrame();
        if (frame === undefined) {
          this.setRegister(regIndex(ins.reg), 0n);
          this.mapperErrors.push({
            cpu: this.id,
            step: this.now,
            op: 'alloc_frame',
            err: 'FrameAllocationFailed',
          });
          return StepResult.Ran;
        }
        // The scenario spec promises a zeroed frame. Zeroing may rewrite a frame that still
        // serves as a table somewhere (a user's bug): count it as a table change.
        this.env.memory.zeroFrame(frame.startAddress);
        Atomics.add(this.generation, 0, 1);
        this.setRegister(regIndex(ins.reg), BigInt(frame.startAddress));
        this.record(TraceKind.FrameAlloc, frame.startAddress, 0, 0, 0);
        return StepResult.Ran;
      }
      case 'free_frame': {
        if (this.mustSync('free_frame')) return this.waitFor('sync', wake);
        const addr = this.frameOperand(ins.frame, Size4KiB);
        if (addr < 0) return StepResult.Ran;
        if (this.port?.holdFree(this, addr)) {
          // LATR: the frame goes back once this CPU's lazy flushes reach their coherence point.
          this.record(TraceKind.FrameFree, addr, 1, 0, 0);
          return StepResult.Ran;
        }
        try {
          this.env.allocator.deallocateFrame(
            PhysFrame.fromStartAddressUnchecked(addr as PhysAddr, Size4KiB),
          );
          this.record(TraceKind.FrameFree, addr, 0, 0, 0);
        } catch (e) {
          if (!(e instanceof FrameAllocatorError)) throw e;
          this.mapperErrors.push({ cpu: this.id, step: this.now, op: 'free_frame', err: e.kind });
        }
        return StepResult.Ran;
      }
      case 'barrier': {
        if (this.mustSync('barrier')) return this.waitFor('sync', wake);
        const id = this.env.barriers.instanceOf[this.id]?.[this.pc] ?? -1;
        if (id < 0) return StepResult.Ran;
        this.port?.poll(this, true, wake); // an epoch boundary
        if (this.env.barriers.arrive(id)) {
          this.record(TraceKind.BarrierPass, id, 0, 0, 0);
          return StepResult.Ran;
        }
        this.record(TraceKind.BarrierWait, id, 0, 0, 0);
        this.waitingBarrier = id;
        return this.waitFor('barrier', wake);
      }
      case 'assert': {
        const actual = this.register(regIndex(ins.reg));
        if (actual !== BigInt.asUintN(64, ins.value)) {
          this.fail(
            `cpu ${this.id}, instruction ${this.pc}: assert ${ins.reg} == ${hex(BigInt.asUintN(64, ins.value))} failed: ${ins.reg} is ${hex(actual)}`,
          );
        }
        return StepResult.Ran;
      }
    }
  }

  // ---- translation ---------------------------------------------------------------------------

  /**
   * Translates `addr` through the TLB (the fast path) or the walker (the cold path). Returns the
   * physical address, or -1 after delivering a page fault (the CPU then stops).
   */
  translate(addr: VirtAddr, kind: AccessKind, user: boolean): number {
    const tlb = this.tlb;
    const slot = tlb.lookup(addr, this.cr3Pcid);
    if (slot >= 0) {
      const attr = tlb.attrOf(slot);
      const write = kind === 'write';
      // Rights are checked against what the entry cached, not the page tables (SDM §4.10.2.2):
      // this is what makes a permission downgrade without a flush observable.
      if (
        (user && (attr & TLB_USER) === 0) ||
        (write && (attr & TLB_WRITABLE) === 0 && (user || this.wp)) ||
        (kind === 'fetch' && (attr & TLB_NX) !== 0)
      ) {
        // A #PF invalidates the TLB entries for the faulting address (SDM §4.10.4.1).
        this.evictReason = EvictReason.Invlpg;
        tlb.invlpg(addr, this.cr3Pcid, this.evictHook);
        // I/D only with EFER.NXE (SDM §4.7), as in the walker.
        return this.fault(
          addr,
          PF_PRESENT |
            (write ? PF_WRITE : 0) |
            (user ? PF_USER : 0) |
            (kind === 'fetch' && this.nxe ? PF_FETCH : 0),
        );
      }
      if (!write || (attr & TLB_DIRTY) !== 0) {
        this.stats.tlbHits++;
        this.cycles += this.costs.tlbHit;
        const pa = tlb.physAddrOf(slot, addr);
        // Guarded so that a run without a trace does not even compute the record's fields.
        if (this.trace !== undefined) {
          this.record(TraceKind.TlbHit, addr, slot, tlb.frameOf(slot), ACCESS_CODE[kind]);
          // The coherence probe, only when the tables may have changed since the entry was
          // known current: one atomic load and a compare on the common path.
          if (this.probe) {
            const gen = Atomics.load(this.generation, 0);
            if (this.checkedGen[slot] !== gen) this.probeHit(slot, addr, kind, user, pa, gen);
          }
        }
        return pa;
      }
      // A write through an entry cached with DIRTY clear walks again to set DIRTY (SDM §4.8).
      this.stats.tlbMissDirtyRewalk++;
    }
    return this.translateSlow(addr, kind, user);
  }

  /**
   * Compares a TLB hit with what the page tables give now (without touching them) and records a
   * `Stale` record when they disagree: another frame or none (a stale translation), a right the
   * tables no longer grant (a stale permission), or a store through an entry cached DIRTY whose
   * leaf has DIRTY clear (a lost dirty bit). The checker (src/check/) classifies these records.
   */
  private probeHit(
    slot: number,
    addr: VirtAddr,
    kind: AccessKind,
    user: boolean,
    pa: number,
    gen: number,
  ): void {
    const w = this.walker;
    const now = w.probe(this.cr3Table, addr, this);
    let bits = 0;
    if (now !== pa) bits = StaleBits.Translation;
    else {
      // The rights this access uses, against the effective rights of the tables (SDM §4.6).
      if (
        (user && !w.probeUser) ||
        (kind === 'write' && !w.probeWritable && (user || this.wp)) ||
        (kind === 'fetch' && w.probeNoExecute)
      ) {
        bits |= StaleBits.Permission;
      }
      // A write hit means the entry is cached DIRTY (else it re-walks, SDM §4.8).
      if (kind === 'write' && !w.probeDirty) bits |= StaleBits.LostDirty;
    }
    if (bits === 0) {
      this.checkedGen[slot] = gen;
      return;
    }
    this.record(TraceKind.Stale, addr, now, bits, ACCESS_CODE[kind]);
  }

  private translateSlow(addr: VirtAddr, kind: AccessKind, user: boolean): number {
    // Read before the walk: a change racing with it leaves the entry marked as unchecked.
    const gen = Atomics.load(this.generation, 0);
    this.stats.tlbMisses++;
    this.record(TraceKind.TlbMiss, addr, 0, 0, ACCESS_CODE[kind]);
    const w = this.walker;
    const outcome = w.walk(this.cr3Table, addr, kind, user, this);
    this.stats.walks++;
    this.cycles += w.entriesRead * this.costs.walkLevel + w.adUpdates * this.costs.adUpdate;
    if (outcome === WalkOutcome.Fault) {
      this.record(TraceKind.Walk, addr, w.entriesRead, w.adUpdates, -1);
      return this.fault(addr, w.errorCode);
    }
    if (outcome === WalkOutcome.TableOutsideRam) {
      this.fail(
        `cpu ${this.id}: page walk for ${VirtAddr.hex(addr)} reached table ${hex(w.badTable)} outside RAM`,
      );
      return -1;
    }
    this.record(TraceKind.Walk, addr, w.entriesRead, w.adUpdates, w.frame);
    let attr = 0;
    if (w.global && this.pge) attr |= TLB_GLOBAL;
    if (w.writable) attr |= TLB_WRITABLE;
    if (w.user) attr |= TLB_USER;
    if (w.noExecute) attr |= TLB_NX;
    if (w.dirty) attr |= TLB_DIRTY;
    this.evictReason = EvictReason.Capacity;
    this.refillPage = w.pageStart;
    const slot = this.tlb.fill(
      VirtAddr.newUnchecked(w.pageStart),
      w.sizeShift,
      w.frame as PhysAddr,
      this.cr3Pcid,
      attr,
      this.evictHook,
    );
    this.refillPage = -1;
    this.checkedGen[slot] = gen;
    this.record(TraceKind.TlbFill, w.pageStart, w.frame, this.tlb.attrOf(slot), this.cr3Pcid);
    return w.frame + (addr - w.pageStart);
  }

  private fault(addr: number, errorCode: number): number {
    this.cr2 = addr;
    this.stats.faults++;
    this.cycles += this.costs.faultEntry;
    this.faults.push({ cpu: this.id, step: this.now, pc: this.pc, addr, errorCode });
    this.record(TraceKind.Fault, addr, errorCode, 0, 0);
    // The scenario ISA has no handler: a fault stops the program (spec).
    this.halt('faulted');
    return -1;
  }

  private readInto(reg: number, pa: number, width: 1 | 2 | 4 | 8): void {
    const mem = this.env.memory;
    if (width === 8) {
      if ((pa & 7) === 0) {
        // Aligned: one 64-bit atomic load (tear-free, like an x86 aligned 8-byte load; SDM
        // Vol. 3A §9.1.1), straight into the register halves with no BigInt arithmetic.
        // Alignment is known here; the checked call only for an access at RAM's end (it throws
        // the MemoryError that stops the CPU).
        if (pa + 8 <= mem.bytes) mem.loadEntryWordsUnchecked(pa, this.scratch);
        else mem.loadEntryWords(pa, this.scratch);
        this.regs[reg * 2] = this.scratch[0]!;
        this.regs[reg * 2 + 1] = this.scratch[1]!;
        return;
      }
      const v = mem.read64(pa);
      this.regs[reg * 2] = Number(v & 0xffff_ffffn);
      this.regs[reg * 2 + 1] = Number(v >> 32n);
    } else {
      this.regs[reg * 2] = mem.read(pa, width);
      this.regs[reg * 2 + 1] = 0;
    }
  }

  // ---- the shootdown port's view of this CPU ---------------------------------------------------

  /**
   * What applying an invalidation request from an initiator costs (called by the shootdown port
   * while this CPU services its mailbox, before it acknowledges: the ack carries the time). The
   * request's TLB side follows in `evictRemote`, within the same step. `delivery`: by IPI
   * (interrupt entry and exit charged), by hardware broadcast (INVLPGB: no interrupt), or lazily
   * at an epoch boundary (LATR: the CPU applies it on its own, no interrupt).
   */
  chargeRemoteInvalidate(kind: 1 | 2, count: number, delivery: 'ipi' | 'broadcast' | 'lazy'): void {
    // Each listed page: its invlpg and the handler's per-page step (cost-model.ts `flushPage`); a
    // full flush: a CR3 write.
    this.cycles +=
      kind === 1 ? count * (this.costs.invlpg + this.costs.flushPage) : this.costs.cr3Write;
    // Only an IPI interrupts the CPU: interrupt entry and exit. A broadcast is done by hardware,
    // a lazy request by the CPU itself at an epoch boundary.
    if (delivery === 'ipi') this.cycles += this.costs.ipiReceive;
  }

  /**
   * The TLB side of a request from `initiator`: `invlpg` each page for `pcid`, or drop every
   * non-global entry of it, and the IpiReceive record; no cycles (`chargeRemoteInvalidate`).
   */
  evictRemote(
    initiator: number,
    kind: 1 | 2,
    pcid: number,
    pages: readonly number[],
    delivery: 'ipi' | 'broadcast' | 'lazy',
  ): void {
    this.evictReason = EvictReason.Shootdown;
    if (kind === 1) {
      for (const page of pages) this.tlb.invlpg(VirtAddr.newUnchecked(page), pcid, this.evictHook);
    } else {
      this.tlb.flushNonGlobal(this.pcide ? pcid : undefined, this.evictHook);
    }
    this.record(
      TraceKind.IpiReceive,
      initiator,
      kind,
      pages.length,
      delivery === 'broadcast' ? 1 : delivery === 'lazy' ? 2 : 0,
    );
  }

  /** Returns a frame held by a lazy protocol to the allocator, now that it is safe. */
  freeFrameNow(frame: number): void {
    try {
      this.env.allocator.deallocateFrame(
        PhysFrame.fromStartAddressUnchecked(frame as PhysAddr, Size4KiB),
      );
      this.record(TraceKind.FrameFree, frame, 2, 0, 0);
    } catch (e) {
      if (!(e instanceof FrameAllocatorError)) throw e;
      this.mapperErrors.push({ cpu: this.id, step: this.now, op: 'free_frame', err: e.kind });
    }
  }

  /** Appends a trace record on behalf of the shootdown port. */
  emit(kind: TraceKind, a: number, b: number, c: number, d: number): void {
    this.record(kind, a, b, c, d);
  }

  // ---- TLB maintenance -----------------------------------------------------------------------

  /** `invlpg addr`: evicts that page's entries of the current PCID, GLOBAL ones too. */
  invlpg(addr: VirtAddr): void {
    this.evictReason = EvictReason.Invlpg;
    const n = this.tlb.invlpg(addr, this.cr3Pcid, this.evictHook);
    this.cycles += this.costs.invlpg;
    this.record(TraceKind.Maintenance, MaintenanceOp.Invlpg, addr, this.cr3Pcid, n);
  }

  /** Reloads CR3 with its own value (the crate's `tlb::flush_all`): GLOBAL entries survive. */
  reloadCr3(): void {
    this.evictReason = EvictReason.Cr3;
    const n = this.tlb.flushNonGlobal(this.pcide ? this.cr3Pcid : undefined, this.evictHook);
    this.cycles += this.costs.cr3Write;
    this.record(TraceKind.Maintenance, MaintenanceOp.FlushAll, -1, this.cr3Pcid, n);
  }

  /**
   * `mov cr3`: switch to another address space. Without PCIDs every non-global entry goes; with
   * PCIDs only the new PCID's non-global entries go, and none with the no-flush bit (bit 63).
   */
  movCr3(name: string, noflush: boolean): void {
    const space = this.space(name);
    this.addressSpace = name;
    this.cr3Table = space.p4.startAddress;
    this.cr3Pcid = this.pcide ? space.pcid : 0;
    this.cycles += this.costs.cr3Write;
    this.record(TraceKind.Cr3Write, this.cr3Table, this.cr3Pcid, this.pcide && noflush ? 1 : 0, 0);
    // Entries that survive the switch (GLOBAL, or kept by PCID) were checked against the old
    // tables only: probe each once against the new ones (a GLOBAL entry may leak, spec).
    this.checkedGen.fill(-1);
    if (this.pcide && noflush) return;
    this.evictReason = EvictReason.Cr3;
    this.tlb.flushNonGlobal(this.pcide ? this.cr3Pcid : undefined, this.evictHook);
  }

  // ---- Mapper calls --------------------------------------------------------------------------

  /** The Mapper of an address space as seen from this CPU (its flushes invalidate this TLB). */
  mapperFor(name: string): OffsetPageTable {
    let m = this.mappers.get(name);
    if (m === undefined) {
      m = new OffsetPageTable(this.env.memory, this.space(name).p4, VirtAddr.zero, {
        invalidation: this.invalidation,
      });
      this.mappers.set(name, m);
    }
    return m;
  }

  private mapperCall(
    ins: Extract<
      Instruction,
      { op: 'map_to' | 'unmap' | 'update_flags' | `set_flags_p${2 | 3 | 4}_entry` }
    >,
  ): void {
    this.dropPendingFlush();
    this.cycles += this.costs.mapperCall;
    const mapper = this.mapperFor(this.addressSpace);
    const page = Page.fromStartAddressUnchecked(ins.page, ins.size);
    let r: Result<MapperFlush<AnyPageSize> | MapperFlushAll, { kind: string }>;
    let frameOut = -1;
    switch (ins.op) {
      case 'map_to': {
        const f = this.frameOperand(ins.frame, ins.size);
        if (f < 0) return;
        frameOut = f;
        r = mapper.mapTo(
          page,
          PhysFrame.fromStartAddressUnchecked(f as PhysAddr, ins.size),
          ins.flags,
          this.env.allocator,
        );
        break;
      }
      case 'unmap': {
        const u = mapper.unmap(page);
        if (u.ok) {
          frameOut = u.value.frame.startAddress;
          if (ins.reg !== undefined) this.setRegister(regIndex(ins.reg), BigInt(frameOut));
          r = { ok: true, value: u.value.flush };
        } else r = u;
        break;
      }
      case 'update_flags':
        r = mapper.updateFlags(page, ins.flags);
        break;
      case 'set_flags_p4_entry':
        r = mapper.setFlagsP4Entry(page, ins.flags);
        break;
      case 'set_flags_p3_entry':
        r = mapper.setFlagsP3Entry(page, ins.flags);
        break;
      case 'set_flags_p2_entry':
        r = mapper.setFlagsP2Entry(page, ins.flags);
        break;
    }
    this.record(
      TraceKind.Mapper,
      MAPPER_OPS.indexOf(ins.op),
      ins.page,
      frameOut,
      r.ok ? 0 : 1 + (MAPPER_ERRORS as readonly string[]).indexOf(r.error.kind),
    );
    if (r.ok) {
      this.pendingFlush = r.value;
      // After the entry writes: a CPU that reads the new generation sees the new tables.
      Atomics.add(this.generation, 0, 1);
    } else this.mapperErrors.push({ cpu: this.id, step: this.now, op: ins.op, err: r.error.kind });
  }

  /** The frame address a `frame` operand names, or -1 after failing the CPU for a bad value. */
  private frameOperand(operand: FrameOperand, size: AnyPageSize): number {
    if (typeof operand === 'number') return operand;
    const v = this.register(regIndex(operand.reg));
    if (v >= 1n << 52n || Number(v) % size.bytes !== 0) {
      this.fail(
        `cpu ${this.id}, instruction ${this.pc}: ${operand.reg} = ${hex(v)} is not a ${size.name}-aligned frame below 2^52`,
      );
      return -1;
    }
    return Number(v);
  }

  /** A new Mapper call (or a halt) drops an obligation that was neither flushed nor ignored. */
  private dropPendingFlush(): void {
    const pending = this.pendingFlush;
    if (pending === undefined) return;
    this.pendingFlush = undefined;
    this.record(
      TraceKind.Flush,
      'page' in pending ? pending.page().startAddress : -1,
      FlushOutcome.Dropped,
      0,
      0,
    );
  }

  // ---- stopping ------------------------------------------------------------------------------

  private halt(status: 'halted' | 'faulted' | 'failed'): void {
    if (this.status !== 'running') return;
    this.status = status;
    this.dropPendingFlush();
    this.port?.leave(this);
    // Withdraw from every barrier still ahead in the program: nobody waits for a stopped CPU.
    const mine = this.env.barriers.instanceOf[this.id] ?? [];
    for (let pc = this.wait === 'barrier' ? this.pc + 1 : this.pc; pc < mine.length; pc++) {
      const id = mine[pc]!;
      if (id >= 0) this.env.barriers.withdraw(id);
    }
    this.record(TraceKind.Halt, status === 'halted' ? 0 : status === 'faulted' ? 1 : 2, 0, 0, 0);
  }

  private fail(message: string): void {
    this.failure = message;
    this.halt('failed');
  }

  private space(name: string): AddressSpaceRef {
    const s = this.env.spaces.get(name);
    if (s === undefined)
      throw new Error(`cpu ${this.id}: unknown address space ${JSON.stringify(name)}`);
    return s;
  }

  private record(kind: TraceKind, a: number, b: number, c: number, d: number): void {
    this.trace?.push(kind, this.id, this.now, a, b, c, d);
  }
}

/** Mapper ops in the order their index is recorded in `TraceKind.Mapper` records. */
export const MAPPER_OPS = [
  'map_to',
  'unmap',
  'update_flags',
  'set_flags_p4_entry',
  'set_flags_p3_entry',
  'set_flags_p2_entry',
] as const;
/** Mapper error kinds in the order their index (plus one) is recorded. */
export const MAPPER_ERRORS = [
  'FrameAllocationFailed',
  'ParentEntryHugePage',
  'PageAlreadyMapped',
  'PageNotMapped',
  'InvalidFrameAddress',
] as const;
