/**
 * The shootdown protocols on the deterministic host, each against its definition in the scenario
 * spec: when remote TLB entries disappear relative to `flush()`, what is sent when, and that two
 * CPUs shooting each other down never deadlock; and that wakers notify only sleeping CPUs, and the
 * ack count a wake word carries survives its 16-bit wrap.
 */

import { describe, expect, it } from 'vitest';
import { resolveScenario } from '../../src/cli/run.ts';
import { StepResult } from '../../src/cpu/cpu.ts';
import { scenario } from '../../src/scenarios/builder.ts';
import type { Scenario } from '../../src/scenarios/scenario.ts';
import { runDeterministic } from '../../src/smp/hosts/deterministic.ts';
import { STATUS_LEFT, STATUS_SLEEPING } from '../../src/smp/ipi.ts';
import { Machine } from '../../src/smp/machine.ts';
import { decodeEvent, type TraceEvent } from '../../src/trace/events.ts';

const PAGE = 0x40_0000;

function run(s: Scenario, protocol: string, seed = 1) {
  const machine = Machine.fromScenario(s, { protocol });
  const result = runDeterministic(machine, { seed });
  return { machine, result, events: result.records.map(decodeEvent) };
}

/** The step at which an event of `type` (matching `pred`) first happened, or -1. */
function stepOf(events: readonly TraceEvent[], pred: (e: TraceEvent) => boolean): number {
  return events.find(pred)?.step ?? -1;
}

describe('the example scenario under every protocol', () => {
  const example = resolveScenario('unmap-without-shootdown');
  for (const seed of [1, 2, 3, 4, 5, 6]) {
    it(`none: cpu1 still reads the unmapped page through its TLB (seed ${seed})`, () => {
      const { machine } = run(example, 'none', seed);
      expect(machine.cpus[1]!.status).toBe('halted');
      expect(machine.cpus[1]!.register(1)).toBe(0x5ca1ab1en);
    });
    for (const protocol of ['sync-ipi', 'batched', 'lazy', 'broadcast']) {
      it(`${protocol}: cpu1's entry is gone before it loads again, so it faults (seed ${seed})`, () => {
        const { machine } = run(example, protocol, seed);
        const cpu1 = machine.cpus[1]!;
        expect(cpu1.status).toBe('faulted');
        expect(cpu1.faults[0]).toMatchObject({ addr: PAGE, errorCode: 0 });
        expect(cpu1.register(1)).toBe(0n);
      });
    }
  }
});

/** CPU 0 unmaps the page both cached and flushes; CPU 1 keeps running other work meanwhile. */
function unmapWhileCached(
  extra: (p: import('../../src/scenarios/builder.ts').ProgramBuilder) => unknown = () => {},
) {
  return scenario('unmap-while-cached')
    .machine({ cpus: 2 })
    .addressSpace('A', (as) =>
      as
        .map4k(PAGE, 0x20_0000, 'PRESENT|WRITABLE')
        .map4k(PAGE + 0x1000, 0x20_1000, 'PRESENT|WRITABLE'),
    )
    .cpu('A', (p) =>
      p.load(PAGE, 'r0').barrier('cached').unmap('4KiB', PAGE).flush().barrier('done'),
    )
    .cpu('A', (p) => {
      p.load(PAGE, 'r0').barrier('cached');
      extra(p);
      p.barrier('done');
    })
    .build();
}

