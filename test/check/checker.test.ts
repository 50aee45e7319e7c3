/**
 * The coherence checker (src/check/checker.ts): each hazard kind with a minimal positive and a
 * minimal negative scenario, the coherence-point exemption (a stale use inside the protocol's
 * window is not a hazard), the stories, and a property: under every shootdown protocol, programs
 * that free frames only after their flushes and never clear DIRTY report nothing.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkRun } from '../../src/check/checker.ts';
import type { Hazard } from '../../src/check/hazard.ts';
import { type ProgramBuilder, scenario } from '../../src/scenarios/builder.ts';
import type { Protocol, Scenario } from '../../src/scenarios/scenario.ts';
import { runDeterministic } from '../../src/smp/hosts/deterministic.ts';
import { applyFinalState, runOnWorkers } from '../../src/smp/hosts/worker.ts';
import { Machine } from '../../src/smp/machine.ts';

const PAGE = 0x40_0000;
const FRAME = 0x20_0000;
const OTHER = 0x30_0000;
const RW = 'PRESENT | WRITABLE | USER_ACCESSIBLE';
const SHOOTDOWN: readonly Protocol[] = ['sync-ipi', 'batched', 'lazy', 'broadcast'];
const ALL: readonly Protocol[] = ['none', ...SHOOTDOWN];

function hazards(s: Scenario, protocol: Protocol, seed = 1): Hazard[] {
  const m = Machine.fromScenario(s, { protocol });
  const run = runDeterministic(m, { seed });
  return checkRun(m, run);
}

const kinds = (hs: readonly Hazard[]) => [...new Set(hs.map((h) => h.kind))].sort();

/** Two CPUs: both cache PAGE; CPU 0 then changes it (`change`) and CPU 1 uses it (`use`). */
function twoCpus(
  name: string,
  change: (p: ProgramBuilder) => unknown,
  use: (p: ProgramBuilder) => unknown,
  extra: (p: ProgramBuilder) => unknown = () => {},
): Scenario {
  return scenario(name)
    .addressSpace('A', (as) => as.map4k(PAGE, FRAME, RW))
    .cpu('A', (p) => {
      p.store(PAGE, 0x11).barrier('cached');
      change(p);
      p.barrier('changed');
      extra(p);
    })
    .cpu('A', (p) => {
      p.store(PAGE, 0x22).barrier('cached').barrier('changed');
      use(p);
    })
    .build();
}

const unmapFlush = (p: ProgramBuilder) => p.unmap('4KiB', PAGE, 'r1').flush();

describe('stale-translation', () => {
  const s = twoCpus('unmap', unmapFlush, (p) => p.load(PAGE, 'r2'));

  it('positive: unmap + flush() under none, the other CPU reads through its cached entry', () => {
    const hs = hazards(s, 'none');
    expect(kinds(hs)).toEqual(['stale-translation']);
    const h = hs[0]!;
    expect(h.cpu).toBe(1);
    expect(h.addr).toBe(PAGE);
    expect(h.frames).toEqual([FRAME]);
    expect(h.why).toMatch(/do not map 0x400000/);
    // The story: the fill, the change, the flush, the coherence point, the access, in order.
    expect(h.story.map((e) => e.cpu)).toEqual([1, 0, 0, 0, 1]);
    expect(h.story[0]!.text).toMatch(/cpu1 cached 0x400000 → frame 0x200000/);
    expect(h.story[1]!.text).toMatch(/unmap\(0x400000\)/);
    expect(h.story[2]!.text).toMatch(/no IPI/);
    expect(h.story.at(-1)!.text).toMatch(/TLB hit/);
    const steps = h.story.map((e) => e.step);
    expect([...steps].sort((a, b) => a - b)).toEqual(steps);
  });

  it.each(SHOOTDOWN)('negative under %s: the shootdown reached CPU 1 first (it faults)', (p) => {
    expect(hazards(s, p)).toEqual([]);
  });

  it('a use inside the window (after the change, before its flush) is not a hazard', () => {
    // CPU 1 reads between the unmap and the flush: the protocol has promised nothing yet.
    const w = scenario('window')
      .addressSpace('A', (as) => as.map4k(PAGE, FRAME, RW))
      .cpu('A', (p) =>
        p.barrier('cached').unmap('4KiB', PAGE).barrier('changed').barrier('read').flush(),
      )
      .cpu('A', (p) =>
        p.load(PAGE, 'r0').barrier('cached').barrier('changed').load(PAGE, 'r1').barrier('read'),
      )
      .build();
    for (const p of ALL) expect(hazards(w, p), p).toEqual([]);
    // The same access after an ignore() is a hazard under every protocol.
    const ignored = scenario('ignored')
      .addressSpace('A', (as) => as.map4k(PAGE, FRAME, RW))
      .cpu('A', (p) => p.barrier('cached').unmap('4KiB', PAGE).ignore().barrier('changed'))
      .cpu('A', (p) => p.load(PAGE, 'r0').barrier('cached').barrier('changed').load(PAGE, 'r1'))
      .build();
    for (const p of ALL) expect(kinds(hazards(ignored, p)), p).toEqual(['stale-translation']);
  });

  it('a remapped page read through the old entry names both frames', () => {
    const r = twoCpus(
      'remap',
      (p) => p.unmap('4KiB', PAGE).flush().mapTo('4KiB', PAGE, OTHER, RW).flush(),
      (p) => p.load(PAGE, 'r2'),
    );
    const hs = hazards(r, 'none');
    expect(kinds(hs)).toEqual(['stale-translation']);
    expect(hs[0]!.frames).toEqual([FRAME, OTHER]);
  });

  it('the same stale entry used many times is reported once', () => {
    const r = twoCpus('many', unmapFlush, (p) =>
      p.load(PAGE, 'r2').load(PAGE, 'r3').store(PAGE, 1),
    );
    expect(hazards(r, 'none')).toHaveLength(1);
  });
});

