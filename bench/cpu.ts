/**
 * Question: how fast does one simulated CPU execute through `Cpu.step()`? 8-byte loads that all
 * hit the TLB, loads that all miss and walk, and `Walker.walk` on its own over hot tables, next to
 * a bare `Tlb.lookup` loop and a bare 4-level Int32 `Atomics.load` walk measured in the same run
 * (the floors). A second table shows what the trace ring costs on the hit-load path.
 *
 * Every step row runs a 200k-instruction program built once with the scenario builder; each run
 * (warm-up included) gets a fresh `Machine` built outside the timed region, and the timed loop is
 * what a host does per step: set `now`, call `step()`.
 *
 * Run: `npx tsx bench/cpu.ts [--runs N] [--only hit|miss|tlb|walk|trace]` (`--only` runs one group,
 * e.g. to profile it: `node --cpu-prof --import tsx bench/cpu.ts --only hit`).
 */

import { PhysAddr, VirtAddr } from '../src/addr.ts';
import type { Cpu } from '../src/cpu/cpu.ts';
import { TLB_WRITABLE, Tlb } from '../src/cpu/tlb.ts';
import { Walker, WalkOutcome } from '../src/cpu/walker.ts';
import { indexAt } from '../src/paging/page-table-index.ts';
import { scenario } from '../src/scenarios/builder.ts';
import type { Scenario } from '../src/scenarios/scenario.ts';
import { Machine } from '../src/smp/machine.ts';
import { type BenchRow, machineLine, printRateTable, timeFreshRuns } from './harness.ts';

const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 7;
const onlyArg = process.argv.indexOf('--only');
const ONLY = onlyArg > 0 ? process.argv[onlyArg + 1] : undefined;
/** True if the group named `name` runs (all of them without `--only`). */
const runs = (name: 'hit' | 'miss' | 'tlb' | 'walk' | 'trace') =>
  ONLY === undefined || ONLY === name;
/** Instructions per program (one timed run executes all of them). */
const STEPS = 200_000;
const TLB = { entries: 64, ways: 4 } as const;
/** Above 2^32, so the split-halves set-index and table-index arithmetic is on the measured path. */
const BASE = 0x7f12_3400_0000;
/** Data frames start at 1 MiB; the page tables take the lowest free frames below. */
const FRAME_BASE = 0x10_0000;
/** Walks per timed run of the walker rows. */
const WALKS = 1 << 20;

let sink = 0;

/** Load addresses cycling over `pages` pages, 8-byte aligned, walking the offsets of each page. */
function loadAddresses(pages: number): Float64Array {
  const out = new Float64Array(STEPS);
  for (let k = 0; k < STEPS; k++) {
    out[k] = BASE + (k % pages) * 4096 + ((Math.floor(k / pages) * 8) % 4096);
  }
  return out;
}

/** One CPU in one address space mapping `pages` 4 KiB pages, running a load per address. */
function loadScenario(
  name: string,
  pages: number,
  addrs: Float64Array,
  width: 4 | 8 = 8,
): Scenario {
  return scenario(name)
    .machine({ cpus: 1, tlb: { ...TLB } })
    .addressSpace('A', (as) => {
      for (let i = 0; i < pages; i++)
        as.map4k(BASE + i * 4096, FRAME_BASE + i * 4096, 'PRESENT|WRITABLE');
    })
    .cpu('A', (p) => {
      for (let k = 0; k < STEPS; k++) p.load(addrs[k]!, 'r0', { width });
    })
    .build();
}

interface StepCounts {
  hits: number;
  misses: number;
  walks: number;
}

/** Steps the machine's only CPU through its whole program (the host's per-step work, no drain). */
function runProgram(m: Machine, counts: StepCounts): void {
  const cpu = m.cpus[0]!;
  for (let i = 0; i < STEPS; i++) {
    cpu.now = i;
    cpu.step();
  }
  check(cpu, counts);
}

/** As `runProgram`, but draining the trace ring after every step, as the deterministic host does. */
function runProgramDraining(m: Machine, counts: StepCounts): void {
  const cpu = m.cpus[0]!;
  const ring = m.traces[0]!;
  let records = 0;
  for (let i = 0; i < STEPS; i++) {
    cpu.now = i;
    cpu.step();
    records += ring.drain().records.length;
  }
  sink += records;
  check(cpu, counts);
}

function check(cpu: Cpu, counts: StepCounts): void {
  if (cpu.status !== 'running' || cpu.pc !== STEPS) {
    throw new Error(`cpu stopped early: ${cpu.status} at pc ${cpu.pc} ${cpu.failure ?? ''}`);
  }
  counts.hits += cpu.stats.tlbHits;
  counts.misses += cpu.stats.tlbMisses;
  counts.walks += cpu.stats.walks;
  sink += cpu.regs[0]!;
}