describe('sync-ipi', () => {
  it('the target invalidates before the initiator’s flush() returns', () => {
    for (let seed = 1; seed <= 10; seed++) {
      const { events } = run(unmapWhileCached(), 'sync-ipi', seed);
      const received = stepOf(events, (e) => e.type === 'ipi-receive' && e.cpu === 1);
      const done = stepOf(events, (e) => e.type === 'shootdown-done' && e.cpu === 0);
      expect(received).toBeGreaterThanOrEqual(0);
      expect(done).toBeGreaterThan(received);
      const evict = events.find((e) => e.type === 'tlb-evict' && e.cpu === 1);
      expect(evict).toMatchObject({ reason: 'shootdown', page: PAGE });
    }
  });

  it('interrupts only the CPUs in the address space’s cpumask', () => {
    const s = scenario('cpumask')
      .machine({ cpus: 3 })
      .addressSpace('A', (as) => as.map4k(PAGE, 0x20_0000, 'PRESENT|WRITABLE'))
      .addressSpace('B', (as) => as.map4k(PAGE, 0x30_0000, 'PRESENT|WRITABLE'))
      .cpu('A', (p) => p.barrier('go').unmap('4KiB', PAGE).flush().barrier('end'))
      .cpu('A', (p) => p.load(PAGE, 'r0').barrier('go').barrier('end'))
      .cpu('B', (p) => p.load(PAGE, 'r0').barrier('go').barrier('end'))
      .build();
    const { events, machine } = run(s, 'sync-ipi');
    const targets = events
      .filter((e) => e.type === 'ipi-send')
      .map((e) => (e as { target: number }).target);
    expect(targets).toEqual([1]);
    // CPU 2 keeps its entry for B's page, which was never stale.
    expect(machine.cpus[2]!.tlb.entries().map((e) => e.pageStart)).toContain(PAGE);
  });

  it('reaches CPUs 32-63 through the cpumask’s second word (40 CPUs), and only those in the space', () => {
    const inA = new Set([1, 31, 33, 39]);
    let b = scenario('cpumask-wide')
      .machine({ cpus: 40 })
      .addressSpace('A', (as) => as.map4k(PAGE, 0x20_0000, 'PRESENT|WRITABLE'))
      .addressSpace('B', (as) => as.map4k(PAGE, 0x30_0000, 'PRESENT|WRITABLE'))
      .cpu('A', (p) => p.barrier('go').unmap('4KiB', PAGE).flush().barrier('end'));
    for (let c = 1; c < 40; c++)
      b = b.cpu(inA.has(c) ? 'A' : 'B', (p) => p.load(PAGE, 'r0').barrier('go').barrier('end'));
    const { events } = run(b.build(), 'sync-ipi');
    const targets = events
      .filter((e) => e.type === 'ipi-send')
      .map((e) => (e as { target: number }).target);
    expect(targets).toEqual([1, 31, 33, 39]);
  });

  it('two CPUs shooting each other down at once never deadlock', () => {
    const s = scenario('mutual')
      .machine({ cpus: 2 })
      .addressSpace('A', (as) =>
        as
          .map4k(PAGE, 0x20_0000, 'PRESENT|WRITABLE')
          .map4k(PAGE + 0x1000, 0x20_1000, 'PRESENT|WRITABLE'),
      )
      .cpu('A', (p) =>
        p
          .load(PAGE, 'r0')
          .load(PAGE + 0x1000, 'r1')
          .barrier('go')
          .unmap('4KiB', PAGE)
          .flush()
          .barrier('end'),
      )
      .cpu('A', (p) =>
        p
          .load(PAGE, 'r0')
          .load(PAGE + 0x1000, 'r1')
          .barrier('go')
          .unmap('4KiB', PAGE + 0x1000)
          .flush()
          .barrier('end'),
      )
      .build();
    let overlapped = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const { result, machine, events } = run(s, 'sync-ipi', seed);
      expect(result.deadlock).toBeUndefined();
      expect(machine.cpus.every((c) => c.status === 'halted')).toBe(true);
      // Both rounds completed; count runs in which both were in flight at the same time.
      const sends = events.filter((e) => e.type === 'ipi-send').map((e) => e.step);
      const dones = events.filter((e) => e.type === 'shootdown-done').map((e) => e.step);
      expect(sends).toHaveLength(2);
      expect(dones).toHaveLength(2);
      if (Math.max(...sends) < Math.min(...dones)) overlapped++;
    }
    expect(overlapped).toBeGreaterThan(0);
  });
});

