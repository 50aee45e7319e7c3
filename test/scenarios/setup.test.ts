/**
 * `setupScenario` (src/scenarios/setup.ts): RAM and the shared allocator, the spec's order
 * (reserve mapped frames, then every level-4 table in declaration order, then the mappings in file
 * order), crate-derived parent flags, and mapping failures reported at `address_spaces.X.map[i]`.
 */

import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PhysAddr, VirtAddr } from '../../src/addr.ts';
import { PhysicalMemory } from '../../src/memory/physical-memory.ts';
import { PageTableFlags } from '../../src/paging/flags.ts';
import { PhysFrame } from '../../src/paging/frame.ts';
import { Size4KiB } from '../../src/paging/page-size.ts';
import { PageTableIndex } from '../../src/paging/page-table-index.ts';
import { scenario } from '../../src/scenarios/builder.ts';
import { loadScenario, ScenarioError } from '../../src/scenarios/load.ts';
import type { Scenario } from '../../src/scenarios/scenario.ts';
import { setupScenario } from '../../src/scenarios/setup.ts';

const EXAMPLE_TEXT = readFileSync(
  new URL('../../scenarios/unmap-without-shootdown.json', import.meta.url),
  'utf8',
);

const frame = (addr: number) => PhysFrame.fromStartAddressUnchecked(PhysAddr.new(addr), Size4KiB);

function errorOf(run: () => unknown): ScenarioError {
  try {
    run();
  } catch (e) {
    if (e instanceof ScenarioError) return e;
    throw e;
  }
  throw new Error('accepted, expected a ScenarioError');
}

