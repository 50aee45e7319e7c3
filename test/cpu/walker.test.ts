/**
 * Tests of the hardware page walker (src/cpu/walker.ts) against Intel SDM Vol. 3A chapter 4:
 * effective rights over the four levels (§4.6), ACCESSED/DIRTY updates with compare-exchange
 * (§4.8), the #PF error code (§4.7), reserved bits (§4.5.4) and huge pages. The page tables are
 * written by hand into a `PhysicalMemory`, so every entry bit is under the test's control.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PF_FETCH, PF_PRESENT, PF_RSVD, PF_USER, PF_WRITE } from '../../src/cpu/fault.ts';
import { type WalkControl, Walker, WalkOutcome } from '../../src/cpu/walker.ts';
import { PhysicalMemory } from '../../src/memory/physical-memory.ts';
import type { PageTableLevel } from '../../src/paging/page-table-index.ts';

// Entry bits, 64-bit.
const P = 1n;
const W = 2n;
const U = 4n;
const A = 0x20n;
const D = 0x40n;
const PS = 0x80n;
const G = 0x100n;
const NX = 1n << 63n;

const RAM = 0x10_0000; // 1 MiB
/** Tables: P4 at 0x1000, P3 at 0x2000, P2 at 0x3000, P1 at 0x4000. */
const TABLE: Record<PageTableLevel, number> = { 4: 0x1000, 3: 0x2000, 2: 0x3000, 1: 0x4000 };
/** The 4 KiB frame the test page maps to. */
const FRAME = 0x8_0000;
/** Indices 1, 2, 3, 4 at levels 4, 3, 2, 1. */
const INDEX: Record<PageTableLevel, number> = { 4: 1, 3: 2, 2: 3, 1: 4 };
const VA = 1 * 2 ** 39 + 2 * 2 ** 30 + 3 * 2 ** 21 + 4 * 2 ** 12;
const LEVELS: PageTableLevel[] = [4, 3, 2, 1];

const ON: WalkControl = { wp: true, nxe: true };

/** The physical address of the entry for `VA` at `level`. */
const slot = (level: PageTableLevel) => TABLE[level] + INDEX[level] * 8;

/** What each level's entry points to: the next table, or the frame at level 1. */
const target = (level: PageTableLevel) =>
  BigInt(level === 1 ? FRAME : TABLE[(level - 1) as PageTableLevel]);

/**
 * A 4 KiB mapping of `VA` to `FRAME` whose entries carry `base` flags (PRESENT|WRITABLE|USER by
 * default) with per-level `extra` bits ORed in and `clear` bits removed.
 */
function build(
  opts: {
    base?: bigint;
    extra?: Partial<Record<PageTableLevel, bigint>>;
    clear?: Partial<Record<PageTableLevel, bigint>>;
  } = {},
  memory = new PhysicalMemory(RAM),
): PhysicalMemory {
  const base = opts.base ?? P | W | U;
  for (const level of LEVELS) {
    const flags = (base | (opts.extra?.[level] ?? 0n)) & ~(opts.clear?.[level] ?? 0n);
    memory.storeEntry(slot(level), target(level) | flags);
  }
  return memory;
}

function walk(
  memory: PhysicalMemory,
  kind: 'read' | 'write' | 'fetch',
  user = false,
  ctl: WalkControl = ON,
  addr = VA,
): { walker: Walker; outcome: WalkOutcome } {
  const walker = new Walker(memory);
  const outcome = walker.walk(TABLE[4], addr, kind, user, ctl);
  return { walker, outcome };
}

describe('Walker: a 4 KiB translation', () => {
  it('translates the page and keeps the offset', () => {
    const mem = build();
    const { walker, outcome } = walk(mem, 'read', false, ON, VA + 0x123);
    expect(outcome).toBe(WalkOutcome.Ok);
    expect(walker.pageStart).toBe(VA);
    expect(walker.frame).toBe(FRAME);
    expect(walker.sizeShift).toBe(12);
    expect(walker.entriesRead).toBe(4);
    expect(walker.writable && walker.user && !walker.noExecute).toBe(true);
  });

  it('reports the leaf GLOBAL bit, and only the leaf one', () => {
    expect(walk(build({ extra: { 1: G } }), 'read').walker.global).toBe(true);
    expect(walk(build({ extra: { 4: G, 3: G, 2: G } }), 'read').walker.global).toBe(false);
  });
});

