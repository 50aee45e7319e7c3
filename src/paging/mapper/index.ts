/**
 * The `Mapper`, `Translate` and `CleanUp` traits (the crate's `mapper/mod.rs`) and the types their
 * calls return. The implementations are `MappedPageTable` and `OffsetPageTable`.
 */

import type { MappedPageTable } from './mapped-page-table.ts';

/** The crate's `Mapper<S>` for every size at once (`MapperAllSizes`). */
export type Mapper = Pick<
  MappedPageTable,
  | 'mapTo'
  | 'mapToWithTableFlags'
  | 'identityMap'
  | 'unmap'
  | 'updateFlags'
  | 'setFlagsP4Entry'
  | 'setFlagsP3Entry'
  | 'setFlagsP2Entry'
  | 'translatePage'
>;

/** The crate's `Translate`. */
export type Translate = Pick<MappedPageTable, 'translate' | 'translateAddr'>;

/** The crate's `CleanUp`. */
export type CleanUp = Pick<MappedPageTable, 'cleanUp' | 'cleanUpAddrRange'>;

export * from './errors.ts';
export * from './flush.ts';
export {
  type MappedFrame,
  MappedPageTable,
  type MapperOptions,
  type TranslateResult,
  type Unmapped,
} from './mapped-page-table.ts';
export { OffsetPageTable } from './offset-page-table.ts';
