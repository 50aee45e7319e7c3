/**
 * Fixed-width text tables for the terminal: a title line (which says which clock), a header, a
 * rule, and rows; by default the first column is left-aligned and the others right-aligned
 * (numbers). The CLI's tables and the `bench/` files all print through it.
 */

/**
 * Renders one table; every row has as many cells as `head`. `left` lists the columns aligned
 * left (names, notes); the others are aligned right.
 */
export function renderTable(
  title: string,
  head: readonly string[],
  rows: readonly string[][],
  left: readonly number[] = [0],
): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (left.includes(i) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [title, line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)]
    .join('\n')
    .concat('\n');
}

/** A number for a table cell: 3 significant digits below 1000, whole numbers above, thousands separated. */
export function formatNumber(x: number): string {
  if (!Number.isFinite(x)) return 'n/a';
  const a = Math.abs(x);
  if (a >= 1000) return Math.round(x).toLocaleString('en-US');
  if (a === 0) return '0';
  const t = x.toPrecision(3);
  // Trailing zeros of a fraction only ("1.50" -> "1.5"; "300" stays).
  return t.includes('.') ? t.replace(/0+$/, '').replace(/\.$/, '') : t;
}
