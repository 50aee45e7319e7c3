/**
 * The initial machine state of a scenario (`shared/spec/scenario.md` § File): zeroed RAM, the
 * shared lowest-free-first frame allocator, and each address space's page tables with its initial
 * mappings made, before any CPU starts.
 */

import { hex, PhysAddr, VirtAddr } from '../addr.ts';
import { MemoryError, PhysicalMemory } from '../memory/physical-memory.ts';
import { BitmapFrameAllocator } from '../paging/bitmap-frame-allocator.ts';
import { PhysFrame } from '../paging/frame.ts';
import { OffsetPageTable } from '../paging/mapper/offset-page-table.ts';
import { Page } from '../paging/page.ts';
import { type AnyPageSize, Size4KiB } from '../paging/page-size.ts';
import { CratePanic } from '../paging/panic.ts';
import { childPath, ScenarioError } from './load.ts';
import type { AddressSpaceSpec, InitialMapping, Scenario } from './scenario.ts';

/** One address space, ready for a CPU's CR3. */
export interface AddressSpaceState {
  readonly name: string;
  /** The PCID CR3 carries when `machine.pcid` is on. */
  readonly pcid: number;
  /** The level-4 table (what CR3 points to). */
  readonly p4: PhysFrame<Size4KiB>;
  /** A mapper over the space's tables; its flush target does nothing until a CPU attaches one. */
  readonly mapper: OffsetPageTable;
}

/** The state every CPU starts from. */
export interface ScenarioSetup {
  /** `machine.ramBytes` of RAM: zero except the page tables the initial mappings built. */
  readonly memory: PhysicalMemory;
  /**
   * Lowest-free-first over all of RAM (frame 0 included). In use: every frame an initial mapping
   * covers, every level-4 table, every intermediate table the mappings created.
   */
  readonly allocator: BitmapFrameAllocator;
  /** By name, in declaration order. */
  readonly spaces: Map<string, AddressSpaceState>;
}

const FRAME_BYTES = Size4KiB.bytes;

function mappingPath(space: AddressSpaceSpec, index: number): string {
  return childPath(childPath(childPath('address_spaces', space.name), 'map'), index);
}

function describeMapping(m: InitialMapping): string {
  return `${m.size.name} ${VirtAddr.hex(m.page)} -> ${hex(m.frame)}`;
}

/** The earlier mappings of `space` whose pages overlap mapping `index`, as `map[j] (…)`. */
function overlapping(space: AddressSpaceSpec, index: number): string {
  const m = space.map[index]!;
  const hits: string[] = [];
  for (let j = 0; j < index; j++) {
    const o = space.map[j]!;
    if (o.page < m.page + m.size.bytes && m.page < o.page + o.size.bytes) {
      hits.push(`map[${j}] (${describeMapping(o)})`);
    }
  }
  return hits.length === 0 ? '' : `: it overlaps ${hits.join(', ')}`;
}

/**
 * Builds the initial state, exactly in the spec's order:
 *
 * 1. RAM of `machine.ramBytes`, all zero, and a `BitmapFrameAllocator` over all of it. Frame 0 is
 *    an ordinary frame (nothing in the spec reserves it), so with no mapping covering it the first
 *    level-4 table is at physical 0x0, as in the replay samples.
 * 2. Every 4 KiB frame an initial mapping covers is reserved, once (aliases are allowed): a 2 MiB
 *    mapping reserves 512 frames, a 1 GiB one 262,144.
 * 3. The level-4 tables, in declaration order: all of them before any mapping, so they are the
 *    lowest free frames, in declaration order.
 * 4. The mappings, space by space in declaration order and each space's in file order, with
 *    `mapTo` (parent flags = leaf flags ∩ PRESENT|WRITABLE|USER_ACCESSIBLE, as the crate derives
 *    them); intermediate tables come from the same allocator. Each returned `MapperFlush` is
 *    `ignore()`d: no TLB holds anything yet, and no obligation is left pending in the ledger.
 *
 * `ram`, when given, is used instead of a fresh allocation: it must be all zero and exactly
 * `machine.ramBytes` long. Schedule exploration reuses one RAM across thousands of runs, because
 * a fresh 16 MiB `SharedArrayBuffer` per run gets slow once the first ones are freed: glibc then
 * raises its mmap threshold and serves the next ones from the heap, zeroing all 16 MiB each time
 * (measured 0.5 ms per run rising to 10-40 ms, with RSS growing by the RAM size per run).
 *
 * @throws ScenarioError naming the mapping (`address_spaces.A.map[2]`) whose `map_to` failed
 * (`PageAlreadyMapped`, `ParentEntryHugePage`, `FrameAllocationFailed`) or would make the crate
 * panic (leaf flags without PRESENT where a parent table is missing), naming the space when RAM
 * has no frame left for its level-4 table, or `machine.ram_bytes` when the host cannot allocate
 * the RAM.
 */
