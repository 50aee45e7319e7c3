/**
 * The simulated CPU's TLB: a set-associative, PCID-tagged cache of 4 KiB, 2 MiB and 1 GiB
 * translations, stored as flat typed arrays so a lookup is a few compares and allocates nothing.
 *
 * Layout (v86 style, STYLE.md C.2 and E.6): one slot per entry, `slot = set * ways + way`, and one
 * typed array per field. A 4 KiB, a 2 MiB and a 1 GiB entry share the same arrays; an entry of size
 * shift `s` lives in set `floor(pageStart / 2^s) mod sets`, so each page has exactly one home set.
 *
 * Semantics (Intel SDM Vol. 3A §4.10, DESIGN.md decision 4):
 * - an entry answers a lookup of `addr` under `pcid` if `addr` lies in its page and it is GLOBAL or
 *   carries that PCID (§4.10.1, §4.10.2.4: a global entry may be used under any PCID);
 * - `invlpg` evicts every size of entry for the address, global ones included (§4.10.4.1);
 * - a CR3 write evicts non-global entries only (§4.10.4.1); the PCID no-flush bit is the CPU's
 *   business (it simply does not call `flushNonGlobal`);
 * - toggling CR4.PGE evicts everything (`flushAll`, §4.10.4.1);
 * - INVPCID types 0..3 as in the SDM Vol. 2B instruction reference.
 */

import { hex, type PhysAddr, TWO_POW_32, type VirtAddr } from '../addr.ts';
import { PageTableFlags } from '../paging/flags.ts';
import type { PageSize } from '../paging/page-size.ts';

/**
 * When true, every mutating method re-checks the whole TLB with `checkInvariants` (v86's
 * `CHECK_TLB_INVARIANTS`, STYLE.md E.7). Off by default: the checks cost a full scan per call.
 */
export const CHECK_TLB_INVARIANTS = false;

/** Attribute bit: the slot holds an entry (set by `fill`; never passed in `attrBits`). */
export const TLB_VALID = 1 << 0;
/**
 * Attribute bit: the entry survives CR3 writes and answers lookups under every PCID
 * (SDM §4.10.2.4).
 */
export const TLB_GLOBAL = 1 << 1;
/** Attribute bit: writes allowed (the AND of R/W over every level of the walk, SDM §4.6). */
export const TLB_WRITABLE = 1 << 2;
/** Attribute bit: CPL-3 accesses allowed (the AND of U/S over every level, SDM §4.6). */
export const TLB_USER = 1 << 3;
/** Attribute bit: instruction fetches fault (XD set at any level, SDM §4.6). */
export const TLB_NX = 1 << 4;
/**
 * Attribute bit: the leaf's DIRTY was set when the entry was cached. A write through an entry
 * without it must re-walk to set DIRTY in memory (SDM §4.8), which is what makes lost-dirty-bit
 * hazards observable.
 */
export const TLB_DIRTY = 1 << 5;
/** Position of the 2-bit size class in an attribute word (0 = 4 KiB, 1 = 2 MiB, 2 = 1 GiB). */
export const TLB_SIZE_CLASS_SHIFT = 6;
/** Mask of the size class in an attribute word. */
export const TLB_SIZE_CLASS_MASK = 3 << TLB_SIZE_CLASS_SHIFT;
/** The attribute bits a caller may pass to `fill` (VALID and the size class are the TLB's own). */
export const TLB_FILL_ATTR_MASK = TLB_GLOBAL | TLB_WRITABLE | TLB_USER | TLB_NX | TLB_DIRTY;
/** The largest PCID: PCIDs are 12 bits (CR3 bits 0..11, SDM §4.10.1). */
export const MAX_PCID = 4095;
/** The largest TLB `new Tlb` accepts (a sanity bound: 16 Mi entries take ~480 MiB of arrays). */
export const TLB_MAX_ENTRIES = 2 ** 24;

/** Offset masks by size class (4 KiB, 2 MiB, 1 GiB). */
const SIZE_MASKS = [0xfff, 0x1f_ffff, 0x3fff_ffff] as const;

