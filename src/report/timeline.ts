/**
 * The readable output of `smpsim run`: one column per CPU, one row per step, showing what each
 * CPU did (instruction, TLB hit or miss, walk, fill, eviction, fault, flush), then a summary of
 * counters, faults, Mapper errors and final registers. Built only from the trace and the report.
 */

import { hex, VirtAddr } from '../addr.ts';
import { MAPPER_ERRORS, MAPPER_OPS } from '../cpu/cpu.ts';
import { describeErrorCode } from '../cpu/fault.ts';
import { TLB_DIRTY, TLB_GLOBAL, TLB_NX, TLB_USER, TLB_WRITABLE } from '../cpu/tlb.ts';
import { PageTableFlags } from '../paging/flags.ts';
import type { Instruction, Scenario } from '../scenarios/scenario.ts';
import {
  EVICT_REASON_NAMES,
  FLUSH_OUTCOME_NAMES,
  MAINTENANCE_NAMES,
  StaleBits,
  TraceKind,
} from '../trace/record.ts';
import type { TraceRecord } from '../trace/ring.ts';
import type { RunReportJson } from './run-report.ts';

const COLUMN = 46;
const va = (a: number) => VirtAddr.hex(VirtAddr.newUnchecked(a));

/** One instruction as assembly-like text: `load r0 ← [0x400000] (8 B)`. */
export function formatInstruction(ins: Instruction): string {
  const u = (user: boolean) => (user ? ' user' : '');
  const frame = (f: number | { reg: string }) => (typeof f === 'number' ? hex(f) : f.reg);
  switch (ins.op) {
    case 'load':
      return `load ${ins.reg} ← [${va(ins.addr)}]/${ins.width}${u(ins.user)}`;
    case 'store':
      return `store [${va(ins.addr)}]/${ins.width} ← ${hex(BigInt.asUintN(64, ins.value))}${u(ins.user)}`;
    case 'fetch':
      return `fetch ${va(ins.addr)}${u(ins.user)}`;
    case 'map_to':
      return `map_to ${ins.size.name} ${va(ins.page)} → ${frame(ins.frame)} ${PageTableFlags.hex(ins.flags)}`;
    case 'unmap':
      return `unmap ${ins.size.name} ${va(ins.page)}${ins.reg ? ` → ${ins.reg}` : ''}`;
    case 'update_flags':
    case 'set_flags_p4_entry':
    case 'set_flags_p3_entry':
    case 'set_flags_p2_entry':
      return `${ins.op} ${ins.size.name} ${va(ins.page)} ${PageTableFlags.hex(ins.flags)}`;
    case 'invlpg':
      return `invlpg ${va(ins.addr)}`;
    case 'mov_cr3':
      return `mov cr3 ← ${ins.as}${ins.noflush ? ' (noflush)' : ''}`;
    case 'invpcid':
      return ins.type === 0
        ? `invpcid 0 pcid ${ins.pcid} ${va(ins.addr)}`
        : ins.type === 1
          ? `invpcid 1 pcid ${ins.pcid}`
          : `invpcid ${ins.type}`;
    case 'alloc_frame':
      return `alloc_frame → ${ins.reg}`;
    case 'free_frame':
      return `free_frame ${frame(ins.frame)}`;
    case 'barrier':
      return `barrier ${ins.name}`;
    case 'assert':
      return `assert ${ins.reg} == ${hex(BigInt.asUintN(64, ins.value))}`;
    default:
      return ins.op;
  }
}

function attrText(attr: number): string {
  const bits = [
    attr & TLB_WRITABLE ? 'W' : 'R',
    attr & TLB_USER ? 'U' : 'S',
    attr & TLB_NX ? 'NX' : '',
    attr & TLB_DIRTY ? 'D' : '',
    attr & TLB_GLOBAL ? 'G' : '',
  ];
  return bits.filter((b) => b !== '').join(' ');
}