describe('Walker: effective rights (SDM §4.6)', () => {
  it.each(LEVELS)('WRITABLE is the AND over all levels (cleared at level %i)', (level) => {
    const mem = build({ clear: { [level]: W } });
    const read = walk(mem, 'read');
    expect(read.outcome).toBe(WalkOutcome.Ok);
    expect(read.walker.writable).toBe(false);
    // Supervisor write with CR0.WP: P|W.
    const sw = walk(mem, 'write');
    expect(sw.outcome).toBe(WalkOutcome.Fault);
    expect(sw.walker.errorCode).toBe(PF_PRESENT | PF_WRITE);
    // User write: P|W|U, with or without WP.
    const uw = walk(mem, 'write', true, { wp: false, nxe: true });
    expect(uw.outcome).toBe(WalkOutcome.Fault);
    expect(uw.walker.errorCode).toBe(PF_PRESENT | PF_WRITE | PF_USER);
  });

  it('a supervisor write to a read-only page faults only with CR0.WP', () => {
    const mem = build({ clear: { 2: W } });
    expect(walk(mem, 'write', false, { wp: true, nxe: true }).outcome).toBe(WalkOutcome.Fault);
    const noWp = walk(mem, 'write', false, { wp: false, nxe: true });
    expect(noWp.outcome).toBe(WalkOutcome.Ok);
    expect(noWp.walker.writable).toBe(false);
  });

  it('writable everywhere: writes succeed for user and supervisor', () => {
    const mem = build();
    expect(walk(mem, 'write', true).outcome).toBe(WalkOutcome.Ok);
    expect(walk(mem, 'write', false).walker.writable).toBe(true);
  });

  it.each(LEVELS)('USER_ACCESSIBLE is the AND over all levels (cleared at level %i)', (level) => {
    const mem = build({ clear: { [level]: U } });
    const sup = walk(mem, 'read');
    expect(sup.outcome).toBe(WalkOutcome.Ok);
    expect(sup.walker.user).toBe(false);
    const usr = walk(mem, 'read', true);
    expect(usr.outcome).toBe(WalkOutcome.Fault);
    expect(usr.walker.errorCode).toBe(PF_PRESENT | PF_USER);
  });

  it.each(LEVELS)('NO_EXECUTE is the OR over all levels (set at level %i, NXE on)', (level) => {
    const mem = build({ extra: { [level]: NX } });
    const read = walk(mem, 'read');
    expect(read.outcome).toBe(WalkOutcome.Ok);
    expect(read.walker.noExecute).toBe(true);
    const fetch = walk(mem, 'fetch');
    expect(fetch.outcome).toBe(WalkOutcome.Fault);
    expect(fetch.walker.errorCode).toBe(PF_PRESENT | PF_FETCH);
    const userFetch = walk(mem, 'fetch', true);
    expect(userFetch.walker.errorCode).toBe(PF_PRESENT | PF_FETCH | PF_USER);
  });

  it('a fetch from a page without NO_EXECUTE succeeds', () => {
    const { outcome, walker } = walk(build(), 'fetch', true);
    expect(outcome).toBe(WalkOutcome.Ok);
    expect(walker.noExecute).toBe(false);
  });
});

