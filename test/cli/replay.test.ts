/**
 * `smpsim replay` as a user runs it: the real bin (`node bin/smpsim.js`, TypeScript through tsx)
 * as a child process, for outputs, exit statuses and one-line errors. Spawning costs about half a
 * second, so only the user-visible paths spawn; the remaining cases call `main(argv, io)`
 * in-process with a capturing `Io`.
 */

import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/program.ts';
import type { Io } from '../../src/cli/replay.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SAMPLES_REL = 'test/fixtures/replay-samples';
const SAMPLES = join(ROOT, SAMPLES_REL);
const SAMPLE_NAMES = readdirSync(SAMPLES)
  .filter((f) => f.endsWith('.in.jsonl'))
  .map((f) => f.slice(0, -'.in.jsonl'.length))
  .sort();

const HEADER = {
  format: 'mapper-replay/1',
  ram_bytes: '0x100000',
  p4: '0x0',
  alloc: { start: '0x1000', end: '0x20000' },
};
const jsonl = (...lines: unknown[]): string =>
  `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`;
const MAP = { op: 'map_to', size: '4KiB', page: '0x400000', frame: '0x5000', flags: '0x3' };

/** Runs the installed bin with `args` from the repository root. */
function smpsim(args: string[], stdin?: string): SpawnSyncReturns<string> {
  const r = spawnSync(process.execPath, ['bin/smpsim.js', ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    input: stdin ?? '',
    timeout: 30_000,
  });
  if (r.error) throw r.error;
  return r;
}

const strip = (s: string): string => s.replace(/\n$/, '');
const sample = (name: string, ext: 'in' | 'out'): string =>
  readFileSync(join(SAMPLES, `${name}.${ext}.jsonl`), 'utf8');

/** A one-line diagnostic: exactly one line, no stack trace. */
function expectOneLineError(stderr: string, pattern: RegExp): void {
  expect(stderr.endsWith('\n')).toBe(true);
  expect(strip(stderr).split('\n')).toHaveLength(1);
  expect(stderr).not.toMatch(/^ {4}at /m);
  expect(stderr).toMatch(pattern);
}

const tmpRoot = mkdtempSync(join(tmpdir(), 'smpsim-cli-'));
afterAll(() => rmSync(tmpRoot, { recursive: true, force: true }));
let tmpCount = 0;
/** A fresh directory under the suite's temporary root. */
function freshDir(): string {
  const d = join(tmpRoot, `d${tmpCount++}`);
  mkdirSync(d);
  return d;
}
/** A file holding `text` in a fresh directory. */
function tmpFile(name: string, text: string): string {
  const f = join(freshDir(), name);
  writeFileSync(f, text);
  return f;
}
/** A copy of the bundled samples, for --check runs that alter some of them. */
function copySamples(): string {
  const d = freshDir();
  for (const f of readdirSync(SAMPLES)) copyFileSync(join(SAMPLES, f), join(d, f));
  return d;
}

/** Runs `main` in-process and captures what it writes. */
async function run(argv: string[]): Promise<{ status: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: Io = {
    out: (t) => {
      out += t;
    },
    err: (t) => {
      err += t;
    },
  };
  const status = await main(argv, io);
  return { status, out, err };
}

