/**
 * `ShootdownPort`: what a CPU needs from the machine's TLB-shootdown machinery. The CPU layer
 * declares it and calls it at the points the scenario spec names (instruction boundaries, flush,
 * batch sync points, epoch boundaries, halt); `smp/shootdown.ts` implements it over shared memory,
 * so `cpu/` stays free of protocol and thread code.
 */

import type { Cpu } from './cpu.ts';

/** The instructions before which a batched protocol must send its batch (scenario spec). */
export type SyncPoint = 'free_frame' | 'barrier' | 'mov_cr3' | 'halt';

/** The machine side of shootdowns, seen from one CPU. */
export interface ShootdownPort {
  /** Protocol name, as in the scenario spec. */
  readonly protocol: string;
  /** The wake words: a waiting CPU blocks on `wake[wakeIndex(cpu.id)]`; every event for it bumps it. */
  readonly wake: Int32Array;
  /**
   * One shared word, the machine's page-table generation: CPUs bump it after changing the tables
   * and compare it with what they saw when they filled a TLB entry (the coherence probe).
   */
  readonly tableGeneration: Int32Array;
  /** Index of a CPU's wake word in `wake`. */
  wakeIndex(cpu: number): number;
  /** Bumps every CPU's wake word (a barrier opened). */
  wakeAll(): void;
  /** The CPU starts in its first address space (joins that space's cpumask). */
  start(cpu: Cpu, space: string): void;
  /**
   * Services requests sent to this CPU; `epoch` also applies lazy ones (barrier, mov_cr3, halt).
   * `wake` is the CPU's wake word as the step loaded it at its start (one load per step, not two):
   * a request posted since is seen at the next step, or at once by the wait that compares with it.
   */
  poll(cpu: Cpu, epoch: boolean, wake: number): void;
  /**
   * After the local flush of `page` (or all, -1): start the remote part. True: acknowledgements
   * are outstanding and the CPU waits until `waiting` turns false, then calls `complete`; false:
   * the flush is done (a round whose every ack is already in was completed here).
   */
  flush(cpu: Cpu, page: number): boolean;
  /** Before a sync point: send a pending batch or finish lazy work; true means wait. */
  syncPoint(cpu: Cpu, point: SyncPoint): boolean;
  /**
   * True while the CPU's last remote invalidation has not been acknowledged by every target,
   * judged from `wake`, the CPU's wake word as its step loaded it (acks bump that word: one that
   * came since is seen by the wait that compares with `wake`).
   */
  waiting(cpu: Cpu, wake: number): boolean;
  /** Called when `waiting` turned false: charges the wait to the CPU's modeled clock. */
  complete(cpu: Cpu): void;
  /** `free_frame` under a lazy protocol: true if the free is held until the coherence point. */
  holdFree(cpu: Cpu, frame: number): boolean;
  /** The CPU switched address spaces (cpumask maintenance). */
  switchSpace(cpu: Cpu, from: string, to: string): void;
  /** While `waiting`: the CPUs that have not acknowledged yet, for deadlock reports. */
  unacknowledged(cpu: Cpu): number[];
  /** The CPU stopped: it leaves every cpumask and acknowledges whatever is pending at once. */
  leave(cpu: Cpu): void;
}