describe('Walker: ACCESSED and DIRTY (SDM §4.8)', () => {
  it('a read sets ACCESSED on all four levels and DIRTY nowhere', () => {
    const mem = build();
    const { walker } = walk(mem, 'read');
    for (const level of LEVELS) {
      expect(mem.loadEntry(slot(level)) & (A | D), `level ${level}`).toBe(A);
    }
    expect(walker.adUpdates).toBe(4);
    expect(walker.dirty).toBe(false);
  });

  it('a write sets ACCESSED on every level and DIRTY on the leaf only', () => {
    const mem = build();
    const { walker } = walk(mem, 'write');
    for (const level of [4, 3, 2] as const) {
      expect(mem.loadEntry(slot(level)) & (A | D), `level ${level}`).toBe(A);
    }
    expect(mem.loadEntry(slot(1)) & (A | D)).toBe(A | D);
    expect(walker.dirty).toBe(true);
  });

  it('a write to a 2 MiB page sets DIRTY on the level-2 leaf, not on the tables above', () => {
    const mem = build();
    mem.storeEntry(slot(2), 0x20_0000n | P | W | PS);
    walk(mem, 'write');
    expect(mem.loadEntry(slot(2)) & (A | D)).toBe(A | D);
    expect(mem.loadEntry(slot(3)) & D).toBe(0n);
    expect(mem.loadEntry(slot(4)) & D).toBe(0n);
  });

  it('bits already set are not updated again', () => {
    const mem = build();
    walk(mem, 'write');
    const again = walk(mem, 'write');
    expect(again.walker.adUpdates).toBe(0);
    expect(again.walker.dirty).toBe(true);
  });

  it('the onAdSet hook sees every update with its entry address, bits and level', () => {
    const mem = build();
    const seen: [number, number, PageTableLevel][] = [];
    new Walker(mem, (e, bits, level) => seen.push([e, bits, level])).walk(
      TABLE[4],
      VA,
      'write',
      false,
      ON,
    );
    expect(seen).toEqual([
      [slot(4), Number(A), 4],
      [slot(3), Number(A), 3],
      [slot(2), Number(A), 2],
      [slot(1), Number(A | D), 1],
    ]);
  });

  it('a fault sets neither bit on the faulting leaf', () => {
    const mem = build({ clear: { 1: W } });
    walk(mem, 'write');
    expect(mem.loadEntry(slot(1)) & (A | D)).toBe(0n);
  });
});

/**
 * RAM where another "CPU" changes one entry right after the walker reads it (between the read and
 * the walker's compare-exchange), once.
 */
class RacyMemory extends PhysicalMemory {
  private armed = true;
  constructor(
    private readonly victim: number,
    private readonly change: (mem: PhysicalMemory) => void,
  ) {
    super(RAM);
  }
  override loadEntryWordsUnchecked(addr: number, out: Uint32Array): void {
    super.loadEntryWordsUnchecked(addr, out);
    if (this.armed && addr === this.victim) {
      this.armed = false;
      this.change(this);
    }
  }
}

