/**
 * The machine line every benchmark prints above its tables: CPU model, cores, memory, Node and
 * the date (the same shape as bench/harness.ts's, which the README's figures use).
 */

import { cpus, totalmem } from 'node:os';

/** `machine: AMD EPYC 7B13, 2 cores, 24 GiB; node v20.20.2; 2026-11-25`. */
export function machineLine(date = new Date()): string {
  const c = cpus();
  return `machine: ${c[0]?.model.trim() ?? 'unknown CPU'}, ${c.length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; node ${process.version}; ${date.toISOString().slice(0, 10)}`;
}
