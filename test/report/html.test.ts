/**
 * The HTML report: the TLB and page-table views it reconstructs from the trace equal the real
 * machine's state at every step (property, against runs stopped at that step), IPI arrows and
 * acknowledgements link the right rows, hazards render with their stories, the page is
 * self-contained, escaped and deterministic, and `smpsim run --html` writes it.
 */

import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Hazard } from '../../src/check/hazard.ts';
import { main } from '../../src/cli/program.ts';
import { resolveScenario } from '../../src/cli/run.ts';
import { TLB_DIRTY, TLB_GLOBAL, TLB_NX, TLB_USER, TLB_WRITABLE } from '../../src/cpu/tlb.ts';
import { PageTableFlags } from '../../src/paging/flags.ts';
import { PAGE_SCRIPT } from '../../src/report/html/page-script.ts';
import {
  buildReportModel,
  escapeHtml,
  type HtmlReportInput,
  type ReportModel,
  renderHtmlReport,
  tablesAt,
  tlbAt,
} from '../../src/report/html.ts';
import { buildRunReport } from '../../src/report/run-report.ts';
import type { Protocol, Scenario } from '../../src/scenarios/scenario.ts';
import { runDeterministic } from '../../src/smp/hosts/deterministic.ts';
import { Machine } from '../../src/smp/machine.ts';
import { GENERATED_PAGES, generatedScenario, realEntry } from './html-fixtures.ts';

function run(
  s: Scenario,
  protocol: Protocol,
  opts: { seed?: number; maxSteps?: number; hazards?: readonly Hazard[] } = {},
): { machine: Machine; input: HtmlReportInput; model: ReportModel } {
  const machine = Machine.fromScenario(s, { protocol });
  const r = runDeterministic(machine, {
    seed: opts.seed ?? 1,
    ...(opts.maxSteps === undefined ? {} : { maxSteps: opts.maxSteps }),
  });
  const report = buildRunReport(machine, r, {
    protocol,
    host: 'deterministic',
    seed: opts.seed ?? 1,
  });
  const input = { scenario: s, report, records: r.records, hazards: opts.hazards ?? [] };
  return { machine, input, model: buildReportModel(input) };
}

const SIZE_SHIFTS = [12, 21, 30];

/** The model's TLB of each CPU after `step`, as sorted strings. */
function modelTlbs(model: ReportModel, step: number): string[][] {
  return tlbAt(model, step).map((ids) =>
    ids
      .map((id) => {
        const e = model.tlb.entries[id]!;
        const a = e.attr;
        return `${e.pageHex}/${SIZE_SHIFTS[e.sizeClass]} → ${e.frameHex} pcid ${e.pcid} ${a & TLB_GLOBAL ? 'G' : ''}${a & TLB_WRITABLE ? 'W' : ''}${a & TLB_USER ? 'U' : ''}${a & TLB_NX ? 'X' : ''}${a & TLB_DIRTY ? 'D' : ''}`;
      })
      .sort(),
  );
}

/** The machine's real TLBs, in the same form. */
function realTlbs(machine: Machine): string[][] {
  return machine.cpus.map((cpu) =>
    cpu.tlb
      .entries()
      .map(
        (e) =>
          `0x${e.pageStart.toString(16)}/${e.sizeShift} → 0x${e.frame.toString(16)} pcid ${e.pcid} ${e.global ? 'G' : ''}${e.writable ? 'W' : ''}${e.user ? 'U' : ''}${e.nx ? 'X' : ''}${e.dirty ? 'D' : ''}`,
      )
      .sort(),
  );
}

/**
 * Compares the model's page-table view after `step` with the machine's real tables: every tracked
 * entry has the real flags (and frame, for leaves), and every page the scenario can map is in the
 * view exactly when its real leaf entry is non-zero.
 */
