/**
 * `runReplay` (src/replay/run.ts) and `replayText` (src/replay/check.ts): the panics of the spec
 * end the stream with `{"panic":…}` and status 3, a walk into a table frame outside RAM is status
 * 2 with a message naming the line, and the final state line follows the spec's rules.
 */

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { replayText } from '../../src/replay/check.ts';
import { parseReplay } from '../../src/replay/format.ts';
import { runReplay } from '../../src/replay/run.ts';

type Obj = Record<string, unknown>;

const SAMPLES = fileURLToPath(new URL('../fixtures/replay-samples/', import.meta.url));
const NUM_RUNS = process.env.FC_RUNS === undefined ? 100 : Number(process.env.FC_RUNS);

const HEADER: Obj = {
  format: 'mapper-replay/1',
  ram_bytes: '0x100000',
  p4: '0x0',
  alloc: { start: '0x1000', end: '0x20000' },
};

const input = (header: Obj, ...ops: Obj[]): string =>
  `${[header, ...ops].map((l) => JSON.stringify(l)).join('\n')}\n`;

/** Runs `ops` after `header` and returns the outcome. */
const replay = (header: Obj, ...ops: Obj[]) => runReplay(parseReplay(input(header, ...ops)));

const map = (page: string, frame: string, flags: string, size = '4KiB'): Obj => ({
  op: 'map_to',
  size,
  page,
  frame,
  flags,
});

const PANIC_LINE = /^\{"panic":"[^"\n]+"\}$/;

/** Asserts a panic outcome: `before` lines, then the panic line last, status 3, no state line. */
function expectPanic(outcome: ReturnType<typeof runReplay>, before: string[], message?: RegExp) {
  expect(outcome.status).toBe(3);
  expect(outcome.error).toBeUndefined();
  expect(outcome.lines.slice(0, -1)).toEqual(before);
  const last = outcome.lines.at(-1)!;
  expect(last).toMatch(PANIC_LINE);
  if (message) expect((JSON.parse(last) as { panic: string }).panic).toMatch(message);
  expect(outcome.lines.some((l) => l.startsWith('{"state":'))).toBe(false);
}

