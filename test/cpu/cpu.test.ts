/**
 * Tests of `Cpu` (src/cpu/cpu.ts) through real scenario instructions: the TLB/walker fast and cold
 * paths, DIRTY re-walks, GLOBAL and PCID rules of CR3 writes, INVLPG, CR4.PGE toggles and INVPCID
 * (Intel SDM Vol. 3A §4.10, DESIGN decision 4), rights checked against the cached entry, page
 * faults, a store through a stale entry, the Mapper and allocator instructions, `assert`, and the
 * modeled cycles of DEFAULT_COST_MODEL (DESIGN decision 7).
 */

import { describe, expect, it } from 'vitest';
import { PhysAddr, VirtAddr } from '../../src/addr.ts';
import { DEFAULT_COST_MODEL } from '../../src/cpu/cost-model.ts';
import { type Cpu, StepResult } from '../../src/cpu/cpu.ts';
import { PF_FETCH, PF_PRESENT, PF_USER, PF_WRITE } from '../../src/cpu/fault.ts';
import type { PhysicalMemory } from '../../src/memory/physical-memory.ts';
import { PhysFrame } from '../../src/paging/frame.ts';
import { Size4KiB } from '../../src/paging/page-size.ts';
import { indexAt, type PageTableLevel } from '../../src/paging/page-table-index.ts';
import { type ProgramBuilder, scenario } from '../../src/scenarios/builder.ts';
import { runDeterministic } from '../../src/smp/hosts/deterministic.ts';
import { Machine } from '../../src/smp/machine.ts';
import { FlushOutcome, TraceKind } from '../../src/trace/record.ts';

const PAGE = 0x40_0000;
const PAGE2 = 0x40_1000;
const X = 0x20_0000;
const Y = 0x30_0000;

const A_BIT = 0x20n;
const D_BIT = 0x40n;
const ADDR_MASK = 0x000f_ffff_ffff_f000n;

/** One CPU in space A mapping PAGE -> X (`flags`) and PAGE2 -> X+0x1000 (non-global, RW). */
function solo(
  program: (p: ProgramBuilder) => unknown,
  opts: { flags?: string; pge?: boolean; wp?: boolean } = {},
): Machine {
  const s = scenario('solo')
    .machine({ protocol: 'none', pge: opts.pge ?? true, wp: opts.wp ?? true })
    .addressSpace('A', (as) =>
      as
        .map4k(PAGE, X, opts.flags ?? 'PRESENT|WRITABLE')
        .map4k(PAGE2, X + 0x1000, 'PRESENT|WRITABLE'),
    )
    .addressSpace('B')
    .cpu('A', program);
  return Machine.fromScenario(s.build());
}

/** Steps `cpu` `n` times (stamping `now`), returning the last result. */
function steps(cpu: Cpu, n: number): StepResult {
  let r = StepResult.Ran;
  for (let i = 0; i < n; i++) {
    cpu.now++;
    r = cpu.step();
  }
  return r;
}

/** Steps `cpu` until it stops. */
function finish(cpu: Cpu): void {
  for (let i = 0; i < 10_000 && !cpu.halted; i++) steps(cpu, 1);
}

/** The physical address of the level-`level` entry for `va` (following tables from CR3). */
function entryAddress(memory: PhysicalMemory, p4: number, va: number, level: PageTableLevel = 1) {
  let table = p4;
  for (let l = 4 as PageTableLevel; ; l = (l - 1) as PageTableLevel) {
    const at = table + indexAt(va, l) * 8;
    if (l === level) return at;
    table = Number(memory.loadEntry(at) & ADDR_MASK);
  }
}

const pages = (cpu: Cpu) =>
  cpu.tlb
    .entries()
    .map((e) => ({ page: e.pageStart, pcid: e.pcid, global: e.global, frame: e.frame }))
    .sort((a, b) => a.page - b.page || a.pcid - b.pcid);

