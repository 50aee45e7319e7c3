/**
 * `smpsim run` and `smpsim list` as a user calls them (in-process through `main`): outputs, the
 * JSON keys of the scenario spec, determinism, schedules, and exit statuses.
 */

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/program.ts';
import { scenario } from '../../src/scenarios/builder.ts';
import { scenarioToJson } from '../../src/scenarios/load.ts';
import type { Scenario } from '../../src/scenarios/scenario.ts';

async function cli(...argv: string[]): Promise<{ status: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const status = await main(argv, { out: (t) => (out += t), err: (t) => (err += t) });
  return { status, out, err };
}

const dir = mkdtempSync(join(tmpdir(), 'smpsim-run-'));
function file(s: Scenario): string {
  const path = join(dir, `${s.name}.json`);
  writeFileSync(path, JSON.stringify(scenarioToJson(s)));
  return path;
}

describe('smpsim run (deterministic host)', () => {
  it('--cpus N adds bystanders that the flush interrupts; a bad N is a usage error', async () => {
    const r = await cli('run', 'unmap-without-shootdown', '--cpus', '4');
    expect(r.status).toBe(0);
    expect(r.out).toContain('4 CPUs, protocol sync-ipi');
    for (const cpu of [1, 2, 3]) expect(r.out).toContain(`IPI → cpu${cpu}: 1 page`);
    expect(r.out).toContain('shootdown done: 3 acks');
    const bad = await cli('run', 'unmap-without-shootdown', '--cpus', '1');
    expect(bad.status).toBe(2);
    expect(bad.err).toContain(
      '--cpus 1: unmap-without-shootdown programs 2 CPUs, so the machine needs from 2 to 64',
    );
    const word = await cli('run', 'unmap-without-shootdown', '--cpus', 'four');
    expect(word.status).toBe(2);
    expect(word.err).toContain('--cpus four must be an integer from 2 to 64');
  });

  it('shows the stale TLB hit after an unmap flushed only locally (protocol none)', async () => {
    const r = await cli('run', 'unmap-without-shootdown', '--protocol', 'none');
    expect(r.status).toBe(0);
    expect(r.err).toBe('');
    // CPU 1's last load still hits its cached entry for the unmapped page.
    const lines = r.out.split('\n');
    const unmap = lines.findIndex((l) => l.includes('unmap 4KiB 0x400000'));
    const lastHit = lines.findLastIndex((l) => l.includes('TLB hit → frame 0x200000'));
    expect(unmap).toBeGreaterThan(0);
    expect(lastHit).toBeGreaterThan(unmap);
    expect(r.out).toContain('cpu1: r0=0x5ca1ab1e r1=0x5ca1ab1e');
    expect(r.out).toMatch(/schedule: [0-9,*]+/);
  });

  it('prints the JSON report with the keys of the scenario spec, in order', async () => {
    const r = await cli('run', 'unmap-without-shootdown', '--protocol', 'none', '--json');
    expect(r.status).toBe(0);
    const j = JSON.parse(r.out);
    expect(Object.keys(j).slice(0, 10)).toEqual([
      'scenario',
      'protocol',
      'host',
      'seed',
      'hazards',
      'faults',
      'mapper_errors',
      'registers',
      'schedule',
      'stats',
    ]);
    expect(j).toMatchObject({
      scenario: 'unmap-without-shootdown',
      protocol: 'none',
      host: 'deterministic',
      seed: 1,
    });
    expect(j.registers[1]).toMatchObject({ cpu: 1, r0: '0x5ca1ab1e', r1: '0x5ca1ab1e' });
    expect(j.stats.cpus[1].tlb_hits).toBe(1);
  });

  it('is deterministic: the same seed gives the same output, byte for byte', async () => {
    for (const json of [[], ['--json']]) {
      const a = await cli(
        'run',
        'unmap-without-shootdown',
        '--protocol',
        'none',
        '--seed',
        '42',
        ...json,
      );
      const b = await cli(
        'run',
        'unmap-without-shootdown',
        '--protocol',
        'none',
        '--seed',
        '42',
        ...json,
      );
      expect(a.out).toBe(b.out);
    }
  });

  it('a printed schedule reproduces the run under any seed', async () => {
    const seeded = JSON.parse(
      (await cli('run', 'unmap-without-shootdown', '--protocol', 'none', '--seed', '5', '--json'))
        .out,
    );
    const replayed = JSON.parse(
      (
        await cli(
          'run',
          'unmap-without-shootdown',
          '--protocol',
          'none',
          '--seed',
          '77',
          '--schedule',
          seeded.schedule,
          '--json',
        )
      ).out,
    );
    expect({ ...replayed, seed: 0 }).toEqual({ ...seeded, seed: 0 });
  });

  it('different seeds explore different interleavings', async () => {
    const schedules = new Set<string>();
    for (let seed = 1; seed <= 8; seed++) {
      schedules.add(
        JSON.parse(
          (
            await cli(
              'run',
              'unmap-without-shootdown',
              '--protocol',
              'none',
              '--seed',
              String(seed),
              '--json',
            )
          ).out,
        ).schedule,
      );
    }
    expect(schedules.size).toBeGreaterThan(1);
  });

  it('reports a page fault with its error code and stops that CPU', async () => {
    const s = scenario('fault-demo')
      .machine({ cpus: 1, protocol: 'none' })
      .addressSpace('A', (as) => as.map4k(0x40_0000n, 0x20_0000, 'PRESENT | USER_ACCESSIBLE'))
      .cpu('A', (p) => p.store(0x40_0000n, 1n).load(0x40_0000n, 'r0'))
      .build();
    const r = await cli('run', file(s), '--json');
    const j = JSON.parse(r.out);
    expect(r.status).toBe(0);
    expect(j.faults).toEqual([{ cpu: 0, addr: '0x400000', error_code: '0x3', step: 0 }]);
    expect(j.stats.cpus[0]).toMatchObject({ status: 'faulted', instructions: 1 });
  });

  it('a failed assert exits 1 and names cpu, instruction, register and both values', async () => {
    const s = scenario('assert-demo')
      .machine({ cpus: 1, protocol: 'none' })
      .addressSpace('A', (as) => as.map4k(0x40_0000n, 0x20_0000, 'PRESENT | WRITABLE'))
      .cpu('A', (p) => p.store(0x40_0000n, 7n).load(0x40_0000n, 'r2').assert('r2', 8n))
      .build();
    const r = await cli('run', file(s));
    expect(r.status).toBe(1);
    expect(r.out).toContain('FAILED: cpu 0, instruction 2: assert r2 == 0x8 failed: r2 is 0x7');
  });

  it('a deadlock exits 1 with the wait graph', async () => {
    const s = scenario('deadlock-demo')
      .machine({ cpus: 2, protocol: 'none' })
      .addressSpace('A')
      .cpu('A', (p) => p.barrier('a').barrier('b'))
      .cpu('A', (p) => p.barrier('b').barrier('a'))
      .build();
    const r = await cli('run', file(s));
    expect(r.status).toBe(1);
    expect(r.out).toContain('DEADLOCK: cpus 0, 1 are all blocked');
    expect(r.out).toContain('cpu 0 waits at barrier a#0 (1 of 2 arrived)');
    expect(r.out).toContain('cpu 1 waits at barrier b#0 (1 of 2 arrived)');
  });

  it.each([
    [['--protocol', 'bogus'], /--protocol bogus is not one of none, sync-ipi/],
    [
      ['--protocol', 'none', '--host', 'threads'],
      /--host threads is not one of deterministic, workers/,
    ],
    [['--host', 'workers', '--schedule', '0,1'], /--schedule needs --host deterministic/],
    [['--protocol', 'none', '--seed', '-1'], /--seed -1 must be an integer/],
    [['--protocol', 'none', '--schedule', '0,x'], /schedule item 2 "x"/],
    [
      ['--protocol', 'none', '--schedule', '0,0,0'],
      /schedule step 3 names cpu 0, which is blocked; runnable: 1/,
    ],
  ])('refuses %j with exit 2 and one line', async (args, message) => {
    const r = await cli('run', 'unmap-without-shootdown', ...args);
    expect(r.status).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toMatch(message);
    expect(r.err.trim().split('\n')).toHaveLength(1);
  });

  it('an unknown scenario and a malformed file name the problem (exit 2)', async () => {
    expect((await cli('run', 'no-such-scenario')).err).toContain(
      'neither a scenario file nor a built-in',
    );
    const bad = join(dir, 'bad.json');
    writeFileSync(
      bad,
      JSON.stringify({
        format: 'smpsim-scenario/1',
        name: 'bad',
        machine: { cpus: 1 },
        address_spaces: { A: {} },
        cpus: [{ as: 'B', program: [] }],
      }),
    );
    const r = await cli('run', bad);
    expect(r.status).toBe(2);
    expect(r.err).toMatch(/cpus\[0\]\.as/);
  });
});

