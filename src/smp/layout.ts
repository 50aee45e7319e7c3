/**
 * The machine's control block: one `SharedArrayBuffer` next to RAM, and every word of it declared
 * here (DESIGN decision 2: the data plane is shared memory). What the words mean is said where
 * they are used: the IPI protocol's values in `ipi.ts`, the control plane's in `control.ts`, the
 * trace record's fields in `trace/record.ts`. Only locations live here, as data (like comlink's
 * `protocol.ts`), so one file answers "who shares which cache line with whom".
 *
 * Regions, in order, each starting on a 64-byte line:
 *
 * | region        | words                                  | written by                         |
 * |---------------|----------------------------------------|------------------------------------|
 * | header        | `STEP_COUNTER` (one line)              | every tracing CPU, every step      |
 * | host words    | one line per CPU: doorbell, run state, | the host (doorbell), the CPU (its  |
 * |               | published wait, CR3 (`controlWord`)    | state, wait and CR3)               |
 * | IPI slots     | one per (initiator, target) pair       | the initiator                      |
 * | IPI CPU words | WAKE, STATUS, each initiator's SEQ and | initiators (SEQ, WAKE), the CPU    |
 * |               | ACK, ack times; whole lines per CPU    | (ACK), targets (WAKE, ack times)   |
 * | cpumasks      | two words per address space            | CPUs joining and leaving it        |
 * | generation    | the page-table generation              | every Mapper call                  |
 * | trace rings   | one per CPU (`trace/ring.ts`)          | that CPU; the host reads           |
 *
 * Lines are kept apart on purpose where a hot word would otherwise share one: the step counter
 * with any doorbell, one CPU's doorbell with another's, the table generation (read at every TLB
 * hit) with the WAKE words. A `SharedArrayBuffer` is only guaranteed 16-byte alignment, so
 * padding, not alignment, is what separates them; measured effects are cited where each region's
 * words are used (ipi.ts, control.ts).
 *
 * The host-word region comes first and has a fixed shape, so `controlWord` needs no layout; every
 * other offset depends on the CPU and address-space counts (`controlLayout`).
 */

import { TraceRing } from '../trace/ring.ts';

/** Int32 words in a 64-byte cache line. */
export const LINE_WORDS = 16;

// ---- header --------------------------------------------------------------------------------

/** Words before the host words: one line, so the step counter shares it with no doorbell. */
export const HEADER_WORDS = LINE_WORDS;
/** Header word: the next global step stamp (`Atomics.add` by every tracing CPU at every step). */
export const STEP_COUNTER = 0;

// ---- host words: one line per CPU -------------------------------------------------------------

/** Host words per CPU: one line each, so one CPU's doorbell never bounces another's. */
export const HOST_CPU_WORDS = LINE_WORDS;

/** Host word: bumped by the host whenever it wants the worker's attention. */
export const ATTENTION = 0;
/** Host word: 1 asks the CPU to stop at its next step boundary (or wait slice). */
export const STOP = 1;
/** Host word: 1 asks the CPU to park at its next step boundary until resumed. */
export const PAUSE = 2;
/** Host word: control calls the host has posted; the worker serves them all before stepping on. */
export const CALLS = 3;
/** Host word: the worker's `RunState` (control.ts). */
export const STATE = 4;
/** Host word, while blocked: index into `SharedMachine.waitBuffers` of the buffer it waits on, or -1. */
export const WAIT_BUFFER = 5;
/** Host word, while blocked: the Int32 index of the word it waits on. */
export const WAIT_INDEX = 6;
/** Host word, while blocked: the value it waits for the word to leave. */
export const WAIT_EXPECTED = 7;
/** Host word, while blocked: the program counter of the blocking instruction. */
export const WAIT_PC = 8;
/**
 * Host word: the index (in scenario order) of the address space the CPU's CR3 holds, stored at
 * every CR3 write (the CPU's own line: the host reads it rarely, the CPU writes it rarely), so a
 * host sees where each CPU runs without asking it.
 */
export const CR3_SPACE = 9;
/** Host word: the PCID of the CPU's CR3 (0 without CR4.PCIDE). */
export const CR3_PCID = 10;

/** The index of host word `word` of CPU `cpu` in the control block. */
export function controlWord(cpu: number, word: number): number {
  return HEADER_WORDS + cpu * HOST_CPU_WORDS + word;
}

