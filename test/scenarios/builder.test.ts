/**
 * The scenario builder (src/scenarios/builder.ts): it writes the same document a JSON file holds,
 * so its output and the equivalent file load to deep-equal `Scenario`s, it passes
 * `validateScenario`, and its mistakes are `ScenarioError`s located in the file's terms.
 */

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PhysAddr } from '../../src/addr.ts';
import { PageTableFlags } from '../../src/paging/flags.ts';
import { Size2MiB } from '../../src/paging/page-size.ts';
import { flagsFromInput, scenario } from '../../src/scenarios/builder.ts';
import {
  loadScenario,
  ScenarioError,
  scenarioToJson,
  validateScenario,
} from '../../src/scenarios/load.ts';

const EXAMPLE_TEXT = readFileSync(
  new URL('../../scenarios/unmap-without-shootdown.json', import.meta.url),
  'utf8',
);

function errorOf(run: () => unknown): ScenarioError {
  try {
    run();
  } catch (e) {
    if (e instanceof ScenarioError) return e;
    throw e;
  }
  throw new Error('accepted, expected a ScenarioError');
}

/** The example file, written with the builder. */
function exampleBuilder() {
  const file = loadScenario(EXAMPLE_TEXT);
  return scenario('unmap-without-shootdown')
    .describe(file.description)
    .machine({ cpus: 2, ramBytes: 0x1000000, tlb: { entries: 64, ways: 4 }, pge: true })
    .machine({ pcid: false, wp: true, nxe: true, protocol: 'sync-ipi' })
    .addressSpace('A', (as) =>
      as.map4k(0x400000n, 0x200000, 'PRESENT | WRITABLE | USER_ACCESSIBLE'),
    )
    .cpu('A', (p) =>
      p
        .store(0x400000n, 0x5ca1ab1en)
        .barrier('stored')
        .barrier('cached')
        .unmap('4KiB', 0x400000n, 'r1')
        .flush()
        .barrier('unmapped'),
    )
    .cpu('A', (p) =>
      p
        .barrier('stored')
        .load(0x400000n, 'r0')
        .assert('r0', 0x5ca1ab1e)
        .barrier('cached')
        .barrier('unmapped')
        .load(0x400000n, 'r1'),
    )
    .expect('none', ['stale-translation'])
    .expect('sync-ipi', [])
    .expect('batched', [])
    .expect('lazy', [])
    .expect('broadcast', []);
}

