/**
 * TLB shootdown protocols over the shared IPI mailbox (`ipi.ts`): `none`, `sync-ipi`, `batched`,
 * `lazy` and `broadcast`, exactly as the scenario spec defines them. One class implements the
 * CPU's `ShootdownPort`; each protocol is a `ProtocolRules` entry saying what `flush()` and the
 * sync points do, so a user can add a protocol by adding rules.
 *
 * All shared state (slots, counters, wake words, cpumasks, each CPU's CR3) is in the machine's
 * control block (`layout.ts`); the per-CPU bookkeeping (batches, lazy queues, held frees, expected acks) is thread-local, so the same
 * class works for every CPU of the deterministic host and for one CPU per worker thread.
 */

import type { Cpu } from '../cpu/cpu.ts';
import type { ShootdownPort, SyncPoint } from '../cpu/shootdown-port.ts';
import { TraceKind } from '../trace/record.ts';
import {
  REQUEST_BROADCAST,
  REQUEST_LAZY,
  RequestKind,
  STATUS_LEFT,
  STATUS_SLEEPING,
  WAKE_ACK,
  WAKE_OTHER,
  WAKE_POST,
  WAKE_POSTS,
} from './ipi.ts';
import {
  type ControlLayout,
  CPU_STATUS,
  CPU_WAKE,
  CR3_PCID,
  CR3_SPACE,
  controlWord,
  layoutOf,
  MAX_REQUEST_PAGES,
  type SharedControlBlock,
  SLOT_COUNT,
  SLOT_FLAGS,
  SLOT_KIND,
  SLOT_PAGES,
  SLOT_PCID,
} from './layout.ts';

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

/** Stores `value` at `words[index]` unless it is there already (plain: the SEQ store publishes it). */
function setIfChanged(words: Int32Array, index: number, value: number): void {
  if (words[index] !== value) words[index] = value;
}

/**
 * True while the ack count in a WAKE value (bits 0-7, modulo 256) is below `expected`: the
 * difference as a signed 8-bit number (`<< 24` drops the other counters), exact because the two
 * never differ by 128 or more (`Shootdown.acksMissing`).
 */
function acksShort(wake: number, expected: number): boolean {
  return (expected - wake) << 24 > 0;
}

/** The pages of a full-flush request (shared, never written). */
const NO_PAGES: readonly number[] = Object.freeze([]);

/** A request as the initiator builds it before posting. */
interface Request {
  kind: RequestKind;
  pcid: number;
  pages: readonly number[];
  space: number;
}

/** A lazy request waiting for its slot: its own pages array, which later flushes extend. */
interface QueuedRequest extends Request {
  pages: number[];
}

/** Thread-local bookkeeping of one CPU. */
interface Local {
  /** The CPU's WAKE word when it last serviced its slots (its request count, bits 8-19). */
  serviced: number;
  /** Index of this CPU's WAKE word (read at every instruction boundary). */
  readonly wakeWord: number;
  /** Acks received (WAKE's bits 0-7 count them, modulo 256) at which the current wait completes. */
  expectAcks: number;
  /** Requests posted so far (acks expected in all). */
  posted: number;
  /**
   * The targets posted to in the current round (bits of CPUs 0-31 and 32-63), for the modeled
   * completion time and deadlock reports, and how many posts that was (lazy posts may repeat a
   * target). Two numbers rather than an array: nothing is allocated per round.
   */
  roundLo: number;
  roundHi: number;
  roundPosts: number;
  /** Posts of the current round this CPU acknowledged itself (for stopped targets, `post`). */
  roundSelfAcks: number;
  /** The request `flush()` posts, reused (with `onePage`) so that a flush allocates nothing. */
  readonly request: Request;
  /** The one-element pages array of `request` for a one-page flush. */
  readonly onePage: number[];
  /** The name and index of the address space `flush()` last looked up (CR3 rarely changes). */
  spaceName: string;
  spaceIndex: number;
  /** `batched`: the gathered pages, or `full` once the batch needs a full flush. */
  batch: { pages: number[]; full: boolean; space: number; pcid: number } | undefined;
  /** `lazy`: requests per target not yet posted (its slot was busy). */
  lazyQueue: Map<number, QueuedRequest>;
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
  /** The machine's control block, where the mailboxes, wake words and cpumasks live. */
  readonly control: SharedControlBlock;
  readonly protocol: string;
  /** Address-space names in scenario order (cpumask `i` is `spaces[i]`'s). */
  readonly spaces: readonly string[];
}

