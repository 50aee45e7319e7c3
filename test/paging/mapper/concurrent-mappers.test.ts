/**
 * Concurrent mappers (src/paging/mapper/mapped-page-table.ts, class remarks): 4 and then 8 worker
 * threads, each with its own `OffsetPageTable`, map, unmap, re-flag and translate pages of ONE
 * address space in one shared RAM, taking page-table frames from ONE shared
 * `BitmapFrameAllocator`. The layout (see `pageLayout` in mapper-worker.ts) makes them need the
 * same intermediate tables at the same moment (private pages of different workers interleaved in
 * one level-1 table; after each round barrier everyone enters fresh level-3 entries, and in the
 * first 250 rounds a fresh level-4 entry) and race for the same leaves (contended pages).
 *
 * Rules checked, from the workers' logs and an independent walk of the tables in RAM:
 * - a new table is installed by compare-exchange from zero: a loser frees its frame and uses the
 *   winner's (`lostTableRaces`), so no table is ever overwritten, leaked or linked twice;
 * - a racing `mapTo` of one page has exactly one winner; the others get PageAlreadyMapped;
 * - the shared allocator never hands a frame out twice;
 * - no update is lost: every leaf, and every OR-ed parent flag, is what the logs say.
 */

import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { PhysAddr } from '../../../src/addr.ts';
import { PhysicalMemory } from '../../../src/memory/physical-memory.ts';
import { BitmapFrameAllocator } from '../../../src/paging/bitmap-frame-allocator.ts';
import { PageTableFlags } from '../../../src/paging/flags.ts';
import { PhysFrame } from '../../../src/paging/frame.ts';
import { Size4KiB } from '../../../src/paging/page-size.ts';
import {
  CONTROL_WORDS,
  type ContendedEvent,
  CTL_ABORT,
  type MapperWorkerInput,
  type MapperWorkerOutput,
  type PageSpec,
  pageLayout,
} from './mapper-worker.ts';

const RAM_BYTES = 64 * 2 ** 20;
/** Page-table frames come from [1 MiB, 64 MiB); the level-4 table is the first, reserved. */
const TABLES_START = 0x10_0000;
const P4 = TABLES_START;
/** The owner-table value of the level-4 frame: held by the test, never by a worker. */
const MAIN_OWNER = 0x7fff_ffff;

const { PRESENT, WRITABLE, USER_ACCESSIBLE, HUGE_PAGE } = PageTableFlags;
const PARENT_MASK = PRESENT | WRITABLE | USER_ACCESSIBLE;
const ADDR_MASK = 0x000f_ffff_ffff_f000n;

/**
 * A bootstrap that registers tsx's hooks inside the worker thread, then imports the TypeScript
 * worker (`execArgv: ['--import', 'tsx']` does not apply to a Worker's entry module on Node 20;
 * see bitmap-frame-allocator.test.ts).
 */