describe('Cpu: TLB miss, walk, fill, hit', () => {
  it('the first access misses, walks and fills; the second hits (stats)', () => {
    const m = solo((p) => p.load(PAGE, 'r0').load(PAGE + 8, 'r1'));
    const cpu = m.cpus[0]!;
    steps(cpu, 1);
    expect(cpu.stats).toMatchObject({ tlbMisses: 1, walks: 1, tlbHits: 0 });
    expect(cpu.tlb.entries()).toHaveLength(1);
    expect(cpu.tlb.entries()[0]).toMatchObject({ pageStart: PAGE, frame: X, sizeShift: 12 });
    steps(cpu, 1);
    expect(cpu.stats).toMatchObject({ tlbMisses: 1, walks: 1, tlbHits: 1 });
  });

  it('the trace shows miss, walk, fill and access for the first load, hit and access for the second', () => {
    const m = solo((p) => p.load(PAGE, 'r0').load(PAGE, 'r1'));
    const run = runDeterministic(m);
    const kinds = run.records
      .map((r) => r.kind)
      .filter((k) => k !== TraceKind.Instruction && k !== TraceKind.AdSet);
    expect(kinds).toEqual([
      TraceKind.TlbMiss,
      TraceKind.Walk,
      TraceKind.TlbFill,
      TraceKind.Access,
      TraceKind.TlbHit,
      TraceKind.Access,
      TraceKind.Halt,
    ]);
  });

  // record.ts: "Instruction: a = program counter, b = index into `INSTRUCTION_NAMES`". No such
  // table exists and Cpu.step records b = 0 for every op, so a trace reader cannot tell a load
  // from a store by its Instruction record.
  it('Instruction records identify the op (b differs between a load and a store)', () => {
    const m = solo((p) => p.load(PAGE, 'r0').store(PAGE, 1));
    const ins = runDeterministic(m).records.filter((r) => r.kind === TraceKind.Instruction);
    expect(ins.map((r) => r.a)).toEqual([0, 1]);
    expect(ins[0]!.b).not.toBe(ins[1]!.b);
  });

  it('a load reads RAM through the translation', () => {
    const m = solo((p) => p.load(PAGE + 0x10, 'r2'));
    m.setup.memory.write64(X + 0x10, 0x1122_3344_5566_7788n);
    finish(m.cpus[0]!);
    expect(m.cpus[0]!.register(2)).toBe(0x1122_3344_5566_7788n);
  });
});

describe('Cpu: DIRTY', () => {
  it('a write through a cached entry whose DIRTY is clear re-walks and sets DIRTY in RAM', () => {
    const m = solo((p) => p.load(PAGE, 'r0').store(PAGE, 7));
    const cpu = m.cpus[0]!;
    const leaf = entryAddress(m.setup.memory, cpu.cr3Table, PAGE);
    steps(cpu, 1);
    expect(m.setup.memory.loadEntry(leaf) & (A_BIT | D_BIT)).toBe(A_BIT);
    expect(cpu.tlb.entries()[0]!.dirty).toBe(false);
    steps(cpu, 1);
    expect(m.setup.memory.loadEntry(leaf) & (A_BIT | D_BIT)).toBe(A_BIT | D_BIT);
    expect(cpu.stats.tlbMissDirtyRewalk).toBe(1);
    expect(cpu.stats.walks).toBe(2);
    expect(cpu.tlb.entries()).toHaveLength(1);
    expect(cpu.tlb.entries()[0]!.dirty).toBe(true);
    expect(m.setup.memory.read64(X)).toBe(7n);
  });

  // The re-walk refreshes the same page's entry in place (same page, same frame). The CPU's evict
  // hook sees Tlb.fill overwrite the slot and records it as a Capacity eviction, and counts it in
  // stats.evictions, although nothing was evicted to make room (TraceKind.TlbEvict: "an entry
  // left the TLB"; EvictReason.Capacity).
  it('a DIRTY re-walk records no capacity eviction (the entry is refreshed in place)', () => {
    const m = solo((p) => p.load(PAGE, 'r0').store(PAGE, 7));
    const run = runDeterministic(m);
    expect(run.records.filter((r) => r.kind === TraceKind.TlbEvict)).toEqual([]);
    expect(m.cpus[0]!.stats.evictions).toBe(0);
  });

  it('a write through a cached entry whose DIRTY is set does not walk', () => {
    const m = solo((p) => p.store(PAGE, 1).store(PAGE, 2));
    const cpu = m.cpus[0]!;
    finish(cpu);
    expect(cpu.stats).toMatchObject({ walks: 1, tlbHits: 1, tlbMissDirtyRewalk: 0 });
  });
});

