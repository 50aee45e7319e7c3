/**
 * `smpsim bench shootdown` and `smpsim bench workload` as a user calls them (in-process through
 * `main`): a tiny sweep on the deterministic host and a tiny one on worker threads produce the
 * tables and well-formed files; cost overrides apply; every bad option is one line, status 2.
 * Timings are never asserted.
 */

import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/program.ts';

async function cli(...argv: string[]): Promise<{ status: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const status = await main(argv, { out: (t) => (out += t), err: (t) => (err += t) });
  return { status, out, err };
}

const dir = mkdtempSync(join(tmpdir(), 'smpsim-bench-cli-'));
const tiny = ['--cpus', '2', '--pages', '1,34', '--repeats', '1', '--no-progress'];
/** The tiny sweep of `sync-ipi` alone on the deterministic host. */
const tinySyncIpi = [...tiny, '--host', 'deterministic', '--protocols', 'sync-ipi'];

describe('smpsim bench shootdown', () => {
  it('runs a tiny sweep on the deterministic host and writes its files', async () => {
    const out = join(dir, 'det');
    const r = await cli(
      'bench',
      'shootdown',
      ...tiny,
      '--host',
      'deterministic',
      '--protocols',
      'sync-ipi,batched',
      '--out',
      out,
    );
    expect(r.err).toBe('');
    expect(r.status).toBe(0);
    expect(r.out).toMatch(/^machine: .+ cores, .+; node v/);
    expect(r.out).toContain('Modeled clock (deterministic host)');
    expect(r.out).toContain('calibration (modeled clock): sync-ipi 1-page unmap+flush 1983 cycles');
    expect(r.out).not.toContain('Wall clock');
    for (const f of [
      'shootdown.json',
      'shootdown-modeled.csv',
      'latency-vs-cpus.svg',
      'latency-vs-pages.svg',
      'ipis-per-protocol.svg',
    ]) {
      expect(existsSync(join(out, f))).toBe(true);
      expect(r.out).toContain(join(out, f));
    }
    const json = JSON.parse(readFileSync(join(out, 'shootdown.json'), 'utf8'));
    expect(json.settings).toMatchObject({
      cpus: [1, 2],
      pages: [1, 34],
      variants: ['sync-ipi', 'batched'],
    });
  });

  it('--html writes the tables and the plots as one self-contained page', async () => {
    const page = join(dir, 'html', 'deeper', 'bench.html');
    const args = [...tiny, '--host', 'deterministic', '--protocols', 'sync-ipi,batched'];
    const r = await cli('bench', 'shootdown', ...args, '--out', join(dir, 'html'), '--html', page);
    expect(r.status).toBe(0);
    expect(r.out).toContain(page);
    const html = readFileSync(page, 'utf8');
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    // The three plots inline, with their captions, and the terminal's tables.
    expect(html.match(/<svg[\s>]/g)).toHaveLength(3);
    expect(html).toContain('the 33-page ceiling');
    expect(html).toContain('Modeled clock (deterministic host)');
    // Nothing to fetch: no script or stylesheet source, no URL but the SVG namespaces.
    expect(html).not.toMatch(/<(script|link)[^>]+(src|href)=/);
    const urls = new Set(html.match(/https?:\/\/[^"' )]+/g) ?? []);
    expect([...urls].sort()).toEqual([
      'http://www.w3.org/1999/xlink',
      'http://www.w3.org/2000/svg',
    ]);
    // Same result, same page: a second run of the modeled clock writes the same bytes.
    const again = join(dir, 'html', 'again.html');
    await cli('bench', 'shootdown', ...args, '--out', join(dir, 'html2'), '--html', again);
    expect(readFileSync(again, 'utf8').replace(/total [\d.]+ s/, '')).toBe(
      html.replace(/total [\d.]+ s/, ''),
    );
  });

  it('--html to a path that cannot be written is one line, status 2', async () => {
    const blocker = join(dir, 'a-file');
    writeFileSync(blocker, 'x');
    const r = await cli(
      'bench',
      'shootdown',
      ...tinySyncIpi,
      '--out',
      join(dir, 'ok'),
      '--html',
      join(blocker, 'page.html'),
    );
    expect(r.status).toBe(2);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(/--html .*cannot write the page/);
  });

  it('runs a tiny sweep on worker threads: wall-clock tables next to the same-run floors', async () => {
    const out = join(dir, 'workers');
    const r = await cli(
      'bench',
      'shootdown',
      ...tiny,
      '--pages',
      '1',
      '--host',
      'workers',
      '--protocols',
      'sync-ipi',
      '--quick',
      '--out',
      out,
    );
    expect(r.status).toBe(0);
    expect(r.out).toContain('Raw Atomics floors between two worker threads, measured in this run');
    expect(r.out).toContain('Atomics.wait/notify round trip');
    expect(r.out).toContain('spin on Atomics.load round trip');
    expect(r.out).toContain('Wall clock (worker-thread host)');
    expect(r.out).not.toContain('Modeled clock (deterministic host)');
    const csv = readFileSync(join(out, 'shootdown-wall.csv'), 'utf8').trimEnd().split('\r\n');
    expect(csv[0]).toBe(
      'clock,host,variant,cpus,pages,round_us_median,round_us_p99,round_us_min,round_us_max,round_us_n,timed_rounds,remote_us',
    );
    expect(csv.slice(1).map((l) => l.split(',').slice(0, 5).join(','))).toEqual([
      'wall,workers,sync-ipi,1,1',
      'wall,workers,sync-ipi,2,1',
    ]);
    expect(readFileSync(join(out, 'floors.csv'), 'utf8').split('\r\n')).toHaveLength(4);
    expect(readFileSync(join(out, 'latency-vs-cpus.svg'), 'utf8')).toContain('wall clock');
  });

  it('applies cost overrides from a file and the command line, later ones winning', async () => {
    const costs = join(dir, 'costs.json');
    writeFileSync(costs, JSON.stringify({ ipiReceive: 5000, mapperCall: 100 }));
    const r = await cli(
      'bench',
      'shootdown',
      ...tinySyncIpi,
      '--costs',
      costs,
      '--cost',
      'mapperCall=1730',
      '--out',
      join(dir, 'costs'),
    );
    expect(r.status).toBe(0);
    expect(r.out).toContain('1983 cycles (661 ns) alone, 7783 cycles');
    expect(r.out).toContain('NOT within 10%');
    const json = JSON.parse(readFileSync(join(dir, 'costs', 'shootdown.json'), 'utf8'));
    expect(json.costs).toMatchObject({ ipiReceive: 5000, mapperCall: 1730 });
  });

  it.each([
    [['--cpus', '0'], 'bench: --cpus 0: "0" is not a CPU count (an integer from 1 to 64)'],
    [['--cpus', '2,x'], 'bench: --cpus 2,x: "x" is not a CPU count'],
    [
      ['--pages', '2000'],
      'bench: --pages 2000: "2000" is not a page count (an integer from 1 to 1024)',
    ],
    [
      ['--protocols', 'sync-ipi,fast'],
      'bench: --protocols: protocol "fast" in "fast" is not one of none, sync-ipi, batched, lazy, broadcast',
    ],
    [
      ['--protocols', 'sync-ipi+eager'],
      'bench: --protocols: ablation "eager" in "sync-ipi+eager" is not one of concurrent, early-ack, lazy-tlb-skip',
    ],
    [['--host', 'gpu'], 'bench: --host gpu is not one of deterministic, workers, both'],
    [
      ['--cost', 'ipiSnd=3'],
      'bench: --cost ipiSnd=3: "ipiSnd" is not a cost entry (did you mean "ipiSend"?)',
    ],
    [
      ['--cost', 'ipiSend=-3'],
      'bench: --cost ipiSend=-3: ipiSend = -3 is not a non-negative number of cycles',
    ],
    [
      ['--costs', '/nonexistent/costs.json'],
      'bench: --costs /nonexistent/costs.json: cannot read it (ENOENT)',
    ],
    [['--repeats', '0'], 'bench: --repeats 0: "0" is not a round count'],
  ])('%j is refused in one line with status 2', async (args, message) => {
    const r = await cli('bench', 'shootdown', '--host', 'deterministic', ...args);
    expect(r.status).toBe(2);
    expect(r.out).toBe('');
    const lines = r.err.split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(lines[0]!.startsWith(`smpsim: error: ${message}`)).toBe(true);
  });

  it('a bad JSON cost file names the file and the key', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"invlpgb": 1, "tlbsnc": 2}');
    const r = await cli('bench', 'shootdown', '--host', 'deterministic', '--costs', bad);
    expect(r.status).toBe(2);
    expect(r.err).toBe(
      `smpsim: error: bench: --costs ${bad}: "tlbsnc" is not a cost entry (did you mean "tlbsync"?); the entries are ${'instruction, tlbHit, walkLevel, adUpdate, invlpg, flushPage, cr3Write, pgeToggle, invpcid, faultEntry, mapperCall, ipiSend, ipiReceive, ipiAck, invlpgb, tlbsync, clockGhz'}\n`,
    );
  });
});

describe('smpsim bench workload', () => {
  it('runs a tiny workload on the deterministic host and writes its files', async () => {
    const out = join(dir, 'workload');
    const r = await cli(
      'bench',
      'workload',
      '--host',
      'deterministic',
      '--cpus',
      '2',
      '--periods',
      '3',
      '--unmap-pages',
      '2',
      '--protocols',
      'sync-ipi,lazy',
      '--no-progress',
      '--out',
      out,
    );
    expect(r.status).toBe(0);
    expect(r.out).toContain('Modeled clock (deterministic host)');
    const csv = readFileSync(join(out, 'workload.csv'), 'utf8').trimEnd().split('\r\n');
    expect(csv).toHaveLength(3);
    expect(csv[1]!.startsWith('modeled,deterministic,sync-ipi,')).toBe(true);
    expect(JSON.parse(readFileSync(join(out, 'workload.json'), 'utf8')).format).toBe(
      'smpsim-bench-workload/1',
    );
  });

  it('refuses bad options in one line', async () => {
    const r = await cli('bench', 'workload', '--unmap-pages', '16');
    expect(r.status).toBe(2);
    expect(r.err).toBe(
      'smpsim: error: bench: --unmap-pages 16: "16" is not a page count (an integer from 1 to 15)\n',
    );
  });
});