function expectTablesMatch(model: ReportModel, step: number, machine: Machine): void {
  const view = tablesAt(model, step);
  const mem = machine.setup.memory;
  const p4 = (as: string) => machine.setup.spaces.get(as)!.p4.startAddress;
  const mismatches: string[] = [];
  for (const [key, v] of view) {
    const k = model.tables.keys[key]!;
    const real = realEntry(mem, p4(model.spaces[k.as]!), k.level, k.start);
    const where = `${model.spaces[k.as]} P${k.level} ${k.startHex}`;
    if (real === undefined) {
      mismatches.push(`${where}: view has ${v.flagsHex}, real entry is zero`);
      continue;
    }
    const flags = PageTableFlags.fromEntryWords(real.lo, real.hi);
    if (flags !== v.flags)
      mismatches.push(`${where}: view flags ${v.flagsHex}, real ${PageTableFlags.hex(flags)}`);
    const bytes = 2 ** SIZE_SHIFTS[k.level - 1]!;
    if (v.leaf && Math.floor(real.address / bytes) * bytes !== v.frame)
      mismatches.push(`${where}: view frame ${v.frameHex}, real ${real.address.toString(16)}`);
  }
  for (const g of GENERATED_PAGES) {
    const as = model.spaces.indexOf(g.as);
    if (as < 0) continue;
    const real = realEntry(mem, p4(g.as), g.level, g.page);
    const key = model.tables.keys.findIndex(
      (k) => k.as === as && k.level === g.level && k.start === g.page,
    );
    const inView = key >= 0 && view.has(key);
    if ((real !== undefined) !== inView)
      mismatches.push(
        `${g.as} ${g.page.toString(16)}: real ${real ? 'mapped' : 'zero'}, view ${inView}`,
      );
  }
  expect(mismatches).toEqual([]);
}

describe('the reconstructed state', () => {
  it('equals the real TLBs and page tables at every step of random runs (stopped there)', () => {
    fc.assert(
      fc.property(
        fc.record({
          seed: fc.integer({ min: 1, max: 2 ** 31 }),
          cpus: fc.integer({ min: 2, max: 4 }),
          pcid: fc.boolean(),
          protocol: fc.constantFrom<Protocol>('none', 'sync-ipi', 'batched', 'lazy', 'broadcast'),
          ways: fc.constantFrom(1, 2, 4),
          cut: fc.double({ min: 0, max: 1, noNaN: true }),
        }),
        ({ seed, cpus, pcid, protocol, ways, cut }) => {
          const s = generatedScenario({
            seed,
            cpus,
            phases: 3,
            opsPerPhase: 10,
            pcid,
            tlb: { entries: 8, ways },
          });
          const full = run(s, protocol, { seed });
          const steps = full.model.steps;
          // A run stopped after `k` steps made the same choices as the full run up to there.
          const k = Math.max(1, Math.min(steps, Math.ceil(cut * steps)));
          const stopped = run(s, protocol, { seed, maxSteps: k });
          expect(modelTlbs(full.model, k - 1)).toEqual(realTlbs(stopped.machine));
          expectTablesMatch(full.model, k - 1, stopped.machine);
          expect(full.model.unmatchedEvictions).toBe(0);
        },
      ),
      { numRuns: 25 },
    );
  });

  it('a generated run of thousands of records ends in the real state', () => {
    const s = generatedScenario({ seed: 7, cpus: 4, phases: 24, opsPerPhase: 12, pcid: true });
    const { machine, input, model } = run(s, 'sync-ipi', { seed: 3 });
    expect(input.records.length).toBeGreaterThan(3000);
    expect(model.rows.length).toBeGreaterThan(2500);
    expect(modelTlbs(model, model.steps)).toEqual(realTlbs(machine));
    expectTablesMatch(model, model.steps, machine);
    // Every IPI found its receiver, and every receipt was acknowledged to its sender.
    const sends = input.records.filter((r) => r.kind === 19).length;
    const kinds = model.arrows.map((a) => model.arrowKinds[a[2]]);
    expect(kinds.filter((k) => k === 'ipi').length).toBe(sends);
    expect(kinds.filter((k) => k === 'ack').length).toBe(sends);
    expect(model.unmatchedEvictions).toBe(0);
  });

  it('tracks A/D bits the walker sets and update_flags clearing them', () => {
    const { model } = run(resolveScenario('unmap-without-shootdown'), 'none');
    const keyA = model.tables.keys.findIndex((k) => k.level === 1 && k.start === 0x40_0000);
    const versions = model.tables.versions.filter((v) => v.key === keyA);
    expect(versions.map((v) => [v.flagsText, v.cause])).toEqual([
      ['P W U', 'initial mapping'],
      ['P W U A D', "ACCESSED | DIRTY set by cpu0's walk"],
    ]);
    // Cleared by the unmap at step 10 (a change with version -1).
    expect(model.tables.changes).toContainEqual([10, keyA, -1]);
  });
});

