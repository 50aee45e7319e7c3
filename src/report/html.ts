/**
 * The HTML report of a run (`smpsim run --html FILE`): one self-contained page (inline CSS and
 * script, no network) with a sequence diagram of one lane per CPU, IPI arrows and their
 * acknowledgements, every hazard and its story, a step slider showing each CPU's TLB and the
 * page-table entries at that step, and the run's counters. Built only from the scenario, the run
 * report, the trace records and the checker's hazards.
 *
 * What the page shows at a step is reconstructed from the trace, never read from the machine:
 * - TLB contents: empty at the start (every CPU boots with an empty TLB), then each `TlbFill` adds
 *   an entry (replacing one that answers the same lookups, as `Tlb.fill` does) and each
 *   `TlbEvict` removes one. An eviction record names the page, frame and attributes but not the
 *   PCID; when two cached entries differ only in PCID, the PCID is taken from what caused the
 *   eviction (the CPU's CR3, the INVPCID operand, the shootdown request), else the least recently
 *   used one goes, which is what a capacity eviction takes.
 * - Page-table entries: the scenario's initial mappings, then every successful `Mapper` record
 *   (its frame from the record, its flags from the instruction the CPU was executing), and the
 *   ACCESSED/DIRTY bits the walker set (`AdSet`, attributed to the walk that follows it). Entries
 *   above the leaf are shown only once a `set_flags_pN_entry` call wrote them: the flags `map_to`
 *   gives a new table are not in the trace.
 */

import { hex, VirtAddr } from '../addr.ts';
import type { Hazard } from '../check/hazard.ts';
import { MAPPER_ERRORS, MAPPER_OPS } from '../cpu/cpu.ts';
import { describeErrorCode } from '../cpu/fault.ts';
import {
  TLB_DIRTY,
  TLB_GLOBAL,
  TLB_NX,
  TLB_SIZE_CLASS_MASK,
  TLB_SIZE_CLASS_SHIFT,
  TLB_USER,
  TLB_WRITABLE,
} from '../cpu/tlb.ts';
import { PARENT_FLAGS_MASK, PageTableFlags } from '../paging/flags.ts';
import type { Instruction, Scenario } from '../scenarios/scenario.ts';
import { decodeEvent, type TraceEvent } from '../trace/events.ts';
import type { TraceRecord } from '../trace/ring.ts';
import { PAGE_SCRIPT } from './html/page-script.ts';
import { PAGE_STYLE } from './html/page-style.ts';
import type { RunReportJson } from './run-report.ts';
import { formatInstruction } from './timeline.ts';

/** What the HTML report is built from. */
export interface HtmlReportInput {
  readonly scenario: Scenario;
  readonly report: RunReportJson;
  /** Every trace record of the run, in step order (`HostRun.records`). */
  readonly records: readonly TraceRecord[];
  /** The checker's hazards (an empty list renders "none reported"). */
  readonly hazards: readonly Hazard[];
}

/** The style class of a diagram row: what kind of event it shows. */
export type RowClass =
  | 'instr'
  | 'hit'
  | 'miss'
  | 'walk'
  | 'fill'
  | 'evict'
  | 'fault'
  | 'pt'
  | 'pt-err'
  | 'flush'
  | 'flush-bad'
  | 'maint'
  | 'cr3'
  | 'frame'
  | 'halt'
  | 'barrier'
  | 'ipi'
  | 'ack'
  | 'other';

/** One row of the sequence diagram: `[step, cpu, class, text, seq]` (one trace record). */
export type RowModel = readonly [
  step: number,
  cpu: number,
  cls: RowClass,
  text: string,
  seq: number,
];

/** The kinds of arrow: an IPI, a lazy request, an INVLPGB broadcast, an acknowledgement. */
export const ARROW_KINDS = ['ipi', 'lazy', 'broadcast', 'ack'] as const;

/** One arrow: `[fromRow, toRow, kind index into ARROW_KINDS]`; rows give the lanes. */
export type ArrowModel = readonly [fromRow: number, toRow: number, kind: number];

/** One cached translation, from its fill to its eviction. */
export interface TlbEntryModel {
  readonly cpu: number;
  /** Page start (low 48 bits) and its printed form. */
  readonly page: number;
  readonly pageHex: string;
  /** 0 = 4 KiB, 1 = 2 MiB, 2 = 1 GiB. */
  readonly sizeClass: number;
  readonly frame: number;
  readonly frameHex: string;
  /** `Tlb` attribute bits (GLOBAL, WRITABLE, USER, NX, DIRTY, size class). */
  readonly attr: number;
  readonly attrText: string;
  readonly pcid: number;
  /** The step it was filled at. */
  readonly step: number;
}

/** A change of state at a step: `[step, id, add]` (add 1, remove 0). */
export type TlbChange = readonly [step: number, entry: number, add: 0 | 1];

/** One page-table entry the report tracks, identified by address space, level and start. */
export interface TableKeyModel {
  /** Index into `ReportModel.spaces`. */
  readonly as: number;
  /** 1 = P1 (a 4 KiB leaf) … 4 = P4. */
  readonly level: number;
  /** First address the entry covers. */
  readonly start: number;
  readonly startHex: string;
}