const ALL_ATTR_BITS = TLB_VALID | TLB_FILL_ATTR_MASK | TLB_SIZE_CLASS_MASK;
const TWO_POW_48 = 2 ** 48;
const TWO_POW_52 = 2 ** 52;
/** Tag of an empty slot: no page start (all ≥ 0) ever equals it. */
const INVALID_TAG = -1;

/** The page sizes a TLB entry can have, by their log2 (the `shift` of `Size4KiB` & co.). */
export type TlbSizeShift = PageSize['shift'];

/**
 * Called with a slot just before the entry in it is evicted, so the caller can read the victim
 * through the accessors (`pageStartOf`, `frameOf`, …) and record a trace event without the TLB
 * allocating anything. The hook must not modify the TLB.
 */
export type TlbEvictHook = (slot: number) => void;

/**
 * The INVPCID invalidation types (SDM Vol. 2B, INVPCID): 0 individual address, 1 single context,
 * 2 all contexts including globals, 3 all contexts except globals.
 */
export type InvpcidType = 0 | 1 | 2 | 3;

/** The geometry of a TLB: `entries / ways` sets of `ways` entries each. */
export interface TlbConfig {
  /** Total number of entries; a multiple of `ways` such that `entries / ways` is a power of two. */
  readonly entries: number;
  /** Associativity (entries per set), ≥ 1; `ways === entries` makes the TLB fully associative. */
  readonly ways: number;
}

/** A copy of one valid entry, for inspection and printing (`Tlb.entries`). */
export interface TlbEntrySnapshot {
  /** `set * ways + way`, the handle every accessor takes. */
  readonly slot: number;
  /** The set the entry lives in: its page number modulo the number of sets. */
  readonly set: number;
  /** The way within the set (0..ways-1). */
  readonly way: number;
  /** The first byte of the cached page. */
  readonly pageStart: VirtAddr;
  readonly sizeShift: TlbSizeShift;
  /** The first byte of the frame the page maps to. */
  readonly frame: PhysAddr;
  readonly pcid: number;
  readonly global: boolean;
  readonly writable: boolean;
  readonly user: boolean;
  readonly nx: boolean;
  readonly dirty: boolean;
  /** The use-clock value of the last fill or lookup hit (larger is more recent). */
  readonly lastUse: number;
}

/** Thrown by `new Tlb` for an impossible geometry; the message names the values and the rule. */
export class TlbConfigError extends Error {
  override readonly name = 'TlbConfigError';
  constructor(
    readonly entries: number,
    readonly ways: number,
    readonly rule: string,
  ) {
    super(`TLB config { entries: ${entries}, ways: ${ways} } is invalid: ${rule}`);
  }
}

/** Thrown by `Tlb.checkInvariants` when the TLB's arrays break one of its invariants (a bug). */
export class TlbInvariantViolation extends Error {
  override readonly name = 'TlbInvariantViolation';
}

/**
 * The TLB attribute bits (GLOBAL, WRITABLE, USER, NX, DIRTY) of a set of page-table flags, for a
 * walker whose flags are already the effective ones (permissions narrowed over every level).
 * GLOBAL must only be passed when CR4.PGE is set (SDM §4.10.2.4): mask it off otherwise.
 */
export function tlbAttrOf(flags: PageTableFlags): number {
  let attr = 0;
  if ((flags & PageTableFlags.GLOBAL) !== 0) attr |= TLB_GLOBAL;
  if ((flags & PageTableFlags.WRITABLE) !== 0) attr |= TLB_WRITABLE;
  if ((flags & PageTableFlags.USER_ACCESSIBLE) !== 0) attr |= TLB_USER;
  if ((flags & PageTableFlags.NO_EXECUTE) !== 0) attr |= TLB_NX;
  if ((flags & PageTableFlags.DIRTY) !== 0) attr |= TLB_DIRTY;
  return attr;
}

function shiftOfClass(sizeClass: number): TlbSizeShift {
  return sizeClass === 0 ? 12 : sizeClass === 1 ? 21 : 30;
}

