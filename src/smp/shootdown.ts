/**
 * TLB shootdown protocols over the shared IPI mailbox (`ipi.ts`): `none`, `sync-ipi`, `batched`,
 * `lazy` and `broadcast`, exactly as the scenario spec defines them. One class implements the
 * CPU's `ShootdownPort`; each protocol is a `ProtocolRules` entry saying what `flush()` and the
 * sync points do, so a user can add a protocol by adding rules.
 *
 * All shared state (slots, counters, wake words, cpumasks) is in one `SharedArrayBuffer`; the
 * per-CPU bookkeeping (batches, lazy queues, held frees, expected acks) is thread-local, so the same
 * class works for every CPU of the deterministic host and for one CPU per worker thread.
 */

import type { Cpu } from '../cpu/cpu.ts';
import type { ShootdownPort, SyncPoint } from '../cpu/shootdown-port.ts';
import { TraceKind } from '../trace/record.ts';
import {
  CPU_ACKS,
  CPU_LEFT,
  CPU_PENDING,
  CPU_SLEEPING,
  CPU_WAKE,
  CPU_WORDS,
  type IpiLayout,
  ipiLayout,
  MAX_REQUEST_PAGES,
  REQUEST_BROADCAST,
  REQUEST_LAZY,
  RequestKind,
  SLOT_ACK,
  SLOT_COUNT,
  SLOT_FLAGS,
  SLOT_KIND,
  SLOT_PAGES,
  SLOT_PCID,
  SLOT_SEQ,
} from './ipi.ts';

/** What a protocol does at each decision point. */
export interface ProtocolRules {
  /** On `flush()`: 'none' (local only), 'ipi' (send and wait), 'batch' (queue), 'lazy' (defer). */
  readonly onFlush: 'none' | 'ipi' | 'batch' | 'lazy';
  /** Targets: the address space's cpumask, or every other running CPU (hardware broadcast). */
  readonly targets: 'cpumask' | 'all';
  /** Delivered by hardware broadcast rather than interrupts. */
  readonly broadcast: boolean;
}

/** The protocols of the scenario spec. */
export const PROTOCOL_RULES: Readonly<Record<string, ProtocolRules>> = {
  none: { onFlush: 'none', targets: 'cpumask', broadcast: false },
  'sync-ipi': { onFlush: 'ipi', targets: 'cpumask', broadcast: false },
  batched: { onFlush: 'batch', targets: 'cpumask', broadcast: false },
  lazy: { onFlush: 'lazy', targets: 'cpumask', broadcast: false },
  broadcast: { onFlush: 'ipi', targets: 'all', broadcast: true },
};

/** A request as the initiator builds it before posting. */
interface Request {
  kind: RequestKind;
  pcid: number;
  pages: number[];
  space: number;
}

/** Thread-local bookkeeping of one CPU. */
interface Local {
  /** PENDING value last serviced. */
  serviced: number;
  /** Index of this CPU's PENDING word (read at every instruction boundary). */
  readonly pendingWord: number;
  /** ACKS value at which the current wait completes. */
  expectAcks: number;
  /** Requests posted so far (acks expected in all). */
  posted: number;
  /** Slots of the current round, for the modeled completion time. */
  round: number[];
  /** `batched`: the gathered pages, or `full` once the batch needs a full flush. */
  batch: { pages: number[]; full: boolean; space: number; pcid: number } | undefined;
  /** `lazy`: requests per target not yet posted (its slot was busy). */
  lazyQueue: Map<number, Request>;
  /** `lazy`: frames whose free waits for this CPU's outstanding lazy flushes. */
  heldFrees: number[];
  /** `flush()` calls so far. */
  flushes: number;
  /** How many of them have reached their coherence point (last `Coherent` record). */
  coherent: number;
  /** How many flushes the current IPI round makes coherent once every target acknowledged. */
  roundCovers: number;
  /** `lazy`: the CPU waits at its halt, itself an epoch boundary, for its lazy flushes. */
  halting: boolean;
}

