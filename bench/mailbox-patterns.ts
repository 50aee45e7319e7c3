/**
 * Question: what does the shared-memory traffic of one IPI round trip cost by itself, in the
 * simulator's layout and in the alternatives, with no simulator code in the way? Two worker
 * threads play an initiator and a busy target over one `SharedArrayBuffer` (the target polls
 * between rounds, as a busy CPU polls its WAKE word at every instruction boundary):
 *
 * - `spin, two lines`: the raw spin round trip bench/shootdown-latency.ts compares against (one
 *   word each way, each in its own 64-byte line).
 * - `spin, one line`: the same two words in one line.
 * - `smpsim`: the simulator's pattern (src/smp/shootdown.ts, layout.ts): the initiator reads the
 *   slot's fields (a request like the last: nothing to write), stores SEQ and adds to WAKE in the
 *   target's WAKE line, loads the target's STATUS word there, and spins on its own WAKE word, in
 *   a line of its own; the target, seeing its WAKE change, loads SEQ and ACK from the same line,
 *   reads the fields (its copy of the slot's line is still valid), stores its ack time next to
 *   the initiator's WAKE, adds to it, then stores ACK in its own line.
 * - `SEQ and ACK in the slot, 2 CPUs`: the simulator's earlier pattern: the initiator writes the
 *   slot's fields and SEQ in the slot's line, adds to the target's WAKE word, loads the target's
 *   STATUS word, and spins on its own WAKE word; the target, seeing its WAKE change, loads SEQ,
 *   reads the fields, compare-exchanges the slot's ACK, stores its ack time next to the
 *   initiator's WAKE and adds to it. Both CPUs' WAKE words share one line, as they did in a
 *   2-CPU machine.
 * - `SEQ and ACK in the slot, WAKE lines apart`: the same with each WAKE word in a line of its own.
 * - `mailbox line`: an alternative: the request, the target's WAKE and the ack all in the target's
 *   line; the initiator spins on the ack there (and on its own WAKE word, two words, so that
 *   mutual shootdowns could still progress).
 *
 * Rows run interleaved, in each of `--runs` rounds (default 5), so the machine's drift hits all
 * alike. Medians of the per-round-trip times, in ns, and the ratio to the two-line spin of the same
 * run. Wall clock. Run: `npx tsx bench/mailbox-patterns.ts [--runs N] [--trips N]`.
 */

import { Worker } from 'node:worker_threads';
import { machineLine, median, printTable } from './harness.ts';

const argv = process.argv.slice(2);
const arg = (name: string, fallback: number) => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
};
const RUNS = arg('--runs', 5);
const TRIPS = arg('--trips', 100_000);

/** Int32 words per 64-byte line. */
const LINE = 16;