/** One value of a tracked entry, from the change that wrote it until the next. */
export interface TableVersionModel {
  readonly key: number;
  /** True for a leaf (a mapping); false for an upper-level entry written by `set_flags_pN_entry`. */
  readonly leaf: boolean;
  /** The frame a leaf maps, or -1 (unknown: an upper entry's table address is not traced). */
  readonly frame: number;
  readonly frameHex: string;
  /** Packed `PageTableFlags` (24 bits). */
  readonly flags: number;
  readonly flagsHex: string;
  readonly flagsText: string;
  /** The step of the change (-1: the scenario's initial mappings). */
  readonly step: number;
  /** What wrote it, e.g. `map_to by cpu0`, `A/D set by cpu1's walk`. */
  readonly cause: string;
}

/** A change of a tracked entry: `[step, key, version]`, version -1 for "entry cleared". */
export type TableChange = readonly [step: number, key: number, version: number];

/** A CR3 switch: `[step, cpu, address-space index]`. */
export type Cr3Change = readonly [step: number, cpu: number, as: number];

/** A hazard with its story events linked to diagram rows. */
export interface HazardModel {
  readonly kind: string;
  readonly cpu: number;
  readonly addrHex: string | undefined;
  readonly framesHex: readonly string[];
  readonly step: number;
  readonly why: string;
  /** The diagram row of the offending access, or -1. */
  readonly row: number;
  readonly story: readonly { step: number; cpu: number; text: string; row: number }[];
}

/** Everything the page script reads (embedded as JSON). */
export interface ReportModel {
  readonly steps: number;
  readonly cpus: readonly { id: number; as: number; label: string }[];
  readonly spaces: readonly string[];
  /** The PCID TLB entries of each address space carry (all 0 without CR4.PCIDE). */
  readonly spacePcids: readonly number[];
  readonly rows: readonly RowModel[];
  readonly arrows: readonly ArrowModel[];
  readonly arrowKinds: readonly string[];
  readonly tlb: { readonly entries: readonly TlbEntryModel[]; readonly changes: TlbChange[] };
  readonly tables: {
    readonly keys: readonly TableKeyModel[];
    readonly versions: readonly TableVersionModel[];
    readonly changes: TableChange[];
  };
  readonly cr3: Cr3Change[];
  readonly hazards: readonly HazardModel[];
  /** Eviction records no cached entry matched (0 unless records were lost). */
  readonly unmatchedEvictions: number;
  readonly lost: number;
  /** Bit values the script tests (so it hard-codes none). */
  readonly bits: {
    readonly present: number;
    readonly writable: number;
    readonly user: number;
    readonly noExecute: number;
    readonly tlbGlobal: number;
    readonly tlbWritable: number;
    readonly tlbUser: number;
    readonly tlbNx: number;
  };
}

const va = (a: number) => VirtAddr.hex(VirtAddr.newUnchecked(a));
/** Bytes an entry at each level covers (index = level): P1 4 KiB … P4 512 GiB. */
const LEVEL_BYTES = [0, 2 ** 12, 2 ** 21, 2 ** 30, 2 ** 39] as const;
const HUGE = PageTableFlags.HUGE_PAGE as number;
const PAGE_ALREADY_MAPPED = 1 + MAPPER_ERRORS.indexOf('PageAlreadyMapped');

const FLAG_SHORT: Record<string, string> = {
  PRESENT: 'P',
  WRITABLE: 'W',
  USER_ACCESSIBLE: 'U',
  WRITE_THROUGH: 'PWT',
  NO_CACHE: 'PCD',
  ACCESSED: 'A',
  DIRTY: 'D',
  HUGE_PAGE: 'PS',
  GLOBAL: 'G',
  NO_EXECUTE: 'NX',
};

/** Short flag names, `P W U A D` (crate names for the OS bits). */
export function flagsShort(flags: number): string {
  const names = PageTableFlags.names(flags as PageTableFlags);
  if (names === '(empty)') return '—';
  return names
    .split(' | ')
    .map((n) => FLAG_SHORT[n] ?? n)
    .join(' ');
}

/** TLB attribute bits as `W U D G NX` (R for read-only, S for supervisor-only). */
export function tlbAttrText(attr: number): string {
  return [
    attr & TLB_WRITABLE ? 'W' : 'R',
    attr & TLB_USER ? 'U' : 'S',
    attr & TLB_NX ? 'NX' : '',
    attr & TLB_DIRTY ? 'D' : '',
    attr & TLB_GLOBAL ? 'G' : '',
  ]
    .filter((b) => b !== '')
    .join(' ');
}

