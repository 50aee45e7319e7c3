/**
 * Question: what does the coherence checker cost, and is it cheap enough to leave on by default?
 *
 * It has two parts: the CPU's coherence probe on TLB hits (one atomic load and a compare while
 * the page tables have not changed since the entry was last checked, a read-only walk when they
 * have), and the checker's pass over the finished trace (`checkRun`). Both need the trace, so the
 * baseline is a deterministic-host run with the trace on and the probe off, measured in the same
 * run; a run with no trace at all is shown for scale.
 *
 * Two workloads, 2 CPUs, protocol sync-ipi, 16 mapped 4 KiB pages:
 * - steady: CPU 0 loads round-robin from the 16 pages (all TLB hits after the first pass), CPU 1
 *   loads too; the tables never change, so the probe is the compare only.
 * - churn: the same, and CPU 1 changes a page's flags and flushes every 64 of its instructions,
 *   so every change sends both CPUs' cached entries through a probe walk again.
 * - remap: CPU 1 instead moves a page to a new frame (unmap, flush, free, alloc, map_to, flush)
 *   every 64 instructions. Frames are freed, so `checkRun` makes its full pass (with no frees,
 *   no stale use and no dropped flush a trace cannot hold a hazard, and it returns at once).
 *
 * Run: `npx tsx bench/checker.ts [--runs N]`.
 */

import { checkRun } from '../src/check/checker.ts';
import { type ProgramBuilder, scenario } from '../src/scenarios/builder.ts';
import type { Scenario } from '../src/scenarios/scenario.ts';
import { runDeterministic } from '../src/smp/hosts/deterministic.ts';
import { Machine } from '../src/smp/machine.ts';
import { type BenchRow, machineLine, median, printRateTable } from './harness.ts';

const argv = process.argv.slice(2);
const runsAt = argv.indexOf('--runs');
const RUNS = runsAt >= 0 ? Number(argv[runsAt + 1]) : 9;
if (!Number.isInteger(RUNS) || RUNS < 1) {
  console.error(`bench/checker.ts: --runs ${argv[runsAt + 1]} must be a positive integer`);
  process.exit(2);
}

const PAGE = 0x40_0000;
const PAGES = 16;
const LOADS = 100_000;
const RW = 'PRESENT | WRITABLE | USER_ACCESSIBLE';

type Mode = 'steady' | 'churn' | 'remap';

function workload(mode: Mode): Scenario {
  const loads = (p: ProgramBuilder, n: number, every?: (i: number) => void) => {
    for (let i = 0; i < n; i++) {
      p.load(PAGE + (i % PAGES) * 0x1000, 'r0');
      every?.(i);
    }
  };
  return scenario(mode)
    .machine({ cpus: 2, protocol: 'sync-ipi', tlb: { entries: 64, ways: 4 } })
    .addressSpace('A', (as) => {
      for (let i = 0; i < PAGES; i++) as.map4k(PAGE + i * 0x1000, 0x20_0000 + i * 0x1000, RW);
    })
    .cpu('A', (p) => loads(p, LOADS))
    .cpu('A', (p) =>
      loads(p, LOADS / 4, (i) => {
        // Flags keep every right and DIRTY: a change that makes no access stale, so the probe
        // walks and finds the entries current (the cost without any hazard to report).
        if (i % 64 !== 63) return;
        const page = PAGE + ((i >> 6) % PAGES) * 0x1000;
        if (mode === 'churn') p.updateFlags('4KiB', page, `${RW} | DIRTY | ACCESSED`).flush();
        // Move the page to a fresh frame, freeing the old one after the shootdown: frames go
        // back to the allocator, so the checker cannot skip its pass over the trace.
        if (mode === 'remap')
          p.unmap('4KiB', page, 'r1')
            .flush()
            .freeFrame('r1')
            .allocFrame('r2')
            .mapTo('4KiB', page, { reg: 'r2' }, RW)
            .flush();
      }),
    )
    .build();
}

interface Variant {
  readonly name: string;
  readonly trace: boolean;
  readonly probe: boolean;
  readonly check: boolean;
}

const VARIANTS: readonly Variant[] = [
  { name: 'no trace (scale only)', trace: false, probe: false, check: false },
  { name: 'baseline: trace on, probe off', trace: true, probe: false, check: false },
  { name: 'trace + probe', trace: true, probe: true, check: false },
  { name: 'trace + probe + checkRun', trace: true, probe: true, check: true },
];

console.log(machineLine());
console.log(
  `bench/checker.ts: deterministic host, seed 1, ${RUNS} timed rounds of the four variants in turn after 1 warm-up round; ns per host step (one instruction or one blocked check)`,
);

const summary: string[][] = [];
for (const mode of ['steady', 'churn', 'remap'] as const) {
  const s = workload(mode);
  let steps = 0;
  let hazards = 0;
  // Runs of the four variants alternate (one warm-up round, then RUNS timed rounds), so that
  // drift in the machine's load or the heap's state falls on all of them alike; the machine (16
  // MiB of fresh RAM) is built outside the timed region.
  const seconds: number[][] = VARIANTS.map(() => []);
  for (let round = 0; round <= RUNS; round++) {
    VARIANTS.forEach((v, i) => {
      const m = Machine.fromScenario(s, { trace: v.trace, probe: v.probe, traceCapacity: 1 << 14 });
      const t0 = process.hrtime.bigint();
      const run = runDeterministic(m, { seed: 1 });
      if (v.check) hazards = checkRun(m, run).length;
      const t = Number(process.hrtime.bigint() - t0) / 1e9;
      steps = run.steps;
      if (round > 0) seconds[i]!.push(t);
    });
  }
  const rows: BenchRow[] = VARIANTS.map((v, i) => ({
    name: `${s.name}: ${v.name}`,
    ops: steps,
    seconds: seconds[i]!,
  }));
  printRateTable(`${s.name} workload (${steps} steps; hazards found: ${hazards})`, rows);
  const ns = rows.map((r) => (median(r.seconds) / r.ops) * 1e9);
  const base = ns[1]!;
  summary.push([
    s.name,
    base.toFixed(0),
    (ns[2]! - base).toFixed(1),
    `${((ns[2]! / base - 1) * 100).toFixed(1)}%`,
    (ns[3]! - ns[2]!).toFixed(1),
    `${((ns[3]! / base - 1) * 100).toFixed(1)}%`,
  ]);
}

const head = [
  'workload',
  'baseline ns/step',
  'probe ns/step',
  'probe overhead',
  'checkRun ns/step',
  'probe + checkRun overhead',
];
const widths = head.map((h, i) => Math.max(h.length, ...summary.map((r) => r[i]!.length)));
console.log('\nOverhead against the same-run baseline (trace on, probe off), medians:');
console.log(head.map((h, i) => h.padStart(widths[i]!)).join('  '));
for (const r of summary) console.log(r.map((c, i) => c.padStart(widths[i]!)).join('  '));
