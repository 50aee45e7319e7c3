/**
 * The coherence checker: reads a finished run's trace and reports every hazard of the scenario
 * spec ("Hazard kinds"), each with the chain of events that led to it. It reads only the trace
 * (and the scenario, for the instruction behind a record), so it works the same for every host.
 *
 * The CPU's coherence probe (cpu.ts `probeHit`) writes a `Stale` record whenever a TLB hit used
 * an entry the tables no longer agree with; the shootdown protocol writes a `Coherent` record at
 * each flush's coherence point. The checker joins them: a stale use is a hazard when some change
 * that made the entry stale had passed its coherence point (or was ignored or dropped) before
 * the use; before that point it is the protocol's normal window and is not reported.
 * `use-after-free` needs no probe: a hit's entry filled before its frame was freed is enough.
 */

import { hex, VirtAddr } from '../addr.ts';
import { MAPPER_OPS } from '../cpu/cpu.ts';
import { TLB_DIRTY, TLB_GLOBAL, TLB_SIZE_CLASS_MASK, TLB_SIZE_CLASS_SHIFT } from '../cpu/tlb.ts';
import type { HostRun } from '../report/run-report.ts';
import type { Instruction, Scenario } from '../scenarios/scenario.ts';
import type { Machine } from '../smp/machine.ts';
import { decodeEvent, type TraceEvent } from '../trace/events.ts';
import { FlushOutcome, TraceKind } from '../trace/record.ts';
import type { TraceRecord } from '../trace/ring.ts';
import type { Hazard, HazardKind, StoryEvent } from './hazard.ts';

type Ev<T extends TraceEvent['type']> = Extract<TraceEvent, { type: T }>;

const SIZE_BYTES = [4096, 2 ** 21, 2 ** 30] as const;
const SIZE_NAMES = ['4KiB', '2MiB', '1GiB'] as const;

/** A TLB entry as the trace shows it: filled at `idx`, alive until evicted. */
interface Entry {
  readonly page: number;
  readonly bytes: number;
  readonly frame: number;
  readonly attr: number;
  readonly pcid: number;
  readonly idx: number;
  readonly space: string;
  readonly ev: Ev<'tlb-fill'>;
}

/** A successful Mapper call: the range of addresses whose translation it may change. */
interface Change {
  readonly idx: number;
  readonly cpu: number;
  readonly space: string;
  readonly lo: number;
  readonly hi: number;
  readonly text: string;
  readonly ev: TraceEvent;
  /** How its MapperFlush(All) ended, and when. */
  settle?: { readonly idx: number; readonly outcome: string; readonly ev: TraceEvent };
  /** Which `flush()` of its CPU settled it (1-based), to match `Coherent` records. */
  flushNo?: number;
  /** When no CPU may use the old translation any more (or, ignored/dropped, when it was given up). */
  coherentIdx?: number;
  coherentEv?: TraceEvent;
  /** IPIs / broadcast requests its CPU sent between the flush and its coherence point. */
  readonly sends: Ev<'ipi-send'>[];
}

/** Options of `checkTrace`. */
export interface CheckOptions {
  /** The protocol the run used (for the stories). */
  readonly protocol: string;
}

/** Every hazard of `run` on `machine`, in the order their offending events happened. */
export function checkRun(machine: Machine, run: HostRun): Hazard[] {
  const hazards = mayHaveHazards(run.records)
    ? checkTrace(machine.scenario, run.records.filter(isRelevant).map(decodeEvent), {
        protocol: machine.shootdown.protocol,
        p4s: new Map(
          [...machine.setup.spaces.values()].map((s) => [s.p4.startAddress as number, s.name]),
        ),
      })
    : [];
  if (run.deadlock !== undefined) {
    const d = run.deadlock;
    hazards.push({
      kind: 'deadlock',
      cpu: d.cpus[0] ?? 0,
      addr: undefined,
      frames: [],
      step: run.steps,
      why: `cpus ${d.cpus.join(', ')} are all blocked: ${d.waits.join('; ')}`,
      story: d.waits.map((w, i) => ({ step: run.steps, cpu: d.cpus[i] ?? 0, text: w, seq: -1 })),
    });
  }
  return hazards;
}

