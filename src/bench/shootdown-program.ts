/**
 * The shootdown microbenchmark as a scenario: CPU 0 unmaps P pages (each `unmap` followed by its
 * `flush`, as the crate hands out one `MapperFlush` per page), frees the first page's frame (the
 * point where the kernel may reuse it, so a batched protocol sends its batch there), then maps
 * the pages back and bumps a round counter in RAM. The other CPUs run the same address space and
 * wait at a barrier, idle but in its cpumask, like threads of the process sleeping (Amit 2019:
 * one remote thread of the same process). One program runs every page count as a phase of
 * rounds, so one machine (and, on the workers host, one set of threads) serves a whole row.
 *
 * With `lazyTlb` the idle CPUs are in lazy-TLB mode and skipped (Linux since 4.19 sends no
 * shootdown to a lazy CPU unless page tables are freed): they switch to a kernel address space
 * `K` before idling, which takes them out of `A`'s cpumask, and switch back afterwards, which
 * reloads CR3 (Linux flushes on that switch when the address space's TLB generation moved on).
 */

import { scenario } from '../scenarios/builder.ts';
import type { Scenario } from '../scenarios/scenario.ts';

/** Where the pages live: page p at `PAGE_BASE + p * 4096`, its frame at `FRAME_BASE + p * 4096`. */
export const PAGE_BASE = 0x4000_0000;
export const FRAME_BASE = 0x20_0000;
/** The round counter CPU 0 stores after each round (the workers host samples it). */
export const COUNTER_PAGE = 0x3000_0000;
export const COUNTER_FRAME = 0x10_0000;
/** The largest page count a phase may have (frames FRAME_BASE.. must stay below 4 MiB + 2 MiB). */
export const MAX_PAGES = 1024;
/** The counter value after round `round` (0-based) of phase `phase`. */
export const counterValue = (phase: number, round: number) => phase * 65536 + round + 1;

/** What `shootdownProgram` builds. */
export interface ShootdownProgramSpec {
  readonly cpus: number;
  /** Pages per operation, one phase each. */
  readonly pages: readonly number[];
  /** Rounds of each phase (the same index as `pages`), warm-up included. */
  readonly rounds: readonly number[];
  /** Idle CPUs are in lazy-TLB mode (kernel space `K`), out of `A`'s cpumask. */
  readonly lazyTlb: boolean;
  /** Pages each idle CPU loads first, so that its TLB caches them (at most the largest phase). */
  readonly touch: number;
  /** Simulated RAM (default 16 MiB): a lazy protocol holds one freed frame per round. */
  readonly ramBytes?: number;
}

/** CPU 0's instruction indices of one round. */
export interface RoundMarks {
  readonly phase: number;
  readonly round: number;
  /** The round's first `unmap`. */
  readonly start: number;
  /** The instruction after the `free_frame` that ends the operation (unmaps, flushes, free). */
  readonly opEnd: number;
  /** The next round's start (or the final barrier). */
  readonly end: number;
}

/** The scenario and where CPU 0's rounds are. */
export interface ShootdownProgram {
  readonly scenario: Scenario;
  readonly marks: readonly RoundMarks[];
}

/** Builds the microbenchmark for `spec` (see the file comment). */
export function shootdownProgram(spec: ShootdownProgramSpec): ShootdownProgram {
  const maxPages = Math.max(...spec.pages);
  if (spec.pages.length !== spec.rounds.length || spec.pages.length === 0) {
    throw new RangeError('shootdownProgram: one round count per page count, at least one phase');
  }
  if (spec.pages.some((p) => !Number.isInteger(p) || p < 1 || p > MAX_PAGES)) {
    throw new RangeError(`shootdownProgram: page counts must be integers from 1 to ${MAX_PAGES}`);
  }
  if (spec.pages.length > 1000 || spec.rounds.some((r) => r < 1 || r >= 65535)) {
    throw new RangeError('shootdownProgram: rounds must be from 1 to 65534 per phase');
  }
  const page = (p: number) => PAGE_BASE + p * 4096;
  const frame = (p: number) => FRAME_BASE + p * 4096;
  const marks: RoundMarks[] = [];
  let b = scenario(`shootdown-sweep-${spec.cpus}`)
    .describe('smpsim bench shootdown: CPU 0 unmaps, flushes, frees and remaps; the others idle.')
    .machine({ cpus: spec.cpus, ramBytes: spec.ramBytes ?? 16 * 1024 * 1024 })
    .addressSpace('A', (as) => {
      for (let p = 0; p < maxPages; p++) as.map4k(page(p), frame(p), 'PRESENT|WRITABLE');
      as.map4k(COUNTER_PAGE, COUNTER_FRAME, 'PRESENT|WRITABLE');
    });
  if (spec.lazyTlb) b = b.addressSpace('K');
  b = b.cpu('A', (prog) => {
    let pc = 0;
    const emit = (f: () => void) => {
      f();
      pc++;
    };
    emit(() => prog.barrier('go'));
    spec.pages.forEach((pages, phase) => {
      for (let round = 0; round < spec.rounds[phase]!; round++) {
        const start = pc;
        emit(() => prog.unmap('4KiB', page(0), 'r1'));
        emit(() => prog.flush());
        for (let p = 1; p < pages; p++) {
          emit(() => prog.unmap('4KiB', page(p)));
          emit(() => prog.flush());
        }
        // The kernel frees the unmapped page once no TLB can reach it (tlb_finish_mmu).
        emit(() => prog.freeFrame('r1'));
        const opEnd = pc;
        emit(() => prog.allocFrame('r1'));
        emit(() => prog.mapTo('4KiB', page(0), 'r1', 'PRESENT|WRITABLE'));
        emit(() => prog.ignore());
        for (let p = 1; p < pages; p++) {
          emit(() => prog.mapTo('4KiB', page(p), frame(p), 'PRESENT|WRITABLE'));
          emit(() => prog.ignore());
        }
        emit(() => prog.store(COUNTER_PAGE, counterValue(phase, round), { width: 4 }));
        marks.push({ phase, round, start, opEnd, end: pc });
      }
    });
    prog.barrier('end');
  });
  const touch = Math.min(spec.touch, maxPages);
  for (let cpu = 1; cpu < spec.cpus; cpu++) {
    b = b.cpu('A', (prog) => {
      for (let p = 0; p < touch; p++) prog.load(page(p), 'r0');
      if (spec.lazyTlb) prog.movCr3('K');
      prog.barrier('go').barrier('end');
      if (spec.lazyTlb) prog.movCr3('A');
    });
  }
  return { scenario: b.build(), marks };
}