describe('panics: {"panic":"…"} as the last line, status 3, no state line', () => {
  it('leaf flags lacking PRESENT where a parent table is missing (map_to)', () => {
    const o = replay(
      HEADER,
      { op: 'translate', addr: '0x0' },
      map('0x1000', '0x5000', '0x2'),
      { op: 'translate', addr: '0x0' }, // never runs
    );
    expectPanic(o, ['{"ok":"not_mapped"}'], /mapped/);
  });

  it('parent_flags lacking PRESENT at a missing table (map_to_with_table_flags)', () => {
    const o = replay(HEADER, {
      ...map('0x1000', '0x5000', '0x3'),
      op: 'map_to_with_table_flags',
      parent_flags: '0x2',
    });
    expectPanic(o, []);
  });

  it('a map that would leave an existing parent entry without PRESENT', () => {
    // Clear PRESENT on the P4 entry; a later map whose parent flags do not add PRESENT back
    // finds the entry non-present and non-empty.
    const o = replay(
      HEADER,
      map('0x1000', '0x5000', '0x3'),
      { op: 'set_flags_p4_entry', size: '4KiB', page: '0x1000', flags: '0x2' },
      map('0x2000', '0x6000', '0x2'),
    );
    expectPanic(o, ['{"ok":"flush","page":"0x1000"}', '{"ok":"flush_all"}']);
  });

  it('(no panic: parent flags with PRESENT repair a non-present parent entry)', () => {
    const o = replay(
      HEADER,
      map('0x1000', '0x5000', '0x3'),
      { op: 'set_flags_p4_entry', size: '4KiB', page: '0x1000', flags: '0x2' },
      map('0x2000', '0x6000', '0x3'),
    );
    expect(o.status).toBe(0);
    expect(o.lines.at(-2)).toBe('{"ok":"flush","page":"0x2000"}');
  });

  it('HUGE_PAGE in parent_flags when a parent entry is created', () => {
    const o = replay(HEADER, {
      ...map('0x1000', '0x5000', '0x3'),
      op: 'map_to_with_table_flags',
      parent_flags: '0x83',
    });
    expectPanic(o, [], /HUGE_PAGE/);
  });

  it('(no panic: HUGE_PAGE parent_flags OR-ed into an existing entry is ParentEntryHugePage)', () => {
    const o = replay(HEADER, map('0x1000', '0x5000', '0x3'), {
      ...map('0x2000', '0x6000', '0x3'),
      op: 'map_to_with_table_flags',
      parent_flags: '0x81',
    });
    expect(o.status).toBe(0);
    expect(o.lines[1]).toBe('{"err":"ParentEntryHugePage"}');
  });

  it('HUGE_PAGE in 4 KiB leaf flags when the P1 entry is free', () => {
    const o = replay(HEADER, map('0x1000', '0x5000', '0x83'));
    expectPanic(o, [], /HUGE_PAGE/);
  });

  it('(no panic: HUGE_PAGE in 4 KiB leaf flags on a used entry is PageAlreadyMapped)', () => {
    const o = replay(HEADER, map('0x1000', '0x5000', '0x3'), map('0x1000', '0x7000', '0x83'));
    expect(o.status).toBe(0);
    expect(o.lines[1]).toBe('{"err":"PageAlreadyMapped","frame":"0x7000"}');
  });

  const hugeP4 = [
    map('0x0', '0x5000', '0x3'),
    { op: 'set_flags_p4_entry', size: '4KiB', page: '0x0', flags: '0x83' },
  ];
  const hugeP4Before = ['{"ok":"flush","page":"0x0"}', '{"ok":"flush_all"}'];

  it('translate through a P4 entry with HUGE_PAGE set', () => {
    expectPanic(
      replay(HEADER, ...hugeP4, { op: 'translate', addr: '0x1234' }),
      hugeP4Before,
      /level 4 entry has huge page bit set/,
    );
  });

  it('translate_addr through a P4 entry with HUGE_PAGE set', () => {
    expectPanic(
      replay(HEADER, ...hugeP4, { op: 'translate_addr', addr: '0x1234' }),
      hugeP4Before,
      /level 4 entry has huge page bit set/,
    );
  });

  it('(no panic: translate_page, unmap, map_to through a huge P4 entry are ParentEntryHugePage)', () => {
    const o = replay(
      HEADER,
      ...hugeP4,
      { op: 'translate_page', size: '4KiB', page: '0x0' },
      { op: 'unmap', size: '2MiB', page: '0x0' },
      map('0x1000', '0x6000', '0x3'),
    );
    expect(o.status).toBe(0);
    expect(o.lines.slice(2, 5)).toEqual(Array(3).fill('{"err":"ParentEntryHugePage"}'));
  });

  it.each([
    ['4KiB', '0x800000000000'],
    ['2MiB', '0xffffffe00000'],
    ['1GiB', '0xfffffc0000000'],
  ])('identity_map of a %s frame at or above 2^47 (%s)', (size, frame) => {
    const o = replay(HEADER, { op: 'identity_map', size, frame, flags: '0x3' });
    expectPanic(o, [], /not canonical/);
  });

  it('(no panic: identity_map of the last 4 KiB frame below 2^47)', () => {
    const o = replay(HEADER, {
      op: 'identity_map',
      size: '4KiB',
      frame: '0x7ffffffff000',
      flags: '0x3',
    });
    expect(o.status).toBe(0);
    expect(o.lines[0]).toBe('{"ok":"flush","page":"0x7ffffffff000"}');
  });

  it('replayText prints the lines before the panic and the panic line, nothing after', () => {
    const r = replayText(
      input(
        HEADER,
        { op: 'translate_addr', addr: '0x0' },
        map('0x0', '0x0', '0x0'),
        map('0x0', '0x0', '0x3'),
      ),
    );
    expect(r.status).toBe(3);
    expect(r.stderr).toBeUndefined();
    const lines = r.stdout.split('\n');
    expect(lines.pop()).toBe('');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toBe('{"ok":"none"}');
    expect(lines[1]).toMatch(PANIC_LINE);
  });
});

