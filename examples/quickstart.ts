// Map a page in simulated RAM with the x86_64 crate's Mapper API, translate, unmap.
import {
  BitmapFrameAllocator,
  OffsetPageTable,
  Page,
  PageTableFlags,
  PhysAddr,
  PhysFrame,
  PhysicalMemory,
  Size4KiB,
  VirtAddr,
} from '../src/index.ts';

const ram = new PhysicalMemory(16 * 1024 * 1024); // one SharedArrayBuffer
const frames = BitmapFrameAllocator.create({ start: 0x1000, end: 0x100000 });
const mapper = new OffsetPageTable(ram, PhysFrame.containingAddress(PhysAddr.new(0), Size4KiB));

const page = Page.containingAddress(VirtAddr.new(0xffff_8000_0040_0000n), Size4KiB);
const frame = PhysFrame.containingAddress(PhysAddr.new(0x20_0000), Size4KiB);
const flags = PageTableFlags.of(PageTableFlags.PRESENT, PageTableFlags.WRITABLE);

const mapped = mapper.mapTo(page, frame, flags, frames);
if (!mapped.ok) throw new Error(mapped.error.kind);
mapped.value.flush(); // the MapperFlush obligation: invlpg (a no-op until CPUs are attached)

const phys = mapper.translateAddr(VirtAddr.new(0xffff_8000_0040_0abcn));
console.log('translate_addr ->', phys === undefined ? 'None' : PhysAddr.hex(phys));

const again = mapper.mapTo(page, frame, flags, frames);
console.log('map_to again   ->', again.ok ? 'ok' : again.error.kind);

const unmapped = mapper.unmap(page);
if (!unmapped.ok) throw new Error(unmapped.error.kind);
unmapped.value.flush.flush();
console.log('unmap          ->', String(unmapped.value.frame));
console.log('pending flushes ->', mapper.flushLedger.pendingCount);
