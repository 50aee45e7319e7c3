/**
 * `loadScenario` / `validateScenario` (src/scenarios/load.ts): the example file loads with every
 * default applied; each validation rule rejects its input with a `ScenarioError` naming the exact
 * location (`cpus[1].program[3].addr`, `address_spaces.A.map[0].frame`, …); `scenarioToJson` is
 * the loader's inverse.
 */

import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PhysAddr, VirtAddr } from '../../src/addr.ts';
import { PageTableFlags } from '../../src/paging/flags.ts';
import { Size1GiB, Size2MiB, Size4KiB } from '../../src/paging/page-size.ts';
import {
  INSTRUCTION_OPS,
  loadScenario,
  ScenarioError,
  scenarioToJson,
  validateScenario,
} from '../../src/scenarios/load.ts';
import {
  HAZARD_KINDS,
  type Instruction,
  MACHINE_DEFAULTS,
  PROTOCOLS,
  type Register,
  type Scenario,
} from '../../src/scenarios/scenario.ts';

/** A JSON document the tests patch freely (any shape, valid or not). */
// biome-ignore lint/suspicious/noExplicitAny: the tests write deliberately ill-typed JSON.
type Obj = Record<string, any>;

const EXAMPLE_PATH = new URL('../../scenarios/unmap-without-shootdown.json', import.meta.url);
const EXAMPLE_TEXT = readFileSync(EXAMPLE_PATH, 'utf8');

/** A fresh copy of the example document, to mutate. */
const example = (): Obj => JSON.parse(EXAMPLE_TEXT);

/** A minimal valid document: one CPU, one address space, defaults everywhere. */
function minimal(program: unknown[] = [], machine: Obj = {}): Obj {
  return {
    format: 'smpsim-scenario/1',
    name: 'min',
    machine: { cpus: 1, ...machine },
    address_spaces: {
      A: { map: [{ size: '4KiB', page: '0x400000', frame: '0x200000', flags: '0x3' }] },
    },
    cpus: [{ as: 'A', program }],
  };
}

/** The error `validateScenario` throws for `doc`; fails the test if it accepts it. */
function errorOf(run: () => unknown): ScenarioError {
  try {
    run();
  } catch (e) {
    if (e instanceof ScenarioError) return e;
    throw e;
  }
  throw new Error('the scenario was accepted, expected a ScenarioError');
}

/** Asserts `doc` is rejected at exactly `path`, with a one-line message explained by `why`. */
function expectRejected(doc: unknown, path: string, why: RegExp): ScenarioError {
  const e = errorOf(() => validateScenario(doc));
  expect(e.path).toBe(path);
  expect(e.message).toBe(path === '' ? e.reason : `${path}: ${e.reason}`);
  expect(e.reason).toMatch(why);
  expect(e.message).not.toContain('\n');
  return e;
}

/** The example with `patch` applied. */
function patched(patch: (doc: Obj) => void): Obj {
  const doc = example();
  patch(doc);
  return doc;
}

/** A one-CPU document whose program is `ins`; `machine` patches the machine. */
const prog = (ins: Obj, machine: Obj = {}): Obj => minimal([ins], machine);

describe('the example file', () => {
  it('loads, with typed addresses, values and every default', () => {
    const s = loadScenario(EXAMPLE_TEXT, 'unmap-without-shootdown.json');
    expect(s.name).toBe('unmap-without-shootdown');
    expect(s.description).toMatch(/stale-translation/);
    expect(s.machine).toEqual({
      cpus: 2,
      ramBytes: 0x1000000,
      tlb: { entries: 64, ways: 4 },
      pge: true,
      pcid: false,
      wp: true,
      nxe: true,
      protocol: 'sync-ipi',
    });
    expect(s.addressSpaces).toEqual([
      {
        name: 'A',
        pcid: 1,
        map: [
          {
            size: Size4KiB,
            page: VirtAddr.new(0x400000),
            frame: PhysAddr.new(0x200000),
            flags: PageTableFlags.of(
              PageTableFlags.PRESENT,
              PageTableFlags.WRITABLE,
              PageTableFlags.USER_ACCESSIBLE,
            ),
          },
        ],
      },
    ]);
    expect(s.cpus[0]!.program[0]).toEqual({
      op: 'store',
      addr: 0x400000,
      value: 0x5ca1ab1en,
      width: 8,
      user: false,
    });
    expect(s.cpus[0]!.program[3]).toEqual({
      op: 'unmap',
      size: Size4KiB,
      page: 0x400000,
      reg: 'r1',
    });
    expect(s.cpus[1]!.program[2]).toEqual({ op: 'assert', reg: 'r0', value: 0x5ca1ab1en });
    expect(s.expect).toEqual({
      none: ['stale-translation'],
      'sync-ipi': [],
      batched: [],
      lazy: [],
      broadcast: [],
    });
  });

  it('a minimal file gets the spec defaults (16 MiB, 64/4 TLB, pge, no pcid, wp, nxe, sync-ipi)', () => {
    const s = validateScenario(minimal());
    expect(s.machine).toEqual({ cpus: 1, ...MACHINE_DEFAULTS });
    expect(s.machine.ramBytes).toBe(16 * 1024 * 1024);
    expect(s.description).toBe('');
    expect(s).not.toHaveProperty('expect');
  });

  it('a BOM before the JSON is accepted', () => {
    expect(loadScenario(`\uFEFF${EXAMPLE_TEXT}`).name).toBe('unmap-without-shootdown');
  });
});