// ---- IPI slots ------------------------------------------------------------------------------

/** The most pages one request lists; more become a full flush (Linux's 33-page ceiling). */
export const MAX_REQUEST_PAGES = 33;

/**
 * Slot fields (Int32 words from the slot's first): the request itself. Its SEQ and ACK are in the
 * target's IPI words (`ControlLayout.reqSeq`, `reqAck`), next to its WAKE, so that a post writes
 * one line of the target's, and a slot whose fields did not change is not written at all.
 */
export const SLOT_KIND = 0; // `RequestKind`
export const SLOT_PCID = 1; // PCID whose entries to drop (0 without CR4.PCIDE)
export const SLOT_COUNT = 2; // pages listed (Page requests)
export const SLOT_FLAGS = 3; // `REQUEST_LAZY` | `REQUEST_BROADCAST`
export const SLOT_PAGES = 4; // MAX_REQUEST_PAGES pairs of (low 32 bits, high 16 bits) of page addresses
/** Words per slot (even, so that the IPI CPU words after the slots stay Float64-aligned). */
export const SLOT_WORDS = SLOT_PAGES + 2 * MAX_REQUEST_PAGES;

// ---- IPI CPU words ----------------------------------------------------------------------------

/** IPI word: every event a blocked CPU may wait for changes it; it waits on this. */
export const CPU_WAKE = 0;
/**
 * IPI word: the CPU's status bits (ipi.ts `STATUS_SLEEPING`, `STATUS_LEFT`), which an initiator
 * reads once per post, right after its WAKE add: one word, so one load, on that line.
 */
export const CPU_STATUS = 1;
/**
 * From here, one word per initiator: the generation (SEQ) of its latest request to this CPU,
 * stored last by the initiator; then one word per initiator: the generation this CPU has completed
 * (ACK). Then, from the next even word (`ControlLayout.ackCycles`), one Float64 per target: its
 * modeled time at its last ack of this CPU's requests.
 */
export const CPU_REQ_SEQ = 2;

// ---- the whole block --------------------------------------------------------------------------

/** Word offsets (Int32, from the block's start) of a control block. */
export interface ControlLayout {
  readonly cpus: number;
  readonly spaces: number;
  /** Records per trace ring. */
  readonly traceCapacity: number;
  /** First word of slot (initiator, target). */
  slot(initiator: number, target: number): number;
  /** First word of a CPU's IPI words (even: its ack times are Float64s). */
  ipiCpu(cpu: number): number;
  /**
   * IPI words per CPU: WAKE, STATUS, a SEQ and an ACK per initiator, a Float64 per target, rounded
   * up to whole lines.
   */
  readonly ipiCpuWords: number;
  /** The SEQ word of `initiator`'s request to `target` (in the target's IPI words). */
  reqSeq(initiator: number, target: number): number;
  /** The ACK word of `initiator`'s request to `target` (in the target's IPI words). */
  reqAck(initiator: number, target: number): number;
  /** First word (even) of a CPU's ack times: one Float64 per target, in target order. */
  ackCycles(cpu: number): number;
  /** First of the two cpumask words (CPUs 0-31, 32-63) of address space `space`. */
  cpumask(space: number): number;
  /**
   * The machine's page-table generation: bumped after every successful Mapper call (and every
   * `alloc_frame`, which zeroes RAM), so a CPU's coherence probe knows when its cached entries
   * may no longer match the tables.
   */
  readonly tableGeneration: number;
  /** First word of CPU `cpu`'s trace ring (`TraceRing.over`). */
  traceRing(cpu: number): number;
  /** Words of one trace ring: its head (two words) and its records, rounded up to a line. */
  readonly traceRingWords: number;
  /** Total Int32 words (a whole number of lines). */
  readonly words: number;
}

/** Shapes a control block can have; `controlLayout` says why one is refused. */
export class ControlLayoutError extends RangeError {
  override readonly name = 'ControlLayoutError';
}

const lines = (words: number) => Math.ceil(words / LINE_WORDS) * LINE_WORDS;

/**
 * The layout of a control block for `cpus` CPUs (1..64), `spaces` address spaces and trace rings
 * of `traceCapacity` records each.
 *
 * @throws ControlLayoutError for a count out of range (64 CPUs: the cpumask is two words).
 */
