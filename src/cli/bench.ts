/**
 * `smpsim bench shootdown` and `smpsim bench workload`: parse and check the options (every
 * mistake is one line naming the option and value, exit status 2), resolve the cost model
 * (defaults, then `--costs FILE`, then each `--cost key=value`), show a progress bar on standard
 * error when it is a terminal, print the tables and write the files.
 */

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import {
  benchUnits,
  runShootdownBench,
  type ShootdownBenchOptions,
} from '../bench/shootdown-bench.ts';
import { MAX_PAGES } from '../bench/shootdown-program.ts';
import {
  renderShootdownReport,
  shootdownPlots,
  writeShootdownFiles,
} from '../bench/shootdown-report.ts';
import { DEFAULT_VARIANTS, parseVariant, type Variant, VariantError } from '../bench/variant.ts';
import {
  MAX_UNMAP_PAGES,
  renderWorkloadReport,
  runWorkloadBench,
  WORKLOAD_DEFAULTS,
  type WorkloadOptions,
  workloadUnits,
  writeWorkloadFiles,
} from '../bench/workload.ts';
import {
  type CostModel,
  CostModelError,
  type CostOverrides,
  DEFAULT_COST_MODEL,
  parseCostAssignment,
  parseCostOverrides,
  withCostOverrides,
} from '../cpu/cost-model.ts';
import { renderBenchHtml } from '../report/bench-html.ts';
import { MAX_CPUS } from '../scenarios/scenario.ts';
import type { Io } from './replay.ts';
import { UsageError } from './usage-error.ts';

/** Options common to both benchmarks. */
interface CommonOptions {
  readonly out?: string;
  readonly quick?: boolean;
  readonly costs?: string;
  readonly cost?: readonly string[];
  readonly progress?: boolean;
  readonly html?: string;
}

/** Options of `smpsim bench shootdown`, as commander hands them over. */
export interface BenchShootdownOptions extends CommonOptions {
  readonly cpus?: string;
  readonly pages?: string;
  readonly protocols?: string;
  readonly host?: string;
  readonly workersMaxCpus?: string;
  readonly repeats?: string;
}

