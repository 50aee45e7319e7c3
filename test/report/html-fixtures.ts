/**
 * Shared by the HTML report's tests: a generated scenario of many CPUs and thousands of trace
 * records (loads, stores, TLB maintenance, CR3 switches, remaps with shootdowns, A/D races), and a
 * reader of the real page-table entries the report's view is checked against.
 */

import type { PhysicalMemory } from '../../src/memory/physical-memory.ts';
import { scenario } from '../../src/scenarios/builder.ts';
import type { Protocol, Scenario } from '../../src/scenarios/scenario.ts';
import { Rng } from '../../src/smp/rng.ts';

/** Options of `generatedScenario`. */
export interface GeneratedOptions {
  readonly seed: number;
  readonly cpus: number;
  /** Phases; each ends with a remap window between two barriers. */
  readonly phases: number;
  /** Instructions per CPU per phase before the remap window. */
  readonly opsPerPhase: number;
  readonly pcid?: boolean;
  readonly tlb?: { entries: number; ways: number };
  readonly protocol?: Protocol;
}

const PAGES = 20;
const PAGE_BASE = 0x40_0000;
const FRAME_BASE = 0x20_0000;
/** A second frame per page, for remaps (aliases are allowed). */
const FRAME_ALT = 0x30_0000;
const HUGE_PAGE_ADDR = 0x4000_0000;
const HUGE_FRAME = 0x60_0000;

/** Every (space, page, size) a generated scenario can map, for comparing against real tables. */
export const GENERATED_PAGES: readonly { as: string; page: number; level: 1 | 2 }[] = [
  ...['A', 'B'].flatMap((as) =>
    Array.from({ length: PAGES }, (_, i) => ({
      as,
      page: PAGE_BASE + i * 0x1000,
      level: 1 as const,
    })),
  ),
  { as: 'A', page: HUGE_PAGE_ADDR, level: 2 },
];

/**
 * A scenario of `cpus` CPUs over two address spaces (A maps 20 pages, some GLOBAL, and a 2 MiB
 * page; B maps the same pages to other frames). In each phase every CPU runs random loads,
 * stores, invlpg, flush_all, toggle_pge, mov_cr3 (and invpcid with PCIDs); then CPU 0 remaps a
 * few pages of A (unmap, flush, map_to the other frame, flush), clears A/D with update_flags and
 * rewrites a level-2 entry while the others wait at a barrier, so no CPU faults.
 */
export function generatedScenario(o: GeneratedOptions): Scenario {
  const rng = new Rng(o.seed);
  const pick = <T>(xs: readonly T[]): T => xs[rng.below(xs.length)]!;
  const b = scenario(`generated-${o.seed}`)
    .describe(`A generated run: ${o.cpus} CPUs, ${o.phases} phases.`)
    .machine({
      cpus: o.cpus,
      pcid: o.pcid ?? false,
      tlb: o.tlb ?? { entries: 16, ways: 4 },
      protocol: o.protocol ?? 'sync-ipi',
    })
    .addressSpace('A', (as) => {
      for (let i = 0; i < PAGES; i++) {
        as.map4k(
          PAGE_BASE + i * 0x1000,
          FRAME_BASE + i * 0x1000,
          i % 5 === 0 ? 'PRESENT | WRITABLE | GLOBAL' : 'PRESENT | WRITABLE',
        );
      }
      as.map2m(HUGE_PAGE_ADDR, HUGE_FRAME, 'PRESENT | WRITABLE');
    })
    .addressSpace('B', (as) => {
      for (let i = 0; i < PAGES; i++)
        as.map4k(PAGE_BASE + i * 0x1000, FRAME_ALT + i * 0x1000, 'PRESENT | WRITABLE');
    });
  // Which frame each page of A maps now (CPU 0 flips them), so map_to always names the other one.
  const remapped = new Array<boolean>(PAGES).fill(false);
  for (let cpu = 0; cpu < o.cpus; cpu++) {
    b.cpu('A', (p) => {
      let space = 'A';
      for (let phase = 0; phase < o.phases; phase++) {
        for (let k = 0; k < o.opsPerPhase; k++) {
          const r = rng.below(100);
          const page = PAGE_BASE + rng.below(PAGES) * 0x1000;
          if (r < 40) p.load(page + 8 * rng.below(8), `r${rng.below(8)}` as 'r0');
          else if (r < 65) p.store(page, BigInt(phase * 1000 + k));
          else if (r < 70 && space === 'A') p.load(HUGE_PAGE_ADDR + 0x1000 * rng.below(512), 'r9');
          else if (r < 76) p.invlpg(page);
          else if (r < 80) p.flushAll();
          else if (r < 82) p.togglePge();
          else if (r < 90) {
            space = space === 'A' ? 'B' : 'A';
            p.movCr3(space, o.pcid && rng.below(2) === 0 ? { noflush: true } : {});
          } else if (r < 94 && o.pcid) {
            const pc = 1 + rng.below(2);
            if (rng.below(2) === 0) p.invpcid(0, pc, page);
            else p.invpcid(1, pc);
          } else p.load(page, 'r10');
        }
        p.barrier(`work-${phase}`);
        if (cpu === 0) {
          if (space !== 'A') {
            p.movCr3('A');
            space = 'A';
          }
          for (let j = 0; j < 2; j++) {
            const i = rng.below(PAGES);
            const page = PAGE_BASE + i * 0x1000;
            p.unmap('4KiB', page, 'r11').flush();
            remapped[i] = !remapped[i];
            p.mapTo(
              '4KiB',
              page,
              (remapped[i] ? FRAME_ALT : FRAME_BASE) + i * 0x1000,
              i % 5 === 0 ? 'PRESENT | WRITABLE | GLOBAL' : 'PRESENT | WRITABLE',
            ).flush();
          }
          // Clears ACCESSED/DIRTY on one leaf (the crate's update_flags race) and rewrites the
          // level-2 entry above the small pages, keeping it present.
          p.updateFlags(
            '4KiB',
            pick([PAGE_BASE, PAGE_BASE + 0x3000]),
            'PRESENT | WRITABLE',
          ).flush();
          if (phase % 3 === 0) p.setFlagsP2Entry('4KiB', PAGE_BASE, 'PRESENT | WRITABLE').flush();
        }
        p.barrier(`remapped-${phase}`);
      }
    });
  }
  return b.build();
}