describe('Cpu: GLOBAL entries, CR3 writes, INVLPG, CR4.PGE', () => {
  const GFLAGS = 'PRESENT|WRITABLE|GLOBAL';

  it('GLOBAL entries survive mov_cr3 (with pge); non-global ones go', () => {
    const m = solo((p) => p.load(PAGE, 'r0').load(PAGE2, 'r1').movCr3('B'), { flags: GFLAGS });
    const cpu = m.cpus[0]!;
    steps(cpu, 2);
    expect(pages(cpu).map((e) => [e.page, e.global])).toEqual([
      [PAGE, true],
      [PAGE2, false],
    ]);
    steps(cpu, 1);
    expect(pages(cpu).map((e) => e.page)).toEqual([PAGE]);
  });

  it('a GLOBAL entry still translates after switching to a space that does not map the page', () => {
    const m = solo((p) => p.store(PAGE, 0xab).movCr3('B').load(PAGE, 'r3'), { flags: GFLAGS });
    const cpu = m.cpus[0]!;
    finish(cpu);
    expect(cpu.status).toBe('halted');
    expect(cpu.register(3)).toBe(0xabn);
  });

  it('GLOBAL entries survive flush_all (with pge)', () => {
    const m = solo((p) => p.load(PAGE, 'r0').load(PAGE2, 'r1').flushAll(), { flags: GFLAGS });
    const cpu = m.cpus[0]!;
    finish(cpu);
    expect(pages(cpu).map((e) => e.page)).toEqual([PAGE]);
  });

  it('without pge a GLOBAL leaf makes a non-global entry, evicted by mov_cr3 and flush_all', () => {
    for (const op of ['mov_cr3', 'flush_all'] as const) {
      const m = solo(
        (p) => {
          p.load(PAGE, 'r0');
          if (op === 'mov_cr3') p.movCr3('B');
          else p.flushAll();
        },
        { flags: GFLAGS, pge: false },
      );
      const cpu = m.cpus[0]!;
      steps(cpu, 1);
      expect(cpu.tlb.entries()[0]!.global).toBe(false);
      steps(cpu, 1);
      expect(cpu.tlb.entries(), op).toEqual([]);
    }
  });

  it('invlpg evicts a GLOBAL entry', () => {
    const m = solo((p) => p.load(PAGE, 'r0').load(PAGE2, 'r1').invlpg(PAGE), { flags: GFLAGS });
    const cpu = m.cpus[0]!;
    finish(cpu);
    expect(pages(cpu).map((e) => e.page)).toEqual([PAGE2]);
  });

  it('toggle_pge evicts everything, GLOBAL entries included', () => {
    const m = solo((p) => p.load(PAGE, 'r0').load(PAGE2, 'r1').togglePge(), { flags: GFLAGS });
    const cpu = m.cpus[0]!;
    steps(cpu, 2);
    expect(cpu.tlb.validCount()).toBe(2);
    steps(cpu, 1);
    expect(cpu.tlb.validCount()).toBe(0);
  });
});

