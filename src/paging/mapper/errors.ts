/**
 * The error enums of the crate's `mapper/mod.rs`, as discriminated unions. Variant names are the
 * crate's, exactly: the replay format prints them.
 */

import type { PhysAddr } from '../../addr.ts';
import type { PhysFrame } from '../frame.ts';
import type { PageSize } from '../page-size.ts';

/** An entry on the way down maps a huge page, so the table the call needs does not exist. */
export type ParentEntryHugePage = { readonly kind: 'ParentEntryHugePage' };
/** The page (or a table on the way to it) is not mapped. */
export type PageNotMapped = { readonly kind: 'PageNotMapped' };
/** The allocator had no frame for a missing page table. */
export type FrameAllocationFailed = { readonly kind: 'FrameAllocationFailed' };
/** A huge leaf's address is not aligned to its size (the entry points to a table). */
export type InvalidFrameAddress = { readonly kind: 'InvalidFrameAddress'; readonly addr: PhysAddr };
/** The leaf entry is already in use; carries the frame *passed to the call*, as the crate does. */
export type PageAlreadyMapped<S extends PageSize> = {
  readonly kind: 'PageAlreadyMapped';
  readonly frame: PhysFrame<S>;
};

/** Errors of `mapTo`, `mapToWithTableFlags` and `identityMap` (crate `MapToError<S>`). */
export type MapToError<S extends PageSize> =
  | FrameAllocationFailed
  | ParentEntryHugePage
  | PageAlreadyMapped<S>;
/** Errors of `unmap` (crate `UnmapError`). */
export type UnmapError = ParentEntryHugePage | PageNotMapped | InvalidFrameAddress;
/** Errors of `updateFlags` and `setFlagsP{4,3,2}Entry` (crate `FlagUpdateError`). */
export type FlagUpdateError = PageNotMapped | ParentEntryHugePage;
/** Errors of `translatePage` (crate `TranslateError`). */
export type TranslateError = PageNotMapped | ParentEntryHugePage | InvalidFrameAddress;

/** Shared instances of the variants without payload (no allocation on error paths). */
export const PARENT_ENTRY_HUGE_PAGE: ParentEntryHugePage = Object.freeze({
  kind: 'ParentEntryHugePage',
});
export const PAGE_NOT_MAPPED: PageNotMapped = Object.freeze({ kind: 'PageNotMapped' });
export const FRAME_ALLOCATION_FAILED: FrameAllocationFailed = Object.freeze({
  kind: 'FrameAllocationFailed',
});

/**
 * A walk reached an entry whose table frame lies outside simulated RAM. The crate would read
 * whatever memory is there; the simulator refuses instead of reading outside the buffer.
 */
export class TableFrameOutsideRam extends Error {
  override readonly name = 'TableFrameOutsideRam';
  constructor(
    /** Physical address of the entry that points outside RAM. */
    readonly entryAddress: number,
    /** The table address it points to. */
    readonly tableAddress: number,
    ramBytes: number,
  ) {
    super(
      `page-table entry at 0x${entryAddress.toString(16)} points to table frame 0x${tableAddress.toString(16)}, outside RAM [0x0, 0x${ramBytes.toString(16)})`,
    );
  }
}