function validateConfig(entries: number, ways: number): number {
  const fail = (rule: string): never => {
    throw new TlbConfigError(entries, ways, rule);
  };
  if (!Number.isInteger(ways) || ways < 1) fail('ways must be an integer ≥ 1');
  if (!Number.isInteger(entries) || entries < 1) fail('entries must be an integer ≥ 1');
  if (entries > TLB_MAX_ENTRIES) fail(`entries must be at most ${TLB_MAX_ENTRIES} (2^24)`);
  if (entries % ways !== 0) fail('entries must be a multiple of ways (sets = entries / ways)');
  const sets = entries / ways;
  if ((sets & (sets - 1)) !== 0) {
    fail(
      `sets = entries / ways = ${sets} must be a power of two ≥ 1 (the set index is a bit mask)`,
    );
  }
  return sets;
}

/**
 * A set-associative TLB with LRU replacement within a set, tagged by PCID, holding all three page
 * sizes. Entries are named by their slot (`set * ways + way`); a slot number stays meaningful only
 * until the next `fill` or invalidation.
 *
 * Invariants (checked by `checkInvariants`): an empty slot has tag -1 and attribute 0; a valid
 * entry has VALID, a size class 0..2, a page start aligned to its size and below 2^48, a frame
 * aligned to its size and below 2^52, a PCID ≤ 4095, and sits in the home set of its page; no two
 * valid entries of one set would answer the same lookup (same page and size, and the same PCID or
 * either of them GLOBAL).
 *
 * @remarks Not thread-safe and not meant to be: each simulated CPU owns its TLB privately, as
 * hardware does; other CPUs reach it only through shootdown IPIs handled at step boundaries.
 */
export class Tlb {
  /** Total number of entries (`sets * ways`). */
  readonly capacity: number;
  /** Entries per set. */
  readonly ways: number;
  /** Number of sets, a power of two. */
  readonly sets: number;

  private readonly setMask: number;
  /**
   * `pageStart + sizeClass`, or -1 when empty. Page starts are multiples of 4096, so adding the
   * size class keeps them distinct and lets one `===` check the page and its size at once (the
   * single-compare fast path of STYLE.md E.6).
   */
  private readonly tags: Float64Array;
  private readonly frames: Float64Array;
  private readonly pcids: Uint16Array;
  private readonly attrs: Int32Array;
  /** Use-clock value of each slot's last fill or hit; Float64 so it never wraps (2^53 uses). */
  private readonly lru: Float64Array;
  private clock = 0;
  private validTotal = 0;
  /** Valid 2 MiB and 1 GiB entries: a 4 KiB miss skips their probes while these are 0. */
  private valid2M = 0;
  private valid1G = 0;

  private evictedPageStart = 0;
  private evictedSizeShift: TlbSizeShift = 12;
  private evictedFrame = 0;
  private evictedPcid = 0;
  private evictedAttr = 0;
  private fillEvicted = false;
  private fillRefreshed = false;
  private fillEvictions = 0;

  /** Builds an empty TLB; throws `TlbConfigError` unless `entries / ways` is a power of two. */
  constructor(config: TlbConfig) {
    const sets = validateConfig(config.entries, config.ways);
    this.capacity = config.entries;
    this.ways = config.ways;
    this.sets = sets;
    this.setMask = sets - 1;
    this.tags = new Float64Array(this.capacity).fill(INVALID_TAG);
    this.frames = new Float64Array(this.capacity);
    this.pcids = new Uint16Array(this.capacity);
    this.attrs = new Int32Array(this.capacity);
    this.lru = new Float64Array(this.capacity);
  }

  // ---------------------------------------------------------------- lookup (the hot path)

  /**
   * The slot of the entry that translates `addr` under `pcid`, or -1 on a miss. Probes the 4 KiB
   * set, then the 2 MiB set, then the 1 GiB set, so when entries of several sizes cover `addr`
   * (possible only after a remap without invalidation, where the SDM does not say which one
   * hardware uses) the smallest wins, deterministically. A hit counts as a use for LRU. Allocates
   * nothing.
   */
  lookup(addr: VirtAddr, pcid: number): number {
    const slot = this.probe(addr, pcid);
    if (slot >= 0) this.lru[slot] = ++this.clock;
    return slot;
  }

  /** Like `lookup` but not a use: LRU order is untouched (for checkers and printers). */
  peek(addr: VirtAddr, pcid: number): number {
    return this.probe(addr, pcid);
  }

