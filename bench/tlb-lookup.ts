/**
 * Question: how many `Tlb.lookup`s per second does one simulated CPU get? An all-hit 4 KiB loop
 * (the fast path), a 4 KiB miss, a hit on a 2 MiB entry (the cold probe), and a bare typed-array
 * compare loop measured in the same run as the floor.
 *
 * Run: `npx tsx bench/tlb-lookup.ts [--runs N]`.
 */

import { PhysAddr, VirtAddr } from '../src/addr.ts';
import { TLB_GLOBAL, TLB_WRITABLE, Tlb } from '../src/cpu/tlb.ts';
import { type BenchRow, machineLine, printRateTable, timeRuns } from './harness.ts';

const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 7;
const LOOKUPS = 10_000_000;
const PAGES = 64;
/** Above 2^32, so the split-halves set-index arithmetic is on the measured path. */
const BASE = 0x7f12_3400_0000;

/** Addresses spread over the 64 cached pages, with varying offsets, precomputed. */
function addresses(base: number, pageBytes: number, pages: number): Float64Array {
  const out = new Float64Array(4096);
  for (let i = 0; i < out.length; i++) {
    out[i] = base + (i % pages) * pageBytes + ((i * 8) % pageBytes);
  }
  return out;
}

function main(): void {
  const tlb = new Tlb({ entries: 64, ways: 4 });
  for (let i = 0; i < PAGES; i++) {
    tlb.fill(
      VirtAddr.newUnchecked(BASE + i * 4096),
      12,
      PhysAddr.newUnchecked(i * 4096),
      1,
      (i & 1) === 0 ? TLB_WRITABLE : TLB_GLOBAL,
    );
  }
  const huge = new Tlb({ entries: 64, ways: 4 });
  for (let i = 0; i < 16; i++) {
    huge.fill(
      VirtAddr.newUnchecked(BASE + i * 2 ** 21),
      21,
      PhysAddr.newUnchecked(i * 2 ** 21),
      1,
      0,
    );
  }

  const hitAddrs = addresses(BASE, 4096, PAGES);
  const missAddrs = addresses(BASE + PAGES * 4096, 4096, 4096);
  const hugeAddrs = addresses(BASE, 2 ** 21, 16);
  const mask = hitAddrs.length - 1;

  const counters = { hits: 0, misses: 0 };
  const loop = (t: Tlb, addrs: Float64Array) => () => {
    let hits = 0;
    let misses = 0;
    for (let i = 0; i < LOOKUPS; i++) {
      if (t.lookup(addrs[i & mask] as VirtAddr, 1) >= 0) hits++;
      else misses++;
    }
    counters.hits += hits;
    counters.misses += misses;
  };

  // The floor: one 4-way compare of a Float64Array tag per lookup, no set-index arithmetic.
  const tags = new Float64Array(64).fill(-1);
  for (let i = 0; i < PAGES; i++) tags[i] = hitAddrs[i]!;
  let sink = 0;
  const bare = () => {
    let found = 0;
    for (let i = 0; i < LOOKUPS; i++) {
      const tag = hitAddrs[i & mask]!;
      const base = (i & 15) * 4;
      for (let w = base; w < base + 4; w++) {
        if (tags[w] === tag) {
          found++;
          break;
        }
      }
    }
    sink += found;
  };

  const rows: BenchRow[] = [];
  const row = (name: string, body: () => void, note: string) => {
    counters.hits = 0;
    counters.misses = 0;
    rows.push({ name, ops: LOOKUPS, seconds: timeRuns(RUNS, body), note });
    const total = counters.hits + counters.misses;
    if (total > 0) {
      rows[rows.length - 1] = {
        ...rows[rows.length - 1]!,
        note: `${note}; hits ${((100 * counters.hits) / total).toFixed(0)}%`,
      };
    }
  };
  row('lookup 4KiB all-hit', loop(tlb, hitAddrs), '64/4 TLB, 64 pages cached');
  row('lookup 4KiB miss', loop(tlb, missAddrs), 'no huge entries: one set probed');
  row('lookup 2MiB hit', loop(huge, hugeAddrs), '4 KiB probe misses, then 2 MiB');
  row('bare Float64Array 4-way compare', bare, 'floor, same run');

  console.log(machineLine());
  printRateTable('Tlb.lookup', rows);
  if (sink < 0) console.log(sink);
}

main();
