/**
 * `OffsetPageTable` (the crate's `mapper/offset_page_table.rs`): a `MappedPageTable` whose tables
 * are reached at `physOffset + physical address`. In the simulator tables are read by physical
 * address, so the offset changes no result; it is kept for the crate's API and for printing.
 */

import { VirtAddr } from '../../addr.ts';
import type { PhysicalMemory } from '../../memory/physical-memory.ts';
import type { PhysFrame } from '../frame.ts';
import type { Size4KiB } from '../page-size.ts';
import { MappedPageTable, type MapperOptions } from './mapped-page-table.ts';

/** A page table whose frames are all mapped at a fixed virtual offset (crate `OffsetPageTable`). */
export class OffsetPageTable extends MappedPageTable {
  private readonly offset: VirtAddr;

  constructor(
    memory: PhysicalMemory,
    level4Frame: PhysFrame<Size4KiB>,
    physOffset: VirtAddr = VirtAddr.zero,
    options: MapperOptions = {},
  ) {
    super(memory, level4Frame, options);
    this.offset = physOffset;
  }

  /** The virtual address at which physical address 0 is mapped (crate `phys_offset`). */
  physOffset(): VirtAddr {
    return this.offset;
  }
}
