/**
 * The built-in scenario library (`scenarios/*.json`, what `smpsim list` shows and `smpsim run NAME`
 * runs): every file loads, is named after its file, expects an exact hazard set under all five
 * protocols with the spec's kind names, and runs to completion on the deterministic host under
 * every protocol and several seeds, with no deadlock and no failed assert. Each scenario's story is
 * pinned too (who halts or faults, which accesses hit a cached entry, the registers and page-table
 * state its description promises), so a change to the simulator that silently changes a lesson
 * fails here. The hazard sets themselves need the coherence checker and `smpsim explore` (every
 * schedule); this file checks their form.
 */

import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PhysAddr, VirtAddr } from '../../src/addr.ts';
import { HAZARD_KINDS, isHazardKind } from '../../src/check/hazard.ts';
import { BUILTIN_DIR, listCommand } from '../../src/cli/run.ts';
import { PageTableFlags } from '../../src/paging/flags.ts';
import { PhysFrame } from '../../src/paging/frame.ts';
import { Size4KiB } from '../../src/paging/page-size.ts';
import { loadScenario } from '../../src/scenarios/load.ts';
import { PROTOCOLS, type Protocol, type Scenario } from '../../src/scenarios/scenario.ts';
import { runDeterministic } from '../../src/smp/hosts/deterministic.ts';
import { Machine } from '../../src/smp/machine.ts';
import { decodeEvent } from '../../src/trace/events.ts';

/** Seeds each scenario runs with under each protocol (their schedules differ). */
const SEEDS = [1, 2, 3, 4, 5];

/** The built-in scenario names (`scenarios/NAME.json`), in `smpsim list` order. */
const NAMES = readdirSync(BUILTIN_DIR)
  .filter((f) => f.endsWith('.json'))
  .map((f) => f.slice(0, -'.json'.length))
  .sort();

/** What one run of a scenario must end with under one protocol. */
interface Outcome {
  /** Per CPU, `status/tlb hits`: e.g. `halted/1 faulted/0`. */
  readonly cpus: string;
  /** Every page fault, as `cpuN addr error-code`. */
  readonly faults?: readonly string[];
  /** Register values, as `cpuN.rM` → hex. */
  readonly regs?: Readonly<Record<string, string>>;
  /** Pages of address space A and the frame each maps at the end (null: not mapped). */
  readonly mapped?: Readonly<Record<string, string | null>>;
  /** Pages of address space A whose leaf entry must (true) or must not (false) be DIRTY at the end. */
  readonly dirty?: Readonly<Record<string, boolean>>;
  /** Frames that must be back in the allocator at the end. */
  readonly free?: readonly string[];
  /** Dropped flush obligations (default 0). */
  readonly dropped?: number;
  /** Per CPU, invalidation requests it applied (IPIs, lazy requests, INVLPGB). */
  readonly received?: readonly number[];
}

const byProtocol =
  (none: Outcome, others: Outcome, lazy: Outcome = others) =>
  (p: Protocol): Outcome =>
    p === 'none' ? none : p === 'lazy' ? lazy : others;
const always = (o: Outcome) => () => o;

