/**
 * `smpsim replay FILE|-` and `smpsim replay --check DIR`: the command-line face of `src/replay/`.
 */

import { existsSync, readFileSync, statSync } from 'node:fs';
import { checkDirectory } from '../replay/check.ts';
import { parseReplay } from '../replay/format.ts';
import { runReplay } from '../replay/run.ts';
import { UsageError } from './usage-error.ts';

/** Where a command writes; injectable so tests capture output without spawning a process. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
}

function readInput(file: string): string {
  if (file === '-') return readFileSync(0, 'utf8');
  if (!existsSync(file)) throw new UsageError(`replay: cannot read ${file}: no such file`);
  if (statSync(file).isDirectory())
    throw new UsageError(`replay: ${file} is a directory (did you mean --check ${file}?)`);
  return readFileSync(file, 'utf8');
}

/** Runs one replay; returns the exit status of the spec (0, 2 malformed, 3 panic). */
export function replayCommand(file: string, io: Io): number {
  const outcome = runReplay(parseReplay(readInput(file)));
  io.out(outcome.lines.map((l) => `${l}\n`).join(''));
  if (outcome.error !== undefined) io.err(`smpsim replay: ${outcome.error}\n`);
  return outcome.status;
}

/** Checks a directory of sample pairs; returns 1 if any failed, 0 otherwise. */
export function replayCheckCommand(dir: string, io: Io): number {
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new UsageError(`replay --check: ${dir} is not a directory`);
  const verdicts = checkDirectory(dir);
  if (verdicts.length === 0) throw new UsageError(`replay --check: no *.in.jsonl files in ${dir}`);
  for (const v of verdicts) {
    io.out(v.passed ? `PASS ${v.name}\n` : `FAIL ${v.name}: ${v.detail}\n`);
  }
  const failed = verdicts.filter((v) => !v.passed).length;
  io.out(`${verdicts.length - failed} passed, ${failed} failed\n`);
  return failed > 0 ? 1 : 0;
}
