/**
 * `smpsim explore FILE|NAME`: the hazard kinds a scenario can reach under a protocol (or under
 * each, with `--all-protocols`), whether every schedule was run, how many, and a replayable
 * witness schedule per kind; compared with the scenario's `expect` block (exit 1 on a mismatch).
 */

import { availableParallelism } from 'node:os';
import cliProgress from 'cli-progress';
import { renderTable } from '../bench/table.ts';
import { checkExpect, describeMismatch, type ExpectCheck } from '../explore/expect.ts';
import {
  DEFAULT_MAX_SCHEDULES,
  type ExploreProgress,
  type ExploreResult,
  Explorer,
} from '../explore/explore.ts';
import { PROTOCOLS, type Protocol } from '../scenarios/scenario.ts';
import type { Io } from './replay.ts';
import { resolveScenario } from './run.ts';
import { UsageError } from './usage-error.ts';

/** Options of `smpsim explore`, as commander hands them over. */
export interface ExploreCliOptions {
  readonly protocol?: string;
  readonly allProtocols?: boolean;
  readonly maxSchedules?: string;
  readonly seed?: string;
  readonly jobs?: string;
  readonly json?: boolean;
}

/** The largest `--max-schedules`. */
export const MAX_SCHEDULES_LIMIT = 100_000_000;
/** The most `--jobs`. */
export const MAX_JOBS = 64;

/** An integer option from `min` to `max`, or a UsageError naming the option and the value. */
function intOption(
  name: string,
  text: string | undefined,
  min: number,
  max: number,
  fallback: number,
): number {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new UsageError(
      `explore: ${name} ${JSON.stringify(text)} must be an integer from ${min} to ${max}`,
    );
  }
  return Number(text);
}

/** `--schedule '0*2,1'` for a shell: `*` would otherwise be a glob. */
function shellWord(s: string): string {
  return /^[A-Za-z0-9._/-]+$/.test(s) ? s : `'${s.replaceAll("'", "'\\''")}'`;
}

/** The progress bar on a terminal's standard error: schedules run and hazard kinds found. */
class ProgressBar {
  private readonly bar: cliProgress.SingleBar;
  private mode: ExploreProgress['mode'] | undefined;

  constructor(
    stream: NodeJS.WriteStream,
    private readonly protocol: string,
  ) {
    this.bar = new cliProgress.SingleBar({
      stream,
      format: 'explore {protocol} {mode} [{bar}] {value}/{total} schedules | hazards: {found}',
      clearOnComplete: true,
      // Not hidden: cli-progress restores a hidden cursor only with its own SIGINT handler,
      // which would keep Ctrl-C from ending the process.
      hideCursor: false,
      // Exploration is synchronous between worker results: redraw from update() itself.
      synchronousUpdate: true,
      barsize: 24,
    });
  }

  readonly update = (p: ExploreProgress): void => {
    const payload = {
      protocol: this.protocol,
      mode: p.mode === 'exhaustive' ? 'walk' : 'random',
      found: p.found.length === 0 ? 'none yet' : p.found.join(', '),
    };
    if (this.mode !== p.mode) {
      if (this.mode !== undefined) this.bar.stop();
      this.mode = p.mode;
      this.bar.start(p.total, p.schedules, payload);
      return;
    }
    this.bar.update(p.schedules, payload);
  };

  stop(): void {
    this.bar.stop();
  }
}