describe('a walk into a table frame outside RAM: status 2, a message naming the line', () => {
  it('alloc range beyond ram_bytes: the first table frame outside RAM stops the run', () => {
    const o = replay(
      { ...HEADER, ram_bytes: '0x2000', alloc: { start: '0x1000', end: '0x10000' } },
      { op: 'translate', addr: '0x0' },
      map('0x0', '0x0', '0x3'), // needs tables at 0x1000 (in RAM) and 0x2000 (outside)
      { op: 'translate', addr: '0x0' }, // never runs
    );
    expect(o.status).toBe(2);
    expect(o.lines).toEqual(['{"ok":"not_mapped"}']);
    expect(o.error).toMatch(/^line 3: field 'page': /);
    expect(o.error).toMatch(/0x2000.*outside RAM \[0x0, 0x2000\)/);
    expect(o.error).not.toContain('\n');
  });

  it('an alloc range wholly outside RAM, reached through identity_map (field frame)', () => {
    const o = replay(
      { ...HEADER, ram_bytes: '0x1000', alloc: { start: '0x100000', end: '0x200000' } },
      { op: 'identity_map', size: '4KiB', frame: '0x0', flags: '0x3' },
    );
    expect(o.status).toBe(2);
    expect(o.lines).toEqual([]);
    expect(o.error).toMatch(/^line 2: field 'frame': .*0x100000.*outside RAM/);
  });

  it('a huge entry turned into a table pointer (set_flags_p2_entry) and then walked', () => {
    // A 2 MiB leaf at frame 0x40000000; clearing HUGE_PAGE makes the P2 entry a table pointer
    // to 0x40000000, far outside the 1 MiB of RAM.
    const o = replay(
      HEADER,
      map('0x200000', '0x40000000', '0x3', '2MiB'),
      { op: 'set_flags_p2_entry', size: '4KiB', page: '0x200000', flags: '0x3' },
      { op: 'translate_page', size: '2MiB', page: '0x200000' },
      { op: 'translate', addr: '0x200000' },
    );
    expect(o.status).toBe(2);
    expect(o.lines).toEqual([
      '{"ok":"flush","page":"0x200000"}',
      '{"ok":"flush_all"}',
      // The crate's translate_page<2MiB> does not look at HUGE_PAGE: the aligned address is
      // the frame.
      '{"ok":"frame","frame":"0x40000000"}',
    ]);
    expect(o.error).toMatch(/^line 5: field 'addr': .*0x40000000.*outside RAM \[0x0, 0x100000\)/);
  });

  it('replayText reports status 2 with the message as stderr and no state line', () => {
    const r = replayText(
      input(
        { ...HEADER, ram_bytes: '0x2000', alloc: { start: '0x1000', end: '0x10000' } },
        map('0x0', '0x0', '0x3'),
      ),
    );
    expect(r).toEqual({
      stdout: '',
      status: 2,
      stderr: expect.stringMatching(/^line 2: field 'page': .*outside RAM/),
    });
  });
});

/** Every hex string of an output line is lowercase with no leading zeros. */
const CANONICAL_HEX = /^0x(0|[1-9a-f][0-9a-f]*)$/;
function hexStrings(value: unknown): string[] {
  if (typeof value === 'string') return value.startsWith('0') ? [value] : [];
  if (Array.isArray(value)) return value.flatMap(hexStrings);
  if (typeof value === 'object' && value !== null) return Object.values(value).flatMap(hexStrings);
  return [];
}