describe('scenario builder', () => {
  it('builds the example file: deep-equal to loading the JSON', () => {
    const built = exampleBuilder().build();
    expect(built).toEqual(loadScenario(EXAMPLE_TEXT));
  });

  it('its output passes validateScenario, as a document and as a written-out scenario', () => {
    const b = exampleBuilder();
    const built = b.build();
    expect(validateScenario(b.toJSON())).toEqual(built);
    expect(validateScenario(scenarioToJson(built))).toEqual(built);
    expect(loadScenario(JSON.stringify(b))).toEqual(built);
  });

  it('the minimal form: machine.cpus defaults to the number of cpu() calls, spec defaults apply', () => {
    const s = scenario('tiny')
      .addressSpace('A', (as) => as.map4k(0x1000, 0x1000, PageTableFlags.PRESENT))
      .cpu('A')
      .cpu('A', (p) => p.fetch(0x1000))
      .build();
    expect(s.machine).toEqual({
      cpus: 2,
      ramBytes: 16 * 1024 * 1024,
      tlb: { entries: 64, ways: 4 },
      pge: true,
      pcid: false,
      wp: true,
      nxe: true,
      protocol: 'sync-ipi',
    });
    expect(s.description).toBe('');
    expect(s).not.toHaveProperty('expect');
    expect(s.addressSpaces[0]!.pcid).toBe(1);
  });

  it('every instruction: builder and JSON give the same scenario', () => {
    const built = scenario('all-ops')
      .machine({ pcid: true, tlb: { entries: 16 }, ramBytes: 0x40000000n })
      .addressSpace('A', (as) =>
        as
          .map2m(0x200000, 0x200000, 'PRESENT|WRITABLE')
          .map(Size2MiB, 0x400000n, 0x400000n, '0x3')
          .map1g(0x40000000, 0, PageTableFlags.of(PageTableFlags.PRESENT)),
      )
      .addressSpace('B', undefined, { pcid: 9 })
      .cpu('A', (p) =>
        p
          .load(0x400001n, 'r3', { width: 2, user: true })
          .store(0xffff800000000000n, 0xffffffffffffffffn)
          .fetch(0x400000, { user: false })
          .mapTo('2MiB', 0x600000, 0x600000, 'PRESENT|WRITABLE|NO_EXECUTE')
          .mapTo('4KiB', 0x5000, 'r2', '0x7')
          .mapTo('4KiB', 0x6000, { reg: 'r5' }, 'PRESENT')
          .unmap('4KiB', 0x5000)
          .updateFlags('4KiB', 0x400000, 'PRESENT')
          .setFlagsP4Entry('4KiB', 0x400000, 'PRESENT|WRITABLE')
          .setFlagsP3Entry('1GiB', 0x40000000, 'PRESENT|WRITABLE')
          .setFlagsP2Entry('2MiB', 0x600000, 'PRESENT|WRITABLE')
          .flush()
          .ignore()
          .invlpg(0x400123)
          .flushAll()
          .togglePge()
          .movCr3('B', { noflush: true })
          .invpcid(0, 1, 0x400000)
          .invpcid(1, 9)
          .invpcid(2)
          .invpcid(3)
          .allocFrame('r2')
          .freeFrame('r2')
          .freeFrame({ reg: 'r4' })
          .freeFrame(0x3000)
          .barrier('done')
          .assert('r3', 0n)
          .instruction({ op: 'flush' }),
      )
      .expect('lazy', ['deadlock', 'stale-translation'])
      .build();
    const json = {
      format: 'smpsim-scenario/1',
      name: 'all-ops',
      machine: { cpus: 1, tlb: { entries: 16 }, pcid: true, ram_bytes: '0x40000000' },
      address_spaces: {
        A: {
          map: [
            { size: '2MiB', page: '0x200000', frame: '0x200000', flags: '0x3' },
            { size: '2MiB', page: '0x400000', frame: '0x400000', flags: '0x3' },
            { size: '1GiB', page: '0x40000000', frame: '0x0', flags: '0x1' },
          ],
        },
        B: { pcid: 9 },
      },
      cpus: [
        {
          as: 'A',
          program: [
            { op: 'load', addr: '0x400001', width: 2, reg: 'r3', user: true },
            { op: 'store', addr: '0xffff800000000000', value: '0xffffffffffffffff' },
            { op: 'fetch', addr: '0x400000' },
            {
              op: 'map_to',
              size: '2MiB',
              page: '0x600000',
              frame: '0x600000',
              flags: '0x8000000000000003',
            },
            { op: 'map_to', size: '4KiB', page: '0x5000', frame: 'r2', flags: '0x7' },
            { op: 'map_to', size: '4KiB', page: '0x6000', frame: 'r5', flags: '0x1' },
            { op: 'unmap', size: '4KiB', page: '0x5000' },
            { op: 'update_flags', size: '4KiB', page: '0x400000', flags: '0x1' },
            { op: 'set_flags_p4_entry', size: '4KiB', page: '0x400000', flags: '0x3' },
            { op: 'set_flags_p3_entry', size: '1GiB', page: '0x40000000', flags: '0x3' },
            { op: 'set_flags_p2_entry', size: '2MiB', page: '0x600000', flags: '0x3' },
            { op: 'flush' },
            { op: 'ignore' },
            { op: 'invlpg', addr: '0x400123' },
            { op: 'flush_all' },
            { op: 'toggle_pge' },
            { op: 'mov_cr3', as: 'B', noflush: true },
            { op: 'invpcid', type: 0, pcid: 1, addr: '0x400000' },
            { op: 'invpcid', type: 1, pcid: 9 },
            { op: 'invpcid', type: 2 },
            { op: 'invpcid', type: 3 },
            { op: 'alloc_frame', reg: 'r2' },
            { op: 'free_frame', reg: 'r2' },
            { op: 'free_frame', frame: 'r4' },
            { op: 'free_frame', frame: '0x3000' },
            { op: 'barrier', name: 'done' },
            { op: 'assert', reg: 'r3', value: '0x0' },
            { op: 'flush' },
          ],
        },
      ],
      expect: { lazy: ['stale-translation', 'deadlock'] },
    };
    expect(built).toEqual(loadScenario(JSON.stringify(json)));
    expect(built.cpus[0]!.program[3]).toMatchObject({ frame: PhysAddr.new(0x600000) });
  });

  it('toJSON is a snapshot: editing it does not change the builder', () => {
    const b = scenario('snap')
      .addressSpace('A')
      .cpu('A', (p) => p.flush());
    const doc = b.toJSON();
    doc.cpus[0]!.program.push({ op: 'ignore' });
    expect(b.build().cpus[0]!.program).toEqual([{ op: 'flush' }]);
  });
});

