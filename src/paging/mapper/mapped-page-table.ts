/**
 * `MappedPageTable`: the crate's `mapper/mapped_page_table.rs` over simulated RAM. Every rule of
 * `shared/spec/x86_64-semantics.md` §6 and §8 lives here; `OffsetPageTable` only forwards.
 *
 * Tables are read and written by physical address in `PhysicalMemory`, with atomics, because CPU
 * walkers on other threads read them while they change. The hot paths allocate nothing but the
 * returned values: entries are handled as two 32-bit halves in a scratch array.
 *
 * Offsets and alignment use `x & (size - 1)`, never `x % size`: addresses are integers below
 * 2^52 and sizes powers of two up to 2^30, so the low bits that `&` keeps (after ToInt32, which is
 * modulo 2^32) are exactly the remainder, while `%` on a double is an fmod call (16 ns measured).
 */

import { type PhysAddr, VirtAddr } from '../../addr.ts';
import type { PhysicalMemory } from '../../memory/physical-memory.ts';
import { err, ok, type Result } from '../../result.ts';
import { PARENT_FLAGS_MASK, PageTableFlags } from '../flags.ts';
import { PhysFrame } from '../frame.ts';
import type { FrameAllocator, FrameDeallocator } from '../frame-allocator.ts';
import { Page, type PageRangeInclusive } from '../page.ts';
import { type AnyPageSize, type PageSize, Size1GiB, Size2MiB, Size4KiB } from '../page-size.ts';
import { entryAddr, entryHi, entryLo, PageTable } from '../page-table.ts';
import { indexAt, PageTableLevel } from '../page-table-index.ts';
import { CratePanic } from '../panic.ts';
import {
  type FlagUpdateError,
  FRAME_ALLOCATION_FAILED,
  type MapToError,
  PAGE_NOT_MAPPED,
  PARENT_ENTRY_HUGE_PAGE,
  TableFrameOutsideRam,
  type TranslateError,
  type UnmapError,
} from './errors.ts';
import {
  FlushLedger,
  type InvalidationTarget,
  MapperFlush,
  MapperFlushAll,
  NO_INVALIDATION,
} from './flush.ts';

const PRESENT = PageTableFlags.PRESENT as number;
const HUGE_PAGE = PageTableFlags.HUGE_PAGE as number;

// Outcomes of a walk step that are not a table address (negative, so never a valid address).
const NOT_MAPPED = -1;
const HUGE_PARENT = -2;
const ALLOCATION_FAILED = -3;

/** The frame a `translate` found, of whichever size the leaf maps (crate `MappedFrame`). */
export type MappedFrame = PhysFrame<Size4KiB> | PhysFrame<Size2MiB> | PhysFrame<Size1GiB>;

/** The result of `translate` (crate `TranslateResult`). */
export type TranslateResult =
  /** A leaf maps the address; `flags` are the leaf's own (parents not folded in). */
  | {
      readonly kind: 'Mapped';
      readonly frame: MappedFrame;
      readonly offset: number;
      readonly flags: PageTableFlags;
    }
  /** No leaf maps the address. */
  | { readonly kind: 'NotMapped' }
  /** The leaf's address is not valid for its size (unreachable without `memory_encryption`). */
  | { readonly kind: 'InvalidFrameAddress'; readonly addr: PhysAddr };

const NOT_MAPPED_RESULT: TranslateResult = Object.freeze({ kind: 'NotMapped' });

/** What `unmap` returns on success: the frame that was mapped and the flush obligation. */
export interface Unmapped<S extends PageSize> {
  readonly frame: PhysFrame<S>;
  readonly flush: MapperFlush<S>;
}

/** Options shared by the mapper implementations. */
export interface MapperOptions {
  /** Where `flush()` invalidates; a no-op until a CPU is attached. */
  readonly invalidation?: InvalidationTarget;
  /** Where flush obligations register; a fresh ledger per mapper by default. */
  readonly ledger?: FlushLedger;
}

/** The level whose entry is the leaf for a page size: 1 for 4 KiB, 2 for 2 MiB, 3 for 1 GiB. */
function leafLevel(size: PageSize): 1 | 2 | 3 {
  return size.shift === 12 ? 1 : size.shift === 21 ? 2 : 3;
}