describe('the state line', () => {
  it('is {"state":[]} for a header alone (P4 all zero, nothing issued)', () => {
    expect(replay(HEADER)).toEqual({ lines: ['{"state":[]}'], status: 0 });
  });

  it('sorts by table address (numerically), then by index; includes P4 wherever it lies', () => {
    // P4 at 0x10000, tables issued at 0x9000, 0xa000, 0xb000: as strings "0x10000" < "0x9000".
    const o = replay(
      { ...HEADER, p4: '0x10000', alloc: { start: '0x9000', end: '0xc000' } },
      map('0xa000', '0x20000', '0x3'), // P1 index 10 first
      map('0x2000', '0x21000', '0x3'), // then P1 index 2
      map('0xffff800000000000', '0x22000', '0x3'), // P4 index 256: FrameAllocationFailed
    );
    expect(o.status).toBe(0);
    expect(o.lines.slice(0, 3)).toEqual([
      '{"ok":"flush","page":"0xa000"}',
      '{"ok":"flush","page":"0x2000"}',
      '{"err":"FrameAllocationFailed"}',
    ]);
    expect(o.lines[3]).toBe(
      '{"state":[["0x9000",0,"0xa003"],["0xa000",0,"0xb003"],["0xb000",2,"0x21003"],["0xb000",10,"0x20003"],["0x10000",0,"0x9003"]]}',
    );
  });

  it('covers every issued frame: tables of a map that failed part-way stay', () => {
    // Two frames: P3 and P2 are created, the P1 cannot be: FrameAllocationFailed, tables kept.
    const o = replay(
      { ...HEADER, alloc: { start: '0x1000', end: '0x3000' } },
      map('0x0', '0x5000', '0x3'),
    );
    expect(o.lines).toEqual([
      '{"err":"FrameAllocationFailed"}',
      '{"state":[["0x0",0,"0x1003"],["0x1000",0,"0x2003"]]}',
    ]);
  });

  it('keeps entries an unmap left behind in tables (tables are never freed)', () => {
    const o = replay(HEADER, map('0x1000', '0x5000', '0x3'), {
      op: 'unmap',
      size: '4KiB',
      page: '0x1000',
    });
    expect(o.lines.at(-1)).toBe(
      '{"state":[["0x0",0,"0x1003"],["0x1000",0,"0x2003"],["0x2000",0,"0x3003"]]}',
    );
  });

  it('prints entries as lowercase hex without leading zeros, whatever the input spelling', () => {
    const o = replay(HEADER, {
      op: 'map_to',
      size: '4KiB',
      page: '0x0000000000400000',
      frame: '0x00000000abcde000',
      flags: '0x8000000000000107',
    });
    expect(o.lines).toEqual([
      '{"ok":"flush","page":"0x400000"}',
      '{"state":[["0x0",0,"0x1007"],["0x1000",0,"0x2007"],["0x2000",2,"0x3007"],["0x3000",0,"0x80000000abcde107"]]}',
    ]);
  });

  it('every hex string of every sample output is canonical lowercase hex', () => {
    const names = readdirSync(SAMPLES).filter((f) => f.endsWith('.in.jsonl'));
    expect(names.length).toBeGreaterThan(0);
    for (const n of names) {
      const { stdout } = replayText(readFileSync(join(SAMPLES, n), 'utf8'));
      for (const line of stdout.trimEnd().split('\n')) {
        expect(line).not.toMatch(/\s/);
        for (const h of hexStrings(JSON.parse(line))) expect(h).toMatch(CANONICAL_HEX);
      }
    }
  });

  it('property: one line per op then a sorted, duplicate-free state line over P4 and issued frames', () => {
    const P4 = 0x8000;
    const ALLOC_START = 0x1000;
    const ALLOC_END = 0x8000; // 7 frames: allocation can run out
    // A small address space so ops collide: P4 indices 0/1, P3 0/1, P2 0/1, P1 0..3.
    const page4k = fc
      .tuple(fc.nat(1), fc.nat(1), fc.nat(1), fc.nat(3))
      .map(([a, b, c, d]) => a * 2 ** 39 + b * 2 ** 30 + c * 2 ** 21 + d * 2 ** 12);
    const hx = (n: number) => `0x${n.toString(16)}`;
    const flags = fc.constantFrom('0x1', '0x3', '0x7', '0x8000000000000003', '0x2');
    const op: fc.Arbitrary<Obj> = fc.oneof(
      fc
        .tuple(page4k, fc.nat(0xfff), fc.constantFrom('0x1', '0x3', '0x7'))
        .map(([p, f, fl]) => map(hx(p), hx(f * 4096), fl)),
      fc
        .tuple(page4k, fc.nat(3))
        .map(([p, f]) => map(hx(p - (p % 2 ** 21)), hx(f * 2 ** 21), '0x3', '2MiB')),
      page4k.map((p) => ({ op: 'unmap', size: '4KiB', page: hx(p) })),
      fc
        .tuple(page4k, flags)
        .map(([p, fl]) => ({ op: 'update_flags', size: '4KiB', page: hx(p), flags: fl })),
      fc.tuple(page4k, fc.nat(0xfff)).map(([p, o]) => ({ op: 'translate', addr: hx(p + o) })),
      page4k.map((p) => ({ op: 'translate_page', size: '4KiB', page: hx(p) })),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 30 }), (ops) => {
        const text = input(
          { ...HEADER, p4: hx(P4), alloc: { start: hx(ALLOC_START), end: hx(ALLOC_END) } },
          ...ops,
        );
        const a = replayText(text);
        expect(replayText(text)).toEqual(a); // deterministic
        const o = runReplay(parseReplay(text));
        if (o.status === 3) {
          expect(o.lines.at(-1)).toMatch(PANIC_LINE);
          return;
        }
        expect(o.status).toBe(0);
        expect(o.lines).toHaveLength(ops.length + 1);
        const last = o.lines.at(-1)!;
        const row = '\\["0x[0-9a-f]+",\\d+,"0x[0-9a-f]+"\\]';
        expect(last).toMatch(new RegExp(`^\\{"state":\\[(${row}(,${row})*)?\\]\\}$`));
        const rows = (JSON.parse(last) as { state: [string, number, string][] }).state;
        for (let i = 0; i < rows.length; i++) {
          const [t, idx, v] = rows[i]!;
          expect(t).toMatch(CANONICAL_HEX);
          expect(v).toMatch(CANONICAL_HEX);
          expect(v).not.toBe('0x0');
          expect(idx).toBeGreaterThanOrEqual(0);
          expect(idx).toBeLessThan(512);
          const table = Number(t);
          expect(table === P4 || (table >= ALLOC_START && table < ALLOC_END)).toBe(true);
          if (i > 0) {
            const [pt, pidx] = rows[i - 1]!;
            const order = Number(pt) - table || pidx - idx;
            expect(order).toBeLessThan(0);
          }
        }
      }),
      { numRuns: NUM_RUNS },
    );
  });
});