  private probe(addr: number, pcid: number): number {
    // Split into 32-bit halves: JS bitwise operators truncate to 32 bits, and addr reaches 2^48.
    // `>>> 0` truncates the non-negative quotient like Math.floor, and faster.
    const hi = (addr / TWO_POW_32) >>> 0;
    const lo = addr - hi * TWO_POW_32;
    const ways = this.ways;
    const tags = this.tags;
    const tag4 = addr - (lo & 0xfff);
    let slot = (((lo >>> 12) | (hi << 20)) & this.setMask) * ways;
    for (const end = slot + ways; slot < end; slot++) {
      if (
        tags[slot] === tag4 &&
        ((this.attrs[slot] & TLB_GLOBAL) !== 0 || this.pcids[slot] === pcid)
      ) {
        return slot;
      }
    }
    if (this.valid2M + this.valid1G === 0) return -1;
    return this.probeHuge(addr, hi, lo, pcid);
  }

  /** The cold part of a lookup (STYLE.md E.6): the 2 MiB and 1 GiB sets. */
  private probeHuge(addr: number, hi: number, lo: number, pcid: number): number {
    const ways = this.ways;
    const tags = this.tags;
    if (this.valid2M !== 0) {
      const tag = addr - (lo & 0x1f_ffff) + 1;
      let slot = (((lo >>> 21) | (hi << 11)) & this.setMask) * ways;
      for (const end = slot + ways; slot < end; slot++) {
        if (
          tags[slot] === tag &&
          ((this.attrs[slot] & TLB_GLOBAL) !== 0 || this.pcids[slot] === pcid)
        ) {
          return slot;
        }
      }
    }
    if (this.valid1G !== 0) {
      const tag = addr - (lo & 0x3fff_ffff) + 2;
      let slot = (((lo >>> 30) | (hi << 2)) & this.setMask) * ways;
      for (const end = slot + ways; slot < end; slot++) {
        if (
          tags[slot] === tag &&
          ((this.attrs[slot] & TLB_GLOBAL) !== 0 || this.pcids[slot] === pcid)
        ) {
          return slot;
        }
      }
    }
    return -1;
  }

  // ---------------------------------------------------------------- accessors by slot

  /** The first byte of the frame the entry in `slot` maps to. */
  frameOf(slot: number): PhysAddr {
    return this.frames[slot] as PhysAddr;
  }

  /** The attribute word of `slot`: the `TLB_*` bits plus the size class; 0 for an empty slot. */
  attrOf(slot: number): number {
    return this.attrs[slot];
  }

  /** The first byte of the page cached in `slot`. */
  pageStartOf(slot: number): VirtAddr {
    return (this.tags[slot] -
      ((this.attrs[slot] & TLB_SIZE_CLASS_MASK) >> TLB_SIZE_CLASS_SHIFT)) as VirtAddr;
  }

  /** The page size of the entry in `slot`, as a shift (12, 21 or 30). */
  sizeShiftOf(slot: number): TlbSizeShift {
    return shiftOfClass((this.attrs[slot] & TLB_SIZE_CLASS_MASK) >> TLB_SIZE_CLASS_SHIFT);
  }

  /** The PCID the entry in `slot` was filled under. */
  pcidOf(slot: number): number {
    return this.pcids[slot];
  }

  /** True if `slot` holds an entry. */
  isValid(slot: number): boolean {
    return this.tags[slot] !== INVALID_TAG;
  }

  /** The physical address `addr` translates to through the entry in `slot` (frame + offset). */
  physAddrOf(slot: number, addr: VirtAddr): PhysAddr {
    return (this.frames[slot] + (addr - this.pageStartOf(slot))) as PhysAddr;
  }

  /**
   * Marks the entry in `slot` dirty, after the walker has set DIRTY in the leaf entry in memory
   * (SDM §4.8: the processor sets D in the paging structure, then may cache it).
   */
  setDirty(slot: number): void {
    if (this.tags[slot] === INVALID_TAG) throw new RangeError(`TLB slot ${slot} is empty`);
    this.attrs[slot] |= TLB_DIRTY;
  }

  // ---------------------------------------------------------------- fill