describe('setupScenario', () => {
  it('the example sets up: its page translates, the P4 is the lowest free frame, RAM is zeroed', () => {
    const s = loadScenario(EXAMPLE_TEXT);
    const { memory, allocator, spaces } = setupScenario(s);
    expect(memory.bytes).toBe(0x1000000);
    expect(allocator.start).toBe(0);
    expect(allocator.end).toBe(0x1000000);
    const a = spaces.get('A')!;
    expect(a.name).toBe('A');
    expect(a.pcid).toBe(1);
    expect(a.p4.startAddress).toBe(0);
    expect(a.mapper.level4Frame).toBe(a.p4);
    const t = a.mapper.translate(VirtAddr.new(0x400123));
    expect(t).toMatchObject({ kind: 'Mapped', offset: 0x123 });
    if (t.kind === 'Mapped') {
      expect(t.frame.startAddress).toBe(0x200000);
      expect(t.flags).toBe(PageTableFlags.fromBitsTruncate(0x7n));
    }
    // P4, P3, P2, P1 in frames 0..3, and the mapped frame: nothing else is in use.
    expect(allocator.allocatedFrames().map((f) => f.startAddress)).toEqual([
      0x0, 0x1000, 0x2000, 0x3000, 0x200000,
    ]);
    // The data frame is still zero: only page tables were written.
    expect(memory.read64(0x200000)).toBe(0n);
    // Every flush the mappings returned was ignored: nothing pending.
    expect(a.mapper.flushLedger.pendingCount).toBe(0);
    expect(a.mapper.flushLedger.ignored).toBe(1);
  });

  it('builds in RAM it is given (all zero, the scenario size) exactly as in fresh RAM', () => {
    const s = loadScenario(EXAMPLE_TEXT);
    const ram = new PhysicalMemory(s.machine.ramBytes);
    const given = setupScenario(s, ram);
    expect(given.memory).toBe(ram);
    const fresh = setupScenario(s);
    for (let a = 0; a < 0x4000; a += 8) expect(ram.read64(a)).toBe(fresh.memory.read64(a));
    expect(() => setupScenario(s, new PhysicalMemory(0x1000))).toThrow(
      /the RAM given has 4096 bytes, the scenario 16777216/,
    );
  });

  it('level-4 tables are the lowest free frames, in declaration order, before any mapping', () => {
    const s = scenario('order')
      .addressSpace('Z', (as) => as.map4k(0x1000, 0x1000, 'PRESENT'))
      .addressSpace('A', (as) => as.map4k(0x2000, 0x3000, 'PRESENT|WRITABLE'))
      .addressSpace('M')
      .cpu('Z')
      .build();
    const { spaces, allocator } = setupScenario(s);
    expect([...spaces.keys()]).toEqual(['Z', 'A', 'M']);
    expect([...spaces.values()].map((sp) => [sp.p4.startAddress, sp.pcid])).toEqual([
      [0x0, 1],
      [0x2000, 2],
      [0x4000, 3],
    ]);
    // Then Z's three intermediate tables, then A's: the lowest frames still free, in file order.
    const z = spaces.get('Z')!;
    const p3 = Number(z.mapper.level4Table().entry(PageTableIndex.new(0)).addr());
    expect(p3).toBe(0x5000);
    expect(allocator.allocatedFrames().map((f) => f.startAddress)).toEqual([
      0x0, 0x1000, 0x2000, 0x3000, 0x4000, 0x5000, 0x6000, 0x7000, 0x8000, 0x9000, 0xa000,
    ]);
  });

  it('parent entries get the leaf flags ∩ PRESENT|WRITABLE|USER_ACCESSIBLE, as the crate derives them', () => {
    const s = scenario('parents')
      .addressSpace('A', (as) => as.map4k(0x400000, 0x200000, 'PRESENT|WRITABLE|GLOBAL|NO_EXECUTE'))
      .cpu('A')
      .build();
    const { memory, spaces } = setupScenario(s);
    const p4 = spaces.get('A')!.p4.startAddress;
    expect(memory.loadEntry(p4)).toBe(0x1000n | 0x3n);
  });

  it('a 2 MiB mapping reserves its 512 frames; aliases reserve once; reserved frames are never handed out', () => {
    const s = scenario('reserve')
      .machine({ ramBytes: 0x400000 })
      .addressSpace('A', (as) =>
        as
          .map2m(0x200000, 0x0, 'PRESENT|WRITABLE')
          .map4k(0x1000, 0x1000, 'PRESENT')
          .map4k(0x2000, 0x1000, 'PRESENT')
          .map4k(0x3000, 0x201000, 'PRESENT'),
      )
      .addressSpace('B', (as) => as.map4k(0x1000, 0x201000, 'PRESENT|WRITABLE'))
      .cpu('A')
      .build();
    const { allocator, spaces } = setupScenario(s);
    expect(spaces.get('A')!.p4.startAddress).toBe(0x200000);
    expect(spaces.get('B')!.p4.startAddress).toBe(0x202000);
    const reserved = new Set<number>([0x201000]);
    for (let a = 0; a < 0x200000; a += 0x1000) reserved.add(a);
    for (const r of reserved) expect(allocator.isAllocated(frame(r))).toBe(true);
    const handedOut: number[] = [];
    for (let f = allocator.allocateFrame(); f !== undefined; f = allocator.allocateFrame()) {
      handedOut.push(f.startAddress);
    }
    expect(handedOut.some((a) => reserved.has(a))).toBe(false);
    // 1024 frames: 513 reserved, 2 level-4 tables, 2 + 1 tables for A and 3 for B.
    expect(handedOut.length).toBe(1024 - 513 - 2 - 6);
    expect(allocator.freeCount()).toBe(0);
  });

  it('property: frames covered by initial mappings are never P4s, tables or later allocations', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            page: fc.integer({ min: 0, max: 63 }),
            frame: fc.integer({ min: 0, max: 127 }),
            space: fc.constantFrom('A', 'B'),
          }),
          { maxLength: 12 },
        ),
        (maps) => {
          const b = scenario('prop').machine({ ramBytes: 0x100000 });
          for (const name of ['A', 'B']) {
            const seen = new Set<number>();
            b.addressSpace(name, (as) => {
              for (const m of maps) {
                if (m.space !== name || seen.has(m.page)) continue;
                seen.add(m.page);
                as.map4k(m.page * 0x1000, m.frame * 0x1000, 'PRESENT|WRITABLE');
              }
            });
          }
          const s = b.cpu('A').build();
          const { allocator, spaces } = setupScenario(s);
          const reserved = new Set<number>(
            s.addressSpaces.flatMap((sp) => sp.map.map((m) => m.frame)),
          );
          const tables = [...spaces.values()].map((sp) => sp.p4.startAddress);
          const later: number[] = [];
          for (let f = allocator.allocateFrame(); f !== undefined; f = allocator.allocateFrame()) {
            later.push(f.startAddress);
          }
          for (const a of [...tables, ...later]) expect(reserved.has(a)).toBe(false);
          // The P4s are the two lowest frames no mapping covers.
          const free = Array.from({ length: 256 }, (_, i) => i * 0x1000).filter(
            (a) => !reserved.has(a),
          );
          expect(tables).toEqual(free.slice(0, 2));
          for (const sp of spaces.values()) {
            for (const m of s.addressSpaces.find((x) => x.name === sp.name)!.map) {
              expect(sp.mapper.translateAddr(m.page)).toBe(m.frame);
            }
          }
        },
      ),
    );
  });
});

