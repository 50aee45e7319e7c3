/**
 * Compile-time checks of the mapper API (src/paging/mapper): page and frame sizes do not mix,
 * results keep the size of the page they were called with, and the error unions have exactly the
 * crate's variants (shared/spec/x86_64-semantics.md §5).
 */

import { describe, expectTypeOf, it } from 'vitest';
import type { PhysAddr, VirtAddr } from '../../src/addr.ts';
import type { PageTableFlags } from '../../src/paging/flags.ts';
import type { PhysFrame } from '../../src/paging/frame.ts';
import type { FrameAllocator, FrameDeallocator } from '../../src/paging/frame-allocator.ts';
import type {
  CleanUp,
  FlagUpdateError,
  MappedPageTable,
  Mapper,
  MapperFlush,
  MapperFlushAll,
  MapToError,
  OffsetPageTable,
  Translate,
  TranslateError,
  TranslateResult,
  UnmapError,
  Unmapped,
} from '../../src/paging/mapper/index.ts';
import type { Page } from '../../src/paging/page.ts';
import type { Size1GiB, Size2MiB, Size4KiB } from '../../src/paging/page-size.ts';
import type { Result } from '../../src/result.ts';

declare const mapper: MappedPageTable;
declare const offsetMapper: OffsetPageTable;
declare const allocator: FrameAllocator;
declare const deallocator: FrameDeallocator;
declare const flags: PageTableFlags;
declare const page4k: Page<Size4KiB>;
declare const page2m: Page<Size2MiB>;
declare const page1g: Page<Size1GiB>;
declare const frame4k: PhysFrame<Size4KiB>;
declare const frame2m: PhysFrame<Size2MiB>;
declare const frame1g: PhysFrame<Size1GiB>;
declare const virt: VirtAddr;
declare const phys: PhysAddr;

describe('mapTo / mapToWithTableFlags / identityMap: the frame must have the page size', () => {
  it('rejects a PhysFrame<Size2MiB> with a Page<Size4KiB> (and other mismatches)', () => {
    // @ts-expect-error a 2 MiB frame cannot back a 4 KiB page
    mapper.mapTo(page4k, frame2m, flags, allocator);
    // @ts-expect-error a 4 KiB frame cannot back a 2 MiB page
    mapper.mapTo(page2m, frame4k, flags, allocator);
    // @ts-expect-error a 2 MiB frame cannot back a 1 GiB page
    mapper.mapTo(page1g, frame2m, flags, allocator);
    // @ts-expect-error the same rule for mapToWithTableFlags
    mapper.mapToWithTableFlags(page4k, frame2m, flags, flags, allocator);
    // @ts-expect-error and through OffsetPageTable
    offsetMapper.mapTo(page4k, frame1g, flags, allocator);
  });

  it('accepts matching sizes and returns MapperFlush of that size', () => {
    expectTypeOf(mapper.mapTo(page4k, frame4k, flags, allocator)).toEqualTypeOf<
      Result<MapperFlush<Size4KiB>, MapToError<Size4KiB>>
    >();
    expectTypeOf(mapper.mapTo(page2m, frame2m, flags, allocator)).toEqualTypeOf<
      Result<MapperFlush<Size2MiB>, MapToError<Size2MiB>>
    >();
    expectTypeOf(
      mapper.mapToWithTableFlags(page1g, frame1g, flags, flags, allocator),
    ).toEqualTypeOf<Result<MapperFlush<Size1GiB>, MapToError<Size1GiB>>>();
    expectTypeOf(mapper.identityMap(frame2m, flags, allocator)).toEqualTypeOf<
      Result<MapperFlush<Size2MiB>, MapToError<Size2MiB>>
    >();
  });

  it('PageAlreadyMapped carries a frame of the page size', () => {
    const r = mapper.mapTo(page2m, frame2m, flags, allocator);
    if (!r.ok && r.error.kind === 'PageAlreadyMapped') {
      expectTypeOf(r.error.frame).toEqualTypeOf<PhysFrame<Size2MiB>>();
    }
  });

  it('flags must be PageTableFlags and addresses must be typed', () => {
    // @ts-expect-error a plain number is not PageTableFlags
    mapper.mapTo(page4k, frame4k, 3, allocator);
    // @ts-expect-error translate takes a VirtAddr, not a PhysAddr
    mapper.translate(phys);
    // @ts-expect-error a frame is not a page
    mapper.unmap(frame4k);
  });
});