const alignDown = (a: number, bytes: number) => Math.floor(a / bytes) * bytes;
const sizeClassOf = (attr: number) => (attr & TLB_SIZE_CLASS_MASK) >> TLB_SIZE_CLASS_SHIFT;
const leafLevelOf = (sizeShift: number) => (sizeShift === 12 ? 1 : sizeShift === 21 ? 2 : 3);

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** The diagram text and class of one event (undefined: folded into a neighbouring row). */
function describeEvent(
  e: TraceEvent,
  ins: Instruction | undefined,
): [RowClass, string] | undefined {
  switch (e.type) {
    case 'instruction':
      return ['instr', `${e.pc}: ${ins === undefined ? '?' : formatInstruction(ins)}`];
    case 'tlb-hit':
      return ['hit', `TLB hit → frame ${hex(e.frame)}`];
    case 'tlb-miss':
      return ['miss', 'TLB miss'];
    case 'walk':
      return [
        'walk',
        `walk: ${plural(e.entriesRead, 'entry', 'entries')}${e.adUpdates ? `, ${e.adUpdates} A/D set` : ''} → ${e.frame === undefined ? 'fault' : hex(e.frame)}`,
      ];
    case 'tlb-fill':
      return [
        'fill',
        `fill ${va(e.page)} → ${hex(e.frame)} [${tlbAttrText(e.attr)}]${e.pcid ? ` pcid ${e.pcid}` : ''}`,
      ];
    case 'tlb-evict':
      return ['evict', `evict ${va(e.page)} → ${hex(e.frame)} (${e.reason})`];
    case 'fault':
      return [
        'fault',
        `#PF ${va(e.addr)} code ${hex(e.errorCode)} (${describeErrorCode(e.errorCode)})`,
      ];
    case 'access':
    case 'ad-set':
      return undefined;
    case 'mapper': {
      const op = MAPPER_OPS[e.op] ?? 'mapper';
      if (e.result !== 0)
        return ['pt-err', `${op} ${va(e.page)} → ${MAPPER_ERRORS[e.result - 1] ?? e.result}`];
      return [
        'pt',
        `${op} ${va(e.page)} → ok${e.frame === undefined ? '' : ` (frame ${hex(e.frame)})`}`,
      ];
    }
    case 'flush':
      return [
        e.outcome === 'dropped' ? 'flush-bad' : 'flush',
        `${e.outcome === 'dropped' ? 'DROPPED ' : ''}flush obligation ${e.page === undefined ? '(all)' : va(e.page)}: ${e.outcome}`,
      ];
    case 'maintenance':
      return [
        'maint',
        `${e.op}${e.addr === undefined ? '' : ` ${va(e.addr)}`}: ${e.evicted} evicted`,
      ];
    case 'cr3-write':
      return [
        'cr3',
        `cr3 ← ${hex(e.table)}${e.pcid ? ` pcid ${e.pcid}` : ''}${e.noflush ? ' (noflush)' : ''}`,
      ];
    case 'frame-alloc':
      return ['frame', `frame ${hex(e.frame)} allocated`];
    case 'frame-free':
      return [
        'frame',
        `frame ${hex(e.frame)} ${e.how === 'held' ? 'free held back (lazy)' : e.how === 'released' ? 'freed (held free released)' : 'freed'}`,
      ];
    case 'halt':
      return ['halt', e.how === 'halted' ? 'halted' : e.how.toUpperCase()];
    case 'barrier-wait':
      return ['barrier', 'barrier: waits for the other CPUs'];
    case 'barrier-pass':
      return ['barrier', e.waited ? 'barrier open: resumes' : 'barrier open: passes'];
    case 'ipi-send': {
      const what = e.full ? 'full flush' : plural(e.pages, 'page');
      const how = e.broadcast ? 'INVLPGB' : e.lazy ? 'lazy request' : 'IPI';
      return ['ipi', `${how} → cpu${e.target}: ${what}`];
    }
    case 'ipi-receive': {
      const what = e.full ? 'full flush' : plural(e.pages, 'page');
      const how = e.broadcast ? 'INVLPGB' : e.lazy ? 'lazy request' : 'IPI';
      return ['ipi', `${how} from cpu${e.initiator}: ${what}, acked`];
    }
    case 'shootdown-done':
      return ['ack', `shootdown done: ${plural(e.acks, 'ack')}`];
    case 'stale': {
      const what = e.translation
        ? e.tablePhys === undefined
          ? 'tables: not mapped'
          : `tables: ${hex(e.tablePhys)}`
        : e.permission
          ? 'tables: fewer rights'
          : 'tables: DIRTY clear';
      return ['flush-bad', `STALE entry used (${what})`];
    }
    case 'coherent':
      return ['flush', `coherence point: flush #${e.flushes} done`];
    case 'unknown':
      return ['other', `record kind ${e.kind}`];
  }
}

interface LiveTlbEntry {
  readonly id: number;
  readonly pcid: number;
  readonly global: boolean;
  readonly frame: number;
  readonly attr: number;
  lastUse: number;
}

/** One CPU's reconstructed TLB: entries by tag (`page:sizeClass`). */
class TlbReplay {
  private readonly byTag = new Map<string, LiveTlbEntry[]>();
  private clock = 0;

  constructor(
    private readonly cpu: number,
    private readonly entries: TlbEntryModel[],
    private readonly changes: TlbChange[],
  ) {}

  /** `Tlb.lookup` hit under `pcid`: refreshes the use clock of the entry that answered. */
  hit(addr: number, pcid: number): void {
    for (let sc = 0; sc < 3; sc++) {
      const list = this.byTag.get(`${alignDown(addr, 2 ** [12, 21, 30][sc]!)}:${sc}`);
      const e = list?.find((x) => x.global || x.pcid === pcid);
      if (e !== undefined) {
        e.lastUse = ++this.clock;
        return;
      }
    }
  }