describe('stale-permission', () => {
  // Clear WRITABLE but keep DIRTY, so that the store is only a permission problem.
  const s = twoCpus(
    'downgrade',
    (p) => p.updateFlags('4KiB', PAGE, 'PRESENT | USER_ACCESSIBLE | DIRTY').flush(),
    (p) => p.store(PAGE, 0x33),
  );

  it('positive: a store through the cached writable entry after the downgrade under none', () => {
    const hs = hazards(s, 'none');
    expect(kinds(hs)).toEqual(['stale-permission']);
    expect(hs[0]!.why).toMatch(/no longer grant write access/);
  });

  it.each(SHOOTDOWN)('negative under %s: the store faults instead', (p) => {
    const m = Machine.fromScenario(s, { protocol: p });
    const run = runDeterministic(m);
    expect(checkRun(m, run)).toEqual([]);
    expect(m.cpus[1]!.faults.map((f) => f.errorCode & 2)).toEqual([2]);
  });

  it('a read through the downgraded entry uses no lost right: no hazard', () => {
    const r = twoCpus(
      'read-after-downgrade',
      (p) => p.updateFlags('4KiB', PAGE, 'PRESENT | USER_ACCESSIBLE | DIRTY').flush(),
      (p) => p.load(PAGE, 'r0'),
    );
    expect(hazards(r, 'none')).toEqual([]);
  });
});

