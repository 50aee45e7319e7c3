/**
 * Tests of the worker-thread host (src/smp/hosts/worker.ts, workers/cpu-worker.ts): one thread per
 * CPU gives the deterministic host's observable results on race-free scenarios; barriers work
 * across real threads (oversubscribed, so through Atomics.wait); 64 threads boot and end; a
 * deadlock is reported by CPU number within the timeout; no wake-up is lost when CPUs sleep at
 * once (no spinning); a worker that throws rejects the run and
 * leaves no thread; stop(), pause/resume and inspect work on blocked CPUs. Every run is bounded by
 * small timeouts, so a failure here is a failed test, never a hang.
 */

import { describe, expect, it } from 'vitest';
import { PhysAddr } from '../../src/addr.ts';
import { resolveScenario } from '../../src/cli/run.ts';
import { PhysFrame } from '../../src/paging/frame.ts';
import { Size4KiB } from '../../src/paging/page-size.ts';
import { buildRunReport } from '../../src/report/run-report.ts';
import { type ProgramBuilder, scenario } from '../../src/scenarios/builder.ts';
import type { Scenario } from '../../src/scenarios/scenario.ts';
import { runDeterministic } from '../../src/smp/hosts/deterministic.ts';
import {
  applyFinalState,
  runOnWorkers,
  WorkerHost,
  WorkerHostError,
  type WorkerRun,
} from '../../src/smp/hosts/worker.ts';
import { STATUS_SLEEPING } from '../../src/smp/ipi.ts';
import { Machine } from '../../src/smp/machine.ts';

const PAGE = 0x40_0000;

/** Every record's stamp belongs to its CPU in the schedule, and records come in stamp order. */
function expectConsistentTrace(run: WorkerRun): void {
  let last = -1;
  for (const r of run.records) {
    expect(run.schedule[r.step]).toBe(r.cpu);
    expect(r.step).toBeGreaterThanOrEqual(last);
    last = r.step;
  }
  expect(run.schedule).toHaveLength(run.steps);
  expect(run.schedule.every((cpu) => cpu >= 0)).toBe(true);
}