/** Each scenario's outcome by protocol: what its description tells the reader happens. */
const STORIES: Readonly<Record<string, (p: Protocol) => Outcome>> = {
  'unmap-without-shootdown': byProtocol(
    { cpus: 'halted/0 halted/1', regs: { 'cpu1.r1': '0x5ca1ab1e' } },
    { cpus: 'halted/0 faulted/0', faults: ['cpu1 0x400000 0x0'], regs: { 'cpu1.r1': '0x0' } },
  ),
  'use-after-free-reuse': byProtocol(
    // CPU 1 reads B's secret through its stale entry and overwrites it.
    {
      cpus: 'halted/1 halted/2',
      regs: { 'cpu0.r2': '0x1000', 'cpu1.r1': '0x5ec2e7', 'cpu0.r3': '0xbad' },
    },
    {
      cpus: 'halted/1 faulted/0',
      faults: ['cpu1 0x400000 0x0'],
      regs: { 'cpu0.r2': '0x1000', 'cpu1.r1': '0x0', 'cpu0.r3': '0x5ec2e7' },
    },
    // The free is held until CPU 1 invalidated, so B gets another frame; 0x1000 goes back later.
    {
      cpus: 'halted/1 faulted/0',
      faults: ['cpu1 0x400000 0x0'],
      regs: { 'cpu0.r2': '0x6000', 'cpu1.r1': '0x0', 'cpu0.r3': '0x5ec2e7' },
      free: ['0x1000'],
    },
  ),
  'permission-downgrade': byProtocol(
    { cpus: 'halted/0 halted/1', regs: { 'cpu0.r0': '0x2' } },
    { cpus: 'halted/0 faulted/0', faults: ['cpu1 0x400000 0x3'], regs: { 'cpu0.r0': '0x1' } },
  ),
  'global-leak': always({ cpus: 'halted/1', regs: { 'cpu0.r0': '0xa11ce', 'cpu0.r1': '0x0' } }),
  'global-leak-pge-off': always({ cpus: 'halted/0', regs: { 'cpu0.r0': '0x0', 'cpu0.r1': '0x0' } }),
  // Both CPUs' stores hit their surviving GLOBAL entries; CPU 0 faults only after toggle_pge.
  'flush-all-keeps-global': always({ cpus: 'faulted/1 halted/1', faults: ['cpu0 0x400000 0x3'] }),
  'lost-dirty': always({
    cpus: 'halted/0 halted/1',
    regs: { 'cpu0.r0': '0x2' },
    dirty: { '0x400000': false },
  }),
  'lost-dirty-safe': byProtocol(
    { cpus: 'halted/0 halted/1', regs: { 'cpu0.r0': '0x2' }, dirty: { '0x400000': false } },
    { cpus: 'halted/0 halted/0', regs: { 'cpu0.r0': '0x2' }, dirty: { '0x400000': true } },
  ),
  'free-after-shootdown': byProtocol(
    { cpus: 'halted/0 halted/1', free: ['0x200000'] },
    { cpus: 'halted/0 faulted/0', faults: ['cpu1 0x400000 0x0'], free: ['0x200000'] },
  ),
  'free-before-shootdown': always({ cpus: 'halted/0 halted/1', free: ['0x200000'] }),
  'dropped-flush': always({
    cpus: 'halted/0',
    dropped: 2,
    mapped: { '0x400000': '0x200000', '0x401000': '0x201000' },
  }),
  'mutual-shootdown': byProtocol(
    { cpus: 'halted/0 halted/0', received: [0, 0], mapped: { '0x400000': null, '0x401000': null } },
    { cpus: 'halted/0 halted/0', received: [1, 1], mapped: { '0x400000': null, '0x401000': null } },
  ),
  'concurrent-map-race': always({
    cpus: 'halted/0 halted/0',
    regs: { 'cpu0.r0': '0xc1', 'cpu1.r0': '0xc0' },
    mapped: { '0x40000000': '0x200000', '0x40001000': '0x201000' },
  }),
};

const hex = (n: number | bigint) => `0x${n.toString(16)}`;

/** The end state of one deterministic run, in the terms of `Outcome`. */
function runOutcome(s: Scenario, protocol: Protocol, seed: number, want: Outcome) {
  const machine = Machine.fromScenario(s, { protocol });
  const run = runDeterministic(machine, { seed });
  const events = run.records.map(decodeEvent);
  const space = machine.setup.spaces.get('A');
  const leaf = (page: string) => space?.mapper.translate(VirtAddr.new(Number(page)));
  return {
    run,
    failures: machine.cpus.flatMap((c) => (c.failure === undefined ? [] : [c.failure])),
    mapperErrors: machine.cpus.flatMap((c) => c.mapperErrors),
    running: machine.cpus.filter((c) => !c.halted).map((c) => c.id),
    outcome: {
      cpus: machine.cpus.map((c) => `${c.status}/${c.stats.tlbHits}`).join(' '),
      faults: machine.cpus.flatMap((c) =>
        c.faults.map((f) => `cpu${c.id} ${hex(f.addr)} ${hex(f.errorCode)}`),
      ),
      regs: Object.fromEntries(
        Object.keys(want.regs ?? {}).map((k) => {
          const [cpu, reg] = k.split('.') as [string, string];
          return [k, hex(machine.cpus[Number(cpu.slice(3))]!.register(Number(reg.slice(1))))];
        }),
      ),
      mapped: Object.fromEntries(
        Object.keys(want.mapped ?? {}).map((page) => {
          const t = leaf(page);
          return [page, t?.kind === 'Mapped' ? hex(t.frame.startAddress) : null];
        }),
      ),
      dirty: Object.fromEntries(
        Object.keys(want.dirty ?? {}).map((page) => {
          const t = leaf(page);
          return [page, t?.kind === 'Mapped' && (t.flags & PageTableFlags.DIRTY) !== 0];
        }),
      ),
      free: (want.free ?? []).filter(
        (f) =>
          !machine.setup.allocator.isAllocated(
            PhysFrame.fromStartAddressUnchecked(PhysAddr.new(Number(f)), Size4KiB),
          ),
      ),
      dropped: events.filter((e) => e.type === 'flush' && e.outcome === 'dropped').length,
      received: machine.cpus.map(
        (c) => events.filter((e) => e.type === 'ipi-receive' && e.cpu === c.id).length,
      ),
    },
  };
}

