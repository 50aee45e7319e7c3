/**
 * `smpsim bench workload`: an application-like workload per protocol. N CPUs run one address
 * space in bulk-synchronous periods: each CPU loads from a shared working set (32 pages), then
 * all meet at a barrier, read this period's buffer (`unmapPages` pages), and meet again. Two
 * buffers take turns. CPU 0 recycles them: each period it unmaps the buffer every CPU read in the
 * previous one (a flush per page, then frees its frames: munmap), maps the buffer of this period
 * again on fresh frames (mmap, two barriers after its unmap), and does a quarter of the others'
 * loads. Nobody reads a buffer while it is unmapped, so no CPU faults, but the other CPUs' TLBs
 * cache its old translations until the shootdown reaches them. Waiting two barriers before the
 * remap keeps the program correct under `lazy` too, which (as LATR) only guarantees that no TLB
 * holds a translation after the CPUs' next epoch: remapping earlier is a stale-translation
 * hazard that the checker reports.
 *
 * Reported per protocol: throughput (loads per second), TLB miss rate, IPIs per second, the time
 * CPUs spent in shootdowns, and the stale windows (how long other TLBs kept translations of
 * unmapped pages), with the coherence checker's hazard count as a sanity check. The literature's
 * qualitative results should show: batching cuts the IPIs by the batch size (an order of
 * magnitude at 14 pages), broadcast sends none, lazy sends none and trades that for long stale
 * windows (until each CPU's next barrier) and frees held back.
 *
 * On the modeled clock everything is measured from the trace; on the worker-thread host (wall
 * clock) only throughput, miss rate and IPIs per second are (the mailbox counters); time in
 * shootdowns and stale windows need the modeled clock's timeline.
 */

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { checkRun } from '../check/checker.ts';
import { type CostModel, cyclesToNs, withCostOverrides } from '../cpu/cost-model.ts';
import { scenario } from '../scenarios/builder.ts';
import type { Instruction, Register, Scenario } from '../scenarios/scenario.ts';
import { WorkerHost } from '../smp/hosts/worker.ts';
import { REQUEST_LAZY, RequestKind } from '../smp/ipi.ts';
import { Machine } from '../smp/machine.ts';
import { TraceKind } from '../trace/record.ts';
import { toCsv } from './csv.ts';
import { machineLine } from './machine-line.ts';
import { runModeledClock } from './modeled-clock.ts';
import { formatNumber, renderTable } from './table.ts';
import type { Variant } from './variant.ts';

/** The defaults of `smpsim bench workload`. */
export const WORKLOAD_DEFAULTS = Object.freeze({
  cpus: 4,
  periods: 20,
  quickPeriods: 8,
  unmapPages: 14,
  workingSet: 32,
  /** Loads of the working set per CPU per period. */
  loads: 2000,
  /**
   * Modeled cycles per instruction in this workload (the cost model's `instruction`, 1 by
   * default): the application's computation between two accesses, so that a period's length
   * depends on the CPUs' work and not only on CPU 0's recycling.
   */
  workCycles: 40,
  variants: ['sync-ipi', 'batched', 'lazy', 'broadcast'] as readonly string[],
});

/** The workload's settings. */
export interface WorkloadOptions {
  readonly cpus: number;
  readonly variants: readonly Variant[];
  readonly costs: CostModel;
  readonly modeled: boolean;
  readonly wall: boolean;
  readonly periods: number;
  readonly unmapPages: number;
  readonly workingSet?: number;
  readonly loads?: number;
  /** Modeled cycles per instruction (`WORKLOAD_DEFAULTS.workCycles`). */
  readonly workCycles?: number;
  readonly onProgress?: (done: string) => void;
  readonly signal?: AbortSignal;
}

/** One protocol's figures on the modeled clock. */
export interface ModeledWorkload {
  readonly variant: string;
  /** Modeled time from start to the last CPU's halt (cycles). */
  readonly makespanCycles: number;
  readonly loads: number;
  /** Loads per modeled second. */
  readonly throughput: number;
  readonly tlbMissRate: number;
  readonly ipis: number;
  readonly lazyRequests: number;
  readonly broadcasts: number;
  readonly ipisPerSecond: number;
  /** Cycles spent on shootdowns: CPU 0 sending and waiting, every target handling them. */
  readonly initiatorCycles: number;
  readonly targetCycles: number;
  /** Their share of all CPUs' time (N x makespan). */
  readonly shootdownShare: number;
  /** Stale windows: translations of unmapped pages other TLBs kept, and for how long. */
  readonly staleWindows: number;
  readonly staleMeanCycles: number;
  readonly staleMaxCycles: number;
  /** TLB hits on such entries (nobody should read the buffer while it is unmapped). */
  readonly staleUses: number;
  /** Frees a lazy protocol held until the coherence point. */
  readonly heldFrees: number;
  /** The coherence checker's hazards (expected 0: every protocol is correct here). */
  readonly hazards: number;
}