const LEVEL_BYTES = [0, 2 ** 12, 2 ** 21, 2 ** 30, 2 ** 39];

/**
 * The real entry at `level` on the way to `addr` from the table at `p4`, as `{frame, flags}` of
 * its two 32-bit halves, or undefined when a table on the way (or the entry) is all zero. Follows
 * address fields whether or not PRESENT is set, so a cleared PRESENT still shows its entry.
 */
export function realEntry(
  memory: PhysicalMemory,
  p4: number,
  level: number,
  addr: number,
): { address: number; lo: number; hi: number } | undefined {
  const w = new Uint32Array(2);
  let table = p4;
  for (let l = 4; ; l--) {
    const entry = table + (Math.floor(addr / LEVEL_BYTES[l]!) % 512) * 8;
    memory.loadEntryWords(entry, w);
    const lo = w[0]!;
    const hi = w[1]!;
    if (lo === 0 && hi === 0) return undefined;
    // Bits 12..51: the low word's top 20 bits and the high word's low 20 bits.
    const address = (hi & 0xf_ffff) * 2 ** 32 + (lo >>> 12) * 4096;
    if (l === level) return { address, lo, hi };
    table = address;
  }
}

/**
 * Three CPUs cache two pages; CPU 0 unmaps the first and flushes (a shootdown, with IPIs to both
 * others), then unmaps the second and `ignore()`s the flush, so CPU 1's next load of it hits its
 * stale entry. Run under `sync-ipi`: both IPI arrows and a real stale-translation to show.
 */
export function teachingScenario(): Scenario {
  const p1 = 0x40_0000;
  const p2 = 0x40_1000;
  return scenario('flush-then-ignore')
    .describe(
      'CPU 0 unmaps two pages that CPUs 1 and 2 cache. The first flush() shoots both down; the second MapperFlush is ignore()d, so CPU 1 keeps using the stale translation.',
    )
    .machine({ cpus: 3, protocol: 'sync-ipi' })
    .addressSpace('A', (as) =>
      as.map4k(p1, 0x20_0000, 'PRESENT | WRITABLE').map4k(p2, 0x20_1000, 'PRESENT | WRITABLE'),
    )
    .cpu('A', (p) =>
      p
        .store(p1, 0x1111n)
        .store(p2, 0x2222n)
        .barrier('cached')
        .unmap('4KiB', p1, 'r1')
        .flush()
        .unmap('4KiB', p2, 'r2')
        .ignore()
        .barrier('unmapped'),
    )
    .cpu('A', (p) =>
      p.load(p1, 'r0').load(p2, 'r1').barrier('cached').barrier('unmapped').load(p2, 'r2'),
    )
    .cpu('A', (p) => p.load(p1, 'r0').barrier('cached').barrier('unmapped').load(p1, 'r1'))
    .build();
}