/** Where a CPU runs, as its CR3 words in the control block say (`Shootdown.activeSpace`). */
export interface ActiveSpace {
  /** The address space's name, or undefined before the CPU's first `start`. */
  readonly addressSpace: string | undefined;
  readonly pcid: number;
}

/** The shootdown machinery of one machine, seen from the CPUs of this thread. */
export class Shootdown implements ShootdownPort {
  readonly protocol: string;
  readonly wake: Int32Array;
  readonly tableGeneration: Int32Array;
  private readonly words: Int32Array;
  /** Modeled time (cycles) at which each slot's last request was acknowledged. */
  private readonly ackCycles: Float64Array;
  private readonly layout: ControlLayout;
  private readonly rules: ProtocolRules;
  private readonly spaceIndex: Map<string, number>;
  /** Thread-local state by CPU id (an array: `poll` runs at every instruction boundary). */
  private readonly local: (Local | undefined)[] = [];
  private readonly lazy: boolean;
  /**
   * `service`'s copy of a one-page request's page, reused (evictRemote does not keep it);
   * longer lists get an array of their own. Never resized: setting an array's length is a
   * runtime call that measured slower than the allocation it saves.
   */
  private readonly onePage: number[] = [0];
  /**
   * The hot paths' word indices, computed once: each CPU's WAKE word, and per (initiator, target)
   * pair (`initiator * cpus + target`) its slot, SEQ and ACK words.
   */
  private readonly wakeAt: Int32Array;
  private readonly slotAt: Int32Array;
  private readonly seqAt: Int32Array;
  private readonly ackAt: Int32Array;
  /** Per initiator: the index in `ackCycles` of its first target's ack time. */
  private readonly ackCyclesRow: Int32Array;
  /** Targets `targetMask` found (CPUs 0-31 and 32-63): scratch, so that no round allocates. */
  private maskLo = 0;
  private maskHi = 0;

  private constructor(private readonly sharedState: SharedShootdown) {
    const rules = PROTOCOL_RULES[sharedState.protocol];
    if (rules === undefined)
      throw new Error(`unknown shootdown protocol ${JSON.stringify(sharedState.protocol)}`);
    this.rules = rules;
    this.lazy = rules.onFlush === 'lazy';
    this.protocol = sharedState.protocol;
    const block = sharedState.control;
    this.layout = layoutOf(block);
    if (this.layout.spaces !== sharedState.spaces.length)
      throw new Error(
        `shootdown: ${sharedState.spaces.length} address spaces, but the control block has cpumasks for ${this.layout.spaces}`,
      );
    this.words = new Int32Array(block.buffer);
    // One view of the whole block: a CPU blocks on `wake[wakeIndex(id)]`, and hosts publish and
    // notify that index from the buffer's start (workers/cpu-loop.ts).
    this.wake = this.words;
    this.ackCycles = new Float64Array(
      block.buffer,
      this.layout.ipiCpu(0) * 4,
      (block.cpus * this.layout.ipiCpuWords) / 2,
    );
    this.spaceIndex = new Map(sharedState.spaces.map((s, i) => [s, i]));
    const cpus = block.cpus;
    const l = this.layout;
    this.wakeAt = Int32Array.from({ length: cpus }, (_, c) => l.ipiCpu(c) + CPU_WAKE);
    const pairs = (at: (i: number, t: number) => number) =>
      Int32Array.from({ length: cpus * cpus }, (_, k) => at(Math.floor(k / cpus), k % cpus));
    this.slotAt = pairs(l.slot);
    this.seqAt = pairs(l.reqSeq);
    this.ackAt = pairs(l.reqAck);
    this.ackCyclesRow = Int32Array.from(
      { length: cpus },
      (_, c) => (l.ackCycles(c) - l.ipiCpu(0)) / 2,
    );
    this.tableGeneration = new Int32Array(block.buffer, this.layout.tableGeneration * 4, 1);
  }