/** One protocol's figures on the wall clock. */
export interface WallWorkload {
  readonly variant: string;
  readonly wallMs: number;
  readonly startupMs: number;
  readonly loads: number;
  /** Loads per wall-clock second. */
  readonly throughput: number;
  readonly tlbMissRate: number;
  readonly ipis: number;
  readonly broadcasts: number;
  readonly ipisPerSecond: number;
}

/** Everything one `smpsim bench workload` measured. */
export interface WorkloadResult {
  readonly format: 'smpsim-bench-workload/1';
  readonly machine: string;
  readonly costs: CostModel;
  readonly settings: {
    readonly cpus: number;
    readonly periods: number;
    readonly unmapPages: number;
    readonly workingSet: number;
    readonly loads: number;
    readonly workCycles: number;
    readonly variants: readonly string[];
  };
  readonly modeled?: ModeledWorkload[];
  readonly wall?: WallWorkload[];
  readonly seconds: number;
}

/** Pages CPU 0 can recycle per period: each frame is held in a register (r1..r15). */
export const MAX_UNMAP_PAGES = 15;

const WS_BASE = 0x4000_0000;
const WS_FRAME = 0x20_0000;
const BUF_BASE = 0x5000_0000;
const BUF_FRAME = 0x40_0000;

/** The workload scenario (see the file comment). */
export function workloadScenario(o: {
  cpus: number;
  periods: number;
  unmapPages: number;
  workingSet: number;
  loads: number;
}): Scenario {
  if (o.unmapPages < 1 || o.unmapPages > MAX_UNMAP_PAGES) {
    throw new RangeError(`workload: unmapPages must be from 1 to ${MAX_UNMAP_PAGES}`);
  }
  const ws = (i: number) => WS_BASE + (i % o.workingSet) * 4096 + ((i * 8) % 4096);
  /** Page `p` of buffer `b` (0 or 1). */
  const buf = (b: number, p: number) => BUF_BASE + (b * MAX_UNMAP_PAGES + p) * 4096;
  const reg = (p: number) => `r${p + 1}` as Register;
  let b = scenario(`workload-${o.cpus}`)
    .describe('smpsim bench workload: a shared working set, two buffers recycled in turn.')
    .machine({ cpus: o.cpus, ramBytes: 16 * 1024 * 1024 })
    .addressSpace('A', (as) => {
      for (let p = 0; p < o.workingSet; p++) {
        as.map4k(WS_BASE + p * 4096, WS_FRAME + p * 4096, 'PRESENT|WRITABLE');
      }
      for (let x = 0; x < 2; x++) {
        for (let p = 0; p < o.unmapPages; p++) {
          as.map4k(buf(x, p), BUF_FRAME + (x * MAX_UNMAP_PAGES + p) * 4096, 'PRESENT|WRITABLE');
        }
      }
    });
  for (let cpu = 0; cpu < o.cpus; cpu++) {
    b = b.cpu('A', (prog) => {
      for (let x = 0; x < 2; x++) for (let p = 0; p < o.unmapPages; p++) prog.load(buf(x, p), 'r0');
      prog.barrier('go');
      for (let k = 0; k < o.periods; k++) {
        if (cpu === 0) {
          // mmap: this period's buffer again, on fresh frames (it was unmapped two barriers ago).
          if (k >= 2) {
            for (let p = 0; p < o.unmapPages; p++) {
              prog
                .allocFrame(reg(p))
                .mapTo('4KiB', buf(k % 2, p), reg(p), 'PRESENT|WRITABLE')
                .ignore();
            }
          }
          // munmap: the buffer every CPU read last period, a flush per page, then the frees once
          // no TLB can reach them (the first free is where a batched protocol sends its batch).
          if (k >= 1) {
            const last = (k - 1) % 2;
            for (let p = 0; p < o.unmapPages; p++) {
              prog.unmap('4KiB', buf(last, p), reg(p)).flush();
            }
            for (let p = 0; p < o.unmapPages; p++) prog.freeFrame(reg(p));
          }
        }
        // CPU 0 does a quarter of the others' loads: recycling the buffers is its other work.
        const loads = cpu === 0 ? o.loads >> 2 : o.loads;
        for (let i = 0; i < loads; i++) prog.load(ws(i + cpu * 7), 'r0');
        prog.barrier(`read-${k}`);
        for (let p = 0; p < o.unmapPages; p++) prog.load(buf(k % 2, p), 'r0');
        prog.barrier(`done-${k}`);
      }
    });
  }
  return b.build();
}

