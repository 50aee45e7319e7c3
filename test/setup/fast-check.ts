/**
 * Vitest setup: `FC_RUNS=N` raises (or lowers) fast-check's default number of runs for every
 * property that does not set its own, for long explorations without editing tests.
 */

import fc from 'fast-check';

const runs = process.env.FC_RUNS;
if (runs !== undefined) {
  const n = Number(runs);
  if (!Number.isInteger(n) || n < 1) throw new Error(`FC_RUNS=${runs} must be a positive integer`);
  fc.configureGlobal({ numRuns: n });
}