describe('the diagram', () => {
  it('draws the IPI from its sender to its receiver and the acknowledgement back', () => {
    const { model } = run(resolveScenario('unmap-without-shootdown'), 'sync-ipi');
    const text = (row: number) => `${model.rows[row]![1]}:${model.rows[row]![3]}`;
    expect(model.arrows.map((a) => [text(a[0]), text(a[1]), model.arrowKinds[a[2]]])).toEqual([
      ['0:IPI → cpu1: 1 page', '1:IPI from cpu0: 1 page, acked', 'ipi'],
      ['1:IPI from cpu0: 1 page, acked', '0:shootdown done: 1 ack', 'ack'],
    ]);
    // The receiving CPU's entry went with the shootdown at the receive step.
    const recvStep = model.rows[model.arrows[0]![1]]![0];
    expect(modelTlbs(model, recvStep - 1)[1]).toHaveLength(1);
    expect(modelTlbs(model, recvStep)[1]).toEqual([]);
  });

  it('under protocol none there is no arrow, and cpu1 keeps the entry the tables dropped', () => {
    const { model } = run(resolveScenario('unmap-without-shootdown'), 'none');
    expect(model.arrows).toEqual([]);
    const last = model.steps - 1;
    expect(modelTlbs(model, last)[1]).toEqual(['0x400000/12 → 0x200000 pcid 0 WUD']);
    expect([...tablesAt(model, last).values()]).toEqual([]);
  });

  it('shows every record but accesses and A/D updates, in order, one row each', () => {
    const { input, model } = run(resolveScenario('unmap-without-shootdown'), 'sync-ipi');
    const shown = input.records.filter((r) => r.kind !== 9 && r.kind !== 7);
    expect(model.rows.map((r) => [r[0], r[1], r[4]])).toEqual(
      shown.map((r) => [r.step, r.cpu, r.seq]),
    );
    expect(model.rows.map((r) => r[3])).toContain('5: load r1 ← [0x400000]/8');
    expect(model.rows.map((r) => r[3])).toContain(
      '#PF 0x400000 code 0x0 (not-present, read, supervisor)',
    );
  });
});

