/**
 * The result of one scenario run as data: the `--json` object of the scenario spec, built from the
 * machine's final state and the host's run. Renderers (JSON, timeline) read this, not the CPUs.
 */

import { hex, VirtAddr } from '../addr.ts';
import type { Hazard } from '../check/hazard.ts';
import type { Deadlock } from '../smp/hosts/deterministic.ts';
import { formatSchedule } from '../smp/hosts/deterministic.ts';
import type { TraceRecord } from '../trace/ring.ts';

/** What any host's run gives the report: the order CPUs stepped in, the trace, and how it ended. */
export interface HostRun {
  readonly schedule: readonly number[];
  readonly steps: number;
  readonly records: readonly TraceRecord[];
  readonly lost: number;
  readonly deadlock?: Deadlock;
}

import type { Machine } from '../smp/machine.ts';

/** One hazard in the JSON (scenario spec, "--json output"), with its story. */
export interface HazardJson {
  readonly kind: string;
  readonly cpu: number;
  readonly addr?: string;
  readonly frame?: string;
  readonly step: number;
  readonly why: string;
  readonly story: readonly { step: number; cpu: number; text: string }[];
}

/** The JSON form of a hazard. */
export function hazardJson(h: Hazard): HazardJson {
  return {
    kind: h.kind,
    cpu: h.cpu,
    ...(h.addr === undefined ? {} : { addr: VirtAddr.hex(VirtAddr.newUnchecked(h.addr)) }),
    ...(h.frames[0] === undefined ? {} : { frame: hex(h.frames[0]) }),
    step: h.step,
    why: h.why,
    story: h.story.map((e) => ({ step: e.step, cpu: e.cpu, text: e.text })),
  };
}

/** One CPU's counters and final state, in the JSON's snake_case. */
export interface CpuStatsJson {
  readonly cpu: number;
  readonly status: string;
  readonly instructions: number;
  readonly tlb_hits: number;
  readonly tlb_misses: number;
  readonly dirty_rewalks: number;
  readonly walks: number;
  readonly faults: number;
  readonly evictions: number;
  /** Modeled cycles (see src/cpu/cost-model.ts), not wall-clock time. */
  readonly modeled_cycles: number;
}

/** The `--json` output of `smpsim run` (scenario spec, "--json output"). */
export interface RunReportJson {
  readonly scenario: string;
  readonly protocol: string;
  readonly host: string;
  readonly seed: number;
  readonly hazards: readonly HazardJson[];
  readonly faults: readonly { cpu: number; addr: string; error_code: string; step: number }[];
  readonly mapper_errors: readonly { cpu: number; step: number; op: string; err: string }[];
  readonly registers: readonly Record<string, string | number>[];
  readonly schedule: string;
  readonly stats: {
    readonly steps: number;
    readonly trace_records: number;
    readonly trace_lost: number;
    readonly cpus: readonly CpuStatsJson[];
  };
  /** CPUs stopped by a failed `assert` or a machine error, with the reason. */
  readonly failures: readonly { cpu: number; message: string }[];
  /** Present when the run ended in a deadlock. */
  readonly deadlock?: { cpus: readonly number[]; waits: readonly string[] };
}

/** Builds the report of a finished run. */
export function buildRunReport(
  machine: Machine,
  run: HostRun,
  meta: { protocol: string; host: string; seed: number },
  hazards: readonly Hazard[] = [],
): RunReportJson {
  const cpus = machine.cpus;
  return {
    scenario: machine.scenario.name,
    protocol: meta.protocol,
    host: meta.host,
    seed: meta.seed,
    hazards: hazards.map(hazardJson),
    faults: cpus.flatMap((c) =>
      c.faults.map((f) => ({
        cpu: f.cpu,
        addr: VirtAddr.hex(VirtAddr.newUnchecked(f.addr)),
        error_code: hex(f.errorCode),
        step: f.step,
      })),
    ),
    mapper_errors: cpus.flatMap((c) =>
      c.mapperErrors.map((e) => ({ cpu: e.cpu, step: e.step, op: e.op, err: e.err })),
    ),
    registers: cpus.map((c) => {
      const regs: Record<string, string | number> = { cpu: c.id };
      for (let i = 0; i < 16; i++) regs[`r${i}`] = hex(c.register(i));
      return regs;
    }),
    schedule: formatSchedule(run.schedule),
    stats: {
      steps: run.steps,
      trace_records: run.records.length,
      trace_lost: run.lost,
      cpus: cpus.map((c) => ({
        cpu: c.id,
        status: c.status,
        instructions: c.stats.instructions,
        tlb_hits: c.stats.tlbHits,
        tlb_misses: c.stats.tlbMisses,
        dirty_rewalks: c.stats.tlbMissDirtyRewalk,
        walks: c.stats.walks,
        faults: c.stats.faults,
        evictions: c.stats.evictions,
        modeled_cycles: c.cycles,
      })),
    },
    failures: cpus.flatMap((c) =>
      c.failure === undefined ? [] : [{ cpu: c.id, message: c.failure }],
    ),
    ...(run.deadlock === undefined
      ? {}
      : { deadlock: { cpus: run.deadlock.cpus, waits: run.deadlock.waits } }),
  };
}