describe('batched', () => {
  it('flush() sends nothing; one round goes out at the next sync point (the barrier)', () => {
    const { events } = run(unmapWhileCached(), 'batched');
    const flushStep = stepOf(events, (e) => e.type === 'flush' && e.cpu === 0);
    const send = events.find((e) => e.type === 'ipi-send');
    expect(send).toMatchObject({ cpu: 0, target: 1, full: false, pages: 1 });
    expect(send!.step).toBeGreaterThan(flushStep);
  });

  it('more than 33 pages in a batch become one full flush (tlb_single_page_flush_ceiling)', () => {
    const pages = 34;
    const s = scenario('big-batch')
      .machine({ cpus: 2 })
      .addressSpace('A', (as) => {
        for (let i = 0; i < pages; i++)
          as.map4k(PAGE + i * 0x1000, 0x20_0000 + i * 0x1000, 'PRESENT|WRITABLE');
      })
      .cpu('A', (p) => {
        p.barrier('cached');
        for (let i = 0; i < pages; i++) p.unmap('4KiB', PAGE + i * 0x1000).flush();
        p.barrier('done');
      })
      .cpu('A', (p) => {
        for (let i = 0; i < 8; i++) p.load(PAGE + i * 0x1000, 'r0');
        p.barrier('cached').barrier('done');
      })
      .build();
    const { events, machine } = run(s, 'batched');
    const sends = events.filter((e) => e.type === 'ipi-send');
    expect(sends).toHaveLength(1);
    expect(sends[0]).toMatchObject({ full: true });
    expect(machine.cpus[1]!.tlb.validCount()).toBe(0);
  });

  it('33 pages still go page by page', () => {
    const s = scenario('ceiling')
      .machine({ cpus: 2 })
      .addressSpace('A', (as) => {
        for (let i = 0; i < 33; i++)
          as.map4k(PAGE + i * 0x1000, 0x20_0000 + i * 0x1000, 'PRESENT|WRITABLE');
      })
      .cpu('A', (p) => {
        p.barrier('cached');
        for (let i = 0; i < 33; i++) p.unmap('4KiB', PAGE + i * 0x1000).flush();
        p.barrier('done');
      })
      .cpu('A', (p) => p.load(PAGE, 'r0').barrier('cached').barrier('done'))
      .build();
    const sends = run(s, 'batched').events.filter((e) => e.type === 'ipi-send');
    expect(sends).toEqual([expect.objectContaining({ full: false, pages: 33 })]);
  });
});