describe('builder errors are ScenarioErrors located as in a file', () => {
  it('an unknown flag name, with a hint, at the mapping', () => {
    const e = errorOf(() =>
      scenario('x').addressSpace('A', (as) => as.map4k(0, 0, 'PRESENT|WRITEABLE')),
    );
    expect(e.path).toBe('address_spaces.A.map[0].flags');
    expect(e.reason).toMatch(/unknown flag "WRITEABLE" \(did you mean "WRITABLE"\?\)/);
  });

  it('an unknown flag name in a program instruction', () => {
    const e = errorOf(() =>
      scenario('x')
        .addressSpace('A')
        .cpu('A')
        .cpu('A', (p) => p.flush().updateFlags('4KiB', 0x1000, 'PRESENT|NX')),
    );
    expect(e.path).toBe('cpus[1].program[1].flags');
  });

  it('a negative or fractional number', () => {
    expect(errorOf(() => scenario('x').cpu('A', (p) => p.load(-1, 'r0'))).path).toBe(
      'cpus[0].program[0].addr',
    );
    expect(errorOf(() => scenario('x').cpu('A', (p) => p.store(0x1000, 1.5))).path).toBe(
      'cpus[0].program[0].value',
    );
  });

  it('an address space declared twice', () => {
    const e = errorOf(() => scenario('x').addressSpace('A').addressSpace('A'));
    expect(e.path).toBe('address_spaces.A');
    expect(e.reason).toMatch(/declared twice/);
  });

  it('rules the loader enforces surface from build(): unknown `as`, cpu count, canonical form', () => {
    expect(errorOf(() => scenario('x').addressSpace('A').cpu('B').build()).message).toMatch(
      /^cpus\[0\]\.as: unknown address space "B"/,
    );
    expect(
      errorOf(() => scenario('x').machine({ cpus: 3 }).addressSpace('A').cpu('A').build()).path,
    ).toBe('cpus');
    expect(
      errorOf(() =>
        scenario('x')
          .addressSpace('A')
          .cpu('A', (p) => p.load(0x800000000000, 'r0'))
          .build(),
      ).message,
    ).toMatch(/^cpus\[0\]\.program\[0\]\.addr: virtual address 0x800000000000 is not canonical/);
  });

  it('flagsFromInput: names with spaces, a hex word, or a PageTableFlags value', () => {
    expect(flagsFromInput(' PRESENT |WRITABLE | NO_EXECUTE ')).toBe('0x8000000000000003');
    expect(flagsFromInput('0x7')).toBe('0x7');
    expect(flagsFromInput(PageTableFlags.of(PageTableFlags.GLOBAL, PageTableFlags.PRESENT))).toBe(
      '0x101',
    );
    expect(errorOf(() => flagsFromInput('')).reason).toMatch(/unknown flag ""/);
  });
});
