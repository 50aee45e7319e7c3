/**
 * Shared measurement harness for `bench/*.ts`: repeated runs, medians with min/max, the machine
 * description, and a fixed-width table. Wall-clock only: every table says so.
 */

import { cpus, totalmem } from 'node:os';
import { renderTable } from '../src/bench/table.ts';

/** One row of a benchmark table. */
export interface BenchRow {
  readonly name: string;
  /** Operations per run. */
  readonly ops: number;
  /** Seconds per run, one entry per repetition. */
  readonly seconds: number[];
  /** Free text: the goal, the reference figure. */
  readonly note?: string;
}

/** The median of a non-empty list. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The p-th percentile (0..100) by nearest rank. */
export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/** Runs `body` once as warm-up, then `runs` times, returning seconds per timed run. */
export function timeRuns(runs: number, body: () => void): number[] {
  body();
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    body();
    out.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return out;
}

/** `timeRuns` for an async `body`: one awaited warm-up, then `runs` awaited timed runs. */
export async function timeRunsAsync(runs: number, body: () => Promise<unknown>): Promise<number[]> {
  await body();
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    await body();
    out.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return out;
}

/** One line naming the machine, Node and the date, printed above every table. */
export function machineLine(): string {
  const c = cpus();
  return `machine: ${c[0]?.model.trim() ?? 'unknown CPU'}, ${c.length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; node ${process.version}; ${new Date().toISOString().slice(0, 10)}`;
}

function fmtRate(x: number): string {
  return x >= 1e6
    ? `${(x / 1e6).toFixed(2)} M`
    : x >= 1e3
      ? `${(x / 1e3).toFixed(1)} k`
      : x.toFixed(0);
}

/** Prints rows as `ops/s (median, min, max)` plus ns/op, with units in the header. */
export function printRateTable(title: string, rows: readonly BenchRow[]): void {
  const head = [
    'benchmark',
    'ops/run',
    'median ops/s',
    'min ops/s',
    'max ops/s',
    'median ns/op',
    'note',
  ];
  const body = rows.map((r) => {
    const rates = r.seconds.map((s) => r.ops / s);
    return [
      r.name,
      String(r.ops),
      fmtRate(median(rates)),
      fmtRate(Math.min(...rates)),
      fmtRate(Math.max(...rates)),
      ((median(r.seconds) / r.ops) * 1e9).toFixed(1),
      r.note ?? '',
    ];
  });
  printTable(
    `${title} (wall clock; ${rows[0]?.seconds.length ?? 0} timed runs after 1 warm-up)`,
    head,
    body,
  );
}

/**
 * Prints a table after a blank line: names in the first column and notes in the last aligned
 * left, figures right (src/bench/table.ts).
 */
export function printTable(
  title: string,
  head: readonly string[],
  body: readonly string[][],
): void {
  process.stdout.write(`\n${renderTable(title, head, body, [0, head.length - 1])}`);
}

/**
 * Like `timeRuns`, but with a per-run `setup` outside the timed region: one warm-up
 * run, then `runs` timed ones. Returns seconds per timed run.
 */
export function timeFreshRuns<T>(runs: number, setup: () => T, body: (state: T) => void): number[] {
  body(setup());
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const state = setup();
    const t0 = process.hrtime.bigint();
    body(state);
    out.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return out;
}