/** Loads the scenario's programs make. */
function countLoads(s: Scenario): number {
  return s.cpus.reduce(
    (n, c) => n + c.program.filter((i: Instruction) => i.op === 'load').length,
    0,
  );
}

/** How many units of work `runWorkloadBench` reports. */
export function workloadUnits(o: WorkloadOptions): number {
  return (
    (o.modeled ? o.variants.length : 0) +
    (o.wall ? o.variants.filter((v) => v.onWorkers).length : 0)
  );
}

/** Runs the workload under every variant. */
export async function runWorkloadBench(o: WorkloadOptions): Promise<WorkloadResult> {
  const t0 = performance.now();
  const tick = o.onProgress ?? (() => {});
  const shape = {
    cpus: o.cpus,
    periods: o.periods,
    unmapPages: o.unmapPages,
    workingSet: o.workingSet ?? WORKLOAD_DEFAULTS.workingSet,
    loads: o.loads ?? WORKLOAD_DEFAULTS.loads,
  };
  const sc = workloadScenario(shape);
  const loads = countLoads(sc);
  const workCycles = o.workCycles ?? WORKLOAD_DEFAULTS.workCycles;
  const costs = withCostOverrides(o.costs, { instruction: workCycles });
  let modeled: ModeledWorkload[] | undefined;
  if (o.modeled) {
    modeled = [];
    for (const v of o.variants) {
      modeled.push(modeledWorkload(sc, v, costs, loads));
      tick(`modeled ${v.name}`);
      await new Promise((r) => setImmediate(r));
      if (o.signal?.aborted) throw new Error('bench: interrupted');
    }
  }
  let wall: WallWorkload[] | undefined;
  if (o.wall) {
    wall = [];
    for (const v of o.variants.filter((x) => x.onWorkers)) {
      wall.push(await wallWorkload(workloadScenario(shape), v, o, loads));
      tick(`workers ${v.name}`);
    }
  }
  return {
    format: 'smpsim-bench-workload/1',
    machine: machineLine(),
    costs,
    settings: { ...shape, workCycles, variants: o.variants.map((v) => v.name) },
    ...(modeled === undefined ? {} : { modeled }),
    ...(wall === undefined ? {} : { wall }),
    seconds: (performance.now() - t0) / 1000,
  };
}