  /** Removes the entry an eviction record names; `pcid` narrows the choice when known. */
  evict(
    step: number,
    page: number,
    frame: number,
    attr: number,
    pcid: number | undefined,
  ): boolean {
    const tag = `${page}:${sizeClassOf(attr)}`;
    const list = this.byTag.get(tag);
    const candidates = (list ?? []).filter((x) => x.frame === frame && x.attr === attr);
    if (candidates.length === 0) return false;
    const narrowed =
      pcid === undefined ? [] : candidates.filter((x) => x.global || x.pcid === pcid);
    const pool = narrowed.length > 0 ? narrowed : candidates;
    let victim = pool[0]!;
    for (const x of pool) if (x.lastUse < victim.lastUse) victim = x;
    this.remove(tag, victim, step);
    return true;
  }

  /** `Tlb.fill`: replaces every entry answering the same lookups, then caches the new one. */
  fill(step: number, page: number, frame: number, attr: number, pcid: number): void {
    const sc = sizeClassOf(attr);
    const tag = `${page}:${sc}`;
    const global = (attr & TLB_GLOBAL) !== 0;
    for (const x of [...(this.byTag.get(tag) ?? [])]) {
      if (global || x.global || x.pcid === pcid) this.remove(tag, x, step);
    }
    const id = this.entries.length;
    this.entries.push({
      cpu: this.cpu,
      page,
      pageHex: va(page),
      sizeClass: sc,
      frame,
      frameHex: hex(frame),
      attr,
      attrText: tlbAttrText(attr),
      pcid,
      step,
    });
    const live: LiveTlbEntry = { id, pcid, global, frame, attr, lastUse: ++this.clock };
    const list = this.byTag.get(tag);
    if (list === undefined) this.byTag.set(tag, [live]);
    else list.push(live);
    this.changes.push([step, id, 1]);
  }

  private remove(tag: string, x: LiveTlbEntry, step: number): void {
    const list = this.byTag.get(tag)!;
    list.splice(list.indexOf(x), 1);
    if (list.length === 0) this.byTag.delete(tag);
    this.changes.push([step, x.id, 0]);
  }
}

/** The page-table view: tracked entries per address space, with their versions. */
class TablesReplay {
  readonly keys: TableKeyModel[] = [];
  readonly versions: TableVersionModel[] = [];
  readonly changes: TableChange[] = [];
  private readonly keyIndex = new Map<string, number>();
  /** Current version per key (-1 cleared). */
  private readonly current: number[] = [];

  key(as: number, level: number, start: number): number {
    const k = `${as}:${level}:${start}`;
    let i = this.keyIndex.get(k);
    if (i === undefined) {
      i = this.keys.length;
      this.keys.push({ as, level, start, startHex: va(start) });
      this.keyIndex.set(k, i);
      this.current.push(-1);
    }
    return i;
  }

  /** The current version of the entry at `level` covering `addr`, if tracked. */
  at(as: number, level: number, addr: number): TableVersionModel | undefined {
    const i = this.keyIndex.get(`${as}:${level}:${alignDown(addr, LEVEL_BYTES[level]!)}`);
    if (i === undefined) return undefined;
    const v = this.current[i]!;
    return v < 0 ? undefined : this.versions[v];
  }

  set(
    step: number,
    as: number,
    level: number,
    start: number,
    value: { leaf: boolean; frame: number; flags: number; cause: string },
  ): void {
    const key = this.key(as, level, start);
    const v = this.versions.length;
    this.versions.push({
      key,
      leaf: value.leaf,
      frame: value.frame,
      frameHex: value.frame < 0 ? '?' : hex(value.frame),
      flags: value.flags,
      flagsHex: PageTableFlags.hex(value.flags as PageTableFlags),
      flagsText: flagsShort(value.flags),
      step,
      cause: value.cause,
    });
    this.current[key] = v;
    this.changes.push([step, key, v]);
  }

  clear(step: number, as: number, level: number, start: number): void {
    const key = this.key(as, level, start);
    if (this.current[key] === -1) return;
    this.current[key] = -1;
    this.changes.push([step, key, -1]);
  }
}

