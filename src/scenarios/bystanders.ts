/**
 * `withCpus`: a scenario on a bigger machine (`smpsim run --cpus N`). The CPUs the scenario does
 * not program are *bystanders*: they run in CPU 0's address space and do nothing, but stay in its
 * cpumask until the scenario's own CPUs are done, as idle cores running other threads of the same
 * process do. So every `sync-ipi` or `batched` flush of that space interrupts them too, and a
 * `broadcast` reaches them: the shootdown's fan-out grows with N while the scenario's story stays
 * the same.
 *
 * How: every program, the scenario's and the bystanders', ends with one barrier that no program
 * names already. A CPU that faults withdraws from it (barrier.ts), so nobody waits for it; the
 * bystanders pass once every scenario CPU has arrived or withdrawn. What changes for the scenario's
 * own CPUs: one that reaches the end of its program waits there, in its cpumask and servicing IPIs,
 * until the others are done, where it used to halt and leave the cpumask; so it also receives
 * the IPIs of flushes made after its last instruction. The barrier is an epoch boundary and a sync
 * point, as the halt that follows it is: a batch goes out and lazy requests apply at the same point
 * of its program.
 */

import { MAX_CPUS, type Scenario } from './scenario.ts';

/** The end barrier's name, made unique against the scenario's own barriers by a suffix. */
const END = 'bystanders-end';

/** A `--cpus` value the scenario cannot take: the message names the value and the rule. */
export class CpusError extends RangeError {
  override readonly name = 'CpusError';
}

/**
 * `scenario` on a machine of `cpus` CPUs (its own count up to 64); the scenario itself when
 * `cpus` is its own count.
 *
 * @throws CpusError if `cpus` is not an integer from the scenario's CPU count to 64.
 */
export function withCpus(scenario: Scenario, cpus: number): Scenario {
  const own = scenario.machine.cpus;
  if (!Number.isInteger(cpus) || cpus < own || cpus > MAX_CPUS) {
    throw new CpusError(
      `--cpus ${cpus}: ${scenario.name} programs ${own} CPU${own === 1 ? '' : 's'}, so the machine needs from ${own} to ${MAX_CPUS}`,
    );
  }
  if (cpus === own) return scenario;
  const taken = new Set<string>();
  for (const cpu of scenario.cpus)
    for (const ins of cpu.program) if (ins.op === 'barrier') taken.add(ins.name);
  let name = END;
  for (let k = 2; taken.has(name); k++) name = `${END}-${k}`;
  const end = { op: 'barrier', name } as const;
  const as = scenario.cpus[0]!.as;
  return {
    ...scenario,
    machine: { ...scenario.machine, cpus },
    cpus: [
      ...scenario.cpus.map((cpu) => ({ as: cpu.as, program: [...cpu.program, end] })),
      ...Array.from({ length: cpus - own }, () => ({ as, program: [end] })),
    ],
  };
}
