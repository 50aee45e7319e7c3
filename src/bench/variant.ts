/**
 * What `smpsim bench` compares: a shootdown protocol plus optional ablations, written
 * `PROTOCOL[+ABLATION…]` (`sync-ipi+early-ack`). Each ablation is defined by how it is modeled:
 *
 * - `concurrent`: local and remote flushes overlap (IPIs leave before the local invalidation);
 *   modeled clock only (`modeled-clock.ts`, `concurrentFlush`).
 * - `early-ack`: targets acknowledge before invalidating; modeled clock only (`earlyAck`).
 * - `lazy-tlb-skip`: idle CPUs are in lazy-TLB mode and get no shootdown; a change of the
 *   program (`shootdown-program.ts`, `lazyTlb`), so it runs on both hosts.
 */

import { PROTOCOLS, type Protocol } from '../scenarios/scenario.ts';

/** The ablations and what each changes. */
export const ABLATIONS = {
  concurrent:
    'local and remote flushes overlap: IPIs leave before the local invlpg (modeled clock only)',
  'early-ack': 'targets acknowledge on interrupt entry, before invalidating (modeled clock only)',
  'lazy-tlb-skip':
    'idle CPUs are in lazy-TLB mode, out of the cpumask, and flush when they come back',
} as const;

export type Ablation = keyof typeof ABLATIONS;

/** One protocol variant of a sweep. */
export interface Variant {
  /** As written: `sync-ipi+early-ack`. */
  readonly name: string;
  readonly protocol: Protocol;
  readonly concurrent: boolean;
  readonly earlyAck: boolean;
  readonly lazyTlbSkip: boolean;
  /** False when an ablation exists only on the modeled clock. */
  readonly onWorkers: boolean;
}

/** The default sweep: the four protocols, then sync-ipi with each ablation. */
export const DEFAULT_VARIANTS = [
  'sync-ipi',
  'batched',
  'lazy',
  'broadcast',
  'sync-ipi+concurrent',
  'sync-ipi+early-ack',
  'sync-ipi+lazy-tlb-skip',
] as const;

/** A bad variant name; the message names it and what is allowed. */
export class VariantError extends Error {
  override readonly name = 'VariantError';
}

/** Parses `PROTOCOL[+ABLATION…]`. */
export function parseVariant(text: string): Variant {
  const [protocol, ...ablations] = text
    .trim()
    .split('+')
    .map((s) => s.trim());
  if (!(PROTOCOLS as readonly string[]).includes(protocol ?? '')) {
    throw new VariantError(
      `protocol ${JSON.stringify(protocol)} in ${JSON.stringify(text)} is not one of ${PROTOCOLS.join(', ')}`,
    );
  }
  for (const a of ablations) {
    if (!(a in ABLATIONS)) {
      throw new VariantError(
        `ablation ${JSON.stringify(a)} in ${JSON.stringify(text)} is not one of ${Object.keys(ABLATIONS).join(', ')}`,
      );
    }
  }
  if (new Set(ablations).size !== ablations.length) {
    throw new VariantError(`${JSON.stringify(text)} names an ablation twice`);
  }
  const has = (a: Ablation) => ablations.includes(a);
  return {
    name: [protocol, ...ablations].join('+'),
    protocol: protocol as Protocol,
    concurrent: has('concurrent'),
    earlyAck: has('early-ack'),
    lazyTlbSkip: has('lazy-tlb-skip'),
    onWorkers: !has('concurrent') && !has('early-ack'),
  };
}