describe('Walker: A/D updates are compare-exchange; a concurrent change restarts the walk', () => {
  it('a leaf remapped between read and update: the walk restarts and uses the new frame', () => {
    const NEW_FRAME = 0x9_0000n;
    const mem = new RacyMemory(slot(1), (m) => m.storeEntry(slot(1), NEW_FRAME | P | W | U));
    build({}, mem);
    const { walker, outcome } = walk(mem, 'write');
    expect(outcome).toBe(WalkOutcome.Ok);
    expect(walker.restarts).toBe(1);
    expect(walker.frame).toBe(Number(NEW_FRAME));
    // The concurrent value survives, with A|D ORed in: no stale value was written back.
    expect(mem.loadEntry(slot(1))).toBe(NEW_FRAME | P | W | U | A | D);
  });

  it('a leaf unmapped between read and update: the walk restarts and faults not-present', () => {
    const mem = new RacyMemory(slot(1), (m) => m.storeEntry(slot(1), 0n));
    build({}, mem);
    const { walker, outcome } = walk(mem, 'read');
    expect(outcome).toBe(WalkOutcome.Fault);
    expect(walker.errorCode).toBe(0);
    expect(walker.restarts).toBe(1);
    expect(mem.loadEntry(slot(1))).toBe(0n);
  });

  it('a table entry whose flags change between read and update: restart, change kept', () => {
    const mem = new RacyMemory(slot(3), (m) => m.storeEntry(slot(3), target(3) | P | U)); // W cleared
    build({}, mem);
    const { walker, outcome } = walk(mem, 'write');
    expect(walker.restarts).toBe(1);
    expect(outcome).toBe(WalkOutcome.Fault);
    expect(walker.errorCode).toBe(PF_PRESENT | PF_WRITE);
    expect(mem.loadEntry(slot(3))).toBe(target(3) | P | U | A);
  });

  it('another walker setting ACCESSED first (an A/D-only change) also restarts, and both bits stay', () => {
    const mem = new RacyMemory(slot(1), (m) => m.fetchOrEntry(slot(1), A));
    build({}, mem);
    const { walker, outcome } = walk(mem, 'write');
    expect(outcome).toBe(WalkOutcome.Ok);
    expect(walker.restarts).toBe(1);
    expect(mem.loadEntry(slot(1)) & (A | D)).toBe(A | D);
  });

  it('a change made from the onAdSet hook (after the level-4 update) is seen by the rest of the walk', () => {
    const mem = build();
    const NEW_FRAME = 0xa_0000n;
    const walker = new Walker(mem, (_e, _bits, level) => {
      if (level === 4) mem.storeEntry(slot(1), NEW_FRAME | P | W | U);
    });
    expect(walker.walk(TABLE[4], VA, 'read', false, ON)).toBe(WalkOutcome.Ok);
    expect(walker.frame).toBe(Number(NEW_FRAME));
    expect(walker.restarts).toBe(0);
  });
});