/** Builds the data the page shows: rows, arrows, TLB and page-table histories, hazards. */
export function buildReportModel(input: HtmlReportInput): ReportModel {
  const { scenario, report, records, hazards } = input;
  const spaces = scenario.addressSpaces.map((s) => s.name);
  const spaceIndex = (name: string) => spaces.indexOf(name);
  const n = scenario.cpus.length;
  const pcids = scenario.addressSpaces.map((s) => (scenario.machine.pcid ? s.pcid : 0));

  const rows: RowModel[] = [];
  const arrows: ArrowModel[] = [];
  const tlbEntries: TlbEntryModel[] = [];
  const tlbChanges: TlbChange[] = [];
  const tlbs = scenario.cpus.map((_, cpu) => new TlbReplay(cpu, tlbEntries, tlbChanges));
  const tables = new TablesReplay();
  const cr3: Cr3Change[] = [];
  let unmatchedEvictions = 0;

  for (const [as, space] of scenario.addressSpaces.entries()) {
    for (const m of space.map) {
      const level = leafLevelOf(m.size.shift);
      tables.set(-1, as, level, m.page, {
        leaf: true,
        frame: m.frame,
        flags: level === 1 ? m.flags : m.flags | HUGE,
        cause: 'initial mapping',
      });
    }
  }

  const cpuAs = scenario.cpus.map((c) => spaceIndex(c.as));
  const cpuPcid = cpuAs.map((as) => pcids[as] ?? 0);
  const lastIns: (Instruction | undefined)[] = new Array(n).fill(undefined);
  const adPending: { bits: number; level: number }[][] = scenario.cpus.map(() => []);
  // Shootdown evictions wait for the IpiReceive that says which request (and so which PCID).
  const shootdownEvicts: { step: number; page: number; frame: number; attr: number }[][] =
    scenario.cpus.map(() => []);
  // IPI matching: one mailbox slot per (initiator, target) pair, so requests arrive in order.
  const sent = new Map<number, { row: number; pcid: number; kind: number }[]>();
  const unmatchedReceives = new Map<number, number[]>();
  const acksDue: number[][] = scenario.cpus.map(() => []);
  const rowBySeq = new Map<string, number>();
  const firstRowOf = new Map<string, number>();

  const addRow = (e: TraceEvent, cls: RowClass, text: string): number => {
    const row = rows.length;
    rows.push([e.step, e.cpu, cls, text, e.seq]);
    rowBySeq.set(`${e.cpu}:${e.seq}`, row);
    const k = `${e.cpu}@${e.step}`;
    if (!firstRowOf.has(k)) firstRowOf.set(k, row);
    return row;
  };

  // The row showing each record (a folded record: its neighbour's; none: -1), by record index.
  const rowOfRecord = new Array<number>(records.length).fill(-1);
  for (const [index, record] of records.entries()) {
    const e = decodeEvent(record);
    const cpu = e.cpu;
    if (cpu < 0 || cpu >= n) continue;
    if (e.type === 'instruction') lastIns[cpu] = scenario.cpus[cpu]!.program[e.pc];
    const described = describeEvent(e, lastIns[cpu]);
    const row = described === undefined ? -1 : addRow(e, described[0], described[1]);
    if (row < 0) {
      // A folded record (an access, an A/D update) belongs to the row before it on its CPU.
      const prev = rows[rows.length - 1];
      if (prev !== undefined && prev[1] === cpu && prev[0] === e.step) {
        rowBySeq.set(`${cpu}:${e.seq}`, rows.length - 1);
        rowOfRecord[index] = rows.length - 1;
      }
    } else rowOfRecord[index] = row;
    const tlb = tlbs[cpu]!;
    const as = cpuAs[cpu]!;
    switch (e.type) {
      case 'tlb-hit':
        tlb.hit(e.addr, cpuPcid[cpu]!);
        break;
      case 'tlb-fill':
        tlb.fill(e.step, e.page, e.frame, e.attr, e.pcid);
        break;
      case 'tlb-evict': {
        if (e.reason === 'shootdown') {
          shootdownEvicts[cpu]!.push({ step: e.step, page: e.page, frame: e.frame, attr: e.attr });
          break;
        }
        const ins = lastIns[cpu];
        const pcid =
          e.reason === 'invpcid'
            ? ins?.op === 'invpcid' && (ins.type === 0 || ins.type === 1)
              ? ins.pcid
              : undefined
            : e.reason === 'capacity' || e.reason === 'pge-toggle'
              ? undefined
              : cpuPcid[cpu];
        if (!tlb.evict(e.step, e.page, e.frame, e.attr, pcid)) unmatchedEvictions++;
        break;
      }
      case 'cr3-write': {
        const ins = lastIns[cpu];
        cpuPcid[cpu] = e.pcid;
        if (ins?.op === 'mov_cr3') {
          cpuAs[cpu] = spaceIndex(ins.as);
          cr3.push([e.step, cpu, cpuAs[cpu]!]);
        }
        break;
      }
      case 'ad-set':
        adPending[cpu]!.push({ bits: e.bits, level: e.level });
        break;
      case 'walk': {
        for (const ad of adPending[cpu]!) {
          const v = tables.at(as, ad.level, e.addr);
          if (v === undefined) continue;
          const start = tables.keys[v.key]!.start;
          if ((v.flags | ad.bits) === v.flags) continue;
          tables.set(e.step, as, ad.level, start, {
            leaf: v.leaf,
            frame: v.frame,
            flags: v.flags | ad.bits,
            cause: `${PageTableFlags.names(ad.bits as PageTableFlags)} set by cpu${cpu}'s walk`,
          });
        }
        adPending[cpu] = [];
        break;
      }
      case 'mapper':
        applyMapper(tables, e, lastIns[cpu], as, cpu);
        break;
      case 'ipi-send': {
        const k = cpu * n + e.target;
        const waiting = unmatchedReceives.get(k);
        if (waiting !== undefined && waiting.length > 0) {
          arrows.push([row, waiting.shift()!, arrowKind(e)]);
        } else {
          const q = sent.get(k) ?? [];
          q.push({ row, pcid: cpuPcid[cpu]!, kind: arrowKind(e) });
          sent.set(k, q);
        }
        break;
      }
      case 'ipi-receive': {
        const k = e.initiator * n + cpu;
        const send = sent.get(k)?.shift();
        for (const ev of shootdownEvicts[cpu]!) {
          if (!tlb.evict(ev.step, ev.page, ev.frame, ev.attr, send?.pcid)) unmatchedEvictions++;
        }
        shootdownEvicts[cpu] = [];
        if (send !== undefined) {
          arrows.push([send.row, row, send.kind]);
        } else {
          const q = unmatchedReceives.get(k) ?? [];
          q.push(row);
          unmatchedReceives.set(k, q);
        }
        if (e.initiator >= 0 && e.initiator < n) acksDue[e.initiator]!.push(row);
        break;
      }
      case 'shootdown-done':
        for (const from of acksDue[cpu]!) arrows.push([from, row, 3]);
        acksDue[cpu] = [];
        break;
      default:
        break;
    }
  }
  // Shootdown evictions whose request never showed up (lost records): resolve them anyway.
  for (const [cpu, list] of shootdownEvicts.entries()) {
    for (const ev of list) {
      if (!tlbs[cpu]!.evict(ev.step, ev.page, ev.frame, ev.attr, undefined)) unmatchedEvictions++;
    }
  }

  // A story event's `seq` is read as the record's sequence number in its CPU's ring (what records
  // carry), else as its index in the run's records; either must agree with the event's CPU and
  // step. Otherwise the event points at its CPU's first row of that step.
  const rowOf = (cpu: number, step: number, seq?: number): number => {
    if (seq !== undefined) {
      const bySeq = rowBySeq.get(`${cpu}:${seq}`);
      if (bySeq !== undefined && rows[bySeq]![0] === step) return bySeq;
      const r = records[seq];
      const byIndex = rowOfRecord[seq];
      if (
        r !== undefined &&
        r.cpu === cpu &&
        r.step === step &&
        byIndex !== undefined &&
        byIndex >= 0
      )
        return byIndex;
    }
    return firstRowOf.get(`${cpu}@${step}`) ?? -1;
  };

  return {
    steps: Math.max(report.stats.steps, rows.length === 0 ? 0 : rows[rows.length - 1]![0] + 1),
    cpus: scenario.cpus.map((c, id) => ({ id, as: spaceIndex(c.as), label: `cpu${id}` })),
    spaces,
    spacePcids: pcids,
    rows,
    arrows,
    arrowKinds: ARROW_KINDS,
    tlb: { entries: tlbEntries, changes: tlbChanges },
    tables: { keys: tables.keys, versions: tables.versions, changes: tables.changes },
    cr3,
    hazards: hazards.map((h) => {
      const story = h.story.map((s) => ({
        step: s.step,
        cpu: s.cpu,
        text: s.text,
        row: rowOf(s.cpu, s.step, s.seq),
      }));
      const last = story[story.length - 1];
      const at = rowOf(h.cpu, h.step);
      return {
        kind: h.kind,
        cpu: h.cpu,
        addrHex: h.addr === undefined ? undefined : va(h.addr),
        framesHex: h.frames.map((f) => hex(f)),
        step: h.step,
        why: h.why,
        row: last !== undefined && last.row >= 0 && last.step === h.step ? last.row : at,
        story,
      };
    }),
    unmatchedEvictions,
    lost: report.stats.trace_lost,
    bits: {
      present: PageTableFlags.PRESENT,
      writable: PageTableFlags.WRITABLE,
      user: PageTableFlags.USER_ACCESSIBLE,
      noExecute: PageTableFlags.NO_EXECUTE,
      tlbGlobal: TLB_GLOBAL,
      tlbWritable: TLB_WRITABLE,
      tlbUser: TLB_USER,
      tlbNx: TLB_NX,
    },
  };
}