describe('lazy', () => {
  it('flush() returns at once; the target drops its entry only at its next epoch boundary', () => {
    const s = unmapWhileCached((p) => p.load(PAGE, 'r1'));
    const { events, machine } = run(s, 'lazy', 3);
    const flush = stepOf(events, (e) => e.type === 'flush' && e.cpu === 0);
    const receive = stepOf(events, (e) => e.type === 'ipi-receive' && e.cpu === 1);
    const cpu1Barrier = events
      .filter((e) => e.cpu === 1 && (e.type === 'barrier-pass' || e.type === 'barrier-wait'))
      .map((e) => e.step);
    expect(events.some((e) => e.type === 'shootdown-done' && e.cpu === 0 && e.step === flush)).toBe(
      false,
    );
    // The request is applied at one of cpu 1's barrier steps, never between them.
    expect(cpu1Barrier).toContain(receive);
    expect(machine.cpus[1]!.tlb.validCount()).toBe(0);
  });

  it('a free after a lazy flush is held until the coherence point (LATR)', () => {
    const s = scenario('lazy-free')
      .machine({ cpus: 2 })
      .addressSpace('A', (as) => as.map4k(PAGE, 0x20_0000, 'PRESENT|WRITABLE'))
      .cpu('A', (p) =>
        p
          .load(PAGE, 'r0')
          .barrier('cached')
          .unmap('4KiB', PAGE, 'r2')
          .flush()
          .freeFrame('r2')
          .barrier('done'),
      )
      .cpu('A', (p) => p.load(PAGE, 'r0').barrier('cached').barrier('done'))
      .build();
    let held = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const { events } = run(s, 'lazy', seed);
      const frees = events.filter((e) => e.type === 'frame-free') as Extract<
        TraceEvent,
        { type: 'frame-free' }
      >[];
      const receive = stepOf(events, (e) => e.type === 'ipi-receive' && e.cpu === 1);
      const back = frees.find((f) => f.how !== 'held')!;
      // The frame goes back to the allocator only once cpu 1 applied the invalidation: held at
      // the free_frame if that came first, freed at once if cpu 1 had already passed its epoch.
      expect(back.frame).toBe(0x20_0000);
      expect(back.step).toBeGreaterThanOrEqual(receive);
      if (frees[0]!.step < receive) expect(frees.map((f) => f.how)).toEqual(['held', 'released']);
      else expect(frees.map((f) => f.how)).toEqual(['now']);
      held += frees.length === 2 ? 1 : 0;
    }
    expect(held).toBeGreaterThan(0);
  });
});

describe('broadcast', () => {
  it('invalidates on every running CPU, without interrupting them, and waits for completion', () => {
    const s = scenario('broadcast')
      .machine({ cpus: 3 })
      .addressSpace('A', (as) => as.map4k(PAGE, 0x20_0000, 'PRESENT|WRITABLE'))
      .addressSpace('B', (as) => as.map4k(PAGE, 0x30_0000, 'PRESENT|WRITABLE'))
      .cpu('A', (p) => p.load(PAGE, 'r0').barrier('go').unmap('4KiB', PAGE).flush().barrier('end'))
      .cpu('A', (p) => p.load(PAGE, 'r0').barrier('go').barrier('end'))
      .cpu('B', (p) => p.load(PAGE, 'r0').barrier('go').barrier('end'))
      .build();
    const { events } = run(s, 'broadcast');
    const sends = events.filter((e) => e.type === 'ipi-send');
    expect(sends.map((e) => (e as { target: number }).target).sort()).toEqual([1, 2]);
    expect(sends.every((e) => (e as { broadcast: boolean }).broadcast)).toBe(true);
    expect(
      events
        .filter((e) => e.type === 'ipi-receive')
        .every((e) => (e as { broadcast: boolean }).broadcast),
    ).toBe(true);
    expect(events.some((e) => e.type === 'shootdown-done' && e.cpu === 0)).toBe(true);
  });
});

describe('describeWait', () => {
  it('names the CPUs that have not acknowledged a shootdown yet (what a timeout reports)', () => {
    const s = scenario('stuck')
      .machine({ cpus: 3 })
      .addressSpace('A', (as) => as.map4k(PAGE, 0x20_0000, 'PRESENT|WRITABLE'))
      .cpu('A', (p) => p.load(PAGE, 'r0').unmap('4KiB', PAGE).flush())
      .cpu('A', (p) => p.load(PAGE, 'r0'))
      .cpu('A', (p) => p.load(PAGE, 'r0'))
      .build();
    const machine = Machine.fromScenario(s, { protocol: 'sync-ipi' });
    const [cpu0, cpu1] = machine.cpus;
    // cpu 0 flushes while cpus 1 and 2 are alive; only cpu 1 gets to run and acknowledge.
    cpu0!.step();
    cpu0!.step();
    expect(cpu0!.step()).toBe(2); // Blocked
    expect(cpu0!.describeWait()).toBe(
      'cpu 0 waits for cpu 1, cpu 2 to acknowledge its flush (instruction 2, protocol sync-ipi)',
    );
    cpu1!.step();
    expect(cpu0!.describeWait()).toBe(
      'cpu 0 waits for cpu 2 to acknowledge its flush (instruction 2, protocol sync-ipi)',
    );
  });
});

