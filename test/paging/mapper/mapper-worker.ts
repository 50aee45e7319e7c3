/**
 * Worker thread for test/paging/mapper/concurrent-mappers.test.ts: one simulated CPU with its own
 * `OffsetPageTable` over the RAM and the page-table allocator it shares with the other workers.
 * It runs a seeded, deterministic list of map / unmap / update_flags / translate operations in
 * rounds (a barrier between rounds), logs every change it made, and reports its view of the
 * whole address space after the last barrier.
 *
 * Importing this module on the main thread only defines the layout helpers: the body runs only
 * when `workerData` is a `MapperWorkerInput`.
 */

import { parentPort, workerData } from 'node:worker_threads';
import { PhysAddr, VirtAddr } from '../../../src/addr.ts';
import { PhysicalMemory } from '../../../src/memory/physical-memory.ts';
import {
  BitmapFrameAllocator,
  type SharedBitmapFrameAllocator,
} from '../../../src/paging/bitmap-frame-allocator.ts';
import { PageTableFlags } from '../../../src/paging/flags.ts';
import { PhysFrame } from '../../../src/paging/frame.ts';
import type { FrameAllocator, FrameDeallocator } from '../../../src/paging/frame-allocator.ts';
import { OffsetPageTable } from '../../../src/paging/mapper/index.ts';
import { Page } from '../../../src/paging/page.ts';
import { type AnyPageSize, Size1GiB, Size2MiB, Size4KiB } from '../../../src/paging/page-size.ts';

// ---- layout, shared with the test -------------------------------------------------------------

/** Private pages per worker in the "hot" region (the same four level-1 tables for everyone). */
export const HOT_PER_WORKER = 16;
/**
 * Private pages per worker in each round's fresh region, one under each of the round's first
 * four level-3 entries, so a round starts with 4 + 4 table creations (1 + 4 + 4 while level-4
 * entries are fresh) that every worker races for.
 */
export const ROUND_PER_WORKER = 4;
/** Contended pages that exist in every round (8 of 4 KiB, 4 of 2 MiB, 2 of 1 GiB). */
export const FIXED_CONTENDED = 14;
/** The frame-encoding slot of contended page `k` is `CONTENDED_SLOT + k`. */
export const CONTENDED_SLOT = 2 ** 15;
/** Round `r` uses level-4 entry `FIRST_ROUND_P4 + r % ROUND_P4_ENTRIES` (lower half). */
export const FIRST_ROUND_P4 = 2;
export const ROUND_P4_ENTRIES = 250;
/** Level-3 entries a round uses: one per private page of a worker, one for its contended page. */
const ROUND_P3_ENTRIES = ROUND_PER_WORKER + 1;
/** The private slots of 8 workers (below `CONTENDED_SLOT`) and the table frames of 64 MiB. */
export const MAX_ROUNDS = 1000;

/** The page-size shift of a page: 12, 21 or 30. */
export type Shift = 12 | 21 | 30;

/** One page of the layout. */
export interface PageSpec {
  /** Virtual start address (lower half, so the stored form is the value). */
  readonly va: number;
  readonly shift: Shift;
  /** The 1-based worker that owns a private page; 0 for a contended page. */
  readonly owner: number;
  /** Frame-encoding slot: private pages count from 0, contended ones from `CONTENDED_SLOT`. */
  readonly slot: number;
  /** Contended index (for the owner and sequence words), or -1 for a private page. */
  readonly contended: number;
  /** The round whose region holds the page, or -1 for the hot and fixed contended pages. */
  readonly round: number;
}

function vaOf(p4: number, p3: number, p2: number, p1: number): number {
  return p4 * 2 ** 39 + p3 * 2 ** 30 + p2 * 2 ** 21 + p1 * 2 ** 12;
}