function isDeallocator(a: FrameAllocator): a is FrameAllocator & FrameDeallocator {
  return typeof (a as Partial<FrameDeallocator>).deallocateFrame === 'function';
}

/**
 * A 4-level page table in simulated RAM, edited with the crate's `Mapper`, `Translate` and
 * `CleanUp` semantics for all three page sizes.
 *
 * @remarks Concurrency: several mappers (one per CPU thread) may edit the same tables at once.
 * New intermediate tables and new leaves are installed with a 64-bit compare-exchange from zero,
 * so a racing map either wins or sees the winner's entry (the loser gives its table frame back when
 * the allocator can take it). Flag updates are a read followed by a store, exactly as the crate's
 * `set_flags`, so they can overwrite ACCESSED/DIRTY bits a walker set in between: that race is
 * real on hardware and the simulator keeps it so the checker can show it.
 */
export class MappedPageTable {
  /** Where `flush()` of the obligations this mapper returns invalidates. */
  invalidation: InvalidationTarget;
  /** The ledger where this mapper's flush obligations register. */
  readonly flushLedger: FlushLedger;
  /** Intermediate tables this mapper allocated and then lost to a concurrent mapper. */
  lostTableRaces = 0;

  private readonly p4: number;
  // Scratch for one entry's halves: [0] = bits 0..31, [1] = bits 32..63.
  private readonly w = new Uint32Array(2);
  // Scratch for the table indices of the address being walked: [level] for levels 1..4.
  private readonly idx = new Uint16Array(5);

  constructor(
    /** The RAM holding every table. */
    readonly memory: PhysicalMemory,
    /** The frame of the level-4 table (what CR3 points to). */
    readonly level4Frame: PhysFrame<Size4KiB>,
    options: MapperOptions = {},
  ) {
    this.p4 = level4Frame.startAddress;
    if (this.p4 + 4096 > memory.bytes) {
      throw new TableFrameOutsideRam(-1, this.p4, memory.bytes);
    }
    this.invalidation = options.invalidation ?? NO_INVALIDATION;
    this.flushLedger = options.ledger ?? new FlushLedger();
  }

  /** A view of the level-4 table. */
  level4Table(): PageTable {
    return new PageTable(this.memory, this.level4Frame);
  }

  // ---- Mapper -------------------------------------------------------------------------------

  /**
   * Maps `page` to `frame` (crate `Mapper::map_to`): the parent tables get
   * `flags ∩ {PRESENT, WRITABLE, USER_ACCESSIBLE}`, nothing else of the leaf flags.
   */
  mapTo<S extends AnyPageSize>(
    page: Page<S>,
    frame: PhysFrame<NoInfer<S>>,
    flags: PageTableFlags,
    allocator: FrameAllocator,
  ): Result<MapperFlush<S>, MapToError<S>> {
    return this.mapToWithTableFlags(
      page,
      frame,
      flags,
      PageTableFlags.intersection(flags, PARENT_FLAGS_MASK),
      allocator,
    );
  }

