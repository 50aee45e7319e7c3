/**
 * The benchmark's SVG plots, drawn with Vega-Lite (compiled to Vega and rendered by Vega's
 * headless SVG renderer: no browser, no native canvas). Every title names its clock.
 */

import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { cyclesToNs } from '../cpu/cost-model.ts';
import type { ShootdownBenchResult } from './shootdown-bench.ts';

/** Renders a Vega-Lite spec to an SVG document. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';
const WIDTH = 420;
const HEIGHT = 300;

/** The CPU count the per-page plots use: 8 if swept, else the largest swept. */
export function focusCpus(cpus: readonly number[]): number {
  return cpus.includes(8) ? 8 : Math.max(...cpus);
}

type Row = Record<string, string | number>;

function cpuAxis(values: readonly number[]) {
  return {
    field: 'cpus',
    type: 'quantitative' as const,
    title: 'CPUs',
    scale: { type: 'log' as const, base: 2 },
    axis: { values: [...values], format: 'd' },
  };
}

const variantColor = (variants: readonly string[]) => ({
  field: 'variant',
  type: 'nominal' as const,
  title: 'protocol',
  sort: [...variants],
  legend: { labelLimit: 260 },
});

/** Point shapes by variant too (one legend with the colors): coinciding lines stay distinguishable. */
const variantShape = (variants: readonly string[]) => ({ ...variantColor(variants) });

/** Latency of the 1-page operation vs CPUs, one line per variant (modeled; wall beside it). */
export function latencyVsCpusSpec(r: ShootdownBenchResult): TopLevelSpec {
  const variants = r.settings.variants;
  const charts: object[] = [];
  if (r.modeled !== undefined) {
    const values: Row[] = r.modeled.points
      .filter((p) => p.pages === 1)
      .map((p) => ({ variant: p.variant, cpus: p.cpus, ns: cyclesToNs(r.costs, p.op.median) }));
    charts.push({
      title: `modeled clock: ns at ${r.costs.clockGhz} GHz (unmap + flush of 1 page)`,
      width: WIDTH,
      height: HEIGHT,
      data: { values },
      mark: { type: 'line', point: true },
      encoding: {
        x: cpuAxis(r.settings.cpus),
        y: { field: 'ns', type: 'quantitative', title: 'latency (ns, modeled)' },
        color: variantColor(variants),
        shape: variantShape(variants),
      },
    });
  }
  if (r.wall !== undefined && r.wall.points.length > 0) {
    const values: Row[] = r.wall.points
      .filter((p) => p.pages === 1)
      .map((p) => ({ variant: p.variant, cpus: p.cpus, us: p.round.median }));
    charts.push({
      title: 'wall clock: µs per round, worker threads (median)',
      width: WIDTH,
      height: HEIGHT,
      data: { values },
      mark: { type: 'line', point: true },
      encoding: {
        x: cpuAxis(r.settings.wallCpus),
        y: {
          field: 'us',
          type: 'quantitative',
          title: 'round (µs, wall clock)',
          scale: { type: 'log' },
        },
        color: variantColor(variants),
      },
    });
  }
  return {
    $schema: SCHEMA,
    title: { text: '1-page TLB shootdown latency vs CPUs', subtitle: r.machine },
    hconcat: charts,
    resolve: { scale: { color: 'shared' } },
  } as TopLevelSpec;
}

/** The remote part (beyond 1 CPU) vs pages per operation, with the 33-page ceiling marked. */
export function latencyVsPagesSpec(r: ShootdownBenchResult): TopLevelSpec {
  const cpus = focusCpus(r.settings.cpus);
  const values: Row[] = (r.modeled?.points ?? [])
    .filter((p) => p.cpus === cpus)
    .map((p) => ({ variant: p.variant, pages: p.pages, ns: cyclesToNs(r.costs, p.remote) }));
  return {
    $schema: SCHEMA,
    title: {
      text: `Shootdown cost vs pages per operation, ${cpus} CPUs (modeled clock, ns at ${r.costs.clockGhz} GHz)`,
      subtitle:
        'operation latency minus the same operation on 1 CPU; batched flushes above 33 pages in full',
    },
    width: WIDTH + 120,
    height: HEIGHT,
    layer: [
      {
        data: { values },
        mark: { type: 'line', point: true },
        encoding: {
          x: {
            field: 'pages',
            type: 'quantitative',
            title: 'pages per operation',
            scale: { type: 'log', base: 2 },
            axis: { values: [...r.settings.pages], format: 'd' },
          },
          y: {
            field: 'ns',
            type: 'quantitative',
            title: 'cost of the other CPUs (ns, modeled)',
            scale: { type: 'symlog', constant: 100 },
            axis: { values: [0, 100, 1000, 10_000, 100_000, 1_000_000], format: ',' },
          },
          color: variantColor(r.settings.variants),
          shape: variantShape(r.settings.variants),
        },
      },
      {
        data: { values: [{ pages: 33, label: '33-page ceiling' }] },
        mark: { type: 'rule', strokeDash: [4, 4], color: 'gray' },
        encoding: { x: { field: 'pages', type: 'quantitative' } },
      },
      {
        data: { values: [{ pages: 33, label: '33-page ceiling' }] },
        mark: { type: 'text', align: 'left', dx: 4, dy: -6, color: 'gray', y: 0 },
        encoding: { x: { field: 'pages', type: 'quantitative' }, text: { field: 'label' } },
      },
    ],
  } as TopLevelSpec;
}

/** Interrupting IPIs per operation, per variant, grouped by pages (modeled; the counts are exact). */
export function ipisSpec(r: ShootdownBenchResult): TopLevelSpec {
  const cpus = focusCpus(r.settings.cpus);
  const values: Row[] = (r.modeled?.points ?? [])
    .filter((p) => p.cpus === cpus)
    .map((p) => ({ variant: p.variant, pages: p.pages, ipis: p.ipis }));
  return {
    $schema: SCHEMA,
    title: {
      text: `IPIs sent per operation, ${cpus} CPUs (modeled clock run, counted in the trace)`,
      subtitle: 'broadcast: INVLPGB instead; lazy: deferred requests, no interrupt',
    },
    width: WIDTH + 120,
    height: HEIGHT,
    data: { values },
    mark: 'bar',
    encoding: {
      x: {
        field: 'variant',
        type: 'nominal',
        title: 'protocol',
        sort: [...r.settings.variants],
        axis: { labelAngle: -30, labelLimit: 200 },
      },
      xOffset: { field: 'pages', type: 'ordinal', sort: 'ascending' },
      y: {
        field: 'ipis',
        type: 'quantitative',
        title: 'interrupting IPIs per operation',
        scale: { type: 'symlog' },
        axis: { values: [0, 1, 10, 100, 1000, 10_000], format: ',' },
      },
      color: { field: 'pages', type: 'ordinal', title: 'pages', sort: 'ascending' },
    },
  } as TopLevelSpec;
}
