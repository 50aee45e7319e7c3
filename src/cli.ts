/**
 * Entry point of the `smpsim` command (`npx tsx src/cli.ts …`, or the installed `smpsim` bin).
 */

import { main } from './cli/program.ts';

process.exitCode = await main(process.argv.slice(2));
