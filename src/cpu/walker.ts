/**
 * The hardware page walker: what an x86_64 MMU does on a TLB miss (Intel SDM Vol. 3A §4.5, §4.6,
 * §4.8). Pure: it reads and updates entries in `PhysicalMemory` and reports through fields, so
 * the same code runs under every host. The cold path of a translation; the TLB is the hot one.
 */

import type { PhysicalMemory } from '../memory/physical-memory.ts';
import { PageTableFlags } from '../paging/flags.ts';
import { entryAddr } from '../paging/page-table.ts';
import { indexAt, type PageTableLevel } from '../paging/page-table-index.ts';
import { type AccessKind, PF_FETCH, PF_PRESENT, PF_RSVD, PF_USER, PF_WRITE } from './fault.ts';

const P = PageTableFlags.PRESENT as number;
const RW = PageTableFlags.WRITABLE as number;
const US = PageTableFlags.USER_ACCESSIBLE as number;
const A = PageTableFlags.ACCESSED as number;
const D = PageTableFlags.DIRTY as number;
const PS = PageTableFlags.HUGE_PAGE as number;
const G = PageTableFlags.GLOBAL as number;
const NX_HI = 0x8000_0000; // bit 63 of the entry = bit 31 of the high half

/** Control-register bits the walker obeys. */
export interface WalkControl {
  /** CR0.WP: supervisor writes to read-only pages fault. */
  readonly wp: boolean;
  /** EFER.NXE: NO_EXECUTE is honoured (else bit 63 is reserved). */
  readonly nxe: boolean;
}

/** What a walk ended in. */
export enum WalkOutcome {
  /** The translation succeeded; the result fields describe it. */
  Ok = 0,
  /** A page fault; `errorCode` holds the error code. */
  Fault = 1,
  /** A table pointer led outside simulated RAM (`badTable`); a machine error, not a #PF. */
  TableOutsideRam = 2,
}

/**
 * Reserved bits (SDM §4.5.4, Tables 4-15..4-20): PS in a PML4E; bit 63 without EFER.NXE; frame
 * bits below the page size in a huge leaf (bit 12 is PAT there, not reserved).
 */
function hasReservedBits(
  level: PageTableLevel,
  lo: number,
  hi: number,
  leaf: boolean,
  addrField: number,
  sizeBytes: number,
  ctl: WalkControl,
): boolean {
  return (
    (level === 4 && (lo & PS) !== 0) ||
    (!ctl.nxe && (hi & NX_HI) !== 0) ||
    (leaf && level > 1 && (addrField & (sizeBytes - 1) & ~0x1fff) !== 0)
  );
}

/** Called for each ACCESSED/DIRTY update the walker makes (for the trace). */
export type AdSetHook = (entryAddress: number, bits: number, level: PageTableLevel) => void;

/**
 * One CPU's walker. After `walk` returns `Ok`, the result fields hold the translation; they are
 * overwritten by the next walk (no allocation per walk).
 */
export class Walker {
  /** Page start of the translation (aligned to its size). */
  pageStart = 0;
  /** Frame start (aligned to the page size). */
  frame = 0;
  /** log2 of the page size: 12, 21 or 30. */
  sizeShift: 12 | 21 | 30 = 12;
  /** Effective rights: AND of WRITABLE / USER_ACCESSIBLE, OR of NO_EXECUTE over all levels. */
  writable = false;
  user = false;
  noExecute = false;
  /** The leaf's GLOBAL bit (the TLB honours it only with CR4.PGE). */
  global = false;
  /** The leaf's DIRTY bit after this walk's update. */
  dirty = false;
  /** The #PF error code when the outcome is `Fault`. */
  errorCode = 0;
  /** The out-of-RAM table address when the outcome is `TableOutsideRam`. */
  badTable = 0;
  /** Entries read by the last walk (restarts included). */
  entriesRead = 0;
  /** ACCESSED/DIRTY bits the last walk set. */
  adUpdates = 0;
  /** Walks restarted because an entry changed under a compare-exchange, since construction. */
  restarts = 0;

  private readonly w = new Uint32Array(2);

  constructor(
    private readonly memory: PhysicalMemory,
    private readonly onAdSet?: AdSetHook,
  ) {}