/** Options of `smpsim bench workload`. */
export interface BenchWorkloadOptions extends CommonOptions {
  readonly cpus?: string;
  readonly protocols?: string;
  readonly host?: string;
  readonly periods?: string;
  readonly unmapPages?: string;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** Registers `bench shootdown` and `bench workload` on `program`. */
export function registerBenchCommands(
  program: Command,
  io: Io,
  setStatus: (status: number) => void,
): void {
  const bench = program
    .command('bench')
    .description('benchmark shootdown cost: modeled cycles and wall clock');
  const common = (c: Command) =>
    c
      .option('--out <dir>', 'where the CSV, JSON and SVG files go', 'out/bench')
      .option('--quick', 'a short run (about 30 s on 2 cores)')
      .option('--costs <file>', 'cost-model overrides: a JSON object of entries')
      .option('--cost <key=value>', 'one cost-model override (repeatable)', collect)
      .option('--no-progress', 'no progress bar on standard error')
      .option('--html <file>', 'also write the tables and plots as one self-contained HTML page');
  common(
    bench
      .command('shootdown')
      .description('sweep CPUs, pages per flush and protocols on both clocks')
      .option('--cpus <list>', 'CPU counts (default 1,2,4,8,16,32,64)')
      .option('--pages <list>', 'pages per operation (default 1,8,32,33,64,512)')
      .option('--protocols <list>', `protocol variants (default ${DEFAULT_VARIANTS.join(',')})`)
      .option('--host <h>', 'deterministic, workers or both (default both)')
      .option(
        '--workers-max-cpus <n>',
        'largest CPU count run on worker threads (default: all; --quick: 4)',
      )
      .option('--repeats <n>', 'modeled rounds per point after 1 warm-up (default 3; --quick 1)'),
  ).action(async (opts: BenchShootdownOptions) => {
    setStatus(await benchShootdownCommand(opts, io));
  });
  common(
    bench
      .command('workload')
      .description('CPUs sharing a working set while one unmaps and remaps, per protocol')
      .option('--cpus <n>', `CPUs (default ${WORKLOAD_DEFAULTS.cpus})`)
      .option('--protocols <list>', 'protocol variants (default sync-ipi,batched,lazy,broadcast)')
      .option('--host <h>', 'deterministic, workers or both (default both)')
      .option('--periods <n>', `unmap/remap periods (default ${WORKLOAD_DEFAULTS.periods})`)
      .option(
        '--unmap-pages <n>',
        `pages unmapped and remapped per period (default ${WORKLOAD_DEFAULTS.unmapPages})`,
      ),
  ).action(async (opts: BenchWorkloadOptions) => {
    setStatus(await benchWorkloadCommand(opts, io));
  });
}

/** Integers from a comma-separated list, each in [min, max]. */
function intList(text: string, option: string, min: number, max: number, what: string): number[] {
  const parts = text.split(',').map((s) => s.trim());
  return parts.map((p) => {
    if (!/^\d+$/.test(p) || Number(p) < min || Number(p) > max) {
      throw new UsageError(
        `bench: ${option} ${text}: ${JSON.stringify(p)} is not ${what} (an integer from ${min} to ${max})`,
      );
    }
    return Number(p);
  });
}

function oneInt(text: string, option: string, min: number, max: number, what: string): number {
  return intList(text, option, min, max, what).length === 1
    ? intList(text, option, min, max, what)[0]!
    : (() => {
        throw new UsageError(`bench: ${option} ${text}: expected one ${what}`);
      })();
}

function variants(text: string | undefined, defaults: readonly string[]): Variant[] {
  const names = text === undefined ? defaults : text.split(',').map((s) => s.trim());
  try {
    const out = names.map(parseVariant);
    const dup = out.find((v, i) => out.findIndex((w) => w.name === v.name) !== i);
    if (dup !== undefined) throw new VariantError(`${dup.name} is listed twice`);
    return out;
  } catch (e) {
    if (e instanceof VariantError) throw new UsageError(`bench: --protocols: ${e.message}`);
    throw e;
  }
}

function hosts(text: string | undefined): { modeled: boolean; wall: boolean } {
  const h = text ?? 'both';
  if (h !== 'deterministic' && h !== 'workers' && h !== 'both') {
    throw new UsageError(`bench: --host ${h} is not one of deterministic, workers, both`);
  }
  return { modeled: h !== 'workers', wall: h !== 'deterministic' };
}

/** The cost model: defaults, then the file's entries, then each `--cost` in order. */
export function resolveCosts(opts: CommonOptions): CostModel {
  const layers: CostOverrides[] = [];
  try {
    if (opts.costs !== undefined) {
      let text: string;
      try {
        text = readFileSync(opts.costs, 'utf8');
      } catch (e) {
        throw new UsageError(
          `bench: --costs ${opts.costs}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
        );
      }
      layers.push(parseCostOverrides(text, `--costs ${opts.costs}`));
    }
    for (const a of opts.cost ?? []) layers.push(parseCostAssignment(a));
  } catch (e) {
    if (e instanceof CostModelError) throw new UsageError(`bench: ${e.message}`);
    throw e;
  }
  return withCostOverrides(DEFAULT_COST_MODEL, ...layers);
}

/** A progress bar on standard error when it is a terminal (and not `--no-progress`). */
function progressBar(
  opts: CommonOptions,
  total: number,
): { tick: (done: string) => void; stop: () => void } {
  if (opts.progress === false || process.stderr.isTTY !== true) {
    return { tick: () => {}, stop: () => {} };
  }
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: 'smpsim bench [{bar}] {value}/{total} | {eta_formatted} left | {task}',
      hideCursor: true,
      clearOnComplete: true,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { task: 'starting' });
  return { tick: (done) => bar.increment(1, { task: done }), stop: () => bar.stop() };
}

/** Ctrl-C stops the worker threads before the process exits. */
async function withSigint<T>(f: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const abort = new AbortController();
  const onSigint = () => abort.abort();
  process.once('SIGINT', onSigint);
  try {
    return await f(abort.signal);
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

/** `smpsim bench shootdown`. */
export async function benchShootdownCommand(opts: BenchShootdownOptions, io: Io): Promise<number> {
  const quick = opts.quick === true;
  const cpus = intList(opts.cpus ?? '1,2,4,8,16,32,64', '--cpus', 1, MAX_CPUS, 'a CPU count');
  const pages = intList(opts.pages ?? '1,8,32,33,64,512', '--pages', 1, MAX_PAGES, 'a page count');
  const h = hosts(opts.host);
  const o: Omit<ShootdownBenchOptions, 'onProgress' | 'signal'> = {
    cpus,
    pages,
    variants: variants(opts.protocols, DEFAULT_VARIANTS),
    costs: resolveCosts(opts),
    ...h,
    wallMaxCpus:
      opts.workersMaxCpus === undefined
        ? quick
          ? 4
          : MAX_CPUS
        : oneInt(opts.workersMaxCpus, '--workers-max-cpus', 1, MAX_CPUS, 'a CPU count'),
    warmup: 1,
    repeats:
      opts.repeats === undefined
        ? quick
          ? 1
          : 3
        : oneInt(opts.repeats, '--repeats', 1, 1000, 'a round count'),
    phaseMs: quick ? 30 : 200,
    minRounds: quick ? 5 : 10,
    warmupMs: quick ? 100 : 250,
    floorRuns: quick ? 2 : 3,
  };
  const bar = progressBar(opts, benchUnits(o));
  let result: Awaited<ReturnType<typeof runShootdownBench>>;
  try {
    result = await withSigint((signal) =>
      runShootdownBench({ ...o, onProgress: bar.tick, signal }),
    );
  } finally {
    bar.stop();
  }
  const text = renderShootdownReport(result);
  io.out(text);
  // Drawn once, for the SVG files and the HTML page.
  const plots = await shootdownPlots(result);
  const files = await writeFiles(
    () => writeShootdownFiles(result, opts.out ?? 'out/bench', plots),
    opts,
  );
  if (opts.html !== undefined) {
    writeHtml(opts.html, {
      title: 'smpsim bench shootdown',
      subtitle: `CPUs ${cpus.join(', ')} · pages ${pages.join(', ')} · ${o.variants.map((v) => v.name).join(', ')}`,
      text,
      plots: plots.map(([name, svg]) => [PLOT_CAPTIONS[name] ?? name, svg] as const),
    });
    files.push(opts.html);
  }
  io.out(`files: ${files.join(', ')}\n`);
  return 0;
}

/** What each plot shows, for the HTML page. */
const PLOT_CAPTIONS: Readonly<Record<string, string>> = {
  'latency-vs-cpus.svg': 'Latency against CPUs, per protocol',
  'latency-vs-pages.svg': 'Latency against pages per flush (the 33-page ceiling)',
  'ipis-per-protocol.svg': 'IPIs sent per operation, per protocol',
};

/** Writes a benchmark's HTML page (missing folders are created; failure is exit status 2). */
function writeHtml(path: string, page: Parameters<typeof renderBenchHtml>[0]): void {
  try {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, renderBenchHtml(page));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new UsageError(`bench: --html ${path}: cannot write the page (${code})`);
  }
}

async function writeFiles(write: () => Promise<string[]>, opts: CommonOptions): Promise<string[]> {
  try {
    return await write();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === undefined) throw e;
    throw new UsageError(
      `bench: --out ${opts.out ?? 'out/bench'}: cannot write the files (${code})`,
    );
  }
}

/** `smpsim bench workload`. */
export async function benchWorkloadCommand(opts: BenchWorkloadOptions, io: Io): Promise<number> {
  const quick = opts.quick === true;
  const h = hosts(opts.host);
  const o: Omit<WorkloadOptions, 'onProgress' | 'signal'> = {
    cpus:
      opts.cpus === undefined
        ? WORKLOAD_DEFAULTS.cpus
        : oneInt(opts.cpus, '--cpus', 2, MAX_CPUS, 'a CPU count'),
    variants: variants(opts.protocols, WORKLOAD_DEFAULTS.variants),
    costs: resolveCosts(opts),
    ...h,
    periods:
      opts.periods === undefined
        ? quick
          ? WORKLOAD_DEFAULTS.quickPeriods
          : WORKLOAD_DEFAULTS.periods
        : oneInt(opts.periods, '--periods', 1, 10_000, 'a period count'),
    unmapPages:
      opts.unmapPages === undefined
        ? WORKLOAD_DEFAULTS.unmapPages
        : oneInt(opts.unmapPages, '--unmap-pages', 1, MAX_UNMAP_PAGES, 'a page count'),
  };
  const bar = progressBar(opts, workloadUnits(o));
  let result: Awaited<ReturnType<typeof runWorkloadBench>>;
  try {
    result = await withSigint((signal) => runWorkloadBench({ ...o, onProgress: bar.tick, signal }));
  } finally {
    bar.stop();
  }
  const text = renderWorkloadReport(result);
  io.out(text);
  const files = await writeFiles(() => writeWorkloadFiles(result, opts.out ?? 'out/bench'), opts);
  if (opts.html !== undefined) {
    writeHtml(opts.html, {
      title: 'smpsim bench workload',
      subtitle: `${o.cpus} CPUs · ${o.periods} periods · ${o.variants.map((v) => v.name).join(', ')}`,
      text,
      plots: [],
    });
    files.push(opts.html);
  }
  io.out(`files: ${files.join(', ')}\n`);
  return 0;
}