describe('results keep the page size', () => {
  it('unmap on a Page<Size2MiB> returns a PhysFrame<Size2MiB>', () => {
    const r = mapper.unmap(page2m);
    expectTypeOf(r).toEqualTypeOf<Result<Unmapped<Size2MiB>, UnmapError>>();
    if (r.ok) {
      expectTypeOf(r.value.frame).toEqualTypeOf<PhysFrame<Size2MiB>>();
      expectTypeOf(r.value.flush).toEqualTypeOf<MapperFlush<Size2MiB>>();
      // @ts-expect-error the unmapped 2 MiB frame is not a 4 KiB frame
      const f: PhysFrame<Size4KiB> = r.value.frame;
      void f;
    }
  });

  it('translatePage and updateFlags are sized too; setFlagsPN return MapperFlushAll', () => {
    expectTypeOf(mapper.translatePage(page1g)).toEqualTypeOf<
      Result<PhysFrame<Size1GiB>, TranslateError>
    >();
    expectTypeOf(mapper.updateFlags(page4k, flags)).toEqualTypeOf<
      Result<MapperFlush<Size4KiB>, FlagUpdateError>
    >();
    expectTypeOf(mapper.setFlagsP4Entry(page2m, flags)).toEqualTypeOf<
      Result<MapperFlushAll, FlagUpdateError>
    >();
    expectTypeOf(mapper.setFlagsP3Entry(page1g, flags)).toEqualTypeOf<
      Result<MapperFlushAll, FlagUpdateError>
    >();
    expectTypeOf(mapper.setFlagsP2Entry(page4k, flags)).toEqualTypeOf<
      Result<MapperFlushAll, FlagUpdateError>
    >();
  });

  it('MapperFlush.page() returns the page type it was created for', () => {
    const r = mapper.mapTo(page1g, frame1g, flags, allocator);
    if (r.ok) {
      expectTypeOf(r.value.page()).toEqualTypeOf<Page<Size1GiB>>();
      // @ts-expect-error a 1 GiB page is not a 4 KiB page
      const p: Page<Size4KiB> = r.value.page();
      void p;
    }
  });

  it('translate returns TranslateResult; translateAddr a PhysAddr or undefined', () => {
    expectTypeOf(mapper.translate(virt)).toEqualTypeOf<TranslateResult>();
    expectTypeOf(mapper.translateAddr(virt)).toEqualTypeOf<PhysAddr | undefined>();
    expectTypeOf<TranslateResult['kind']>().toEqualTypeOf<
      'Mapped' | 'NotMapped' | 'InvalidFrameAddress'
    >();
  });
});

describe('error unions have exactly the crate variants', () => {
  it("MapToError<Size4KiB>['kind'] is exactly the three variant names", () => {
    expectTypeOf<MapToError<Size4KiB>['kind']>().toEqualTypeOf<
      'FrameAllocationFailed' | 'ParentEntryHugePage' | 'PageAlreadyMapped'
    >();
    // @ts-expect-error PageNotMapped is not a MapToError
    const e: MapToError<Size4KiB> = { kind: 'PageNotMapped' };
    void e;
  });

  it('UnmapError, FlagUpdateError and TranslateError', () => {
    expectTypeOf<UnmapError['kind']>().toEqualTypeOf<
      'ParentEntryHugePage' | 'PageNotMapped' | 'InvalidFrameAddress'
    >();
    expectTypeOf<FlagUpdateError['kind']>().toEqualTypeOf<
      'PageNotMapped' | 'ParentEntryHugePage'
    >();
    expectTypeOf<TranslateError['kind']>().toEqualTypeOf<
      'PageNotMapped' | 'ParentEntryHugePage' | 'InvalidFrameAddress'
    >();
    expectTypeOf<
      Extract<UnmapError, { kind: 'InvalidFrameAddress' }>['addr']
    >().toEqualTypeOf<PhysAddr>();
  });
});

describe('trait views', () => {
  it('MappedPageTable and OffsetPageTable implement Mapper, Translate and CleanUp', () => {
    expectTypeOf(mapper).toExtend<Mapper & Translate & CleanUp>();
    expectTypeOf(offsetMapper).toExtend<Mapper & Translate & CleanUp>();
    expectTypeOf(mapper.cleanUp(deallocator)).toEqualTypeOf<void>();
    // @ts-expect-error cleanUp needs a deallocator, not an allocator
    mapper.cleanUp(allocator);
  });
});