/** Everything another thread needs to wrap the same shootdown state (`fromShared`). */
export interface SharedShootdown {
  readonly buffer: SharedArrayBuffer;
  readonly ackCycles: SharedArrayBuffer;
  readonly protocol: string;
  readonly cpus: number;
  readonly spaces: readonly string[];
}

/** The shootdown machinery of one machine, seen from the CPUs of this thread. */
export class Shootdown implements ShootdownPort {
  readonly protocol: string;
  readonly wake: Int32Array;
  readonly tableGeneration: Int32Array;
  private readonly words: Int32Array;
  /** Modeled time (cycles) at which each slot's last request was acknowledged. */
  private readonly ackCycles: Float64Array;
  private readonly layout: IpiLayout;
  private readonly rules: ProtocolRules;
  private readonly spaceIndex: Map<string, number>;
  /** Thread-local state by CPU id (an array: `poll` runs at every instruction boundary). */
  private readonly local: (Local | undefined)[] = [];
  private readonly lazy: boolean;

  private constructor(private readonly sharedState: SharedShootdown) {
    const rules = PROTOCOL_RULES[sharedState.protocol];
    if (rules === undefined)
      throw new Error(`unknown shootdown protocol ${JSON.stringify(sharedState.protocol)}`);
    this.rules = rules;
    this.lazy = rules.onFlush === 'lazy';
    this.protocol = sharedState.protocol;
    this.layout = ipiLayout(sharedState.cpus, sharedState.spaces.length);
    this.words = new Int32Array(sharedState.buffer);
    this.ackCycles = new Float64Array(sharedState.ackCycles);
    this.spaceIndex = new Map(sharedState.spaces.map((s, i) => [s, i]));
    // The wake words are interleaved with the other per-CPU words; expose them through a view
    // whose index is the CPU id only if CPU_WORDS were 1, so keep a dedicated array instead.
    this.wake = new Int32Array(
      sharedState.buffer,
      this.layout.cpu(0) * 4,
      sharedState.cpus * CPU_WORDS,
    );
    this.tableGeneration = new Int32Array(sharedState.buffer, this.layout.tableGeneration * 4, 1);
  }

  /** A fresh control block for `cpus` CPUs over `spaces` (address-space names, in order). */
  static create(protocol: string, cpus: number, spaces: readonly string[]): Shootdown {
    const layout = ipiLayout(cpus, spaces.length);
    return new Shootdown({
      buffer: new SharedArrayBuffer(layout.words * 4),
      ackCycles: new SharedArrayBuffer(cpus * cpus * 8),
      protocol,
      cpus,
      spaces: [...spaces],
    });
  }

  /** Wraps the state another thread exported with `shared()`. */
  static fromShared(shared: SharedShootdown): Shootdown {
    return new Shootdown(shared);
  }

  /** The state as plain data for another thread. */
  shared(): SharedShootdown {
    return this.sharedState;
  }

  /** The index into `wake` of a CPU's wake word (CPU_WORDS words per CPU). */
  wakeIndex(cpu: number): number {
    return cpu * CPU_WORDS + CPU_WAKE;
  }

  /**
   * The index into `wake` of a CPU's SLEEPING word. A host that sleeps in `Atomics.wait` on the
   * CPU's wake word stores 1 there first and 0 once awake; wakers notify only while it is 1. The
   * host must store it (seq-cst) before its `Atomics.wait`, whose own comparison of the wake word
   * then closes the race with a waker (see `wakeUp`).
   */
  sleepIndex(cpu: number): number {
    return cpu * CPU_WORDS + CPU_SLEEPING;
  }

  private state(cpu: Cpu): Local {
    let l = this.local[cpu.id];
    if (l === undefined) {
      l = {
        serviced: 0,
        pendingWord: this.cpuWord(cpu.id, CPU_PENDING),
        expectAcks: 0,
        posted: 0,
        round: [],
        batch: undefined,
        lazyQueue: new Map(),
        heldFrees: [],
        flushes: 0,
        coherent: 0,
        roundCovers: 0,
        halting: false,
      };
      this.local[cpu.id] = l;
    }
    return l;
  }