  /**
   * Caches a translation and returns its slot. The slot is, in order of preference: the slot of an
   * entry of the same page and size that answers the same lookups (same PCID, or either entry
   * GLOBAL), which is refreshed in place; else the first empty way of the page's set; else the
   * set's least recently used way. A fill counts as a use.
   *
   * If a valid entry was overwritten, `lastFillEvicted` is true and `lastEvicted*` describe it.
   * `onEvict` sees every evicted slot before it changes: the overwritten one, plus (rarely) further
   * conflicting duplicates, e.g. non-global copies under other PCIDs when a GLOBAL entry arrives.
   *
   * `attrBits` is a combination of `TLB_FILL_ATTR_MASK` bits. Throws `RangeError` on a misaligned
   * page or frame, a bad size, a PCID above 4095 or unknown attribute bits.
   */
  fill(
    pageStart: VirtAddr,
    sizeShift: TlbSizeShift,
    frame: PhysAddr,
    pcid: number,
    attrBits: number,
    onEvict?: TlbEvictHook,
  ): number {
    const sizeClass = sizeShift === 12 ? 0 : sizeShift === 21 ? 1 : sizeShift === 30 ? 2 : -1;
    if (sizeClass < 0)
      throw new RangeError(`TLB fill: size shift ${sizeShift} is not 12, 21 or 30`);
    // A table, not `2 ** sizeShift` (46 ns measured with a variable exponent), and `&` for the
    // alignment checks (bytes - 1 < 2^31, and `&` keeps the low 32 bits of any safe integer).
    const mask = SIZE_MASKS[sizeClass as 0 | 1 | 2];
    if (
      !Number.isSafeInteger(pageStart) ||
      pageStart < 0 ||
      pageStart >= TWO_POW_48 ||
      (pageStart & mask) !== 0
    ) {
      throw new RangeError(
        `TLB fill: page start ${hex(pageStart)} is not a 2^${sizeShift}-aligned address below 2^48`,
      );
    }
    if (!Number.isSafeInteger(frame) || frame < 0 || frame >= TWO_POW_52 || (frame & mask) !== 0) {
      throw new RangeError(
        `TLB fill: frame ${hex(frame)} is not a 2^${sizeShift}-aligned address below 2^52`,
      );
    }
    if (!Number.isInteger(pcid) || pcid < 0 || pcid > MAX_PCID) {
      throw new RangeError(`TLB fill: PCID ${pcid} is not an integer in 0..${MAX_PCID}`);
    }
    if ((attrBits & ~TLB_FILL_ATTR_MASK) !== 0) {
      throw new RangeError(
        `TLB fill: attribute bits 0x${attrBits.toString(16)} outside TLB_FILL_ATTR_MASK`,
      );
    }

    const tag = pageStart + sizeClass;
    const base = this.setOf(pageStart, sizeShift) * this.ways;
    const end = base + this.ways;
    const global = (attrBits & TLB_GLOBAL) !== 0;
    const tags = this.tags;
    this.fillEvictions = 0;

    let target = -1;
    for (let slot = base; slot < end; slot++) {
      if (
        tags[slot] === tag &&
        (global || (this.attrs[slot] & TLB_GLOBAL) !== 0 || this.pcids[slot] === pcid)
      ) {
        if (target < 0) {
          target = slot;
        } else {
          // A second conflicting entry: after this fill the new entry alone must answer.
          this.evict(slot, onEvict);
          this.fillEvictions++;
        }
      }
    }
    this.fillRefreshed = target >= 0;
    if (target < 0) {
      for (let slot = base; slot < end; slot++) {
        if (tags[slot] === INVALID_TAG) {
          target = slot;
          break;
        }
      }
    }
    if (target < 0) {
      target = base;
      for (let slot = base + 1; slot < end; slot++) {
        if (this.lru[slot] < this.lru[target]) target = slot;
      }
    }

    this.fillEvicted = tags[target] !== INVALID_TAG;
    if (this.fillEvicted) {
      this.evictedPageStart = this.pageStartOf(target);
      this.evictedSizeShift = this.sizeShiftOf(target);
      this.evictedFrame = this.frames[target];
      this.evictedPcid = this.pcids[target];
      this.evictedAttr = this.attrs[target];
      this.evict(target, onEvict);
      this.fillEvictions++;
    }

    tags[target] = tag;
    this.frames[target] = frame;
    this.pcids[target] = pcid;
    this.attrs[target] = TLB_VALID | attrBits | (sizeClass << TLB_SIZE_CLASS_SHIFT);
    this.lru[target] = ++this.clock;
    this.countIn(sizeClass, 1);
    if (CHECK_TLB_INVARIANTS) this.checkInvariants();
    return target;
  }