function arrowKind(e: Extract<TraceEvent, { type: 'ipi-send' }>): number {
  return e.broadcast ? 2 : e.lazy ? 1 : 0;
}

/** What a `Mapper` record changes in the page-table view (nothing when the call failed). */
function applyMapper(
  tables: TablesReplay,
  e: Extract<TraceEvent, { type: 'mapper' }>,
  ins: Instruction | undefined,
  as: number,
  cpu: number,
): void {
  const op = MAPPER_OPS[e.op];
  if (ins === undefined || !('page' in ins) || ins.op !== op) return;
  const level = leafLevelOf(ins.size.shift);
  const by = `${op} by cpu${cpu}`;
  if (op === 'map_to' && ins.op === 'map_to') {
    if (e.result !== 0 && e.result !== PAGE_ALREADY_MAPPED) return;
    // map_to ORs flags ∩ {PRESENT, WRITABLE, USER} into every existing parent (the crate's
    // create_next_table); only tracked upper entries can show it.
    const insert = ins.flags & PARENT_FLAGS_MASK;
    for (let l = 4; l > level; l--) {
      const v = tables.at(as, l, e.page);
      if (v !== undefined && (v.flags | insert) !== v.flags) {
        tables.set(e.step, as, l, tables.keys[v.key]!.start, {
          ...v,
          flags: v.flags | insert,
          cause: `parent flags OR-ed by cpu${cpu}'s map_to`,
        });
      }
    }
    if (e.result !== 0 || e.frame === undefined) return;
    tables.set(e.step, as, level, e.page, {
      leaf: true,
      frame: e.frame,
      flags: level === 1 ? ins.flags : ins.flags | HUGE,
      cause: by,
    });
    return;
  }
  if (e.result !== 0) return;
  switch (ins.op) {
    case 'unmap':
      tables.clear(e.step, as, level, e.page);
      return;
    case 'update_flags': {
      const v = tables.at(as, level, e.page);
      tables.set(e.step, as, level, e.page, {
        leaf: true,
        frame: v?.frame ?? -1,
        flags: level === 1 ? ins.flags : ins.flags | HUGE,
        cause: by,
      });
      return;
    }
    case 'set_flags_p4_entry':
    case 'set_flags_p3_entry':
    case 'set_flags_p2_entry': {
      const l = ins.op === 'set_flags_p4_entry' ? 4 : ins.op === 'set_flags_p3_entry' ? 3 : 2;
      const start = alignDown(e.page, LEVEL_BYTES[l]!);
      const v = tables.at(as, l, start);
      tables.set(e.step, as, l, start, {
        leaf: v?.leaf ?? false,
        frame: v?.frame ?? -1,
        flags: ins.flags,
        cause: by,
      });
      return;
    }
    default:
      return;
  }
}