describe('use-after-free', () => {
  /** CPU 0 frees the unmapped frame (before or after its flush); CPU 1 then reads the page. */
  const freeing = (before: boolean) =>
    scenario(before ? 'free-before' : 'free-after')
      .addressSpace('A', (as) => as.map4k(PAGE, FRAME, RW))
      .cpu('A', (p) => {
        p.store(PAGE, 1).barrier('cached').unmap('4KiB', PAGE, 'r1');
        if (before) p.freeFrame('r1').barrier('freed').barrier('read').flush();
        else p.flush().freeFrame('r1').barrier('freed').barrier('read');
      })
      .cpu('A', (p) =>
        p.load(PAGE, 'r0').barrier('cached').barrier('freed').load(PAGE, 'r2').barrier('read'),
      )
      .build();

  it('positive: freed before the shootdown, read through the old entry (even under sync-ipi)', () => {
    for (const p of ['sync-ipi', 'broadcast'] as const) {
      const hs = hazards(freeing(true), p);
      // Inside the window the stale translation itself is exempt; the free is not.
      expect(kinds(hs), p).toEqual(['use-after-free']);
      expect(hs[0]!.frames).toEqual([FRAME]);
      expect(hs[0]!.story.some((e) => /freed frame 0x200000/.test(e.text))).toBe(true);
    }
  });

  it('positive under none when freed after the (local) flush: both hazards', () => {
    expect(kinds(hazards(freeing(false), 'none'))).toEqual(['stale-translation', 'use-after-free']);
  });

  it.each(SHOOTDOWN)('negative under %s: freed after the flush completed', (p) => {
    expect(hazards(freeing(false), p)).toEqual([]);
  });

  it('a re-allocated frame is named as handed out again', () => {
    // A low frame, so that the allocator (lowest free frame first) hands it out again at once.
    const low = 0x4000;
    const s = scenario('reuse')
      .addressSpace('A', (as) => as.map4k(PAGE, low, RW))
      .cpu('A', (p) =>
        p
          .store(PAGE, 1)
          .barrier('cached')
          .unmap('4KiB', PAGE, 'r1')
          .flush()
          .freeFrame('r1')
          .allocFrame('r2')
          .barrier('reused'),
      )
      // A store caches the entry DIRTY, so the later store hits it instead of re-walking.
      .cpu('A', (p) => p.store(PAGE, 2).barrier('cached').barrier('reused').store(PAGE, 0xbad))
      .build();
    const m = Machine.fromScenario(s, { protocol: 'none' });
    const hs = checkRun(m, runDeterministic(m));
    expect(m.cpus[0]!.register(2)).toBe(BigInt(low));
    const uaf = hs.find((h) => h.kind === 'use-after-free')!;
    expect(uaf.why).toMatch(/wrote to frame 0x4000 .* handed out again/);
  });
});

describe('global-leak', () => {
  const leak = (pge: boolean) =>
    scenario(pge ? 'global-leak' : 'global-pge-off')
      .machine({ cpus: 1, pge })
      .addressSpace('A', (as) => as.map4k(PAGE, FRAME, 'PRESENT | WRITABLE | GLOBAL'))
      .addressSpace('B', (as) => as.map4k(PAGE, OTHER, 'PRESENT | WRITABLE | GLOBAL'))
      .cpu('A', (p) => p.load(PAGE, 'r0').movCr3('B').load(PAGE, 'r1'))
      .build();

  it('positive: a GLOBAL entry cached under A translates for B after the CR3 write', () => {
    for (const p of ALL) {
      const hs = hazards(leak(true), p);
      expect(kinds(hs), p).toEqual(['global-leak']);
      expect(hs[0]!.frames).toEqual([FRAME, OTHER]);
      expect(hs[0]!.story.some((e) => /wrote CR3/.test(e.text))).toBe(true);
    }
  });

  it('negative: with CR4.PGE off the CR3 write evicts it', () => {
    for (const p of ALL) expect(hazards(leak(false), p), p).toEqual([]);
  });

  it('negative: a GLOBAL mapping that both spaces share translates the same', () => {
    const shared = scenario('shared-global')
      .machine({ cpus: 1 })
      .addressSpace('A', (as) => as.map4k(PAGE, FRAME, 'PRESENT | GLOBAL'))
      .addressSpace('B', (as) => as.map4k(PAGE, FRAME, 'PRESENT | GLOBAL'))
      .cpu('A', (p) => p.load(PAGE, 'r0').movCr3('B').load(PAGE, 'r1'))
      .build();
    expect(hazards(shared, 'none')).toEqual([]);
  });
});

describe('lost-dirty', () => {
  const clearDirty = (p: ProgramBuilder) => p.updateFlags('4KiB', PAGE, RW).flush();

  it('positive: update_flags clears DIRTY, the other CPU stores through its dirty entry', () => {
    const s = twoCpus('lost-dirty', clearDirty, (p) => p.store(PAGE, 0x44));
    const hs = hazards(s, 'none');
    expect(kinds(hs)).toEqual(['lost-dirty']);
    expect(hs[0]!.why).toMatch(/DIRTY clear/);
  });

  it('positive even inside the window: a store between the clear and the flush', () => {
    const s = scenario('lost-dirty-window')
      .addressSpace('A', (as) => as.map4k(PAGE, FRAME, RW))
      .cpu('A', (p) =>
        p
          .barrier('cached')
          .updateFlags('4KiB', PAGE, RW)
          .barrier('cleared')
          .barrier('stored')
          .flush(),
      )
      .cpu('A', (p) =>
        p.store(PAGE, 1).barrier('cached').barrier('cleared').store(PAGE, 2).barrier('stored'),
      )
      .build();
    for (const p of ALL) expect(kinds(hazards(s, p)), p).toEqual(['lost-dirty']);
  });

  it.each(SHOOTDOWN)(
    'negative under %s: clear, flush, then the store re-walks and sets DIRTY',
    (p) => {
      const s = twoCpus('safe-clear', clearDirty, (q) => q.store(PAGE, 0x44));
      expect(hazards(s, p)).toEqual([]);
    },
  );
});