  /**
   * Maps `page` to `frame`, creating missing parent tables with `parentTableFlags` and OR-ing
   * them into existing parents (crate `map_to_with_table_flags`). No rollback: tables created
   * before a failure stay linked, and flags OR-ed into parents stay set.
   *
   * @throws CratePanic where the crate panics: HUGE_PAGE in `parentTableFlags` on a new entry, a
   * parent left non-present, HUGE_PAGE in 4 KiB leaf flags on a free entry.
   */
  mapToWithTableFlags<S extends AnyPageSize>(
    page: Page<S>,
    frame: PhysFrame<NoInfer<S>>,
    flags: PageTableFlags,
    parentTableFlags: PageTableFlags,
    allocator: FrameAllocator,
  ): Result<MapperFlush<S>, MapToError<S>> {
    const leaf = leafLevel(page.size);
    const idx = this.indices(page.startAddress);
    const mem = this.memory;
    const w = this.w;
    let table = this.p4;
    for (let level = 4; level > leaf; level--) {
      const entry = table + idx[level]! * 8;
      mem.loadEntryWordsUnchecked(entry, w);
      const lo = w[0]!;
      const hi = w[1]!;
      // The common case, a present table entry that already has every flag to insert, needs no
      // write: create_next_table only reads it (crate `map_to_with_table_flags`).
      if (
        (lo & (PRESENT | HUGE_PAGE)) === PRESENT &&
        (PageTableFlags.fromEntryWords(lo, hi) & parentTableFlags) === parentTableFlags
      ) {
        table = this.nextTable(entry, lo, hi);
        continue;
      }
      table = this.createNextTable(entry, lo, hi, parentTableFlags, allocator);
      if (table === ALLOCATION_FAILED) return err(FRAME_ALLOCATION_FAILED);
      if (table === HUGE_PARENT) return err(PARENT_ENTRY_HUGE_PAGE);
    }
    const entry = table + idx[leaf]! * 8;
    let leafFlags = flags;
    if (leaf === 1) {
      // PageTableEntry::set_frame asserts that the flags lack HUGE_PAGE, but only a free entry
      // reaches it: a used one is PageAlreadyMapped first.
      if ((flags & HUGE_PAGE) !== 0) {
        this.memory.loadEntryWordsUnchecked(entry, this.w);
        if (this.w[0] !== 0 || this.w[1] !== 0) return err({ kind: 'PageAlreadyMapped', frame });
        throw new CratePanic('set_frame called with HUGE_PAGE in the flags of a 4KiB leaf');
      }
    } else {
      // Huge leaves are written with set_addr and get HUGE_PAGE added.
      leafFlags = (flags | HUGE_PAGE) as PageTableFlags;
    }
    const f = frame.startAddress;
    // "Not unused → PageAlreadyMapped, else write" as one compare-exchange from zero: no separate
    // read is needed, and a concurrent map of the same page on another CPU loses cleanly with
    // PageAlreadyMapped instead of silently overwriting the winner.
    if (
      !this.memory.compareExchangeEntryWords(
        entry,
        0,
        0,
        entryLo(f, leafFlags),
        entryHi(f, leafFlags),
      )
    ) {
      return err({ kind: 'PageAlreadyMapped', frame });
    }
    return ok(new MapperFlush(page, this.invalidation, this.flushLedger));
  }

  /**
   * Identity-maps `frame` (crate `Mapper::identity_map`).
   *
   * @throws CratePanic when the frame address is 2^47 or above (its page would not be canonical).
   */
  identityMap<S extends AnyPageSize>(
    frame: PhysFrame<S>,
    flags: PageTableFlags,
    allocator: FrameAllocator,
  ): Result<MapperFlush<S>, MapToError<S>> {
    const addr = VirtAddr.tryNew(frame.startAddress);
    if (!addr.ok) {
      throw new CratePanic(`identity_map: ${addr.error.message}`);
    }
    const page = Page.containingAddress(addr.value, frame.size as S);
    return this.mapTo(page, frame as PhysFrame<NoInfer<S>>, flags, allocator);
  }

  /** Unmaps `page` and returns the frame it mapped (crate `Mapper::unmap`); tables are never freed. */
  unmap<S extends AnyPageSize>(page: Page<S>): Result<Unmapped<S>, UnmapError> {
    const addr = page.startAddress;
    const leaf = leafLevel(page.size);
    const table = this.walkTo(addr, leaf);
    if (table === NOT_MAPPED) return err(PAGE_NOT_MAPPED);
    if (table === HUGE_PARENT) return err(PARENT_ENTRY_HUGE_PAGE);
    const entry = table + this.idx[leaf]! * 8;
    this.memory.loadEntryWordsUnchecked(entry, this.w);
    const lo = this.w[0]!;
    const a = entryAddr(lo, this.w[1]!);
    if ((lo & PRESENT) === 0) return err(PAGE_NOT_MAPPED);
    if (leaf === 1) {
      // PageTableEntry::frame: HugeFrame on a 4 KiB leaf is reported as ParentEntryHugePage.
      if ((lo & HUGE_PAGE) !== 0) return err(PARENT_ENTRY_HUGE_PAGE);
    } else {
      // A present level-2/3 entry without HUGE_PAGE is a table: the huge page is split.
      if ((lo & HUGE_PAGE) === 0) return err(PARENT_ENTRY_HUGE_PAGE);
      if ((a & (page.size.bytes - 1)) !== 0)
        return err({ kind: 'InvalidFrameAddress', addr: a as PhysAddr });
    }
    // set_unused: a plain store of zero, as the crate does (not a compare-exchange).
    this.memory.storeEntryWords(entry, 0, 0);
    return ok({
      frame: PhysFrame.fromStartAddressUnchecked(a as PhysAddr, page.size),
      flush: new MapperFlush(page, this.invalidation, this.flushLedger),
    });
  }

