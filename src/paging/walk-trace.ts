/**
 * `traceWalk`: the entries a 4-level translation of one address reads, level by level, for
 * teaching output (`npm start`) and debugging. It reads; it never sets ACCESSED or DIRTY.
 */

import type { PhysAddr, VirtAddr } from '../addr.ts';
import type { PhysicalMemory } from '../memory/physical-memory.ts';
import { PageTableFlags } from './flags.ts';
import { PageTableEntry } from './page-table.ts';
import { indexAt, type PageTableIndex, type PageTableLevel } from './page-table-index.ts';

/** One entry the walk read. */
export interface WalkStep {
  readonly level: PageTableLevel;
  /** Physical address of the table the entry is in. */
  readonly table: PhysAddr;
  readonly index: PageTableIndex;
  readonly entry: PageTableEntry;
  /** What the walk does with the entry. */
  readonly outcome: 'next-table' | 'leaf' | 'not-present' | 'outside-ram';
}

/**
 * The entries the walk for `addr` reads, starting at the level-4 table `p4`: it stops at a
 * non-present entry, at a leaf (a level-1 entry or a HUGE_PAGE entry at level 2 or 3), or at a
 * table pointer that leaves RAM.
 */
export function traceWalk(memory: PhysicalMemory, p4: PhysAddr, addr: VirtAddr): WalkStep[] {
  const steps: WalkStep[] = [];
  let table = p4 as number;
  const w = new Uint32Array(2);
  for (let level = 4 as PageTableLevel; ; level = (level - 1) as PageTableLevel) {
    const index = indexAt(addr, level);
    memory.loadEntryWords(table + index * 8, w);
    const entry = new PageTableEntry(w[0]!, w[1]!);
    const flags = entry.flags();
    const base = { level, table: table as PhysAddr, index, entry };
    if (!PageTableFlags.contains(flags, PageTableFlags.PRESENT)) {
      steps.push({ ...base, outcome: 'not-present' });
      return steps;
    }
    if (level === 1 || (level < 4 && PageTableFlags.contains(flags, PageTableFlags.HUGE_PAGE))) {
      steps.push({ ...base, outcome: 'leaf' });
      return steps;
    }
    const next = entry.addr() as number;
    if (!memory.contains(next, 4096)) {
      steps.push({ ...base, outcome: 'outside-ram' });
      return steps;
    }
    steps.push({ ...base, outcome: 'next-table' });
    table = next;
  }
}