describe('Walker: #PF error codes (SDM §4.7)', () => {
  it.each(LEVELS)('not present at level %i: P=0, only the access bits', (level) => {
    const mem = build({ clear: { [level]: P } });
    expect(walk(mem, 'read').walker.errorCode).toBe(0);
    expect(walk(mem, 'write').walker.errorCode).toBe(PF_WRITE);
    expect(walk(mem, 'write', true).walker.errorCode).toBe(PF_WRITE | PF_USER);
    expect(walk(mem, 'fetch', true).walker.errorCode).toBe(PF_FETCH | PF_USER);
    expect(walk(mem, 'read').outcome).toBe(WalkOutcome.Fault);
  });

  it('write to read-only: P|W for user; for supervisor only with WP', () => {
    const mem = build({ clear: { 1: W } });
    expect(walk(mem, 'write', true, { wp: false, nxe: true }).walker.errorCode).toBe(
      PF_PRESENT | PF_WRITE | PF_USER,
    );
    expect(walk(mem, 'write', false, ON).walker.errorCode).toBe(PF_PRESENT | PF_WRITE);
    expect(walk(mem, 'write', false, { wp: false, nxe: true }).outcome).toBe(WalkOutcome.Ok);
  });

  it('user access to a supervisor page: P|U', () => {
    const mem = build({ clear: { 1: U } });
    expect(walk(mem, 'read', true).walker.errorCode).toBe(PF_PRESENT | PF_USER);
    expect(walk(mem, 'write', true).walker.errorCode).toBe(PF_PRESENT | PF_WRITE | PF_USER);
  });

  it('fetch from an NX page: P|I with NXE', () => {
    const mem = build({ extra: { 1: NX } });
    expect(walk(mem, 'fetch').walker.errorCode).toBe(PF_PRESENT | PF_FETCH);
  });

  it('without NXE, NO_EXECUTE (bit 63) is a reserved bit: RSVD|P on any access', () => {
    const mem = build({ extra: { 3: NX } });
    const off: WalkControl = { wp: true, nxe: false };
    expect(walk(mem, 'read', false, off).walker.errorCode).toBe(PF_PRESENT | PF_RSVD);
    expect(walk(mem, 'write', true, off).walker.errorCode).toBe(
      PF_PRESENT | PF_RSVD | PF_WRITE | PF_USER,
    );
    // And without bit 63 a fetch is allowed when NXE is off.
    expect(walk(build(), 'fetch', false, off).outcome).toBe(WalkOutcome.Ok);
  });

  // SDM Vol. 3A §4.7: the I/D flag is set only if the access was a fetch AND (CR4.SMEP = 1 or
  // (PAE/4-level paging and IA32_EFER.NXE = 1)). With NXE off (no SMEP modeled) it must be 0.
  it('without NXE a faulting fetch leaves I/D (bit 4) clear', () => {
    const off: WalkControl = { wp: true, nxe: false };
    expect(walk(build({ clear: { 1: P } }), 'fetch', false, off).walker.errorCode).toBe(0);
    expect(walk(build({ clear: { 1: U } }), 'fetch', true, off).walker.errorCode).toBe(
      PF_PRESENT | PF_USER,
    );
  });

  it('HUGE_PAGE in a level-4 entry is reserved: RSVD|P', () => {
    const mem = build({ extra: { 4: PS } });
    const { walker, outcome } = walk(mem, 'read');
    expect(outcome).toBe(WalkOutcome.Fault);
    expect(walker.errorCode).toBe(PF_PRESENT | PF_RSVD);
    expect(walk(mem, 'write', true).walker.errorCode).toBe(
      PF_PRESENT | PF_RSVD | PF_WRITE | PF_USER,
    );
  });

  it.each([
    [2, 13],
    [2, 20],
    [3, 13],
    [3, 21],
    [3, 29],
  ] as const)(
    'a level-%i huge leaf with address bit %i set (below its size) is RSVD|P',
    (level, bit) => {
      const mem = build();
      const frame = level === 2 ? 0x20_0000n : 0x4000_0000n;
      mem.storeEntry(slot(level), frame | (1n << BigInt(bit)) | P | W | PS);
      const { walker, outcome } = walk(mem, 'read');
      expect(outcome).toBe(WalkOutcome.Fault);
      expect(walker.errorCode).toBe(PF_PRESENT | PF_RSVD);
    },
  );

  it.each([2, 3] as const)('bit 12 (PAT) of a level-%i huge leaf is not reserved', (level) => {
    const mem = build();
    const frame = level === 2 ? 0x20_0000 : 0x4000_0000;
    mem.storeEntry(slot(level), BigInt(frame) | 0x1000n | P | W | PS);
    const { walker, outcome } = walk(mem, 'read');
    expect(outcome).toBe(WalkOutcome.Ok);
    expect(walker.frame).toBe(frame);
  });

  it('a not-present entry with reserved bits is a not-present fault (P=0, no RSVD)', () => {
    const mem = build();
    mem.storeEntry(slot(4), target(4) | PS); // P clear
    expect(walk(mem, 'read').walker.errorCode).toBe(0);
  });
});

describe('Walker: huge pages', () => {
  it('a 1 GiB leaf at level 3 translates any offset', () => {
    const GFRAME = 0x1_4000_0000; // 5 GiB: the leaf frame need not be in RAM
    const mem = build();
    mem.storeEntry(slot(3), BigInt(GFRAME) | P | W | PS);
    const base = VA - (VA % 2 ** 30);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 30 - 1 }), (off) => {
        const w = new Walker(mem);
        expect(w.walk(TABLE[4], base + off, 'read', false, ON)).toBe(WalkOutcome.Ok);
        expect(w.sizeShift).toBe(30);
        expect(w.pageStart).toBe(base);
        expect(w.frame).toBe(GFRAME);
        expect(w.frame + (base + off - w.pageStart)).toBe(GFRAME + off);
        expect(w.entriesRead).toBe(2);
      }),
    );
  });

  it('a 2 MiB leaf at level 2 translates any offset', () => {
    const MFRAME = 0x60_0000;
    const mem = build();
    mem.storeEntry(slot(2), BigInt(MFRAME) | P | W | PS);
    const base = VA - (VA % 2 ** 21);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 21 - 1 }), (off) => {
        const w = new Walker(mem);
        expect(w.walk(TABLE[4], base + off, 'write', false, ON)).toBe(WalkOutcome.Ok);
        expect(w.sizeShift).toBe(21);
        expect(w.pageStart).toBe(base);
        expect(w.frame + (base + off - w.pageStart)).toBe(MFRAME + off);
        expect(w.entriesRead).toBe(3);
      }),
    );
  });

  it('rights of a huge leaf are still ANDed with the tables above it', () => {
    const mem = build({ clear: { 4: U } });
    mem.storeEntry(slot(2), 0x20_0000n | P | W | U | PS);
    expect(walk(mem, 'read', true).walker.errorCode).toBe(PF_PRESENT | PF_USER);
  });
});