  /** The shootdown state of a machine whose control block is `control`, over `spaces` (in order). */
  static create(
    protocol: string,
    control: SharedControlBlock,
    spaces: readonly string[],
  ): Shootdown {
    return new Shootdown({ control, protocol, spaces: [...spaces] });
  }

  /** Wraps the state another thread exported with `shared()`. */
  static fromShared(shared: SharedShootdown): Shootdown {
    return new Shootdown(shared);
  }

  /** The state as plain data for another thread. */
  shared(): SharedShootdown {
    return this.sharedState;
  }

  /** The index into `wake` (the whole control block) of a CPU's wake word. */
  wakeIndex(cpu: number): number {
    return this.wakeAt[cpu]!;
  }

  /**
   * A host about to sleep in `Atomics.wait` on the CPU's wake word announces it (`sleeping`
   * true), and takes it back once awake; wakers notify only while it is announced. The announcing
   * read-modify-write is seq-cst and precedes the `Atomics.wait`, whose own comparison of the wake
   * word then closes the race with a waker (see `wakeUp`).
   */
  announceSleep(cpu: number, sleeping: boolean): void {
    const w = this.cpuWord(cpu, CPU_STATUS);
    // An OR and an AND, not stores: the word's other bit (STATUS_LEFT) is `leave`'s.
    if (sleeping) Atomics.or(this.words, w, STATUS_SLEEPING);
    else Atomics.and(this.words, w, ~STATUS_SLEEPING);
  }

  /** A CPU's status bits (ipi.ts `STATUS_*`), for checks. */
  status(cpu: number): number {
    return Atomics.load(this.words, this.cpuWord(cpu, CPU_STATUS));
  }