describe('Cpu: PCID', () => {
  /** Spaces A (PCID 1) and B (PCID 2) map PAGE to X and Y; PAGE2 is GLOBAL in A. */
  function pcidMachine(program: (p: ProgramBuilder) => unknown): Machine {
    const s = scenario('pcid')
      .machine({ protocol: 'none', pcid: true })
      .addressSpace('A', (as) =>
        as.map4k(PAGE, X, 'PRESENT|WRITABLE').map4k(PAGE2, X + 0x1000, 'PRESENT|GLOBAL'),
      )
      .addressSpace('B', (as) => as.map4k(PAGE, Y, 'PRESENT|WRITABLE'))
      .cpu('A', program);
    return Machine.fromScenario(s.build());
  }

  it('entries are tagged with the PCID in CR3', () => {
    const m = pcidMachine((p) =>
      p.load(PAGE, 'r0').movCr3('B', { noflush: true }).load(PAGE, 'r1'),
    );
    const cpu = m.cpus[0]!;
    finish(cpu);
    expect(pages(cpu)).toEqual([
      { page: PAGE, pcid: 1, global: false, frame: X },
      { page: PAGE, pcid: 2, global: false, frame: Y },
    ]);
  });

  it('mov_cr3 with noflush keeps the new PCID entries (the next access hits them)', () => {
    const m = pcidMachine((p) =>
      p
        .store(PAGE, 0xa)
        .movCr3('B')
        .store(PAGE, 0xb)
        .movCr3('A', { noflush: true })
        .load(PAGE, 'r0'),
    );
    const cpu = m.cpus[0]!;
    steps(cpu, 4);
    expect(pages(cpu).map((e) => e.pcid)).toEqual([1, 2]);
    const walks = cpu.stats.walks;
    steps(cpu, 1);
    expect(cpu.stats.walks).toBe(walks);
    expect(cpu.register(0)).toBe(0xan);
  });

  it('mov_cr3 without noflush flushes only the new PCID non-global entries', () => {
    const m = pcidMachine((p) =>
      p
        .load(PAGE, 'r0')
        .load(PAGE2, 'r0')
        .movCr3('B', { noflush: true })
        .load(PAGE, 'r1')
        .movCr3('A')
        .movCr3('B'),
    );
    const cpu = m.cpus[0]!;
    steps(cpu, 4);
    expect(pages(cpu).map((e) => [e.page, e.pcid, e.global])).toEqual([
      [PAGE, 1, false],
      [PAGE, 2, false],
      [PAGE2, 1, true],
    ]);
    steps(cpu, 1); // mov_cr3 A: PCID 1's non-global entries go, PCID 2's and the global stay
    expect(pages(cpu).map((e) => [e.page, e.pcid, e.global])).toEqual([
      [PAGE, 2, false],
      [PAGE2, 1, true],
    ]);
    steps(cpu, 1); // mov_cr3 B: PCID 2's go
    expect(pages(cpu).map((e) => [e.page, e.pcid, e.global])).toEqual([[PAGE2, 1, true]]);
  });

  /** TLB after the setup: PAGE/1, PAGE/2 and the global PAGE2; then `last` runs. */
  function invpcid(last: (p: ProgramBuilder) => unknown) {
    const m = pcidMachine((p) => {
      p.load(PAGE, 'r0').load(PAGE2, 'r0').movCr3('B', { noflush: true }).load(PAGE, 'r1');
      last(p);
    });
    const cpu = m.cpus[0]!;
    steps(cpu, 4);
    expect(cpu.tlb.validCount()).toBe(3);
    steps(cpu, 1);
    return pages(cpu).map((e) => `${e.page.toString(16)}/${e.global ? 'G' : e.pcid}`);
  }

  it('invpcid type 0 evicts one address of one PCID, never a GLOBAL entry', () => {
    expect(invpcid((p) => p.invpcid(0, 1, PAGE))).toEqual(['400000/2', '401000/G']);
    expect(invpcid((p) => p.invpcid(0, 1, PAGE2))).toEqual(['400000/1', '400000/2', '401000/G']);
  });

  it('invpcid type 1 evicts the non-global entries of one PCID', () => {
    expect(invpcid((p) => p.invpcid(1, 2))).toEqual(['400000/1', '401000/G']);
  });

  it('invpcid type 2 evicts everything, GLOBAL included', () => {
    expect(invpcid((p) => p.invpcid(2))).toEqual([]);
  });

  it('invpcid type 3 evicts every non-global entry of every PCID', () => {
    expect(invpcid((p) => p.invpcid(3))).toEqual(['401000/G']);
  });
});