// ---- replaying the histories (what the page script does, for tests and tools) ------------------

/** Every CPU's TLB after step `step`: entry ids per CPU, in fill order. */
export function tlbAt(model: ReportModel, step: number): number[][] {
  const live = model.cpus.map(() => new Set<number>());
  for (const [s, id, add] of model.tlb.changes) {
    if (s > step) break;
    const set = live[model.tlb.entries[id]!.cpu]!;
    if (add) set.add(id);
    else set.delete(id);
  }
  return live.map((s) => [...s].sort((a, b) => a - b));
}

/** The tracked page-table entries after step `step`: the current version per key. */
export function tablesAt(model: ReportModel, step: number): Map<number, TableVersionModel> {
  const current = new Map<number, TableVersionModel>();
  for (const [s, key, v] of model.tables.changes) {
    if (s > step) break;
    if (v < 0) current.delete(key);
    else current.set(key, model.tables.versions[v]!);
  }
  return current;
}

// ---- the page -----------------------------------------------------------------------------------

/**
 * The start of every smpsim page, up to its header's subtitle (the header stays open for the
 * caller): the document head with the shared style sheet and `extraStyle`, then title and subtitle.
 */
export function pageOpening(title: string, subtitle: string, extraStyle = ''): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="smpsim">
<title>${escapeHtml(title)}</title>
<style>${PAGE_STYLE}${extraStyle}</style>
</head>
<body>
<header>
<h1>${escapeHtml(title)}</h1>
<p class="subtitle">${escapeHtml(subtitle)}</p>`;
}

/** Text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

/** JSON that is safe inside a `<script>` element (no `</script>`, no `<!--`). */
function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replaceAll('<', '\\u003c')
    .replaceAll('\u2028', '\\u2028')
    .replaceAll('\u2029', '\\u2029');
}

function renderHazards(model: ReportModel): string {
  if (model.hazards.length === 0) {
    return '<p class="none">No hazards reported for this run.</p>';
  }
  return model.hazards
    .map((h, i) => {
      const where = [
        `cpu${h.cpu}`,
        h.addrHex ?? '',
        h.framesHex.length > 0
          ? `frame${h.framesHex.length === 1 ? '' : 's'} ${h.framesHex.join(', ')}`
          : '',
        `step ${h.step}`,
      ]
        .filter((x) => x !== '')
        .join(' · ');
      const story = h.story
        .map(
          (s, k) =>
            `<li><button type="button" class="story-link" data-hazard="${i}" data-row="${s.row}" data-step="${s.step}"><span class="num">${k + 1}</span> step ${s.step} · cpu${s.cpu}</button> ${escapeHtml(s.text)}</li>`,
        )
        .join('');
      return `<article class="hazard" id="hazard-${i}" data-hazard="${i}" data-row="${h.row}" data-step="${h.step}"><h3><span class="kind">${escapeHtml(h.kind)}</span> <span class="where">${escapeHtml(where)}</span> <button type="button" class="show-hazard" data-hazard="${i}">show in diagram</button></h3><p class="why">${escapeHtml(h.why)}</p><ol class="story">${story}</ol></article>`;
    })
    .join('');
}

function renderCounters(report: RunReportJson): string {
  const head =
    '<tr><th>cpu</th><th>status</th><th>instructions</th><th>TLB hits</th><th>TLB misses</th><th>dirty re-walks</th><th>walks</th><th>faults</th><th>evictions</th><th>modeled cycles</th></tr>';
  const body = report.stats.cpus
    .map(
      (c) =>
        `<tr><td>cpu${c.cpu}</td><td class="status-${escapeHtml(c.status)}">${escapeHtml(c.status)}</td><td>${c.instructions}</td><td>${c.tlb_hits}</td><td>${c.tlb_misses}</td><td>${c.dirty_rewalks}</td><td>${c.walks}</td><td>${c.faults}</td><td>${c.evictions}</td><td>${c.modeled_cycles}</td></tr>`,
    )
    .join('');
  const lists: string[] = [];
  const list = (title: string, items: string[]) => {
    if (items.length > 0)
      lists.push(
        `<h3>${title}</h3><ul>${items.map((i) => `<li>${escapeHtml(i)}</li>`).join('')}</ul>`,
      );
  };
  list(
    'Faults',
    report.faults.map(
      (f) =>
        `cpu${f.cpu} at step ${f.step}: #PF ${f.addr}, error code ${f.error_code} (${describeErrorCode(Number(f.error_code))})`,
    ),
  );
  list(
    'Mapper errors',
    report.mapper_errors.map((e) => `cpu${e.cpu} at step ${e.step}: ${e.op} → ${e.err}`),
  );
  list(
    'Failures',
    report.failures.map((f) => `cpu${f.cpu}: ${f.message}`),
  );
  if (report.deadlock !== undefined) {
    list(`Deadlock: cpus ${report.deadlock.cpus.join(', ')} all blocked`, [
      ...report.deadlock.waits,
    ]);
  }
  const regs = report.registers.map((r) => {
    const set = Object.entries(r).filter(([k, v]) => k !== 'cpu' && v !== '0x0');
    return `cpu${r.cpu}: ${set.length === 0 ? '(all zero)' : set.map(([k, v]) => `${k}=${v}`).join(' ')}`;
  });
  list('Registers (non-zero)', regs);
  return `<table class="counters"><thead>${head}</thead><tbody>${body}</tbody></table>${lists.join('')}<p class="clock">Cycles are modeled (src/cpu/cost-model.ts), not wall-clock time. ${report.stats.steps} steps, ${report.stats.trace_records} trace records.</p><details><summary>schedule (${report.host === 'deterministic' ? 'replay with --schedule' : 'as observed on worker threads'})</summary><pre class="schedule">${escapeHtml(report.schedule)}</pre></details>`;
}