describe('JSON text', () => {
  it('bad JSON names the line and column', () => {
    const e = errorOf(() => loadScenario('{\n  "format": "smpsim-scenario/1",\n}\n', 'x.json'));
    expect(e.path).toBe('');
    expect(e.source).toBe('x.json');
    expect(e.message).toMatch(/^x\.json: not valid JSON at line 3, column 1: /);
  });

  it('a key repeated in one object is an error at its path (JSON.parse would keep the last)', () => {
    const text = EXAMPLE_TEXT.replace('"A": {', '"A": {"map": []},\n    "A": {');
    const e = errorOf(() => loadScenario(text));
    expect(e.path).toBe('address_spaces.A');
    expect(e.reason).toMatch(/appears twice/);
    const inProgram = errorOf(() =>
      loadScenario(
        JSON.stringify(minimal([{ op: 'flush' }])).replace(
          '{"op":"flush"}',
          '{"op":"flush","op":"ignore"}',
        ),
      ),
    );
    expect(inProgram.path).toBe('cpus[0].program[0].op');
  });

  it('escaped quotes and brackets inside strings do not confuse the duplicate-key scan', () => {
    const doc = minimal([{ op: 'barrier', name: 'a"]}[{,b' }]);
    doc.description = 'braces { } [ ] and "quotes", commas';
    expect(loadScenario(JSON.stringify(doc, null, 2)).cpus[0]!.program[0]).toEqual({
      op: 'barrier',
      name: 'a"]}[{,b',
    });
  });

  it('the source name prefixes every message', () => {
    const text = JSON.stringify(patched((d) => (d.machine.tlb.ways = 3)));
    const e = errorOf(() => loadScenario(text, 'scenarios/bad.json'));
    expect(e.message).toBe(`scenarios/bad.json: machine.tlb.ways: ${e.reason}`);
  });
});

describe('the document', () => {
  it('not an object', () => {
    expectRejected([], '', /expected a smpsim-scenario\/1 document/);
    expectRejected(null, '', /expected a smpsim-scenario\/1 document/);
  });

  it.each([
    ['format missing', (d: Obj) => delete d.format, 'format', /missing/],
    ['format wrong', (d: Obj) => (d.format = 'mapper-replay/1'), 'format', /smpsim-scenario\/1/],
    [
      'unknown top-level field, with a hint',
      (d: Obj) => (d.adress_spaces = {}),
      'adress_spaces',
      /unknown field \(did you mean "address_spaces"\?\)/,
    ],
    ['name missing', (d: Obj) => delete d.name, 'name', /missing/],
    ['name with a space', (d: Obj) => (d.name = 'my test'), 'name', /not a scenario name/],
    ['description not a string', (d: Obj) => (d.description = 3), 'description', /string/],
    ['machine missing', (d: Obj) => delete d.machine, 'machine', /missing/],
    ['address_spaces missing', (d: Obj) => delete d.address_spaces, 'address_spaces', /missing/],
    ['cpus missing', (d: Obj) => delete d.cpus, 'cpus', /missing/],
  ])('%s', (_, patch, path, why) => {
    expectRejected(patched(patch), path, why);
  });
});