describe('coherence points (Coherent records, what the checker measures against)', () => {
  const coherent = (events: readonly TraceEvent[]) =>
    events.filter((e) => e.type === 'coherent' && e.cpu === 0);

  it('none: at the flush itself; sync-ipi and broadcast: when the round completes', () => {
    for (let seed = 1; seed <= 10; seed++) {
      const none = run(unmapWhileCached(), 'none', seed).events;
      const flush = stepOf(none, (e) => e.type === 'flush' && e.cpu === 0);
      expect(coherent(none).map((e) => e.step)).toEqual([flush]);
      for (const p of ['sync-ipi', 'broadcast']) {
        const { events } = run(unmapWhileCached(), p, seed);
        const done = stepOf(events, (e) => e.type === 'shootdown-done' && e.cpu === 0);
        const ack = stepOf(events, (e) => e.type === 'ipi-receive' && e.cpu === 1);
        const c = coherent(events);
        expect(
          c.map((e) => e.step),
          p,
        ).toEqual([done]);
        // Never before the target applied the invalidation.
        expect(c[0]!.step).toBeGreaterThanOrEqual(ack);
      }
    }
  });

  it('batched: when the batch’s round completes; lazy: once the target passed its epoch', () => {
    for (let seed = 1; seed <= 10; seed++) {
      for (const p of ['batched', 'lazy']) {
        const { events } = run(unmapWhileCached(), p, seed);
        const ack = stepOf(events, (e) => e.type === 'ipi-receive' && e.cpu === 1);
        const c = coherent(events);
        expect(c).toHaveLength(1);
        expect(c[0]!.step, `${p} seed ${seed}`).toBeGreaterThanOrEqual(ack);
      }
    }
  });

  it('no other CPU may cache the space: coherent at once under every protocol', () => {
    const s = scenario('alone')
      .machine({ cpus: 2 })
      .addressSpace('A', (as) => as.map4k(PAGE, 0x20_0000, 'PRESENT|WRITABLE'))
      .addressSpace('B', (as) => as.map4k(PAGE, 0x30_0000, 'PRESENT|WRITABLE'))
      .cpu('A', (p) => p.unmap('4KiB', PAGE).flush().barrier('x'))
      .cpu('B', (p) => p.barrier('x'))
      .build();
    for (const p of ['none', 'sync-ipi', 'batched', 'lazy', 'broadcast']) {
      const { events } = run(s, p);
      expect(coherent(events), p).toHaveLength(1);
      // broadcast targets every running CPU, whatever its address space.
      if (p !== 'broadcast')
        expect(
          events.some((e) => e.type === 'ipi-send'),
          p,
        ).toBe(false);
    }
  });
});

describe('a request posted to a CPU that has stopped', () => {
  it('is acknowledged by its initiator (lazy: a queued request for a CPU that halted meanwhile)', () => {
    // cpu 1's second lazy flush finds cpu 0's slot busy and queues; cpu 0 halts; the queued
    // request is then posted to a stopped CPU. Without the initiator's own ack cpu 1 would wait
    // at its halt forever (the deadlock this test was written for).
    const s = scenario('post-to-halted')
      .machine({ cpus: 2 })
      .addressSpace('A', (as) =>
        as
          .map4k(PAGE, 0x20_0000, 'PRESENT|WRITABLE')
          .map4k(PAGE + 0x1000, 0x20_1000, 'PRESENT|WRITABLE'),
      )
      .cpu('A', (p) => p.load(PAGE + 0x1000, 'r0').load(PAGE, 'r0'))
      .cpu('A', (p) =>
        p
          .unmap('4KiB', PAGE + 0x1000)
          .flush()
          .allocFrame('r5')
          .allocFrame('r6')
          .unmap('4KiB', PAGE)
          .flush(),
      )
      .build();
    for (let seed = 1; seed <= 200; seed++) {
      const { result, machine } = run(s, 'lazy', seed);
      expect(result.deadlock, `seed ${seed}`).toBeUndefined();
      expect(machine.cpus.every((c) => c.halted)).toBe(true);
    }
  });
});

