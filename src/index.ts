/**
 * smpsim's public API: re-exports only (like the crate's `paging/mod.rs`): the paging port, and the
 * machines that run scenarios over it (`Machine`, the deterministic and worker-thread hosts).
 */

export {
  hex,
  NotAnInteger,
  PhysAddr,
  PhysAddrNotValid,
  parseHex,
  VirtAddr,
  VirtAddrNotValid,
} from './addr.ts';
export {
  MemoryError,
  type MemoryErrorKind,
  PhysicalMemory,
  type Width,
} from './memory/physical-memory.ts';
export { BitmapFrameAllocator } from './paging/bitmap-frame-allocator.ts';
export { FlagsNotValid, PageTableFlags } from './paging/flags.ts';
export { PhysFrame, type PhysFrameRange, type PhysFrameRangeInclusive } from './paging/frame.ts';
export {
  BumpFrameAllocator,
  type FrameAllocator,
  FrameAllocatorError,
  type FrameDeallocator,
} from './paging/frame-allocator.ts';
export * from './paging/mapper/index.ts';
export {
  AddressNotAligned,
  as4KiBPageRange,
  Page,
  type PageRange,
  type PageRangeInclusive,
} from './paging/page.ts';
export {
  type AnyPageSize,
  type NotGiantPageSize,
  PAGE_SIZES,
  type PageSize,
  Size1GiB,
  Size2MiB,
  Size4KiB,
} from './paging/page-size.ts';
export { type FrameError, PageTable, PageTableEntry } from './paging/page-table.ts';
export { indexAt, PageOffset, PageTableIndex, PageTableLevel } from './paging/page-table-index.ts';
export { CratePanic } from './paging/panic.ts';
export { BlockRange } from './paging/range.ts';
export { traceWalk, type WalkStep } from './paging/walk-trace.ts';
export { err, ok, type Result } from './result.ts';
export { type ScenarioBuilder, scenario } from './scenarios/builder.ts';
export { loadScenario } from './scenarios/load.ts';
export type { CpuSnapshot, StepReport } from './smp/control.ts';
export { runDeterministic } from './smp/hosts/deterministic.ts';
export {
  runOnWorkers,
  WorkerHost,
  WorkerHostError,
  type WorkerHostOptions,
  type WorkerRun,
} from './smp/hosts/worker.ts';
export { Machine, type MachineOptions } from './smp/machine.ts';