  /**
   * Translates `addr` for an access of `kind` at CPL 3 when `user`, starting at the level-4 table
   * `p4`. Sets ACCESSED on every entry it uses and DIRTY on the leaf of a write, each with a
   * compare-exchange; if the entry changed in between, the walk starts over (as hardware does
   * with its locked update).
   */
  walk(p4: number, addr: number, kind: AccessKind, user: boolean, ctl: WalkControl): WalkOutcome {
    this.entriesRead = 0;
    this.adUpdates = 0;
    const mem = this.memory;
    const w = this.w;
    const write = kind === 'write';
    const fetch = kind === 'fetch';
    // Error-code bits that describe the access itself (SDM Figure 4-12). I/D is reported only for
    // a fetch with EFER.NXE set (or SMEP, which is not modeled), SDM §4.7.
    const accessBits =
      (write ? PF_WRITE : 0) | (user ? PF_USER : 0) | (fetch && ctl.nxe ? PF_FETCH : 0);
    restart: for (;;) {
      let table = p4;
      let writable = true;
      let userOk = true;
      let noExecute = false;
      for (let level = 4 as PageTableLevel; ; level = (level - 1) as PageTableLevel) {
        const entry = table + indexAt(addr, level) * 8;
        mem.loadEntryWordsUnchecked(entry, w);
        this.entriesRead++;
        const lo = w[0]!;
        const hi = w[1]!;
        if ((lo & P) === 0) {
          this.errorCode = accessBits;
          return WalkOutcome.Fault;
        }
        const leaf = level === 1 || ((lo & PS) !== 0 && level !== 4);
        const addrField = entryAddr(lo, hi);
        const sizeBytes = level === 3 ? 2 ** 30 : level === 2 ? 2 ** 21 : 4096;
        if (hasReservedBits(level, lo, hi, leaf, addrField, sizeBytes, ctl)) {
          this.errorCode = accessBits | PF_PRESENT | PF_RSVD;
          return WalkOutcome.Fault;
        }
        writable &&= (lo & RW) !== 0;
        userOk &&= (lo & US) !== 0;
        noExecute ||= ctl.nxe && (hi & NX_HI) !== 0;
        if (!leaf) {
          if ((lo & A) === 0 && !this.setBits(entry, lo, hi, A, level)) continue restart;
          if (addrField + 4096 > mem.bytes) {
            this.badTable = addrField;
            return WalkOutcome.TableOutsideRam;
          }
          table = addrField;
          continue;
        }
        // Permission checks on the effective rights (SDM §4.6).
        if ((user && !userOk) || (write && !writable && (user || ctl.wp)) || (fetch && noExecute)) {
          this.errorCode = accessBits | PF_PRESENT;
          return WalkOutcome.Fault;
        }
        const want = A | (write ? D : 0);
        if ((lo & want) !== want && !this.setBits(entry, lo, hi, want & ~lo, level))
          continue restart;
        this.sizeShift = level === 1 ? 12 : level === 2 ? 21 : 30;
        // `&` on the low 32 bits: sizeBytes - 1 < 2^30, so the offset is exact (no fmod call).
        this.pageStart = addr - (addr & (sizeBytes - 1));
        this.frame = addrField - (addrField & (sizeBytes - 1));
        this.writable = writable;
        this.user = userOk;
        this.noExecute = noExecute;
        this.global = (lo & G) !== 0;
        this.dirty = write || (lo & D) !== 0;
        return WalkOutcome.Ok;
      }
    }
  }

  /** After `probe`: the effective rights and the leaf's DIRTY bit of the translation it found. */
  probeWritable = false;
  probeUser = false;
  probeNoExecute = false;
  probeDirty = false;

  /**
   * What the page tables give for `addr` now, without touching them: the physical address, or -1
   * when a walk would fault for any access (not present, reserved bit) or leave RAM. Unlike a real
   * walk it sets no ACCESSED/DIRTY bit and fills no result field but the `probe*` ones, so the
   * coherence probe (cpu.ts) can compare a TLB hit with the tables without changing either.
   */
  probe(p4: number, addr: number, ctl: WalkControl): number {
    const mem = this.memory;
    const w = this.w;
    let table = p4;
    let writable = true;
    let userOk = true;
    let noExecute = false;
    for (let level = 4 as PageTableLevel; ; level = (level - 1) as PageTableLevel) {
      const entry = table + indexAt(addr, level) * 8;
      mem.loadEntryWordsUnchecked(entry, w);
      const lo = w[0]!;
      const hi = w[1]!;
      if ((lo & P) === 0) return -1;
      const leaf = level === 1 || ((lo & PS) !== 0 && level !== 4);
      const addrField = entryAddr(lo, hi);
      const sizeBytes = level === 3 ? 2 ** 30 : level === 2 ? 2 ** 21 : 4096;
      // An entry with a reserved bit faults any access: it maps nothing.
      if (hasReservedBits(level, lo, hi, leaf, addrField, sizeBytes, ctl)) return -1;
      writable &&= (lo & RW) !== 0;
      userOk &&= (lo & US) !== 0;
      noExecute ||= ctl.nxe && (hi & NX_HI) !== 0;
      if (!leaf) {
        if (addrField + 4096 > mem.bytes) return -1;
        table = addrField;
        continue;
      }
      this.probeWritable = writable;
      this.probeUser = userOk;
      this.probeNoExecute = noExecute;
      this.probeDirty = (lo & D) !== 0;
      return addrField - (addrField & (sizeBytes - 1)) + (addr & (sizeBytes - 1));
    }
  }

  /** ORs `bits` into the entry if it still holds (lo, hi); false if it changed (walk restarts). */
  private setBits(
    entry: number,
    lo: number,
    hi: number,
    bits: number,
    level: PageTableLevel,
  ): boolean {
    if (!this.memory.compareExchangeEntryWords(entry, lo, hi, (lo | bits) >>> 0, hi)) {
      this.restarts++;
      return false;
    }
    this.adUpdates++;
    this.onAdSet?.(entry, bits, level);
    return true;
  }
}