describe('smpsim replay, as a child process', () => {
  it('replay FILE prints the result stream of a sample byte for byte, exit 0', () => {
    const r = smpsim(['replay', `${SAMPLES_REL}/basic-4kib.in.jsonl`]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(strip(r.stdout)).toBe(strip(sample('basic-4kib', 'out')));
  });

  it('replay - reads standard input', () => {
    const r = smpsim(['replay', '-'], sample('huge-pages', 'in'));
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(strip(r.stdout)).toBe(strip(sample('huge-pages', 'out')));
  });

  it('replay --check on the bundled samples: a PASS line each, "6 passed, 0 failed", exit 0', () => {
    const r = smpsim(['replay', '--check', SAMPLES_REL]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const lines = strip(r.stdout).split('\n');
    expect(lines).toEqual([
      ...SAMPLE_NAMES.map((n) => `PASS ${n}`),
      `${SAMPLE_NAMES.length} passed, 0 failed`,
    ]);
    expect(SAMPLE_NAMES.length).toBeGreaterThanOrEqual(6);
  });

  it('replay --check with one altered .out: the first differing line, "N passed, 1 failed", exit 1', () => {
    const dir = copySamples();
    const outFile = join(dir, 'set-flags.out.jsonl');
    const expected = readFileSync(outFile, 'utf8').split('\n');
    const actualLine3 = expected[2]!;
    expected[2] = '{"ok":"flush_all","altered":true}';
    expected[5] = '{"err":"also altered, but not the first difference"}';
    writeFileSync(outFile, expected.join('\n'));

    const r = smpsim(['replay', '--check', dir]);
    expect(r.status).toBe(1);
    const out = r.stdout;
    expect(out).toContain(
      [
        'FAIL set-flags: output line 3 differs',
        '    expected: {"ok":"flush_all","altered":true}',
        `    actual:   ${actualLine3}`,
      ].join('\n'),
    );
    expect(out).not.toContain('also altered');
    for (const n of SAMPLE_NAMES.filter((x) => x !== 'set-flags'))
      expect(out).toContain(`PASS ${n}\n`);
    expect(strip(out).split('\n').at(-1)).toBe(`${SAMPLE_NAMES.length - 1} passed, 1 failed`);
  });

  it('replay --check with a missing .out file: FAIL naming it, exit 1', () => {
    const dir = freshDir();
    copyFileSync(join(SAMPLES, 'map-errors.in.jsonl'), join(dir, 'map-errors.in.jsonl'));
    copyFileSync(join(SAMPLES, 'basic-4kib.in.jsonl'), join(dir, 'basic-4kib.in.jsonl'));
    copyFileSync(join(SAMPLES, 'basic-4kib.out.jsonl'), join(dir, 'basic-4kib.out.jsonl'));
    const r = smpsim(['replay', '--check', dir]);
    expect(r.status).toBe(1);
    expect(strip(r.stdout).split('\n')).toEqual([
      'PASS basic-4kib',
      'FAIL map-errors: missing map-errors.out.jsonl',
      '1 passed, 1 failed',
    ]);
  });

  it('malformed input: exit 2, one line on stderr naming the line and field, nothing ran', () => {
    const file = tmpFile(
      'bad.in.jsonl',
      jsonl(
        HEADER,
        MAP,
        { op: 'translate', addr: '0x400000' },
        { op: 'unmap', size: '4KiB', page: '0x400000' },
        { ...MAP, frame: '0x5800' },
      ),
    );
    const r = smpsim(['replay', file]);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expectOneLineError(r.stderr, /line 5: field 'frame': 0x5800 is not aligned to 4KiB/);
  });

  it('a panic: exit 3, the panic line last on stdout, no state line', () => {
    const file = tmpFile(
      'panic.in.jsonl',
      jsonl(HEADER, MAP, {
        ...MAP,
        op: 'map_to_with_table_flags',
        page: '0xffff800000000000', // a new P4 entry: the HUGE_PAGE parent flags panic
        parent_flags: '0x83',
      }),
    );
    const r = smpsim(['replay', file]);
    expect(r.status).toBe(3);
    const lines = strip(r.stdout).split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toBe('{"ok":"flush","page":"0x400000"}');
    expect(lines[1]).toMatch(/^\{"panic":"[^"]+"\}$/);
    expect(r.stderr).not.toMatch(/^ {4}at /m);
  });

  it('a walk into a table frame outside RAM: exit 2, one line naming the line', () => {
    const file = tmpFile(
      'outside.in.jsonl',
      jsonl({ ...HEADER, ram_bytes: '0x2000', alloc: { start: '0x1000', end: '0x10000' } }, MAP),
    );
    const r = smpsim(['replay', file]);
    expect(r.status).toBe(2);
    expect(r.stdout).not.toContain('"state"');
    expectOneLineError(r.stderr, /line 2: field 'page': .*outside RAM/);
  });

  it('a missing file: exit 2, a one-line message naming it', () => {
    const r = smpsim(['replay', 'no/such/file.jsonl']);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expectOneLineError(r.stderr, /no\/such\/file\.jsonl/);
  });

  it('an unknown command: exit 2', () => {
    const r = smpsim(['frobnicate']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/unknown command 'frobnicate'/);
    expect(r.stderr).not.toMatch(/^ {4}at /m);
  });

  it('--help: exit 0, usage on stdout naming the replay command', () => {
    const r = smpsim(['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/Usage: smpsim/);
    expect(r.stdout).toMatch(/replay/);
  });
});

describe('smpsim replay, in-process through main(argv, io)', () => {
  it.each(SAMPLE_NAMES)('replay FILE on sample %s matches its .out', async (name) => {
    const r = await run(['replay', join(SAMPLES, `${name}.in.jsonl`)]);
    expect(r).toEqual({ status: 0, out: sample(name, 'out').replace(/\n?$/, '\n'), err: '' });
  });

  it('replay --help and help replay: exit 0 with the replay usage', async () => {
    for (const argv of [
      ['replay', '--help'],
      ['help', 'replay'],
    ]) {
      const r = await run(argv);
      expect(r.status).toBe(0);
      expect(r.out).toMatch(/Usage: smpsim replay/);
      expect(r.out).toMatch(/--check <dir>/);
    }
  });

  it('no arguments at all: exit 2 (commander prints the help on stderr)', async () => {
    const r = await run([]);
    expect(r.status).toBe(2);
    expect(r.out).toBe('');
  });

  it.each([
    [['replay'], /missing FILE/],
    [['replay', 'a.jsonl', '--check', 'dir'], /either FILE or --check DIR, not both/],
    [['replay', SAMPLES], /is a directory \(did you mean --check/],
    [['replay', '--check', join(ROOT, 'no-such-dir')], /no-such-dir is not a directory/],
    [['replay', '--check', join(SAMPLES, 'basic-4kib.in.jsonl')], /is not a directory/],
  ])('usage error %j: exit 2, one line', async (argv, pattern) => {
    const r = await run(argv);
    expect(r.status).toBe(2);
    expect(r.out).toBe('');
    expectOneLineError(r.err, pattern);
    expect(r.err).toMatch(/^smpsim: error: /);
  });

  it('unknown option: exit 2', async () => {
    const r = await run(['replay', '--frob', 'x']);
    expect(r.status).toBe(2);
    expect(r.err).toMatch(/unknown option '--frob'/);
  });

  it('replay --check on a directory without samples: exit 2', async () => {
    const r = await run(['replay', '--check', freshDir()]);
    expect(r.status).toBe(2);
    expectOneLineError(r.err, /no \*\.in\.jsonl files/);
  });

  it('replay --check tolerates a missing trailing newline in .out, not a missing line', async () => {
    const dir = freshDir();
    copyFileSync(join(SAMPLES, 'map-errors.in.jsonl'), join(dir, 'a.in.jsonl'));
    writeFileSync(join(dir, 'a.out.jsonl'), strip(sample('map-errors', 'out')));
    copyFileSync(join(SAMPLES, 'map-errors.in.jsonl'), join(dir, 'b.in.jsonl'));
    const lines = strip(sample('map-errors', 'out')).split('\n');
    writeFileSync(join(dir, 'b.out.jsonl'), `${lines.slice(0, -1).join('\n')}\n`);
    const r = await run(['replay', '--check', dir]);
    expect(r.status).toBe(1);
    expect(r.out).toBe(
      [
        'PASS a',
        `FAIL b: output line ${lines.length} differs`,
        '    expected: (no line)',
        `    actual:   ${lines.at(-1)}`,
        '1 passed, 1 failed',
        '',
      ].join('\n'),
    );
  });

  it('replay --check with a malformed .in: FAIL "input rejected" naming line and field', async () => {
    const dir = freshDir();
    writeFileSync(join(dir, 'bad.in.jsonl'), jsonl(HEADER, { op: 'frob' }));
    writeFileSync(join(dir, 'bad.out.jsonl'), '{"state":[]}\n');
    const r = await run(['replay', '--check', dir]);
    expect(r.status).toBe(1);
    expect(r.out).toMatch(/^FAIL bad: input rejected: line 2: field 'op': unknown operation/);
    expect(r.out).toMatch(/0 passed, 1 failed\n$/);
  });

  it('replay of a header alone prints just the empty state line', async () => {
    const r = await run(['replay', tmpFile('empty.in.jsonl', jsonl(HEADER))]);
    expect(r).toEqual({ status: 0, out: '{"state":[]}\n', err: '' });
  });

  it('malformed input in-process: exit 2, error on err, nothing on out', async () => {
    const r = await run(['replay', tmpFile('x.in.jsonl', `${JSON.stringify(HEADER)}\n\n{oops\n`)]);
    expect(r.status).toBe(2);
    expect(r.out).toBe('');
    expectOneLineError(r.err, /^smpsim: error: line 3: field '-': not valid JSON/);
  });

  // Regression (fixed; the text says what used to happen): Spec: input errors are "a message naming the line and the field". A ram_bytes above what the
  // simulator can allocate (here 2^33) is refused by PhysicalMemory at run time, with exit 2 but
  // a message that names neither line 1 nor ram_bytes.
  it('a ram_bytes too large for the host names line 1 and field ram_bytes', async () => {
    const r = await run([
      'replay',
      tmpFile('big.in.jsonl', jsonl({ ...HEADER, ram_bytes: '0x200000000' })),
    ]);
    expect(r.status).toBe(2);
    expect(r.out).toBe('');
    expectOneLineError(r.err, /line 1: field 'ram_bytes'/);
  });

  // Regression (fixed; the text says what used to happen): `replay --check` turns a malformed sample into a FAIL line, but a too-large ram_bytes
  // (MemoryError, not ReplayFormatError) aborts the whole check with exit 2 instead.
  it('replay --check reports an unallocatable ram_bytes as one FAIL, not an abort', async () => {
    const dir = freshDir();
    writeFileSync(join(dir, 'big.in.jsonl'), jsonl({ ...HEADER, ram_bytes: '0x200000000' }));
    writeFileSync(join(dir, 'big.out.jsonl'), '{"state":[]}\n');
    copyFileSync(join(SAMPLES, 'basic-4kib.in.jsonl'), join(dir, 'ok.in.jsonl'));
    copyFileSync(join(SAMPLES, 'basic-4kib.out.jsonl'), join(dir, 'ok.out.jsonl'));
    const r = await run(['replay', '--check', dir]);
    expect(r.status).toBe(1);
    expect(r.out).toMatch(/^FAIL big: /m);
    expect(r.out).toMatch(/1 passed, 1 failed\n$/);
  });
});