/**
 * Every page the workers touch. Private page slots interleave owners (slot `s` belongs to worker
 * `s % workers + 1`) so that neighbours in one level-1 table belong to different workers:
 *
 * - hot pages: P4 1, P3 0, P2 `s % 4`, P1 `s / 4`: four shared level-1 tables for the whole run;
 * - round `r` pages: P4 `2 + r % 250`, P3 `5 * (r / 250) + j / workers`, P2 0, P1 `j % workers`,
 *   where worker w's f-th page of the round is `j = f * workers + w - 1`. The level-3 entries are
 *   always new, and so is the level-4 entry in the first 250 rounds: every round all workers
 *   create the same four level-2 and level-1 tables at once (and the level-3 table before them);
 * - fixed contended pages under P4 0: 4 KiB (P3 0, P2 0, P1 k), 2 MiB (P3 1, P2 k - 8),
 *   1 GiB (P3 2 + k - 12);
 * - one contended page per round under the round's fifth level-3 entry: 4 KiB (P2 0, P1 0) in
 *   even rounds, 2 MiB (P2 0) in odd ones; every worker tries to map it right after its four
 *   private pages.
 */
export function pageLayout(workers: number, rounds: number): PageSpec[] {
  if (rounds > MAX_ROUNDS || workers > 8)
    throw new Error(`at most ${MAX_ROUNDS} rounds, 8 workers`);
  const roundP4 = (r: number): number => FIRST_ROUND_P4 + (r % ROUND_P4_ENTRIES);
  const roundP3 = (r: number): number => ROUND_P3_ENTRIES * Math.floor(r / ROUND_P4_ENTRIES);
  const pages: PageSpec[] = [];
  const hot = HOT_PER_WORKER * workers;
  for (let s = 0; s < hot; s++) {
    const va = vaOf(1, 0, s % 4, Math.floor(s / 4));
    pages.push({ va, shift: 12, owner: (s % workers) + 1, slot: s, contended: -1, round: -1 });
  }
  for (let r = 0; r < rounds; r++) {
    for (let j = 0; j < ROUND_PER_WORKER * workers; j++) {
      pages.push({
        va: vaOf(roundP4(r), roundP3(r) + Math.floor(j / workers), 0, j % workers),
        shift: 12,
        owner: (j % workers) + 1,
        slot: hot + r * ROUND_PER_WORKER * workers + j,
        contended: -1,
        round: r,
      });
    }
  }
  for (let k = 0; k < FIXED_CONTENDED + rounds; k++) {
    let va: number;
    let shift: Shift;
    let round = -1;
    if (k < 8) [va, shift] = [vaOf(0, 0, 0, k), 12];
    else if (k < 12) [va, shift] = [vaOf(0, 1, k - 8, 0), 21];
    else if (k < FIXED_CONTENDED) [va, shift] = [vaOf(0, 2 + k - 12, 0, 0), 30];
    else {
      round = k - FIXED_CONTENDED;
      [va, shift] = [
        vaOf(roundP4(round), roundP3(round) + ROUND_PER_WORKER, 0, 0),
        round % 2 === 0 ? 12 : 21,
      ];
    }
    pages.push({ va, shift, owner: 0, slot: CONTENDED_SLOT + k, contended: k, round });
  }
  return pages;
}

const W_UNIT = 2 ** 46;
const SLOT_UNIT = 2 ** 30;

/**
 * The frame a worker maps a page to: `worker * 2^46 + slot * 2^30 + version * size` (mod 2^30),
 * so any leaf address names the worker and the page it was made for. These frames lie far
 * outside the simulated RAM; the mapper never reads them.
 */
export function frameFor(worker: number, slot: number, version: number, shift: Shift): number {
  const size = 2 ** shift;
  const versions = SLOT_UNIT / size;
  return worker * W_UNIT + slot * SLOT_UNIT + (version % versions) * size;
}

/** The worker and slot a leaf address encodes (the inverse of `frameFor`). */
export function decodeFrame(addr: number): { worker: number; slot: number } {
  return { worker: Math.floor(addr / W_UNIT), slot: Math.floor(addr / SLOT_UNIT) % 2 ** 16 };
}

// ---- messages ---------------------------------------------------------------------------------

/** Control words (Int32) shared by the test and its workers. */
export const CTL_ARRIVED = 0;
export const CTL_GENERATION = 1;
/** Set by the test on timeout: every barrier returns at once and the worker stops. */
export const CTL_ABORT = 2;
/** Set by the last worker at a round barrier: no further round, this was the final barrier. */
export const CTL_STOP = 3;
/** Lost table races so far, all workers together (each adds its own before every barrier). */
export const CTL_LOST = 4;
export const CONTROL_WORDS = 8;