/** Runs `smpsim explore`; resolves to 0, or 1 when a result contradicts the `expect` block. */
export async function exploreCommand(
  ref: string,
  opts: ExploreCliOptions,
  io: Io,
  progress?: NodeJS.WriteStream,
): Promise<number> {
  const scenario = resolveScenario(ref, 'explore');
  if (opts.allProtocols && opts.protocol !== undefined) {
    throw new UsageError('explore: give either --protocol or --all-protocols, not both');
  }
  if (opts.protocol !== undefined && !(PROTOCOLS as readonly string[]).includes(opts.protocol)) {
    throw new UsageError(
      `explore: --protocol ${opts.protocol} is not one of ${PROTOCOLS.join(', ')}`,
    );
  }
  const maxSchedules = intOption(
    '--max-schedules',
    opts.maxSchedules,
    1,
    MAX_SCHEDULES_LIMIT,
    DEFAULT_MAX_SCHEDULES,
  );
  const seed = intOption('--seed', opts.seed, 0, 0xffff_ffff, 1);
  const jobs = intOption(
    '--jobs',
    opts.jobs,
    1,
    MAX_JOBS,
    Math.min(MAX_JOBS, availableParallelism()),
  );
  const protocols: readonly Protocol[] = opts.allProtocols
    ? PROTOCOLS
    : [(opts.protocol as Protocol | undefined) ?? scenario.machine.protocol];

  const explorer = new Explorer({ jobs });
  const results: ExploreResult[] = [];
  try {
    for (const protocol of protocols) {
      const bar = progress?.isTTY ? new ProgressBar(progress, protocol) : undefined;
      try {
        results.push(
          await explorer.explore(scenario, {
            protocol,
            maxSchedules,
            seed,
            ...(bar === undefined ? {} : { onProgress: bar.update }),
          }),
        );
      } finally {
        bar?.stop();
      }
    }
  } finally {
    await explorer.close();
  }

  const checks = results.map((r) => checkExpect(scenario, r));
  if (opts.json) {
    for (const r of results) io.out(`${JSON.stringify(r)}\n`);
    for (const c of checks) {
      if (!c.ok) {
        io.err(`smpsim: explore: expect mismatch under ${c.protocol}: ${describeMismatch(c)}\n`);
      }
    }
  } else if (opts.allProtocols) {
    io.out(renderProtocolTable(ref, scenario.name, results, checks, seed));
  } else {
    io.out(renderOne(ref, scenario.name, results[0]!, checks[0]!, seed));
  }
  return checks.every((c) => c.ok) ? 0 : 1;
}

/** How the schedules were chosen: all of them, or random ones because there are too many. */
function how(r: ExploreResult, seed: number): string {
  return r.exhaustive
    ? 'exhaustive'
    : `random (seed ${seed}; the tree has more than ${r.schedules})`;
}

function verdict(c: ExpectCheck): string {
  if (c.expected === undefined) return '(not in expect)';
  const listed = c.expected.length === 0 ? '[]' : c.expected.join(', ');
  return c.ok ? `${listed}: ok` : `${listed}: MISMATCH, ${describeMismatch(c)}`;
}

function renderOne(
  ref: string,
  name: string,
  r: ExploreResult,
  check: ExpectCheck,
  seed: number,
): string {
  const lines = [
    `smpsim explore ${name}: protocol ${r.protocol}, ${r.schedules} schedules, ${how(r, seed)}`,
    `reachable: ${r.reachable.length === 0 ? 'none' : r.reachable.join(', ')}`,
  ];
  if (r.reachable.length > 0) {
    lines.push(
      `witnesses (replay: smpsim run ${shellWord(ref)} --protocol ${r.protocol} --schedule S):`,
    );
    const width = Math.max(...r.reachable.map((k) => k.length));
    for (const k of r.reachable) lines.push(`  ${k.padEnd(width)}  ${shellWord(r.witness[k]!)}`);
  }
  lines.push(`expect: ${verdict(check)}`);
  return `${lines.join('\n')}\n`;
}

function renderProtocolTable(
  ref: string,
  name: string,
  results: readonly ExploreResult[],
  checks: readonly ExpectCheck[],
  seed: number,
): string {
  const head = ['protocol', 'schedules', 'exhaustive', 'reachable', 'expect'];
  const rows = results.map((r, i) => [
    r.protocol,
    String(r.schedules),
    r.exhaustive ? 'yes' : `no (seed ${seed})`,
    r.reachable.length === 0 ? '-' : r.reachable.join(', '),
    verdict(checks[i]!),
  ]);
  // Every column but the schedule count aligned left.
  const out = [
    renderTable(`smpsim explore ${name}: every protocol`, head, rows, [0, 2, 3, 4]).trimEnd(),
  ];
  const witnessed = results.filter((r) => r.reachable.length > 0);
  if (witnessed.length > 0) {
    out.push(`witnesses (replay: smpsim run ${shellWord(ref)} --protocol P --schedule S):`);
    const pw = Math.max(...witnessed.map((r) => r.protocol.length));
    const kw = Math.max(...witnessed.flatMap((r) => r.reachable.map((k) => k.length)));
    for (const r of witnessed) {
      for (const k of r.reachable) {
        out.push(`  ${r.protocol.padEnd(pw)}  ${k.padEnd(kw)}  ${shellWord(r.witness[k]!)}`);
      }
    }
  }
  return `${out.join('\n')}\n`;
}
