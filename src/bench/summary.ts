/**
 * Summaries of repeated measurements: median and p99 (nearest rank) with min and max, the shape
 * every benchmark table of this project reports.
 */

/** Median, p99, min, max and count of a list of samples. */
export interface Summary {
  readonly median: number;
  /** Nearest-rank 99th percentile: with fewer than 100 samples, the maximum. */
  readonly p99: number;
  readonly min: number;
  readonly max: number;
  readonly n: number;
}

/** The p-th percentile (0..100) of sorted samples, by nearest rank. */
function rank(sorted: readonly number[], p: number): number {
  return sorted[
    Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  ]!;
}

/** Summarizes `samples` (at least one). */
export function summarize(samples: readonly number[]): Summary {
  if (samples.length === 0) throw new RangeError('summarize: no samples');
  const s = [...samples].sort((a, b) => a - b);
  const m = s.length >> 1;
  return {
    median: s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2,
    p99: rank(s, 99),
    min: s[0]!,
    max: s[s.length - 1]!,
    n: s.length,
  };
}