  private cpuWord(cpu: number, field: number): number {
    return this.layout.cpu(cpu) + field;
  }

  wakeAll(): void {
    for (let cpu = 0; cpu < this.layout.cpus; cpu++) this.wakeUp(cpu);
  }

  /**
   * Bumps a CPU's wake word and, if its host sleeps in `Atomics.wait`, notifies it. No wake-up is
   * lost (Dekker's pattern, every access seq-cst): the waker changes WAKE, then loads SLEEPING;
   * the sleeper stores SLEEPING, then compares WAKE inside `Atomics.wait`. In the single total
   * order, if the waker's load comes before the sleeper's store, so does its change of WAKE, and
   * the sleeper's comparison sees it and does not sleep; otherwise the load sees 1 and the
   * notify wakes the sleeper (or precedes its wait, whose comparison then sees the change).
   */
  private wakeUp(cpu: number): void {
    const words = this.words;
    const w = this.cpuWord(cpu, CPU_WAKE);
    Atomics.add(words, w, 1);
    if (Atomics.load(words, w - CPU_WAKE + CPU_SLEEPING) !== 0) Atomics.notify(words, w);
  }

  // ---- cpumasks ------------------------------------------------------------------------------

  private setMask(space: number, cpu: number, on: boolean): void {
    const w = this.layout.cpumask(space) + (cpu >> 5);
    const bit = 1 << (cpu & 31);
    // Atomic OR/AND: several CPUs join and leave the same mask at once.
    if (on) Atomics.or(this.words, w, bit);
    else Atomics.and(this.words, w, ~bit);
  }

  /** CPUs that may cache `space` (bits of its cpumask), excluding `self`. */
  private maskTargets(space: number, self: number): number[] {
    const out: number[] = [];
    for (let cpu = 0; cpu < this.layout.cpus; cpu++) {
      if (cpu === self) continue;
      const w = Atomics.load(this.words, this.layout.cpumask(space) + (cpu >> 5));
      if ((w & (1 << (cpu & 31))) !== 0) out.push(cpu);
    }
    return out;
  }

  /** Every CPU still in some cpumask (i.e. running), excluding `self`. */
  private allTargets(self: number): number[] {
    const out = new Set<number>();
    for (let s = 0; s < this.layout.spaces; s++)
      for (const c of this.maskTargets(s, self)) out.add(c);
    return [...out].sort((a, b) => a - b);
  }

  start(cpu: Cpu, space: string): void {
    this.setMask(this.space(space), cpu.id, true);
  }

  switchSpace(cpu: Cpu, from: string, to: string): void {
    this.setMask(this.space(to), cpu.id, true);
    // With PCIDs the CPU may keep entries of `from` under its PCID after switching away, so it
    // stays in that cpumask (Linux tracks this with per-CPU ASID generations instead).
    if (!cpu.pcide && from !== to) this.setMask(this.space(from), cpu.id, false);
  }

  private space(name: string): number {
    const i = this.spaceIndex.get(name);
    if (i === undefined)
      throw new Error(`shootdown: unknown address space ${JSON.stringify(name)}`);
    return i;
  }

  // ---- target side ---------------------------------------------------------------------------

  poll(cpu: Cpu, epoch: boolean): void {
    const l = this.state(cpu);
    const pending = Atomics.load(this.words, l.pendingWord);
    // A CPU waiting at its halt has reached that epoch boundary: it applies lazy requests as
    // they come, or two halting lazy initiators would each wait for the other's epoch forever.
    if (l.halting) epoch = true;
    if (pending !== l.serviced || epoch) {
      l.serviced = pending;
      this.service(cpu, epoch);
    }
    if (this.lazy) this.progressLazy(cpu, l);
  }

