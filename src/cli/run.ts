/**
 * `smpsim run FILE|NAME` and `smpsim list`: load a scenario (a file, or a built-in by name), run
 * it on a host, and print the timeline or the JSON report.
 */

import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkRun } from '../check/checker.ts';
import { renderHtmlReport } from '../report/html.ts';
import { buildRunReport, type HostRun } from '../report/run-report.ts';
import { renderTimeline } from '../report/timeline.ts';
import { CpusError, withCpus } from '../scenarios/bystanders.ts';
import { loadScenario } from '../scenarios/load.ts';
import { PROTOCOLS, type Protocol, type Scenario } from '../scenarios/scenario.ts';
import { parseSchedule, runDeterministic } from '../smp/hosts/deterministic.ts';
import { applyFinalState, WorkerHost } from '../smp/hosts/worker.ts';
import { Machine } from '../smp/machine.ts';
import type { Io } from './replay.ts';
import { UsageError } from './usage-error.ts';

/** Where the built-in scenarios live (one JSON file per scenario, named after it). */
export const BUILTIN_DIR = fileURLToPath(new URL('../../scenarios/', import.meta.url));

/** Options of `smpsim run`. */
export interface RunOptions {
  readonly protocol?: string;
  readonly host?: string;
  readonly seed?: string;
  readonly schedule?: string;
  readonly json?: boolean;
  /** Also write the self-contained HTML report to this file. */
  readonly html?: string;
  /** Run on a machine of this many CPUs: the extra ones are bystanders (scenarios/bystanders.ts). */
  readonly cpus?: string;
}

/**
 * Reads a scenario from a path, or from the built-in library when `ref` names no file. `command`
 * names the CLI command in the error for a `ref` that is neither.
 */
export function resolveScenario(ref: string, command = 'run'): Scenario {
  if (existsSync(ref) && statSync(ref).isFile())
    return loadScenario(readFileSync(ref, 'utf8'), ref);
  const builtin = `${BUILTIN_DIR}${ref}.json`;
  if (/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(ref) && existsSync(builtin)) {
    return loadScenario(readFileSync(builtin, 'utf8'), `${ref} (built-in)`);
  }
  throw new UsageError(
    `${command}: ${ref} is neither a scenario file nor a built-in scenario (see smpsim list)`,
  );
}

/** The scenario on `--cpus N` CPUs (bystanders added), or as it is without the option. */
function withCpusOption(scenario: Scenario, text: string | undefined): Scenario {
  if (text === undefined) return scenario;
  if (!/^\d+$/.test(text)) {
    throw new UsageError(
      `run: --cpus ${text} must be an integer from ${scenario.machine.cpus} to 64`,
    );
  }
  try {
    return withCpus(scenario, Number(text));
  } catch (e) {
    if (e instanceof CpusError) throw new UsageError(`run: ${e.message}`);
    throw e;
  }
}

function parseSeed(text: string | undefined): number {
  if (text === undefined) return 1;
  if (!/^\d+$/.test(text) || Number(text) > 0xffff_ffff) {
    throw new UsageError(`run: --seed ${text} must be an integer from 0 to 4294967295`);
  }
  return Number(text);
}

/** Runs a scenario; resolves to 0, or 1 when a CPU failed an assertion or the run deadlocked. */
export async function runCommand(ref: string, opts: RunOptions, io: Io): Promise<number> {
  const scenario = withCpusOption(resolveScenario(ref), opts.cpus);
  const protocol = (opts.protocol ?? scenario.machine.protocol) as Protocol;
  if (!PROTOCOLS.includes(protocol)) {
    throw new UsageError(`run: --protocol ${protocol} is not one of ${PROTOCOLS.join(', ')}`);
  }
  const host = opts.host ?? 'deterministic';
  if (host !== 'deterministic' && host !== 'workers') {
    throw new UsageError(`run: --host ${host} is not one of deterministic, workers`);
  }
  const seed = parseSeed(opts.seed);
  let schedule: number[] | undefined;
  try {
    schedule = opts.schedule === undefined ? undefined : parseSchedule(opts.schedule);
  } catch (e) {
    throw new UsageError(`run: --schedule: ${(e as Error).message}`);
  }
  if (host === 'workers' && schedule !== undefined) {
    throw new UsageError(
      'run: --schedule needs --host deterministic (worker threads interleave freely)',
    );
  }
  let machine: Machine;
  let run: HostRun;
  if (host === 'workers') {
    // Real threads write trace records faster than the host drains them: a larger ring.
    machine = Machine.fromScenario(scenario, { protocol, traceCapacity: 1 << 16 });
    const abort = new AbortController();
    // Ctrl-C stops every worker thread before the process exits.
    const onSigint = () => abort.abort();
    process.once('SIGINT', onSigint);
    try {
      const workers = await new WorkerHost(machine, { signal: abort.signal }).start();
      applyFinalState(machine, workers);
      run = workers;
    } finally {
      process.removeListener('SIGINT', onSigint);
    }
  } else {
    machine = Machine.fromScenario(scenario, { protocol });
    try {
      run = runDeterministic(machine, { seed, ...(schedule === undefined ? {} : { schedule }) });
    } catch (e) {
      if (e instanceof Error && e.name === 'ScheduleError') {
        throw new UsageError(`run: --schedule: ${e.message}`);
      }
      throw e;
    }
  }
  const hazards = checkRun(machine, run);
  const report = buildRunReport(machine, run, { protocol, host, seed }, hazards);
  if (opts.html !== undefined) {
    const page = renderHtmlReport({ scenario, report, records: run.records, hazards });
    try {
      mkdirSync(dirname(opts.html), { recursive: true });
      writeFileSync(opts.html, page);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      throw new UsageError(`run: --html ${opts.html}: cannot write the report (${code})`);
    }
    // On standard error, so that standard output stays the timeline (or the JSON) it always is.
    io.err(`smpsim: wrote the HTML report to ${opts.html}\n`);
  }
  io.out(
    opts.json
      ? `${JSON.stringify(report)}\n`
      : renderTimeline(scenario, run.schedule, run.records, report),
  );
  return report.failures.length > 0 || report.deadlock !== undefined ? 1 : 0;
}

/** Lists the built-in scenarios with the first sentence of each description. */
export function listCommand(io: Io): number {
  const names = existsSync(BUILTIN_DIR)
    ? readdirSync(BUILTIN_DIR)
        .filter((f) => f.endsWith('.json'))
        .map((f) => f.slice(0, -5))
        .sort()
    : [];
  for (const name of names) {
    const s = loadScenario(readFileSync(`${BUILTIN_DIR}${name}.json`, 'utf8'), name);
    const first = s.description.split(/(?<=\.)\s/)[0] ?? '';
    const cpus = `${s.machine.cpus} CPU${s.machine.cpus === 1 ? '' : 's'}`;
    io.out(`${name.padEnd(32)} ${cpus.padEnd(7)} ${first}\n`);
  }
  return 0;
}