describe('hazards', () => {
  const s = resolveScenario('unmap-without-shootdown');
  const plain = run(s, 'none');
  const rowText = (m: ReportModel, row: number) => m.rows[row]?.[3];
  const seqOf = (cpu: number, text: string) => {
    const r = plain.model.rows.find((x) => x[1] === cpu && x[3] === text)!;
    return { step: r[0], seq: r[4] };
  };
  const hit = seqOf(1, 'TLB hit → frame 0x200000');
  const unmap = seqOf(0, 'unmap 0x400000 → ok (frame 0x200000)');
  const stale: Hazard = {
    kind: 'stale-translation',
    cpu: 1,
    addr: 0x40_0000,
    frames: [0x20_0000],
    step: hit.step,
    why: 'cpu1 read 0x400000 through a TLB entry for frame 0x200000 <after> the unmap & flush',
    story: [
      { step: unmap.step, cpu: 0, text: 'cpu0 unmapped 0x400000', seq: unmap.seq },
      { step: hit.step, cpu: 1, text: 'cpu1 hit its stale entry', seq: hit.seq },
    ],
  };
  const deadlock: Hazard = {
    kind: 'deadlock',
    cpu: 0,
    addr: undefined,
    frames: [],
    step: 1,
    why: 'every CPU waits',
    story: [{ step: 999, cpu: 0, text: 'no such record', seq: 12345 }],
  };

  it('links each story event to its diagram row, and the hazard to the offending access', () => {
    const { model } = run(s, 'none', { hazards: [stale, deadlock] });
    const [h, d] = model.hazards;
    expect(h).toMatchObject({
      kind: 'stale-translation',
      addrHex: '0x400000',
      framesHex: ['0x200000'],
    });
    expect(h!.story.map((e) => rowText(model, e.row))).toEqual([
      'unmap 0x400000 → ok (frame 0x200000)',
      'TLB hit → frame 0x200000',
    ]);
    expect(rowText(model, h!.row)).toBe('TLB hit → frame 0x200000');
    // A story event that names no record points nowhere; the hazard falls back to its step's row.
    expect(d!.addrHex).toBeUndefined();
    expect(d!.story[0]!.row).toBe(-1);
    expect(model.rows[d!.row]!.slice(0, 2)).toEqual([1, 0]);
  });

  it('also reads a story seq as an index into the run records, checked against cpu and step', () => {
    const records = plain.input.records;
    const hitIndex = records.findIndex((r) => r.cpu === 1 && r.kind === 2);
    const unmapIndex = records.findIndex((r) => r.cpu === 0 && r.kind === 10);
    const byIndex: Hazard = {
      ...stale,
      story: [
        { step: unmap.step, cpu: 0, text: 'unmap', seq: unmapIndex },
        { step: hit.step, cpu: 1, text: 'hit', seq: hitIndex },
        // Names a record of another CPU and step under both readings: the step's first row.
        { step: hit.step, cpu: 1, text: 'wrong seq', seq: 0 },
      ],
    };
    const { model } = run(s, 'none', { hazards: [byIndex] });
    expect(model.hazards[0]!.story.map((e) => rowText(model, e.row))).toEqual([
      'unmap 0x400000 → ok (frame 0x200000)',
      'TLB hit → frame 0x200000',
      '5: load r1 ← [0x400000]/8',
    ]);
  });

  it('renders each hazard with its kind, why and numbered story, escaped', () => {
    const html = renderHtmlReport(run(s, 'none', { hazards: [stale, deadlock] }).input);
    expect(html).toContain('<span class="kind">stale-translation</span>');
    expect(html).toContain('cpu1 · 0x400000 · frame 0x200000 · step');
    expect(html).toContain(escapeHtml(stale.why));
    expect(html).not.toContain('<after>');
    expect(html).toContain('cpu0 unmapped 0x400000</li>');
    expect(html).toContain(
      '<span class="kind">deadlock</span> <span class="where">cpu0 · step 1</span>',
    );
    expect(html).toContain('2 hazards');
  });

  it('an empty list says so', () => {
    const html = renderHtmlReport(plain.input);
    expect(html).toContain('No hazards reported for this run.');
    expect(plain.model.hazards).toEqual([]);
  });
});