/**
 * The two sides, as plain JavaScript run with `eval` in each thread (no TypeScript loader, no
 * simulator modules). Word offsets come from `layout`; the buffer is line-aligned (page-aligned
 * in practice), so a word's line is `index >> 4`.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
parentPort.on('message', ({ side, pattern, buffer, trips, layout: L }) => {
  const w = new Int32Array(buffer);
  const f = new Float64Array(buffer);
  Atomics.add(w, L.start, 1);
  while (Atomics.load(w, L.start) < 2) {}
  const out = new Float64Array(side === 'init' ? trips : 0);
  let t = performance.now();
  if (pattern === 'spin') {
    for (let i = 1; i <= trips; i++) {
      if (side === 'init') {
        Atomics.store(w, L.a, i);
        while (Atomics.load(w, L.b) !== i) {}
        const now = performance.now(); out[i - 1] = (now - t) * 1e6; t = now;
      } else {
        while (Atomics.load(w, L.a) !== i) {}
        Atomics.store(w, L.b, i);
      }
    }
  } else if (pattern === 'slotseq') {
    if (side === 'init') {
      for (let i = 1; i <= trips; i++) {
        w[L.slot + 2] = 1; w[L.slot + 3] = 0; w[L.slot + 4] = 1; w[L.slot + 5] = 0;
        w[L.slot + 6] = 0x400000; w[L.slot + 7] = 0;
        const seq = (w[L.slot] + 1) | 0;
        Atomics.store(w, L.slot, seq);
        Atomics.add(w, L.wakeT, 256);
        if (Atomics.load(w, L.sleepT) !== 0) Atomics.notify(w, L.wakeT);
        while (((Atomics.load(w, L.wakeI) - i) << 24) !== 0) {}
        const cycles = f[L.cyclesF];
        if (cycles < 0) throw new Error('no ack time');
        const now = performance.now(); out[i - 1] = (now - t) * 1e6; t = now;
      }
    } else {
      let serviced = 0;
      for (let i = 1; i <= trips; ) {
        const pending = Atomics.load(w, L.wakeT);
        if (((pending ^ serviced) & 0xfff00) === 0) continue;
        serviced = pending;
        const seq = Atomics.load(w, L.slot);
        if (seq === w[L.slot + 1]) continue;
        const kind = w[L.slot + 2] + w[L.slot + 3] + w[L.slot + 4] + w[L.slot + 6];
        if (kind < 0) throw new Error('bad request');
        if (Atomics.compareExchange(w, L.slot + 1, (seq - 1) | 0, seq) !== ((seq - 1) | 0)) throw new Error('lost ack');
        f[L.cyclesF] = i;
        Atomics.add(w, L.wakeI, 1);
        if (Atomics.load(w, L.sleepI) !== 0) Atomics.notify(w, L.wakeI);
        i++;
      }
    }
  } else if (pattern === 'mailbox') {
    if (side === 'init') {
      for (let i = 1; i <= trips; i++) {
        // Claim the target's inline request (free: the previous round's ack cleared it).
        if (Atomics.compareExchange(w, L.owner, 0, 1) !== 0) throw new Error('mailbox busy');
        w[L.owner + 1] = 1; w[L.owner + 2] = 0; w[L.owner + 3] = 0x400000; w[L.owner + 4] = 0;
        Atomics.add(w, L.wakeT, 256);
        if (Atomics.load(w, L.sleepT) !== 0) Atomics.notify(w, L.wakeT);
        // Two words: the ack in the target's line, and this CPU's own WAKE (requests to it).
        while (Atomics.load(w, L.ack) !== i) if (Atomics.load(w, L.wakeI) !== 0) throw new Error('unexpected request');
        const cycles = f[L.cyclesF];
        if (cycles < 0) throw new Error('no ack time');
        const now = performance.now(); out[i - 1] = (now - t) * 1e6; t = now;
      }
    } else {
      let serviced = 0;
      for (let i = 1; i <= trips; ) {
        const pending = Atomics.load(w, L.wakeT);
        if (((pending ^ serviced) & 0xfff00) === 0) continue;
        serviced = pending;
        const kind = w[L.owner + 1] + w[L.owner + 3];
        if (kind < 0) throw new Error('bad request');
        f[L.cyclesF] = i;
        w[L.owner] = 0;
        // One seq-cst store publishes the ack time and the free mailbox with it.
        Atomics.store(w, L.ack, i);
        if (Atomics.load(w, L.sleepI) !== 0) Atomics.notify(w, L.wakeI);
        i++;
      }
    }
  } else if (pattern === 'smpsim') {
    if (side === 'init') {
      for (let i = 1; i <= trips; i++) {
        // A request like the last: each field is read, none written.
        if (w[L.slot] !== 1) w[L.slot] = 1;
        if (w[L.slot + 1] !== 0) w[L.slot + 1] = 0;
        if (w[L.slot + 2] !== 1) w[L.slot + 2] = 1;
        if (w[L.slot + 3] !== 0) w[L.slot + 3] = 0;
        if (w[L.slot + 4] !== 0x400000) w[L.slot + 4] = 0x400000;
        if (w[L.slot + 5] !== 0) w[L.slot + 5] = 0;
        const seq = (w[L.seq] + 1) | 0;
        Atomics.store(w, L.seq, seq);
        Atomics.add(w, L.wakeT, 256);
        if (Atomics.load(w, L.sleepT) !== 0) Atomics.notify(w, L.wakeT);
        while (((Atomics.load(w, L.wakeI) - i) << 24) !== 0) {}
        const cycles = f[L.cyclesF];
        if (cycles < 0) throw new Error('no ack time');
        const now = performance.now(); out[i - 1] = (now - t) * 1e6; t = now;
      }
    } else {
      let serviced = 0;
      for (let i = 1; i <= trips; ) {
        const pending = Atomics.load(w, L.wakeT);
        if (((pending ^ serviced) & 0xfff00) === 0) continue;
        serviced = pending;
        const seq = Atomics.load(w, L.seq);
        if (seq === w[L.ack]) continue;
        const kind = w[L.slot] + w[L.slot + 1] + w[L.slot + 2] + w[L.slot + 4];
        if (kind < 0) throw new Error('bad request');
        f[L.cyclesF] = i;
        Atomics.add(w, L.wakeI, 1);
        if (Atomics.load(w, L.sleepI) !== 0) Atomics.notify(w, L.wakeI);
        w[L.ack] = seq;
        i++;
      }
    }
  }
  parentPort.postMessage(out, [out.buffer]);
});
`;

/** The word offsets of one pattern's variant (lines numbered from 1; line 0 is the start word). */
type Layout = Record<string, number>;

interface Variant {
  readonly name: string;
  readonly pattern: 'spin' | 'smpsim' | 'slotseq' | 'mailbox';
  readonly layout: Layout;
  readonly note: string;
}

const at = (line: number, word = 0) => line * LINE + word;