export function controlLayout(cpus: number, spaces: number, traceCapacity: number): ControlLayout {
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > 64)
    throw new ControlLayoutError(`control block: ${cpus} CPUs is not an integer in 1..64`);
  if (!Number.isInteger(spaces) || spaces < 0)
    throw new ControlLayoutError(`control block: ${spaces} address spaces is not a count`);
  if (!Number.isInteger(traceCapacity) || traceCapacity < 1)
    throw new ControlLayoutError(`trace ring capacity ${traceCapacity} must be a positive integer`);
  const slots = HEADER_WORDS + cpus * HOST_CPU_WORDS;
  // Even (CPU_REQ_SEQ is): the ack times are Float64s.
  const ackCyclesAt = CPU_REQ_SEQ + 2 * cpus;
  // Whole lines: one CPU's WAKE line is written by its initiators (posts) and its targets (acks
  // to it), never by its neighbour's.
  const ipiCpuWords = lines(ackCyclesAt + 2 * cpus);
  const ipiCpus = lines(slots + cpus * cpus * SLOT_WORDS);
  // A line of padding on each side of the cpumasks and the generation: the generation, which
  // every Mapper call bumps and every TLB hit reads, shares no line with the WAKE words. Next to
  // them it made every busy machine's Mapper calls pay a line transfer: the none round of
  // bench/shootdown-latency.ts's busy row measured 0.45 µs, 0.38 µs padded.
  const masks = ipiCpus + cpus * ipiCpuWords + LINE_WORDS;
  const tableGeneration = masks + spaces * 2 + LINE_WORDS;
  const rings = lines(tableGeneration + 1 + LINE_WORDS);
  // Each ring on a line of its own: a CPU's record writes never touch another ring's line.
  const traceRingWords = lines(TraceRing.bytes(traceCapacity) / 4);
  return {
    cpus,
    spaces,
    traceCapacity,
    slot: (initiator, target) => slots + (initiator * cpus + target) * SLOT_WORDS,
    ipiCpu: (cpu) => ipiCpus + cpu * ipiCpuWords,
    ipiCpuWords,
    reqSeq: (initiator, target) => ipiCpus + target * ipiCpuWords + CPU_REQ_SEQ + initiator,
    reqAck: (initiator, target) => ipiCpus + target * ipiCpuWords + CPU_REQ_SEQ + cpus + initiator,
    ackCycles: (cpu) => ipiCpus + cpu * ipiCpuWords + ackCyclesAt,
    cpumask: (space) => masks + space * 2,
    tableGeneration,
    traceRing: (cpu) => rings + cpu * traceRingWords,
    traceRingWords,
    words: rings + cpus * traceRingWords,
  };
}

/** A control block as plain data for another thread: its buffer and the counts of its layout. */
export interface SharedControlBlock {
  readonly buffer: SharedArrayBuffer;
  readonly cpus: number;
  readonly spaces: number;
  readonly traceCapacity: number;
}

/** A fresh, all-zero control block of `layout`'s size. */
export function createControlBlock(layout: ControlLayout): SharedControlBlock {
  return {
    buffer: new SharedArrayBuffer(layout.words * 4),
    cpus: layout.cpus,
    spaces: layout.spaces,
    traceCapacity: layout.traceCapacity,
  };
}

/** CPU `cpu`'s trace ring over the control block `block` of layout `layout`. */
export function traceRingOf(
  block: SharedControlBlock,
  layout: ControlLayout,
  cpu: number,
): TraceRing {
  return TraceRing.over(block.buffer, layout.traceRing(cpu) * 4, layout.traceCapacity);
}

/** The layout of a shared control block (recomputed on each thread: it is a pure function). */
export function layoutOf(block: SharedControlBlock): ControlLayout {
  const layout = controlLayout(block.cpus, block.spaces, block.traceCapacity);
  if (block.buffer.byteLength !== layout.words * 4)
    throw new ControlLayoutError(
      `control block: ${block.buffer.byteLength} bytes, but ${block.cpus} CPUs, ${block.spaces} address spaces and trace rings of ${block.traceCapacity} records take ${layout.words * 4}`,
    );
  return layout;
}
