/**
 * The HTML report in a real browser: Debian's Chromium (`/usr/bin/chromium`, or `$CHROMIUM`)
 * driven by playwright-core, never a downloaded browser. Opens generated reports from `file://`
 * with every network request refused, checks lanes, IPI arrows, acknowledgements and hazards,
 * steps through the slider and the buttons, checks that a run of thousands of records keeps only
 * the rows in view in the DOM, and saves screenshots under out/. Skipped, with a message saying
 * so, only when no Chromium is installed.
 */

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hazard } from '../../src/check/hazard.ts';
import { buildReportModel, type HtmlReportInput, renderHtmlReport } from '../../src/report/html.ts';
import { buildRunReport } from '../../src/report/run-report.ts';
import type { Protocol, Scenario } from '../../src/scenarios/scenario.ts';
import { runDeterministic } from '../../src/smp/hosts/deterministic.ts';
import { Machine } from '../../src/smp/machine.ts';
import { generatedScenario, teachingScenario } from './html-fixtures.ts';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const OUT = resolve(import.meta.dirname, '../../out');

if (!HAVE_CHROMIUM) {
  console.warn(
    `html.browser.test.ts: SKIPPED: no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM=/path/to/chromium)`,
  );
}

function reportInput(s: Scenario, protocol: Protocol, hazards: readonly Hazard[] = []) {
  const machine = Machine.fromScenario(s, { protocol });
  const r = runDeterministic(machine, { seed: 1 });
  const report = buildRunReport(machine, r, { protocol, host: 'deterministic', seed: 1 });
  return { scenario: s, report, records: r.records, hazards } satisfies HtmlReportInput;
}

/** The teaching run, with the stale-translation the checker will report, made by hand. */
function teachingInput(): HtmlReportInput {
  const plain = reportInput(teachingScenario(), 'sync-ipi');
  const rows = buildReportModel(plain).rows;
  const find = (cpu: number, text: string, last = false) => {
    const matches = rows.filter((r) => r[1] === cpu && r[3].startsWith(text));
    const r = last ? matches[matches.length - 1]! : matches[0]!;
    return { step: r[0], cpu, seq: r[4] };
  };
  const fill = find(1, 'fill 0x401000');
  const unmap = find(0, 'unmap 0x401000');
  const ignore = find(0, 'flush obligation 0x401000: ignored');
  const hit = find(1, 'TLB hit → frame 0x201000', true);
  const hazard: Hazard = {
    kind: 'stale-translation',
    cpu: 1,
    addr: 0x40_1000,
    frames: [0x20_1000],
    step: hit.step,
    why: 'cpu1 read 0x401000 through its cached entry for frame 0x201000 after cpu0 unmapped the page and ignore()d the flush',
    story: [
      { ...fill, text: 'cpu1 caches 0x401000 → frame 0x201000' },
      { ...unmap, text: 'cpu0 unmaps 0x401000' },
      { ...ignore, text: 'cpu0 ignore()s the MapperFlush: no invlpg, no shootdown' },
      { ...hit, text: 'cpu1 loads 0x401000: TLB hit on the stale entry' },
    ],
  };
  return { ...plain, hazards: [hazard] };
}