  /**
   * Replaces the leaf's flags, keeping its address (crate `Mapper::update_flags`). Huge sizes add
   * HUGE_PAGE and do not check that the entry really is a huge leaf, as the crate does.
   */
  updateFlags<S extends AnyPageSize>(
    page: Page<S>,
    flags: PageTableFlags,
  ): Result<MapperFlush<S>, FlagUpdateError> {
    const leaf = leafLevel(page.size);
    const r = this.setFlagsAt(
      page.startAddress,
      leaf,
      leaf === 1 ? flags : ((flags | HUGE_PAGE) as PageTableFlags),
    );
    return r === 0
      ? ok(new MapperFlush(page, this.invalidation, this.flushLedger))
      : err(this.flagError(r));
  }

  /** Replaces the flags of the level-4 entry on the way to `page` (crate `set_flags_p4_entry`). */
  setFlagsP4Entry(
    page: Page<AnyPageSize>,
    flags: PageTableFlags,
  ): Result<MapperFlushAll, FlagUpdateError> {
    return this.setUpperFlags(page.startAddress, 4, flags);
  }

  /** Replaces the flags of the level-3 entry (crate `set_flags_p3_entry`); always ParentEntryHugePage for 1 GiB pages. */
  setFlagsP3Entry(
    page: Page<AnyPageSize>,
    flags: PageTableFlags,
  ): Result<MapperFlushAll, FlagUpdateError> {
    if (page.size.shift === Size1GiB.shift) return err(PARENT_ENTRY_HUGE_PAGE);
    return this.setUpperFlags(page.startAddress, 3, flags);
  }

  /** Replaces the flags of the level-2 entry (crate `set_flags_p2_entry`); always ParentEntryHugePage for huge pages. */
  setFlagsP2Entry(
    page: Page<AnyPageSize>,
    flags: PageTableFlags,
  ): Result<MapperFlushAll, FlagUpdateError> {
    if (page.size.shift !== Size4KiB.shift) return err(PARENT_ENTRY_HUGE_PAGE);
    return this.setUpperFlags(page.startAddress, 2, flags);
  }

  /**
   * The frame `page` maps (crate `Mapper::translate_page`). PRESENT is not checked on the leaf;
   * huge sizes report `InvalidFrameAddress` when the leaf's address is not aligned to the size.
   */
  translatePage<S extends AnyPageSize>(page: Page<S>): Result<PhysFrame<S>, TranslateError> {
    const addr = page.startAddress;
    const leaf = leafLevel(page.size);
    const table = this.walkTo(addr, leaf);
    if (table === NOT_MAPPED) return err(PAGE_NOT_MAPPED);
    if (table === HUGE_PARENT) return err(PARENT_ENTRY_HUGE_PAGE);
    this.memory.loadEntryWordsUnchecked(table + this.idx[leaf]! * 8, this.w);
    const lo = this.w[0]!;
    const hi = this.w[1]!;
    if (lo === 0 && hi === 0) return err(PAGE_NOT_MAPPED);
    const a = entryAddr(lo, hi) as PhysAddr;
    if ((a & (page.size.bytes - 1)) !== 0) return err({ kind: 'InvalidFrameAddress', addr: a });
    return ok(PhysFrame.fromStartAddressUnchecked(a, page.size));
  }

  // ---- Translate ----------------------------------------------------------------------------