/** Record kinds the checker reads; the others (walks, A/D bits, barriers, ...) it never needs. */
const RELEVANT = new Set<number>([
  TraceKind.Instruction,
  TraceKind.Cr3Write,
  TraceKind.TlbFill,
  TraceKind.TlbEvict,
  TraceKind.TlbHit,
  TraceKind.Stale,
  TraceKind.Access,
  TraceKind.Mapper,
  TraceKind.Flush,
  TraceKind.IpiSend,
  TraceKind.Coherent,
  TraceKind.FrameFree,
  TraceKind.FrameAlloc,
]);

function isRelevant(r: TraceRecord): boolean {
  return RELEVANT.has(r.kind);
}

/**
 * Whether a trace can hold any hazard but a deadlock: every stale-* / global-leak / lost-dirty
 * needs a `Stale` record, a use-after-free a frame going back to the allocator, a dropped flush
 * its `Flush` record. Most runs have none of them, and then nothing needs decoding.
 */
function mayHaveHazards(records: readonly TraceRecord[]): boolean {
  for (const r of records) {
    if (r.kind === TraceKind.Stale) return true;
    if (r.kind === TraceKind.FrameFree && r.b !== 1) return true;
    if (r.kind === TraceKind.Flush && r.b === FlushOutcome.Dropped) return true;
  }
  return false;
}

/**
 * The hazards in a decoded trace of `scenario`. `p4s` maps each address space's level-4 table
 * address to its name (CR3 writes record the table).
 */
export function checkTrace(
  scenario: Scenario,
  events: readonly TraceEvent[],
  options: CheckOptions & { readonly p4s: ReadonlyMap<number, string> },
): Hazard[] {
  return new Checker(scenario, options).run(orderEvents(events));
}

/**
 * The global order of a trace: by step, then by CPU and its ring order. On the deterministic host
 * a step is one CPU's; on worker threads the step is a global ticket taken per instruction, so
 * records of one step still belong to one CPU.
 */
function orderEvents(events: readonly TraceEvent[]): TraceEvent[] {
  return [...events].sort((a, b) => a.step - b.step || a.cpu - b.cpu || a.seq - b.seq);
}

