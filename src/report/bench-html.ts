/**
 * The HTML page of a benchmark (`smpsim bench shootdown|workload --html FILE`): the terminal's
 * tables and the SVG plots in one self-contained file, in the run report's style (the same
 * stylesheet), so a sweep can be shared or opened from disk with no network.
 */

import { escapeHtml, pageOpening } from './html.ts';

/** What a benchmark page shows. */
export interface BenchPage {
  /** e.g. `smpsim bench shootdown`. */
  readonly title: string;
  /** The machine line and the command's options, one line. */
  readonly subtitle: string;
  /** The tables as the terminal printed them (each says which clock it shows). */
  readonly text: string;
  /** The plots: a caption and one SVG document each. */
  readonly plots: readonly (readonly [caption: string, svg: string])[];
}

/** Extra rules for the benchmark page, on top of the run report's stylesheet. */
const BENCH_STYLE = `
.plots { display: flex; flex-wrap: wrap; gap: 16px; padding: 8px 16px; }
.plots figure { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 8px;
  background: var(--panel); }
.plots figcaption { color: var(--muted); margin-bottom: 4px; }
pre.tables { padding: 8px 16px; margin: 0; overflow-x: auto; font-size: 12px; }
`;

/** Strips the XML prolog of a standalone SVG document so that it can sit inline in HTML. */
function inlineSvg(svg: string): string {
  return svg.replace(/^<\?xml[^>]*>\s*/, '');
}

/** The page; the same input gives the same bytes. */
export function renderBenchHtml(page: BenchPage): string {
  const figures = page.plots
    .map(
      ([caption, svg]) =>
        `<figure><figcaption>${escapeHtml(caption)}</figcaption>${inlineSvg(svg)}</figure>`,
    )
    .join('\n');
  return `${pageOpening(page.title, page.subtitle, BENCH_STYLE)}
</header>
${page.plots.length === 0 ? '' : `<section class="plots" aria-label="plots">\n${figures}\n</section>`}
<section aria-label="tables"><h2 style="padding: 0 16px">Tables</h2><pre class="tables">${escapeHtml(page.text)}</pre></section>
</body>
</html>
`;
}