export function setupScenario(s: Scenario, ram?: PhysicalMemory): ScenarioSetup {
  const ramBytes = s.machine.ramBytes;
  let memory: PhysicalMemory;
  if (ram !== undefined) {
    if (ram.bytes !== ramBytes) {
      throw new RangeError(
        `setupScenario: the RAM given has ${ram.bytes} bytes, the scenario ${ramBytes}`,
      );
    }
    memory = ram;
  } else {
    try {
      memory = new PhysicalMemory(ramBytes);
    } catch (e) {
      if (e instanceof MemoryError) throw new ScenarioError('machine.ram_bytes', e.message);
      throw e;
    }
  }
  const allocator = BitmapFrameAllocator.create({ start: 0, end: ramBytes });

  let reserved = 0;
  for (const space of s.addressSpaces) {
    space.map.forEach((m, i) => {
      if (m.frame % m.size.bytes !== 0 || m.frame + m.size.bytes > ramBytes) {
        throw new ScenarioError(
          childPath(mappingPath(space, i), 'frame'),
          `the ${m.size.name} frame at ${hex(m.frame)} is not aligned or lies outside RAM [0x0, ${hex(ramBytes)})`,
        );
      }
      for (let a: number = m.frame; a < m.frame + m.size.bytes; a += FRAME_BYTES) {
        const frame = PhysFrame.fromStartAddressUnchecked(PhysAddr.newUnchecked(a), Size4KiB);
        // Aliases: a frame several mappings name is reserved once.
        if (!allocator.isAllocated(frame)) {
          allocator.reserve(frame);
          reserved++;
        }
      }
    });
  }

  const p4s = s.addressSpaces.map((space) => {
    const p4 = allocator.allocateFrame();
    if (p4 === undefined) {
      throw new ScenarioError(
        childPath('address_spaces', space.name),
        `no free frame for its level-4 table: the ${ramBytes / FRAME_BYTES} frames of RAM (${hex(ramBytes)} bytes) are taken (${reserved} by initial mappings): raise machine.ram_bytes`,
      );
    }
    memory.zeroFrame(p4.startAddress);
    return p4;
  });

  const spaces = new Map<string, AddressSpaceState>();
  s.addressSpaces.forEach((space, k) => {
    const p4 = p4s[k]!;
    const mapper = new OffsetPageTable(memory, p4);
    for (let i = 0; i < space.map.length; i++) {
      mapInitial(mapper, allocator, space, i, reserved, ramBytes);
    }
    spaces.set(space.name, { name: space.name, pcid: space.pcid, p4, mapper });
  });
  return { memory, allocator, spaces };
}

function mapInitial(
  mapper: OffsetPageTable,
  allocator: BitmapFrameAllocator,
  space: AddressSpaceSpec,
  index: number,
  reserved: number,
  ramBytes: number,
): void {
  const m = space.map[index]!;
  const path = mappingPath(space, index);
  const pageResult = Page.fromStartAddress(m.page, m.size as AnyPageSize);
  const frameResult = PhysFrame.fromStartAddress(m.frame, m.size as AnyPageSize);
  if (!pageResult.ok) throw new ScenarioError(childPath(path, 'page'), pageResult.error.message);
  if (!frameResult.ok) throw new ScenarioError(childPath(path, 'frame'), frameResult.error.message);
  let result: ReturnType<typeof mapper.mapTo<AnyPageSize>>;
  try {
    result = mapper.mapTo(pageResult.value, frameResult.value, m.flags, allocator);
  } catch (e) {
    if (e instanceof CratePanic) {
      throw new ScenarioError(
        path,
        `map_to of ${describeMapping(m)} would make the crate panic (${e.message}): leaf flags without PRESENT only work where an earlier mapping already created the parent tables`,
      );
    }
    throw e;
  }
  if (result.ok) {
    // Nothing is cached before the CPUs start, so there is nothing to invalidate.
    result.value.ignore();
    return;
  }
  const error = result.error;
  switch (error.kind) {
    case 'PageAlreadyMapped':
      throw new ScenarioError(
        path,
        `map_to of ${describeMapping(m)} failed with PageAlreadyMapped: the page is already mapped in address space ${space.name}${overlapping(space, index)}`,
      );
    case 'ParentEntryHugePage':
      throw new ScenarioError(
        path,
        `map_to of ${describeMapping(m)} failed with ParentEntryHugePage: a huge page of address space ${space.name} already covers it${overlapping(space, index)}`,
      );
    case 'FrameAllocationFailed':
      throw new ScenarioError(
        path,
        `map_to of ${describeMapping(m)} failed with FrameAllocationFailed: no free frame left for a page table (RAM holds ${ramBytes / FRAME_BYTES} frames, ${reserved} reserved by initial mappings): raise machine.ram_bytes`,
      );
  }
}
