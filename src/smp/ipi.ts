/**
 * The IPI mailbox protocol as data: what the words through which CPUs ask each other to invalidate
 * TLB entries mean (like comlink's `protocol.ts`: values, no behaviour). Where they are (the slots,
 * the per-CPU WAKE, STATUS, SEQ, ACK and ack-time words) is declared with the rest of the control
 * block in `layout.ts`.
 *
 * One slot per (initiator, target) pair, so concurrent initiators never contend for a slot. The
 * slot holds the request's fields; its SEQ and ACK words sit in the target's WAKE line. An
 * initiator fills a free slot (SEQ === ACK), writing only the fields that changed, then publishes
 * it by storing SEQ + 1 and adding WAKE_POST to the target's WAKE word: both in that one line,
 * which the target then reads with its WAKE in one miss. A slot like the last one (a page flushed
 * again) stays shared and costs the target no miss at all. So each direction of an IPI round trip
 * moves one line, as the raw spin round trip does. bench/mailbox-patterns.ts, six runs: 362-398 ns
 * against the spin's 330-345 ns; with SEQ and ACK in the slot's line, 384-540 ns.
 *
 * The target copies the slot, records its modeled time (the invalidation's cost included) in the
 * initiator's ACK_CYCLES, adds WAKE_ACK to the initiator's WAKE word, stores ACK = SEQ, and only
 * then evicts the entries: all within one step, so no access of it sees the TLB in between, while
 * the initiator's wait excludes the TLB work. While the target runs, it alone acknowledges, so ACK
 * is a plain store, made after the add (a lazy request's before it: its initiator reads ACK once
 * woken). A request posted to a CPU that has stopped (its STATUS_LEFT bit) is acknowledged by its
 * initiator instead; then both sides move ACK by compare-exchange, and whichever moves it counts
 * the ack.
 *
 * ACK_CYCLES sits next to the initiator's WAKE, and the target writes it back to back with the
 * WAKE add: the initiator, spinning on WAKE, then finds the ack time in the line it just fetched.
 * Measured against the ack times in a region of their own: about 65 ns less per busy-target
 * shootdown.
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
 * Whoever changes a WAKE word calls `Atomics.notify` on it only when that CPU's STATUS_SLEEPING bit is
 * set (its host sleeps in `Atomics.wait`): a notify nobody waits for still costs about 40 ns.
 */

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

/** Added to the initiator's WAKE by an acknowledgement (bits 0-7 count acks). */
export const WAKE_ACK = 1;
/** Added to the target's WAKE by a post (bits 8-19 count requests). */
export const WAKE_POST = 1 << 8;
/** The request count's bits of a WAKE word. */
export const WAKE_POSTS = 0xfff << 8;
/** Added to a CPU's WAKE by any other event that must wake it (a barrier opening). */
export const WAKE_OTHER = 1 << 20;

/**
 * STATUS bit: the CPU's host sleeps in `Atomics.wait` on WAKE (it sets the bit before the wait's
 * comparison and clears it once awake), so whoever changes WAKE must notify it.
 */
export const STATUS_SLEEPING = 1;
/** STATUS bit: the CPU has stopped; it services nothing more, so a post to it is acknowledged by its initiator. */
export const STATUS_LEFT = 2;
