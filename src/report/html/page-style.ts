/**
 * The HTML report's stylesheet, inlined into the page (no external fonts or files). Colours
 * name event kinds: walks and fills blue, evictions orange, page-table changes purple, IPIs
 * teal, acknowledgements green, faults and hazards red.
 */

/** CSS of the HTML report. */
export const PAGE_STYLE = `
:root {
  --fg: #1d2330; --muted: #5f6b7a; --line: #d8dde5; --bg: #ffffff; --panel: #f6f8fb;
  --instr: #1d2330; --hit: #2f7d32; --miss: #8a6d00; --walk: #1f5fbf; --fill: #1f5fbf;
  --evict: #c25a00; --fault: #c62828; --pt: #6a3fb5; --flush: #00796b; --ipi: #00838f;
  --ack: #2e7d32; --lazy: #8e6a00; --broadcast: #5e35b1; --hz: #d32f2f; --sel: #e3edff;
  --row-h: 20px;
}
* { box-sizing: border-box; }
body { margin: 0; font: 13px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg); background: var(--bg); }
header, #hazards, #counters, footer { padding: 8px 16px; }
h1 { font-size: 20px; margin: 6px 0 2px; }
h2 { font-size: 15px; margin: 10px 0 6px; }
h3 { font-size: 13px; margin: 6px 0 4px; }
.subtitle { color: var(--muted); margin: 0 0 6px; }
.warning { background: #fff3e0; border-left: 4px solid var(--evict); padding: 4px 8px; margin: 4px 0; }
.description summary, details summary { cursor: pointer; color: var(--muted); }
.description p { max-width: 110ch; }
.none { color: var(--muted); margin: 4px 0; }
button { font: inherit; cursor: pointer; border: 1px solid var(--line); background: #fff;
  border-radius: 4px; padding: 2px 8px; }
button:hover { background: var(--sel); }
code, .mono, .ev, table.tlb td, table.pte td, .schedule { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; }

/* hazards */
#hazards { display: flex; flex-wrap: wrap; gap: 8px; align-items: flex-start; }
#hazards > h2 { flex-basis: 100%; margin-bottom: 0; }
.hazard { border: 1px solid #f1b7b7; border-left: 5px solid var(--hz); background: #fff7f7;
  border-radius: 4px; padding: 4px 10px 6px; flex: 1 1 420px; max-width: 760px; }
.hazard.active { box-shadow: 0 0 0 2px var(--hz); }
.hazard h3 { display: flex; gap: 8px; align-items: baseline; flex-wrap: wrap; }
.hazard .kind { color: var(--hz); font-weight: 700; }
.hazard .where { color: var(--muted); font-weight: 400; }
.hazard .why { margin: 2px 0 4px; }
.hazard .story { margin: 0; padding-left: 4px; list-style: none; }
.hazard .story li { margin: 2px 0; }
.story-link { padding: 0 6px; font-size: 12px; }
.num { display: inline-block; min-width: 16px; height: 16px; border-radius: 8px; background: var(--hz);
  color: #fff; font-size: 11px; line-height: 16px; text-align: center; margin-right: 3px; }

/* controls */
#controls { position: sticky; top: 0; z-index: 20; display: flex; gap: 8px; align-items: center;
  padding: 6px 16px; background: #fff; border-top: 1px solid var(--line); border-bottom: 1px solid var(--line); }
#slider { flex: 1 1 auto; min-width: 160px; }
#step-input { width: 6em; font: inherit; }
#step-label { flex: 0 1 46%; color: var(--muted); white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
#overview { position: relative; height: 12px; margin: 0 0 4px; background: var(--panel);
  border: 1px solid var(--line); border-radius: 3px; cursor: pointer; }
#overview .tick { position: absolute; top: 0; bottom: 0; width: 2px; }
#overview .tick.hz { background: var(--hz); }
#overview .tick.ipi { background: var(--ipi); opacity: .35; top: 7px; }
#overview .tick.sel { background: #1f5fbf; width: 3px; }

/* layout */
main { display: grid; grid-template-columns: minmax(0, 1fr) 520px; gap: 12px; padding: 8px 16px; }
@media (max-width: 1100px) { main { grid-template-columns: 1fr; } }

/* the sequence diagram */
#diagram { min-width: 0; }
#scroller { position: relative; height: 62vh; min-height: 320px; overflow: auto;
  border: 1px solid var(--line); border-radius: 4px; background: #fff; }
#lane-heads { position: sticky; top: 0; z-index: 5; height: 26px; background: var(--panel);
  border-bottom: 1px solid var(--line); }
.lane-head { position: absolute; top: 0; height: 26px; line-height: 26px; text-align: center; font-weight: 600;
  border-left: 1px solid var(--line); }
.lane-head .as { color: var(--muted); font-weight: 400; }
#canvas { position: relative; }
.lifeline { position: absolute; top: 0; bottom: 0; border-left: 1px solid var(--line); }
.lifeline::after { content: ""; position: absolute; top: 0; bottom: 0; left: 50%; border-left: 1px dashed #e4e8ee; }
#rows { position: absolute; inset: 0; }
#arrows { position: absolute; left: 0; pointer-events: none; overflow: hidden; }
.step-no { position: absolute; left: 0; width: 58px; height: var(--row-h); line-height: var(--row-h); text-align: right;
  color: var(--muted); font-size: 11px; padding-right: 6px; cursor: pointer; }
.step-band { position: absolute; left: 0; right: 0; background: var(--sel); }
.ev { position: absolute; height: calc(var(--row-h) - 2px); line-height: calc(var(--row-h) - 2px); font-size: 12px;
  padding: 0 6px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; border-radius: 3px;
  cursor: pointer; background: #fff; border: 1px solid transparent; }
.ev:hover { border-color: var(--line); }
.ev.k-instr { font-weight: 600; color: var(--instr); background: #f1f3f7; }
.ev.k-hit { color: var(--hit); }
.ev.k-miss { color: var(--miss); }
.ev.k-walk, .ev.k-fill { color: var(--walk); }
.ev.k-evict { color: var(--evict); }
.ev.k-fault, .ev.k-halt.bad { color: var(--fault); font-weight: 600; }
.ev.k-pt { color: var(--pt); font-weight: 600; background: #f4effc; }
.ev.k-pt-err { color: var(--fault); background: #f4effc; }
.ev.k-flush { color: var(--flush); }
.ev.k-flush-bad { color: #fff; background: var(--hz); }
.ev.k-maint, .ev.k-cr3 { color: var(--flush); }
.ev.k-frame { color: var(--muted); }
.ev.k-halt, .ev.k-barrier { color: var(--muted); font-style: italic; }
.ev.k-ipi { color: var(--ipi); font-weight: 600; background: #e9f7f8; }
.ev.k-ack { color: var(--ack); font-weight: 600; background: #eaf6eb; }
.ev.sel { border-color: #8fb0ea; }
.ev.hz { background: #ffe3e3; color: var(--hz); border-color: var(--hz); font-weight: 700; }
.ev.story { box-shadow: 0 0 0 2px var(--hz); }
.ev .badge { display: inline-block; background: var(--hz); color: #fff; border-radius: 3px; padding: 0 4px;
  margin-right: 4px; font-size: 10px; line-height: 14px; }
.arrow { fill: none; stroke-width: 1.6; }
.arrow.ipi { stroke: var(--ipi); }
.arrow.lazy { stroke: var(--lazy); stroke-dasharray: 2 3; }
.arrow.broadcast { stroke: var(--broadcast); }
.arrow.ack { stroke: var(--ack); stroke-dasharray: 5 3; }
.legend { color: var(--muted); margin: 4px 0; }
.lg::before { content: ""; display: inline-block; width: 22px; height: 0; margin-right: 4px; vertical-align: middle; border-top: 2px solid; }
.lg.ipi::before { color: var(--ipi); }
.lg.ack::before { color: var(--ack); border-top-style: dashed; }
.lg.broadcast::before { color: var(--broadcast); }
.lg.lazy::before { color: var(--lazy); border-top-style: dotted; }
.lg.hz::before { color: var(--hz); border-top-width: 8px; }
.lg { margin-right: 10px; }

/* the state panel */
#state { background: var(--panel); border: 1px solid var(--line); border-radius: 4px; padding: 6px 10px;
  max-height: calc(62vh + 60px); overflow: auto; }
#state h3 { margin-top: 10px; }
#state .at { margin: 2px 0 6px; }
#state .at li { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12px; }
table { border-collapse: collapse; }
table.tlb, table.pte { width: 100%; font-size: 12px; background: #fff; }
table.tlb th, table.pte th { text-align: left; font-weight: 600; color: var(--muted); border-bottom: 1px solid var(--line); padding: 1px 4px; }
table.tlb td, table.pte td { padding: 1px 4px; border-bottom: 1px solid #eef1f5; white-space: nowrap; }
tr.new td { background: #e7f6e9; }
tr.other-pcid td { color: var(--muted); }
td.cause { white-space: normal !important; min-width: 14em; }
tr.stale td { background: #ffe3e3; }
tr.stale td.check { color: var(--hz); font-weight: 700; }
tr.changed td { background: #f1eafd; }
tr.cleared td { color: var(--muted); }
tr.cleared td:nth-child(3) { text-decoration: line-through; }
.empty { color: var(--muted); font-style: italic; margin: 2px 0; }
label.all { color: var(--muted); font-weight: 400; margin-left: 8px; }

/* counters */
table.counters td, table.counters th { border: 1px solid var(--line); padding: 2px 8px; text-align: right; }
table.counters th { background: var(--panel); }
table.counters td:first-child, table.counters td:nth-child(2) { text-align: left; }
.status-faulted, .status-failed { color: var(--fault); font-weight: 600; }
.clock { color: var(--muted); }
.schedule { white-space: pre-wrap; word-break: break-all; max-height: 12em; overflow: auto; background: var(--panel); padding: 4px; }
footer { color: var(--muted); font-size: 12px; border-top: 1px solid var(--line); }
`;