describe('machine', () => {
  it.each([
    ['cpus missing', (d: Obj) => delete d.machine.cpus, 'machine.cpus', /missing/],
    ['cpus 0', (d: Obj) => (d.machine.cpus = 0), 'machine.cpus', /1\.\.64/],
    ['cpus 65', (d: Obj) => (d.machine.cpus = 65), 'machine.cpus', /1\.\.64/],
    ['cpus 1.5', (d: Obj) => (d.machine.cpus = 1.5), 'machine.cpus', /whole JSON number/],
    ['cpus as a string', (d: Obj) => (d.machine.cpus = '2'), 'machine.cpus', /string "2"/],
    [
      'unknown field',
      (d: Obj) => (d.machine.ram = '0x1000'),
      'machine.ram',
      /did you mean "ram_bytes"/,
    ],
    [
      'ram_bytes a number',
      (d: Obj) => (d.machine.ram_bytes = 4096),
      'machine.ram_bytes',
      /hex string/,
    ],
    [
      'ram_bytes not hex',
      (d: Obj) => (d.machine.ram_bytes = '16MiB'),
      'machine.ram_bytes',
      /0x-prefixed/,
    ],
    [
      'ram_bytes 0',
      (d: Obj) => (d.machine.ram_bytes = '0x0'),
      'machine.ram_bytes',
      /positive multiple of 0x1000/,
    ],
    [
      'ram_bytes partial frame',
      (d: Obj) => (d.machine.ram_bytes = '0x1800'),
      'machine.ram_bytes',
      /multiple of 0x1000/,
    ],
    [
      'ram_bytes above 4 GiB',
      (d: Obj) => (d.machine.ram_bytes = '0x100001000'),
      'machine.ram_bytes',
      /at most 0x100000000/,
    ],
    [
      'tlb unknown field',
      (d: Obj) => (d.machine.tlb.way = 4),
      'machine.tlb.way',
      /did you mean "ways"/,
    ],
    [
      'tlb entries 0',
      (d: Obj) => (d.machine.tlb.entries = 0),
      'machine.tlb.entries',
      /TLB entry count/,
    ],
    [
      'tlb ways not dividing entries',
      (d: Obj) => (d.machine.tlb.ways = 3),
      'machine.tlb.ways',
      /do not divide 64 entries/,
    ],
    [
      'tlb ways above entries',
      (d: Obj) => (d.machine.tlb.ways = 128),
      'machine.tlb.ways',
      /do not divide/,
    ],
    [
      'tlb set count not a power of two',
      (d: Obj) => (d.machine.tlb = { entries: 48, ways: 4 }),
      'machine.tlb',
      /12 sets: the set count must be a power of two/,
    ],
    ['tlb not an object', (d: Obj) => (d.machine.tlb = 64), 'machine.tlb', /JSON object/],
    ['pge not boolean', (d: Obj) => (d.machine.pge = 1), 'machine.pge', /true or false/],
    ['pcid not boolean', (d: Obj) => (d.machine.pcid = 'yes'), 'machine.pcid', /true or false/],
    ['wp not boolean', (d: Obj) => (d.machine.wp = null), 'machine.wp', /true or false/],
    ['nxe not boolean', (d: Obj) => (d.machine.nxe = 0), 'machine.nxe', /true or false/],
    [
      'unknown protocol',
      (d: Obj) => (d.machine.protocol = 'sync_ipi'),
      'machine.protocol',
      /did you mean "sync-ipi"/,
    ],
  ])('%s', (_, patch, path, why) => {
    expectRejected(patched(patch), path, why);
  });

  it('a partial tlb keeps the other default; 1-way and fully associative TLBs are fine', () => {
    expect(validateScenario(minimal([], { tlb: { entries: 16 } })).machine.tlb).toEqual({
      entries: 16,
      ways: 4,
    });
    expect(validateScenario(minimal([], { tlb: { entries: 64, ways: 64 } })).machine.tlb.ways).toBe(
      64,
    );
    expect(validateScenario(minimal([], { tlb: { entries: 8, ways: 1 } })).machine.tlb.ways).toBe(
      1,
    );
  });
});