describe('Cpu: rights are checked against the cached entry', () => {
  it('a store after update_flags cleared WRITABLE succeeds through the TLB until a flush; then P|W', () => {
    const m = solo((p) =>
      p.store(PAGE, 1).updateFlags('4KiB', PAGE, 'PRESENT').store(PAGE, 2).flush().store(PAGE, 3),
    );
    const cpu = m.cpus[0]!;
    steps(cpu, 3);
    expect(cpu.status).toBe('running');
    expect(m.setup.memory.read64(X)).toBe(2n); // the stale permission was used
    finish(cpu);
    expect(cpu.status).toBe('faulted');
    expect(cpu.faults).toHaveLength(1);
    expect(cpu.faults[0]).toMatchObject({ addr: PAGE, errorCode: PF_PRESENT | PF_WRITE, pc: 4 });
    expect(m.setup.memory.read64(X)).toBe(2n);
  });

  it('a store through a cached read-only entry faults P|W from the TLB and evicts the entry', () => {
    const m = solo((p) => p.load(PAGE, 'r0').store(PAGE, 1), { flags: 'PRESENT' });
    const cpu = m.cpus[0]!;
    steps(cpu, 1);
    expect(cpu.tlb.validCount()).toBe(1);
    steps(cpu, 1);
    expect(cpu.stats.walks).toBe(1); // decided on the cached entry, no second walk
    expect(cpu.faults[0]!.errorCode).toBe(PF_PRESENT | PF_WRITE);
    expect(cpu.tlb.validCount()).toBe(0);
  });

  it('a user load through a cached supervisor entry faults P|U and evicts the entry', () => {
    const m = solo((p) => p.load(PAGE, 'r0').load(PAGE, 'r1', { user: true }));
    const cpu = m.cpus[0]!;
    finish(cpu);
    expect(cpu.faults[0]!.errorCode).toBe(PF_PRESENT | PF_USER);
    expect(cpu.tlb.validCount()).toBe(0);
  });

  it('with wp off a supervisor store through a cached read-only entry succeeds', () => {
    const m = solo((p) => p.load(PAGE, 'r0').store(PAGE, 5), { flags: 'PRESENT', wp: false });
    const cpu = m.cpus[0]!;
    finish(cpu);
    expect(cpu.status).toBe('halted');
    expect(m.setup.memory.read64(X)).toBe(5n);
  });
});

describe('Cpu: page faults', () => {
  it('a fault stops the CPU, sets CR2 and is recorded with its error code', () => {
    const bad = 0x7000_0000;
    const m = solo((p) =>
      p
        .load(PAGE, 'r0')
        .store(bad + 8, 1, { user: true })
        .load(PAGE, 'r1'),
    );
    const cpu = m.cpus[0]!;
    steps(cpu, 1);
    cpu.now = 42;
    expect(cpu.step()).toBe(StepResult.Ran);
    expect(cpu.status).toBe('faulted');
    expect(cpu.halted).toBe(true);
    expect(cpu.cr2).toBe(bad + 8);
    expect(cpu.faults).toEqual([
      { cpu: 0, step: 42, pc: 1, addr: bad + 8, errorCode: PF_WRITE | PF_USER },
    ]);
    expect(cpu.stats.faults).toBe(1);
    expect(cpu.step()).toBe(StepResult.Halted);
    expect(cpu.stats.instructions).toBe(2); // the last load never ran
  });

  it('the trace records the fault and a Halt with status faulted', () => {
    const m = solo((p) => p.load(0x7000_0000, 'r0'));
    const run = runDeterministic(m);
    const fault = run.records.find((r) => r.kind === TraceKind.Fault)!;
    expect(fault).toMatchObject({ a: 0x7000_0000, b: 0 });
    expect(run.records.at(-1)).toMatchObject({ kind: TraceKind.Halt, a: 1 });
  });
});

