import { describe, expectTypeOf, it } from 'vitest';
import { PhysAddr, VirtAddr } from '../../src/addr.ts';
import { PageTableFlags } from '../../src/paging/flags.ts';
import { PhysFrame } from '../../src/paging/frame.ts';
import { Page } from '../../src/paging/page.ts';
import { Size1GiB, Size2MiB, Size4KiB } from '../../src/paging/page-size.ts';
import { PageTableEntry } from '../../src/paging/page-table.ts';
import { type PageOffset, PageTableIndex } from '../../src/paging/page-table-index.ts';
import type { Result } from '../../src/result.ts';

declare const page4k: Page<Size4KiB>;
declare const page2m: Page<Size2MiB>;
declare const page1g: Page<Size1GiB>;
declare const frame4k: PhysFrame<Size4KiB>;
declare const frame2m: PhysFrame<Size2MiB>;
declare const virt: VirtAddr;
declare const phys: PhysAddr;
declare const flags: PageTableFlags;
declare const index: PageTableIndex;

describe('page-size specific index accessors', () => {
  it('Page<Size4KiB> has all four indices', () => {
    expectTypeOf(page4k.p4Index()).toEqualTypeOf<PageTableIndex>();
    expectTypeOf(page4k.p3Index()).toEqualTypeOf<PageTableIndex>();
    expectTypeOf(page4k.p2Index()).toEqualTypeOf<PageTableIndex>();
    expectTypeOf(page4k.p1Index()).toEqualTypeOf<PageTableIndex>();
  });

  it('Page<Size2MiB> has p2Index but no p1Index', () => {
    expectTypeOf(page2m.p2Index()).toEqualTypeOf<PageTableIndex>();
    // @ts-expect-error p1Index exists only on 4 KiB pages
    page2m.p1Index();
  });

  it('Page<Size1GiB> has neither p2Index nor p1Index', () => {
    expectTypeOf(page1g.p3Index()).toEqualTypeOf<PageTableIndex>();
    // @ts-expect-error p2Index exists only on 4 KiB and 2 MiB pages
    page1g.p2Index();
    // @ts-expect-error p1Index exists only on 4 KiB pages
    page1g.p1Index();
  });
});

describe('page and frame sizes do not mix', () => {
  it('a Page<Size4KiB> is not a Page<Size2MiB> (nor the reverse)', () => {
    expectTypeOf(page4k).not.toExtend<Page<Size2MiB>>();
    expectTypeOf(page2m).not.toExtend<Page<Size4KiB>>();
    expectTypeOf(page1g).not.toExtend<Page<Size2MiB>>();
    // @ts-expect-error a 4 KiB page where a 2 MiB page is expected
    const p: Page<Size2MiB> = page4k;
    void p;
    // @ts-expect-error a 2 MiB page where a 4 KiB page is expected
    const q: Page<Size4KiB> = page2m;
    void q;
  });

  it('ranges and frames keep their size', () => {
    // @ts-expect-error the end page must have the start page's size
    Page.range(page4k, page2m);
    // @ts-expect-error a 2 MiB frame is not a 4 KiB frame
    const f: PhysFrame<Size4KiB> = frame2m;
    void f;
    expectTypeOf(frame4k).not.toExtend<PhysFrame<Size2MiB>>();
  });

  it('constructors return the size they were given', () => {
    expectTypeOf(Page.fromStartAddress(virt, Size2MiB)).toExtend<Result<Page<Size2MiB>, unknown>>();
    expectTypeOf(Page.containingAddress(virt, Size1GiB)).toEqualTypeOf<Page<Size1GiB>>();
    expectTypeOf(Page.fromPageTableIndices(index, index, index, index)).toEqualTypeOf<
      Page<Size4KiB>
    >();
    expectTypeOf(Page.fromPageTableIndices2MiB(index, index, index)).toEqualTypeOf<
      Page<Size2MiB>
    >();
    expectTypeOf(Page.fromPageTableIndices1GiB(index, index)).toEqualTypeOf<Page<Size1GiB>>();
    expectTypeOf(PhysFrame.containingAddress(phys, Size2MiB)).toEqualTypeOf<PhysFrame<Size2MiB>>();
    expectTypeOf(new PageTableEntry(0, 0).frame()).toExtend<Result<PhysFrame<Size4KiB>, unknown>>();
  });

  it('Page is not a PhysFrame', () => {
    expectTypeOf(page4k).not.toExtend<PhysFrame<Size4KiB>>();
    expectTypeOf(frame4k).not.toExtend<Page<Size4KiB>>();
  });
});

describe('branded numbers', () => {
  it('PhysAddr and VirtAddr are not interchangeable', () => {
    expectTypeOf(phys).not.toExtend<VirtAddr>();
    expectTypeOf(virt).not.toExtend<PhysAddr>();
    // @ts-expect-error a physical address is not a virtual address
    const v: VirtAddr = phys;
    void v;
    // @ts-expect-error a virtual address is not a physical address
    const p: PhysAddr = virt;
    void p;
    // @ts-expect-error Page.containingAddress takes a VirtAddr
    Page.containingAddress(phys, Size4KiB);
    // @ts-expect-error PhysFrame.containingAddress takes a PhysAddr
    PhysFrame.containingAddress(virt, Size4KiB);
  });

  it('a plain number is not a VirtAddr, PhysAddr, PageTableFlags or PageTableIndex', () => {
    expectTypeOf<number>().not.toExtend<VirtAddr>();
    expectTypeOf<number>().not.toExtend<PhysAddr>();
    expectTypeOf<number>().not.toExtend<PageTableFlags>();
    expectTypeOf<number>().not.toExtend<PageTableIndex>();
    // @ts-expect-error a number literal is not a VirtAddr
    const v: VirtAddr = 0x1000;
    void v;
    // @ts-expect-error a number literal is not a PageTableFlags
    const f: PageTableFlags = 3;
    void f;
    // @ts-expect-error the flags argument must be PageTableFlags, not a number
    PageTableEntry.withAddr(phys, 1);
    // @ts-expect-error indices must be PageTableIndex values, not numbers
    Page.fromPageTableIndices(1, 2, 3, 4);
  });

  it('the brands are still numbers, and flags/indices/offsets are distinct', () => {
    expectTypeOf(virt).toExtend<number>();
    expectTypeOf(phys).toExtend<number>();
    expectTypeOf(flags).toExtend<number>();
    expectTypeOf(flags).not.toExtend<VirtAddr>();
    expectTypeOf<PageTableIndex>().not.toExtend<PageOffset>();
    expectTypeOf(VirtAddr.new(1)).toEqualTypeOf<VirtAddr>();
    expectTypeOf(PhysAddr.new(1)).toEqualTypeOf<PhysAddr>();
    expectTypeOf(PageTableFlags.of(PageTableFlags.PRESENT)).toEqualTypeOf<PageTableFlags>();
    expectTypeOf(PageTableIndex.new(1)).toEqualTypeOf<PageTableIndex>();
  });
});
