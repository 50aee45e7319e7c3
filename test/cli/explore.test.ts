/**
 * `smpsim explore` as a user calls it (in-process through `main`): the text and JSON outputs,
 * `--all-protocols` against the `expect` block, witnesses that `smpsim run --schedule` accepts
 * and that reproduce their hazard, determinism across `--jobs`, and one-line errors with status 2.
 */

import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { checkRun } from '../../src/check/checker.ts';
import { main } from '../../src/cli/program.ts';
import { resolveScenario } from '../../src/cli/run.ts';
import { checkExpect } from '../../src/explore/expect.ts';
import type { ExploreResult } from '../../src/explore/explore.ts';
import { loadScenario, scenarioToJson } from '../../src/scenarios/load.ts';
import { PROTOCOLS, type Scenario } from '../../src/scenarios/scenario.ts';
import { parseSchedule, runDeterministic } from '../../src/smp/hosts/deterministic.ts';
import { Machine } from '../../src/smp/machine.ts';
import { RACY_UNMAP, wide } from '../explore/scenarios.ts';

async function cli(...argv: string[]): Promise<{ status: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const status = await main(argv, { out: (t) => (out += t), err: (t) => (err += t) });
  return { status, out, err };
}

const dir = mkdtempSync(join(tmpdir(), 'smpsim-explore-'));
function file(s: Scenario): string {
  const path = join(dir, `${s.name}.json`);
  writeFileSync(path, JSON.stringify(scenarioToJson(s)));
  return path;
}

const RACY = file(RACY_UNMAP);

describe('smpsim explore', () => {
  it('prints the reachable kinds, a witness per kind and the expect verdict', async () => {
    const r = await cli('explore', RACY, '--protocol', 'none');
    expect(r.err).toBe('');
    expect(r.status).toBe(0);
    const lines = r.out.split('\n');
    expect(lines[0]).toMatch(
      /^smpsim explore racy-unmap: protocol none, \d+ schedules, exhaustive$/,
    );
    expect(lines[1]).toBe('reachable: dropped-flush');
    expect(lines[2]).toBe(`witnesses (replay: smpsim run ${RACY} --protocol none --schedule S):`);
    expect(lines[3]).toMatch(/^ {2}dropped-flush {2}'?[0-9,*]+'?$/);
    expect(lines[4]).toBe('expect: dropped-flush: ok');
  });

  it('--json prints the spec object, keys in order, and the witness replays through smpsim run', async () => {
    const r = await cli('explore', RACY, '--protocol', 'sync-ipi', '--json');
    expect(r.status).toBe(0);
    const j = JSON.parse(r.out) as ExploreResult;
    expect(Object.keys(j)).toEqual([
      'scenario',
      'protocol',
      'schedules',
      'exhaustive',
      'reachable',
      'witness',
    ]);
    expect(j).toMatchObject({
      scenario: 'racy-unmap',
      protocol: 'sync-ipi',
      exhaustive: true,
      reachable: ['dropped-flush'],
    });
    const witness = j.witness['dropped-flush']!;
    // `smpsim run` accepts the witness and runs exactly that schedule ...
    const run = await cli('run', RACY, '--protocol', 'sync-ipi', '--schedule', witness, '--json');
    expect(run.err).toBe('');
    const report = JSON.parse(run.out) as { schedule: string; hazards: { kind: string }[] };
    expect(report.schedule).toBe(witness);
    // ... and reports the hazard, as the checker finds it in that schedule's run.
    expect(report.hazards.map((h) => h.kind)).toContain('dropped-flush');
    const m = Machine.fromScenario(RACY_UNMAP, { protocol: 'sync-ipi' });
    const replay = runDeterministic(m, { schedule: parseSchedule(witness) });
    expect(checkRun(m, replay).map((h) => h.kind)).toContain('dropped-flush');
  });

  it('the same inputs give the same output, byte for byte, whatever --jobs', async () => {
    const w = file(wide(3));
    const outs = await Promise.all([
      cli('explore', w, '--jobs', '1', '--json'),
      cli('explore', w, '--jobs', '2', '--json'),
      cli('explore', w, '--jobs', '2', '--max-schedules', '20', '--seed', '5', '--json'),
      cli('explore', w, '--jobs', '1', '--max-schedules', '20', '--seed', '5', '--json'),
    ]);
    expect(outs[1]!.out).toBe(outs[0]!.out);
    expect(outs[3]!.out).toBe(outs[2]!.out);
    expect(JSON.parse(outs[0]!.out).exhaustive).toBe(true);
    expect(JSON.parse(outs[2]!.out)).toMatchObject({ exhaustive: false, schedules: 20 });
    const again = await cli('explore', w, '--jobs', '1', '--json');
    expect(again.out).toBe(outs[0]!.out);
  });

  it('a tree larger than --max-schedules is sampled with --seed, and says so', async () => {
    const r = await cli('explore', file(wide(3)), '--max-schedules', '10', '--seed', '3');
    expect(r.out.split('\n')[0]).toBe(
      'smpsim explore wide-3: protocol none, 10 schedules, random (seed 3; the tree has more than 10)',
    );
  });
});