describe('setup errors name the address space and map index', () => {
  it('PageAlreadyMapped, naming the earlier mapping', () => {
    const s = scenario('dup')
      .addressSpace('A', (as) =>
        as.map4k(0x400000, 0x200000, 'PRESENT').map4k(0x400000, 0x300000, 'PRESENT'),
      )
      .cpu('A')
      .build();
    const e = errorOf(() => setupScenario(s));
    expect(e.path).toBe('address_spaces.A.map[1]');
    expect(e.reason).toMatch(/PageAlreadyMapped.*overlaps map\[0\] \(4KiB 0x400000 -> 0x200000\)/);
  });

  it('ParentEntryHugePage: a 4 KiB page under an earlier 2 MiB page', () => {
    const s = scenario('huge')
      .addressSpace('A')
      .addressSpace('B', (as) =>
        as.map2m(0x200000, 0x200000, 'PRESENT|WRITABLE').map4k(0x201000, 0x1000, 'PRESENT'),
      )
      .cpu('A')
      .build();
    const e = errorOf(() => setupScenario(s));
    expect(e.path).toBe('address_spaces.B.map[1]');
    expect(e.reason).toMatch(/ParentEntryHugePage.*overlaps map\[0\]/);
  });

  it('a 2 MiB page over an existing level-1 table is PageAlreadyMapped', () => {
    const s = scenario('over')
      .addressSpace('A', (as) =>
        as.map4k(0x201000, 0x1000, 'PRESENT').map2m(0x200000, 0x200000, 'PRESENT'),
      )
      .cpu('A')
      .build();
    expect(errorOf(() => setupScenario(s)).path).toBe('address_spaces.A.map[1]');
  });

  it('leaf flags without PRESENT where the parents are missing: the crate would panic', () => {
    const s = scenario('np')
      .addressSpace('A', (as) => as.map4k(0x400000, 0x200000, 'WRITABLE'))
      .cpu('A')
      .build();
    const e = errorOf(() => setupScenario(s));
    expect(e.path).toBe('address_spaces.A.map[0]');
    expect(e.reason).toMatch(/would make the crate panic/);
  });

  it('a non-present leaf under parents an earlier mapping made is fine', () => {
    const s = scenario('np-ok')
      .addressSpace('A', (as) =>
        as.map4k(0x400000, 0x200000, 'PRESENT').map4k(0x401000, 0x201000, 'BIT_9'),
      )
      .cpu('A')
      .build();
    const { spaces } = setupScenario(s);
    expect(spaces.get('A')!.mapper.translateAddr(VirtAddr.new(0x401000))).toBe(0x201000);
  });

  it('no frame left for a page table: FrameAllocationFailed at the mapping', () => {
    // 8 frames: 6 mapped, 1 P4, then 3 tables needed but only 1 left.
    const s = scenario('oom')
      .machine({ ramBytes: 0x8000 })
      .addressSpace('A', (as) => {
        for (let i = 0; i < 6; i++) as.map4k(0x1000 * (i + 1), 0x1000 * (i + 2), 'PRESENT');
      })
      .cpu('A')
      .build();
    const e = errorOf(() => setupScenario(s));
    expect(e.path).toBe('address_spaces.A.map[0]');
    expect(e.reason).toMatch(/FrameAllocationFailed.*8 frames, 6 reserved/);
  });

  it('no frame left for a level-4 table names the address space', () => {
    const s: Scenario = scenario('full')
      .machine({ ramBytes: 0x2000 })
      .addressSpace('A', (as) => as.map4k(0x1000, 0x0, 'PRESENT'))
      .addressSpace('B')
      .cpu('A')
      .build();
    const e = errorOf(() => setupScenario(s));
    expect(e.path).toBe('address_spaces.B');
    expect(e.reason).toMatch(/no free frame for its level-4 table/);
  });
});
