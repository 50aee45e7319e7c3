/**
 * What `smpsim bench shootdown` prints and writes: terminal tables (each titled with its clock),
 * CSV files (one row per point, every statistic), the JSON of the whole result, and the SVG
 * plots.
 */

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cyclesToNs } from '../cpu/cost-model.ts';
import { describeCalibration } from './calibration.ts';
import { type CsvColumn, toCsv } from './csv.ts';
import type { Floor } from './floors.ts';
import { focusCpus, ipisSpec, latencyVsCpusSpec, latencyVsPagesSpec, renderSvg } from './plots.ts';
import type { ShootdownBenchResult } from './shootdown-bench.ts';
import type { ModeledPoint, WallPoint } from './sweep.ts';
import { formatNumber, renderTable } from './table.ts';

const f = formatNumber;

/** The terminal report. */
export function renderShootdownReport(r: ShootdownBenchResult): string {
  const out: string[] = [];
  const ghz = r.costs.clockGhz;
  const ns = (cycles: number) => cyclesToNs(r.costs, cycles);
  out.push(`${r.machine}\n`);
  out.push(
    `smpsim bench shootdown: ${[r.modeled && 'modeled cycles (deterministic host, modeled clock)', r.wall && 'wall clock (worker-thread host)'].filter(Boolean).join(' and ')}; ${r.settings.variants.length} protocol variants, CPUs ${r.settings.cpus.join(',')}, pages ${r.settings.pages.join(',')}\n`,
  );
  out.push(`${describeCalibration(r.calibration)}\n`);
  const variants = r.settings.variants;
  const focus = focusCpus(r.settings.cpus);
  if (r.modeled !== undefined) {
    const pts = r.modeled.points;
    const at = (v: string, cpus: number, pages: number) =>
      pts.find((p) => p.variant === v && p.cpus === cpus && p.pages === pages);
    const note = `median of ${r.settings.repeats} round${r.settings.repeats > 1 ? 's' : ''} after ${r.settings.warmup} warm-up (the modeled clock is deterministic: p99, min and max are in the CSV)`;
    out.push('');
    out.push(
      renderTable(
        `Modeled clock (deterministic host): 1-page operation (unmap + flush + free), ns at ${ghz} GHz; ${note}`,
        ['protocol', ...r.settings.cpus.map((c) => `${c} CPU${c > 1 ? 's' : ''}`)],
        variants.map((v) => [
          v,
          ...r.settings.cpus.map((c) => f(ns(at(v, c, 1)?.op.median ?? Number.NaN))),
        ]),
      ),
    );
    out.push(
      renderTable(
        `Modeled clock: cost of the other CPUs at ${focus} CPUs (operation minus the same on 1 CPU), ns at ${ghz} GHz, by pages per operation (batched: a full flush above 33 pages)`,
        ['protocol', ...r.settings.pages.map((p) => `${p} pg`)],
        variants.map((v) => [
          v,
          ...r.settings.pages.map((p) => f(ns(at(v, focus, p)?.remote ?? Number.NaN))),
        ]),
      ),
    );
    out.push(
      renderTable(
        `IPIs sent per operation at ${focus} CPUs (from the trace; "+n lazy": deferred requests, "n bcast": CPUs reached by INVLPGB, one instruction per flush, neither interrupts)`,
        ['protocol', ...r.settings.pages.map((p) => `${p} pg`)],
        variants.map((v) => [
          v,
          ...r.settings.pages.map((p) => {
            const q = at(v, focus, p);
            if (q === undefined) return 'n/a';
            const extra = [
              q.lazyRequests > 0 ? `+${f(q.lazyRequests)} lazy` : '',
              q.broadcasts > 0 ? `${f(q.broadcasts)} bcast` : '',
            ].filter(Boolean);
            return extra.length > 0 && q.ipis === 0
              ? extra.join(' ')
              : [f(q.ipis), ...extra].join(' ');
          }),
        ]),
      ),
    );
  }
  if (r.wall !== undefined) {
    out.push('');
    out.push(renderFloors(r.wall.floors));
    const [wait, spin] = r.wall.floors;
    const scale = `for scale, this run's floors: wait/notify ${f(wait!.roundTrip.median)} µs, spin ${f(spin!.roundTrip.median)} µs per round trip`;
    const one = r.wall.points.filter((p) => p.pages === 1);
    out.push(
      renderTable(
        `Wall clock (worker-thread host): 1-page round (unmap + flush + free + remap), µs per round, over ~1 ms sample windows after warm-up; ${scale}`,
        ['protocol', 'CPUs', 'median', 'p99', 'min', 'max', 'windows', 'rounds', 'other CPUs'],
        one.map((p) => [
          p.variant,
          String(p.cpus),
          f(p.round.median),
          f(p.round.p99),
          f(p.round.min),
          f(p.round.max),
          String(p.round.n),
          String(p.rounds),
          f(p.remote),
        ]),
      ),
    );
    const wallFocus = focusCpus(r.settings.wallCpus);
    const wv = variants.filter((v) => r.wall!.points.some((p) => p.variant === v));
    out.push(
      renderTable(
        `Wall clock: cost of the other CPUs at ${wallFocus} CPUs (round median minus the same on 1 CPU), µs, by pages per operation`,
        ['protocol', ...r.settings.pages.map((p) => `${p} pg`)],
        wv.map((v) => [
          v,
          ...r.settings.pages.map((p) =>
            f(
              r.wall!.points.find((q) => q.variant === v && q.cpus === wallFocus && q.pages === p)
                ?.remote ?? Number.NaN,
            ),
          ),
        ]),
      ),
    );
    const startup = r.wall.runs.map((x) => x.startupMs);
    out.push(
      `worker runs: ${r.wall.runs.length}, thread start-up ${f(Math.min(...startup))}-${f(Math.max(...startup))} ms each (untimed); modeled-only variants (concurrent, early-ack) have no wall-clock rows\n`,
    );
  }
  out.push(`total ${r.seconds.toFixed(1)} s\n`);
  return out.join('\n');
}