const VARIANTS: readonly Variant[] = [
  {
    name: 'spin, two lines',
    pattern: 'spin',
    layout: { start: 0, a: at(1), b: at(2) },
    note: 'the floor bench/shootdown-latency.ts uses',
  },
  {
    name: 'spin, one line',
    pattern: 'spin',
    layout: { start: 0, a: at(1), b: at(1, 8) },
    note: 'both words in one line',
  },
  {
    name: 'smpsim',
    pattern: 'smpsim',
    // As layout.ts lays out 2 CPUs: each CPU's IPI words in whole lines (WAKE, STATUS, SEQs,
    // ACKs, ack times), the slot's fields in a line of their own.
    layout: {
      start: 0,
      wakeI: at(4, 0),
      sleepI: at(4, 1),
      cyclesF: at(4, 6) / 2,
      wakeT: at(6, 0),
      sleepT: at(6, 1),
      seq: at(6, 2),
      ack: at(6, 4),
      slot: at(8),
    },
    note: 'the simulator today: SEQ and ACK in the WAKE line',
  },
  {
    name: 'SEQ and ACK in the slot, 2 CPUs',
    pattern: 'slotseq',
    // WAKE0 (initiator) and WAKE1 (target) in one line; the ack time next to WAKE0; the slot
    // in lines of its own.
    layout: {
      start: 0,
      wakeI: at(4, 0),
      sleepI: at(4, 2),
      cyclesF: at(4, 4) / 2,
      wakeT: at(4, 8),
      sleepT: at(4, 10),
      slot: at(6),
    },
    note: 'the simulator before (slot line + one WAKE line)',
  },
  {
    name: 'SEQ and ACK in the slot, WAKE lines apart',
    pattern: 'slotseq',
    layout: {
      start: 0,
      wakeI: at(4, 0),
      sleepI: at(4, 2),
      cyclesF: at(4, 4) / 2,
      wakeT: at(8, 0),
      sleepT: at(8, 2),
      slot: at(10),
    },
    note: 'each WAKE in its own line, as most pairs of a bigger machine',
  },
  {
    name: 'mailbox line',
    pattern: 'mailbox',
    // The target's line: its WAKE, the inline request, the ack and its time. The STATUS words
    // sit in a read-mostly line; the initiator's WAKE in its own.
    layout: {
      start: 0,
      wakeT: at(4, 0),
      owner: at(4, 1),
      ack: at(4, 6),
      cyclesF: at(4, 8) / 2,
      wakeI: at(6, 0),
      sleepI: at(8, 0),
      sleepT: at(8, 1),
    },
    note: 'request, WAKE and ack in the target line; a two-word spin',
  },
];

function spawn(): Worker {
  return new Worker(WORKER_SOURCE, { eval: true });
}

function run(pair: [Worker, Worker], v: Variant): Promise<number> {
  const buffer = new SharedArrayBuffer(64 * LINE * 4);
  const job = (side: 'init' | 'target') => ({
    side,
    pattern: v.pattern,
    buffer,
    trips: TRIPS,
    layout: v.layout,
  });
  const result = (w: Worker) =>
    new Promise<Float64Array>((resolve, reject) => {
      const onError = (e: Error) => {
        w.off('message', onMessage);
        reject(e);
      };
      const onMessage = (samples: Float64Array) => {
        w.off('error', onError);
        resolve(samples);
      };
      w.once('message', onMessage);
      w.once('error', onError);
    });
  const init = result(pair[0]);
  const target = result(pair[1]);
  pair[0].postMessage(job('init'));
  pair[1].postMessage(job('target'));
  return Promise.all([init, target]).then(([samples]) =>
    // The first tenth warms up (JIT, first touches).
    median(Array.from(samples.subarray(Math.floor(TRIPS / 10)))),
  );
}

async function main(): Promise<void> {
  console.log(machineLine());
  console.log(
    `bench/mailbox-patterns.ts: wall clock; ${TRIPS} round trips per row and run, ${RUNS} runs, rows interleaved; median ns per round trip`,
  );
  const pair: [Worker, Worker] = [spawn(), spawn()];
  const medians = VARIANTS.map(() => [] as number[]);
  const ratios = VARIANTS.map(() => [] as number[]);
  try {
    for (let r = 0; r < RUNS + 1; r++) {
      const row: number[] = [];
      for (const v of VARIANTS) row.push(await run(pair, v));
      if (r === 0) continue; // warm-up run
      row.forEach((ns, i) => {
        medians[i]!.push(ns);
        ratios[i]!.push(ns / row[0]!);
      });
    }
  } finally {
    await Promise.all(pair.map((w) => w.terminate()));
  }
  const head = ['pattern', 'median ns', 'run medians ns', 'x two-line spin', 'note'];
  const body = VARIANTS.map((v, i) => [
    v.name,
    median(medians[i]!).toFixed(0),
    `${Math.min(...medians[i]!).toFixed(0)}-${Math.max(...medians[i]!).toFixed(0)}`,
    `${median(ratios[i]!).toFixed(2)}x`,
    v.note,
  ]);
  printTable('Traffic of one IPI round trip (ns, medians)', head, body);
}

await main();
