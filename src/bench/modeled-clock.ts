/**
 * The deterministic host on the modeled clock: every CPU in one thread, like
 * `smp/hosts/deterministic.ts`, but the next CPU is always the runnable one whose modeled clock
 * (`Cpu.cycles`) is lowest (ties: the lowest id), and a CPU's clock never runs behind an event
 * that reached it. That makes modeled cycles a causal timeline that benchmarks can read, where the
 * seeded host's per-CPU clocks are independent counters.
 *
 * Two rules keep the clocks causal; the same `Cpu.step()` and `Shootdown` run unchanged:
 *
 * - **Delivery.** A request posted to a CPU (its mailbox PENDING counter grew during another
 *   CPU's step) reaches it at the sender's clock after that step, i.e. once every request of the
 *   round has been written: the target's clock moves forward to it if it is behind. Otherwise a
 *   target that was idle at a barrier would service the request at its own, earlier, time.
 * - **Idle until woken.** A CPU blocked at a barrier that another CPU's step let go (opened the
 *   barrier) moves forward to that CPU's clock. An initiator woken by acknowledgements is left
 *   alone: `Shootdown.complete` already takes the latest acknowledgement's time.
 *
 * Options model the ablations of Amit et al. ("Don't shoot down TLB shootdowns!", EuroSys 2020),
 * as changes to *when* the clock says things happen, never to what the CPUs do:
 *
 * - `concurrentFlush`: the initiator sends its IPIs before its local invalidation and performs it
 *   while it waits (Linux "x86/mm/tlb: Flush remote and local TLBs concurrently", 2019): requests
 *   are delivered at the initiator's clock minus that step's local invalidation cost.
 * - `earlyAck`: a target acknowledges on entering the handler, before it invalidates: the ack
 *   time `Shootdown` records is moved back by the request's invalidation cost. The interrupt's
 *   exit is part of `ipiReceive` and still precedes the ack, so the saving is a lower bound.
 */

import type { StepResult } from '../cpu/cpu.ts';
import { type DeterministicRun, runDeterministic } from '../smp/hosts/deterministic.ts';
import { REQUEST_LAZY, RequestKind } from '../smp/ipi.ts';
import type { Machine } from '../smp/machine.ts';
import { MaintenanceOp, TraceKind } from '../trace/record.ts';
import type { TraceRecord } from '../trace/ring.ts';

/** Options of `runModeledClock`. */
export interface ModeledClockOptions {
  /** A bound on steps, against runaway programs (default 5,000,000). */
  readonly maxSteps?: number;
  /** Deliver requests as if sent before the local invalidation (see the file comment). */
  readonly concurrentFlush?: boolean;
  /** Targets acknowledge before they invalidate (see the file comment). */
  readonly earlyAck?: boolean;
  /** CPUs whose clock is recorded at each instruction they reach (`arrivals`). */
  readonly watch?: readonly number[];
}

/**
 * What a modeled-clock run did: a deterministic run (its `schedule` chosen by the clocks, no
 * seed), plus the clocks.
 */
export interface ModeledRun extends DeterministicRun {
  /**
   * Per watched CPU: `arrivals[pc]` is its modeled clock when it reached instruction `pc` (every
   * earlier instruction done, waits included); `arrivals[program length]` when it halted. NaN for
   * instructions it never reached.
   */
  readonly arrivals: ReadonlyMap<number, Float64Array>;
  /** The stepping CPU's clock after each step (index = step), to time trace records. */
  readonly stepCycles: Float64Array;
}

/**
 * Runs `machine` on the modeled clock to completion, a deadlock, or `maxSteps`. The driver is the
 * deterministic host's own loop (`runDeterministic`): this host only chooses the next CPU (the
 * lowest clock) and moves the other CPUs' clocks after each step (the two rules above).
 */