describe('the built-in scenario library', () => {
  it('holds the teaching scenarios, and a story for each file', () => {
    expect(NAMES).toEqual(Object.keys(STORIES).sort());
  });

  it('is what smpsim list prints, one line per file, as the README shows it', () => {
    let out = '';
    expect(listCommand({ out: (t) => (out += t), err: () => {} })).toBe(0);
    const lines = out.trimEnd().split('\n');
    expect(lines.map((l) => l.split(' ')[0])).toEqual(NAMES);
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('### `smpsim list`'));
    const block = /```text\n([\s\S]*?)```/.exec(section)?.[1];
    expect(block, 'README shows the smpsim list output').toBe(out);
  });
});

for (const name of NAMES) {
  const file = `${name}.json`;
  const text = readFileSync(`${BUILTIN_DIR}${file}`, 'utf8');

  describe(`scenarios/${file}`, () => {
    const s = loadScenario(text, file);

    it('loads, is named after its file and describes its lesson', () => {
      expect(s.name).toBe(name);
      // One paragraph whose first sentence is what smpsim list shows.
      expect(s.description).toMatch(/^\S[^\n]*\.$/);
      expect(s.description.split(/(?<=\.)\s/)[0]!.length).toBeGreaterThan(20);
    });

    it('expects an exact hazard set under each of the five protocols, with the spec kind names', () => {
      const raw = JSON.parse(text).expect as Record<string, unknown>;
      expect(Object.keys(raw).sort()).toEqual([...PROTOCOLS].sort());
      for (const p of PROTOCOLS) {
        const kinds = raw[p] as unknown[];
        expect(Array.isArray(kinds), `expect.${p} is a list`).toBe(true);
        for (const k of kinds) expect(isHazardKind(String(k)), `expect.${p}: ${k}`).toBe(true);
        // Each kind once, in the spec's order, as the loader normalises it.
        expect(kinds).toEqual(HAZARD_KINDS.filter((k) => kinds.includes(k)));
        expect(s.expect?.[p]).toEqual(kinds);
      }
    });

    for (const protocol of PROTOCOLS) {
      it(`runs to completion under ${protocol} with the outcome its description tells (seeds ${SEEDS.join(', ')})`, () => {
        const want = STORIES[name]?.(protocol);
        expect(want, `STORIES has an entry for ${name}`).toBeDefined();
        for (const seed of SEEDS) {
          const r = runOutcome(s, protocol, seed, want!);
          const where = `${name} under ${protocol}, seed ${seed}`;
          expect(r.run.deadlock, where).toBeUndefined();
          expect(r.run.truncated, where).toBe(false);
          expect(r.run.lost, where).toBe(0);
          expect(r.running, where).toEqual([]);
          expect(r.failures, where).toEqual([]);
          expect(r.mapperErrors, where).toEqual([]);
          expect(r.outcome, where).toEqual({
            cpus: want!.cpus,
            faults: want!.faults ?? [],
            regs: want!.regs ?? {},
            mapped: want!.mapped ?? {},
            dirty: want!.dirty ?? {},
            free: want!.free ?? [],
            dropped: want!.dropped ?? 0,
            received: want!.received ?? r.outcome.received,
          });
        }
      });
    }
  });
}
