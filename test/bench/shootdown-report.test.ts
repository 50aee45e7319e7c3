/**
 * The benchmark's outputs from a tiny modeled-clock sweep: terminal tables that name their clock,
 * CSV with one well-formed row per point, JSON of the whole result, and SVG plots (well-formed,
 * titled, byte-for-byte the same for the same result).
 */

import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runShootdownBench } from '../../src/bench/shootdown-bench.ts';
import {
  modeledCsv,
  renderShootdownReport,
  writeShootdownFiles,
} from '../../src/bench/shootdown-report.ts';
import { parseVariant } from '../../src/bench/variant.ts';
import { DEFAULT_COST_MODEL } from '../../src/cpu/cost-model.ts';

async function tiny() {
  return runShootdownBench({
    cpus: [2, 4],
    pages: [1, 34],
    variants: ['sync-ipi', 'batched', 'sync-ipi+early-ack'].map(parseVariant),
    costs: DEFAULT_COST_MODEL,
    modeled: true,
    wall: false,
    wallMaxCpus: 4,
    warmup: 1,
    repeats: 1,
    phaseMs: 1,
    minRounds: 1,
    warmupMs: 1,
    floorRuns: 1,
  });
}

/** Parses CSV without quoted fields (what these files hold) into rows of cells. */
const rows = (csv: string) =>
  csv
    .trimEnd()
    .split('\r\n')
    .map((l) => l.split(','));

describe('shootdown benchmark outputs', () => {
  it('prints tables that say which clock they show, and the calibration', async () => {
    const r = await tiny();
    const text = renderShootdownReport(r);
    expect(text).toContain(r.machine);
    expect(text).toContain('Modeled clock (deterministic host)');
    expect(text).toContain('calibration (modeled clock)');
    expect(text).toContain('within 10%');
    expect(text).not.toContain('Wall clock');
    // 1 CPU is always run: the baseline of the remote part.
    expect(r.settings.cpus).toEqual([1, 2, 4]);
    expect(r.modeled!.points).toHaveLength(3 * 3 * 2);
  });

  it('writes CSV, JSON and SVG files that are well formed', async () => {
    const r = await tiny();
    const dir = mkdtempSync(join(tmpdir(), 'smpsim-bench-'));
    const files = await writeShootdownFiles(r, join(dir, 'nested'));
    expect(files.map((f) => f.slice(dir.length + 8))).toEqual([
      'shootdown.json',
      'shootdown-modeled.csv',
      'latency-vs-pages.svg',
      'ipis-per-protocol.svg',
      'latency-vs-cpus.svg',
    ]);
    const csv = rows(readFileSync(files[1]!, 'utf8'));
    expect(csv[0]!.slice(0, 5)).toEqual(['clock', 'host', 'variant', 'cpus', 'pages']);
    expect(csv).toHaveLength(1 + r.modeled!.points.length);
    for (const line of csv) expect(line).toHaveLength(csv[0]!.length);
    const op = csv[0]!.indexOf('op_cycles_median');
    for (const line of csv.slice(1)) expect(Number(line[op])).toBeGreaterThan(0);
    const json = JSON.parse(readFileSync(files[0]!, 'utf8'));
    expect(json.format).toBe('smpsim-bench-shootdown/1');
    expect(json.modeled.unit).toBe('cycles');
    expect(json.calibration.within).toBe(true);
    for (const svg of files.filter((f) => f.endsWith('.svg')).map((f) => readFileSync(f, 'utf8'))) {
      expect(svg.startsWith('<svg')).toBe(true);
      expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
      expect(svg).toContain('modeled clock');
    }
    expect(readFileSync(files[2]!, 'utf8')).toContain('33-page ceiling');
    // The same result draws the same bytes.
    const again = await writeShootdownFiles(r, join(dir, 'again'));
    for (let i = 0; i < files.length; i++) {
      expect(readFileSync(again[i]!, 'utf8')).toBe(readFileSync(files[i]!, 'utf8'));
    }
    expect(modeledCsv(r)).toBe(readFileSync(files[1]!, 'utf8'));
  });
});