describe('address spaces', () => {
  const mapEntry = { size: '4KiB', page: '0x400000', frame: '0x200000', flags: '0x3' };
  const at = (i: number) => `address_spaces.A.map[${i}]`;
  it.each([
    ['not an object', (d: Obj) => (d.address_spaces = []), 'address_spaces', /JSON object/],
    ['none declared', (d: Obj) => (d.address_spaces = {}), 'address_spaces', /at least one/],
    [
      'an integer-like name (JSON would reorder it)',
      (d: Obj) => (d.address_spaces['1'] = {}),
      'address_spaces["1"]',
      /not an address-space name/,
    ],
    [
      'a name with a dot',
      (d: Obj) => (d.address_spaces['a.b'] = {}),
      'address_spaces["a.b"]',
      /not an address-space name/,
    ],
    [
      'unknown field',
      (d: Obj) => (d.address_spaces.A.maps = []),
      'address_spaces.A.maps',
      /did you mean "map"/,
    ],
    ['pcid 0', (d: Obj) => (d.address_spaces.A.pcid = 0), 'address_spaces.A.pcid', /1\.\.4095/],
    [
      'pcid 4096',
      (d: Obj) => (d.address_spaces.A.pcid = 4096),
      'address_spaces.A.pcid',
      /1\.\.4095/,
    ],
    [
      'duplicate explicit PCID',
      (d: Obj) => (d.address_spaces.B = { pcid: 1 }),
      'address_spaces.B.pcid',
      /PCID 1 is already used by address space A/,
    ],
    [
      'a default PCID colliding with an explicit one',
      (d: Obj) => {
        d.address_spaces.A.pcid = 2;
        d.address_spaces.B = {};
      },
      'address_spaces.B',
      /default PCID 2 \(its declaration position\) is already used by address space A/,
    ],
    [
      'map not an array',
      (d: Obj) => (d.address_spaces.A.map = {}),
      'address_spaces.A.map',
      /JSON array/,
    ],
    [
      'mapping not an object',
      (d: Obj) => (d.address_spaces.A.map = ['0x400000']),
      at(0),
      /JSON object/,
    ],
    [
      'mapping field missing',
      (d: Obj) => delete d.address_spaces.A.map[0].flags,
      `${at(0)}.flags`,
      /missing/,
    ],
    [
      'mapping unknown field',
      (d: Obj) => (d.address_spaces.A.map[0].flag = '0x1'),
      `${at(0)}.flag`,
      /did you mean "flags"/,
    ],
    [
      'size unknown',
      (d: Obj) => (d.address_spaces.A.map[0].size = '4K'),
      `${at(0)}.size`,
      /not a page size/,
    ],
    [
      'page not canonical',
      (d: Obj) => (d.address_spaces.A.map[0].page = '0x800000000000'),
      `${at(0)}.page`,
      /0x800000000000 is not canonical/,
    ],
    [
      'page unaligned',
      (d: Obj) => (d.address_spaces.A.map[0].page = '0x400800'),
      `${at(0)}.page`,
      /not aligned to 4KiB/,
    ],
    [
      'page unaligned for 2MiB',
      (d: Obj) => (d.address_spaces.A.map[0] = { ...mapEntry, size: '2MiB', page: '0x401000' }),
      `${at(0)}.page`,
      /not aligned to 2MiB/,
    ],
    [
      'frame unaligned',
      (d: Obj) => (d.address_spaces.A.map[0].frame = '0x200010'),
      `${at(0)}.frame`,
      /not aligned to 4KiB/,
    ],
    [
      'frame unaligned for 2MiB',
      (d: Obj) => (d.address_spaces.A.map[0] = { ...mapEntry, size: '2MiB', frame: '0x201000' }),
      `${at(0)}.frame`,
      /not aligned to 2MiB/,
    ],
    [
      'frame at 2^52',
      (d: Obj) => (d.address_spaces.A.map[0].frame = '0x10000000000000'),
      `${at(0)}.frame`,
      /below 2\^52/,
    ],
    [
      'frame outside RAM',
      (d: Obj) => (d.address_spaces.A.map[0].frame = '0x1000000'),
      `${at(0)}.frame`,
      /outside RAM \[0x0, 0x1000000\)/,
    ],
    [
      'a 2MiB frame partly outside RAM',
      (d: Obj) => {
        d.machine.ram_bytes = '0x300000';
        d.address_spaces.A.map[0] = { ...mapEntry, size: '2MiB', frame: '0x200000' };
      },
      `${at(0)}.frame`,
      /2MiB frame at 0x200000 lies outside RAM \[0x0, 0x300000\)/,
    ],
    [
      'flags with bits 12..51',
      (d: Obj) => (d.address_spaces.A.map[0].flags = '0x1003'),
      `${at(0)}.flags`,
      /bits 12\.\.51/,
    ],
    [
      'flags not hex',
      (d: Obj) => (d.address_spaces.A.map[0].flags = 'PRESENT'),
      `${at(0)}.flags`,
      /0x-prefixed/,
    ],
    [
      'HUGE_PAGE in 4KiB flags',
      (d: Obj) => (d.address_spaces.A.map[0].flags = '0x83'),
      `${at(0)}.flags`,
      /HUGE_PAGE .* crate panics/,
    ],
  ])('%s', (_, patch, path, why) => {
    expectRejected(patched(patch), path, why);
  });

  it('PCIDs default to the declaration position; declaration order is kept; map may be omitted', () => {
    const doc = example();
    doc.address_spaces = { Zed: {}, Alpha: { pcid: 7 }, mid: {} };
    doc.cpus[0].as = 'Zed';
    doc.cpus[1].as = 'mid';
    const s = validateScenario(doc);
    expect(s.addressSpaces.map((a) => [a.name, a.pcid, a.map.length])).toEqual([
      ['Zed', 1, 0],
      ['Alpha', 7, 0],
      ['mid', 3, 0],
    ]);
  });

  it('aliases (two pages, one frame), higher-half pages, 2MiB and 1GiB mappings are valid', () => {
    const doc = minimal([], { ram_bytes: '0x40000000' });
    doc.address_spaces.A.map.push(
      { size: '4KiB', page: '0xffff800000000000', frame: '0x200000', flags: '0x8000000000000003' },
      { size: '2MiB', page: '0x600000', frame: '0x400000', flags: '0x3' },
      { size: '1GiB', page: '0x40000000', frame: '0x0', flags: '0x3' },
    );
    const s = validateScenario(doc);
    expect(s.addressSpaces[0]!.map.map((m) => [m.size, VirtAddr.hex(m.page), m.frame])).toEqual([
      [Size4KiB, '0x400000', 0x200000],
      [Size4KiB, '0xffff800000000000', 0x200000],
      [Size2MiB, '0x600000', 0x400000],
      [Size1GiB, '0x40000000', 0],
    ]);
    expect(s.addressSpaces[0]!.map[1]!.flags).toBe(
      PageTableFlags.of(PageTableFlags.PRESENT, PageTableFlags.WRITABLE, PageTableFlags.NO_EXECUTE),
    );
  });
});