describe('Cpu: a store through a stale TLB entry', () => {
  it('really writes the old frame in RAM (protocol none: the flush is local)', () => {
    const s = scenario('stale-store')
      .machine({ protocol: 'none' })
      .addressSpace('A', (as) => as.map4k(PAGE, X, 'PRESENT|WRITABLE'))
      .cpu('A', (p) =>
        p
          .barrier('cached')
          .unmap('4KiB', PAGE)
          .flush()
          .mapTo('4KiB', PAGE, Y, 'PRESENT|WRITABLE')
          .flush()
          .barrier('remapped'),
      )
      .cpu('A', (p) => p.store(PAGE, 0x11).barrier('cached').barrier('remapped').store(PAGE, 0x22))
      .build();
    const m = Machine.fromScenario(s);
    const run = runDeterministic(m, { seed: 7 });
    expect(run.deadlock).toBeUndefined();
    const [cpu0, cpu1] = m.cpus as [Cpu, Cpu];
    expect(cpu0.status).toBe('halted');
    expect(cpu1.status).toBe('halted');
    expect(cpu1.tlb.entries()[0]).toMatchObject({ pageStart: PAGE, frame: X });
    // The page tables say Y, but the store went to X.
    const leaf = entryAddress(m.setup.memory, cpu1.cr3Table, PAGE);
    expect(Number(m.setup.memory.loadEntry(leaf) & ADDR_MASK)).toBe(Y);
    expect(m.setup.memory.read64(X)).toBe(0x22n);
    expect(m.setup.memory.read64(Y)).toBe(0n);
  });
});

describe('Cpu: Mapper and allocator instructions', () => {
  it('a Mapper error goes to mapperErrors and the program goes on', () => {
    const m = solo((p) =>
      p.unmap('4KiB', 0x50_0000).mapTo('4KiB', PAGE, Y, 'PRESENT').load(PAGE, 'r0'),
    );
    const cpu = m.cpus[0]!;
    finish(cpu);
    expect(cpu.mapperErrors).toEqual([
      { cpu: 0, step: 1, op: 'unmap', err: 'PageNotMapped' },
      { cpu: 0, step: 2, op: 'map_to', err: 'PageAlreadyMapped' },
    ]);
    expect(cpu.status).toBe('halted');
    expect(cpu.stats.instructions).toBe(3);
  });

  it('unmap puts the frame in reg', () => {
    const m = solo((p) => p.unmap('4KiB', PAGE, 'r3').flush());
    const cpu = m.cpus[0]!;
    finish(cpu);
    expect(cpu.register(3)).toBe(BigInt(X));
    expect(cpu.mapperErrors).toEqual([]);
  });

  it('map_to takes its frame from a register filled by alloc_frame', () => {
    const m = solo((p) =>
      p
        .allocFrame('r1')
        .mapTo('4KiB', 0x50_0000, 'r1', 'PRESENT|WRITABLE')
        .flush()
        .store(0x50_0000, 0xfeed),
    );
    const cpu = m.cpus[0]!;
    finish(cpu);
    expect(cpu.status).toBe('halted');
    const frame = Number(cpu.register(1));
    expect(frame % 4096).toBe(0);
    expect(
      m.setup.allocator.isAllocated(
        PhysFrame.fromStartAddressUnchecked(PhysAddr.new(frame), Size4KiB),
      ),
    ).toBe(true);
    expect(m.setup.memory.read64(frame)).toBe(0xfeedn);
  });

  it('alloc_frame gives a zeroed frame', () => {
    const m = solo((p) =>
      p
        .allocFrame('r1')
        .mapTo('4KiB', 0x50_0000, 'r1', 'PRESENT|WRITABLE')
        .flush()
        .store(0x50_0ff8, 0xdead)
        .unmap('4KiB', 0x50_0000, 'r2')
        .flush()
        .freeFrame('r2')
        .allocFrame('r3'),
    );
    const cpu = m.cpus[0]!;
    steps(cpu, 7);
    const frame = Number(cpu.register(2));
    expect(m.setup.memory.read64(frame + 0xff8)).toBe(0xdeadn);
    steps(cpu, 1);
    expect(Number(cpu.register(3))).toBe(frame); // the lowest free frame again
    expect(m.setup.memory.read64(frame + 0xff8)).toBe(0n);
    expect(m.setup.memory.readBytes(frame, 4096).every((b) => b === 0)).toBe(true);
  });

  it('free_frame of a frame already free (double free) goes to mapperErrors', () => {
    const m = solo((p) => p.allocFrame('r1').freeFrame('r1').freeFrame('r1').load(PAGE, 'r0'));
    const cpu = m.cpus[0]!;
    finish(cpu);
    expect(cpu.mapperErrors).toEqual([{ cpu: 0, step: 3, op: 'free_frame', err: 'DoubleFree' }]);
    expect(cpu.status).toBe('halted');
    expect(cpu.stats.instructions).toBe(4);
  });

  it('a second Mapper call before flush/ignore drops the pending flush (Flush record, Dropped)', () => {
    const m = solo((p) =>
      p
        .updateFlags('4KiB', PAGE, 'PRESENT|WRITABLE')
        .updateFlags('4KiB', PAGE2, 'PRESENT')
        .flush()
        .updateFlags('4KiB', PAGE, 'PRESENT')
        .ignore(),
    );
    const run = runDeterministic(m);
    const flushes = run.records.filter((r) => r.kind === TraceKind.Flush).map((r) => [r.a, r.b]);
    expect(flushes).toEqual([
      [PAGE, FlushOutcome.Dropped],
      [PAGE2, FlushOutcome.Flushed],
      [PAGE, FlushOutcome.Ignored],
    ]);
  });

  it('a flush still pending at halt is dropped', () => {
    const m = solo((p) => p.unmap('4KiB', PAGE2));
    const run = runDeterministic(m);
    const flushes = run.records.filter((r) => r.kind === TraceKind.Flush);
    expect(flushes.map((r) => [r.a, r.b])).toEqual([[PAGE2, FlushOutcome.Dropped]]);
    expect(m.cpus[0]!.pendingFlush).toBeUndefined();
  });

  it('flush and ignore with nothing pending do nothing', () => {
    const m = solo((p) => p.flush().ignore());
    const run = runDeterministic(m);
    expect(run.records.filter((r) => r.kind === TraceKind.Flush)).toEqual([]);
  });
});