/** What the test posts to each worker. */
export interface MapperWorkerInput {
  readonly kind: 'concurrent-mapper';
  /** The RAM (from `PhysicalMemory.buffer`). */
  readonly ram: SharedArrayBuffer;
  /** The page-table frame allocator (from `shared()`). */
  readonly tables: SharedBitmapFrameAllocator;
  /** The level-4 table's frame address, already reserved in `tables`. */
  readonly level4: number;
  /** `CONTROL_WORDS` Int32 words: the round barrier, the abort and stop flags, the race count. */
  readonly control: SharedArrayBuffer;
  /** One Int32 per allocator frame: the worker that holds it (claimed right after allocation). */
  readonly frameOwners: SharedArrayBuffer;
  /** One Int32 per contended page: the worker whose mapping is installed, 0 when none. */
  readonly pageOwners: SharedArrayBuffer;
  /** One Int32 per contended page: the next event sequence number. */
  readonly pageSeq: SharedArrayBuffer;
  /** 1-based worker id. */
  readonly id: number;
  readonly workers: number;
  /** Rounds always run. */
  readonly minRounds: number;
  /**
   * Rounds the layout has room for. Past `minRounds`, rounds go on while fewer than
   * `minLostRaces` table races were lost and `extendUntil` (a `Date.now()` time) has not passed:
   * on a loaded machine the threads rarely share the cores at a round start.
   */
  readonly maxRounds: number;
  readonly minLostRaces: number;
  readonly extendUntil: number;
  /** Operations per round, the five forced ones at the round start included. */
  readonly opsPerRound: number;
  readonly seed: number;
}

/** A change to one of the worker's private pages, in program order. */
export type PrivateEvent =
  | { readonly t: 'map'; readonly va: number; readonly frame: number; readonly flags: number }
  | { readonly t: 'flags'; readonly va: number; readonly flags: number }
  | { readonly t: 'unmap'; readonly va: number; readonly frame: number };

/** A successful map or unmap of a contended page, numbered by that page's sequence word. */
export interface ContendedEvent {
  readonly k: number;
  readonly seq: number;
  readonly t: 'map' | 'unmap';
  readonly worker: number;
  /** The frame mapped, or the frame `unmap` returned. */
  readonly frame: number;
  /** The flags passed to `mapTo` (0 for an unmap). */
  readonly flags: number;
}

/** One page as `translate` saw it: frame -1 when not mapped. */
export interface ViewEntry {
  readonly va: number;
  readonly frame: number;
  readonly flags: number;
}

/** What a worker posts back. */
export interface MapperWorkerOutput {
  readonly id: number;
  /** Rounds run (the same for every worker). */
  readonly rounds: number;
  /** Milliseconds from the start line to the final barrier. */
  readonly runMs: number;
  readonly privateLog: PrivateEvent[];
  readonly contendedLog: ContendedEvent[];
  /** Per contended page: OR of the parent flags (flags ∩ PRESENT|WRITABLE|USER) of every attempt. */
  readonly contendedParentFlags: number[];
  /** Per contended page: mapTo attempts, wins, PageAlreadyMapped answers. */
  readonly attempts: number[];
  readonly wins: number[];
  readonly alreadyMapped: number[];
  /** Contended pages this worker holds at the end: [k, frame, flags]. */
  readonly held: [number, number, number][];
  /** Its view of every page of the layout after the last barrier. */
  readonly view: ViewEntry[];
  readonly lostTableRaces: number;
  /** Frames taken from / returned to the table allocator by this worker's mapper. */
  readonly tableAllocations: number;
  readonly tableFrees: number;
  /** A table frame handed out while another worker held it, or freed by a non-holder. */
  readonly frameConflicts: number;
  /** A contended page won while the owner word said another worker held it. */
  readonly ownerConflicts: number;
  /** Translations of pages other workers change that showed an impossible entry. */
  readonly foreignViolations: number;
  readonly counts: {
    readonly ops: number;
    readonly privateMaps: number;
    readonly privateUnmaps: number;
    readonly flagUpdates: number;
    readonly ownTranslates: number;
    readonly foreignTranslates: number;
    readonly contendedUnmaps: number;
  };
  /** Pending flush obligations left in the mapper's ledger (all are flushed). */
  readonly pendingFlushes: number;
  /** Unexpected results and exceptions (the first 20), and how many there were. */
  readonly errors: string[];
  readonly errorCount: number;
  /** True if the run stopped on the abort flag. */
  readonly aborted: boolean;
}