  /** True if the last `fill` overwrote a valid entry (described by the `lastEvicted*` getters). */
  get lastFillEvicted(): boolean {
    return this.fillEvicted;
  }

  /**
   * True if the last `fill` refreshed an entry for the same page, size and PCID (or GLOBAL) in
   * place, rather than evicting another page to make room.
   */
  get lastFillRefreshed(): boolean {
    return this.fillRefreshed;
  }

  /** How many valid entries the last `fill` evicted (0 or 1; more only for conflicting copies). */
  get lastFillEvictions(): number {
    return this.fillEvictions;
  }

  /** Page start of the entry the last evicting `fill` overwrote. */
  get lastEvictedPageStart(): VirtAddr {
    return this.evictedPageStart as VirtAddr;
  }

  /** Size of the entry the last evicting `fill` overwrote. */
  get lastEvictedSizeShift(): TlbSizeShift {
    return this.evictedSizeShift;
  }

  /** Frame of the entry the last evicting `fill` overwrote. */
  get lastEvictedFrame(): PhysAddr {
    return this.evictedFrame as PhysAddr;
  }

  /** PCID of the entry the last evicting `fill` overwrote. */
  get lastEvictedPcid(): number {
    return this.evictedPcid;
  }

  /** Attribute word (with VALID and size class) of the entry the last evicting `fill` overwrote. */
  get lastEvictedAttr(): number {
    return this.evictedAttr;
  }

  // ---------------------------------------------------------------- invalidation

  /**
   * INVLPG: evicts every entry, of any size, that translates `addr` under `pcid`, GLOBAL entries
   * included (SDM §4.10.4.1). Entries of other PCIDs survive (the SDM allows but does not require
   * evicting them). Returns the number evicted.
   */
  invlpg(addr: VirtAddr, pcid: number, onEvict?: TlbEvictHook): number {
    return this.evictAddress(addr, pcid, false, onEvict);
  }

  /**
   * A CR3 write: evicts the non-global entries of `pcid`, or of every PCID when `pcid` is
   * undefined (CR4.PCIDE off, where every entry carries PCID 0, SDM §4.10.1). GLOBAL entries
   * survive (SDM §4.10.4.1). Returns the number evicted.
   */
  flushNonGlobal(pcid?: number, onEvict?: TlbEvictHook): number {
    if (this.validTotal === 0) return 0;
    let n = 0;
    for (let slot = 0; slot < this.capacity; slot++) {
      const attr = this.attrs[slot];
      if (
        (attr & TLB_VALID) !== 0 &&
        (attr & TLB_GLOBAL) === 0 &&
        (pcid === undefined || this.pcids[slot] === pcid)
      ) {
        this.evict(slot, onEvict);
        n++;
      }
    }
    if (CHECK_TLB_INVARIANTS) this.checkInvariants();
    return n;
  }

  /**
   * A CR4.PGE toggle: evicts every entry, GLOBAL ones included (SDM §4.10.4.1). Returns the
   * number evicted.
   */
  flushAll(onEvict?: TlbEvictHook): number {
    const n = this.validTotal;
    if (n === 0) return 0;
    if (onEvict === undefined) {
      this.tags.fill(INVALID_TAG);
      this.frames.fill(0);
      this.pcids.fill(0);
      this.attrs.fill(0);
      this.lru.fill(0);
      this.validTotal = this.valid2M = this.valid1G = 0;
    } else {
      for (let slot = 0; slot < this.capacity; slot++) {
        if (this.tags[slot] !== INVALID_TAG) this.evict(slot, onEvict);
      }
    }
    if (CHECK_TLB_INVARIANTS) this.checkInvariants();
    return n;
  }