describe('Cpu: assert', () => {
  it('a failed assert stops the CPU (failed) with cpu, instruction, register and both values', () => {
    const m = solo((p) =>
      p.store(PAGE, 0x1234).load(PAGE, 'r5').assert('r5', 0x99).load(PAGE, 'r6'),
    );
    const cpu = m.cpus[0]!;
    finish(cpu);
    expect(cpu.status).toBe('failed');
    const msg = cpu.failure!;
    expect(msg).toMatch(/cpu 0\b/);
    expect(msg).toMatch(/instruction 2\b/);
    expect(msg).toContain('r5');
    expect(msg).toContain('0x99');
    expect(msg).toContain('0x1234');
    expect(cpu.stats.instructions).toBe(3);
  });

  it('a passing assert goes on', () => {
    const m = solo((p) => p.store(PAGE, 0x1234).load(PAGE, 'r5').assert('r5', 0x1234));
    const cpu = m.cpus[0]!;
    finish(cpu);
    expect(cpu.status).toBe('halted');
    expect(cpu.failure).toBeUndefined();
  });
});

describe('Cpu: modeled cycles (DEFAULT_COST_MODEL)', () => {
  it('a TLB-hit load costs less than a miss, by the cost model', () => {
    const m = solo((p) => p.load(PAGE, 'r0').load(PAGE, 'r1'));
    const cpu = m.cpus[0]!;
    expect(cpu.costs).toBe(DEFAULT_COST_MODEL);
    const c = DEFAULT_COST_MODEL;
    steps(cpu, 1);
    const miss = cpu.cycles;
    // 4 entries read, ACCESSED set on each of them.
    expect(miss).toBe(c.instruction + 4 * c.walkLevel + 4 * c.adUpdate);
    steps(cpu, 1);
    const hit = cpu.cycles - miss;
    expect(hit).toBe(c.instruction + c.tlbHit);
    expect(hit).toBeLessThan(miss);
  });

  it('maintenance and faults are charged', () => {
    const c = DEFAULT_COST_MODEL;
    const m = solo((p) => p.invlpg(PAGE).flushAll().togglePge().load(0x7000_0000, 'r0'));
    const cpu = m.cpus[0]!;
    const costs: number[] = [];
    for (let i = 0; i < 4; i++) {
      const before = cpu.cycles;
      steps(cpu, 1);
      costs.push(cpu.cycles - before);
    }
    expect(costs.slice(0, 3)).toEqual([
      c.instruction + c.invlpg,
      c.instruction + c.cr3Write,
      c.instruction + c.pgeToggle,
    ]);
    // Not present at level 3 (space A maps nothing in 0x4000_0000..0x7fff_ffff): 2 entries read.
    expect(costs[3]).toBe(c.instruction + 2 * c.walkLevel + c.adUpdate + c.faultEntry);
  });
});