// ---- the worker -------------------------------------------------------------------------------

const { PRESENT, WRITABLE, USER_ACCESSIBLE, NO_EXECUTE, GLOBAL, BIT_9, HUGE_PAGE } = PageTableFlags;
const PARENT_MASK = PRESENT | WRITABLE | USER_ACCESSIBLE;

/** xorshift32 from `seed`: deterministic choices, different per worker. */
function rng(seed: number): () => number {
  let s = seed | 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
}

const SIZES = { 12: Size4KiB, 21: Size2MiB, 30: Size1GiB } as const;

function pageOf(spec: PageSpec): Page<AnyPageSize> {
  return Page.fromStartAddressUnchecked(VirtAddr.newUnchecked(spec.va), SIZES[spec.shift]);
}

function frameOf(addr: number, shift: Shift): PhysFrame<AnyPageSize> {
  return PhysFrame.fromStartAddressUnchecked(PhysAddr.newUnchecked(addr), SIZES[shift]);
}

/**
 * Spins briefly, then sleeps on the generation word, until all workers arrived; false on abort.
 * The last to arrive runs `decide` before it releases the others, so they all see its result.
 */
function barrier(ctl: Int32Array, workers: number, decide: () => void): boolean {
  const gen = Atomics.load(ctl, CTL_GENERATION);
  if (Atomics.add(ctl, CTL_ARRIVED, 1) === workers - 1) {
    decide();
    // Last to arrive: reset the count before releasing, so the next barrier starts from 0.
    Atomics.store(ctl, CTL_ARRIVED, 0);
    Atomics.add(ctl, CTL_GENERATION, 1);
    Atomics.notify(ctl, CTL_GENERATION);
    return Atomics.load(ctl, CTL_ABORT) === 0;
  }
  // A short spin keeps the release tight for the workers that are on a core right now.
  for (let i = 0; i < 20_000; i++) {
    if (Atomics.load(ctl, CTL_GENERATION) !== gen) return Atomics.load(ctl, CTL_ABORT) === 0;
  }
  // Then sleep (there are more workers than cores); the abort flag is polled on every wake-up.
  while (Atomics.load(ctl, CTL_GENERATION) === gen) {
    if (Atomics.load(ctl, CTL_ABORT) !== 0) return false;
    Atomics.wait(ctl, CTL_GENERATION, gen, 20);
  }
  return Atomics.load(ctl, CTL_ABORT) === 0;
}