  private state(cpu: Cpu): Local {
    let l = this.local[cpu.id];
    if (l === undefined) {
      l = {
        serviced: 0,
        wakeWord: this.wakeAt[cpu.id]!,
        expectAcks: 0,
        posted: 0,
        roundLo: 0,
        roundHi: 0,
        roundPosts: 0,
        roundSelfAcks: 0,
        request: { kind: RequestKind.Pages, pcid: 0, pages: NO_PAGES, space: 0 },
        onePage: [0],
        spaceName: '',
        spaceIndex: -1,
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
    return this.layout.ipiCpu(cpu) + field;
  }

  wakeAll(): void {
    for (let cpu = 0; cpu < this.layout.cpus; cpu++) this.wakeUp(cpu, WAKE_OTHER);
  }

  /**
   * Adds `unit` (WAKE_ACK, WAKE_POST or WAKE_OTHER) to a CPU's wake word and, if its host sleeps in
   * `Atomics.wait`, notifies it. No wake-up is lost (Dekker's pattern, every access seq-cst): the
   * waker changes WAKE, then loads STATUS; the sleeper sets STATUS_SLEEPING, then compares WAKE
   * inside `Atomics.wait`. In the single total order, if the waker's load comes before the
   * sleeper's write, so does its change of WAKE, and the sleeper's comparison sees it and does not
   * sleep; otherwise the load sees the bit and the notify wakes the sleeper (or precedes its wait,
   * whose comparison then sees the change). Returns the STATUS word it loaded (`post` needs its
   * STATUS_LEFT bit too: one load for both).
   */
  private wakeUp(cpu: number, unit: number): number {
    const words = this.words;
    const w = this.wakeAt[cpu]!;
    // One write to the CPU's line per handoff (ipi.ts): the count and the wake-up in one add.
    Atomics.add(words, w, unit);
    const status = Atomics.load(words, w - CPU_WAKE + CPU_STATUS);
    if ((status & STATUS_SLEEPING) !== 0) Atomics.notify(words, w);
    return status;
  }

  // ---- cpumasks ------------------------------------------------------------------------------

  private setMask(space: number, cpu: number, on: boolean): void {
    const w = this.layout.cpumask(space) + (cpu >> 5);
    const bit = 1 << (cpu & 31);
    // Atomic OR/AND: several CPUs join and leave the same mask at once.
    if (on) Atomics.or(this.words, w, bit);
    else Atomics.and(this.words, w, ~bit);
  }

  /**
   * Sets `maskLo`/`maskHi` to the CPUs that may cache `space` (its cpumask), or with `space` -1
   * to every CPU still in some cpumask (i.e. running: hardware broadcast), excluding `self`.
   */
  private targetMask(space: number, self: number): void {
    const words = this.words;
    let lo = 0;
    let hi = 0;
    const first = Math.max(space, 0);
    const last = space < 0 ? this.layout.spaces - 1 : space;
    const wide = this.layout.cpus > 32;
    for (let s = first; s <= last; s++) {
      const w = this.layout.cpumask(s);
      // Atomic loads: CPUs join and leave masks concurrently (setMask's OR/AND).
      lo |= Atomics.load(words, w);
      if (wide) hi |= Atomics.load(words, w + 1);
    }
    if (self < 32) lo &= ~(1 << self);
    else hi &= ~(1 << (self - 32));
    this.maskLo = lo;
    this.maskHi = hi;
  }

  /** The CPUs of a (lo, hi) mask in ascending order (cold paths only: it allocates). */
  private static cpusOf(lo: number, hi: number): number[] {
    const out: number[] = [];
    for (let m = lo; m !== 0; m &= m - 1) out.push(31 - Math.clz32(m & -m));
    for (let m = hi; m !== 0; m &= m - 1) out.push(63 - Math.clz32(m & -m));
    return out;
  }

  start(cpu: Cpu, space: string): void {
    const s = this.space(space);
    this.setMask(s, cpu.id, true);
    this.publishCr3(cpu, s);
  }

  switchSpace(cpu: Cpu, from: string, to: string): void {
    const s = this.space(to);
    this.setMask(s, cpu.id, true);
    this.publishCr3(cpu, s);
    // With PCIDs the CPU may keep entries of `from` under its PCID after switching away, so it
    // stays in that cpumask (Linux tracks this with per-CPU ASID generations instead).
    if (!cpu.pcide && from !== to) this.setMask(this.space(from), cpu.id, false);
  }

  /**
   * Stores the CPU's CR3 (address space, PCID) in its host words (layout.ts `CR3_SPACE`), one
   * more than the index so that 0 reads as "not started".
   */
  private publishCr3(cpu: Cpu, space: number): void {
    Atomics.store(this.words, controlWord(cpu.id, CR3_PCID), cpu.cr3Pcid);
    Atomics.store(this.words, controlWord(cpu.id, CR3_SPACE), space + 1);
  }

  /**
   * Where CPU `cpu` runs, read from the control block (any thread, while the CPU runs: the
   * space and the PCID are two stores, so a read racing a CR3 write may pair the new space with
   * the old PCID).
   */
  activeSpace(cpu: number): ActiveSpace {
    const space = Atomics.load(this.words, controlWord(cpu, CR3_SPACE)) - 1;
    return {
      addressSpace: this.sharedState.spaces[space],
      pcid: Atomics.load(this.words, controlWord(cpu, CR3_PCID)),
    };
  }

  /** The index of the CPU's current address space, cached by name in its `Local`. */
  private currentSpace(cpu: Cpu, l: Local): number {
    const name = cpu.addressSpace;
    if (name !== l.spaceName) {
      l.spaceIndex = this.space(name);
      l.spaceName = name;
    }
    return l.spaceIndex;
  }

  private space(name: string): number {
    const i = this.spaceIndex.get(name);
    if (i === undefined)
      throw new Error(`shootdown: unknown address space ${JSON.stringify(name)}`);
    return i;
  }

  // ---- target side ---------------------------------------------------------------------------

  poll(cpu: Cpu, epoch: boolean, wake: number): void {
    const l = this.state(cpu);
    // A request posted since the last service changed WAKE's request count (ipi.ts: exact, at
    // most two per slot arrive between two polls); acks and barrier openings leave it alone (but
    // for a carry from the ack count now and then: a scan that finds nothing). `wake` is the
    // step's own load of WAKE (Cpu.step): a later post is found by the next poll.
    // A CPU waiting at its halt has reached that epoch boundary: it applies lazy requests as
    // they come, or two halting lazy initiators would each wait for the other's epoch forever.
    if (l.halting) epoch = true;
    if (((wake ^ l.serviced) & WAKE_POSTS) !== 0 || epoch) {
      l.serviced = wake;
      this.service(cpu, epoch);
    }
    if (this.lazy) this.progressLazy(cpu, l);
  }

  /**
   * Applies every posted request to this CPU (lazy ones only at an epoch boundary). `leaving`:
   * its last service, from `leave` (its STATUS_LEFT is set, so initiators may acknowledge for it).
   */
  private service(cpu: Cpu, epoch: boolean, leaving = false): void {
    const words = this.words;
    for (let from = 0; from < this.layout.cpus; from++) {
      if (from === cpu.id) continue;
      // SEQ and ACK are in this CPU's own IPI words, next to its WAKE: the line it just loaded.
      // Pairs with the initiator's Atomics.store of SEQ after it wrote the fields.
      const pair = from * this.layout.cpus + cpu.id;
      const seq = Atomics.load(words, this.seqAt[pair]!);
      const ack = this.ackAt[pair]!;
      // A plain read: while this CPU runs it is ACK's only writer. Once it has left, an initiator
      // may acknowledge for it (post); a stale read then costs one needless invalidation, and
      // `acknowledge`'s compare-exchange still counts the ack once.
      if (seq === words[ack]) continue;
      const base = this.slotAt[pair]!;
      const flags = words[base + SLOT_FLAGS]!;
      if ((flags & REQUEST_LAZY) !== 0 && !epoch) continue;
      const kind = words[base + SLOT_KIND]! as RequestKind;
      const pcid = words[base + SLOT_PCID]!;
      const count = kind === RequestKind.Pages ? words[base + SLOT_COUNT]! : 0;
      let pages: readonly number[] = NO_PAGES;
      if (count > 0) {
        const list = count === 1 ? this.onePage : new Array<number>(count);
        for (let i = 0; i < count; i++) {
          const lo = words[base + SLOT_PAGES + 2 * i]! >>> 0;
          const hi = words[base + SLOT_PAGES + 2 * i + 1]!;
          list[i] = hi * 4294967296 + lo;
        }
        pages = list;
      }
      const delivery =
        (flags & REQUEST_BROADCAST) !== 0
          ? 'broadcast'
          : (flags & REQUEST_LAZY) !== 0
            ? 'lazy'
            : 'ipi';
      // The ack carries the modeled time with the invalidation's cost, and goes out before the
      // evictions themselves: the request is copied (the initiator may reuse the slot once acked),
      // and nothing sees this CPU's TLB before its step ends (its own next access comes after;
      // a host inspects it only between steps), so no access, and no check, can tell. The
      // initiator's wait then does not include the TLB work.
      cpu.chargeRemoteInvalidate(kind, pages.length, delivery);
      if (leaving) this.acknowledge(from, cpu.id, ack, seq, cpu.cycles);
      else this.acknowledgeRunning(from, cpu.id, ack, seq, cpu.cycles, delivery === 'lazy');
      cpu.evictRemote(from, kind, pcid, pages, delivery);
    }
  }

  /**
   * The ack of a CPU that has not left: no initiator acknowledges for it (they do only once its
   * STATUS_LEFT is set, and its `leave` comes after its every other service), so ACK is a plain
   * store and the WAKE add alone counts the ack. The store is published by the add (lazy: the
   * initiator's `progressLazy` reads ACK once woken to see the slot free) or, for the other
   * requests, made after it: then the slot's line, which this CPU just read, is not taken back for
   * writing on the way to the initiator's wake-up (their initiators read ACK only in reports).
   * Should this CPU leave next, `leave`'s seq-cst OR of STATUS_LEFT publishes the store to an
   * initiator that sees the bit, so its compare-exchange from the old ACK fails: counted once.
   */
  private acknowledgeRunning(
    initiator: number,
    target: number,
    ack: number,
    seq: number,
    cycles: number,
    lazy: boolean,
  ): void {
    const words = this.words;
    if (lazy) words[ack] = seq;
    this.ackCycles[this.ackCyclesIndex(initiator, target)] = cycles;
    this.wakeUp(initiator, WAKE_ACK);
    if (!lazy) words[ack] = seq;
  }

  /**
   * The ack: the slot is free again, the initiator counts it and wakes. A compare-exchange from
   * the slot's previous ACK, so that of the target and an initiator acknowledging for a stopped
   * target (`post`) exactly one counts it. `cycles` is the target's modeled time, or -1 from the
   * initiator (the slot keeps its last ack time).
   */
  private acknowledge(
    initiator: number,
    target: number,
    ack: number,
    seq: number,
    cycles: number,
  ): boolean {
    const words = this.words;
    const before = (seq - 1) | 0;
    if (Atomics.compareExchange(words, ack, before, seq) !== before) return false;
    // Next to the initiator's WAKE and right before its add (ipi.ts): the initiator reads it once
    // it sees the ack (the add below publishes this plain store).
    if (cycles >= 0) this.ackCycles[this.ackCyclesIndex(initiator, target)] = cycles;
    this.wakeUp(initiator, WAKE_ACK);
    return true;
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
    const space = this.currentSpace(cpu, l);
    const request = l.request;
    request.kind = page < 0 ? RequestKind.Full : RequestKind.Pages;
    request.pcid = cpu.cr3Pcid;
    if (page >= 0) {
      l.onePage[0] = page;
      request.pages = l.onePage;
    } else request.pages = NO_PAGES;
    request.space = space;
    switch (rules.onFlush) {
      case 'ipi':
        this.targetMask(rules.targets === 'all' ? -1 : space, cpu.id);
        if (!this.sendRound(cpu, l, request, this.maskLo, this.maskHi)) return false;
        // Without acks this CPU counted itself (for stopped targets), it waits: no load of WAKE
        // needed. On worker threads a running target's ack may already be in; the wait then ends
        // at its first look, since the word it compares with was loaded before the post. In the
        // deterministic host none can be, so its traces are those of checking WAKE here.
        if (l.roundSelfAcks === 0 || this.acksMissing(l, l.expectAcks)) return true;
        this.complete(cpu);
        return false;
      case 'batch': {
        // Gather; the batch goes out at the next sync point (scenario spec, `batched`).
        const b = l.batch ?? { pages: [], full: false, space, pcid: cpu.cr3Pcid };
        if (page < 0) b.full = true;
        else b.pages.push(page);
        l.batch = b;
        return false;
      }
      case 'lazy':
        this.targetMask(space, cpu.id);
        // In ascending order, as cpusOf lists them, without its array (every lazy flush).
        for (let m = this.maskLo; m !== 0; m &= m - 1)
          this.queueLazy(l, 31 - Math.clz32(m & -m), request);
        for (let m = this.maskHi; m !== 0; m &= m - 1)
          this.queueLazy(l, 63 - Math.clz32(m & -m), request);
        this.progressLazy(cpu, l);
        return false;
    }
  }

  /**
   * Posts `request` to every target of the mask (lo: CPUs 0-31, hi: 32-63), in ascending order;
   * returns true if there are acks to wait for.
   */
  private sendRound(cpu: Cpu, l: Local, request: Request, lo: number, hi: number): boolean {
    l.roundLo = 0;
    l.roundHi = 0;
    l.roundPosts = 0;
    l.roundSelfAcks = 0;
    l.roundCovers = l.flushes;
    const flags = this.rules.broadcast ? REQUEST_BROADCAST : 0;
    for (let m = lo; m !== 0; m &= m - 1)
      this.post(cpu, l, 31 - Math.clz32(m & -m), request, flags);
    for (let m = hi; m !== 0; m &= m - 1)
      this.post(cpu, l, 63 - Math.clz32(m & -m), request, flags);
    l.expectAcks = l.posted;
    // One INVLPGB instruction reaches every CPU (AMD APM vol. 3, INVLPGB), however many there are.
    if (this.rules.broadcast && (lo !== 0 || hi !== 0)) cpu.cycles += cpu.costs.invlpgb;
    // Nobody else may cache the space: the round is complete as it starts.
    if (lo === 0 && hi === 0) this.markCoherent(cpu, l, l.roundCovers);
    return lo !== 0 || hi !== 0;
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
    const pair = cpu.id * this.layout.cpus + target;
    const base = this.slotAt[pair]!;
    const full = request.kind === RequestKind.Full || request.pages.length > MAX_REQUEST_PAGES;
    // Each field only if it changed: the target keeps the slot's line shared as long as nobody
    // writes it, so a request like the last (a page flushed again) costs it no miss. Linux skips
    // such writes to shared TLB state too (commit "x86/mm/tlb: Do not make is_lazy dirty for no
    // reason", 2021: switch_mm_irqs_off writes is_lazy only when it changes).
    setIfChanged(words, base + SLOT_KIND, full ? RequestKind.Full : RequestKind.Pages);
    setIfChanged(words, base + SLOT_PCID, request.pcid);
    setIfChanged(words, base + SLOT_FLAGS, flags);
    setIfChanged(words, base + SLOT_COUNT, full ? 0 : request.pages.length);
    if (!full) {
      const pages = request.pages;
      for (let i = 0; i < pages.length; i++) {
        const p = pages[i]!;
        setIfChanged(words, base + SLOT_PAGES + 2 * i, (p % 4294967296) | 0);
        setIfChanged(words, base + SLOT_PAGES + 2 * i + 1, Math.floor(p / 4294967296));
      }
    }
    const seqAt = this.seqAt[pair]!;
    // A plain read: only this CPU writes its requests' SEQ (about 5 ns less than an Atomics.load).
    const seq = (words[seqAt]! + 1) | 0;
    // Publishes the fields above: the target loads SEQ with Atomics before reading them. SEQ is
    // in the target's WAKE line, so this store and the WAKE add below take one line transfer.
    Atomics.store(words, seqAt, seq);
    const status = this.wakeUp(target, WAKE_POST);
    // The bookkeeping after the wake-up: the target is on its way meanwhile.
    l.posted++;
    if (target < 32) l.roundLo |= 1 << target;
    else l.roundHi |= 1 << (target - 32);
    l.roundPosts++;
    cpu.emit(
      TraceKind.IpiSend,
      target,
      full ? RequestKind.Full : RequestKind.Pages,
      full ? 0 : request.pages.length,
      flags,
    );
    // The target may have stopped after this CPU chose it (a lazy request queued earlier, or a
    // race on worker threads): it will never service the slot, so acknowledge for it. Its
    // `leave` sets STATUS_LEFT before its last service, this CPU stored SEQ before loading STATUS
    // (in wakeUp), so (all seq-cst) at least one of the two sees the other's write.
    if (
      (status & STATUS_LEFT) !== 0 &&
      this.acknowledge(cpu.id, target, this.ackAt[pair]!, seq, -1)
    )
      l.roundSelfAcks++;
    // One IPI per target; a broadcast's one INVLPGB is charged per round (sendRound).
    if (!this.rules.broadcast) cpu.cycles += cpu.costs.ipiSend;
  }

  /**
   * True while fewer than `expected` acks have arrived. WAKE's bits 0-7 count them modulo 256,
   * and `expected` and the count never differ by 128 or more (at most one ack is outstanding per
   * slot; a lazy CPU waiting at its halt may post and be acked a few more, one per target), so the
   * difference, taken as a signed 8-bit number (`<< 24` drops the other counters), is exact.
   */
  private acksMissing(l: Local, expected: number): boolean {
    return acksShort(Atomics.load(this.words, l.wakeWord), expected);
  }

  /**
   * Requests posted to `cpu` so far (every slot's SEQ summed: exact, unlike WAKE's event count),
   * lazy ones included. For checks and benchmarks, not a hot path.
   */
  requestsTo(cpu: number): number {
    let n = 0;
    for (let from = 0; from < this.layout.cpus; from++)
      if (from !== cpu) n += Atomics.load(this.words, this.seqAt[from * this.layout.cpus + cpu]!);
    return n;
  }

  /** Acks `cpu` received as an initiator so far (its slots' ACKs summed). Not a hot path. */
  acksTo(cpu: number): number {
    let n = 0;
    for (let target = 0; target < this.layout.cpus; target++)
      if (target !== cpu)
        n += Atomics.load(this.words, this.ackAt[cpu * this.layout.cpus + target]!);
    return n;
  }

  /**
   * Moves `target`'s recorded ack time of `initiator`'s last request by `delta` modeled cycles.
   * For the modeled-clock host's early-acknowledgement ablation (src/bench/modeled-clock.ts),
   * which stamps an ack before the target's invalidation; not a hot path.
   */
  shiftAckCycles(initiator: number, target: number, delta: number): void {
    this.ackCycles[this.ackCyclesIndex(initiator, target)] += delta;
  }

  /** Index into `ackCycles` of `target`'s last ack time of `initiator`'s slot. */
  private ackCyclesIndex(initiator: number, target: number): number {
    return this.ackCyclesRow[initiator]! + target;
  }

  waiting(cpu: Cpu, wake: number): boolean {
    const l = this.state(cpu);
    return acksShort(wake, l.expectAcks);
  }

  unacknowledged(cpu: Cpu): number[] {
    const out: number[] = [];
    const l = this.state(cpu);
    for (const target of Shootdown.cpusOf(l.roundLo, l.roundHi)) {
      if (this.slotBusy(cpu.id, target)) out.push(target);
    }
    return out;
  }

  complete(cpu: Cpu): void {
    // The initiator's modeled clock jumps to the latest acknowledgement of the round (it spun or
    // slept until then), plus the completion cost (TLBSYNC for broadcast).
    const l = this.state(cpu);
    let latest = cpu.cycles;
    const row = this.ackCyclesIndex(cpu.id, 0);
    for (let m = l.roundLo; m !== 0; m &= m - 1)
      latest = Math.max(latest, this.ackCycles[row + 31 - Math.clz32(m & -m)]!);
    for (let m = l.roundHi; m !== 0; m &= m - 1)
      latest = Math.max(latest, this.ackCycles[row + 63 - Math.clz32(m & -m)]!);
    cpu.cycles = latest + (this.rules.broadcast ? cpu.costs.tlbsync : cpu.costs.ipiAck);
    cpu.emit(TraceKind.ShootdownDone, l.roundPosts, cpu.cycles, 0, 0);
    l.roundLo = 0;
    l.roundHi = 0;
    l.roundPosts = 0;
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
      this.targetMask(b.space, cpu.id);
      return this.sendRound(cpu, l, request, this.maskLo, this.maskHi);
    }
    if (this.rules.onFlush === 'lazy' && point === 'halt') {
      // A halting CPU waits for its lazy flushes' coherence point so that held frees happen.
      l.halting = true;
      this.service(cpu, true);
      this.progressLazy(cpu, l);
      l.expectAcks = l.posted;
      return this.lazyOutstanding(l);
    }
    return false;
  }

  holdFree(cpu: Cpu, frame: number): boolean {
    if (this.rules.onFlush !== 'lazy') return false;
    const l = this.state(cpu);
    if (!this.lazyOutstanding(l)) return false;
    // LATR: the free waits for the coherence point of this CPU's outstanding lazy flushes.
    l.heldFrees.push(frame);
    return true;
  }

  leave(cpu: Cpu): void {
    Atomics.or(this.words, this.cpuWord(cpu.id, CPU_STATUS), STATUS_LEFT);
    for (let s = 0; s < this.layout.spaces; s++) this.setMask(s, cpu.id, false);
    // Acknowledge everything pending, lazy requests included: a stopped CPU caches nothing more.
    this.service(cpu, true, true);
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
    // Called at every instruction boundary under lazy: an empty queue allocates no iterator.
    if (l.lazyQueue.size > 0) this.postQueued(cpu, l);
    if (l.coherent < l.flushes && !this.lazyOutstanding(l)) this.markCoherent(cpu, l, l.flushes);
    if (l.heldFrees.length > 0 && !this.lazyOutstanding(l)) {
      const frames = l.heldFrees;
      l.heldFrees = [];
      for (const f of frames) cpu.freeFrameNow(f);
    }
  }

  /** Posts the queued lazy requests whose slots are free. */
  private postQueued(cpu: Cpu, l: Local): void {
    for (const [target, request] of l.lazyQueue) {
      if (this.slotBusy(cpu.id, target)) continue;
      l.lazyQueue.delete(target);
      this.post(cpu, l, target, request, REQUEST_LAZY);
    }
  }

  /** True while `initiator`'s last request to `target` is not acknowledged (its slot is in use). */
  private slotBusy(initiator: number, target: number): boolean {
    const pair = initiator * this.layout.cpus + target;
    return (
      Atomics.load(this.words, this.seqAt[pair]!) !== Atomics.load(this.words, this.ackAt[pair]!)
    );
  }

  private lazyOutstanding(l: Local): boolean {
    return l.lazyQueue.size > 0 || this.acksMissing(l, l.posted);
  }
}