function modeledWorkload(
  sc: Scenario,
  v: Variant,
  costs: CostModel,
  loads: number,
): ModeledWorkload {
  const machine = Machine.fromScenario(sc, { protocol: v.protocol, costs, traceCapacity: 1 << 14 });
  const run = runModeledClock(machine, {
    watch: [0],
    concurrentFlush: v.concurrent,
    earlyAck: v.earlyAck,
  });
  if (run.deadlock !== undefined || run.truncated || run.lost > 0) {
    throw new Error(`bench workload: ${v.name} did not finish cleanly`);
  }
  const bad = machine.cpus.find((c) => c.status !== 'halted');
  if (bad !== undefined)
    throw new Error(`bench workload: cpu ${bad.id} ${bad.status}: ${bad.failure ?? ''}`);
  const makespan = Math.max(...machine.cpus.map((c) => c.cycles));
  const seconds = cyclesToNs(costs, makespan) / 1e9;
  let hits = 0;
  let misses = 0;
  for (const c of machine.cpus) {
    hits += c.stats.tlbHits;
    misses += c.stats.tlbMisses;
  }
  // CPU 0's time in flush instructions and at its frees (where a batch goes out), beyond their
  // own instruction and local invalidation.
  const program = sc.cpus[0]!.program;
  const arrivals = run.arrivals.get(0)!;
  let initiatorCycles = 0;
  program.forEach((ins, pc) => {
    const span = arrivals[pc + 1]! - arrivals[pc]!;
    if (ins.op === 'flush') initiatorCycles += span - costs.instruction - costs.invlpg;
    else if (ins.op === 'free_frame') initiatorCycles += span - costs.instruction;
  });
  let ipis = 0;
  let lazyRequests = 0;
  let broadcasts = 0;
  let targetCycles = 0;
  let staleUses = 0;
  let heldFrees = 0;
  // Stale windows: per CPU the pages its TLB caches; an unmap opens a window on every other CPU
  // caching the page, its eviction there closes it.
  const cached = machine.cpus.map(() => new Set<number>());
  const open = new Map<string, number>();
  let staleWindows = 0;
  let staleSum = 0;
  let staleMax = 0;
  for (const r of run.records) {
    switch (r.kind) {
      case TraceKind.IpiSend:
        if ((r.d & 1) !== 0) lazyRequests++;
        else if ((r.d & 2) !== 0) broadcasts++;
        else ipis++;
        break;
      case TraceKind.IpiReceive:
        targetCycles +=
          // Interrupt entry and exit for an IPI only (d: 0 IPI, 1 broadcast, 2 lazy).
          (r.d === 0 ? costs.ipiReceive : 0) +
          (r.b === RequestKind.Pages ? r.c * (costs.invlpg + costs.flushPage) : costs.cr3Write);
        break;
      case TraceKind.Stale:
        staleUses++;
        break;
      case TraceKind.FrameFree:
        if (r.b === 1) heldFrees++;
        break;
      case TraceKind.TlbFill:
        cached[r.cpu]!.add(r.a);
        break;
      case TraceKind.TlbEvict: {
        cached[r.cpu]!.delete(r.a);
        const key = `${r.cpu}:${r.a}`;
        const from = open.get(key);
        if (from !== undefined) {
          const w = run.stepCycles[r.step]! - from;
          staleWindows++;
          staleSum += w;
          staleMax = Math.max(staleMax, w);
          open.delete(key);
        }
        break;
      }
      case TraceKind.Mapper:
        // An unmap that succeeded (MAPPER_OPS index 1).
        if (r.a === 1 && r.d === 0) {
          cached.forEach((pages, cpu) => {
            const key = `${cpu}:${r.b}`;
            // A window still open (not evicted since an earlier unmap) keeps its start.
            if (cpu !== r.cpu && pages.has(r.b) && !open.has(key)) {
              open.set(key, run.stepCycles[r.step]!);
            }
          });
        }
        break;
    }
  }
  const hazards = checkRun(machine, run).length;
  return {
    variant: v.name,
    makespanCycles: makespan,
    loads,
    throughput: loads / seconds,
    tlbMissRate: misses / Math.max(1, hits + misses),
    ipis,
    lazyRequests,
    broadcasts,
    ipisPerSecond: ipis / seconds,
    initiatorCycles,
    targetCycles,
    shootdownShare: (initiatorCycles + targetCycles) / (makespan * machine.cpus.length),
    staleWindows,
    staleMeanCycles: staleWindows === 0 ? 0 : staleSum / staleWindows,
    staleMaxCycles: staleMax,
    staleUses,
    heldFrees,
    hazards,
  };
}

async function wallWorkload(
  sc: Scenario,
  v: Variant,
  o: WorkloadOptions,
  loads: number,
): Promise<WallWorkload> {
  const machine = Machine.fromScenario(sc, { protocol: v.protocol, costs: o.costs, trace: false });
  const host = new WorkerHost(machine, {
    trace: false,
    timeoutMs: 600_000,
    ...(o.signal === undefined ? {} : { signal: o.signal }),
  });
  const run = await host.start();
  if (run.stopped) throw new Error('bench: stopped');
  if (run.deadlock !== undefined)
    throw new Error(`bench workload: ${run.deadlock.waits.join('; ')}`);
  const bad = run.cpus.find((c) => c.state.status !== 'halted');
  if (bad !== undefined)
    throw new Error(`bench workload: worker cpu ${bad.cpu} ${bad.state.status}`);
  // Requests that are not lazy, from the trace: interrupts, or INVLPGB under broadcast.
  let posted = 0;
  for (const r of run.records)
    if (r.kind === TraceKind.IpiSend && (r.d & REQUEST_LAZY) === 0) posted++;
  if (run.lost > 0)
    throw new Error(`bench workload: ${run.lost} trace records lost: IPIs uncounted`);
  let hits = 0;
  let misses = 0;
  for (const c of run.cpus) {
    hits += c.state.stats.tlbHits;
    misses += c.state.stats.tlbMisses;
  }
  const seconds = run.wallMs / 1000;
  const ipis = v.protocol === 'broadcast' ? 0 : posted;
  return {
    variant: v.name,
    wallMs: run.wallMs,
    startupMs: run.startupMs,
    loads,
    throughput: loads / seconds,
    tlbMissRate: misses / Math.max(1, hits + misses),
    ipis,
    broadcasts: v.protocol === 'broadcast' ? posted : 0,
    ipisPerSecond: ipis / seconds,
  };
}