class Checker {
  private readonly n: number;
  private readonly space: string[];
  private readonly pcid: number[];
  private readonly pc: number[];
  private readonly live: Map<number, Entry[]>[];
  private readonly pending: (Change | undefined)[];
  private readonly flushes: number[];
  private readonly awaiting: Change[][];
  private readonly inFlight: (Change | undefined)[];
  private readonly hit: (
    | { entry: Entry | undefined; ev: Ev<'tlb-hit'>; idx: number }
    | undefined
  )[];
  private readonly lastCr3: (TraceEvent | undefined)[];
  private readonly changes: Change[] = [];
  private readonly frees = new Map<number, { idx: number; ev: TraceEvent }[]>();
  private readonly allocs = new Map<number, { idx: number; ev: TraceEvent }[]>();
  private readonly out: Hazard[] = [];
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly scenario: Scenario,
    private readonly options: CheckOptions & { readonly p4s: ReadonlyMap<number, string> },
  ) {
    const n = scenario.cpus.length;
    this.n = n;
    this.space = scenario.cpus.map((c) => c.as);
    this.pcid = scenario.cpus.map((c) => {
      const s = scenario.addressSpaces.find((a) => a.name === c.as);
      return scenario.machine.pcid && s !== undefined ? s.pcid : 0;
    });
    this.pc = new Array<number>(n).fill(-1);
    this.live = Array.from({ length: n }, () => new Map());
    this.pending = new Array(n).fill(undefined);
    this.flushes = new Array<number>(n).fill(0);
    this.awaiting = Array.from({ length: n }, () => []);
    this.inFlight = new Array(n).fill(undefined);
    this.hit = new Array(n).fill(undefined);
    this.lastCr3 = new Array(n).fill(undefined);
  }

  run(events: readonly TraceEvent[]): Hazard[] {
    for (let idx = 0; idx < events.length; idx++) this.visit(events[idx]!, idx);
    return this.out;
  }

  private visit(e: TraceEvent, idx: number): void {
    const cpu = e.cpu;
    if (cpu < 0 || cpu >= this.n) return;
    switch (e.type) {
      case 'instruction':
        this.pc[cpu] = e.pc;
        this.hit[cpu] = undefined;
        return;
      case 'cr3-write':
        this.space[cpu] = this.options.p4s.get(e.table) ?? this.space[cpu]!;
        this.pcid[cpu] = e.pcid;
        this.lastCr3[cpu] = e;
        return;
      case 'tlb-fill': {
        const bytes = SIZE_BYTES[(e.attr & TLB_SIZE_CLASS_MASK) >> TLB_SIZE_CLASS_SHIFT] ?? 4096;
        const entry: Entry = {
          page: e.page,
          bytes,
          frame: e.frame,
          attr: e.attr,
          pcid: e.pcid,
          idx,
          space: this.space[cpu]!,
          ev: e,
        };
        const map = this.live[cpu]!;
        // A fill for the same page and PCID replaces the entry in place (the DIRTY re-walk).
        const list = (map.get(e.page) ?? []).filter((x) => x.pcid !== e.pcid);
        list.push(entry);
        map.set(e.page, list);
        return;
      }
      case 'tlb-evict': {
        const map = this.live[cpu]!;
        const list = map.get(e.page);
        if (list === undefined) return;
        const at = list.findIndex((x) => x.frame === e.frame && x.attr === e.attr);
        if (at >= 0) list.splice(at, 1);
        if (list.length === 0) map.delete(e.page);
        return;
      }
      case 'tlb-hit':
        this.hit[cpu] = { entry: this.entryFor(cpu, e.addr, e.frame), ev: e, idx };
        return;
      case 'stale':
        this.onStale(e, idx);
        return;
      case 'access':
        this.onAccess(e, idx);
        this.hit[cpu] = undefined;
        return;
      case 'mapper': {
        if (e.result !== 0) return;
        const ins = this.scenario.cpus[cpu]?.program[this.pc[cpu]!];
        const range = ins === undefined ? undefined : affectedRange(ins);
        if (range === undefined) return;
        const change: Change = {
          idx,
          cpu,
          space: this.space[cpu]!,
          lo: range.lo,
          hi: range.hi,
          text: describeChange(ins!, e),
          ev: e,
          sends: [],
        };
        this.changes.push(change);
        this.pending[cpu] = change;
        return;
      }
      case 'flush': {
        const change = this.pending[cpu];
        this.pending[cpu] = undefined;
        if (e.outcome === 'dropped') this.onDropped(e, change);
        if (change === undefined) return;
        change.settle = { idx, outcome: e.outcome, ev: e };
        if (e.outcome === 'flushed') {
          this.flushes[cpu]!++;
          change.flushNo = this.flushes[cpu]!;
          this.awaiting[cpu]!.push(change);
          this.inFlight[cpu] = change;
        } else {
          // Ignored or dropped: nothing will ever invalidate the old translation elsewhere.
          change.coherentIdx = idx;
          change.coherentEv = e;
        }
        return;
      }
      case 'ipi-send': {
        const c = this.inFlight[cpu];
        if (c !== undefined && c.coherentIdx === undefined) c.sends.push(e);
        return;
      }
      case 'coherent': {
        const waiting = this.awaiting[cpu]!;
        while (waiting.length > 0 && waiting[0]!.flushNo! <= e.flushes) {
          const c = waiting.shift()!;
          c.coherentIdx = idx;
          c.coherentEv = e;
        }
        return;
      }
      case 'frame-free':
        if (e.how === 'held') return; // not back in the allocator yet (lazy, LATR)
        pushTo(this.frees, e.frame, { idx, ev: e });
        return;
      case 'frame-alloc':
        pushTo(this.allocs, e.frame, { idx, ev: e });
        return;
      default:
        return;
    }
  }

  /** The live entry a hit used: the latest fill covering `addr` with that frame and PCID. */
  private entryFor(cpu: number, addr: number, frame: number): Entry | undefined {
    let best: Entry | undefined;
    for (const bytes of SIZE_BYTES) {
      const page = addr - (addr % bytes);
      for (const x of this.live[cpu]!.get(page) ?? []) {
        if (x.bytes !== bytes || x.frame !== frame) continue;
        if (x.pcid !== this.pcid[cpu] && (x.attr & TLB_GLOBAL) === 0) continue;
        if (best === undefined || x.idx > best.idx) best = x;
      }
    }
    return best;
  }

  private onStale(e: Ev<'stale'>, idx: number): void {
    const cpu = e.cpu;
    const hit = this.hit[cpu];
    const entry = hit?.entry;
    if (hit === undefined || entry === undefined) return;
    const now = this.space[cpu]!;
    const fill = this.fillEvent(entry);
    const use = this.useEvent(e, hit.ev);
    if ((e.translation || e.permission) && entry.space !== now && (entry.attr & TLB_GLOBAL) !== 0) {
      const cr3 = this.lastCr3[cpu];
      this.report({
        kind: 'global-leak',
        cpu,
        addr: e.addr,
        frames: framesOf(hit.ev.frame, e.tablePhys),
        step: e.step,
        why: `cpu${cpu} switched to address space ${now}, but its GLOBAL entry for ${va(entry.page)} cached under ${entry.space} survived the CR3 write and translated the address as ${entry.space} does: ${tablesSay(e)}`,
        story: [
          fill,
          ...(cr3 === undefined
            ? []
            : [
                story(
                  cr3,
                  `cpu${cpu} wrote CR3 (now address space ${now}): non-global entries go, GLOBAL ones stay (SDM §4.10.4.1)`,
                ),
              ]),
          use,
        ],
        key: `global-leak|${cpu}|${entry.page}|${entry.idx}`,
      });
      return;
    }
    // The changes that may have made the entry stale: after its fill, in this address space,
    // covering the address.
    const culprits = this.changes.filter(
      (c) => c.idx > entry.idx && c.idx < idx && c.space === now && e.addr >= c.lo && e.addr < c.hi,
    );
    if (e.translation || e.permission) {
      const past = culprits.find((c) => c.coherentIdx !== undefined && c.coherentIdx < idx);
      if (past === undefined) return; // the protocol's window: an event, not a hazard
      const kind: HazardKind = e.translation ? 'stale-translation' : 'stale-permission';
      const what = e.translation
        ? `the tables of ${now} now ${tablesSay(e)}`
        : `the tables of ${now} no longer grant ${e.access === 'write' ? 'write' : e.access === 'fetch' ? 'execute' : 'user'} access`;
      this.report({
        kind,
        cpu,
        addr: e.addr,
        frames: framesOf(hit.ev.frame, e.tablePhys),
        step: e.step,
        why: `cpu${cpu}'s ${e.access} of ${va(e.addr)} used its cached entry (frame ${hex(entry.frame)}) after ${this.settleText(past)}, but ${what}`,
        story: [fill, ...this.changeStory(past, cpu), use],
        key: `${kind}|${cpu}|${entry.page}|${past.idx}`,
      });
      return;
    }
    if (e.lostDirty) {
      const culprit = culprits[culprits.length - 1];
      this.report({
        kind: 'lost-dirty',
        cpu,
        addr: e.addr,
        frames: framesOf(hit.ev.frame, e.tablePhys),
        step: e.step,
        why: `cpu${cpu} stored to ${va(e.addr)} through an entry cached DIRTY, while the page-table entry (same frame ${hex(entry.frame)}) has DIRTY clear: the write leaves no trace in the tables`,
        story: [fill, ...(culprit === undefined ? [] : this.changeStory(culprit, cpu)), use],
        key: `lost-dirty|${cpu}|${entry.page}|${culprit?.idx ?? -1}`,
      });
    }
  }

  private onAccess(e: Ev<'access'>, idx: number): void {
    const hit = this.hit[e.cpu];
    const entry = hit?.entry;
    if (hit === undefined || entry === undefined) return;
    const frame = e.phys - (e.phys % 4096);
    const freed = (this.frees.get(frame) ?? []).filter((f) => f.idx > entry.idx && f.idx < idx);
    if (freed.length === 0) return;
    const first = freed[0]!;
    const reused = (this.allocs.get(frame) ?? []).filter((a) => a.idx > first.idx && a.idx < idx);
    const verb = e.access === 'write' ? 'wrote to' : e.access === 'fetch' ? 'fetched from' : 'read';
    this.report({
      kind: 'use-after-free',
      cpu: e.cpu,
      addr: e.addr,
      frames: [frame],
      step: e.step,
      why: `cpu${e.cpu} ${verb} frame ${hex(frame)} through a TLB entry filled before the frame was freed${reused.length > 0 ? ' and handed out again' : ''}`,
      story: [
        this.fillEvent(entry),
        ...freed.map((f) =>
          story(f.ev, `cpu${f.ev.cpu} freed frame ${hex(frame)} to the allocator`),
        ),
        ...reused.map((a) =>
          story(a.ev, `cpu${a.ev.cpu} allocated frame ${hex(frame)}: it has a new owner now`),
        ),
        story(
          e,
          `cpu${e.cpu} ${e.access} of ${va(e.addr)} hit the old entry and ${verb} frame ${hex(frame)}`,
        ),
      ],
      key: `use-after-free|${e.cpu}|${entry.page}|${entry.idx}|${first.idx}`,
    });
  }

  private onDropped(e: Ev<'flush'>, change: Change | undefined): void {
    const where = e.page === undefined ? 'all pages' : va(e.page);
    this.report({
      kind: 'dropped-flush',
      cpu: e.cpu,
      addr: e.page,
      frames: [],
      step: e.step,
      why: `cpu${e.cpu}'s ${e.page === undefined ? 'MapperFlushAll' : 'MapperFlush'} for ${where} was neither flushed nor ignored before its next Mapper call or halt: no CPU was told of the change`,
      story: [
        ...(change === undefined ? [] : [story(change.ev, change.text)]),
        story(e, `cpu${e.cpu} dropped the flush obligation (#[must_use] in the crate)`),
      ],
      key: `dropped-flush|${e.cpu}|${e.seq}`,
    });
  }

  private fillEvent(entry: Entry): StoryEvent {
    const rights = [
      (entry.attr & TLB_DIRTY) !== 0 ? 'dirty' : '',
      (entry.attr & TLB_GLOBAL) !== 0 ? 'GLOBAL' : '',
    ].filter((s) => s !== '');
    const size = SIZE_NAMES[SIZE_BYTES.indexOf(entry.bytes as 4096)] ?? '4KiB';
    return story(
      entry.ev,
      `cpu${entry.ev.cpu} cached ${va(entry.page)} → frame ${hex(entry.frame)} (${size}${rights.length > 0 ? `, ${rights.join(', ')}` : ''}) in address space ${entry.space}`,
    );
  }

  private useEvent(e: Ev<'stale'>, hit: Ev<'tlb-hit'>): StoryEvent {
    return story(
      hit,
      `cpu${e.cpu} ${e.access} of ${va(e.addr)}: TLB hit on that entry → frame ${hex(hit.frame)}, while the tables ${tablesSay(e)}`,
    );
  }

  private settleText(c: Change): string {
    const s = c.settle;
    if (s === undefined) return `cpu${c.cpu}'s ${c.text.split(':')[0]}`;
    if (s.outcome === 'flushed')
      return `cpu${c.cpu}'s flush() had reached its coherence point under ${this.options.protocol}`;
    return `cpu${c.cpu} ${s.outcome} the flush of that change`;
  }

  /** The change, how its flush went, its IPIs and its coherence point, as story events. */
  private changeStory(c: Change, victim: number): StoryEvent[] {
    const out = [story(c.ev, c.text)];
    const s = c.settle;
    if (s !== undefined) {
      if (s.outcome === 'flushed') {
        out.push(
          story(
            s.ev,
            `cpu${c.cpu} called flush() (protocol ${this.options.protocol}): invlpg on its own TLB${this.options.protocol === 'none' ? ' only, no IPI to anyone' : ''}`,
          ),
        );
      } else if (s.outcome === 'ignored') {
        out.push(story(s.ev, `cpu${c.cpu} ignore()d the flush: no TLB is told of the change`));
      } else {
        out.push(story(s.ev, `cpu${c.cpu} dropped the flush: no TLB is told of the change`));
      }
    }
    for (const send of c.sends) {
      out.push(
        story(
          send,
          `cpu${c.cpu} sent ${send.broadcast ? 'an INVLPGB' : send.lazy ? 'a lazy request' : 'an IPI'} to cpu${send.target}`,
        ),
      );
    }
    if (s?.outcome === 'flushed' && this.options.protocol !== 'none') {
      const reached = c.sends.some((x) => x.target === victim) || c.sends.some((x) => x.broadcast);
      if (!reached) {
        out.push(
          story(
            s.ev,
            `no invalidation was sent to cpu${victim}: it was not in the cpumask of address space ${c.space} when cpu${c.cpu} flushed`,
          ),
        );
      }
    }
    if (c.coherentEv !== undefined && s?.outcome === 'flushed') {
      out.push(
        story(
          c.coherentEv,
          this.options.protocol === 'none'
            ? 'flush() returned: under none that is the coherence point, though no other TLB was told'
            : 'the change reached its coherence point: no CPU may use the old entry from here on',
        ),
      );
    }
    return out;
  }

  private report(h: Omit<Hazard, 'story'> & { story: StoryEvent[]; key: string }): void {
    const { key, ...hazard } = h;
    const at = this.seen.get(key);
    if (at !== undefined) return; // the same stale entry used again: reported once, at first use
    this.seen.set(key, this.out.length);
    this.out.push(hazard);
  }
}

