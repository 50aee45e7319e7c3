/**
 * The modeled-cycle cost table: what each CPU action charges to its modeled clock (DESIGN
 * decision 7). Wall-clock time measures the simulator; modeled cycles let runs be compared with
 * hardware figures. Every report says which clock it shows.
 *
 * The defaults are order-of-magnitude values for a recent x86 core, not measurements of one. The
 * benchmark layer calibrates the shootdown-related entries against published figures (Amit 2019:
 * about 661 ns for a 1-page shootdown with no remote CPU); users override any entry.
 */

/** Cycles charged per action. */
export interface CostModel {
  /** Any instruction's base cost. */
  readonly instruction: number;
  /** A translation that hits the TLB (added to `instruction`). */
  readonly tlbHit: number;
  /** Each paging-structure entry a walk reads (a cached memory reference). */
  readonly walkLevel: number;
  /** Setting ACCESSED or DIRTY with a locked compare-exchange. */
  readonly adUpdate: number;
  /** `invlpg`, one page. */
  readonly invlpg: number;
  /** A CR3 write (flushes non-global entries unless PCID no-flush). */
  readonly cr3Write: number;
  /** A CR4.PGE toggle (flushes everything). */
  readonly pgeToggle: number;
  /** `invpcid`, any type. */
  readonly invpcid: number;
  /** #PF delivery: exception entry into the handler. */
  readonly faultEntry: number;
  /** One Mapper call (page-table edit in software), excluding its TLB flush. */
  readonly mapperCall: number;
  /** Sending one IPI (writing the request and the APIC ICR). */
  readonly ipiSend: number;
  /** At the target: interrupt entry, the handler's bookkeeping and exit (not its invalidations). */
  readonly ipiReceive: number;
  /** The initiator noticing the last acknowledgement. */
  readonly ipiAck: number;
  /** Issuing one INVLPGB broadcast. */
  readonly invlpgb: number;
  /** TLBSYNC: waiting for broadcasts to complete, beyond the targets' own work. */
  readonly tlbsync: number;
}

/** The defaults (see the file comment for their status). */
export const DEFAULT_COST_MODEL: CostModel = Object.freeze({
  instruction: 1,
  tlbHit: 0,
  walkLevel: 20,
  adUpdate: 20,
  invlpg: 150,
  cr3Write: 200,
  pgeToggle: 400,
  invpcid: 200,
  faultEntry: 1000,
  mapperCall: 100,
  ipiSend: 300,
  ipiReceive: 700,
  ipiAck: 100,
  invlpgb: 250,
  tlbsync: 400,
});

/** The names of the cost entries, for validating user overrides. */
export const COST_MODEL_KEYS = Object.keys(DEFAULT_COST_MODEL) as (keyof CostModel)[];