  /**
   * Translates any address (crate `Translate::translate`). A non-present but non-zero 4 KiB leaf
   * is reported `Mapped`; a non-present huge leaf is `NotMapped`, as in the crate.
   *
   * @throws CratePanic when the level-4 entry has HUGE_PAGE set.
   */
  translate(addr: VirtAddr): TranslateResult {
    const idx = this.indices(addr);
    let table = this.p4;
    for (let level = 4; level >= 2; level--) {
      const entry = table + idx[level]! * 8;
      this.memory.loadEntryWordsUnchecked(entry, this.w);
      const lo = this.w[0]!;
      if ((lo & PRESENT) === 0) return NOT_MAPPED_RESULT;
      if ((lo & HUGE_PAGE) !== 0) {
        if (level === 4) throw new CratePanic('level 4 entry has huge page bit set');
        const a = entryAddr(lo, this.w[1]!);
        // A huge leaf's frame is its address aligned down (never an error), as in the crate.
        const frame: MappedFrame =
          level === 3
            ? PhysFrame.containingAddress(a as PhysAddr, Size1GiB)
            : PhysFrame.containingAddress(a as PhysAddr, Size2MiB);
        return {
          kind: 'Mapped',
          frame,
          offset: addr & (frame.size.bytes - 1),
          flags: PageTableFlags.fromEntryWords(lo, this.w[1]!),
        };
      }
      table = this.nextTable(entry, lo, this.w[1]!);
    }
    this.memory.loadEntryWordsUnchecked(table + idx[1]! * 8, this.w);
    const lo = this.w[0]!;
    const hi = this.w[1]!;
    if (lo === 0 && hi === 0) return NOT_MAPPED_RESULT;
    return {
      kind: 'Mapped',
      frame: PhysFrame.fromStartAddressUnchecked(entryAddr(lo, hi) as PhysAddr, Size4KiB),
      offset: addr & 4095,
      flags: PageTableFlags.fromEntryWords(lo, hi),
    };
  }

  /**
   * The physical address `addr` translates to, or undefined (crate `Translate::translate_addr`).
   * Same rules as `translate`, without allocating a result.
   */
  translateAddr(addr: VirtAddr): PhysAddr | undefined {
    const idx = this.indices(addr);
    const mem = this.memory;
    const w = this.w;
    let table = this.p4;
    for (let level = 4; level >= 2; level--) {
      const entry = table + idx[level]! * 8;
      mem.loadEntryWordsUnchecked(entry, w);
      const lo = w[0]!;
      if ((lo & PRESENT) === 0) return undefined;
      if ((lo & HUGE_PAGE) !== 0) {
        if (level === 4) throw new CratePanic('level 4 entry has huge page bit set');
        const a = entryAddr(lo, w[1]!);
        const bytes = level === 3 ? Size1GiB.bytes : Size2MiB.bytes;
        return (a - (a & (bytes - 1)) + (addr & (bytes - 1))) as PhysAddr;
      }
      table = this.nextTable(entry, lo, w[1]!);
    }
    mem.loadEntryWordsUnchecked(table + idx[1]! * 8, w);
    if (w[0] === 0 && w[1] === 0) return undefined;
    return (entryAddr(w[0]!, w[1]!) + (addr & 4095)) as PhysAddr;
  }

  // ---- CleanUp ------------------------------------------------------------------------------

  /** Frees every empty page table below level 4 (crate `CleanUp::clean_up`). */
  cleanUp(deallocator: FrameDeallocator): void {
    const first = Page.fromStartAddressUnchecked(VirtAddr.zero, Size4KiB);
    const last = Page.fromStartAddressUnchecked(VirtAddr.newUnchecked(2 ** 48 - 4096), Size4KiB);
    this.cleanUpAddrRange(Page.rangeInclusive(first, last), deallocator);
  }

  /**
   * Frees the empty page tables whose span intersects `range` (crate `clean_up_addr_range`):
   * a child table that ends up with all 512 entries unused is unlinked and handed to
   * `deallocator`. Level-1 contents are never touched; huge and non-present entries are skipped.
   *
   * @remarks Like the crate's, this is only safe when no other address space shares these tables.
   */
  cleanUpAddrRange(range: PageRangeInclusive<Size4KiB>, deallocator: FrameDeallocator): void {
    this.cleanUpTable(
      this.p4,
      4,
      range.start.startAddress,
      range.end.startAddress,
      range.isEmpty(),
      deallocator,
    );
  }