/** The lines one record contributes to its CPU's column (none for records folded elsewhere). */
function describe(r: TraceRecord, scenario: Scenario): string[] {
  switch (r.kind) {
    case TraceKind.Instruction: {
      const ins = scenario.cpus[r.cpu]?.program[r.a];
      return [ins === undefined ? `#${r.a}` : `${r.a}: ${formatInstruction(ins)}`];
    }
    case TraceKind.TlbHit:
      return [`  TLB hit → frame ${hex(r.c)}`];
    case TraceKind.TlbMiss:
      return ['  TLB miss'];
    case TraceKind.Walk:
      return [
        r.d < 0
          ? `  walk: ${r.b} entries → fault`
          : `  walk: ${r.b} entries, ${r.c} A/D set → ${hex(r.d)}`,
      ];
    case TraceKind.TlbFill:
      return [`  fill ${va(r.a)} → ${hex(r.b)} [${attrText(r.c)}]${r.d ? ` pcid ${r.d}` : ''}`];
    case TraceKind.TlbEvict:
      return [`  evict ${va(r.a)} → ${hex(r.b)} (${EVICT_REASON_NAMES[r.d] ?? r.d})`];
    case TraceKind.Fault:
      return [`  #PF ${va(r.a)} code ${hex(r.b)} (${describeErrorCode(r.b)})`];
    case TraceKind.Mapper: {
      const err = r.d === 0 ? 'ok' : (MAPPER_ERRORS[r.d - 1] ?? `error ${r.d}`);
      return [
        `  ${MAPPER_OPS[r.a] ?? 'mapper'} → ${err}${r.d === 0 && r.c >= 0 ? ` (frame ${hex(r.c)})` : ''}`,
      ];
    }
    case TraceKind.Flush:
      return [
        `  ${r.b === 2 ? 'DROPPED ' : ''}flush obligation ${r.a < 0 ? '(all)' : va(r.a)}: ${FLUSH_OUTCOME_NAMES[r.b] ?? r.b}`,
      ];
    case TraceKind.Maintenance:
      return [`  ${MAINTENANCE_NAMES[r.a] ?? 'maintenance'}: ${r.d} evicted`];
    case TraceKind.Cr3Write:
      return [`  cr3 ← ${hex(r.a)}${r.b ? ` pcid ${r.b}` : ''}`];
    case TraceKind.FrameAlloc:
      return [`  frame ${hex(r.a)} allocated`];
    case TraceKind.FrameFree:
      return [
        r.b === 1
          ? `  frame ${hex(r.a)}: free held back (lazy)`
          : r.b === 2
            ? `  frame ${hex(r.a)} freed (held free released)`
            : `  frame ${hex(r.a)} freed`,
      ];
    case TraceKind.IpiSend: {
      const what = r.b === 2 ? 'full flush' : `${r.c} page${r.c === 1 ? '' : 's'}`;
      const how = (r.d & 2) !== 0 ? 'INVLPGB' : (r.d & 1) !== 0 ? 'lazy request' : 'IPI';
      return [`  ${how} → cpu${r.a}: ${what}`];
    }
    case TraceKind.IpiReceive: {
      const what = r.b === 2 ? 'full flush' : `${r.c} page${r.c === 1 ? '' : 's'}`;
      const how = r.d === 1 ? 'INVLPGB' : r.d === 2 ? 'lazy request' : 'IPI';
      return [`  ${how} from cpu${r.a}: ${what}, acked`];
    }
    case TraceKind.Stale: {
      const what =
        (r.c & StaleBits.Translation) !== 0
          ? r.b < 0
            ? 'tables: not mapped'
            : `tables: ${hex(r.b)}`
          : (r.c & StaleBits.Permission) !== 0
            ? 'tables: fewer rights'
            : 'tables: DIRTY clear';
      return [`  STALE entry used (${what})`];
    }
    case TraceKind.Coherent:
      return [`  coherence point: flush #${r.a} done`];
    case TraceKind.ShootdownDone:
      return [`  shootdown done: ${r.a} ack${r.a === 1 ? '' : 's'}, cycle ${r.b}`];
    case TraceKind.BarrierWait:
      return ['  waits for the other CPUs'];
    case TraceKind.BarrierPass:
      return r.b === 1 ? ['barrier open: resumes'] : ['  open: passes'];
    case TraceKind.Halt:
      return [['halted', 'FAULTED', 'FAILED'][r.a] ?? 'stopped'];
    default:
      return [];
  }
}

function clip(text: string): string {
  return text.length > COLUMN - 2 ? `${text.slice(0, COLUMN - 3)}…` : text;
}