  /** Applies every posted request to this CPU (lazy ones only at an epoch boundary). */
  private service(cpu: Cpu, epoch: boolean): void {
    const words = this.words;
    for (let from = 0; from < this.layout.cpus; from++) {
      if (from === cpu.id) continue;
      const base = this.layout.slot(from, cpu.id);
      // Pairs with the initiator's Atomics.store of SEQ after it wrote the fields.
      const seq = Atomics.load(words, base + SLOT_SEQ);
      if (seq === Atomics.load(words, base + SLOT_ACK)) continue;
      const flags = words[base + SLOT_FLAGS]!;
      if ((flags & REQUEST_LAZY) !== 0 && !epoch) continue;
      const kind = words[base + SLOT_KIND]! as RequestKind;
      const pcid = words[base + SLOT_PCID]!;
      const pages: number[] = [];
      if (kind === RequestKind.Pages) {
        const count = words[base + SLOT_COUNT]!;
        for (let i = 0; i < count; i++) {
          const lo = words[base + SLOT_PAGES + 2 * i]! >>> 0;
          const hi = words[base + SLOT_PAGES + 2 * i + 1]!;
          pages.push(hi * 4294967296 + lo);
        }
      }
      cpu.remoteInvalidate(from, kind, pcid, pages, (flags & REQUEST_BROADCAST) !== 0);
      this.ackCycles[from * this.layout.cpus + cpu.id] = cpu.cycles;
      this.acknowledge(from, base, seq);
    }
  }

  /**
   * The ack: the slot is free again, the initiator counts it and wakes. A compare-exchange from
   * the slot's previous ACK, so that of the target and an initiator acknowledging for a stopped
   * target (`post`) exactly one counts it.
   */
  private acknowledge(initiator: number, base: number, seq: number): void {
    const words = this.words;
    const before = (seq - 1) | 0;
    if (Atomics.compareExchange(words, base + SLOT_ACK, before, seq) !== before) return;
    Atomics.add(words, this.cpuWord(initiator, CPU_ACKS), 1);
    this.wakeUp(initiator);
  }

  // ---- initiator side ------------------------------------------------------------------------

  flush(cpu: Cpu, page: number): boolean {
    const rules = this.rules;
    const l = this.state(cpu);
    l.flushes++;
    if (rules.onFlush === 'none') {
      // The crate's flush() on one CPU: done once the local invalidation returns.
      this.markCoherent(cpu, l, l.flushes);
      return false;
    }
    const space = this.space(cpu.addressSpace);
    const request: Request =
      page < 0
        ? { kind: RequestKind.Full, pcid: cpu.cr3Pcid, pages: [], space }
        : { kind: RequestKind.Pages, pcid: cpu.cr3Pcid, pages: [page], space };
    switch (rules.onFlush) {
      case 'ipi':
        return this.sendRound(
          cpu,
          l,
          request,
          rules.targets === 'all' ? this.allTargets(cpu.id) : this.maskTargets(space, cpu.id),
        );
      case 'batch': {
        // Gather; the batch goes out at the next sync point (scenario spec, `batched`).
        const b = l.batch ?? { pages: [], full: false, space, pcid: cpu.cr3Pcid };
        if (page < 0) b.full = true;
        else b.pages.push(page);
        l.batch = b;
        return false;
      }
      case 'lazy':
        for (const target of this.maskTargets(space, cpu.id)) this.queueLazy(l, target, request);
        this.progressLazy(cpu, l);
        return false;
    }
  }

  /** Posts `request` to every target; returns true if there are acks to wait for. */
  private sendRound(
    cpu: Cpu,
    l: Local,
    request: Request,
    targets: readonly number[],
    flags = 0,
  ): boolean {
    l.round = [];
    l.roundCovers = l.flushes;
    for (const target of targets)
      this.post(cpu, l, target, request, flags | (this.rules.broadcast ? REQUEST_BROADCAST : 0));
    l.expectAcks = l.posted;
    // Nobody else may cache the space: the round is complete as it starts.
    if (targets.length === 0) this.markCoherent(cpu, l, l.roundCovers);
    return targets.length > 0;
  }