describe('dropped-flush', () => {
  it('positive: a MapperFlush neither flushed nor ignored before the next Mapper call', () => {
    const s = scenario('dropped')
      .machine({ cpus: 1 })
      .addressSpace('A', (as) => as.map4k(PAGE, FRAME, RW).map4k(PAGE + 0x1000, OTHER, RW))
      .cpu('A', (p) =>
        p
          .unmap('4KiB', PAGE)
          .unmap('4KiB', PAGE + 0x1000)
          .flush(),
      )
      .build();
    const hs = hazards(s, 'sync-ipi');
    expect(kinds(hs)).toEqual(['dropped-flush']);
    expect(hs[0]!.addr).toBe(PAGE);
    expect(hs[0]!.story[0]!.text).toMatch(/unmap\(0x400000\)/);
  });

  it('positive: still pending at halt', () => {
    const s = scenario('dropped-at-halt')
      .machine({ cpus: 1 })
      .addressSpace('A', (as) => as.map4k(PAGE, FRAME, RW))
      .cpu('A', (p) => p.unmap('4KiB', PAGE))
      .build();
    expect(kinds(hazards(s, 'none'))).toEqual(['dropped-flush']);
  });

  it('negative: ignore() and flush() settle the obligation', () => {
    const s = scenario('settled')
      .machine({ cpus: 1 })
      .addressSpace('A', (as) => as.map4k(PAGE, FRAME, RW).map4k(PAGE + 0x1000, OTHER, RW))
      .cpu('A', (p) =>
        p
          .unmap('4KiB', PAGE)
          .ignore()
          .unmap('4KiB', PAGE + 0x1000)
          .flush(),
      )
      .build();
    expect(hazards(s, 'none')).toEqual([]);
  });
});

describe('deadlock', () => {
  it('positive: crossed barriers, naming the CPUs', () => {
    const s = scenario('crossed')
      .addressSpace('A', (as) => as.map4k(PAGE, FRAME, RW))
      .cpu('A', (p) => p.barrier('a').barrier('b'))
      .cpu('A', (p) => p.barrier('b').barrier('a'))
      .build();
    const hs = hazards(s, 'sync-ipi');
    expect(kinds(hs)).toEqual(['deadlock']);
    expect(hs[0]!.why).toMatch(/cpus 0, 1/);
  });

  it('negative: two CPUs shooting each other down at once complete', () => {
    const s = scenario('mutual')
      .addressSpace('A', (as) => as.map4k(PAGE, FRAME, RW).map4k(PAGE + 0x1000, OTHER, RW))
      .cpu('A', (p) =>
        p
          .load(PAGE + 0x1000, 'r0')
          .barrier('go')
          .unmap('4KiB', PAGE)
          .flush(),
      )
      .cpu('A', (p) =>
        p
          .load(PAGE, 'r0')
          .barrier('go')
          .unmap('4KiB', PAGE + 0x1000)
          .flush(),
      )
      .build();
    for (const p of ALL)
      for (let seed = 1; seed <= 20; seed++) expect(hazards(s, p, seed)).toEqual([]);
  });
});