function run(input: MapperWorkerInput): MapperWorkerOutput {
  const { id, workers, maxRounds: rounds, opsPerRound } = input;
  const memory = PhysicalMemory.fromBuffer(input.ram);
  const bitmap = BitmapFrameAllocator.fromShared(input.tables);
  const frameOwners = new Int32Array(input.frameOwners);
  const pageOwners = new Int32Array(input.pageOwners);
  const pageSeq = new Int32Array(input.pageSeq);
  const ctl = new Int32Array(input.control);
  const tablesStart = input.tables.start;
  const level4 = PhysFrame.fromStartAddressUnchecked(PhysAddr.newUnchecked(input.level4), Size4KiB);
  const mapper = new OffsetPageTable(memory, level4);
  const random = rng(input.seed);

  const errors: string[] = [];
  let errorCount = 0;
  const fail = (message: string): void => {
    errorCount++;
    if (errors.length < 20) errors.push(`worker ${id}: ${message}`);
  };

  // The allocator the mapper sees: the shared bitmap plus an owner table, so a frame handed out
  // twice (or freed by a worker that does not hold it) is seen at the moment it happens.
  let tableAllocations = 0;
  let tableFrees = 0;
  let frameConflicts = 0;
  const allocator: FrameAllocator & FrameDeallocator = {
    allocateFrame() {
      const frame = bitmap.allocateFrame();
      if (frame === undefined) return undefined;
      tableAllocations++;
      // Claims the frame; any other value means another worker holds it too.
      const i = (frame.startAddress - tablesStart) / 4096;
      if (Atomics.compareExchange(frameOwners, i, 0, id) !== 0) frameConflicts++;
      return frame;
    },
    deallocateFrame(frame) {
      tableFrees++;
      // Releases before the bitmap bit, so the frame's next holder finds the slot empty.
      const i = (frame.startAddress - tablesStart) / 4096;
      if (Atomics.compareExchange(frameOwners, i, id, 0) !== id) frameConflicts++;
      bitmap.deallocateFrame(frame);
    },
  };

  const layout = pageLayout(workers, rounds);
  const hotOwn = layout.filter((p) => p.owner === id && p.round === -1);
  const roundAll = Array.from({ length: rounds }, (): PageSpec[] => []);
  for (const p of layout) if (p.owner !== 0 && p.round >= 0) roundAll[p.round]!.push(p);
  const roundOwn = roundAll.map((pages) => pages.filter((p) => p.owner === id));
  const contended = layout.filter((p) => p.contended >= 0);
  const fixedContended = contended.filter((p) => p.round === -1);
  const hotAll = layout.filter((p) => p.owner !== 0 && p.round === -1);
  const nContended = contended.length;

  // The worker's model of its own pages and of the contended pages it holds.
  const own = new Map<number, { frame: number; flags: number }>();
  const held = new Map<number, { frame: number; flags: number }>();
  const privateLog: PrivateEvent[] = [];
  const contendedLog: ContendedEvent[] = [];
  const contendedParentFlags = new Array<number>(nContended).fill(0);
  const attempts = new Array<number>(nContended).fill(0);
  const wins = new Array<number>(nContended).fill(0);
  const alreadyMapped = new Array<number>(nContended).fill(0);
  let ownerConflicts = 0;
  let foreignViolations = 0;
  const counts = {
    ops: 0,
    privateMaps: 0,
    privateUnmaps: 0,
    flagUpdates: 0,
    ownTranslates: 0,
    foreignTranslates: 0,
    contendedUnmaps: 0,
  };
  let version = 0;

  const randomFlags = (): number => {
    const x = random();
    let f = PRESENT as number;
    if (x & 1) f |= WRITABLE;
    if (x & 2) f |= USER_ACCESSIBLE;
    if (x & 4) f |= NO_EXECUTE;
    if (x & 8) f |= BIT_9;
    if (x & 16) f |= GLOBAL;
    return f;
  };
  const leafFlags = (spec: PageSpec, flags: number): number =>
    spec.shift === 12 ? flags : flags | HUGE_PAGE;

  /** Translates `spec` and checks the result is exactly `want` (undefined: not mapped). */
  const expectTranslation = (
    spec: PageSpec,
    want: { frame: number; flags: number } | undefined,
  ): void => {
    const t = mapper.translate(VirtAddr.newUnchecked(spec.va));
    if (want === undefined) {
      if (t.kind !== 'NotMapped') fail(`translate ${spec.va.toString(16)}: ${t.kind}, want none`);
      return;
    }
    if (
      t.kind !== 'Mapped' ||
      t.frame.startAddress !== want.frame ||
      t.frame.size.shift !== spec.shift ||
      t.flags !== leafFlags(spec, want.flags)
    ) {
      const got = t.kind === 'Mapped' ? `${t.frame} ${t.flags.toString(16)}` : t.kind;
      fail(`translate ${spec.va.toString(16)}: ${got}, want ${want.frame.toString(16)}`);
    }
    const tp = mapper.translatePage(pageOf(spec));
    if (!tp.ok || tp.value.startAddress !== want.frame) {
      fail(`translatePage ${spec.va.toString(16)} disagrees with translate`);
    }
  };

  const privateOp = (spec: PageSpec, forceMap: boolean): void => {
    const page = pageOf(spec);
    const cur = own.get(spec.va);
    if (cur === undefined) {
      const flags = randomFlags();
      const frame = frameFor(id, spec.slot, version++, spec.shift);
      const r = mapper.mapTo(page, frameOf(frame, spec.shift), flags as PageTableFlags, allocator);
      if (r.ok) {
        r.value.flush();
        privateLog.push({ t: 'map', va: spec.va, frame, flags });
        own.set(spec.va, { frame, flags });
        counts.privateMaps++;
      } else {
        fail(`private map ${spec.va.toString(16)}: ${r.error.kind}`);
      }
    } else if (!forceMap) {
      const x = random() % 4;
      if (x < 2) {
        const r = mapper.unmap(page);
        if (r.ok) {
          r.value.flush.flush();
          if (r.value.frame.startAddress !== cur.frame) {
            fail(`private unmap ${spec.va.toString(16)} returned ${r.value.frame}`);
          }
          privateLog.push({ t: 'unmap', va: spec.va, frame: r.value.frame.startAddress });
          own.delete(spec.va);
          counts.privateUnmaps++;
        } else {
          fail(`private unmap ${spec.va.toString(16)}: ${r.error.kind}`);
        }
      } else if (x === 2) {
        const flags = randomFlags();
        const r = mapper.updateFlags(page, flags as PageTableFlags);
        if (r.ok) {
          r.value.flush();
          privateLog.push({ t: 'flags', va: spec.va, flags });
          own.set(spec.va, { frame: cur.frame, flags });
          counts.flagUpdates++;
        } else {
          fail(`update_flags ${spec.va.toString(16)}: ${r.error.kind}`);
        }
      }
    }
    // Nobody else writes this leaf: the translation must be exactly the model, every time.
    counts.ownTranslates++;
    expectTranslation(spec, own.get(spec.va));
  };

  const contendedOp = (spec: PageSpec, mayUnmap: boolean): void => {
    const k = spec.contended;
    const page = pageOf(spec);
    const mine = held.get(k);
    if (mine === undefined) {
      const flags = randomFlags();
      const frame = frameFor(id, spec.slot, version++, spec.shift);
      attempts[k]++;
      contendedParentFlags[k] |= flags & PARENT_MASK;
      const r = mapper.mapTo(page, frameOf(frame, spec.shift), flags as PageTableFlags, allocator);
      if (r.ok) {
        r.value.flush();
        wins[k]++;
        // Claims the page; a non-zero owner means another worker believes it holds it too.
        if (Atomics.compareExchange(pageOwners, k, 0, id) !== 0) ownerConflicts++;
        // Taken while holding the mapping, so it orders this map after the previous unmap.
        const seq = Atomics.add(pageSeq, k, 1);
        contendedLog.push({ k, seq, t: 'map', worker: id, frame, flags });
        held.set(k, { frame, flags });
        expectTranslation(spec, { frame, flags });
      } else if (r.error.kind === 'PageAlreadyMapped') {
        alreadyMapped[k]++;
        if (r.error.frame.startAddress !== frame) fail('PageAlreadyMapped names another frame');
      } else {
        fail(`contended map ${spec.va.toString(16)}: ${r.error.kind}`);
      }
    } else if (mayUnmap && random() % 2 === 0) {
      // Numbered and released while the mapping is still installed: the next winner's map (and
      // its claim) can only come after the store below.
      const seq = Atomics.add(pageSeq, k, 1);
      if (Atomics.compareExchange(pageOwners, k, id, 0) !== id) ownerConflicts++;
      const r = mapper.unmap(page);
      if (r.ok) {
        r.value.flush.flush();
        contendedLog.push({
          k,
          seq,
          t: 'unmap',
          worker: id,
          frame: r.value.frame.startAddress,
          flags: 0,
        });
        if (r.value.frame.startAddress !== mine.frame) {
          fail(`contended unmap ${spec.va.toString(16)} returned ${r.value.frame}`);
        }
        counts.contendedUnmaps++;
      } else {
        fail(`contended unmap ${spec.va.toString(16)}: ${r.error.kind}`);
      }
      held.delete(k);
    } else {
      // Held by this worker: nobody else may change it.
      expectTranslation(spec, mine);
    }
  };

  /** A page other workers may be changing: not mapped, or mapped by a legitimate holder. */
  const foreignTranslate = (spec: PageSpec): void => {
    counts.foreignTranslates++;
    const t = mapper.translate(VirtAddr.newUnchecked(spec.va));
    if (t.kind === 'NotMapped') return;
    if (t.kind !== 'Mapped') {
      foreignViolations++;
      return;
    }
    const { worker, slot } = decodeFrame(t.frame.startAddress);
    const okWorker = spec.owner === 0 ? worker >= 1 && worker <= workers : worker === spec.owner;
    if (
      !okWorker ||
      slot !== spec.slot ||
      t.frame.size.shift !== spec.shift ||
      (t.flags & PRESENT) === 0 ||
      (t.flags & HUGE_PAGE) !== (spec.shift === 12 ? 0 : HUGE_PAGE)
    ) {
      foreignViolations++;
    }
  };

  const pick = <T>(xs: readonly T[]): T => xs[random() % xs.length]!;

  let aborted = false;
  let roundsRun = 0;
  let reportedLost = 0;
  let startedAt = 0;
  try {
    // Round 0's barrier is the start line (nobody maps before every worker is ready); the one
    // that sets CTL_STOP is the final barrier (nobody looks at the final state before all are done).
    for (let r = 0; ; r++) {
      Atomics.add(ctl, CTL_LOST, mapper.lostTableRaces - reportedLost);
      reportedLost = mapper.lostTableRaces;
      const arrived = barrier(ctl, workers, () => {
        const enough =
          Atomics.load(ctl, CTL_LOST) >= input.minLostRaces || Date.now() > input.extendUntil;
        if (r >= rounds || (r >= input.minRounds && enough)) Atomics.store(ctl, CTL_STOP, 1);
      });
      if (!arrived) {
        aborted = true;
        break;
      }
      if (r === 0) startedAt = performance.now();
      if (Atomics.load(ctl, CTL_STOP) !== 0) {
        roundsRun = r;
        break;
      }
      const roundPages = roundOwn[r]!;
      const roundContended = contended[FIXED_CONTENDED + r]!;
      for (let op = 0; op < opsPerRound; op++) {
        counts.ops++;
        try {
          if (op < ROUND_PER_WORKER) {
            // Everyone enters the fresh region at once: its level-3, 2 and 1 tables race.
            privateOp(roundPages[op]!, true);
          } else if (op === ROUND_PER_WORKER) {
            // Everyone tries the round's contended page at once: one winner.
            contendedOp(roundContended, false);
          } else {
            const x = random() % 100;
            if (x < 35) privateOp(pick(roundPages), false);
            else if (x < 65) privateOp(pick(hotOwn), false);
            else if (x < 75) contendedOp(roundContended, true);
            else if (x < 88) contendedOp(pick(fixedContended), true);
            else {
              const y = random() % 3;
              foreignTranslate(
                y === 0 ? pick(hotAll) : y === 1 ? pick(roundAll[r]!) : pick(contended),
              );
            }
          }
        } catch (e) {
          fail(`op ${counts.ops}: ${(e as Error).stack ?? e}`);
        }
      }
    }
  } catch (e) {
    fail(`${(e as Error).stack ?? e}`);
  }

  const view: ViewEntry[] = [];
  if (!aborted) {
    // Pages of rounds that never ran are left to the test's walk.
    for (const spec of layout) {
      if (spec.round >= roundsRun) continue;
      try {
        const t = mapper.translate(VirtAddr.newUnchecked(spec.va));
        view.push(
          t.kind === 'Mapped'
            ? { va: spec.va, frame: t.frame.startAddress, flags: t.flags }
            : { va: spec.va, frame: -1, flags: 0 },
        );
      } catch (e) {
        fail(`final view ${spec.va.toString(16)}: ${(e as Error).message}`);
      }
    }
  }

  return {
    id,
    rounds: roundsRun,
    runMs: performance.now() - startedAt,
    privateLog,
    contendedLog,
    contendedParentFlags,
    attempts,
    wins,
    alreadyMapped,
    held: [...held].map(([k, m]) => [k, m.frame, m.flags]),
    view,
    lostTableRaces: mapper.lostTableRaces,
    tableAllocations,
    tableFrees,
    frameConflicts,
    ownerConflicts,
    foreignViolations,
    counts,
    pendingFlushes: mapper.flushLedger.pendingCount,
    errors,
    errorCount,
    aborted,
  };
}

const input = workerData as MapperWorkerInput | undefined;
if (parentPort !== null && input?.kind === 'concurrent-mapper') {
  parentPort.postMessage(run(input));
}