describe.skipIf(!HAVE_CHROMIUM)(
  `the HTML report in Chromium (${HAVE_CHROMIUM ? CHROMIUM : `SKIPPED: no Chromium at ${CHROMIUM}`})`,
  () => {
    let browser: Browser;
    const requests: string[] = [];
    const errors: string[] = [];

    async function open(name: string, input: HtmlReportInput): Promise<Page> {
      const file = join(OUT, name);
      writeFileSync(file, renderHtmlReport(input));
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      page.on('pageerror', (e) => errors.push(`${name}: ${e.message}`));
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(`${name}: console: ${m.text()}`);
      });
      // Self-contained means the page asks for nothing: refuse and record every request but itself.
      await page.route('**/*', (route) => {
        const url = route.request().url();
        if (url === pathToFileURL(file).href) return route.continue();
        requests.push(url);
        return route.abort();
      });
      await page.goto(pathToFileURL(file).href);
      return page;
    }

    beforeAll(async () => {
      mkdirSync(OUT, { recursive: true });
      browser = await chromium.launch({ executablePath: CHROMIUM });
    }, 60_000);
    afterAll(async () => {
      await browser?.close();
    });

    it('shows the lanes, the IPI arrows and acks, the hazard, and steps through the run', async () => {
      const input = teachingInput();
      const model = buildReportModel(input);
      const page = await open('html-report.html', input);

      // One lane per CPU.
      await expect
        .poll(() => page.locator('.lane-head').allInnerTexts())
        .toEqual(['cpu0 (A)', 'cpu1 (A)', 'cpu2 (A)']);

      // IPIs from cpu0 to both others, and their acknowledgements back to cpu0.
      const arrowTexts = (kind: string) =>
        page.$$eval(`#arrows path.arrow.${kind}`, (paths) =>
          paths.map((p) => {
            const text = (row: string | undefined) =>
              p.ownerDocument.querySelector(`.ev[data-row="${row}"]`)?.textContent ?? '';
            const rows = (p as unknown as { dataset: { from?: string; to?: string } }).dataset;
            return `${text(rows.from)} ⇒ ${text(rows.to)}`;
          }),
        );
      await page.locator('#slider').fill(String(model.rows.find((r) => r[2] === 'ipi')![0]));
      expect((await arrowTexts('ipi')).sort()).toEqual([
        'IPI → cpu1: 1 page ⇒ IPI from cpu0: 1 page, acked',
        'IPI → cpu2: 1 page ⇒ IPI from cpu0: 1 page, acked',
      ]);
      expect((await arrowTexts('ack')).sort()).toEqual([
        'IPI from cpu0: 1 page, acked ⇒ shootdown done: 2 acks',
        'IPI from cpu0: 1 page, acked ⇒ shootdown done: 2 acks',
      ]);

      // The hazard: its card with the story, and the offending access marked in cpu1's lane.
      await expect
        .poll(() => page.locator('.hazard .kind').allInnerTexts())
        .toEqual(['stale-translation']);
      expect(await page.locator('.hazard .story li').count()).toBe(4);

      // Stepping: cpu1 fills 0x400000 at step 0; the shootdown takes it away at its receive.
      const tlbRow = (cpu: number, page_: string) =>
        page.locator(`#state table.tlb[data-cpu="${cpu}"] tr[data-page="${page_}"]`);
      await page.locator('#slider').fill('0');
      await expect.poll(() => tlbRow(1, '0x400000').count()).toBe(1);
      const receive = model.rows.find((r) => r[1] === 1 && r[3].startsWith('IPI from'))![0];
      await page.locator('#slider').fill(String(receive - 1));
      expect(await tlbRow(1, '0x400000').count()).toBe(1);
      await page.locator('#next').click();
      await expect.poll(() => page.locator('#step-input').inputValue()).toBe(String(receive));
      expect(await tlbRow(1, '0x400000').count()).toBe(0);
      await page.locator('#prev').click();
      await expect.poll(() => tlbRow(1, '0x400000').count()).toBe(1);
      // At the unmap, the page-table view shows the leaf entry cleared.
      const unmapStep = model.rows.find((r) => r[3].startsWith('unmap 0x400000 → ok'))![0];
      await page.locator('#step-input').fill(String(unmapStep));
      await page.locator('#step-input').press('Enter');
      await expect
        .poll(() => page.locator('#state table.pte tr.cleared td').allTextContents())
        .toEqual([
          'A',
          'P1',
          '0x400000',
          '',
          'cleared',
          '',
          `step ${unmapStep}: entry cleared (not mapped)`,
        ]);

      // "Show in diagram" goes to the hazard's step: the stale entry is flagged against the tables.
      await page.locator('.show-hazard').click();
      const h = model.hazards[0]!;
      await expect.poll(() => page.locator('#slider').inputValue()).toBe(String(h.step));
      await expect
        .poll(() => page.locator('.ev.hz').textContent())
        .toContain('⚠ stale-translation');
      // Story rows carry their number; the first is far above, drawn once scrolled to.
      expect(await page.locator('.ev.story').count()).toBeGreaterThan(1);
      await page.locator('.story-link').first().click();
      await expect
        .poll(() => page.locator('.ev.story').first().textContent())
        .toBe('1fill 0x401000 → 0x201000 [W S]');
      await page.locator('.show-hazard').click();
      await expect.poll(() => page.locator('#slider').inputValue()).toBe(String(h.step));
      const stale = tlbRow(1, '0x401000');
      expect(await stale.getAttribute('class')).toBe('stale');
      expect(await stale.locator('td.check').textContent()).toBe('≠ not mapped');

      await page.screenshot({ path: join(OUT, 'html-report.png'), fullPage: true });
      expect(errors).toEqual([]);
      expect(requests).toEqual([]);
      await page.close();
    });

    it('keeps only the rows in view in the DOM for a run of thousands of records', async () => {
      const s = generatedScenario({ seed: 7, cpus: 4, phases: 24, opsPerPhase: 12, pcid: true });
      const input = reportInput(s, 'sync-ipi');
      const model = buildReportModel(input);
      expect(input.records.length).toBeGreaterThan(3000);
      const page = await open('html-report-large.html', input);
      await expect.poll(() => page.locator('.lane-head').count()).toBe(4);
      const rendered = () => page.locator('#rows .ev').count();
      expect(await rendered()).toBeGreaterThan(10);
      expect(await rendered()).toBeLessThan(150);

      // Scrolled to the end, the last rows are drawn (with their arrows), and still only those.
      await page.locator('#scroller').evaluate((el) => {
        el.scrollTop = el.scrollHeight;
      });
      const last = model.rows.length - 1;
      await expect.poll(() => page.locator(`.ev[data-row="${last}"]`).count()).toBe(1);
      expect(await rendered()).toBeLessThan(150);

      // The slider reaches any step; the view scrolls to it and the state panel follows.
      const mid = model.rows[Math.floor(model.rows.length / 2)]!;
      await page.locator('#slider').fill(String(mid[0]));
      await expect
        .poll(() => page.locator(`.ev.sel[data-step="${mid[0]}"]`).count())
        .toBeGreaterThan(0);
      expect(await page.locator('#state h3[data-cpu]').count()).toBe(4);
      expect(await page.locator('#arrows path.arrow').count()).toBeGreaterThan(0);

      await page.screenshot({ path: join(OUT, 'html-report-large.png') });
      expect(errors).toEqual([]);
      expect(requests).toEqual([]);
      await page.close();
    });
  },
);