  private cleanUpTable(
    table: number,
    level: PageTableLevel,
    first: number,
    last: number,
    empty: boolean,
    deallocator: FrameDeallocator,
  ): boolean {
    if (empty) return false;
    if (level > 1) {
      const span = PageTableLevel.entryAddressSpace(level);
      const tableBase = first - (first % PageTableLevel.tableAddressSpace(level));
      const from = indexAt(first, level);
      const to = indexAt(last, level);
      for (let i = from; i <= to; i++) {
        const entry = table + i * 8;
        this.memory.loadEntryWordsUnchecked(entry, this.w);
        const lo = this.w[0]!;
        if ((lo & PRESENT) === 0 || (lo & HUGE_PAGE) !== 0) continue;
        const child = this.tableAt(entry, entryAddr(lo, this.w[1]!));
        const childFirst = Math.max(tableBase + i * span, first);
        const childLast = Math.min(tableBase + i * span + span - 4096, last);
        if (
          this.cleanUpTable(
            child,
            (level - 1) as PageTableLevel,
            childFirst,
            childLast,
            childFirst > childLast,
            deallocator,
          )
        ) {
          this.memory.storeEntryWords(entry, 0, 0);
          deallocator.deallocateFrame(
            PhysFrame.fromStartAddressUnchecked(child as PhysAddr, Size4KiB),
          );
        }
      }
    }
    return new PageTable(
      this.memory,
      PhysFrame.fromStartAddressUnchecked(table as PhysAddr, Size4KiB),
    ).isEmpty();
  }

  // ---- walking ------------------------------------------------------------------------------

  /** Checks that a table an entry points to lies in RAM before anything reads it. */
  private tableAt(entry: number, table: number): number {
    if (table + 4096 > this.memory.bytes)
      throw new TableFrameOutsideRam(entry, table, this.memory.bytes);
    return table;
  }

  /**
   * `tableAt` for the table a present, non-huge entry (`lo`, `hi`, one atomic read) points to.
   * RAM is at most 4 GiB (`MAX_RAM_BYTES`), so a table inside it has address bits 32..51 (the low
   * 20 bits of `hi`) zero and its address is bits 12..31 of `lo`: an unsigned 32-bit integer
   * computed without double arithmetic. Any other entry points outside RAM and throws.
   */
  private nextTable(entry: number, lo: number, hi: number): number {
    const table = (lo & 0xffff_f000) >>> 0;
    if ((hi & 0xfffff) !== 0 || table + 4096 > this.memory.bytes)
      throw new TableFrameOutsideRam(entry, entryAddr(lo, hi), this.memory.bytes);
    return table;
  }

  /**
   * Walks from level 4 down to the table of `level` (1..4) and returns its address, or
   * NOT_MAPPED / HUGE_PARENT (the crate's `PageTableWalkError` variants). Leaves the indices of
   * `addr` in `idx`.
   */
  private walkTo(addr: number, level: number): number {
    const idx = this.indices(addr);
    const mem = this.memory;
    const w = this.w;
    let table = this.p4;
    for (let l = 4; l > level; l--) {
      const entry = table + idx[l]! * 8;
      mem.loadEntryWordsUnchecked(entry, w);
      const lo = w[0]!;
      if ((lo & PRESENT) === 0) return NOT_MAPPED;
      if ((lo & HUGE_PAGE) !== 0) return HUGE_PARENT;
      table = this.nextTable(entry, lo, w[1]!);
    }
    return table;
  }

  /**
   * Fills `idx` with the four table indices of `addr` (crate `p4_index()`..`p1_index()`), once
   * per call instead of once per level; `walkTo` leaves them there for its caller.
   */
  private indices(addr: number): Uint16Array {
    const idx = this.idx;
    idx[4] = indexAt(addr, 4);
    idx[3] = indexAt(addr, 3);
    idx[2] = indexAt(addr, 2);
    idx[1] = indexAt(addr, 1);
    return idx;
  }