/** Renders the per-CPU timeline and the summary. */
export function renderTimeline(
  scenario: Scenario,
  schedule: readonly number[],
  records: readonly TraceRecord[],
  report: RunReportJson,
): string {
  const n = scenario.cpus.length;
  const out: string[] = [];
  out.push(
    `smpsim run ${scenario.name}: ${n} CPU${n === 1 ? '' : 's'}, protocol ${report.protocol}, host ${report.host}, seed ${report.seed}`,
  );
  out.push('');
  const header = [
    'step'.padStart(5),
    ...scenario.cpus.map((c, i) => `cpu${i} (${c.as})`.padEnd(COLUMN)),
  ];
  out.push(header.join('  ').trimEnd());
  out.push(['-----', ...scenario.cpus.map(() => '-'.repeat(COLUMN))].join('  '));
  const byStep = new Map<number, TraceRecord[]>();
  for (const r of records) {
    const list = byStep.get(r.step);
    if (list === undefined) byStep.set(r.step, [r]);
    else list.push(r);
  }
  for (let step = 0; step < schedule.length; step++) {
    const cpu = schedule[step]!;
    const recs = byStep.get(step) ?? [];
    const lines = recs.flatMap((r) => describe(r, scenario));
    if (lines.length === 0) lines.push('(still waiting)');
    for (const h of report.hazards)
      if (h.step === step && h.cpu === cpu && h.kind !== 'deadlock')
        lines.push(`  !! HAZARD ${h.kind}`);
    lines.forEach((line, k) => {
      const cells = Array.from({ length: n }, (_, i) =>
        i === cpu ? clip(line).padEnd(COLUMN) : ' '.repeat(COLUMN),
      );
      out.push([k === 0 ? String(step).padStart(5) : '     ', ...cells].join('  ').trimEnd());
    });
  }
  out.push('');
  out.push(...renderSummary(report));
  return `${out.join('\n')}\n`;
}

/** The counters, faults, Mapper errors, failures and registers after the timeline. */
export function renderSummary(report: RunReportJson): string[] {
  const out: string[] = [];
  out.push('cpu  status   instr  tlb hits  misses  walks  faults  evictions  modeled cycles');
  for (const c of report.stats.cpus) {
    out.push(
      [
        String(c.cpu).padStart(3),
        c.status.padEnd(7),
        String(c.instructions).padStart(6),
        String(c.tlb_hits).padStart(9),
        String(c.tlb_misses).padStart(7),
        String(c.walks).padStart(6),
        String(c.faults).padStart(7),
        String(c.evictions).padStart(10),
        String(c.modeled_cycles).padStart(15),
      ].join('  '),
    );
  }
  for (const f of report.faults) {
    out.push(
      `fault: cpu ${f.cpu} at step ${f.step}: #PF ${f.addr}, error code ${f.error_code} (${describeErrorCode(Number(f.error_code))})`,
    );
  }
  for (const e of report.mapper_errors)
    out.push(`mapper error: cpu ${e.cpu} at step ${e.step}: ${e.op} → ${e.err}`);
  for (const f of report.failures) out.push(`FAILED: ${f.message}`);
  if (report.deadlock !== undefined) {
    out.push(`DEADLOCK: cpus ${report.deadlock.cpus.join(', ')} are all blocked`);
    for (const w of report.deadlock.waits) out.push(`  ${w}`);
  }
  out.push('registers (non-zero):');
  for (const regs of report.registers) {
    const set = Object.entries(regs).filter(([k, v]) => k !== 'cpu' && v !== '0x0');
    out.push(
      `  cpu${regs.cpu}: ${set.length === 0 ? '(all zero)' : set.map(([k, v]) => `${k}=${v}`).join(' ')}`,
    );
  }
  out.push(...renderHazards(report));
  out.push(
    report.host === 'deterministic'
      ? `schedule: ${report.schedule}   (replay with --schedule '${report.schedule}')`
      : `schedule: ${report.schedule}   (as observed on worker threads; only the deterministic host replays a schedule)`,
  );
  out.push(
    `time: modeled cycles per CPU above; ${report.stats.steps} steps, ${report.stats.trace_records} trace records`,
  );
  return out;
}

/** Each hazard as a short story: what went wrong, then the events that led to it, by step. */
export function renderHazards(report: RunReportJson): string[] {
  if (report.hazards.length === 0) return ['hazards: none'];
  const out = [`hazards: ${report.hazards.length}`];
  for (const h of report.hazards) {
    const where =
      h.addr === undefined
        ? ''
        : `: ${h.addr}${h.frame === undefined ? '' : ` (frame ${h.frame})`}`;
    out.push(`  ${h.kind.toUpperCase()} on cpu${h.cpu} at step ${h.step}${where}`);
    out.push(...wrap(h.why, '    ', '    '));
    for (const e of h.story)
      out.push(...wrap(e.text, `    step ${String(e.step).padStart(4)}  `, ' '.repeat(15)));
  }
  return out;
}

/** `text` in lines of at most 100 columns: the first after `first`, the rest after `rest`. */
function wrap(text: string, first: string, rest: string): string[] {
  const out: string[] = [];
  let line = first;
  let empty = true;
  for (const word of text.split(' ')) {
    if (!empty && line.length + 1 + word.length > 100) {
      out.push(line);
      line = rest;
      empty = true;
    }
    line += empty ? word : ` ${word}`;
    empty = false;
  }
  out.push(line);
  return out;
}