  /**
   * INVPCID (SDM Vol. 2B): type 0 evicts the non-global entries of `pcid` that translate `addr`;
   * 1 the non-global entries of `pcid`; 2 everything, globals included, all PCIDs; 3 the
   * non-global entries of all PCIDs. `addr` matters for type 0 only, `pcid` for types 0 and 1.
   * Returns the number evicted; throws `RangeError` for another type (hardware raises #GP(0)).
   */
  invpcid(type: InvpcidType, pcid: number, addr: VirtAddr, onEvict?: TlbEvictHook): number {
    switch (type) {
      case 0:
        return this.evictAddress(addr, pcid, true, onEvict);
      case 1:
        return this.flushNonGlobal(pcid, onEvict);
      case 2:
        return this.flushAll(onEvict);
      case 3:
        return this.flushNonGlobal(undefined, onEvict);
      default:
        throw new RangeError(`INVPCID type ${type as number} is not 0..3 (hardware raises #GP(0))`);
    }
  }

  /**
   * Evicts the entries of every size that translate `addr`: those of `pcid`, and GLOBAL ones of
   * any PCID unless `keepGlobal` (then a global entry survives even under `pcid`).
   */
  private evictAddress(
    addr: number,
    pcid: number,
    keepGlobal: boolean,
    onEvict: TlbEvictHook | undefined,
  ): number {
    if (this.validTotal === 0) return 0;
    const hi = Math.floor(addr / TWO_POW_32);
    const lo = addr - hi * TWO_POW_32;
    let n = 0;
    // Only the size classes that hold entries (the lookup's rule too): most TLBs hold no 2 MiB or
    // 1 GiB entries, and every invlpg, local or a shootdown's, comes here.
    const last = this.valid1G !== 0 ? 2 : this.valid2M !== 0 ? 1 : 0;
    for (let sizeClass = 0; sizeClass <= last; sizeClass++) {
      if (sizeClass === 1 && this.valid2M === 0) continue;
      const shift = shiftOfClass(sizeClass);
      // Low `shift` bits of addr, from the low half (shift ≤ 30 < 32).
      const tag = addr - (lo & ((1 << shift) - 1)) + sizeClass;
      const base = (((lo >>> shift) | (hi << (32 - shift))) & this.setMask) * this.ways;
      for (let slot = base; slot < base + this.ways; slot++) {
        if (this.tags[slot] !== tag) continue;
        const global = (this.attrs[slot] & TLB_GLOBAL) !== 0;
        if (global ? !keepGlobal : this.pcids[slot] === pcid) {
          this.evict(slot, onEvict);
          n++;
        }
      }
    }
    if (CHECK_TLB_INVARIANTS) this.checkInvariants();
    return n;
  }

  // ---------------------------------------------------------------- inspection

  /** The number of valid entries. */
  validCount(): number {
    return this.validTotal;
  }

  /** Copies of the valid entries, in slot order (allocates: for inspection, not hot paths). */
  entries(): TlbEntrySnapshot[] {
    const out: TlbEntrySnapshot[] = [];
    for (let slot = 0; slot < this.capacity; slot++) {
      if (this.tags[slot] === INVALID_TAG) continue;
      const attr = this.attrs[slot];
      out.push({
        slot,
        set: Math.floor(slot / this.ways),
        way: slot % this.ways,
        pageStart: this.pageStartOf(slot),
        sizeShift: this.sizeShiftOf(slot),
        frame: this.frameOf(slot),
        pcid: this.pcids[slot],
        global: (attr & TLB_GLOBAL) !== 0,
        writable: (attr & TLB_WRITABLE) !== 0,
        user: (attr & TLB_USER) !== 0,
        nx: (attr & TLB_NX) !== 0,
        dirty: (attr & TLB_DIRTY) !== 0,
        lastUse: this.lru[slot],
      });
    }
    return out;
  }