describe('smpsim run --host workers', () => {
  it('runs every CPU on its own thread with the same results as the deterministic host', async () => {
    for (const protocol of ['none', 'sync-ipi']) {
      const det = JSON.parse(
        (await cli('run', 'unmap-without-shootdown', '--protocol', protocol, '--json')).out,
      );
      const w = await cli(
        'run',
        'unmap-without-shootdown',
        '--protocol',
        protocol,
        '--host',
        'workers',
        '--json',
      );
      expect(w.status).toBe(0);
      const workers = JSON.parse(w.out);
      expect(workers.host).toBe('workers');
      expect(workers.registers).toEqual(det.registers);
      expect(
        workers.faults.map((f: { addr: string; error_code: string }) => [f.addr, f.error_code]),
      ).toEqual(
        det.faults.map((f: { addr: string; error_code: string }) => [f.addr, f.error_code]),
      );
      expect(workers.stats.cpus.map((c: { status: string }) => c.status)).toEqual(
        det.stats.cpus.map((c: { status: string }) => c.status),
      );
    }
  });
});

describe('smpsim list', () => {
  it('lists the built-in scenarios with their CPU count and first sentence', async () => {
    const r = await cli('list');
    expect(r.status).toBe(0);
    expect(r.out).toMatch(/^unmap-without-shootdown\s+2 CPUs\s+CPU 0 writes/m);
  });
});