describe('a sync-ipi flush step: when it blocks', () => {
  /** CPU 0: update_flags + flush of PAGE; CPU 1: loads PAGE. Both in A, so CPU 0 posts to CPU 1. */
  function oneFlush() {
    const s = scenario('one-flush')
      .machine({ cpus: 2 })
      .addressSpace('A', (as) => as.map4k(PAGE, 0x20_0000, 'PRESENT|WRITABLE'))
      .cpu('A', (p) => p.updateFlags('4KiB', PAGE, 'PRESENT').flush())
      .cpu('A', (p) => p.load(PAGE, 'r0'))
      .build();
    const machine = Machine.fromScenario(s, { protocol: 'sync-ipi' });
    return { sd: machine.shootdown, c0: machine.cpus[0]!, c1: machine.cpus[1]! };
  }

  it('never, when its only target has stopped: the initiator acknowledged for it', () => {
    const { sd, c0, c1 } = oneFlush();
    // CPU 1 stops, then (as a racing CR3 write could) is back in A's cpumask: CPU 0 posts to it.
    sd.leave(c1);
    sd.start(c1, 'A');
    expect(sd.status(1) & STATUS_LEFT).toBe(STATUS_LEFT);
    expect(c0.step()).toBe(StepResult.Ran); // update_flags
    expect(c0.step()).toBe(StepResult.Ran); // flush: posted, acknowledged by CPU 0, done
    expect(c0.pc).toBe(2);
    expect(sd.requestsTo(1)).toBe(1);
    expect(sd.acksTo(0)).toBe(1);
    expect(sd.waiting(c0, Atomics.load(sd.wake, sd.wakeIndex(0)))).toBe(false);
  });

  it('with a running target, until its ack: waiting() judges the wake value the step loaded', () => {
    const { sd, c0, c1 } = oneFlush();
    expect(c1.step()).toBe(StepResult.Ran); // CPU 1 caches PAGE
    expect(c1.tlb.validCount()).toBe(1);
    c0.step();
    const before = Atomics.load(sd.wake, sd.wakeIndex(0));
    expect(c0.step()).toBe(StepResult.Blocked);
    // CPU 1's interrupt point: it acknowledges, then evicts, within the one call.
    sd.poll(c1, false, Atomics.load(sd.wake, sd.wakeIndex(1)));
    expect(c1.tlb.validCount()).toBe(0);
    expect(sd.acksTo(0)).toBe(1);
    const after = Atomics.load(sd.wake, sd.wakeIndex(0));
    expect(after).not.toBe(before);
    expect(sd.waiting(c0, before)).toBe(true);
    expect(sd.waiting(c0, after)).toBe(false);
    expect(c0.step()).toBe(StepResult.Ran);
    expect(c0.pc).toBe(2);
  });
});