describe('cpus', () => {
  it.each([
    ['not an array', (d: Obj) => (d.cpus = {}), 'cpus', /JSON array/],
    [
      'fewer entries than machine.cpus',
      (d: Obj) => d.cpus.pop(),
      'cpus',
      /1 CPU entry but machine.cpus is 2/,
    ],
    [
      'more entries than machine.cpus',
      (d: Obj) => d.cpus.push({ as: 'A', program: [] }),
      'cpus',
      /3 CPU entries but machine.cpus is 2/,
    ],
    ['not an object', (d: Obj) => (d.cpus[1] = 'A'), 'cpus[1]', /JSON object/],
    ['as missing', (d: Obj) => delete d.cpus[1].as, 'cpus[1].as', /missing/],
    ['program missing', (d: Obj) => delete d.cpus[1].program, 'cpus[1].program', /missing/],
    ['unknown field', (d: Obj) => (d.cpus[1].prog = []), 'cpus[1].prog', /did you mean "program"/],
    [
      'unknown as',
      (d: Obj) => (d.cpus[1].as = 'a'),
      'cpus[1].as',
      /unknown address space "a" \(did you mean "A"\?\) \(declared: A\)/,
    ],
    [
      'program not an array',
      (d: Obj) => (d.cpus[0].program = { op: 'flush' }),
      'cpus[0].program',
      /JSON array/,
    ],
    [
      'instruction not an object',
      (d: Obj) => (d.cpus[0].program[3] = 'flush'),
      'cpus[0].program[3]',
      /JSON object/,
    ],
    ['op missing', (d: Obj) => delete d.cpus[0].program[4].op, 'cpus[0].program[4].op', /missing/],
    [
      'op unknown, with a hint',
      (d: Obj) => (d.cpus[1].program[1].op = 'lod'),
      'cpus[1].program[1].op',
      /unknown instruction "lod" \(did you mean "load"\?\)/,
    ],
  ])('%s', (_, patch, path, why) => {
    expectRejected(patched(patch), path, why);
  });
});

