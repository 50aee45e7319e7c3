/**
 * `RamPool`: one scenario's simulated RAM, reused from run to run of an exploration. A run is
 * often a few dozen steps (tens of microseconds), while a fresh 16 MiB `SharedArrayBuffer` per
 * run gets slow once earlier ones are freed (glibc then raises its mmap threshold and zeroes the
 * whole buffer on the heap: measured 0.5 ms per run rising to 10-40 ms, RSS growing by the RAM
 * size per run). So after each run the frames it may have written are zeroed and the RAM is kept.
 */

import { PhysicalMemory } from '../memory/physical-memory.ts';
import type { Scenario } from '../scenarios/scenario.ts';
import type { Machine } from '../smp/machine.ts';
import { TraceKind } from '../trace/record.ts';
import type { TraceRecord } from '../trace/ring.ts';

const FRAME_BYTES = 4096;
const ZERO_FRAME = new Uint8Array(FRAME_BYTES);
/** Access records: field d is the access kind, 1 = write. */
const ACCESS_WRITE = 1;

/** Reusable all-zero RAM for the runs of one scenario (one thread's). */
export class RamPool {
  private spare: PhysicalMemory | undefined;
  /** The 4 KiB frames the initial mappings cover: reserved, but zero until a run writes them. */
  private readonly mappedFrames = new Set<number>();

  constructor(private readonly scenario: Scenario) {
    for (const space of scenario.addressSpaces) {
      for (const m of space.map) {
        for (let a = m.frame as number; a < m.frame + m.size.bytes; a += FRAME_BYTES) {
          this.mappedFrames.add(a);
        }
      }
    }
  }

  /** All-zero RAM of the scenario's size (the kept one, or a new one). */
  take(): PhysicalMemory {
    const m = this.spare ?? new PhysicalMemory(this.scenario.machine.ramBytes);
    this.spare = undefined;
    return m;
  }

  /**
   * Takes back the RAM of a finished run on `machine`, whose trace is `records` with `lost`
   * records missing, and zeroes every frame the run or its setup may have written. RAM is
   * written in three ways only: page-table entries (by the Mapper, and the walker's A/D bits),
   * whose tables all come from the allocator; `alloc_frame`'s zeroing; and stores. So the frames
   * to zero are those in use at the end but not covered by an initial mapping (tables, allocated
   * frames), those freed during the run (a freed table or allocated frame is no longer in use),
   * and those a store wrote (Access records). Frames an initial mapping covers are still zero
   * unless stored to. With records lost the set is unknown, so the RAM is dropped instead.
   */
  give(
    memory: PhysicalMemory,
    machine: Machine,
    records: readonly TraceRecord[],
    lost: number,
  ): void {
    if (lost > 0) return;
    const dirty = new Set<number>();
    for (const f of machine.setup.allocator.allocatedFrames()) {
      if (!this.mappedFrames.has(f.startAddress)) dirty.add(f.startAddress);
    }
    for (const r of records) {
      if (r.kind === TraceKind.FrameFree) dirty.add(r.a);
      else if (r.kind === TraceKind.Access && r.d === ACCESS_WRITE) {
        dirty.add(r.b - (r.b % FRAME_BYTES));
      }
    }
    // One thread owns this RAM now (the run is over): a plain copy is safe, and much faster than
    // zeroFrame's entry-by-entry Atomics stores.
    for (const frame of dirty) memory.writeBytes(frame, ZERO_FRAME);
    this.spare = memory;
  }
}