describe('modeled completion time (sync-ipi)', () => {
  /** CPU 0: `lead` loads, then update_flags + flush of PAGE; CPU 1: `lead1` loads, then more. */
  function timed(lead0: number, lead1: number): Scenario {
    return scenario('timed')
      .machine({ cpus: 2 })
      .addressSpace('A', (as) => as.map4k(PAGE, 0x20_0000, 'PRESENT|WRITABLE'))
      .cpu('A', (p) => {
        for (let i = 0; i < lead0; i++) p.load(PAGE, 'r0');
        p.updateFlags('4KiB', PAGE, 'PRESENT').flush();
      })
      .cpu('A', (p) => {
        for (let i = 0; i < lead1 + 4; i++) p.load(PAGE, 'r0');
      })
      .build();
  }

  for (const [lead0, lead1, ahead] of [
    [0, 400, 'the target'],
    [400, 0, 'the initiator'],
  ] as const) {
    it(`the initiator's clock becomes max(its own, the target's ack time) + ipiAck (${ahead} ahead)`, () => {
      const machine = Machine.fromScenario(timed(lead0, lead1), { protocol: 'sync-ipi' });
      const [c0, c1] = [machine.cpus[0]!, machine.cpus[1]!];
      let now = 0;
      const step = (c: typeof c0) => {
        c.now = now++;
        return c.step();
      };
      for (let i = 0; i < lead1; i++) step(c1);
      for (let i = 0; i < lead0 + 1; i++) step(c0); // ... and update_flags
      expect(step(c0)).toBe(StepResult.Blocked); // the flush posts and waits
      const before = c0.cycles;
      const targetBefore = c1.cycles;
      step(c1); // services the IPI at its instruction boundary, then loads
      const ackTime = targetBefore + c1.costs.invlpg + c1.costs.flushPage + c1.costs.ipiReceive;
      expect(step(c0)).toBe(StepResult.Ran);
      expect(c0.cycles).toBe(Math.max(before, ackTime) + c0.costs.ipiAck);
      expect(ahead === 'the target' ? ackTime > before : before > ackTime).toBe(true);
    });
  }
});

describe('wake-ups (Shootdown.wakeUp)', () => {
  /** CPU 0 flushes a page CPUs 1 and 2 cache, twice, then all meet at a barrier. */
  function threeCpus(): Scenario {
    return scenario('wake-ups')
      .machine({ cpus: 3 })
      .addressSpace('A', (as) => as.map4k(PAGE, 0x20_0000, 'PRESENT|WRITABLE'))
      .cpu('A', (p) =>
        p
          .load(PAGE, 'r0')
          .barrier('cached')
          .updateFlags('4KiB', PAGE, 'PRESENT')
          .flush()
          .updateFlags('4KiB', PAGE, 'PRESENT|WRITABLE')
          .flush()
          .barrier('done'),
      )
      .cpu('A', (p) => p.load(PAGE, 'r0').barrier('cached').barrier('done'))
      .cpu('A', (p) => p.load(PAGE, 'r0').barrier('cached').barrier('done'))
      .build();
  }

  /** The indices (into `wake`) that `Atomics.notify` was called on during `body`. */
  function notified(machine: Machine, body: () => void): number[] {
    const wake = machine.shootdown.wake;
    const calls: number[] = [];
    const original = Atomics.notify;
    Atomics.notify = ((typed: Int32Array, index: number, count?: number) => {
      if (typed.buffer === wake.buffer) calls.push(index - wake.byteOffset / 4);
      return original(typed, index, count);
    }) as typeof Atomics.notify;
    try {
      body();
    } finally {
      Atomics.notify = original;
    }
    return calls;
  }

  it('does not notify a CPU whose host is not asleep (the deterministic host never sleeps)', () => {
    const machine = Machine.fromScenario(threeCpus(), { protocol: 'sync-ipi' });
    const calls = notified(machine, () => {
      const result = runDeterministic(machine, { seed: 3 });
      expect(result.deadlock).toBeUndefined();
    });
    expect(machine.cpus.every((c) => c.status === 'halted')).toBe(true);
    expect(calls).toEqual([]);
  });

  it('the ack count in WAKE (8 bits) and the request count (12 bits) wrap without losing track (66,000 acks)', () => {
    const rounds = 33_000;
    const s = scenario('wrap')
      .machine({ cpus: 3 })
      .addressSpace('A', (as) => as.map4k(PAGE, 0x20_0000, 'PRESENT|WRITABLE'))
      .cpu('A', (p) => {
        for (let r = 0; r < rounds; r++)
          p.updateFlags('4KiB', PAGE, r % 2 === 0 ? 'PRESENT' : 'PRESENT|WRITABLE').flush();
        p.barrier('end');
      })
      .cpu('A', (p) => p.barrier('end'))
      .cpu('A', (p) => p.barrier('end'))
      .build();
    const machine = Machine.fromScenario(s, { protocol: 'sync-ipi', trace: false });
    const result = runDeterministic(machine, { seed: 1, maxSteps: 10_000_000 });
    expect(result.deadlock).toBeUndefined();
    expect(machine.cpus.every((c) => c.status === 'halted')).toBe(true);
    expect(machine.shootdown.acksTo(0)).toBe(2 * rounds);
    expect(machine.shootdown.requestsTo(1)).toBe(rounds);
    // Each flush completed only after both acks: CPU 0 blocked once per round at least.
    expect(result.steps).toBeGreaterThan(3 * rounds);
  });

  it('announcing sleep sets and clears only STATUS_SLEEPING: a stopped CPU stays STATUS_LEFT', () => {
    const machine = Machine.fromScenario(threeCpus(), { protocol: 'sync-ipi' });
    const sd = machine.shootdown;
    sd.leave(machine.cpus[1]!);
    expect(sd.status(1)).toBe(STATUS_LEFT);
    sd.announceSleep(1, true);
    expect(sd.status(1)).toBe(STATUS_LEFT | STATUS_SLEEPING);
    sd.announceSleep(1, false);
    expect(sd.status(1)).toBe(STATUS_LEFT);
    expect(sd.status(2)).toBe(0);
  });

  it('notifies exactly the CPUs whose STATUS_SLEEPING bit is set, on their wake word', () => {
    const machine = Machine.fromScenario(threeCpus(), { protocol: 'sync-ipi' });
    const sd = machine.shootdown;
    // CPU 2's host announces that it sleeps (as workers/cpu-loop.ts does before Atomics.wait).
    sd.announceSleep(2, true);
    const calls = notified(machine, () => runDeterministic(machine, { seed: 3 }));
    expect(calls.length).toBeGreaterThanOrEqual(3); // two IPIs and the barriers' wakeAll
    expect(new Set(calls)).toEqual(new Set([sd.wakeIndex(2)]));
    expect(sd.status(2) & STATUS_SLEEPING).toBe(STATUS_SLEEPING);
  });
});