/** The floors table. */
export function renderFloors(floors: readonly Floor[]): string {
  return renderTable(
    'Raw Atomics floors between two worker threads, measured in this run (wall clock, µs per round trip)',
    ['floor', 'median', 'p99', 'min', 'max', 'trips x runs'],
    floors.map((x) => [
      x.name,
      f(x.roundTrip.median),
      f(x.roundTrip.p99),
      f(x.roundTrip.min),
      f(x.roundTrip.max),
      `${x.trips}x${x.runs}`,
    ]),
  );
}

const summaryColumns = <T>(prefix: string, get: (p: T) => ModeledPoint['op']): CsvColumn<T>[] =>
  (['median', 'p99', 'min', 'max', 'n'] as const).map((k) => ({
    name: `${prefix}_${k}`,
    value: (p: T) => get(p)[k],
  }));

/** The modeled points as CSV (cycles, and ns at the model's clock). */
export function modeledCsv(r: ShootdownBenchResult): string {
  const ns = (c: number) => cyclesToNs(r.costs, c);
  return toCsv<ModeledPoint>(
    [
      { name: 'clock', value: () => 'modeled' },
      { name: 'host', value: () => 'deterministic' },
      { name: 'variant', value: (p) => p.variant },
      { name: 'cpus', value: (p) => p.cpus },
      { name: 'pages', value: (p) => p.pages },
      ...summaryColumns<ModeledPoint>('op_cycles', (p) => p.op),
      { name: 'op_ns_median', value: (p) => ns(p.op.median) },
      ...summaryColumns<ModeledPoint>('round_cycles', (p) => p.round),
      { name: 'remote_cycles', value: (p) => p.remote },
      { name: 'remote_ns', value: (p) => ns(p.remote) },
      { name: 'ipis_per_op', value: (p) => p.ipis },
      { name: 'lazy_requests_per_op', value: (p) => p.lazyRequests },
      { name: 'broadcasts_per_op', value: (p) => p.broadcasts },
      { name: 'clock_ghz', value: () => r.costs.clockGhz },
    ],
    r.modeled?.points ?? [],
  );
}

/** The wall-clock points as CSV (µs). */
export function wallCsv(r: ShootdownBenchResult): string {
  return toCsv<WallPoint>(
    [
      { name: 'clock', value: () => 'wall' },
      { name: 'host', value: () => 'workers' },
      { name: 'variant', value: (p) => p.variant },
      { name: 'cpus', value: (p) => p.cpus },
      { name: 'pages', value: (p) => p.pages },
      ...summaryColumns<WallPoint>('round_us', (p) => p.round),
      { name: 'timed_rounds', value: (p) => p.rounds },
      { name: 'remote_us', value: (p) => p.remote },
    ],
    r.wall?.points ?? [],
  );
}

/** The floors as CSV (µs per round trip). */
export function floorsCsv(r: ShootdownBenchResult): string {
  return toCsv<Floor>(
    [
      { name: 'clock', value: () => 'wall' },
      { name: 'floor', value: (x) => x.name },
      ...summaryColumns<Floor>('round_trip_us', (x) => x.roundTrip),
      { name: 'trips', value: (x) => x.trips },
      { name: 'runs', value: (x) => x.runs },
    ],
    r.wall?.floors ?? [],
  );
}

/** The plots of a result, as SVG documents named by their file names. */
export async function shootdownPlots(r: ShootdownBenchResult): Promise<[string, string][]> {
  const plots: [string, string][] = [
    ['latency-vs-cpus.svg', await renderSvg(latencyVsCpusSpec(r))],
  ];
  if (r.modeled !== undefined) {
    plots.push(['latency-vs-pages.svg', await renderSvg(latencyVsPagesSpec(r))]);
    plots.push(['ipis-per-protocol.svg', await renderSvg(ipisSpec(r))]);
  }
  return plots;
}

/**
 * Writes the CSV, JSON and SVG files into `dir` (created if missing); returns their paths. `drawn`:
 * the plots of `shootdownPlots(r)` when the caller has them already (each is a vega render).
 */
export async function writeShootdownFiles(
  r: ShootdownBenchResult,
  dir: string,
  drawn?: readonly [string, string][],
): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const plots = new Map(drawn ?? (await shootdownPlots(r)));
  const plot = (name: string): [string, string] => [name, plots.get(name)!];
  const files: [string, string][] = [['shootdown.json', `${JSON.stringify(r, null, 2)}\n`]];
  if (r.modeled !== undefined) {
    files.push(['shootdown-modeled.csv', modeledCsv(r)]);
    files.push(plot('latency-vs-pages.svg'), plot('ipis-per-protocol.svg'));
  }
  if (r.wall !== undefined) {
    files.push(['shootdown-wall.csv', wallCsv(r)]);
    files.push(['floors.csv', floorsCsv(r)]);
  }
  files.push(plot('latency-vs-cpus.svg'));
  const paths: string[] = [];
  for (const [name, text] of files) {
    const path = join(dir, name);
    writeFileSync(path, text);
    paths.push(path);
  }
  return paths;
}
