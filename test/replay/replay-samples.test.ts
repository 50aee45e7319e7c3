/**
 * The bundled `mapper-replay/1` samples (`shared/spec/replay-samples/`, copied to
 * `test/fixtures/replay-samples/`): every `NAME.in.jsonl` replays to exactly `NAME.out.jsonl`.
 * The tests are generated from the directory listing, so a new sample pair is picked up as is.
 */

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { replayText } from '../../src/replay/check.ts';

const SAMPLES = fileURLToPath(new URL('../fixtures/replay-samples/', import.meta.url));

/** The samples the spec ships; the directory may hold more, never fewer. */
const KNOWN = ['basic-4kib', 'huge-pages', 'map-errors', 'non-present', 'set-flags', 'table-flags'];

const names = readdirSync(SAMPLES)
  .filter((f) => f.endsWith('.in.jsonl'))
  .map((f) => f.slice(0, -'.in.jsonl'.length))
  .sort();

/** Equal "modulo one trailing newline", as the spec compares outputs. */
const withoutTrailingNewline = (s: string): string => s.replace(/\n$/, '');

describe('mapper-replay/1 samples', () => {
  it(`holds at least the ${KNOWN.length} known samples, each with its .out file`, () => {
    expect(names).toEqual(expect.arrayContaining(KNOWN));
    const files = readdirSync(SAMPLES);
    for (const n of names) expect(files).toContain(`${n}.out.jsonl`);
  });

  it.each(names)('%s: replayText(NAME.in.jsonl).stdout is NAME.out.jsonl byte for byte', (name) => {
    const input = readFileSync(join(SAMPLES, `${name}.in.jsonl`), 'utf8');
    const expected = readFileSync(join(SAMPLES, `${name}.out.jsonl`), 'utf8');
    const result = replayText(input);
    expect(result.status).toBe(0);
    expect(result.stderr).toBeUndefined();
    // Every output line ends with "\n"; the expected file may or may not end with one.
    expect(result.stdout.endsWith('\n')).toBe(true);
    expect(withoutTrailingNewline(result.stdout)).toBe(withoutTrailingNewline(expected));
  });
});
