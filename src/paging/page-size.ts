/**
 * Page sizes (the crate's `PageSize`, `Size4KiB`, `Size2MiB`, `Size1GiB`, `NotGiantPageSize`).
 *
 * Rust monomorphises `Page<S>` over a zero-sized type; TypeScript cannot, so a size is a frozen
 * runtime value whose literal type still tells the sizes apart at compile time.
 */

/** What every page size provides: its log2, its size in bytes and the crate's debug name. */
export interface PageSize {
  readonly shift: 12 | 21 | 30;
  readonly bytes: number;
  readonly name: '4KiB' | '2MiB' | '1GiB';
}

/** A standard 4 KiB page, mapped by a level-1 entry. */
export const Size4KiB = Object.freeze({ shift: 12, bytes: 4096, name: '4KiB' } as const);
export type Size4KiB = typeof Size4KiB;

/** A 2 MiB huge page, mapped by a level-2 entry with HUGE_PAGE. */
export const Size2MiB = Object.freeze({ shift: 21, bytes: 2 * 1024 * 1024, name: '2MiB' } as const);
export type Size2MiB = typeof Size2MiB;

/** A 1 GiB giant page, mapped by a level-3 entry with HUGE_PAGE. */
export const Size1GiB = Object.freeze({
  shift: 30,
  bytes: 1024 * 1024 * 1024,
  name: '1GiB',
} as const);
export type Size1GiB = typeof Size1GiB;

/** The sizes that have a level-2 index (`p2Index` exists only on these pages). */
export type NotGiantPageSize = Size4KiB | Size2MiB;

/** Any of the three sizes. */
export type AnyPageSize = Size4KiB | Size2MiB | Size1GiB;

/** All sizes, smallest first. */
export const PAGE_SIZES: readonly AnyPageSize[] = [Size4KiB, Size2MiB, Size1GiB];

/** Looks a size up by its crate name (`"4KiB"`, `"2MiB"`, `"1GiB"`), or undefined. */
export function pageSizeByName(name: string): AnyPageSize | undefined {
  return PAGE_SIZES.find((s) => s.name === name);
}
