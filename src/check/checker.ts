/**
 * The coherence checker: reads a finished run's trace and reports every hazard of the scenario
 * spec ("Hazard kinds"). Work in progress: only `deadlock` and `dropped-flush` are classified yet.
 */

import type { HostRun } from '../report/run-report.ts';
import type { Machine } from '../smp/machine.ts';
import { decodeEvent } from '../trace/events.ts';
import type { Hazard } from './hazard.ts';

/** Every hazard of `run` on `machine`, in the order their offending events happened. */
export function checkRun(machine: Machine, run: HostRun): Hazard[] {
  const out: Hazard[] = [];
  for (const r of run.records) {
    const e = decodeEvent(r);
    if (e.type === 'flush' && e.outcome === 'dropped') {
      out.push({
        kind: 'dropped-flush',
        cpu: e.cpu,
        addr: e.page,
        frames: [],
        step: e.step,
        why: 'a MapperFlush was neither flushed nor ignored',
        story: [],
      });
    }
  }
  if (run.deadlock !== undefined) {
    out.push({
      kind: 'deadlock',
      cpu: run.deadlock.cpus[0] ?? 0,
      addr: undefined,
      frames: [],
      step: run.steps,
      why: run.deadlock.waits.join('; '),
      story: [],
    });
  }
  void machine;
  return out;
}
