/**
 * The IPI mailbox protocol as data: word offsets of the shared control block through which CPUs
 * ask each other to invalidate TLB entries (like comlink's `protocol.ts`: layout, no behaviour).
 *
 * One slot per (initiator, target) pair, so concurrent initiators never contend for a slot. An
 * initiator fills a free slot (SEQ === ACK), then publishes it by storing SEQ + 1 and adding
 * WAKE_POST to the target's WAKE word. The target copies the slot, invalidates, stores ACK = SEQ,
 * records its modeled time in the initiator's ACK_CYCLES, and adds WAKE_ACK to the initiator's
 * WAKE word. The ACK is a compare-exchange, because a request posted to a CPU that has just stopped
 * (LEFT) is acknowledged by its initiator instead: whichever side moves ACK counts the ack.
 *
 * ACK_CYCLES sits next to the initiator's WAKE, and the target writes it after its compare-exchange
 * (a miss on the slot's line), back to back with the WAKE add: the initiator, spinning on WAKE,
 * then finds the ack time in the line it just fetched. Measured against the ack times in a region
 * of their own: about 65 ns less per busy-target shootdown (written before the compare-exchange,
 * about 30 ns of that is lost: the spinner takes the line away during the miss).
 *
 * WAKE is the one word a CPU blocks on, and it carries three counters, so that each handoff writes
 * the other CPU's line once: a spinning initiator pulls its line back after every write a target
 * makes to it, and a second write (a separate ACKS counter) measured about 65 ns more per IPI.
 * Each counter wraps into the next, which only ever makes a change look bigger:
 *
 * - bits 0-7 count the acks this CPU received. Fewer than 64 are outstanding at any time (one per
 *   slot) and a lazy CPU waiting at its halt overshoots by fewer than 64, so the count's difference
 *   from the number expected, as a signed 8-bit number, is exact.
 * - bits 8-19 count the requests posted to it. Between two of its polls at most two arrive per slot
 *   (a slot takes no new request before the CPU acknowledged the last, which it does only while
 *   polling), fewer than 4096 in all, so the field changes, and the CPU scans its slots, exactly
 *   when something was posted; an ack alone costs it no scan.
 * - bits 20-31 count everything else that must wake it (a barrier opening).
 *
 * Whoever changes a WAKE word calls `Atomics.notify` on it only when that CPU's SLEEPING word is
 * set (its host sleeps in `Atomics.wait`): a notify nobody waits for still costs about 40 ns.
 */

/** The most pages one request lists; more become a full flush (Linux's 33-page ceiling). */
export const MAX_REQUEST_PAGES = 33;

/** Slot fields (Int32 words). */
export const SLOT_SEQ = 0; // request generation, written last by the initiator
export const SLOT_ACK = 1; // generation the target has completed
export const SLOT_KIND = 2; // `RequestKind`
export const SLOT_PCID = 3; // PCID whose entries to drop (0 without CR4.PCIDE)
export const SLOT_COUNT = 4; // pages listed (Page requests)
export const SLOT_FLAGS = 5; // `REQUEST_LAZY` | `REQUEST_BROADCAST`
export const SLOT_PAGES = 6; // MAX_REQUEST_PAGES pairs of (low 32 bits, high 16 bits) of page addresses
export const SLOT_WORDS = SLOT_PAGES + 2 * MAX_REQUEST_PAGES;

/** What a request asks for. */
export enum RequestKind {
  /** `invlpg` each listed page (GLOBAL entries included), for the request's PCID. */
  Pages = 1,
  /** Drop every non-global entry of the request's PCID (a remote CR3 reload). */
  Full = 2,
}

/** The target applies the request only at its next epoch boundary (protocol `lazy`). */
export const REQUEST_LAZY = 1;
/** Delivered by hardware broadcast (INVLPGB), not an interrupt: no IPI costs at the target. */
export const REQUEST_BROADCAST = 2;

/** Per-CPU words, after the slots (`IpiLayout.cpuWords` per CPU). */
export const CPU_WAKE = 0; // every event a blocked CPU may wait for changes it; it waits on this
export const CPU_LEFT = 1; // 1 once the CPU stopped: it services nothing more, so posts to it self-ack
export const CPU_SLEEPING = 2; // 1 while the CPU's host sleeps in Atomics.wait on WAKE
/** From here (even), one Float64 per target: its modeled time at its last ack of this CPU. */
export const CPU_ACK_CYCLES = 4;

/** Added to the initiator's WAKE by an acknowledgement (bits 0-7 count acks). */
export const WAKE_ACK = 1;
/** Added to the target's WAKE by a post (bits 8-19 count requests). */
export const WAKE_POST = 1 << 8;
/** The request count's bits of a WAKE word. */
export const WAKE_POSTS = 0xfff << 8;
/** Added to a CPU's WAKE by any other event that must wake it (a barrier opening). */
export const WAKE_OTHER = 1 << 20;

/** Word offsets of the control block for `cpus` CPUs and `spaces` address spaces. */
export interface IpiLayout {
  readonly cpus: number;
  readonly spaces: number;
  /** First word of slot (initiator, target). */
  slot(initiator: number, target: number): number;
  /** First word of a CPU's words (even: its ACK_CYCLES are Float64s). */
  cpu(cpu: number): number;
  /** Words per CPU: CPU_ACK_CYCLES + 2 per CPU (even). */
  readonly cpuWords: number;
  /** First of the two cpumask words (CPUs 0-31, 32-63) of address space `space`. */
  cpumask(space: number): number;
  /**
   * The machine's page-table generation: bumped after every successful Mapper call (and every
   * `alloc_frame`, which zeroes RAM), so a CPU's coherence probe knows when its cached entries
   * may no longer match the tables.
   */
  readonly tableGeneration: number;
  /** Total Int32 words. */
  readonly words: number;
}

/**
 * Words of padding around the cpumasks and the table generation: a 64-byte line's worth, so that
 * the generation, which every Mapper call bumps and every TLB hit reads, shares no line with the
 * WAKE words (a SharedArrayBuffer is only 16-byte aligned, so padding is what keeps neighbours
 * apart). Next to them it made every busy machine's Mapper calls pay a line transfer: the none
 * round of bench/shootdown-latency.ts's busy row measured 0.45 µs, 0.38 µs padded.
 */
const LINE_WORDS = 16;

/** The layout for a machine of `cpus` CPUs (1..64) and `spaces` address spaces. */
export function ipiLayout(cpus: number, spaces: number): IpiLayout {
  // Even (SLOT_WORDS is even), so that the CPUs' ACK_CYCLES are aligned Float64s.
  const slots = cpus * cpus * SLOT_WORDS;
  const cpuWords = CPU_ACK_CYCLES + 2 * cpus;
  const masks = slots + cpus * cpuWords + LINE_WORDS;
  const tableGeneration = masks + spaces * 2 + LINE_WORDS;
  return {
    cpus,
    spaces,
    slot: (initiator, target) => (initiator * cpus + target) * SLOT_WORDS,
    cpu: (cpu) => slots + cpu * cpuWords,
    cpuWords,
    cpumask: (space) => masks + space * 2,
    tableGeneration,
    words: tableGeneration + 1 + LINE_WORDS,
  };
}