describe('Walker: a table outside RAM', () => {
  it.each([4, 3, 2] as const)(
    'a level-%i entry pointing past RAM returns TableOutsideRam',
    (level) => {
      const mem = build();
      const bad = 0x4000_0000; // 1 GiB, RAM is 1 MiB
      mem.storeEntry(slot(level), BigInt(bad) | P | W | U);
      const { walker, outcome } = walk(mem, 'read');
      expect(outcome).toBe(WalkOutcome.TableOutsideRam);
      expect(walker.badTable).toBe(bad);
    },
  );

  it('a table whose last byte would pass the end of RAM is outside RAM too', () => {
    const mem = build();
    mem.storeEntry(slot(4), BigInt(RAM) | P | W);
    expect(walk(mem, 'read').outcome).toBe(WalkOutcome.TableOutsideRam);
    mem.storeEntry(slot(4), BigInt(RAM - 0x1000) | P | W);
    // The last frame of RAM is a valid (empty) table: a not-present fault at level 3.
    expect(walk(mem, 'read').outcome).toBe(WalkOutcome.Fault);
  });
});

describe('Walker.probe: what the tables say now, touching nothing', () => {
  it('gives the physical address and the effective rights, and sets no A/D bit', () => {
    const mem = build({ clear: { 2: W } });
    const before = LEVELS.map((l) => mem.loadEntry(slot(l)));
    const walker = new Walker(mem);
    expect(walker.probe(TABLE[4], VA + 0x123, ON)).toBe(FRAME + 0x123);
    expect(walker.probeWritable).toBe(false); // cleared at level 2: the AND over all levels
    expect(walker.probeUser).toBe(true);
    expect(walker.probeNoExecute).toBe(false);
    expect(walker.probeDirty).toBe(false);
    expect(LEVELS.map((l) => mem.loadEntry(slot(l)))).toEqual(before);
  });

  it('reports the leaf DIRTY bit and NO_EXECUTE at any level', () => {
    const mem = build({ extra: { 1: D | A, 3: NX } });
    const walker = new Walker(mem);
    expect(walker.probe(TABLE[4], VA, ON)).toBe(FRAME);
    expect(walker.probeDirty).toBe(true);
    expect(walker.probeNoExecute).toBe(true);
  });

  it('-1 for a not-present entry at any level, or a reserved bit', () => {
    for (const level of LEVELS) {
      expect(new Walker(build({ clear: { [level]: P } })).probe(TABLE[4], VA, ON)).toBe(-1);
    }
    expect(new Walker(build({ extra: { 4: PS } })).probe(TABLE[4], VA, ON)).toBe(-1);
    expect(
      new Walker(build({ extra: { 2: NX } })).probe(TABLE[4], VA, { wp: true, nxe: false }),
    ).toBe(-1);
  });

  it('agrees with walk() on the frame of a huge page', () => {
    const mem = build();
    mem.storeEntry(slot(2), 0x20_0000n | P | W | PS);
    const walker = new Walker(mem);
    expect(walker.probe(TABLE[4], VA + 0x1234, ON)).toBe(0x20_0000 + 4 * 4096 + 0x1234);
    expect(walker.walk(TABLE[4], VA + 0x1234, 'read', false, ON)).toBe(WalkOutcome.Ok);
    expect(walker.frame + (VA + 0x1234 - walker.pageStart)).toBe(0x20_0000 + 4 * 4096 + 0x1234);
  });
});