/** The whole page: one HTML document with everything inline. Same input ⇒ same bytes. */
export function renderHtmlReport(input: HtmlReportInput): string {
  const { scenario, report } = input;
  const model = buildReportModel(input);
  const title = `smpsim run ${scenario.name}`;
  const warnings: string[] = [];
  if (model.lost > 0) {
    warnings.push(
      `${model.lost} trace records were lost (ring overflow): the diagram and the reconstructed TLB and page-table views are incomplete.`,
    );
  }
  if (model.unmatchedEvictions > 0) {
    warnings.push(
      `${model.unmatchedEvictions} eviction records matched no reconstructed TLB entry; the TLB view may be off.`,
    );
  }
  const subtitle = `${scenario.cpus.length} CPUs · protocol ${report.protocol} · host ${report.host}${report.host === 'deterministic' ? ` · seed ${report.seed}` : ''} · ${report.stats.steps} steps · ${report.stats.trace_records} trace records · ${model.hazards.length === 0 ? 'no hazards' : plural(model.hazards.length, 'hazard')}`;
  return `${pageOpening(title, subtitle)}
${warnings.map((w) => `<p class="warning">${escapeHtml(w)}</p>`).join('\n')}
${scenario.description === '' ? '' : `<details class="description"><summary>What this scenario does</summary><p>${escapeHtml(scenario.description)}</p></details>`}
</header>
<section id="hazards" aria-label="hazards"><h2>Hazards</h2>${renderHazards(model)}</section>
<nav id="controls" aria-label="step controls">
<button type="button" id="prev" title="previous step (←)">◀ prev</button>
<input type="range" id="slider" min="0" max="${Math.max(0, model.steps - 1)}" value="0" step="1" aria-label="step">
<button type="button" id="next" title="next step (→)">next ▶</button>
<label>step <input type="number" id="step-input" min="0" max="${Math.max(0, model.steps - 1)}" value="0"></label>
<span id="step-label"></span>
</nav>
<main>
<section id="diagram" aria-label="sequence diagram">
<div id="overview" title="the whole run: IPIs (teal), hazards (red), the selected step (blue); click to jump"></div>
<div id="scroller"><div id="lane-heads"></div><div id="canvas"><div id="lifelines"></div><div id="rows"></div><svg id="arrows"></svg></div></div>
<p class="legend"><span class="lg ipi">IPI / request</span> <span class="lg ack">acknowledged (shootdown done)</span> <span class="lg broadcast">INVLPGB</span> <span class="lg lazy">lazy request</span> <span class="lg hz">hazard</span></p>
</section>
<aside id="state" aria-label="state at the selected step"></aside>
</main>
<section id="counters" aria-label="counters"><h2>Counters</h2>${renderCounters(report)}</section>
<footer><p>TLB contents are reconstructed from the trace's fill and eviction records; page-table entries from the scenario's initial mappings, the Mapper records and the walker's A/D records (upper-level entries only once a set_flags_pN_entry call wrote them). “≠” in “vs tables” marks a cached entry that the page-table view no longer gives: the view of its CPU's current address space, or of the space whose PCID a non-global entry carries.</p></footer>
<script type="application/json" id="smpsim-data">${scriptJson(model)}</script>
<script>${PAGE_SCRIPT}</script>
</body>
</html>
`;
}