async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const t0 = Date.now();
  while (!condition()) {
    if (Date.now() - t0 > timeoutMs) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Two CPUs at barriers in opposite order: each waits for the other forever. */
function crossedBarriers(): Scenario {
  return scenario('crossed-barriers')
    .machine({ protocol: 'none' })
    .addressSpace('A', (as) => as.map4k(PAGE, 0x20_0000, 'PRESENT|WRITABLE'))
    .cpu('A', (p) => p.store(PAGE, 1).barrier('a').barrier('b'))
    .cpu('A', (p) => p.load(PAGE, 'r0').barrier('b').barrier('a'))
    .build();
}

describe('runOnWorkers: the same results as the deterministic host', () => {
  it('unmap-without-shootdown under protocol none: the same registers and the same stale TLB hit on CPU 1', async () => {
    const s = resolveScenario('unmap-without-shootdown');
    const machine = Machine.fromScenario(s, { protocol: 'none' });
    const run = await runOnWorkers(machine, { timeoutMs: 2000 });
    expect(run.deadlock).toBeUndefined();
    expect(run.stopped).toBe(false);
    expect(run.cpus.map((c) => c.end)).toEqual(['halted', 'halted']);
    const cpu1 = run.cpus[1]!.state;
    expect(cpu1.registers[1]).toBe(0x5ca1ab1en);
    expect(cpu1.stats.tlbHits).toBe(1);
    expectConsistentTrace(run);
    expect(run.lost).toBe(0);

    // The workers' final state, copied back, reports like the deterministic run.
    applyFinalState(machine, run);
    const meta = { protocol: 'none', host: 'x', seed: 1 };
    const onWorkers = buildRunReport(machine, run, meta);
    const reference = Machine.fromScenario(s, { protocol: 'none' });
    const expected = buildRunReport(reference, runDeterministic(reference), meta);
    expect(onWorkers.registers).toEqual(expected.registers);
    expect(onWorkers.stats.cpus).toEqual(expected.stats.cpus);
    expect(onWorkers.failures).toEqual(expected.failures);
    expect(onWorkers.faults).toEqual(expected.faults);
    expect(onWorkers.stats.cpus[1]!.tlb_hits).toBe(1);
    expect(onWorkers.registers[1]!['r1']).toBe('0x5ca1ab1e');
  });

  it('unmap-without-shootdown under sync-ipi: the IPI reaches CPU 1 across threads, which then faults', async () => {
    const s = resolveScenario('unmap-without-shootdown');
    const machine = Machine.fromScenario(s, { protocol: 'sync-ipi' });
    const run = await runOnWorkers(machine, { timeoutMs: 2000 });
    applyFinalState(machine, run);
    const meta = { protocol: 'sync-ipi', host: 'x', seed: 1 };
    const onWorkers = buildRunReport(machine, run, meta);
    const reference = Machine.fromScenario(s, { protocol: 'sync-ipi' });
    const expected = buildRunReport(reference, runDeterministic(reference), meta);
    expect(onWorkers.registers).toEqual(expected.registers);
    expect(onWorkers.faults.map((f) => [f.cpu, f.addr, f.error_code])).toEqual(
      expected.faults.map((f) => [f.cpu, f.addr, f.error_code]),
    );
    expect(onWorkers.stats.cpus.map((c) => c.status)).toEqual(['halted', 'faulted']);
    expect(run.cpus[1]!.state.stats.tlbHits).toBe(0);
  });

  it('a barrier-heavy 4-CPU scenario completes, every assertion holding across threads', async () => {
    const rounds = 40;
    let b = scenario('barrier-heavy')
      .machine({ protocol: 'none' })
      .addressSpace('A', (as) => {
        for (let cpu = 0; cpu < 4; cpu++)
          as.map4k(PAGE + cpu * 0x1000, 0x20_0000 + cpu * 0x1000, 'PRESENT|WRITABLE');
      });
    for (let cpu = 0; cpu < 4; cpu++) {
      b = b.cpu('A', (p: ProgramBuilder) => {
        for (let k = 1; k <= rounds; k++) {
          // Each round: write my page, meet, read my neighbour's page and check it, meet again.
          p.store(PAGE + cpu * 0x1000, k * 16 + cpu)
            .barrier(`written-${k}`)
            .load(PAGE + ((cpu + 1) % 4) * 0x1000, 'r1')
            .assert('r1', k * 16 + ((cpu + 1) % 4))
            .barrier(`read-${k}`);
        }
      });
    }
    const machine = Machine.fromScenario(b.build());
    const host = new WorkerHost(machine, { timeoutMs: 5000 });
    const run = await host.start();
    expect(run.deadlock).toBeUndefined();
    expect(run.cpus.map((c) => [c.end, c.state.status, c.state.failure])).toEqual(
      [0, 1, 2, 3].map(() => ['halted', 'halted', undefined]),
    );
    for (const c of run.cpus) expect(c.state.stats.instructions).toBe(rounds * 5);
    expectConsistentTrace(run);
    expect(host.liveThreads).toBe(0);
  });

  it('an untraced run takes per-CPU step stamps: no records, no schedule, every step counted', async () => {
    // No barriers and no IPIs: each CPU's steps do not depend on the interleaving.
    const s = scenario('own-steps')
      .machine({ protocol: 'sync-ipi' })
      .addressSpace('A', (as) => as.map4k(PAGE, 0x20_0000, 'PRESENT|WRITABLE'))
      .cpu('A', (p) =>
        p
          .store(PAGE, 7)
          .load(PAGE, 'r0')
          .load(PAGE + 0x1000, 'r1'),
      )
      .cpu('A', (p) =>
        p
          .load(PAGE, 'r0')
          .load(PAGE + 8, 'r1')
          .load(PAGE + 16, 'r2'),
      )
      .build();
    const withTrace = await runOnWorkers(Machine.fromScenario(s), { timeoutMs: 2000 });
    const machine = Machine.fromScenario(s, { trace: false });
    const run = await runOnWorkers(machine, { timeoutMs: 2000, trace: false });
    expect(withTrace.stamp).toBe('global-step');
    expect(run.stamp).toBe('cpu-step');
    expect(run.records).toHaveLength(0);
    expect(run.schedule).toHaveLength(0);
    expect(run.cpus.map((c) => c.steps)).toEqual(withTrace.cpus.map((c) => c.steps));
    expect(run.steps).toBe(run.cpus.reduce((n, c) => n + c.steps, 0));
    expect(run.steps).toBe(withTrace.steps);
    // CPU 0 faults at its third step (0x401000 is not mapped): the report carries that CPU's own
    // step number, where the traced run's carries a global stamp.
    expect(run.cpus[0]!.state.faults.map((f) => f.step)).toEqual([2]);
    expect(withTrace.schedule[withTrace.cpus[0]!.state.faults[0]!.step]).toBe(0);
  });

  it('a 64-CPU machine boots and shuts down cleanly', async () => {
    let b = scenario('sixty-four')
      .machine({ protocol: 'none' })
      .addressSpace('A', (as) => as.map4k(PAGE, 0x20_0000, 'PRESENT|WRITABLE'));
    for (let cpu = 0; cpu < 64; cpu++) b = b.cpu('A', (p) => p.load(PAGE, 'r0').barrier('end'));
    const machine = Machine.fromScenario(b.build());
    const host = new WorkerHost(machine, { timeoutMs: 5000 });
    const run = await host.start();
    expect(run.spinIterations).toBe(0); // 64 CPUs outnumber the cores: never spin
    expect(run.ackSpinIterations).toBe(0);
    expect(run.cpus).toHaveLength(64);
    expect(run.cpus.every((c) => c.end === 'halted' && c.state.status === 'halted')).toBe(true);
    expect(run.deadlock).toBeUndefined();
    expect(host.liveThreads).toBe(0);
    expect(host.phase).toBe('done');
  });
});

describe('runOnWorkers: no wake-up is lost', () => {
  it('CPUs that never spin: every IPI and every ack wakes its sleeping CPU (no slice runs out)', async () => {
    // spinIterations 0: every blocked step sleeps in Atomics.wait at once, so each IPI must
    // notify its idle target and each ack the initiator (Shootdown.wakeUp skips the notify unless
    // SLEEPING is set). A lost wake-up would sleep out its whole slice: counted in missedWakeups.
    const rounds = 40;
    let b = scenario('sleepers')
      .machine({ cpus: 3 })
      .addressSpace('A', (as) => as.map4k(PAGE, 0x20_0000, 'PRESENT|WRITABLE'))
      .cpu('A', (p) => {
        for (let r = 0; r < rounds; r++)
          p.updateFlags('4KiB', PAGE, r % 2 === 0 ? 'PRESENT' : 'PRESENT|WRITABLE').flush();
        p.barrier('end');
      });
    // CPU 2 also shoots CPU 0 and CPU 1 down, so initiators sleep while they are targets.
    b = b.cpu('A', (p) => p.barrier('end'));
    b = b.cpu('A', (p) => {
      for (let r = 0; r < 10; r++) p.updateFlags('4KiB', PAGE, 'PRESENT|WRITABLE').flush();
      p.barrier('end');
    });
    const machine = Machine.fromScenario(b.build(), { protocol: 'sync-ipi' });
    const run = await runOnWorkers(machine, {
      spinIterations: 0,
      ackSpinIterations: 0,
      timeoutMs: 5000,
      waitSliceMs: 250,
      trace: false,
    });
    expect(run.deadlock).toBeUndefined();
    expect(run.cpus.map((c) => c.end)).toEqual(['halted', 'halted', 'halted']);
    expect(run.spinIterations).toBe(0);
    expect(run.cpus.map((c) => c.missedWakeups)).toEqual([0, 0, 0]);
    // Every request was acknowledged: CPU 0 sent rounds x 2, CPU 2 sent 10 x 2.
    expect(machine.shootdown.acksTo(0)).toBe(rounds * 2);
    expect(machine.shootdown.acksTo(2)).toBe(10 * 2);
    expect(machine.shootdown.requestsTo(1)).toBe(rounds + 10);
    // Nobody is left marked asleep.
    for (let cpu = 0; cpu < 3; cpu++)
      expect(machine.shootdown.status(cpu) & STATUS_SLEEPING).toBe(0);
  });
});

describe('runOnWorkers: deadlocks, errors and stopping', () => {
  it('reports crossed barriers as a deadlock naming each CPU and its barrier, within the timeout', async () => {
    const host = new WorkerHost(Machine.fromScenario(crossedBarriers()), { timeoutMs: 300 });
    const run = await host.start();
    expect(run.wallMs).toBeLessThan(3000);
    expect(run.deadlock?.cpus).toEqual([0, 1]);
    expect(run.deadlock?.waits).toEqual([
      'cpu 0 waits at barrier a#0 (1 of 2 arrived)',
      'cpu 1 waits at barrier b#0 (1 of 2 arrived)',
    ]);
    expect(run.stopped).toBe(false);
    expect(run.cpus.map((c) => c.state.status)).toEqual(['running', 'running']);
    expect(run.cpus.some((c) => c.end === 'deadlock')).toBe(true);
    expect(host.liveThreads).toBe(0);
  });

  it('a CPU that throws mid-run rejects the run naming the CPU, and no thread is left', async () => {
    const machine = Machine.fromScenario(crossedBarriers());
    // Corrupt CPU 1's barrier table: its first barrier names an instance past the shared words,
    // so Atomics.add throws inside step() while CPU 0 already waits at barrier a.
    (machine.barriers.instanceOf[1] as number[])[1] = 1_000_000;
    const host = new WorkerHost(machine, { timeoutMs: 5000 });
    const error = await host.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(WorkerHostError);
    expect((error as WorkerHostError).cpu).toBe(1);
    expect((error as Error).message).toMatch(/^cpu 1: RangeError: /);
    expect(host.liveThreads).toBe(0);
    expect(host.phase).toBe('failed');
  });

  it('shared state a CPU cannot be rebuilt from (a level-4 table outside RAM) rejects the run', async () => {
    const machine = Machine.fromScenario(crossedBarriers());
    const space = machine.setup.spaces.get('A')!;
    const outside = PhysFrame.fromStartAddressUnchecked(
      PhysAddr.new(machine.setup.memory.bytes),
      Size4KiB,
    );
    machine.setup.spaces.set('A', { ...space, p4: outside });
    const host = new WorkerHost(machine, { timeoutMs: 5000 });
    await expect(host.start()).rejects.toThrow(
      /^cpu [01]: SharedMachineError: address space A: level-4 table 0x1000000 is not a 4 KiB frame inside RAM/,
    );
    expect(host.liveThreads).toBe(0);
  });

  it('stop() ends CPUs blocked in Atomics.wait at once, and every thread with them', async () => {
    const host = new WorkerHost(Machine.fromScenario(crossedBarriers()), { timeoutMs: 60_000 });
    const running = host.start();
    await until(() => host.phase === 'running');
    await until(() => host.liveThreads === 2);
    const t0 = Date.now();
    await host.stop();
    expect(Date.now() - t0).toBeLessThan(2000);
    const run = await running;
    expect(run.stopped).toBe(true);
    expect(run.deadlock).toBeUndefined();
    expect(run.cpus.map((c) => c.end)).toEqual(['stopped', 'stopped']);
    expect(host.liveThreads).toBe(0);
    await host.stop(); // a second stop does nothing
  });

  it('an aborted signal stops the run (the CLI wires Ctrl-C to it)', async () => {
    const controller = new AbortController();
    const running = runOnWorkers(Machine.fromScenario(crossedBarriers()), {
      timeoutMs: 60_000,
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(), 400);
    const run = await running;
    expect(run.stopped).toBe(true);
  });

  it('start() twice, or a machine that already ran, is a clear error', async () => {
    const machine = Machine.fromScenario(crossedBarriers());
    const host = new WorkerHost(machine, { timeoutMs: 200 });
    const running = host.start();
    expect(() => host.start()).toThrow(/start\(\) called twice/);
    await running;
    expect(() => new WorkerHost(machine).start()).toThrow(/already ran on workers/);
    const stepped = Machine.fromScenario(crossedBarriers());
    runDeterministic(stepped);
    expect(() => new WorkerHost(stepped).start()).toThrow(/cpu 0 of this machine has already run/);
  });
});

describe('WorkerHost: the control plane', () => {
  it('inspects, pauses and resumes blocked CPUs; time paused is not counted as waiting', async () => {
    const host = new WorkerHost(Machine.fromScenario(crossedBarriers()), { timeoutMs: 1000 });
    const running = host.start();
    await until(() => host.phase === 'running');
    // CPU 0 stores through the page (a TLB fill), then blocks at barrier a (instruction 1).
    let snap = await host.inspect(0, { tlb: true });
    while (snap.pc !== 1) snap = await host.inspect(0, { tlb: true });
    expect(snap.cpu).toBe(0);
    expect(snap.status).toBe('running');
    expect(snap.tlb?.map((e) => e.pageStart)).toEqual([PAGE]);
    const paused = await host.pause();
    expect(paused.map((s) => s.cpu)).toEqual([0, 1]);
    expect(host.phase).toBe('paused');
    await new Promise((r) => setTimeout(r, 1200)); // longer than timeoutMs, but parked
    expect(host.phase).toBe('paused');
    await host.resume();
    await expect(host.resume()).rejects.toThrow(/resume\(\): the host is running/);
    const run = await running; // then the deadlock is found
    expect(run.deadlock?.cpus).toEqual([0, 1]);
    expect((await host.inspect(1)).pc).toBe(1);
    expect(host.liveThreads).toBe(0);
  });
});

describe('WorkerHost: single-stepping paused CPUs', () => {
  const OTHER = 0x40_1000;
  /** CPU 1 caches PAGE; CPU 0 unmaps it and flushes (sync-ipi: one IPI to CPU 1). */
  const shootdown = () =>
    scenario('step-a-shootdown')
      .machine({ protocol: 'sync-ipi' })
      .addressSpace('A', (as) => {
        as.map4k(PAGE, 0x20_0000, 'PRESENT|WRITABLE');
        as.map4k(OTHER, 0x20_1000, 'PRESENT|WRITABLE');
      })
      .cpu('A', (p) => p.unmap('4KiB', PAGE, 'r1').flush())
      .cpu('A', (p) =>
        p
          .load(PAGE, 'r0')
          .load(OTHER, 'r1')
          .load(OTHER + 8, 'r2'),
      )
      .build();

  it("steps one CPU at a time from the first instruction: an IPI is serviced at the target's next step", async () => {
    const machine = Machine.fromScenario(shootdown());
    const host = new WorkerHost(machine, { timeoutMs: 2000, startPaused: true });
    const running = host.start();
    await host.whenStarted();
    expect(host.phase).toBe('paused');
    await expect(host.step(0, 0)).rejects.toThrow('step count 0 must be a positive integer');
    await expect(host.step(2)).rejects.toThrow('cpu 2 does not exist: the machine has 2 CPUs');

    let r = await host.step(1); // CPU 1 caches PAGE
    expect([r.steps, r.stopped, r.state.pc]).toEqual([1, 'ran', 1]);
    expect(r.state.tlb?.map((e) => e.pageStart)).toEqual([PAGE]);
    r = await host.step(0); // unmap
    expect([r.steps, r.stopped, r.state.pc]).toEqual([1, 'ran', 1]);
    r = await host.step(0, 5); // flush: posts the IPI and blocks for CPU 1's ack
    expect([r.steps, r.stopped, r.state.pc]).toEqual([1, 'blocked', 1]);
    expect(machine.shootdown.requestsTo(1)).toBe(1);
    r = await host.step(0); // CPU 1 is parked: nothing acknowledged, so no step
    expect([r.steps, r.stopped]).toEqual([0, 'waiting']);
    r = await host.step(1); // its instruction boundary: the IPI drops PAGE, then it loads OTHER
    expect([r.steps, r.stopped, r.state.pc]).toEqual([1, 'ran', 2]);
    expect(r.state.tlb?.map((e) => e.pageStart)).toEqual([OTHER]);
    expect(machine.shootdown.acksTo(0)).toBe(1);
    r = await host.step(0, 3); // the ack came: the flush completes, then CPU 0 halts
    expect([r.steps, r.stopped, r.state.status]).toEqual([2, 'halted', 'halted']);
    await expect(host.step(0)).rejects.toThrow(/cpu 0 has ended \(halted\)/);
    await host.resume();
    await expect(host.step(1)).rejects.toThrow(/step\(\): the host is running, not paused/);
    const run = await running;
    expect(run.cpus.map((c) => [c.end, c.steps])).toEqual([
      ['halted', 4], // unmap, flush (blocked), flush (done), the halting step
      ['halted', 4], // three loads, the halting step
    ]);
    expect(host.liveThreads).toBe(0);
  });

  it('loads a program into a parked CPU before its first step, over the control plane', async () => {
    const machine = Machine.fromScenario(shootdown());
    const host = new WorkerHost(machine, { timeoutMs: 2000, startPaused: true });
    const running = host.start();
    await host.whenStarted();
    // CPU 1 reads OTHER first and never PAGE: the shootdown finds nothing cached there.
    await host.load(1, [
      { op: 'load', addr: '0x401000', reg: 'r3' },
      { op: 'store', addr: '0x401000', value: '0x77' },
    ]);
    expect(machine.scenario.cpus[1]!.program.map((i) => i.op)).toEqual(['load', 'store']);
    const r = await host.step(1);
    expect(r.state.tlb?.map((e) => e.pageStart)).toEqual([OTHER]);
    await expect(host.load(1, [{ op: 'load', addr: '0x401000', reg: 'r3' }])).rejects.toThrow(
      /cpu 1: load\(\) needs a CPU parked before its first step/,
    );
    await expect(host.load(0, [{ op: 'load', addr: '0x800000000000', reg: 'r9' }])).rejects.toThrow(
      /cpus\[0\]\.program\[0\]/,
    );
    await host.resume();
    await expect(host.load(0, [])).rejects.toThrow(/load\(\): the host is (running|done)/);
    const run = await running;
    expect(run.cpus[1]!.steps).toBe(3); // load, store, the halting step
    expect(run.cpus[1]!.state.stats.instructions).toBe(2);
  });

  it('whenStarted() rejects when the run is stopped before every CPU started', async () => {
    const host = new WorkerHost(Machine.fromScenario(shootdown()), { startPaused: true });
    const running = host.start();
    await host.stop();
    const run = await running;
    expect(run.stopped).toBe(true);
    await expect(host.whenStarted()).rejects.toThrow(/before every CPU started|stopped/);
  });
});
