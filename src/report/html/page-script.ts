/**
 * The HTML report's script, inlined into the page: it reads the model (`ReportModel`, embedded as
 * JSON), draws the sequence diagram virtually (only the rows and arrows in view exist in the DOM,
 * so a run of many thousand records scrolls as fast as a short one), and replays the TLB,
 * page-table and CR3 histories to the selected step. Plain ES2020 with no dependencies; it never
 * puts model text into innerHTML (every string goes through textContent).
 */

/** JavaScript of the HTML report (the body of one `<script>` element). */
export const PAGE_SCRIPT = `
(function () {
  'use strict';
  var M = JSON.parse(document.getElementById('smpsim-data').textContent);
  var SVG_NS = 'http://www.w3.org/2000/svg';
  var ROW_H = 20, GUTTER = 64, OVERSCAN = 15;
  var LEVEL_BYTES = [0, 4096, 2097152, 1073741824, 549755813888];
  var SIZE_NAMES = ['4KiB', '2MiB', '1GiB'];
  var SIZE_LEVEL = [1, 2, 3];
  var n = M.cpus.length;
  var LANE_W = 240;
  var rows = M.rows, B = M.bits;

  function byId(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function alignDown(a, bytes) { return Math.floor(a / bytes) * bytes; }

  var scroller = byId('scroller'), canvas = byId('canvas'), rowsEl = byId('rows');
  var svg = byId('arrows'), heads = byId('lane-heads'), lifelines = byId('lifelines');
  var overview = byId('overview'), slider = byId('slider'), stepInput = byId('step-input');
  var stepLabel = byId('step-label'), stateEl = byId('state');
  var laneHeads = [], laneLines = [];
  M.cpus.forEach(function (c) {
    var h = el('div', 'lane-head', c.label + ' ');
    h.appendChild(el('span', 'as', '(' + M.spaces[c.as] + ')'));
    heads.appendChild(h);
    laneHeads.push(h);
    var l = el('div', 'lifeline');
    lifelines.appendChild(l);
    laneLines.push(l);
  });
  // Lanes share the diagram's width (170 to 360 px each; narrower lanes scroll sideways).
  function layout() {
    var avail = scroller.clientWidth - GUTTER - 4;
    LANE_W = Math.max(170, Math.min(360, Math.floor(avail / Math.max(1, n))));
    var width = GUTTER + n * LANE_W;
    canvas.style.height = (rows.length * ROW_H + 6) + 'px';
    canvas.style.width = width + 'px';
    heads.style.width = width + 'px';
    svg.setAttribute('width', String(width));
    for (var i = 0; i < n; i++) {
      laneHeads[i].style.left = laneLines[i].style.left = (GUTTER + i * LANE_W) + 'px';
      laneHeads[i].style.width = laneLines[i].style.width = LANE_W + 'px';
    }
  }
  layout();

  // Arrowheads, one marker per arrow kind.
  var defs = document.createElementNS(SVG_NS, 'defs');
  M.arrowKinds.forEach(function (k) {
    var m = document.createElementNS(SVG_NS, 'marker');
    m.setAttribute('id', 'head-' + k);
    m.setAttribute('viewBox', '0 0 10 10');
    m.setAttribute('refX', '9'); m.setAttribute('refY', '5');
    m.setAttribute('markerWidth', '7'); m.setAttribute('markerHeight', '7');
    m.setAttribute('orient', 'auto-start-reverse');
    var p = document.createElementNS(SVG_NS, 'path');
    p.setAttribute('d', 'M0,0 L10,5 L0,10 z');
    p.setAttribute('class', 'head ' + k);
    p.setAttribute('fill', getComputedStyle(document.documentElement).getPropertyValue('--' + k) || '#00838f');
    m.appendChild(p);
    defs.appendChild(m);
  });

  // Step -> first and last row (rows are in step order).
  var firstRow = new Int32Array(Math.max(1, M.steps)).fill(-1);
  var lastRow = new Int32Array(Math.max(1, M.steps)).fill(-1);
  rows.forEach(function (r, i) {
    if (r[0] < 0 || r[0] >= M.steps) return;
    if (firstRow[r[0]] < 0) firstRow[r[0]] = i;
    lastRow[r[0]] = i;
  });
  var hazardAtRow = {};
  M.hazards.forEach(function (h, i) {
    if (h.row >= 0) (hazardAtRow[h.row] = hazardAtRow[h.row] || []).push(i);
  });

  var selectedStep = 0, selectedHazard = -1, storyRows = {};

  // ---- the virtual diagram -------------------------------------------------------------------
  function laneX(cpu) { return GUTTER + cpu * LANE_W; }
  var pending = false;
  function schedule() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(function () { pending = false; renderDiagram(); });
  }
  function visibleRange() {
    var top = scroller.scrollTop - canvas.offsetTop;
    var first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
    var last = Math.min(rows.length - 1, Math.ceil((top + scroller.clientHeight) / ROW_H) + OVERSCAN);
    return [first, last];
  }
  function renderDiagram() {
    var range = visibleRange(), first = range[0], last = range[1];
    var frag = document.createDocumentFragment();
    var sf = firstRow[selectedStep], sl = lastRow[selectedStep];
    if (sf >= 0 && sl >= first && sf <= last) {
      var band = el('div', 'step-band');
      band.style.top = (sf * ROW_H) + 'px';
      band.style.height = ((sl - sf + 1) * ROW_H) + 'px';
      frag.appendChild(band);
    }
    for (var i = first; i <= last; i++) {
      var r = rows[i];
      if (i === 0 || rows[i - 1][0] !== r[0]) {
        var s = el('div', 'step-no', String(r[0]));
        s.style.top = (i * ROW_H) + 'px';
        s.dataset.step = String(r[0]);
        frag.appendChild(s);
      }
      var e = el('div', 'ev k-' + r[2]);
      e.style.top = (i * ROW_H + 1) + 'px';
      e.style.left = (laneX(r[1]) + 6) + 'px';
      e.style.width = (LANE_W - 12) + 'px';
      e.dataset.row = String(i);
      e.dataset.step = String(r[0]);
      if (r[0] === selectedStep) e.classList.add('sel');
      var hz = hazardAtRow[i];
      if (hz) {
        e.classList.add('hz');
        e.dataset.hazard = String(hz[0]);
        for (var k = 0; k < hz.length; k++) e.appendChild(el('span', 'badge', '⚠ ' + M.hazards[hz[k]].kind));
      }
      if (storyRows[i] !== undefined) {
        e.classList.add('story');
        e.appendChild(el('span', 'num', String(storyRows[i])));
      }
      e.appendChild(document.createTextNode(r[3]));
      e.title = r[3];
      frag.appendChild(e);
    }
    rowsEl.replaceChildren(frag);
    renderArrows(first, last);
  }
  function renderArrows(first, last) {
    var top = first * ROW_H, height = (last - first + 1) * ROW_H;
    svg.style.top = top + 'px';
    svg.setAttribute('height', String(Math.max(1, height)));
    var frag = document.createDocumentFragment();
    frag.appendChild(defs);
    for (var i = 0; i < M.arrows.length; i++) {
      var a = M.arrows[i], from = a[0], to = a[1];
      if (Math.max(from, to) < first || Math.min(from, to) > last) continue;
      var cf = rows[from][1], ct = rows[to][1];
      if (cf === ct) continue;
      var x1 = cf < ct ? laneX(cf) + LANE_W - 6 : laneX(cf) + 6;
      var x2 = cf < ct ? laneX(ct) + 6 : laneX(ct) + LANE_W - 6;
      var y1 = from * ROW_H + ROW_H / 2 - top, y2 = to * ROW_H + ROW_H / 2 - top;
      var kind = M.arrowKinds[a[2]];
      var p = document.createElementNS(SVG_NS, 'path');
      p.setAttribute('d', 'M' + x1 + ',' + y1 + ' L' + x2 + ',' + y2);
      p.setAttribute('class', 'arrow ' + kind);
      p.setAttribute('marker-end', 'url(#head-' + kind + ')');
      p.dataset.from = String(from);
      p.dataset.to = String(to);
      frag.appendChild(p);
    }
    svg.replaceChildren(frag);
  }
  scroller.addEventListener('scroll', schedule, { passive: true });
  window.addEventListener('resize', function () { layout(); schedule(); });
  rowsEl.addEventListener('click', function (ev) {
    var t = ev.target.closest('[data-step]');
    if (!t) return;
    if (t.dataset.hazard !== undefined) selectHazard(Number(t.dataset.hazard), false);
    select(Number(t.dataset.step), false);
  });

  // ---- replaying the histories to a step ----------------------------------------------------
  function Replay(changes, apply, reset) {
    this.changes = changes; this.apply = apply; this.reset = reset; this.next = 0; this.step = -2;
  }
  Replay.prototype.to = function (step) {
    if (step < this.step) { this.reset(); this.next = 0; }
    while (this.next < this.changes.length && this.changes[this.next][0] <= step) {
      this.apply(this.changes[this.next]); this.next++;
    }
    this.step = step;
  };
  var tlbLive = M.cpus.map(function () { return new Set(); });
  var tlbReplay = new Replay(M.tlb.changes, function (c) {
    var set = tlbLive[M.tlb.entries[c[1]].cpu];
    if (c[2]) set.add(c[1]); else set.delete(c[1]);
  }, function () { tlbLive.forEach(function (s) { s.clear(); }); });
  var tableNow = new Map(), tableCleared = new Map();
  var tableReplay = new Replay(M.tables.changes, function (c) {
    if (c[2] < 0) { tableNow.delete(c[1]); tableCleared.set(c[1], c[0]); }
    else { tableNow.set(c[1], c[2]); tableCleared.delete(c[1]); }
  }, function () { tableNow.clear(); tableCleared.clear(); });
  var cpuAs = M.cpus.map(function (c) { return c.as; });
  var cr3Replay = new Replay(M.cr3, function (c) { cpuAs[c[1]] = c[2]; },
    function () { M.cpus.forEach(function (c, i) { cpuAs[i] = c.as; }); });
  var keyIndex = new Map();
  M.tables.keys.forEach(function (k, i) { keyIndex.set(k.as + ':' + k.level + ':' + k.start, i); });
  var tableChangesAt = new Map();
  M.tables.changes.forEach(function (c) {
    var l = tableChangesAt.get(c[0]);
    if (!l) tableChangesAt.set(c[0], l = []);
    l.push(c);
  });

  function versionAt(as, level, addr) {
    var k = keyIndex.get(as + ':' + level + ':' + alignDown(addr, LEVEL_BYTES[level]));
    if (k === undefined) return undefined;
    var v = tableNow.get(k);
    return v === undefined ? undefined : M.tables.versions[v];
  }
  // The address space whose tables a cached entry stands for: a GLOBAL entry answers under every
  // PCID, so the current one; any other only under its own PCID (SDM 4.10.1).
  function spaceOf(entry, as) {
    if ((entry.attr & B.tlbGlobal) || entry.pcid === M.spacePcids[as]) return as;
    var other = M.spacePcids.indexOf(entry.pcid);
    return other < 0 ? as : other;
  }
  // How a cached entry compares with the page-table view of that address space.
  function check(entry, as) {
    var leaf = SIZE_LEVEL[entry.sizeClass];
    var v = versionAt(as, leaf, entry.page);
    if (!v || !(v.flags & B.present)) return 'not mapped';
    var w = (v.flags & B.writable) !== 0, u = (v.flags & B.user) !== 0, nx = (v.flags & B.noExecute) !== 0;
    for (var l = 4; l > leaf; l--) {
      var p = versionAt(as, l, entry.page);
      if (!p) continue;
      if (!(p.flags & B.present)) return 'not mapped';
      w = w && (p.flags & B.writable) !== 0; u = u && (p.flags & B.user) !== 0; nx = nx || (p.flags & B.noExecute) !== 0;
    }
    if (v.frame >= 0 && v.frame !== entry.frame) return 'frame ' + v.frameHex;
    if ((entry.attr & B.tlbWritable) && !w) return 'read-only';
    if ((entry.attr & B.tlbUser) && !u) return 'supervisor';
    if (!(entry.attr & B.tlbNx) && nx) return 'NX';
    return '';
  }

  var showAll = false;
  function renderState() {
    var step = selectedStep;
    tlbReplay.to(step); tableReplay.to(step); cr3Replay.to(step);
    var frag = document.createDocumentFragment();
    var title = el('h2', '', 'After step ' + step + ' of ' + Math.max(0, M.steps - 1));
    frag.appendChild(title);
    var sf = firstRow[step];
    if (sf >= 0) {
      var ul = el('ul', 'at');
      for (var i = sf; i <= lastRow[step]; i++) ul.appendChild(el('li', '', 'cpu' + rows[i][1] + ': ' + rows[i][3]));
      frag.appendChild(ul);
    } else {
      frag.appendChild(el('p', 'empty', 'No trace records at this step (the CPU was still waiting).'));
    }
    // Pages cached anywhere, per address space, so the table view can show them.
    var cachedKeys = new Set();
    M.cpus.forEach(function (c, cpu) {
      var as = cpuAs[cpu];
      var ids = Array.from(tlbLive[cpu]).sort(function (a, b) {
        var x = M.tlb.entries[a], y = M.tlb.entries[b];
        return x.page - y.page || x.pcid - y.pcid;
      });
      var h = el('h3', '', c.label + ' · ' + M.spaces[as] + ' · TLB: ' + ids.length + (ids.length === 1 ? ' entry' : ' entries'));
      h.dataset.cpu = String(cpu);
      frag.appendChild(h);
      if (ids.length === 0) { frag.appendChild(el('p', 'empty', 'empty')); return; }
      var t = el('table', 'tlb');
      t.dataset.cpu = String(cpu);
      var hr = el('tr');
      ['page', 'frame', 'rights', 'pcid', 'since', 'vs tables'].forEach(function (x) { hr.appendChild(el('th', '', x)); });
      t.appendChild(hr);
      ids.forEach(function (id) {
        var e = M.tlb.entries[id];
        var eas = spaceOf(e, as);
        var k = keyIndex.get(eas + ':' + SIZE_LEVEL[e.sizeClass] + ':' + e.page);
        if (k !== undefined) cachedKeys.add(k);
        var verdict = check(e, eas);
        var tr = el('tr', (verdict ? 'stale' : e.step === step ? 'new' : '') + (eas !== as ? ' other-pcid' : ''));
        tr.dataset.page = e.pageHex;
        [e.pageHex + (e.sizeClass ? ' (' + SIZE_NAMES[e.sizeClass] + ')' : ''), e.frameHex, e.attrText, String(e.pcid), String(e.step)].forEach(function (x) { tr.appendChild(el('td', '', x)); });
        var td = el('td', 'check', (verdict ? '≠ ' + verdict : 'ok') + (eas !== as ? ' (' + M.spaces[eas] + ')' : ''));
        td.title = (eas !== as ? 'cached under ' + M.spaces[eas] + "'s PCID, not used while in " + M.spaces[as] + '; ' : '') +
          (verdict ? 'the page-table view of ' + M.spaces[eas] + ' no longer gives this translation: ' + verdict : 'agrees with the page-table view');
        tr.appendChild(td);
        t.appendChild(tr);
      });
      frag.appendChild(t);
    });
    // Page-table entries: touched at this step, cached in a TLB, or all of them.
    var changedNow = new Map();
    (tableChangesAt.get(step) || []).forEach(function (c) { changedNow.set(c[1], c[2]); });
    var ph = el('h3', '', 'Page-table entries');
    var box = el('input');
    box.type = 'checkbox'; box.id = 'show-all'; box.checked = showAll;
    var lab = el('label', 'all');
    lab.appendChild(box);
    lab.appendChild(document.createTextNode(' all ' + tableNow.size + ' tracked'));
    ph.appendChild(lab);
    frag.appendChild(ph);
    var keys = [];
    tableNow.forEach(function (v, k) { if (showAll || cachedKeys.has(k) || changedNow.has(k)) keys.push(k); });
    // Cleared entries: at the step that cleared them, and while some TLB still caches their page.
    tableCleared.forEach(function (s, k) { if (s === step || cachedKeys.has(k)) keys.push(k); });
    keys.sort(function (a, b) {
      var x = M.tables.keys[a], y = M.tables.keys[b];
      return x.as - y.as || x.start - y.start || y.level - x.level;
    });
    if (keys.length === 0) frag.appendChild(el('p', 'empty', 'none cached or changed at this step'));
    else {
      var pt = el('table', 'pte');
      var phr = el('tr');
      ['space', 'entry', 'covers', 'frame', 'flags', '', 'last change'].forEach(function (x) { phr.appendChild(el('th', '', x)); });
      pt.appendChild(phr);
      keys.forEach(function (k) {
        var key = M.tables.keys[k];
        var vi = tableNow.get(k);
        var tr;
        if (vi === undefined) {
          var when = tableCleared.get(k);
          tr = el('tr', when === step ? 'cleared changed' : 'cleared');
          [M.spaces[key.as], 'P' + key.level, key.startHex, '', 'cleared', '', 'step ' + when + ': entry cleared (not mapped)'].forEach(function (x, i) { tr.appendChild(el('td', i === 6 ? 'cause' : '', x)); });
        } else {
          var v = M.tables.versions[vi];
          tr = el('tr', changedNow.has(k) ? 'changed' : '');
          [M.spaces[key.as], 'P' + key.level + (v.leaf ? '' : ' (table)'), key.startHex, v.frameHex, v.flagsHex, v.flagsText,
            (v.step < 0 ? 'start' : 'step ' + v.step) + ': ' + v.cause].forEach(function (x, i) { tr.appendChild(el('td', i === 6 ? 'cause' : '', x)); });
        }
        tr.dataset.key = String(k);
        pt.appendChild(tr);
      });
      frag.appendChild(pt);
    }
    stateEl.replaceChildren(frag);
    byId('show-all').addEventListener('change', function (ev) { showAll = ev.target.checked; renderState(); });
  }

  // ---- selection ----------------------------------------------------------------------------
  function rowForStep(step) {
    if (firstRow[step] >= 0) return firstRow[step];
    for (var s = step; s < M.steps; s++) if (firstRow[s] >= 0) return firstRow[s];
    for (var t = step; t >= 0; t--) if (firstRow[t] >= 0) return firstRow[t];
    return -1;
  }
  function scrollToRow(row) {
    if (row < 0) return;
    var y = canvas.offsetTop + row * ROW_H;
    var top = scroller.scrollTop, h = scroller.clientHeight;
    if (y < top + 30 || y > top + h - 2 * ROW_H) scroller.scrollTop = Math.max(0, y - h / 3);
  }
  function select(step, scroll, row) {
    if (!(step >= 0)) step = 0;
    step = Math.min(Math.max(0, M.steps - 1), Math.round(step));
    selectedStep = step;
    slider.value = String(step);
    stepInput.value = String(step);
    var r = firstRow[step];
    stepLabel.textContent = r >= 0 ? 'step ' + step + ': cpu' + rows[r][1] + ' ' + rows[r][3] : 'step ' + step + ': no records';
    if (scroll) scrollToRow(row !== undefined && row >= 0 ? row : rowForStep(step));
    renderOverviewSelection();
    renderDiagram();
    renderState();
  }
  function selectHazard(i, scroll) {
    selectedHazard = i;
    storyRows = {};
    document.querySelectorAll('.hazard').forEach(function (a) { a.classList.toggle('active', Number(a.dataset.hazard) === i); });
    if (i < 0) return;
    var h = M.hazards[i];
    h.story.forEach(function (s, k) { if (s.row >= 0) storyRows[s.row] = k + 1; });
    if (scroll) select(h.step, true, h.row);
  }
  slider.addEventListener('input', function () { select(Number(slider.value), true); });
  stepInput.addEventListener('change', function () { select(Number(stepInput.value), true); });
  byId('prev').addEventListener('click', function () { select(selectedStep - 1, true); });
  byId('next').addEventListener('click', function () { select(selectedStep + 1, true); });
  document.addEventListener('keydown', function (ev) {
    var tag = ev.target && ev.target.tagName;
    if (tag === 'INPUT' || tag === 'TEXTAREA') return;
    if (ev.key === 'ArrowLeft') { select(selectedStep - 1, true); ev.preventDefault(); }
    if (ev.key === 'ArrowRight') { select(selectedStep + 1, true); ev.preventDefault(); }
  });
  byId('hazards').addEventListener('click', function (ev) {
    var link = ev.target.closest('.story-link');
    if (link) {
      selectHazard(Number(link.dataset.hazard), false);
      select(Number(link.dataset.step), true, Number(link.dataset.row));
      return;
    }
    var show = ev.target.closest('.show-hazard');
    if (show) selectHazard(Number(show.dataset.hazard), true);
  });

  // ---- the overview strip: the whole run at a glance ------------------------------------------
  var selTick = el('div', 'tick sel');
  function tickAt(step) { return (M.steps <= 1 ? 0 : (step / (M.steps - 1)) * 100) + '%'; }
  (function () {
    var frag = document.createDocumentFragment();
    var seen = {};
    M.arrows.forEach(function (a) {
      if (a[2] === 3) return;
      var s = rows[a[0]][0];
      if (seen[s]) return;
      seen[s] = true;
      var t = el('div', 'tick ipi'); t.style.left = tickAt(s); frag.appendChild(t);
    });
    M.hazards.forEach(function (h, i) {
      var t = el('div', 'tick hz'); t.style.left = tickAt(h.step); t.dataset.hazard = String(i);
      t.title = h.kind + ' at step ' + h.step; frag.appendChild(t);
    });
    frag.appendChild(selTick);
    overview.appendChild(frag);
  })();
  function renderOverviewSelection() { selTick.style.left = tickAt(selectedStep); }
  overview.addEventListener('click', function (ev) {
    var box = overview.getBoundingClientRect();
    select(((ev.clientX - box.left) / box.width) * (M.steps - 1), true);
  });

  select(0, false);
  window.smpsimReport = { model: M, select: select, selectHazard: selectHazard };
})();
`;