export function runModeledClock(machine: Machine, options: ModeledClockOptions = {}): ModeledRun {
  const cpus = machine.cpus;
  const n = cpus.length;
  // What each step did to the other CPUs is read from its trace records: an IpiSend that is not
  // lazy posted an interrupt (or an INVLPGB) to its target; an IpiReceive acknowledged its
  // initiator. (The machine must have its trace on.)
  const posted = new Uint8Array(n);
  const acked = new Uint8Array(n);
  /** Before the step: blocked and not yet released (if the step releases it, it was idle until now). */
  const sleeping = new Uint8Array(n);
  const arrivals = new Map<number, Float64Array>();
  for (const id of options.watch ?? []) {
    const a = new Float64Array(machine.scenario.cpus[id]!.program.length + 1).fill(Number.NaN);
    a[0] = cpus[id]!.cycles;
    arrivals.set(id, a);
  }
  let stepCycles = new Float64Array(1024);
  let step = 0;

  /** The runnable CPU whose clock is lowest (ties: the lowest id; `ready` is ascending). */
  const choose = (ready: readonly number[], s: number): number => {
    step = s;
    // One pass over both lists (`ready` ascending), not a search of `ready` per CPU.
    let k = 0;
    for (let i = 0; i < n; i++) {
      if (ready[k] === i) {
        k++;
        sleeping[i] = 0;
      } else sleeping[i] = cpus[i]!.halted ? 0 : 1;
    }
    let pick = ready[0]!;
    for (const i of ready) if (cpus[i]!.cycles < cpus[pick]!.cycles) pick = i;
    return pick;
  };

  const onStep = (pick: number, _result: StepResult, drained: readonly TraceRecord[]): void => {
    const cpu = cpus[pick]!;
    // What this step did, from its records: posts, acks, local invalidations, services.
    let localCost = 0;
    posted.fill(0);
    acked.fill(0);
    for (const r of drained) {
      if (r.kind === TraceKind.IpiSend && (r.d & REQUEST_LAZY) === 0) posted[r.a] = 1;
      if (r.kind === TraceKind.IpiReceive) acked[r.a] = 1;
      if (r.kind === TraceKind.Maintenance && r.cpu === pick) {
        if (r.a === MaintenanceOp.Invlpg) localCost += cpu.costs.invlpg;
        else if (r.a === MaintenanceOp.FlushAll) localCost += cpu.costs.cr3Write;
      } else if (r.kind === TraceKind.IpiReceive && options.earlyAck === true) {
        // The ack was stamped after the invalidations; early, it is stamped before them.
        const work =
          r.b === RequestKind.Pages
            ? r.c * (cpu.costs.invlpg + cpu.costs.flushPage)
            : cpu.costs.cr3Write;
        machine.shootdown.shiftAckCycles(r.a, pick, -work);
      }
    }

    const now = cpu.cycles;
    const sentAt = options.concurrentFlush === true ? now - localCost : now;
    for (let j = 0; j < n; j++) {
      if (j === pick) continue;
      const other = cpus[j]!;
      if (posted[j] === 1) {
        // Delivery: the request reaches the target at the sender's time.
        if (other.cycles < sentAt) other.cycles = sentAt;
      } else if (
        sleeping[j] === 1 &&
        acked[j] === 0 &&
        other.blockedWords![other.blockedIndex] !== other.blockedExpected &&
        other.cycles < now
      ) {
        // Idle until woken (a barrier opened): the wait lasted until now.
        other.cycles = now;
      }
    }

    const a = arrivals.get(pick);
    if (a !== undefined && Number.isNaN(a[cpu.pc]!)) a[cpu.pc] = cpu.cycles;
    if (step >= stepCycles.length) {
      const grown = new Float64Array(stepCycles.length * 2);
      grown.set(stepCycles);
      stepCycles = grown;
    }
    stepCycles[step] = cpu.cycles;
  };

  const run = runDeterministic(machine, {
    maxSteps: options.maxSteps ?? 5_000_000,
    choose,
    onStep,
  });
  return { ...run, arrivals, stepCycles: stepCycles.slice(0, run.steps) };
}