  /**
   * The crate's `create_next_table`: returns the table below `entry`, creating it if the entry is
   * unused, or ALLOCATION_FAILED / HUGE_PARENT. `readLo`/`readHi` are the entry as the caller just read
   * it (one atomic load), so it is not read twice.
   */
  private createNextTable(
    entry: number,
    readLo: number,
    readHi: number,
    insertFlags: PageTableFlags,
    allocator: FrameAllocator,
  ): number {
    const mem = this.memory;
    let lo = readLo;
    let hi = readHi;
    let fresh = false;
    if (lo === 0 && hi === 0) {
      const frame = allocator.allocateFrame();
      if (frame === undefined) return ALLOCATION_FAILED;
      // PageTableEntry::set_frame asserts that the flags lack HUGE_PAGE.
      if ((insertFlags & HUGE_PAGE) !== 0) {
        throw new CratePanic(
          'set_frame called with HUGE_PAGE in the parent table flags of a new entry',
        );
      }
      const table = this.tableAt(entry, frame.startAddress);
      // Zeroed before it is linked, not after as in the crate: a walker on another CPU must never
      // follow the new entry into a table that still holds old bytes. Only differs when the
      // allocator hands out the very table that holds `entry`, which the crate forbids anyway.
      mem.zeroFrame(table);
      const newLo = entryLo(table, insertFlags);
      const newHi = entryHi(table, insertFlags);
      if (mem.compareExchangeEntryWords(entry, 0, 0, newLo, newHi)) {
        lo = newLo;
        hi = newHi;
        fresh = true;
      } else {
        // Another mapper linked a table here first: use theirs and give our frame back.
        this.lostTableRaces++;
        if (isDeallocator(allocator)) allocator.deallocateFrame(frame);
        mem.loadEntryWordsUnchecked(entry, this.w);
        lo = this.w[0]!;
        hi = this.w[1]!;
      }
    }
    if (!fresh && insertFlags !== 0) {
      const current = PageTableFlags.fromEntryWords(lo, hi);
      if ((current & insertFlags) !== insertFlags) {
        // set_flags(old | insert): flags are only ever added. An atomic OR keeps the address and
        // any ACCESSED bit a walker sets meanwhile.
        mem.fetchOrEntry(entry, PageTableFlags.bits(insertFlags));
        mem.loadEntryWordsUnchecked(entry, this.w);
        lo = this.w[0]!;
        hi = this.w[1]!;
      }
    }
    // The walk step checks PRESENT before HUGE_PAGE (the crate's `entry.frame()` reports
    // FrameNotPresent first), so a non-present huge entry panics rather than reporting a huge parent.
    if ((lo & PRESENT) === 0) throw new CratePanic('entry should be mapped at this point');
    if ((lo & HUGE_PAGE) !== 0) return HUGE_PARENT;
    return this.nextTable(entry, lo, hi);
  }

  /**
   * Walks to the entry at `level` and replaces its flags verbatim (crate `set_flags`): returns 0,
   * NOT_MAPPED (also when the target entry is unused) or HUGE_PARENT.
   */
  private setFlagsAt(addr: number, level: number, flags: PageTableFlags): number {
    const table = this.walkTo(addr, level);
    if (table < 0) return table;
    const entry = table + this.idx[level]! * 8;
    this.memory.loadEntryWordsUnchecked(entry, this.w);
    const lo = this.w[0]!;
    const hi = this.w[1]!;
    if (lo === 0 && hi === 0) return NOT_MAPPED;
    const a = entryAddr(lo, hi);
    // A read followed by a plain store, as the crate does: ACCESSED/DIRTY set by a walker between
    // the two is lost. Deliberate (see the class remarks).
    this.memory.storeEntryWords(entry, entryLo(a, flags), entryHi(a, flags));
    return 0;
  }

  private setUpperFlags(
    addr: number,
    level: 2 | 3 | 4,
    flags: PageTableFlags,
  ): Result<MapperFlushAll, FlagUpdateError> {
    const r = this.setFlagsAt(addr, level, flags);
    return r === 0
      ? ok(new MapperFlushAll(this.invalidation, this.flushLedger))
      : err(this.flagError(r));
  }

  private flagError(code: number): FlagUpdateError {
    return code === HUGE_PARENT ? PARENT_ENTRY_HUGE_PAGE : PAGE_NOT_MAPPED;
  }
}