describe('Cpu: NO_EXECUTE', () => {
  it('a fetch from an NX page faults P|I (walk), and through a cached entry too (TLB)', () => {
    const walked = solo((p) => p.fetch(PAGE), { flags: 'PRESENT|NO_EXECUTE' });
    finish(walked.cpus[0]!);
    expect(walked.cpus[0]!.faults[0]!.errorCode).toBe(PF_PRESENT | PF_FETCH);
    const cached = solo((p) => p.load(PAGE, 'r0').fetch(PAGE), { flags: 'PRESENT|NO_EXECUTE' });
    const cpu = cached.cpus[0]!;
    finish(cpu);
    expect(cpu.stats.walks).toBe(1);
    expect(cpu.faults[0]!.errorCode).toBe(PF_PRESENT | PF_FETCH);
    expect(cpu.tlb.validCount()).toBe(0);
  });

  it('a fetch from an executable page succeeds', () => {
    const m = solo((p) => p.fetch(PAGE).fetch(PAGE));
    const cpu = m.cpus[0]!;
    finish(cpu);
    expect(cpu.status).toBe('halted');
    expect(cpu.stats).toMatchObject({ walks: 1, tlbHits: 1 });
  });
});

describe('Cpu: fetch error codes without NXE', () => {
  // SDM Vol. 3A §4.7: I/D (bit 4) is set only for a fetch when EFER.NXE = 1 (or CR4.SMEP = 1,
  // not modeled). Cpu.translate adds PF_FETCH for any faulting fetch (TLB path), and the walker
  // does the same (see walker.test.ts).
  it('a user fetch through a cached supervisor entry with nxe off faults P|U, not P|U|I', () => {
    const s = scenario('fetch-nxe-off')
      .machine({ protocol: 'none', nxe: false })
      .addressSpace('A', (as) => as.map4k(PAGE, X, 'PRESENT|WRITABLE'))
      .cpu('A', (p) => p.load(PAGE, 'r0').fetch(PAGE, { user: true }))
      .build();
    const cpu = Machine.fromScenario(s).cpus[0]!;
    finish(cpu);
    expect(cpu.stats.walks).toBe(1); // the fault came from the cached entry
    expect(cpu.faults[0]!.errorCode).toBe(PF_PRESENT | PF_USER);
  });
});

describe('Cpu: misc', () => {
  it('an unmapped higher-half address faults not-present, CR2 holding it', () => {
    const hh = VirtAddr.new(0xffff_8000_0000_0000n);
    const m = solo((p) => p.load(0xffff_8000_0000_0000n, 'r0'));
    const cpu = m.cpus[0]!;
    finish(cpu);
    expect(cpu.cr2).toBe(hh);
    expect(cpu.faults[0]!.errorCode).toBe(0);
  });

  it('a CPU that ran off its program halts and steps no more', () => {
    const m = solo(() => {});
    const cpu = m.cpus[0]!;
    expect(cpu.step()).toBe(StepResult.Halted);
    expect(cpu.status).toBe('halted');
    expect(cpu.step()).toBe(StepResult.Halted);
  });
});