  /**
   * Records the coherence point of this CPU's first `flushes` flushes (scenario spec: the return
   * of flush() under none/sync-ipi/broadcast, the batch's round under batched, every target's
   * epoch under lazy). The checker measures stale accesses against these records. It is taken
   * when the initiator observes the last acknowledgement: possibly a step late, never early, so a
   * protocol's promised window is never reported as a hazard.
   */
  private markCoherent(cpu: Cpu, l: Local, flushes: number): void {
    if (flushes <= l.coherent) return;
    l.coherent = flushes;
    cpu.emit(TraceKind.Coherent, flushes, 0, 0, 0);
  }

  /** Writes a request into the (initiator, target) slot and publishes it. The slot must be free. */
  private post(cpu: Cpu, l: Local, target: number, request: Request, flags: number): void {
    const words = this.words;
    const base = this.layout.slot(cpu.id, target);
    const full = request.kind === RequestKind.Full || request.pages.length > MAX_REQUEST_PAGES;
    words[base + SLOT_KIND] = full ? RequestKind.Full : RequestKind.Pages;
    words[base + SLOT_PCID] = request.pcid;
    words[base + SLOT_FLAGS] = flags;
    words[base + SLOT_COUNT] = full ? 0 : request.pages.length;
    if (!full) {
      request.pages.forEach((p, i) => {
        words[base + SLOT_PAGES + 2 * i] = (p % 4294967296) | 0;
        words[base + SLOT_PAGES + 2 * i + 1] = Math.floor(p / 4294967296);
      });
    }
    const seq = (Atomics.load(words, base + SLOT_SEQ) + 1) | 0;
    // Publishes the fields above: the target loads SEQ with Atomics before reading them.
    Atomics.store(words, base + SLOT_SEQ, seq);
    l.posted++;
    l.round.push(cpu.id * this.layout.cpus + target);
    cpu.emit(
      TraceKind.IpiSend,
      target,
      full ? RequestKind.Full : RequestKind.Pages,
      full ? 0 : request.pages.length,
      flags,
    );
    if ((flags & REQUEST_LAZY) === 0) Atomics.add(words, this.cpuWord(target, CPU_PENDING), 1);
    this.wakeUp(target);
    // The target may have stopped after this CPU chose it (a lazy request queued earlier, or a
    // race on worker threads): it will never service the slot, so acknowledge for it. Its
    // `leave` stores LEFT before its last service, this CPU stored SEQ before loading LEFT, so
    // (all seq-cst) at least one of the two sees the other's write.
    if (Atomics.load(words, this.cpuWord(target, CPU_LEFT)) === 1)
      this.acknowledge(cpu.id, base, seq);
    cpu.cycles += this.rules.broadcast ? cpu.costs.invlpgb : cpu.costs.ipiSend;
  }

  waiting(cpu: Cpu): boolean {
    const l = this.state(cpu);
    return Atomics.load(this.words, this.cpuWord(cpu.id, CPU_ACKS)) < l.expectAcks;
  }

  unacknowledged(cpu: Cpu): number[] {
    const out: number[] = [];
    for (const slot of this.state(cpu).round) {
      const target = slot % this.layout.cpus;
      const base = this.layout.slot(cpu.id, target);
      if (Atomics.load(this.words, base + SLOT_SEQ) !== Atomics.load(this.words, base + SLOT_ACK))
        out.push(target);
    }
    return out;
  }

