/**
 * The `smpsim` command line: subcommands, their options and their exit statuses.
 *
 * Exit statuses: 0 success; 1 a check failed (`replay --check`), a `run` ended with a failed
 * `assert` or a deadlock, or `explore` found other hazards than the scenario's `expect` block; 2 bad input or usage (the message names the file, line and field, or the
 * scenario path); 3 the crate would have panicked (`replay`).
 */

import { Command, CommanderError } from 'commander';
import { MemoryError } from '../memory/physical-memory.ts';
import { ReplayFormatError } from '../replay/format.ts';
import { ScenarioError } from '../scenarios/load.ts';
import { registerBenchCommands } from './bench.ts';
import { type ExploreCliOptions, exploreCommand } from './explore.ts';
import { type Io, replayCheckCommand, replayCommand } from './replay.ts';
import { listCommand, type RunOptions, runCommand } from './run.ts';
import { UsageError } from './usage-error.ts';

const processIo: Io = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
};

/** Errors that are the user's input, reported in one line with status 2. */
function isInputError(e: unknown): e is Error {
  return (
    e instanceof UsageError ||
    e instanceof ReplayFormatError ||
    e instanceof ScenarioError ||
    e instanceof MemoryError
  );
}

/** Runs the CLI with `argv` (without the node and script entries); resolves to the exit status. */
export async function main(argv: readonly string[], io: Io = processIo): Promise<number> {
  let status = 0;
  const program = new Command()
    .name('smpsim')
    .description(
      'A multi-core SMP paging simulator: x86_64 page tables, per-CPU TLBs, TLB shootdowns.',
    )
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) });

  program
    .command('replay')
    .description('run a mapper-replay/1 file (or - for standard input) and print the result stream')
    .argument('[file]', 'replay input, or - for standard input')
    .option('--check <dir>', 'run every NAME.in.jsonl in DIR against NAME.out.jsonl')
    .action((file: string | undefined, opts: { check?: string }) => {
      if (opts.check !== undefined) {
        if (file !== undefined)
          throw new UsageError('replay: give either FILE or --check DIR, not both');
        status = replayCheckCommand(opts.check, io);
      } else {
        if (file === undefined)
          throw new UsageError('replay: missing FILE (or - for standard input, or --check DIR)');
        status = replayCommand(file, io);
      }
    });

  program
    .command('run')
    .description('run a smpsim-scenario/1 file or a built-in scenario and print its timeline')
    .argument('<scenario>', 'a scenario file, or the name of a built-in scenario (smpsim list)')
    .option(
      '--protocol <p>',
      "none, sync-ipi, batched, lazy or broadcast (default: the scenario's)",
    )
    .option(
      '--host <h>',
      'deterministic (default: one thread, reproducible) or workers (one thread per CPU)',
    )
    .option('--seed <n>', 'seed of the deterministic scheduler (default 1)')
    .option('--schedule <s>', 'explicit CPU order, e.g. 0,1*3,0 (then the seed continues)')
    .option('--json', 'print the JSON report instead of the timeline')
    .option(
      '--cpus <n>',
      "a machine of N CPUs: the ones the scenario does not program idle in CPU 0's address space until its CPUs are done",
    )
    .option('--html <file>', 'also write a self-contained HTML report of the run to FILE')
    .action(async (ref: string, opts: RunOptions) => {
      status = await runCommand(ref, opts, io);
    });

  program
    .command('explore')
    .description(
      'run every schedule of a scenario (or seeded random ones) and report the reachable hazards',
    )
    .argument('<scenario>', 'a scenario file, or the name of a built-in scenario (smpsim list)')
    .option(
      '--protocol <p>',
      "none, sync-ipi, batched, lazy or broadcast (default: the scenario's)",
    )
    .option('--all-protocols', "explore under every protocol, one row each, against 'expect'")
    .option(
      '--max-schedules <n>',
      'walk every schedule if there are at most N, else run N random ones (default 10000)',
    )
    .option('--seed <n>', 'seed of the random schedules (default 1)')
    .option('--jobs <n>', 'worker threads for large trees (default: the number of cores)')
    .option('--json', 'print the JSON object of the scenario spec (one line per protocol)')
    .action(async (ref: string, opts: ExploreCliOptions) => {
      // The progress bar goes to a terminal's standard error only, never into captured output.
      const tty = io === processIo && process.stderr.isTTY ? process.stderr : undefined;
      status = await exploreCommand(ref, opts, io, tty);
    });

  program
    .command('list')
    .description('list the built-in scenarios')
    .action(() => {
      status = listCommand(io);
    });

  registerBenchCommands(program, io, (s) => {
    status = s;
  });

  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version are successes; everything else commander rejects is a usage error.
      return e.exitCode === 0 ? 0 : 2;
    }
    if (isInputError(e)) {
      io.err(`smpsim: error: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  return status;
}