/** A step row: fresh machine per run, counts checked, hit ratio appended to the note. */
function stepRow(
  name: string,
  s: Scenario,
  trace: boolean,
  body: (m: Machine, c: StepCounts) => void,
  note: string,
): BenchRow {
  const counts: StepCounts = { hits: 0, misses: 0, walks: 0 };
  const seconds = timeFreshRuns(
    RUNS,
    () => Machine.fromScenario(s, trace ? {} : { trace: false }),
    (m) => body(m, counts),
  );
  const total = counts.hits + counts.misses;
  const hitPct = ((100 * counts.hits) / total).toFixed(2);
  const walksPerLoad = (counts.walks / total).toFixed(2);
  return {
    name,
    ops: STEPS,
    seconds,
    note: `${note}; hits ${hitPct}%, walks/load ${walksPerLoad}`,
  };
}

function main(): void {
  const rows: BenchRow[] = [];
  const traceRows: BenchRow[] = [];

  // ---- 1. step(): every load a TLB hit (32 pages in a 64-entry 4-way TLB: 2 per set).
  const hitPages = 32;
  const hitAddrs = loadAddresses(hitPages);
  const hitScenario = loadScenario('bench-cpu-hit', hitPages, hitAddrs);
  if (runs('hit')) {
    rows.push(
      stepRow(
        'step(): 8-byte load, TLB hit',
        hitScenario,
        false,
        runProgram,
        'goal ≥ 20 M/s; 32 pages, 64/4 TLB, trace off',
      ),
    );
  }

  // ---- 1b. The same with 4-byte loads: one Atomics.load for the data instead of the validated
  // pair an 8-byte load needs to stay atomic as a whole (reported beside row 1, not instead).
  if (runs('hit')) {
    rows.push(
      stepRow(
        'step(): 4-byte load, TLB hit',
        loadScenario('bench-cpu-hit4', hitPages, hitAddrs, 4),
        false,
        runProgram,
        'goal ≥ 20 M/s; as above, 4-byte loads',
      ),
    );
  }

  // ---- 2. step(): working set 4x the TLB. 256 pages cycled in order: each of the 16 sets sees 16
  // pages round-robin, so LRU evicts every page before its next use and every load walks.
  if (runs('miss')) {
    const missPages = 4 * TLB.entries;
    const missAddrs = loadAddresses(missPages);
    const missScenario = loadScenario('bench-cpu-miss', missPages, missAddrs);
    rows.push(
      stepRow(
        'step(): 8-byte load, TLB miss + walk',
        missScenario,
        false,
        runProgram,
        '256 pages = 4x TLB, trace off',
      ),
    );
  }

  // ---- 4a. Baseline: bare Tlb.lookup, all hits, over the hit program's addresses.
  if (runs('tlb')) {
    const tlb = new Tlb(TLB);
    for (let i = 0; i < hitPages; i++) {
      tlb.fill(
        VirtAddr.newUnchecked(BASE + i * 4096),
        12,
        PhysAddr.newUnchecked(FRAME_BASE + i * 4096),
        0,
        TLB_WRITABLE,
      );
    }
    let misses = 0;
    const seconds = timeFreshRuns(
      RUNS,
      () => undefined,
      () => {
        let s = 0;
        for (let k = 0; k < STEPS; k++) {
          const slot = tlb.lookup(hitAddrs[k] as VirtAddr, 0);
          if (slot < 0) misses++;
          s += slot;
        }
        sink += s;
      },
    );
    if (misses !== 0) throw new Error(`baseline Tlb.lookup missed ${misses} times`);
    rows.push({
      name: 'baseline: bare Tlb.lookup, all hit',
      ops: STEPS,
      seconds,
      note: 'same run, same addresses; ref ≈ 30 M/s',
    });

    // The floor of a hit load with today's APIs: lookup, frame + offset, the validated 8-byte
    // RAM read `readInto` uses; no step(), no dispatch, no counters.
    const memory = Machine.fromScenario(hitScenario, { trace: false }).setup.memory;
    const out = new Uint32Array(2);
    const regs = new Uint32Array(2);
    const floor = timeFreshRuns(
      RUNS,
      () => undefined,
      () => {
        for (let k = 0; k < STEPS; k++) {
          const addr = hitAddrs[k] as VirtAddr;
          const slot = tlb.lookup(addr, 0);
          memory.loadEntryWords(tlb.physAddrOf(slot, addr), out);
          regs[0] = out[0]!;
          regs[1] = out[1]!;
        }
        sink += regs[0]!;
      },
    );
    rows.push({
      name: 'baseline: lookup + 8-byte RAM read',
      ops: STEPS,
      seconds: floor,
      note: 'the hit load minus step(); loadEntryWords = one 64-bit Atomics.load',
    });
  }

  // ---- 3. Walker.walk directly over hot tables, and 4b. the bare Atomics walk on the same tables.
  if (runs('walk')) {
    // 4096 pages over 8 level-1 tables (32 KiB of leaf tables: hot in L2). Frames alias 256 data
    // frames so the RAM stays small; the walker never touches the data.
    const pages = 4096;
    const s = scenario('bench-walk')
      .machine({ cpus: 1, tlb: { ...TLB } })
      .addressSpace('A', (as) => {
        for (let i = 0; i < pages; i++)
          as.map4k(BASE + i * 4096, FRAME_BASE + (i % 256) * 4096, 'PRESENT|WRITABLE');
      })
      .cpu('A')
      .build();
    const m = Machine.fromScenario(s, { trace: false });
    const memory = m.setup.memory;
    const p4 = m.setup.spaces.get('A')!.p4.startAddress as number;
    const walker = new Walker(memory);
    const ctl = { wp: true, nxe: true };

    // Addresses in pseudo-random page order (as bench/mapper.ts), with varying offsets.
    const order = new Float64Array(1 << 16);
    let seed = 12345;
    for (let i = 0; i < order.length; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      order[i] = BASE + (seed % pages) * 4096 + ((i * 8) % 4096);
    }
    const mask = order.length - 1;

    // Set ACCESSED on every entry the walks use, so the timed walks do no compare-exchange.
    for (let i = 0; i < pages; i++) walker.walk(p4, BASE + i * 4096, 'read', false, ctl);
    let adUpdates = 0;
    let bad = 0;
    const seconds = timeFreshRuns(
      RUNS,
      () => undefined,
      () => {
        let s = 0;
        for (let i = 0; i < WALKS; i++) {
          if (walker.walk(p4, order[i & mask]!, 'read', false, ctl) !== WalkOutcome.Ok) bad++;
          adUpdates += walker.adUpdates;
          s += walker.frame;
        }
        sink += s;
      },
    );
    if (bad !== 0 || adUpdates !== 0)
      throw new Error(`walks: ${bad} not Ok, ${adUpdates} A/D updates (expected 0)`);
    rows.push({
      name: 'Walker.walk, hot tables',
      ops: WALKS,
      seconds,
      note: 'goal ≥ 5 M/s; 4096 pages, 8 L1 tables, A bits preset (no CAS)',
    });

    // The floor: the same walks with raw Int32 Atomics.load and nothing else (bench/mapper.ts).
    const i32 = new Int32Array(memory.buffer);
    let mismatch = 0;
    const floor = timeFreshRuns(
      RUNS,
      () => undefined,
      () => {
        let s = 0;
        for (let i = 0; i < WALKS; i++) {
          const va = order[i & mask]!;
          let table = p4;
          for (let level = 4; level >= 1; level--) {
            const w = (table + indexAt(va, level as 1 | 2 | 3 | 4) * 8) / 4;
            const lo = Atomics.load(i32, w);
            const hi = Atomics.load(i32, w + 1);
            table = (hi & 0xfffff) * 4294967296 + (lo >>> 12) * 4096;
          }
          s += table;
        }
        sink += s;
      },
    );
    // Cross-check the floor against the walker on a few addresses.
    for (let i = 0; i < 64; i++) {
      const va = order[i]!;
      walker.walk(p4, va, 'read', false, ctl);
      let table = p4;
      for (let level = 4; level >= 1; level--) {
        const w = (table + indexAt(va, level as 1 | 2 | 3 | 4) * 8) / 4;
        table =
          (Atomics.load(i32, w + 1) & 0xfffff) * 4294967296 + (Atomics.load(i32, w) >>> 12) * 4096;
      }
      if (table !== walker.frame) mismatch++;
    }
    if (mismatch !== 0) throw new Error(`bare walk disagrees with Walker on ${mismatch} addresses`);
    rows.push({
      name: 'baseline: bare 4-level Atomics walk',
      ops: WALKS,
      seconds: floor,
      note: 'same run, same tables and order; ref ≈ 11 M/s',
    });
  }

  // ---- Trace cost on the hit-load path: off, on (ring never drained: the producer's cost), and
  // on with a drain after every step (what the deterministic host does).
  if (runs('trace')) {
    traceRows.push(
      stepRow('step() TLB-hit load, trace off', hitScenario, false, runProgram, 'as row 1'),
      stepRow(
        'step() TLB-hit load, trace on',
        hitScenario,
        true,
        runProgram,
        '3 records/load, ring not drained',
      ),
      stepRow(
        'step() TLB-hit load, trace on + drain',
        hitScenario,
        true,
        runProgramDraining,
        'drain() each step (deterministic host)',
      ),
    );
  }

  console.log(machineLine());
  if (rows.length > 0) printRateTable('bench/cpu.ts: one simulated CPU through step()', rows);
  if (traceRows.length > 0) printRateTable('bench/cpu.ts: trace cost on TLB-hit loads', traceRows);
  if (sink === 0.5) console.log(sink);
}

main();
