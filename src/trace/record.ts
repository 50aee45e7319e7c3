/**
 * The trace record format: what one CPU appends to its ring for each thing it does (DESIGN
 * decision 6). Fixed-size records of 8 doubles; the kinds and field meanings are data, here, so the
 * writer (cpu/, smp/) and every reader (checker, timeline, benchmarks) agree on one layout.
 */

/** Doubles per record: [seq, kind, cpu, step, a, b, c, d]. */
export const RECORD_WORDS = 8;
export const F_SEQ = 0;
export const F_KIND = 1;
export const F_CPU = 2;
export const F_STEP = 3;
export const F_A = 4;
export const F_B = 5;
export const F_C = 6;
export const F_D = 7;

/** Record kinds; the comments give the meaning of fields a..d. */
export enum TraceKind {
  /** An instruction started: a = program counter, b = index into `INSTRUCTION_OPS` (scenarios/load.ts). */
  Instruction = 1,
  /** A translation hit the TLB: a = linear address, b = slot, c = frame, d = access (0 r, 1 w, 2 x). */
  TlbHit = 2,
  /** A translation missed the TLB: a = linear address, d = access. */
  TlbMiss = 3,
  /** An entry was cached: a = page start, b = frame, c = attribute bits (tlb.ts), d = pcid. */
  TlbFill = 4,
  /** An entry left the TLB: a = page start, b = frame, c = attribute bits, d = `EvictReason`. */
  TlbEvict = 5,
  /** A page walk finished: a = linear address, b = entries read, c = A/D bits set, d = frame or -1. */
  Walk = 6,
  /** The walker set ACCESSED/DIRTY: a = entry physical address, b = bits set (packed flags), c = level. */
  AdSet = 7,
  /** A page fault: a = linear address (CR2), b = error code. */
  Fault = 8,
  /** A memory access completed: a = linear address, b = physical address, c = width, d = access. */
  Access = 9,
  /** A Mapper call: a = `MAPPER_OPS` index, b = page start, c = frame or -1, d = result (0 ok, else error index). */
  Mapper = 10,
  /** A flush obligation settled or was dropped: a = page start or -1 for all, b = `FlushOutcome`. */
  Flush = 11,
  /** A TLB-maintenance instruction: a = `MaintenanceOp`, b = address or -1, c = pcid or -1, d = entries evicted. */
  Maintenance = 12,
  /** CR3 was written: a = new level-4 table address, b = pcid, c = 1 if no-flush. */
  Cr3Write = 13,
  /** A frame went back to the allocator: a = frame, b = 0 at once, 1 held (lazy), 2 released after being held. */
  FrameFree = 14,
  /** A frame came from the allocator: a = frame. */
  FrameAlloc = 15,
  /** The CPU stopped: a = 0 halted, 1 faulted, 2 assertion failed. */
  Halt = 16,
  /** The CPU blocked at a barrier that is not open yet: a = barrier instance. */
  BarrierWait = 17,
  /** The CPU went through a barrier: a = barrier instance, b = 1 if it had waited. */
  BarrierPass = 18,
  /** An invalidation request was posted: a = target CPU, b = `RequestKind`, c = pages, d = flags (1 lazy, 2 broadcast). */
  IpiSend = 19,
  /** A request was applied and acknowledged: a = initiator, b = `RequestKind`, c = pages, d = 0 IPI, 1 broadcast, 2 lazy. */
  IpiReceive = 20,
  /** Every target acknowledged this CPU's round: a = targets, b = modeled cycles at completion. */
  ShootdownDone = 21,
  /**
   * A TLB hit used an entry the page tables no longer agree with (the coherence probe, cpu.ts):
   * a = linear address, b = what the tables give for it now (physical address, or -1 if they do
   * not map it), c = `StaleBits`, d = access (0 r, 1 w, 2 x). Follows that hit's TlbHit record.
   */
  Stale = 22,
  /**
   * The protocol's coherence point (scenario spec) for this CPU's flushes: a = how many of its
   * `flush()` calls, counted from the start, no CPU may use the old translations of any more.
   */
  Coherent = 23,
}

/** What a `Stale` record found (bits of field c). */
export const StaleBits = {
  /** The tables map the address to another frame, or not at all. */
  Translation: 1,
  /** Same frame, but the access used a right the tables no longer grant. */
  Permission: 2,
  /** A store through an entry cached DIRTY while the leaf, same frame, has DIRTY clear. */
  LostDirty: 4,
} as const;

/** Why an entry left the TLB. */
export enum EvictReason {
  Capacity = 0,
  Invlpg = 1,
  Cr3 = 2,
  PgeToggle = 3,
  Invpcid = 4,
  Shootdown = 5,
}

/** How a flush obligation ended. */
export enum FlushOutcome {
  Flushed = 0,
  Ignored = 1,
  /** Replaced by the next Mapper call, or still pending at halt. */
  Dropped = 2,
}

/** TLB-maintenance operations recorded with `TraceKind.Maintenance`. */
export enum MaintenanceOp {
  Invlpg = 0,
  FlushAll = 1,
  TogglePge = 2,
  Invpcid = 3,
}

/** Names printed for `EvictReason` values. */
export const EVICT_REASON_NAMES = [
  'capacity',
  'invlpg',
  'cr3',
  'pge-toggle',
  'invpcid',
  'shootdown',
] as const;
/** Names printed for `FlushOutcome` values. */
export const FLUSH_OUTCOME_NAMES = ['flushed', 'ignored', 'dropped'] as const;
/** Names printed for `MaintenanceOp` values. */
export const MAINTENANCE_NAMES = ['invlpg', 'flush_all', 'toggle_pge', 'invpcid'] as const;
/** Access kinds in record fields. */
export const ACCESS_NAMES = ['read', 'write', 'fetch'] as const;