  /**
   * Verifies every invariant in the class doc and throws `TlbInvariantViolation` naming the first
   * one broken. Tests call it directly; mutators call it when `CHECK_TLB_INVARIANTS` is on.
   */
  checkInvariants(): void {
    const fail = (slot: number, what: string): never => {
      throw new TlbInvariantViolation(
        `TLB slot ${slot} (set ${Math.floor(slot / this.ways)}, way ${slot % this.ways}): ${what}`,
      );
    };
    const counts = [0, 0, 0];
    for (let slot = 0; slot < this.capacity; slot++) {
      const tag = this.tags[slot];
      const attr = this.attrs[slot];
      if (tag === INVALID_TAG) {
        if (attr !== 0) fail(slot, `empty slot has attribute 0x${attr.toString(16)}, expected 0`);
        continue;
      }
      if ((attr & TLB_VALID) === 0) fail(slot, `tag ${tag} without VALID`);
      if ((attr & ~ALL_ATTR_BITS) !== 0)
        fail(slot, `unknown attribute bits 0x${attr.toString(16)}`);
      const sizeClass = (attr & TLB_SIZE_CLASS_MASK) >> TLB_SIZE_CLASS_SHIFT;
      if (sizeClass > 2) fail(slot, `size class ${sizeClass} is not 0..2`);
      counts[sizeClass]++;
      const shift = shiftOfClass(sizeClass);
      const pageStart = tag - sizeClass;
      if (!Number.isSafeInteger(pageStart) || pageStart < 0 || pageStart >= TWO_POW_48) {
        fail(slot, `page start ${pageStart} is not below 2^48`);
      }
      if (pageStart % 2 ** shift !== 0)
        fail(slot, `page start 0x${pageStart.toString(16)} not aligned to 2^${shift}`);
      if (this.setOf(pageStart, shift) * this.ways + (slot % this.ways) !== slot) {
        fail(
          slot,
          `page 0x${pageStart.toString(16)} (2^${shift}) belongs in set ${this.setOf(pageStart, shift)}`,
        );
      }
      const frame = this.frames[slot];
      if (
        !Number.isSafeInteger(frame) ||
        frame < 0 ||
        frame >= TWO_POW_52 ||
        frame % 2 ** shift !== 0
      ) {
        fail(slot, `frame 0x${frame.toString(16)} is not a 2^${shift}-aligned address below 2^52`);
      }
      if (this.pcids[slot] > MAX_PCID) fail(slot, `PCID ${this.pcids[slot]} above ${MAX_PCID}`);
      if (!(this.lru[slot] > 0 && this.lru[slot] <= this.clock))
        fail(slot, `last use ${this.lru[slot]} not in 1..${this.clock}`);
      const setBase = slot - (slot % this.ways);
      for (let other = setBase; other < slot; other++) {
        if (
          this.tags[other] === tag &&
          ((attr & TLB_GLOBAL) !== 0 ||
            (this.attrs[other] & TLB_GLOBAL) !== 0 ||
            this.pcids[other] === this.pcids[slot])
        ) {
          fail(
            slot,
            `duplicates slot ${other}: both answer lookups of page 0x${pageStart.toString(16)}`,
          );
        }
      }
    }
    const total = counts[0] + counts[1] + counts[2];
    if (total !== this.validTotal || counts[1] !== this.valid2M || counts[2] !== this.valid1G) {
      throw new TlbInvariantViolation(
        `TLB counts (total ${this.validTotal}, 2 MiB ${this.valid2M}, 1 GiB ${this.valid1G}) disagree with the arrays (${total}, ${counts[1]}, ${counts[2]})`,
      );
    }
  }

  // ---------------------------------------------------------------- internals

  /** The home set of the page starting at `pageStart` (computed on 32-bit halves). */
  private setOf(pageStart: number, shift: number): number {
    const hi = (pageStart / TWO_POW_32) >>> 0;
    const lo = pageStart - hi * TWO_POW_32;
    return ((lo >>> shift) | (hi << (32 - shift))) & this.setMask;
  }

  private countIn(sizeClass: number, delta: number): void {
    this.validTotal += delta;
    if (sizeClass === 1) this.valid2M += delta;
    else if (sizeClass === 2) this.valid1G += delta;
  }

  /** Calls the hook while the victim is still readable, then empties the slot. */
  private evict(slot: number, onEvict: TlbEvictHook | undefined): void {
    if (onEvict !== undefined) onEvict(slot);
    this.countIn((this.attrs[slot] & TLB_SIZE_CLASS_MASK) >> TLB_SIZE_CLASS_SHIFT, -1);
    this.tags[slot] = INVALID_TAG;
    this.frames[slot] = 0;
    this.pcids[slot] = 0;
    this.attrs[slot] = 0;
    this.lru[slot] = 0;
  }
}