describe('smpsim explore --all-protocols', () => {
  it('one row per protocol, compared with the expect block; a mismatch exits 1 and names it', async () => {
    // The expect block says none and sync-ipi reach dropped-flush; claim batched reaches deadlock.
    const wrong = file(
      loadScenario(
        JSON.stringify({
          ...scenarioToJson(RACY_UNMAP),
          name: 'racy-unmap-wrong',
          expect: { none: ['dropped-flush'], batched: ['deadlock'] },
        }),
      ),
    );
    const r = await cli('explore', wrong, '--all-protocols');
    expect(r.status).toBe(1);
    const lines = r.out.split('\n');
    expect(lines[0]).toBe('smpsim explore racy-unmap-wrong: every protocol');
    expect(lines[1]).toMatch(/^protocol +schedules +exhaustive +reachable +expect$/);
    const row = (p: string) => lines.find((l) => l.startsWith(`${p} `))!;
    expect(row('none')).toMatch(/ yes +dropped-flush +dropped-flush: ok$/);
    expect(row('batched')).toMatch(
      /dropped-flush +deadlock: MISMATCH, missing deadlock; extra dropped-flush$/,
    );
    expect(row('lazy')).toMatch(/\(not in expect\)$/);
    expect(r.out).toContain(`witnesses (replay: smpsim run ${wrong} --protocol P --schedule S):`);
    for (const p of PROTOCOLS) expect(r.out).toMatch(new RegExp(`\\n {2}${p} +dropped-flush +`));
  });

  it('--json prints one object per protocol; a mismatch goes to stderr, stdout stays JSON', async () => {
    const r = await cli('explore', 'unmap-without-shootdown', '--all-protocols', '--json');
    const lines = r.out.trimEnd().split('\n');
    expect(lines.map((l) => JSON.parse(l).protocol)).toEqual([...PROTOCOLS]);
    // Exit 1 exactly when some protocol's result contradicts the scenario's expect block.
    const builtin = resolveScenario('unmap-without-shootdown');
    const checks = lines.map((l) => checkExpect(builtin, JSON.parse(l) as ExploreResult));
    const mismatched = checks.filter((c) => !c.ok);
    expect(r.status).toBe(mismatched.length > 0 ? 1 : 0);
    expect(r.err.trimEnd().split('\n').filter(Boolean)).toEqual(
      mismatched.map((c) =>
        expect.stringMatching(`^smpsim: explore: expect mismatch under ${c.protocol}: `),
      ),
    );
  });
});

describe('the README example', () => {
  it('prints exactly what the README shows', async () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const m =
      /<!-- explore:racy-unmap -->\n```text\n([\s\S]*?)```\n<!-- \/explore:racy-unmap -->/.exec(
        readme,
      );
    expect(m, 'README has the explore:racy-unmap block').not.toBeNull();
    expect(readme).toContain('./bin/smpsim.js explore examples/racy-unmap.json --all-protocols\n');
    const cwd = process.cwd();
    process.chdir(fileURLToPath(new URL('../..', import.meta.url)));
    try {
      const r = await cli('explore', 'examples/racy-unmap.json', '--all-protocols');
      expect(r.status).toBe(0);
      expect(r.out).toBe(m![1]);
    } finally {
      process.chdir(cwd);
    }
  });
});

describe('smpsim explore: bad input', () => {
  const cases: [string[], RegExp][] = [
    [
      ['explore', 'no-such-scenario'],
      /explore: no-such-scenario is neither a scenario file nor a built-in scenario/,
    ],
    [
      ['explore', RACY, '--protocol', 'fast'],
      /explore: --protocol fast is not one of none, sync-ipi, batched, lazy, broadcast/,
    ],
    [
      ['explore', RACY, '--protocol', 'none', '--all-protocols'],
      /explore: give either --protocol or --all-protocols, not both/,
    ],
    [
      ['explore', RACY, '--max-schedules', '0'],
      /explore: --max-schedules "0" must be an integer from 1 to 100000000/,
    ],
    [
      ['explore', RACY, '--max-schedules', '1e3'],
      /explore: --max-schedules "1e3" must be an integer/,
    ],
    [
      ['explore', RACY, '--seed', '-1'],
      /explore: --seed "-1" must be an integer from 0 to 4294967295/,
    ],
    [['explore', RACY, '--seed', '4294967296'], /explore: --seed "4294967296" must be an integer/],
    [['explore', RACY, '--jobs', '0'], /explore: --jobs "0" must be an integer from 1 to 64/],
    [['explore', RACY, '--jobs', 'two'], /explore: --jobs "two" must be an integer/],
  ];
  for (const [argv, message] of cases) {
    it(`${argv.slice(2).join(' ') || argv[1]}: status 2, one line naming it`, async () => {
      const r = await cli(...argv);
      expect(r.status).toBe(2);
      expect(r.out).toBe('');
      expect(r.err).toMatch(message);
      expect(r.err.trimEnd().split('\n')).toHaveLength(1);
      expect(r.err).toMatch(/^smpsim: error: /);
    });
  }

  it('a missing scenario or an unknown option is a usage error, status 2', async () => {
    const none = await cli('explore');
    expect(none.status).toBe(2);
    expect(none.err).toMatch(/missing required argument 'scenario'/);
    const unknown = await cli('explore', RACY, '--schedules', '5');
    expect(unknown.status).toBe(2);
    expect(unknown.err).toMatch(/unknown option '--schedules'/);
  });

  it('a scenario file with an error is refused with its path, status 2', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ ...scenarioToJson(RACY_UNMAP), cpus: [] }));
    const r = await cli('explore', bad);
    expect(r.status).toBe(2);
    expect(r.err).toMatch(/^smpsim: error: .*cpus/);
  });
});
