/**
 * The reduction that keeps schedule exploration small: a CPU's *pure local step* gets no
 * scheduling point after it, so the CPU runs on into its next step.
 *
 * A local step executes one of `LOCAL_OPS` (`assert`, `invlpg`, `flush_all`, `toggle_pge`,
 * `invpcid`, `ignore`): instructions that read and write only the CPU's own registers, TLB, CR4
 * and pending `MapperFlush`. It is *pure* when nothing else happened in it: its interrupt-point
 * poll serviced no invalidation, posted no lazy request, released no held frame and marked no
 * coherence point, and the CPU did not stop (a failed `assert` halts it, which other CPUs see).
 * Purity is read from the step's own trace records, after the step; an impure local step is a
 * scheduling point like any shared step.
 *
 * Why this loses no behaviour (every hazard reachable without it is reachable with it): take any
 * run and a pure local step L of CPU i followed by other CPUs' steps before i's next step N. Move
 * L later, past those steps, to just before N. L wrote nothing shared, so the steps it passes run
 * exactly as before; L's own effects stay in i's registers and TLB, which no other CPU reads (and
 * TLB invalidations commute with each other). At its new place L's poll may find work that N's
 * poll did in the original run: the same work, at the same point between the other CPUs' steps.
 * Doing this for every pure local step gives a run with the same shared state at every step, in
 * which a pure local step is always directly followed by its CPU's next step: a run this reduced
 * scheduler produces. The direction matters. Merging a local step into the step *before* it
 * (no scheduling point before a local step) is not sound: that local step's poll may be the one
 * that acknowledges a shootdown, letting its initiator go on to change the tables before this
 * CPU's next access, an order only a scheduling point before the local step produces
 * (test/explore/reduction.test.ts shows such a scenario, whose outcome that variant misses).
 */

import { StepResult } from '../cpu/cpu.ts';
import { INSTRUCTION_OPS } from '../scenarios/load.ts';
import type { InstructionOp } from '../scenarios/scenario.ts';
import { EvictReason, FlushOutcome, TraceKind } from '../trace/record.ts';
import type { TraceRecord } from '../trace/ring.ts';

/** The instructions that touch only the CPU's own registers, TLB, CR4 and pending flush. */
export const LOCAL_OPS: readonly InstructionOp[] = [
  'assert',
  'invlpg',
  'flush_all',
  'toggle_pge',
  'invpcid',
  'ignore',
];

/** `INSTRUCTION_OPS` indices (as Instruction records carry them) of the local instructions. */
const LOCAL_OP_INDEX: ReadonlySet<number> = new Set(
  LOCAL_OPS.map((op) => INSTRUCTION_OPS.indexOf(op)),
);

/**
 * True when the records of one step show a pure local step: one Instruction record of a local
 * op, and besides it only what that instruction itself writes (its Maintenance record, the
 * entries it evicted, an `ignore`'s Flush record). Anything else, including record kinds added
 * later, makes the step a scheduling point, which is always safe.
 */
export function isPureLocalStep(records: readonly TraceRecord[]): boolean {
  let local = false;
  for (const r of records) {
    switch (r.kind) {
      case TraceKind.Instruction:
        if (local || !LOCAL_OP_INDEX.has(r.b)) return false;
        local = true;
        break;
      case TraceKind.Maintenance:
        break;
      case TraceKind.TlbEvict:
        if (r.d === EvictReason.Shootdown) return false;
        break;
      case TraceKind.Flush:
        if (r.b !== FlushOutcome.Ignored) return false;
        break;
      default:
        return false;
    }
  }
  return local;
}

/** Picks one of `options` (>= 2) alternatives at a scheduling point: an index in [0, options). */
export type Decide = (options: number) => number;

/**
 * The deterministic host's chooser during exploration: at each scheduling point with two or more
 * runnable CPUs it asks `decide` which one (by index into the ascending list of runnable CPUs),
 * and records the choice; a single runnable CPU, or a CPU that has just made a pure local step
 * (with `reduce`), is taken without asking.
 */
export class ReducedChooser {
  /** The index chosen at each scheduling point, in order. */
  readonly choices: number[] = [];
  /** How many CPUs were runnable at each scheduling point. */
  readonly options: number[] = [];
  /** The CPU that runs on without a scheduling point, or -1. */
  private runOn = -1;

  constructor(
    private readonly decide: Decide,
    private readonly reduce: boolean,
  ) {}

  /** `DeterministicOptions.choose`. */
  readonly choose = (ready: readonly number[]): number => {
    // A CPU after a pure local step is running and not blocked, so it is in `ready`.
    if (this.runOn >= 0) return this.runOn;
    if (ready.length === 1) return ready[0]!;
    const k = this.decide(ready.length);
    if (!Number.isInteger(k) || k < 0 || k >= ready.length) {
      throw new RangeError(`decide returned ${k} for ${ready.length} options`);
    }
    this.choices.push(k);
    this.options.push(ready.length);
    return ready[k]!;
  };

  /** `DeterministicOptions.onStep`. */
  readonly onStep = (cpu: number, result: StepResult, records: readonly TraceRecord[]): void => {
    this.runOn = this.reduce && result === StepResult.Ran && isPureLocalStep(records) ? cpu : -1;
  };
}
