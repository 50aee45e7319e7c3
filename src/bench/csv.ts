/**
 * CSV (RFC 4180) for benchmark results: a header row, then one row per point; fields that hold
 * a comma, a quote or a line break are quoted, quotes doubled. Numbers are written in full.
 */

/** One CSV column: its header and how to read it from a row. */
export interface CsvColumn<T> {
  readonly name: string;
  readonly value: (row: T) => string | number | boolean;
}

function field(v: string | number | boolean): string {
  const s = typeof v === 'number' && !Number.isFinite(v) ? '' : String(v);
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** The CSV text of `rows` (lines end with CRLF, as RFC 4180 says). */
export function toCsv<T>(columns: readonly CsvColumn<T>[], rows: readonly T[]): string {
  const lines = [columns.map((c) => field(c.name)).join(',')];
  for (const r of rows) lines.push(columns.map((c) => field(c.value(r))).join(','));
  return `${lines.join('\r\n')}\r\n`;
}