describe('instructions', () => {
  const p0 = 'cpus[0].program[0]';
  it.each<[string, Obj, Obj | undefined, string, RegExp]>([
    // field sets
    [
      'unknown field for the op',
      { op: 'fetch', addr: '0x1000', width: 8 },
      undefined,
      `${p0}.width`,
      /unknown field .*fetch takes: op, addr, user/,
    ],
    [
      'a required field missing',
      { op: 'load', addr: '0x1000' },
      undefined,
      `${p0}.reg`,
      /missing \(load requires it\)/,
    ],
    // addresses
    [
      'non-canonical address',
      { op: 'load', addr: '0x800000000000', reg: 'r0' },
      undefined,
      `${p0}.addr`,
      /0x800000000000 is not canonical/,
    ],
    [
      'address wider than 64 bits',
      { op: 'invlpg', addr: '0x10000000000000000' },
      undefined,
      `${p0}.addr`,
      /at most 64 bits/,
    ],
    [
      'an access crossing a page',
      { op: 'load', addr: '0x400ffc', reg: 'r0' },
      undefined,
      `${p0}.addr`,
      /0x400ffc \+ 8 bytes crosses a 4 KiB page boundary/,
    ],
    [
      'a 2-byte store crossing a page',
      { op: 'store', addr: '0x400fff', value: '0x1', width: 2 },
      undefined,
      `${p0}.addr`,
      /crosses a 4 KiB page boundary/,
    ],
    // registers, widths, values, booleans
    [
      'register r16',
      { op: 'load', addr: '0x1000', reg: 'r16' },
      undefined,
      `${p0}.reg`,
      /"r16" is not a register: use "r0".."r15"/,
    ],
    [
      'register spelt R1',
      { op: 'alloc_frame', reg: 'R1' },
      undefined,
      `${p0}.reg`,
      /not a register/,
    ],
    [
      'register r01',
      { op: 'assert', reg: 'r01', value: '0x0' },
      undefined,
      `${p0}.reg`,
      /not a register/,
    ],
    [
      'width 3',
      { op: 'load', addr: '0x1000', reg: 'r0', width: 3 },
      undefined,
      `${p0}.width`,
      /3 is not an access width: use 1, 2, 4 or 8/,
    ],
    [
      'width as a string',
      { op: 'store', addr: '0x1000', value: '0x0', width: '8' },
      undefined,
      `${p0}.width`,
      /not an access width/,
    ],
    [
      'value not fitting the width',
      { op: 'store', addr: '0x1000', value: '0x100', width: 1 },
      undefined,
      `${p0}.value`,
      /0x100 does not fit in 1 byte\(s\): at most 0xff/,
    ],
    [
      'value not hex',
      { op: 'assert', reg: 'r0', value: 5 },
      undefined,
      `${p0}.value`,
      /hex string/,
    ],
    [
      'user not boolean',
      { op: 'fetch', addr: '0x1000', user: 'true' },
      undefined,
      `${p0}.user`,
      /true or false/,
    ],
    // mapper calls
    [
      'map_to page unaligned',
      { op: 'map_to', size: '2MiB', page: '0x401000', frame: '0x200000', flags: '0x3' },
      undefined,
      `${p0}.page`,
      /not aligned to 2MiB/,
    ],
    [
      'map_to frame unaligned',
      { op: 'map_to', size: '4KiB', page: '0x1000', frame: '0x1001', flags: '0x3' },
      undefined,
      `${p0}.frame`,
      /not aligned to 4KiB/,
    ],
    [
      'map_to frame outside RAM',
      { op: 'map_to', size: '4KiB', page: '0x1000', frame: '0x1000000', flags: '0x3' },
      undefined,
      `${p0}.frame`,
      /outside RAM/,
    ],
    [
      'map_to frame register r99',
      { op: 'map_to', size: '4KiB', page: '0x1000', frame: 'r99', flags: '0x3' },
      undefined,
      `${p0}.frame`,
      /"r99" is not a register/,
    ],
    [
      'map_to HUGE_PAGE at 4KiB',
      { op: 'map_to', size: '4KiB', page: '0x1000', frame: '0x1000', flags: '0x83' },
      undefined,
      `${p0}.flags`,
      /HUGE_PAGE/,
    ],
    [
      'update_flags bits 12..51',
      { op: 'update_flags', size: '4KiB', page: '0x1000', flags: '0x1000000003' },
      undefined,
      `${p0}.flags`,
      /bits 12\.\.51/,
    ],
    [
      'set_flags size missing',
      { op: 'set_flags_p2_entry', page: '0x1000', flags: '0x3' },
      undefined,
      `${p0}.size`,
      /missing/,
    ],
    [
      'unmap bad register',
      { op: 'unmap', size: '4KiB', page: '0x1000', reg: 'rax' },
      undefined,
      `${p0}.reg`,
      /not a register/,
    ],
    // mov_cr3
    [
      'mov_cr3 unknown space',
      { op: 'mov_cr3', as: 'B' },
      undefined,
      `${p0}.as`,
      /unknown address space "B"/,
    ],
    [
      'mov_cr3 noflush without pcid',
      { op: 'mov_cr3', as: 'A', noflush: true },
      undefined,
      `${p0}.noflush`,
      /needs machine.pcid: true/,
    ],
    // invpcid
    ['invpcid type 4', { op: 'invpcid', type: 4 }, undefined, `${p0}.type`, /0\.\.3/],
    [
      'invpcid type 0 without addr',
      { op: 'invpcid', type: 0, pcid: 0 },
      undefined,
      `${p0}.addr`,
      /missing \(invpcid type 0/,
    ],
    ['invpcid type 1 without pcid', { op: 'invpcid', type: 1 }, undefined, `${p0}.pcid`, /missing/],
    [
      'invpcid type 1 with addr',
      { op: 'invpcid', type: 1, pcid: 0, addr: '0x1000' },
      undefined,
      `${p0}.addr`,
      /only type 0 names an address/,
    ],
    [
      'invpcid type 2 with pcid',
      { op: 'invpcid', type: 2, pcid: 1 },
      { pcid: true },
      `${p0}.pcid`,
      /only types 0 and 1 name a PCID/,
    ],
    [
      'invpcid pcid 4096',
      { op: 'invpcid', type: 1, pcid: 4096 },
      { pcid: true },
      `${p0}.pcid`,
      /0\.\.4095/,
    ],
    [
      'invpcid pcid 1 without machine.pcid',
      { op: 'invpcid', type: 1, pcid: 1 },
      undefined,
      `${p0}.pcid`,
      /PCID 1 needs machine.pcid: true/,
    ],
    [
      'invpcid addr not canonical',
      { op: 'invpcid', type: 0, pcid: 0, addr: '0x8000deadbeef' },
      undefined,
      `${p0}.addr`,
      /not canonical/,
    ],
    // frames
    [
      'free_frame with both frame and reg',
      { op: 'free_frame', frame: '0x1000', reg: 'r1' },
      undefined,
      p0,
      /exactly one of "frame" .* and "reg"/,
    ],
    ['free_frame with neither', { op: 'free_frame' }, undefined, p0, /exactly one/],
    [
      'free_frame unaligned',
      { op: 'free_frame', frame: '0x1800' },
      undefined,
      `${p0}.frame`,
      /not aligned to 4KiB/,
    ],
    [
      'free_frame outside RAM',
      { op: 'free_frame', frame: '0x2000000' },
      undefined,
      `${p0}.frame`,
      /outside RAM/,
    ],
    // barriers
    ['barrier name empty', { op: 'barrier', name: '' }, undefined, `${p0}.name`, /cannot be empty/],
    ['barrier name not a string', { op: 'barrier', name: 1 }, undefined, `${p0}.name`, /string/],
  ])('%s', (_, ins, machine, path, why) => {
    expectRejected(prog(ins, machine), path, why);
  });

  it('the location names the CPU and the instruction index', () => {
    const doc = example();
    doc.cpus[1].program[3] = { op: 'load', addr: '0x800000000000', reg: 'r0' };
    const e = expectRejected(doc, 'cpus[1].program[3].addr', /is not canonical/);
    expect(e.message).toMatch(
      /^cpus\[1\]\.program\[3\]\.addr: virtual address 0x800000000000 is not canonical/,
    );
  });

  it('a barrier may appear only once per program', () => {
    const doc = minimal([
      { op: 'barrier', name: 'b' },
      { op: 'flush' },
      { op: 'barrier', name: 'b' },
    ]);
    expectRejected(doc, 'cpus[0].program[2].name', /already appears at cpus\[0\]\.program\[0\]/);
  });

  it('a barrier no other CPU names is fine', () => {
    expect(validateScenario(minimal([{ op: 'barrier', name: 'alone' }])).cpus[0]!.program).toEqual([
      { op: 'barrier', name: 'alone' },
    ]);
  });

  it('an unaligned access within one page is allowed (up to the last byte)', () => {
    const s = validateScenario(
      minimal([
        { op: 'load', addr: '0x400ff8', reg: 'r15' },
        { op: 'store', addr: '0x400fff', value: '0xff', width: 1 },
        { op: 'store', addr: '0x400ffd', value: '0xffff', width: 2 },
        { op: 'fetch', addr: '0x400fff', user: true },
      ]),
    );
    expect(s.cpus[0]!.program.map((i) => ('addr' in i ? i.addr : undefined))).toEqual([
      0x400ff8, 0x400fff, 0x400ffd, 0x400fff,
    ]);
  });

  it('every instruction of the spec parses to its typed form', () => {
    const program = [
      { op: 'load', addr: '0x400001', width: 2, reg: 'r3', user: true },
      { op: 'store', addr: '0xffff800000000000', value: '0xffffffffffffffff' },
      { op: 'fetch', addr: '0x400000' },
      {
        op: 'map_to',
        size: '2MiB',
        page: '0x600000',
        frame: '0x400000',
        flags: '0x8000000000000003',
      },
      { op: 'map_to', size: '4KiB', page: '0x5000', frame: 'r2', flags: '0x7' },
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
      { op: 'mov_cr3', as: 'A', noflush: true },
      { op: 'invpcid', type: 0, pcid: 1, addr: '0x400000' },
      { op: 'invpcid', type: 1, pcid: 0 },
      { op: 'invpcid', type: 2 },
      { op: 'invpcid', type: 3 },
      { op: 'alloc_frame', reg: 'r2' },
      { op: 'free_frame', reg: 'r2' },
      { op: 'free_frame', frame: 'r4' },
      { op: 'free_frame', frame: '0x3000' },
      { op: 'barrier', name: 'done' },
      { op: 'assert', reg: 'r3', value: '0x0' },
    ];
    const s = validateScenario(minimal(program, { pcid: true }));
    const flags = (bits: bigint) => PageTableFlags.fromBits(bits);
    const ok = <T>(r: { ok: boolean; value?: T }): T => r.value as T;
    const expected: Instruction[] = [
      { op: 'load', addr: VirtAddr.new(0x400001), width: 2, reg: 'r3', user: true },
      {
        op: 'store',
        addr: VirtAddr.new(0xffff800000000000n),
        value: 0xffffffffffffffffn,
        width: 8,
        user: false,
      },
      { op: 'fetch', addr: VirtAddr.new(0x400000), user: false },
      {
        op: 'map_to',
        size: Size2MiB,
        page: VirtAddr.new(0x600000),
        frame: PhysAddr.new(0x400000),
        flags: ok(flags(0x8000000000000003n)),
      },
      {
        op: 'map_to',
        size: Size4KiB,
        page: VirtAddr.new(0x5000),
        frame: { reg: 'r2' },
        flags: ok(flags(7n)),
      },
      { op: 'unmap', size: Size4KiB, page: VirtAddr.new(0x5000) },
      {
        op: 'update_flags',
        size: Size4KiB,
        page: VirtAddr.new(0x400000),
        flags: PageTableFlags.PRESENT,
      },
      {
        op: 'set_flags_p4_entry',
        size: Size4KiB,
        page: VirtAddr.new(0x400000),
        flags: ok(flags(3n)),
      },
      {
        op: 'set_flags_p3_entry',
        size: Size1GiB,
        page: VirtAddr.new(0x40000000),
        flags: ok(flags(3n)),
      },
      {
        op: 'set_flags_p2_entry',
        size: Size2MiB,
        page: VirtAddr.new(0x600000),
        flags: ok(flags(3n)),
      },
      { op: 'flush' },
      { op: 'ignore' },
      { op: 'invlpg', addr: VirtAddr.new(0x400123) },
      { op: 'flush_all' },
      { op: 'toggle_pge' },
      { op: 'mov_cr3', as: 'A', noflush: true },
      { op: 'invpcid', type: 0, pcid: 1, addr: VirtAddr.new(0x400000) },
      { op: 'invpcid', type: 1, pcid: 0 },
      { op: 'invpcid', type: 2 },
      { op: 'invpcid', type: 3 },
      { op: 'alloc_frame', reg: 'r2' },
      { op: 'free_frame', frame: { reg: 'r2' } },
      { op: 'free_frame', frame: { reg: 'r4' } },
      { op: 'free_frame', frame: PhysAddr.new(0x3000) },
      { op: 'barrier', name: 'done' },
      { op: 'assert', reg: 'r3', value: 0n },
    ];
    expect(s.cpus[0]!.program).toEqual(expected);
    expect(new Set(s.cpus[0]!.program.map((i) => i.op))).toEqual(new Set(INSTRUCTION_OPS));
  });
});

describe('expect', () => {
  it.each([
    ['not an object', (d: Obj) => (d.expect = ['none']), 'expect', /JSON object/],
    [
      'unknown protocol',
      (d: Obj) => (d.expect = { nonee: [] }),
      'expect.nonee',
      /unknown protocol "nonee" \(did you mean "none"\?\)/,
    ],
    [
      'list not an array',
      (d: Obj) => (d.expect.none = 'stale-translation'),
      'expect.none',
      /JSON array/,
    ],
    [
      'unknown hazard kind',
      (d: Obj) => (d.expect.none = ['stale-translation', 'stale-tlb']),
      'expect.none[1]',
      /unknown hazard kind "stale-tlb"/,
    ],
    [
      'a kind listed twice',
      (d: Obj) => (d.expect.lazy = ['deadlock', 'deadlock']),
      'expect.lazy[1]',
      /listed twice/,
    ],
  ])('%s', (_, patch, path, why) => {
    expectRejected(patched(patch), path, why);
  });

  it('lists come back as sets in the spec order', () => {
    const doc = example();
    doc.expect = { lazy: ['deadlock', 'use-after-free'], none: [] };
    expect(validateScenario(doc).expect).toEqual({
      none: [],
      lazy: ['use-after-free', 'deadlock'],
    });
  });
});

describe('scenarioToJson', () => {
  it('writes a complete file that loads back to the same scenario', () => {
    const s = loadScenario(EXAMPLE_TEXT);
    const json = scenarioToJson(s);
    expect(json.address_spaces.A!.pcid).toBe(1);
    expect(loadScenario(JSON.stringify(json))).toEqual(s);
    expect(validateScenario(json)).toEqual(s);
  });

  const REGS = Array.from({ length: 16 }, (_, i) => `r${i}` as Register);
  const addr = fc
    .oneof(
      fc.bigInt({ min: 0n, max: (1n << 47n) - 1n }),
      fc.bigInt({ min: 0xffff800000000000n, max: 0xffffffffffffffffn }),
    )
    .map((a) => VirtAddr.new(a));
  const reg = fc.constantFrom(...REGS);
  const page4k = fc.integer({ min: 0, max: 2 ** 35 - 1 }).map((n) => VirtAddr.new(n * 4096));
  const frame4k = fc.integer({ min: 0, max: 4095 }).map((n) => PhysAddr.new(n * 4096));
  const flags = fc
    .bigInt({ min: 0n, max: 0xfffn })
    .chain((lo) => fc.bigInt({ min: 0n, max: 0xfffn }).map((hi) => (hi << 52n) | (lo & ~0x80n)))
    .map((bits) => PageTableFlags.fromBits(bits))
    .map((r) => (r.ok ? r.value : PageTableFlags.empty));
  const instruction: fc.Arbitrary<Instruction> = fc.oneof(
    fc.record({
      op: fc.constant('load' as const),
      addr: page4k,
      width: fc.constantFrom(1, 2, 4, 8 as const),
      reg,
      user: fc.boolean(),
    }),
    fc.record({
      op: fc.constant('store' as const),
      addr: page4k,
      value: fc.bigInt({ min: 0n, max: 0xffn }),
      width: fc.constantFrom(1, 2, 4, 8 as const),
      user: fc.boolean(),
    }),
    fc.record({ op: fc.constant('fetch' as const), addr, user: fc.boolean() }),
    fc.record({
      op: fc.constant('map_to' as const),
      size: fc.constant(Size4KiB),
      page: page4k,
      frame: fc.oneof(
        frame4k,
        reg.map((r) => ({ reg: r })),
      ),
      flags,
    }),
    fc.record({
      op: fc.constant('unmap' as const),
      size: fc.constant(Size4KiB),
      page: page4k,
      reg,
    }),
    fc.record({
      op: fc.constantFrom('update_flags' as const, 'set_flags_p4_entry' as const),
      size: fc.constant(Size4KiB),
      page: page4k,
      flags,
    }),
    fc.constantFrom<Instruction>(
      { op: 'flush' },
      { op: 'ignore' },
      { op: 'flush_all' },
      { op: 'toggle_pge' },
      { op: 'invpcid', type: 3 },
    ),
    fc.record({ op: fc.constant('invlpg' as const), addr }),
    fc.record({
      op: fc.constant('invpcid' as const),
      type: fc.constant(0 as const),
      pcid: fc.integer({ min: 0, max: 4095 }),
      addr,
    }),
    fc.record({ op: fc.constant('alloc_frame' as const), reg }),
    fc.record({
      op: fc.constant('free_frame' as const),
      frame: fc.oneof(
        frame4k,
        reg.map((r) => ({ reg: r })),
      ),
    }),
    fc.record({
      op: fc.constant('assert' as const),
      reg,
      value: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
    }),
  );

  it('property: scenarioToJson then validateScenario is the identity', () => {
    fc.assert(
      fc.property(
        fc.array(instruction, { maxLength: 20 }),
        fc.subarray([...HAZARD_KINDS]),
        fc.constantFrom(...PROTOCOLS),
        (program, kinds, protocol) => {
          const base = validateScenario(minimal([], { pcid: true }));
          const s: Scenario = {
            ...base,
            cpus: [{ as: 'A', program }],
            expect: { [protocol]: kinds },
          };
          const json = scenarioToJson(s);
          expect(validateScenario(json)).toEqual(s);
          expect(loadScenario(JSON.stringify(json))).toEqual(s);
        },
      ),
    );
  });
});