function pushTo<T>(map: Map<number, T[]>, key: number, value: T): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}

function story(e: TraceEvent, text: string): StoryEvent {
  return { step: e.step, cpu: e.cpu, text, seq: e.seq };
}

function va(addr: number): string {
  return VirtAddr.hex(VirtAddr.newUnchecked(addr));
}

function tablesSay(e: Ev<'stale'>): string {
  if (e.tablePhys === undefined) return `do not map ${va(e.addr)}`;
  if (e.translation) return `map ${va(e.addr)} to ${hex(e.tablePhys)}`;
  return `map ${va(e.addr)} to the same frame with fewer rights`;
}

function framesOf(cached: number, now: number | undefined): number[] {
  if (now === undefined) return [cached];
  const frame = now - (now % 4096);
  return frame === cached ? [cached] : [cached, frame];
}

/** The addresses whose translation a Mapper instruction may change: its page, or the entry's span. */
function affectedRange(ins: Instruction): { lo: number; hi: number } | undefined {
  switch (ins.op) {
    case 'map_to':
    case 'unmap':
    case 'update_flags':
      return { lo: ins.page, hi: ins.page + ins.size.bytes };
    case 'set_flags_p4_entry':
      return span(ins.page, 2 ** 39);
    case 'set_flags_p3_entry':
      return span(ins.page, 2 ** 30);
    case 'set_flags_p2_entry':
      return span(ins.page, 2 ** 21);
    default:
      return undefined;
  }
}

function span(addr: number, bytes: number): { lo: number; hi: number } {
  const lo = addr - (addr % bytes);
  return { lo, hi: lo + bytes };
}

function describeChange(ins: Instruction, e: Ev<'mapper'>): string {
  const op = MAPPER_OPS[e.op] ?? ins.op;
  const page = va(e.page);
  switch (ins.op) {
    case 'unmap':
      return `cpu${e.cpu} ${op}(${page}): the tables no longer map it${e.frame === undefined ? '' : ` (frame ${hex(e.frame)})`}`;
    case 'map_to':
      return `cpu${e.cpu} ${op}(${page} → ${e.frame === undefined ? '?' : hex(e.frame)}, flags ${hex(ins.flags)})`;
    case 'update_flags':
    case 'set_flags_p4_entry':
    case 'set_flags_p3_entry':
    case 'set_flags_p2_entry':
      return `cpu${e.cpu} ${op}(${page}, flags ${hex(ins.flags)}): the tables now say so`;
    default:
      return `cpu${e.cpu} ${op}(${page})`;
  }
}