const f = formatNumber;
const pct = (x: number) => `${(100 * x).toFixed(x < 0.001 && x > 0 ? 3 : 1)}%`;

/** The terminal report. */
export function renderWorkloadReport(r: WorkloadResult): string {
  const s = r.settings;
  const ns = (c: number) => cyclesToNs(r.costs, c);
  const out = [
    `${r.machine}\n`,
    `smpsim bench workload: ${s.cpus} CPUs share ${s.workingSet} pages (${s.loads} loads each per period, CPU 0 a quarter; ${s.workCycles} modeled cycles per instruction); two buffers of ${s.unmapPages} pages read in turn, CPU 0 unmapping the one read last period and remapping it on fresh frames a period later; ${s.periods} periods\n`,
  ];
  if (r.modeled !== undefined) {
    out.push(
      renderTable(
        `Modeled clock (deterministic host), ns at ${r.costs.clockGhz} GHz`,
        [
          'protocol',
          'loads/s',
          'TLB miss',
          'IPIs',
          'IPIs/s',
          'lazy/bcast',
          'in shootdowns',
          'per period ns',
          'stale windows',
          'mean ns',
          'max ns',
          'held frees',
          'hazards',
        ],
        r.modeled.map((m) => [
          m.variant,
          f(m.throughput),
          pct(m.tlbMissRate),
          String(m.ipis),
          f(m.ipisPerSecond),
          `${m.lazyRequests}/${m.broadcasts}`,
          pct(m.shootdownShare),
          f(ns((m.initiatorCycles + m.targetCycles) / s.periods)),
          String(m.staleWindows),
          f(ns(m.staleMeanCycles)),
          f(ns(m.staleMaxCycles)),
          String(m.heldFrees),
          String(m.hazards),
        ]),
      ),
    );
    out.push(
      '"in shootdowns": CPU 0 sending and waiting plus every target handling requests, as a share of all CPUs\' time; "stale windows": translations of unmapped pages another TLB kept until the shootdown reached it (mean and longest)\n',
    );
  }
  if (r.wall !== undefined) {
    out.push(
      renderTable(
        'Wall clock (worker-thread host; one run each, thread start-up untimed)',
        [
          'protocol',
          'wall ms',
          'loads/s',
          'TLB miss',
          'IPIs',
          'IPIs/s',
          'broadcasts',
          'start-up ms',
        ],
        r.wall.map((w) => [
          w.variant,
          f(w.wallMs),
          f(w.throughput),
          pct(w.tlbMissRate),
          String(w.ipis),
          f(w.ipisPerSecond),
          String(w.broadcasts),
          f(w.startupMs),
        ]),
      ),
    );
  }
  out.push(`total ${r.seconds.toFixed(1)} s\n`);
  return out.join('\n');
}

/** Writes workload.json and workload.csv into `dir`; returns their paths. */
export async function writeWorkloadFiles(r: WorkloadResult, dir: string): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  type Row = { clock: string; host: string } & Partial<ModeledWorkload & WallWorkload>;
  const rows: Row[] = [
    ...(r.modeled ?? []).map((m) => ({ clock: 'modeled', host: 'deterministic', ...m })),
    ...(r.wall ?? []).map((w) => ({ clock: 'wall', host: 'workers', ...w })),
  ];
  const keys = [
    'clock',
    'host',
    'variant',
    'loads',
    'throughput',
    'tlbMissRate',
    'ipis',
    'ipisPerSecond',
    'lazyRequests',
    'broadcasts',
    'makespanCycles',
    'wallMs',
    'initiatorCycles',
    'targetCycles',
    'shootdownShare',
    'staleWindows',
    'staleMeanCycles',
    'staleMaxCycles',
    'staleUses',
    'heldFrees',
    'hazards',
  ] as const;
  const csv = toCsv<Row>(
    keys.map((k) => ({ name: k, value: (row: Row) => (row[k] ?? '') as string | number })),
    rows,
  );
  const paths = [join(dir, 'workload.json'), join(dir, 'workload.csv')];
  writeFileSync(paths[0]!, `${JSON.stringify(r, null, 2)}\n`);
  writeFileSync(paths[1]!, csv);
  return paths;
}