describe('no false positives', () => {
  type Op =
    | { k: 'load'; page: number }
    | { k: 'store'; page: number }
    | { k: 'unmap-free'; page: number }
    | { k: 'remap'; page: number }
    | { k: 'protect'; page: number };
  const op = fc.oneof(
    fc.record({ k: fc.constant('load' as const), page: fc.integer({ min: 0, max: 3 }) }),
    fc.record({ k: fc.constant('store' as const), page: fc.integer({ min: 0, max: 3 }) }),
    fc.record({ k: fc.constant('unmap-free' as const), page: fc.integer({ min: 0, max: 3 }) }),
    fc.record({ k: fc.constant('remap' as const), page: fc.integer({ min: 0, max: 3 }) }),
    fc.record({ k: fc.constant('protect' as const), page: fc.integer({ min: 0, max: 3 }) }),
  );

  /** A program whose frees follow their flushes and whose flag updates keep DIRTY. */
  function program(p: ProgramBuilder, ops: readonly Op[], cpu: number): void {
    for (const o of ops) {
      // Each CPU owns frames of its own for remapping, so no two CPUs free the same frame.
      const page = PAGE + o.page * 0x1000;
      switch (o.k) {
        case 'load':
          p.load(page, 'r0');
          break;
        case 'store':
          p.store(page, cpu + 1);
          break;
        case 'unmap-free':
          // The unmapped frame may be one another CPU mapped: free only frames this CPU
          // allocated itself (r5), after the flush of its own unmap has completed.
          p.unmap('4KiB', page, 'r1').flush();
          break;
        case 'remap':
          p.allocFrame('r5').mapTo('4KiB', page, { reg: 'r5' }, RW).flush();
          p.unmap('4KiB', page, 'r6').flush().freeFrame('r6');
          break;
        case 'protect':
          p.updateFlags('4KiB', page, 'PRESENT | USER_ACCESSIBLE | DIRTY | ACCESSED').flush();
          break;
      }
    }
  }

  it('random programs on 2-3 CPUs, every shootdown protocol, random schedules: nothing', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(op, { maxLength: 8 }), { minLength: 2, maxLength: 3 }),
        fc.constantFrom(...SHOOTDOWN),
        fc.integer({ min: 0, max: 1000 }),
        (programs, protocol, seed) => {
          const b = scenario('random')
            .machine({ cpus: programs.length })
            .addressSpace('A', (as) => {
              for (let i = 0; i < 4; i++) as.map4k(PAGE + i * 0x1000, FRAME + i * 0x1000, RW);
            });
          programs.forEach((ops, cpu) => {
            b.cpu('A', (p) => program(p, ops, cpu));
          });
          const s = b.build();
          const m = Machine.fromScenario(s, { protocol });
          const run = runDeterministic(m, { seed });
          const found = checkRun(m, run);
          expect(found, `${protocol} seed ${seed}`).toEqual([]);
        },
      ),
    );
  });
});

describe('the no-false-positive property is not vacuous', () => {
  it('the same kind of programs under none do report stale translations', () => {
    // Fixed programs of the generator's kind: CPU 1 keeps using pages CPU 0 unmaps.
    let found = 0;
    for (let seed = 0; seed < 40; seed++) {
      const s = scenario('none-finds')
        .addressSpace('A', (as) => as.map4k(PAGE, FRAME, RW))
        .cpu('A', (p) => p.load(PAGE, 'r0').unmap('4KiB', PAGE, 'r1').flush())
        .cpu('A', (p) => p.load(PAGE, 'r0').load(PAGE, 'r1').load(PAGE, 'r2').load(PAGE, 'r3'))
        .build();
      if (hazards(s, 'none', seed).some((h) => h.kind === 'stale-translation')) found++;
      for (const p of SHOOTDOWN) expect(hazards(s, p, seed), `${p} seed ${seed}`).toEqual([]);
    }
    expect(found).toBeGreaterThan(0);
  });
});

describe('the workers host', () => {
  it('detects the same stale translation on real threads', async () => {
    const s = twoCpus('unmap-workers', unmapFlush, (p) => p.load(PAGE, 'r2'));
    const m = Machine.fromScenario(s, { protocol: 'none', traceCapacity: 1 << 12 });
    const run = await runOnWorkers(m);
    applyFinalState(m, run);
    const hs = checkRun(m, run);
    expect(kinds(hs)).toEqual(['stale-translation']);
    expect(hs[0]!.cpu).toBe(1);
    const safe = Machine.fromScenario(s, { protocol: 'sync-ipi', traceCapacity: 1 << 12 });
    const safeRun = await runOnWorkers(safe);
    expect(checkRun(safe, safeRun)).toEqual([]);
  });
});