describe('what applying a request costs the target (Cpu.chargeRemoteInvalidate, evictRemote)', () => {
  it('interrupt entry and exit for an IPI only: not for INVLPGB, not for a lazy request', () => {
    const machine = Machine.fromScenario(unmapWhileCached(), { protocol: 'lazy' });
    const cpu = machine.cpus[1]!;
    const c = cpu.costs;
    const cost = (delivery: 'ipi' | 'broadcast' | 'lazy') => {
      const before = cpu.cycles;
      cpu.chargeRemoteInvalidate(1, 1, delivery);
      cpu.evictRemote(0, 1, 0, [PAGE], delivery);
      return cpu.cycles - before;
    };
    expect(cost('ipi')).toBe(c.invlpg + c.flushPage + c.ipiReceive);
    expect(cost('broadcast')).toBe(c.invlpg + c.flushPage);
    expect(cost('lazy')).toBe(c.invlpg + c.flushPage);
    const received = machine.traces[1]!.drain()
      .records.map(decodeEvent)
      .filter((e) => e.type === 'ipi-receive');
    expect(received.map((e) => [e.broadcast, e.lazy])).toEqual([
      [false, false],
      [true, false],
      [false, true],
    ]);
  });

  it('under lazy, the target records its applied requests as lazy', () => {
    const { events } = run(unmapWhileCached(), 'lazy', 3);
    const got = events.filter((e) => e.type === 'ipi-receive');
    expect(got.length).toBeGreaterThan(0);
    expect(got.every((e) => e.lazy && !e.broadcast)).toBe(true);
  });
});