describe('the page', () => {
  const { input, model } = run(resolveScenario('unmap-without-shootdown'), 'sync-ipi');
  const html = renderHtmlReport(input);

  it('is self-contained: no external script, style, image, font or link', () => {
    expect(html).not.toMatch(/<link\b/i);
    expect(html).not.toMatch(/\bsrc\s*=/i);
    expect(html).not.toMatch(/@import|@font-face/i);
    expect(html).not.toMatch(/\bfetch\(|XMLHttpRequest|WebSocket|import\(/);
    // The one URL is the SVG namespace name, which is never fetched.
    expect(html.match(/https?:\/\/[^'"\s)]*/g)).toEqual(['http://www.w3.org/2000/svg']);
    expect([...html.matchAll(/url\(([^)]*)\)/g)].map((m) => m[1])).toEqual(["#head-' + kind + '"]);
  });

  it('embeds the model as JSON that parses back to it', () => {
    const json = /<script type="application\/json" id="smpsim-data">(.*?)<\/script>/s.exec(html);
    expect(JSON.parse(json![1]!)).toEqual(JSON.parse(JSON.stringify(model)));
  });

  it('escapes scenario text in the markup and in the embedded JSON', () => {
    const base = resolveScenario('unmap-without-shootdown');
    const evil = { ...base, description: '</script><img src=x onerror=alert(1)> & more' };
    const page = renderHtmlReport({ ...input, scenario: evil });
    expect(page).toContain('&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt; &amp; more');
    expect(page.match(/<\/script>/g)).toHaveLength(2);
    expect(page).not.toContain('<img');
  });

  it('is deterministic: the same run renders the same bytes', () => {
    const again = run(resolveScenario('unmap-without-shootdown'), 'sync-ipi');
    expect(renderHtmlReport(again.input)).toBe(html);
  });

  it('shows the counters and the run line', () => {
    expect(html).toContain('2 CPUs · protocol sync-ipi · host deterministic · seed 1 · 18 steps');
    expect(html).toMatch(/<td>cpu1<\/td><td class="status-faulted">faulted<\/td><td>6<\/td>/);
    expect(html).toContain('cpu1 at step 17: #PF 0x400000, error code 0x0');
  });

  it('warns when trace records were lost', () => {
    const lossy = {
      ...input,
      report: { ...input.report, stats: { ...input.report.stats, trace_lost: 5 } },
    };
    expect(renderHtmlReport(lossy)).toContain('5 trace records were lost');
    expect(html).not.toContain('were lost');
  });

  it('carries a script that parses', () => {
    expect(() => new Function(PAGE_SCRIPT)).not.toThrow();
  });
});

describe('smpsim run --html', () => {
  const dir = mkdtempSync(join(tmpdir(), 'smpsim-html-'));
  async function cli(...argv: string[]) {
    let out = '';
    let err = '';
    const status = await main(argv, { out: (t) => (out += t), err: (t) => (err += t) });
    return { status, out, err };
  }

  it('writes the report and leaves standard output as it was', async () => {
    const file = join(dir, 'report.html');
    const plainRun = await cli('run', 'unmap-without-shootdown', '--protocol', 'sync-ipi');
    const r = await cli('run', 'unmap-without-shootdown', '--protocol', 'sync-ipi', '--html', file);
    expect(r.status).toBe(0);
    expect(r.out).toBe(plainRun.out);
    expect(r.err).toBe(`smpsim: wrote the HTML report to ${file}\n`);
    const expected = renderHtmlReport(
      run(resolveScenario('unmap-without-shootdown'), 'sync-ipi').input,
    );
    expect(readFileSync(file, 'utf8')).toBe(expected);
  });

  it('works with --json, and on the worker host', async () => {
    const file = join(dir, 'workers.html');
    const r = await cli(
      'run',
      'unmap-without-shootdown',
      '--host',
      'workers',
      '--json',
      '--html',
      file,
    );
    expect(r.status).toBe(0);
    expect(JSON.parse(r.out).host).toBe('workers');
    const page = readFileSync(file, 'utf8');
    expect(page).toContain('host workers');
    expect(page).toContain('IPI → cpu1: 1 page');
  });

  it('creates missing folders; an unwritable path is a one-line error with status 2', async () => {
    const nested = join(dir, 'a', 'b', 'r.html');
    expect((await cli('run', 'unmap-without-shootdown', '--html', nested)).status).toBe(0);
    expect(readFileSync(nested, 'utf8')).toMatch(/^<!DOCTYPE html>/);
    // A path through a regular file cannot be a folder.
    const bad = join(nested, 'r.html');
    const r = await cli('run', 'unmap-without-shootdown', '--html', bad);
    expect(r.status).toBe(2);
    expect(r.err).toMatch(
      new RegExp(
        `^smpsim: error: run: --html ${bad}: cannot write the report \\((ENOTDIR|EEXIST)\\)\n$`,
      ),
    );
  });
});
