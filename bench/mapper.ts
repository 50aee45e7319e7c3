/**
 * Question: how fast is the Mapper port? The 4 KiB map → translate → unmap cycle, random
 * translate_addr, the 2 MiB cycle and replay throughput, next to a bare 4-level Atomics walk
 * measured in the same run (the floor any translate pays on this machine).
 *
 * Run: `npm run bench` (or `npx tsx bench/mapper.ts [--runs N]`).
 */

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PhysAddr, VirtAddr } from '../src/addr.ts';
import { PhysicalMemory } from '../src/memory/physical-memory.ts';
import { PageTableFlags } from '../src/paging/flags.ts';
import { PhysFrame } from '../src/paging/frame.ts';
import { BumpFrameAllocator } from '../src/paging/frame-allocator.ts';
import { OffsetPageTable } from '../src/paging/mapper/offset-page-table.ts';
import { Page } from '../src/paging/page.ts';
import { Size2MiB, Size4KiB } from '../src/paging/page-size.ts';
import { indexAt } from '../src/paging/page-table-index.ts';
import { parseReplay } from '../src/replay/format.ts';
import { runReplay } from '../src/replay/run.ts';
import { type BenchRow, machineLine, printRateTable, timeRuns } from './harness.ts';

const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 7;
const PAGES = 65_536;
const BASE = 0x4000_0000; // 1 GiB: 65,536 pages span 128 level-1 tables
const FLAGS = PageTableFlags.of(PageTableFlags.PRESENT, PageTableFlags.WRITABLE);

function setup() {
  const memory = new PhysicalMemory(64 * 2 ** 20);
  const allocator = new BumpFrameAllocator(0x1000, 0x40_0000);
  const mapper = new OffsetPageTable(
    memory,
    PhysFrame.fromStartAddressUnchecked(PhysAddr.zero, Size4KiB),
  );
  const pages = Array.from({ length: PAGES }, (_, i) =>
    Page.fromStartAddressUnchecked(VirtAddr.newUnchecked(BASE + i * 4096), Size4KiB),
  );
  const frames = Array.from({ length: PAGES }, (_, i) =>
    PhysFrame.fromStartAddressUnchecked(
      PhysAddr.newUnchecked(0x100_0000_0000 + i * 4096),
      Size4KiB,
    ),
  );
  return { memory, allocator, mapper, pages, frames };
}

const rows: BenchRow[] = [];
let sink = 0;

// 4 KiB cycle. The warm-up pass (timeRuns' first call) creates the tables.
{
  const { mapper, allocator, pages, frames } = setup();
  const seconds = timeRuns(RUNS, () => {
    for (let i = 0; i < PAGES; i++) {
      const page = pages[i]!;
      const m = mapper.mapTo(page, frames[i]!, FLAGS, allocator);
      if (!m.ok) throw new Error('map failed');
      m.value.ignore();
      sink += mapper.translateAddr(page.startAddress)!;
      const u = mapper.unmap(page);
      if (!u.ok) throw new Error('unmap failed');
      u.value.flush.ignore();
    }
  });
  rows.push({
    name: '4KiB map_to→translate_addr→unmap',
    ops: PAGES,
    seconds,
    note: 'goal ≥ 3 M cycles/s; Rust crate ≈ 35 M',
  });
}

// Random translate_addr over 65,536 mapped pages, plus the bare walk floor on the same tables.
{
  const { memory, mapper, allocator, pages, frames } = setup();
  for (let i = 0; i < PAGES; i++) {
    const r = mapper.mapTo(pages[i]!, frames[i]!, FLAGS, allocator);
    if (!r.ok) throw new Error('map failed');
    r.value.ignore();
  }
  const N = 1 << 20;
  const order = new Float64Array(N);
  let seed = 12345;
  for (let i = 0; i < N; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    order[i] = BASE + (seed % PAGES) * 4096 + 0x123;
  }
  const seconds = timeRuns(RUNS, () => {
    for (let i = 0; i < N; i++) sink += mapper.translateAddr(order[i] as VirtAddr)!;
  });
  rows.push({
    name: 'translate_addr, random order',
    ops: N,
    seconds,
    note: 'goal ≥ 5 M/s; Rust crate ≈ 80 M/s',
  });

  // The floor: the same walk with raw Int32 Atomics.load and nothing else (no validation, no
  // checks, no API): what any translation through shared memory costs here.
  const i32 = new Int32Array(memory.buffer);
  const floor = timeRuns(RUNS, () => {
    for (let i = 0; i < N; i++) {
      const va = order[i]!;
      let table = 0;
      for (let level = 4; level >= 1; level--) {
        const w = (table + indexAt(va, level as 1 | 2 | 3 | 4) * 8) / 4;
        const lo = Atomics.load(i32, w);
        const hi = Atomics.load(i32, w + 1);
        table = (hi & 0xfffff) * 4294967296 + (lo >>> 12) * 4096;
      }
      sink += table;
    }
  });
  rows.push({
    name: 'baseline: bare 4-level Atomics walk',
    ops: N,
    seconds: floor,
    note: 'same run, same tables',
  });
}

// 2 MiB cycle.
{
  const memory = new PhysicalMemory(16 * 2 ** 20);
  const allocator = new BumpFrameAllocator(0x1000, 0x10_0000);
  const mapper = new OffsetPageTable(
    memory,
    PhysFrame.fromStartAddressUnchecked(PhysAddr.zero, Size4KiB),
  );
  const n = 4096;
  const pages = Array.from({ length: n }, (_, i) =>
    Page.fromStartAddressUnchecked(VirtAddr.newUnchecked(BASE + i * Size2MiB.bytes), Size2MiB),
  );
  const frames = Array.from({ length: n }, (_, i) =>
    PhysFrame.fromStartAddressUnchecked(
      PhysAddr.newUnchecked(0x100_0000_0000 + i * Size2MiB.bytes),
      Size2MiB,
    ),
  );
  const seconds = timeRuns(RUNS, () => {
    for (let r = 0; r < 16; r++) {
      for (let i = 0; i < n; i++) {
        const m = mapper.mapTo(pages[i]!, frames[i]!, FLAGS, allocator);
        if (!m.ok) throw new Error('map failed');
        m.value.ignore();
        const u = mapper.unmap(pages[i]!);
        if (!u.ok) throw new Error('unmap failed');
        u.value.flush.ignore();
      }
    }
  });
  rows.push({
    name: '2MiB map_to→unmap',
    ops: 16 * n,
    seconds,
    note: 'Rust crate ≈ 70 M cycles/s',
  });
}

// Replay throughput over the bundled samples (parse + run + render).
{
  const dir = new URL('../test/fixtures/replay-samples/', import.meta.url).pathname;
  const inputs = readdirSync(dir)
    .filter((f) => f.endsWith('.in.jsonl'))
    .map((f) => readFileSync(join(dir, f), 'utf8'));
  const opsPerPass = inputs.reduce((n, t) => n + t.trim().split('\n').length - 1, 0);
  const passes = 200;
  const seconds = timeRuns(RUNS, () => {
    for (let p = 0; p < passes; p++)
      for (const t of inputs) sink += runReplay(parseReplay(t)).lines.length;
  });
  rows.push({
    name: 'replay, 6 sample files',
    ops: passes * opsPerPass,
    seconds,
    note: 'ops/s incl. parsing, fresh RAM per file',
  });
}

console.log(machineLine());
printRateTable('bench/mapper.ts: Mapper port throughput', rows);
if (sink === 0.5) console.log(sink);
