/**
 * `replay --check DIR`: runs every `NAME.in.jsonl` of a directory and compares its output with
 * `NAME.out.jsonl`, byte for byte up to the trailing newline.
 */

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseReplay, ReplayFormatError } from './format.ts';
import { runReplay } from './run.ts';

/** The verdict on one sample pair. */
export interface SampleVerdict {
  readonly name: string;
  readonly passed: boolean;
  /** For a failure: the first differing line and both versions of it, or the input error. */
  readonly detail?: string;
}

/** Renders a replay input to the exact text `smpsim replay` prints on standard output. */
export function replayText(input: string): { stdout: string; status: number; stderr?: string } {
  const outcome = runReplay(parseReplay(input));
  return {
    stdout: outcome.lines.map((l) => `${l}\n`).join(''),
    status: outcome.status,
    ...(outcome.error === undefined ? {} : { stderr: outcome.error }),
  };
}

function firstDifference(expected: string, actual: string): string | undefined {
  const e = expected.replace(/\n$/, '').split('\n');
  const a = actual.replace(/\n$/, '').split('\n');
  for (let i = 0; i < Math.max(e.length, a.length); i++) {
    if (e[i] !== a[i]) {
      return `output line ${i + 1} differs\n    expected: ${e[i] ?? '(no line)'}\n    actual:   ${a[i] ?? '(no line)'}`;
    }
  }
  return undefined;
}

/** Checks one `NAME.in.jsonl` against `NAME.out.jsonl` in `dir`. */
export function checkSample(dir: string, name: string): SampleVerdict {
  const outPath = join(dir, `${name}.out.jsonl`);
  if (!existsSync(outPath)) return { name, passed: false, detail: `missing ${name}.out.jsonl` };
  const expected = readFileSync(outPath, 'utf8');
  let actual: string;
  try {
    actual = replayText(readFileSync(join(dir, `${name}.in.jsonl`), 'utf8')).stdout;
  } catch (e) {
    if (e instanceof ReplayFormatError)
      return { name, passed: false, detail: `input rejected: ${e.message}` };
    throw e;
  }
  const diff = firstDifference(expected, actual);
  return diff === undefined ? { name, passed: true } : { name, passed: false, detail: diff };
}

/** Checks every sample pair of `dir`, in name order. */
export function checkDirectory(dir: string): SampleVerdict[] {
  const names = readdirSync(dir)
    .filter((f) => f.endsWith('.in.jsonl'))
    .map((f) => f.slice(0, -'.in.jsonl'.length))
    .sort();
  return names.map((n) => checkSample(dir, n));
}
