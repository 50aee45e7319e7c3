/**
 * `MapperFlush` / `MapperFlushAll`: the TLB-invalidation obligations every mutating mapper call
 * returns (the crate's `#[must_use]` types in `mapper/mod.rs`).
 *
 * TypeScript cannot reject an unused value, so each obligation registers itself with a
 * `FlushLedger` when created and settles there on `flush()` or `ignore()`; a checker reads the
 * ledger's pending set. This is deterministic: it never depends on garbage collection.
 */

import type { Page } from '../page.ts';
import type { AnyPageSize, PageSize, Size4KiB } from '../page-size.ts';

/**
 * Where `flush()` sends its invalidation. The paging layer knows no CPU; the CPU and SMP layers
 * plug in a target that runs `invlpg` locally and the shootdown protocol for other CPUs.
 */
export interface InvalidationTarget {
  /** `MapperFlush.flush()`: invalidate one page (crate: `tlb::flush(page.start_address())`). */
  invalidatePage(page: Page<AnyPageSize>): void;
  /** `MapperFlushAll.flush_all()`: reload CR3 (crate: `tlb::flush_all()`; GLOBAL entries survive). */
  invalidateAll(): void;
}

/** The target used until a CPU is attached: flushing does nothing (a single CPU without TLB). */
export const NO_INVALIDATION: InvalidationTarget = Object.freeze({
  invalidatePage() {},
  invalidateAll() {},
});

/** How an obligation ended, or that it has not yet. */
export type FlushState = 'pending' | 'flushed' | 'ignored';

/** Thrown when an obligation is flushed or ignored a second time (Rust consumes it on first use). */
export class FlushAlreadySettled extends Error {
  override readonly name = 'FlushAlreadySettled';
}

/** What the ledger needs of an obligation: a slot it can keep the obligation's position in. */
interface Tracked {
  /** @internal Index in the ledger's open list, or -1 once settled. */
  ledgerSlot: number;
  /** @internal Creation order, to list pending obligations oldest first. */
  ledgerSeq: number;
}

/** Counts obligations and remembers the pending ones, so a dropped flush can be detected. */
export class FlushLedger {
  /** Obligations created so far. */
  created = 0;
  /** Obligations settled with `flush()`. */
  flushed = 0;
  /** Obligations settled with `ignore()`. */
  ignored = 0;
  // Pending obligations in no particular order; each knows its index, so settling is a swap with
  // the last element: O(1) without hashing (a Set cost 16% of the 4 KiB map/unmap cycle).
  private readonly open: (Tracked & (MapperFlush<PageSize> | MapperFlushAll))[] = [];

  /** @internal Called by the obligation's constructor. */
  register(obligation: Tracked & (MapperFlush<PageSize> | MapperFlushAll)): void {
    obligation.ledgerSeq = this.created++;
    obligation.ledgerSlot = this.open.length;
    this.open.push(obligation);
  }

  /** @internal Called when an obligation settles. */
  settle(obligation: Tracked, how: 'flushed' | 'ignored'): void {
    const last = this.open.pop()!;
    if (last !== obligation) {
      this.open[obligation.ledgerSlot] = last;
      last.ledgerSlot = obligation.ledgerSlot;
    }
    obligation.ledgerSlot = -1;
    if (how === 'flushed') this.flushed++;
    else this.ignored++;
  }

  /** Obligations neither flushed nor ignored yet, oldest first. */
  pending(): (MapperFlush<PageSize> | MapperFlushAll)[] {
    return [...this.open].sort((a, b) => a.ledgerSeq - b.ledgerSeq);
  }

  /** The number of pending obligations. */
  get pendingCount(): number {
    return this.open.length;
  }
}

/** The obligation to invalidate one page after its entry changed (crate `MapperFlush<S>`). */
export class MapperFlush<S extends PageSize = Size4KiB> {
  private settled: FlushState = 'pending';
  /** @internal */
  ledgerSlot = -1;
  /** @internal */
  ledgerSeq = -1;

  /** @internal Created by the mapper; registers itself as pending. */
  constructor(
    private readonly changedPage: Page<S>,
    private readonly target: InvalidationTarget,
    private readonly ledger: FlushLedger,
  ) {
    ledger.register(this);
  }

  /** The page whose entry changed. */
  page(): Page<S> {
    return this.changedPage;
  }

  /** Whether this obligation is still pending, or how it was settled. */
  get state(): FlushState {
    return this.settled;
  }

  /** Invalidates the page through the target (`invlpg` locally, plus the SMP protocol if any). */
  flush(): void {
    this.settle('flushed');
    this.target.invalidatePage(this.changedPage as unknown as Page<AnyPageSize>);
  }

  /** Settles without invalidating: the caller takes responsibility (crate `ignore`). */
  ignore(): void {
    this.settle('ignored');
  }

  private settle(how: 'flushed' | 'ignored'): void {
    if (this.settled !== 'pending') {
      throw new FlushAlreadySettled(
        `MapperFlush for ${this.changedPage} was already ${this.settled}`,
      );
    }
    this.settled = how;
    this.ledger.settle(this, how);
  }
}

/** The obligation to flush the whole TLB after an upper-level entry changed (crate `MapperFlushAll`). */
export class MapperFlushAll {
  private settled: FlushState = 'pending';
  /** @internal */
  ledgerSlot = -1;
  /** @internal */
  ledgerSeq = -1;

  /** @internal Created by the mapper; registers itself as pending. */
  constructor(
    private readonly target: InvalidationTarget,
    private readonly ledger: FlushLedger,
  ) {
    ledger.register(this);
  }

  /** Whether this obligation is still pending, or how it was settled. */
  get state(): FlushState {
    return this.settled;
  }

  /** Reloads CR3 through the target; GLOBAL entries survive, exactly as the crate's `flush_all`. */
  flushAll(): void {
    this.settle('flushed');
    this.target.invalidateAll();
  }

  /** Same as `flushAll()`, so both obligation types share one `flush()`/`ignore()` shape. */
  flush(): void {
    this.flushAll();
  }

  /** Settles without invalidating (crate `ignore`). */
  ignore(): void {
    this.settle('ignored');
  }

  private settle(how: 'flushed' | 'ignored'): void {
    if (this.settled !== 'pending') {
      throw new FlushAlreadySettled(`MapperFlushAll was already ${this.settled}`);
    }
    this.settled = how;
    this.ledger.settle(this, how);
  }
}