  complete(cpu: Cpu): void {
    // The initiator's modeled clock jumps to the latest acknowledgement of the round (it spun or
    // slept until then), plus the completion cost (TLBSYNC for broadcast).
    const l = this.state(cpu);
    let latest = cpu.cycles;
    for (const slot of l.round) latest = Math.max(latest, this.ackCycles[slot]!);
    cpu.cycles = latest + (this.rules.broadcast ? cpu.costs.tlbsync : cpu.costs.ipiAck);
    cpu.emit(TraceKind.ShootdownDone, l.round.length, cpu.cycles, 0, 0);
    l.round = [];
    // A lazy CPU's coherence point is its queue draining (progressLazy), not a round's end.
    if (this.rules.onFlush !== 'lazy') this.markCoherent(cpu, l, l.roundCovers);
  }

  syncPoint(cpu: Cpu, point: SyncPoint): boolean {
    const l = this.state(cpu);
    if (this.rules.onFlush === 'batch' && l.batch !== undefined) {
      const b = l.batch;
      l.batch = undefined;
      const request: Request = {
        kind: b.full || b.pages.length > MAX_REQUEST_PAGES ? RequestKind.Full : RequestKind.Pages,
        pcid: b.pcid,
        pages: b.pages,
        space: b.space,
      };
      return this.sendRound(cpu, l, request, this.maskTargets(b.space, cpu.id));
    }
    if (this.rules.onFlush === 'lazy' && point === 'halt') {
      // A halting CPU waits for its lazy flushes' coherence point so that held frees happen.
      l.halting = true;
      this.service(cpu, true);
      this.progressLazy(cpu, l);
      l.expectAcks = l.posted;
      return this.lazyOutstanding(cpu, l);
    }
    return false;
  }

  holdFree(cpu: Cpu, frame: number): boolean {
    if (this.rules.onFlush !== 'lazy') return false;
    const l = this.state(cpu);
    if (!this.lazyOutstanding(cpu, l)) return false;
    // LATR: the free waits for the coherence point of this CPU's outstanding lazy flushes.
    l.heldFrees.push(frame);
    return true;
  }

  leave(cpu: Cpu): void {
    Atomics.store(this.words, this.cpuWord(cpu.id, CPU_LEFT), 1);
    for (let s = 0; s < this.layout.spaces; s++) this.setMask(s, cpu.id, false);
    // Acknowledge everything pending, lazy requests included: a stopped CPU caches nothing more.
    this.service(cpu, true);
  }

  // ---- lazy bookkeeping ----------------------------------------------------------------------

  private queueLazy(l: Local, target: number, request: Request): void {
    const queued = l.lazyQueue.get(target);
    if (queued === undefined) {
      l.lazyQueue.set(target, { ...request, pages: [...request.pages] });
      return;
    }
    // Merge: pages accumulate; a full flush or too many pages become one full flush.
    if (request.kind === RequestKind.Full || queued.kind === RequestKind.Full)
      queued.kind = RequestKind.Full;
    else queued.pages.push(...request.pages);
    if (queued.pages.length > MAX_REQUEST_PAGES) queued.kind = RequestKind.Full;
  }

  /** Posts queued lazy requests whose slots are free, and performs held frees once coherent. */
  private progressLazy(cpu: Cpu, l: Local): void {
    for (const [target, request] of l.lazyQueue) {
      const base = this.layout.slot(cpu.id, target);
      if (Atomics.load(this.words, base + SLOT_SEQ) !== Atomics.load(this.words, base + SLOT_ACK))
        continue;
      l.lazyQueue.delete(target);
      this.post(cpu, l, target, request, REQUEST_LAZY);
    }
    if (l.coherent < l.flushes && !this.lazyOutstanding(cpu, l))
      this.markCoherent(cpu, l, l.flushes);
    if (l.heldFrees.length > 0 && !this.lazyOutstanding(cpu, l)) {
      const frames = l.heldFrees;
      l.heldFrees = [];
      for (const f of frames) cpu.freeFrameNow(f);
    }
  }

  private lazyOutstanding(cpu: Cpu, l: Local): boolean {
    return (
      l.lazyQueue.size > 0 || Atomics.load(this.words, this.cpuWord(cpu.id, CPU_ACKS)) < l.posted
    );
  }
}