const WORKER_BOOTSTRAP = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})
  .then((tsx) => { tsx.register(); return import(${JSON.stringify(new URL('./mapper-worker.ts', import.meta.url).href)}); })`;

function frame4k(addr: number): PhysFrame<Size4KiB> {
  return PhysFrame.fromStartAddressUnchecked(PhysAddr.newUnchecked(addr), Size4KiB);
}

const hex = (n: number | bigint): string => `0x${n.toString(16)}`;

interface Run {
  readonly workers: number;
  readonly memory: PhysicalMemory;
  readonly tables: BitmapFrameAllocator;
  readonly layout: PageSpec[];
  readonly frameOwners: Int32Array;
  readonly pageOwners: Int32Array;
  readonly pageSeq: Int32Array;
  readonly outputs: MapperWorkerOutput[];
  readonly wallMs: number;
}

/** Runs the workers to completion, or fails (terminating them) after `timeoutMs`. */
async function runMappers(options: {
  workers: number;
  minRounds: number;
  maxRounds: number;
  minLostRaces: number;
  opsPerRound: number;
  seed: number;
  /** Past this many milliseconds no extra round starts. */
  extendMs: number;
  timeoutMs: number;
}): Promise<Run> {
  const { workers, minRounds, maxRounds, minLostRaces, opsPerRound, seed } = options;
  const memory = new PhysicalMemory(RAM_BYTES);
  const tables = BitmapFrameAllocator.create({ start: TABLES_START, end: RAM_BYTES });
  tables.reserve(frame4k(P4));
  memory.zeroFrame(P4);
  const layout = pageLayout(workers, maxRounds);
  const nContended = layout.filter((p) => p.contended >= 0).length;
  const control = new SharedArrayBuffer(CONTROL_WORDS * 4);
  const frameOwners = new Int32Array(new SharedArrayBuffer(tables.frameCount * 4));
  Atomics.store(frameOwners, (P4 - TABLES_START) / 4096, MAIN_OWNER);
  const pageOwners = new Int32Array(new SharedArrayBuffer(nContended * 4));
  const pageSeq = new Int32Array(new SharedArrayBuffer(nContended * 4));

  const threads: Worker[] = [];
  const started = performance.now();
  const extendUntil = Date.now() + options.extendMs;
  const all = Promise.all(
    Array.from({ length: workers }, (_, k) => {
      const input: MapperWorkerInput = {
        kind: 'concurrent-mapper',
        ram: memory.buffer,
        tables: tables.shared(),
        level4: P4,
        control,
        frameOwners: frameOwners.buffer as SharedArrayBuffer,
        pageOwners: pageOwners.buffer as SharedArrayBuffer,
        pageSeq: pageSeq.buffer as SharedArrayBuffer,
        id: k + 1,
        workers,
        minRounds,
        maxRounds,
        minLostRaces,
        extendUntil,
        opsPerRound,
        seed: (seed + 0x9e37_79b9 * (k + 1)) | 0,
      };
      return new Promise<MapperWorkerOutput>((resolve, reject) => {
        const worker = new Worker(WORKER_BOOTSTRAP, { eval: true, workerData: input });
        threads.push(worker);
        worker.once('message', (m: MapperWorkerOutput) => {
          resolve(m);
          void worker.terminate();
        });
        worker.once('error', reject);
        worker.once('exit', (code) => {
          if (code !== 0) reject(new Error(`mapper worker ${k + 1} exited with code ${code}`));
        });
      });
    }),
  );
  // After a timeout the terminated workers reject `all` too; that is not a second failure.
  all.catch(() => {});
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      // Releases every barrier, then stops the threads: the test fails instead of hanging.
      Atomics.store(new Int32Array(control), CTL_ABORT, 1);
      for (const t of threads) void t.terminate();
      reject(new Error(`${workers} mapper workers did not finish within ${options.timeoutMs} ms`));
    }, options.timeoutMs);
  });
  try {
    const outputs = await Promise.race([all, timeout]);
    return {
      workers,
      memory,
      tables,
      layout,
      frameOwners,
      pageOwners,
      pageSeq,
      outputs: outputs.sort((a, b) => a.id - b.id),
      wallMs: performance.now() - started,
    };
  } finally {
    clearTimeout(timer);
  }
}

/** The entry span of a table at `level` (4: 512 GiB per entry … 1: 4 KiB). */
const span = (level: number): number => 2 ** (12 + 9 * (level - 1));
/** Names the entry at `level` on the way to `va`. */
const entryKey = (level: number, va: number): string => `L${level}:${hex(va - (va % span(level)))}`;
const leafLevel = (shift: number): number => (shift === 12 ? 1 : shift === 21 ? 2 : 3);

interface Walk {
  /** Leaf entries by virtual address. */
  readonly leaves: Map<number, bigint>;
  /** Flags of every table pointer, by `entryKey`. */
  readonly parents: Map<string, bigint>;
  /** Frames of the linked tables below level 4. */
  readonly tables: number[];
  readonly problems: string[];
}

/** Walks every table from the level-4 one with plain loads (the mapper is not used). */
function walkTables(run: Run): Walk {
  const { memory, tables } = run;
  const leaves = new Map<number, bigint>();
  const parents = new Map<string, bigint>();
  const linked = new Set<number>([P4]);
  const problems: string[] = [];
  const visit = (table: number, level: number, base: number): void => {
    for (let i = 0; i < 512; i++) {
      const e = memory.loadEntry(table + i * 8);
      if (e === 0n) continue;
      const va = base + i * span(level);
      const huge = (e & BigInt(HUGE_PAGE)) !== 0n;
      if (level === 1 || (huge && level < 4)) {
        leaves.set(va, e);
        continue;
      }
      const where = `L${level} entry ${i} of table ${hex(table)} (va ${hex(va)})`;
      if (huge) problems.push(`${where}: HUGE_PAGE at level 4`);
      if ((e & BigInt(PRESENT)) === 0n) problems.push(`${where}: table pointer not present`);
      const flags = e & ~ADDR_MASK;
      if ((flags & ~BigInt(PARENT_MASK)) !== 0n) problems.push(`${where}: flags ${hex(flags)}`);
      parents.set(entryKey(level, va), flags);
      const child = Number(e & ADDR_MASK);
      if (child < TABLES_START || child + 4096 > RAM_BYTES) {
        problems.push(`${where}: table ${hex(child)} outside the table allocator`);
        continue;
      }
      if (!tables.isAllocated(frame4k(child))) {
        problems.push(`${where}: table ${hex(child)} is free in the allocator`);
      }
      if (linked.has(child)) {
        problems.push(`${where}: table ${hex(child)} linked twice`);
        continue;
      }
      linked.add(child);
      visit(child, level - 1, va);
    }
  };
  visit(P4, 4, 0);
  linked.delete(P4);
  return { leaves, parents, tables: [...linked], problems };
}

interface Expected {
  /** Leaf entries the logs say must be in RAM, by virtual address. */
  readonly leaves: Map<number, bigint>;
  /** Table-pointer flags: the OR of the parent flags of every mapTo that went through. */
  readonly parents: Map<string, bigint>;
  /** Per page of the layout: the frame and leaf flags `translate` must report, or undefined. */
  readonly views: Map<number, { frame: number; flags: number } | undefined>;
  readonly problems: string[];
}

/** Builds the final state from the workers' logs, checking the contended-page histories. */
function model(run: Run): Expected {
  const problems: string[] = [];
  const leaves = new Map<number, bigint>();
  const parents = new Map<string, bigint>();
  const views = new Map<number, { frame: number; flags: number } | undefined>();
  const byVa = new Map(run.layout.map((p) => [p.va, p]));
  const addParents = (spec: PageSpec, flags: number): void => {
    for (let level = 4; level > leafLevel(spec.shift); level--) {
      const key = entryKey(level, spec.va);
      parents.set(key, (parents.get(key) ?? 0n) | BigInt(flags & PARENT_MASK));
    }
  };
  const leafFlags = (spec: PageSpec, flags: number): number =>
    spec.shift === 12 ? flags : flags | HUGE_PAGE;
  const install = (spec: PageSpec, m: { frame: number; flags: number } | undefined): void => {
    views.set(spec.va, m && { frame: m.frame, flags: leafFlags(spec, m.flags) });
    if (m) {
      leaves.set(
        spec.va,
        BigInt(m.frame) | PageTableFlags.bits(leafFlags(spec, m.flags) as PageTableFlags),
      );
    }
  };
  for (const spec of run.layout) views.set(spec.va, undefined);

  // Private pages: only their owner ever changed them, so its log in program order is the truth.
  for (const o of run.outputs) {
    const state = new Map<number, { frame: number; flags: number } | undefined>();
    for (const e of o.privateLog) {
      const spec = byVa.get(e.va);
      if (spec === undefined || spec.owner !== o.id) {
        problems.push(`worker ${o.id} changed ${hex(e.va)}, not one of its pages`);
        continue;
      }
      const cur = state.get(e.va);
      if (e.t === 'map') {
        if (cur) problems.push(`worker ${o.id} mapped ${hex(e.va)} twice`);
        state.set(e.va, { frame: e.frame, flags: e.flags });
        addParents(spec, e.flags);
      } else if (e.t === 'flags') {
        if (!cur) problems.push(`worker ${o.id} re-flagged unmapped ${hex(e.va)}`);
        else state.set(e.va, { frame: cur.frame, flags: e.flags });
      } else {
        if (cur?.frame !== e.frame) problems.push(`worker ${o.id} unmap of ${hex(e.va)}`);
        state.set(e.va, undefined);
      }
    }
    for (const [va, m] of state) install(byVa.get(va)!, m);
  }

  // Contended pages: merge the logs by sequence number. The history must be map, unmap, map, …
  // with no gap or duplicate, each unmap by the worker whose map it undoes, returning its frame.
  const contended = run.layout.filter((p) => p.contended >= 0);
  const events: ContendedEvent[][] = contended.map(() => []);
  for (const o of run.outputs) for (const e of o.contendedLog) events[e.k]!.push(e);
  for (const spec of contended) {
    const k = spec.contended;
    const history = events[k]!.sort((a, b) => a.seq - b.seq);
    let holder: ContendedEvent | undefined;
    history.forEach((e, i) => {
      const what = `contended ${k} (${hex(spec.va)}) event ${i}`;
      if (e.seq !== i) problems.push(`${what}: sequence ${e.seq}`);
      if (e.t === 'map') {
        if (holder) problems.push(`${what}: worker ${e.worker} won while ${holder.worker} held it`);
        holder = e;
      } else {
        if (holder?.worker !== e.worker || holder.frame !== e.frame) {
          problems.push(`${what}: unmap by ${e.worker} of ${hex(e.frame)} does not match`);
        }
        holder = undefined;
      }
    });
    if (Atomics.load(run.pageSeq, k) !== history.length) {
      problems.push(
        `contended ${k}: ${Atomics.load(run.pageSeq, k)} numbers, ${history.length} events`,
      );
    }
    if (Atomics.load(run.pageOwners, k) !== (holder?.worker ?? 0)) {
      problems.push(`contended ${k}: owner word ${Atomics.load(run.pageOwners, k)}`);
    }
    const wins = run.outputs.reduce((s, o) => s + o.wins[k]!, 0);
    const maps = history.filter((e) => e.t === 'map').length;
    if (wins !== maps) problems.push(`contended ${k}: ${wins} wins, ${maps} map events`);
    for (const o of run.outputs) {
      if (o.attempts[k] !== o.wins[k]! + o.alreadyMapped[k]!) {
        problems.push(`contended ${k}: worker ${o.id} attempts do not add up`);
      }
      if (o.attempts[k]! > 0) addParents(spec, o.contendedParentFlags[k]!);
      const held = o.held.find(([hk]) => hk === k);
      if ((held !== undefined) !== (holder?.worker === o.id)) {
        problems.push(`contended ${k}: worker ${o.id} held=${held !== undefined}`);
      }
    }
    install(spec, holder && { frame: holder.frame, flags: holder.flags });
  }
  return { leaves, parents, views, problems };
}

const sortedEntries = <K, V>(m: Map<K, V>): [string, string][] =>
  [...m].map(([k, v]) => [String(k), String(v)] as [string, string]).sort();

interface Summary {
  readonly workers: number;
  readonly rounds: number;
  readonly lostTableRaces: number;
  readonly alreadyMapped: number;
  readonly contendedWins: number;
  readonly tables: number;
  /** From the start line to the final barrier, the slowest worker. */
  readonly runMs: number;
  /** From the first worker's creation to the last one's report. */
  readonly wallMs: number;
}

/** Every check of the file header, against the model and the walk. */
function check(run: Run, minRounds: number): Summary {
  const { outputs } = run;
  // Every worker ran the same rounds, at least the minimum.
  const rounds = outputs[0]!.rounds;
  expect(outputs.map((o) => o.rounds)).toEqual(outputs.map(() => rounds));
  expect(rounds).toBeGreaterThanOrEqual(minRounds);
  // In-run checks of the workers: no unexpected result, no duplicate frame or page holder, no
  // impossible translation, every flush settled.
  expect(outputs.flatMap((o) => o.errors)).toEqual([]);
  for (const o of outputs) {
    expect(o.aborted).toBe(false);
    expect(o.errorCount).toBe(0);
    expect(o.frameConflicts, `worker ${o.id} frame conflicts`).toBe(0);
    expect(o.ownerConflicts, `worker ${o.id} contended-page conflicts`).toBe(0);
    expect(o.foreignViolations, `worker ${o.id} impossible translations`).toBe(0);
    expect(o.pendingFlushes).toBe(0);
    // Every worker did real work of every kind.
    expect(o.counts.privateMaps).toBeGreaterThan(0);
    expect(o.counts.privateUnmaps).toBeGreaterThan(0);
    expect(o.counts.flagUpdates).toBeGreaterThan(0);
    expect(o.counts.foreignTranslates).toBeGreaterThan(0);
    expect(o.wins.reduce((s, n) => s + n, 0)).toBeGreaterThan(0);
  }

  const want = model(run);
  expect(want.problems).toEqual([]);
  const walk = walkTables(run);
  expect(walk.problems).toEqual([]);

  // Every leaf is exactly what the logs say (no lost map/unmap/flag update, no corrupted address),
  // and nothing else is mapped.
  expect(sortedEntries(walk.leaves)).toEqual(sortedEntries(want.leaves));
  // Every table pointer is there with exactly the OR of its mappers' parent flags: no extra or
  // missing table, no lost flag OR.
  expect(sortedEntries(walk.parents)).toEqual(sortedEntries(want.parents));

  // The allocator holds exactly the linked tables and the level-4 table: every lost race's frame
  // came back, nothing leaked, nothing linked is free.
  const linked = [...walk.tables].sort((a, b) => a - b);
  const allocated = run.tables.allocatedFrames().map((f) => f.startAddress as number);
  expect(allocated).toEqual([P4, ...linked].sort((a, b) => a - b));
  const owned: number[] = [];
  run.frameOwners.forEach((v, i) => {
    if (v !== 0 && v !== MAIN_OWNER) owned.push(TABLES_START + i * 4096);
  });
  expect(owned).toEqual(linked);
  const sum = (f: (o: MapperWorkerOutput) => number): number =>
    outputs.reduce((s, o) => s + f(o), 0);
  const lost = sum((o) => o.lostTableRaces);
  expect(sum((o) => o.tableFrees)).toBe(lost);
  expect(sum((o) => o.tableAllocations) - lost).toBe(linked.length);

  // After the last barrier every worker sees the same final state, the model's.
  for (const o of outputs) {
    expect(o.view).toHaveLength(run.layout.filter((p) => p.round < rounds).length);
    const mismatches = o.view.filter((v) => {
      const w = want.views.get(v.va);
      return w === undefined ? v.frame !== -1 : v.frame !== w.frame || v.flags !== w.flags;
    });
    expect(mismatches, `worker ${o.id} final view`).toEqual([]);
  }

  const alreadyMapped = sum((o) => o.alreadyMapped.reduce((s, n) => s + n, 0));
  // The contended pages really were contended.
  expect(alreadyMapped).toBeGreaterThan(0);
  return {
    workers: run.workers,
    rounds,
    lostTableRaces: lost,
    alreadyMapped,
    contendedWins: sum((o) => o.wins.reduce((s, n) => s + n, 0)),
    tables: linked.length,
    runMs: Math.max(...outputs.map((o) => o.runMs)),
    wallMs: run.wallMs,
  };
}

const summaries: Summary[] = [];

/**
 * Rounds always run (about 6,400 operations per worker); past them a run goes on, up to
 * `maxRounds`, while fewer than `minLostRaces` table races were lost and `extendMs` have not
 * passed: on a loaded machine the threads rarely share the two cores at a round start. Each run
 * fails after `timeoutMs` (workers terminated): a hang guard, not a timing assertion, so it is
 * generous (a loaded 2-core machine starting 8 tsx threads has needed more than 5 s).
 */
const MIN_ROUNDS = 100;
const RUN = {
  minRounds: MIN_ROUNDS,
  maxRounds: 1000,
  minLostRaces: 20,
  opsPerRound: 64,
  extendMs: 2500,
  timeoutMs: 60_000,
} as const;
const TEST_TIMEOUT_MS = 65_000;

const describeRun = (s: Summary): string =>
  `${s.workers} workers, ${s.rounds} rounds: ${s.lostTableRaces} lost table races, ` +
  `${s.contendedWins} contended wins, ${s.alreadyMapped} PageAlreadyMapped, ${s.tables} tables, ` +
  `run ${Math.round(s.runMs)} ms, wall ${Math.round(s.wallMs)} ms`;

describe('concurrent mappers in one address space (worker threads)', () => {
  it(
    '4 workers: no lost table race, no double frame, one winner per map, no lost update',
    async ({ annotate }) => {
      const summary = check(
        await runMappers({ ...RUN, workers: 4, seed: 0x5eed_0004 }),
        MIN_ROUNDS,
      );
      summaries.push(summary);
      await annotate(describeRun(summary), 'races');
    },
    TEST_TIMEOUT_MS,
  );

  it(
    '8 workers: the same, with four threads per core',
    async ({ annotate }) => {
      const summary = check(
        await runMappers({ ...RUN, workers: 8, seed: 0x5eed_0008 }),
        MIN_ROUNDS,
      );
      summaries.push(summary);
      await annotate(describeRun(summary), 'races');
    },
    TEST_TIMEOUT_MS,
  );

  it('the lost-table-race path really ran (compare-exchange losers freed their frames)', () => {
    expect(summaries).toHaveLength(2);
    const lost = summaries.reduce((s, x) => s + x.lostTableRaces, 0);
    expect(lost, summaries.map(describeRun).join('; ')).toBeGreaterThan(0);
  });
});
