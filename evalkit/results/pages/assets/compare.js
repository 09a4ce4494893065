(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("evalkit-compare").textContent);
  var runs = data.runs, items = data.items, PAGE = 50, many = runs.length > 2, ov = data.overlap || null;
  var $ = function (id) { return document.getElementById(id); };
  var state = { a: 0, b: 1, dataset: "", dir: "", ov: "", q: "", page: 0, sort: "", desc: false, selected: -1 };
  var B = data.block, nBlocks = Math.ceil(items.length / B), search = null;
  var texts = runs.map(function () { return []; }), loading = runs.map(function () { return []; });
  // The generations come after this script in the file, in blocks of B items (all runs' for a block,
  // then a marker), so the page is built while the browser still reads them. A block is inflated
  // (gzip + base64) the first time it is needed: an item opened (its block of the two runs shown),
  // a search (every block); load(needs) resolves when the [run, block] pairs NEEDS are ready.
  var parsed = new Promise(function (done) {
    if (document.readyState !== "loading") done(); else document.addEventListener("DOMContentLoaded", done);
  });
  function blockRead(k) {
    return new Promise(function (done) {
      (function check() {
        if (document.readyState !== "loading" || $("evalkit-done-" + k)) done(); else setTimeout(check, 5);
      })();
    });
  }
  function inflate(r, k) {
    var bin = atob($("evalkit-out-" + r + "-" + k).textContent), bytes = new Uint8Array(bin.length);
    for (var j = 0; j < bin.length; j++) bytes[j] = bin.charCodeAt(j);
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Response(stream).text().then(function (t) { texts[r][k] = JSON.parse(t); });
  }
  function have(needs) { return needs.every(function (n) { return texts[n[0]][n[1]]; }); }
  function load(needs) {
    return Promise.all(needs.map(function (n) {
      var r = n[0], k = n[1];
      if (texts[r][k]) return null;
      return (loading[r][k] = loading[r][k] || blockRead(k).then(function () { return inflate(r, k); }));
    }));
  }
  function blockOf(i) { return Math.floor(i / B); }
  function everyBlock() {
    var out = [];
    for (var k = 0; k < nBlocks; k++) runs.forEach(function (_, r) { out.push([r, k]); });
    return out;
  }
  function output(r, i) { var b = texts[r][blockOf(i)]; return b ? b[i % B] : null; }
  var busy = 0;
  // Run THEN once the blocks NEEDS are inflated (at once when they already are).
  function withTexts(needs, then) {
    if (have(needs)) return then();
    busy++;
    load(needs).then(function () { busy--; then(); }, function (err) { busy--; throw err; });
  }

  function node(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function slug(label) { return String(label).replace(/ /g, "-"); }
  function badge(label) { return node("span", label, "badge b-" + slug(label)); }
  function dash(v) { return v === null || v === undefined || v === "" ? "-" : v; }
  function pair() { return data.pairs[state.a + "-" + state.b] || null; }
  function dirOf(i) { var p = pair(); return p ? p.dirs.charAt(i) : data.leftOut; }
  function verdictOf(r, i) { return data.verdicts[r].charAt(i); }
  function unparsedEither(i) { return verdictOf(state.a, i) === "u" || verdictOf(state.b, i) === "u"; }
  function side(i, r) { return items[i].s[r]; }

  function fill(select, values, labels) {
    values.forEach(function (v, k) { var o = node("option", labels ? labels[k] : v); o.value = v; select.appendChild(o); });
  }
  // The text search: case-insensitive, over the id, the question and every run's generation.
  function found(i) {
    if (search === null || search.text !== state.q) {
      search = { text: state.q, re: new RegExp(state.q.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), "i") };
    }
    var it = items[i];
    if (search.re.test(it.id) || search.re.test(it.q)) return true;
    for (var r = 0; r < runs.length; r++) { var t = output(r, i); if (t && search.re.test(t)) return true; }
    return false;
  }
  function matches(i) {
    var it = items[i];
    if (state.dataset && it.d !== state.dataset) return false;
    if (state.dir === "U") { if (!unparsedEither(i)) return false; }
    else if (state.dir && dirOf(i) !== state.dir) return false;
    if (ov && state.ov && ov.marks.charAt(i) !== state.ov) return false;
    if (state.q && !found(i)) return false;
    return true;
  }
  var SORTS = {
    dataset: function (i) { return items[i].d; },
    id: function (i) { return items[i].id; },
    change: function (i) { return data.directions[dirOf(i)]; },
    overlap: function (i) { return ov ? ov.labels[ov.marks.charAt(i)] : ""; },
    "tokens A": function (i) { var s = side(i, state.a); return s && s.t !== null ? s.t : -1; },
    "tokens B": function (i) { var s = side(i, state.b); return s && s.t !== null ? s.t : -1; },
    "latency A": function (i) { var s = side(i, state.a); return s && s.l !== null ? s.l : -1; },
    "latency B": function (i) { var s = side(i, state.b); return s && s.l !== null ? s.l : -1; }
  };
  function filtered() {
    var out = [];
    for (var i = 0; i < items.length; i++) if (matches(i)) out.push(i);
    if (state.sort) {
      var key = SORTS[state.sort], keys = {};
      out.forEach(function (i) { keys[i] = key(i); });
      out.sort(function (x, y) {
        var a = keys[x], b = keys[y], c = a < b ? -1 : a > b ? 1 : x - y;
        return state.desc ? -c : c;
      });
    }
    return out;
  }

  // The paired result on the clean items (an overlap file given): the gate with --clean-only.
  function renderCleanPair(p) {
    var box = $("pair-clean"), head = $("pair-clean-head"), body = $("pair-clean-stats"), notes = $("pair-clean-notes");
    head.textContent = ""; body.textContent = ""; notes.textContent = "";
    box.hidden = !(p && p.clean);
    if (box.hidden) return;
    $("pair-clean-note").textContent = "Items the overlap file covers and its " + ov.rule +
      " rule does not flag (as evalkit gate --clean-only computes it): gate: " + p.clean.verdict + ".";
    p.clean.warnings.forEach(function (m) { notes.appendChild(node("li", "warning: " + m)); });
    data.pairHeader.forEach(function (h, k) { head.appendChild(node("th", h, k > 0 && k < 12 ? "num" : "")); });
    p.clean.rows.forEach(function (row) {
      var tr = node("tr");
      if (row[12] === "REGRESSION") tr.className = "flagged";
      row.forEach(function (c, k) { tr.appendChild(node("td", c, k > 0 && k < 12 ? "num" : "")); });
      body.appendChild(tr);
    });
  }

  function renderPair() {
    var p = pair(), head = $("pair-head"), body = $("pair-stats"), notes = $("pair-notes");
    renderCleanPair(state.a === state.b ? null : p);
    head.textContent = ""; body.textContent = ""; notes.textContent = "";
    $("pair-verdict").textContent = "";
    if (state.a === state.b) { notes.appendChild(node("li", "Pick two different runs.")); return; }
    if (!p) { notes.appendChild(node("li", "This pair was not computed (with many runs only earlier \u2192 later pairs are): pick the earlier run as the baseline.")); return; }
    $("pair-verdict").textContent = "gate: " + p.verdict + (p.mismatches.length ?
      " on the shared items (evalkit gate says NOT COMPARABLE without --allow-mismatch)" : "");
    p.mismatches.forEach(function (m) { notes.appendChild(node("li", "mismatch: " + m)); });
    p.warnings.forEach(function (m) { notes.appendChild(node("li", "warning: " + m)); });
    data.pairHeader.forEach(function (h, k) { head.appendChild(node("th", h, k > 0 && k < 12 ? "num" : "")); });
    p.rows.forEach(function (row) {
      var tr = node("tr");
      if (row[12] === "REGRESSION") tr.className = "flagged";
      row.forEach(function (c, k) { tr.appendChild(node("td", c, k > 0 && k < 12 ? "num" : "")); });
      body.appendChild(tr);
    });
  }

  function headers() {
    var head = $("items-head"), la = runs[state.a].label, lb = runs[state.b].label;
    head.textContent = "";
    var cols = [["dataset", "dataset"], ["id", "id"], ["question", null], ["gold", null], [la, null], [lb, null],
                ["change", "change"]];
    if (ov) cols.push(["overlap", "overlap"]);
    if (many) cols.push(["all runs", null]);
    cols.push(["tokens " + la, "tokens A"], ["tokens " + lb, "tokens B"]);
    cols.forEach(function (c) {
      var th = node("th", c[0]);
      if (c[1]) {
        th.className = "sortable" + (state.sort === c[1] ? (state.desc ? " sorted-desc" : " sorted-asc") : "");
        th.dataset.sort = c[1];
        th.addEventListener("click", function () {
          if (state.sort === c[1]) state.desc = !state.desc; else { state.sort = c[1]; state.desc = false; }
          state.page = 0; render();
        });
      }
      head.appendChild(th);
    });
  }

  function predText(s) { return !s ? "(absent)" : s.e ? "(error)" : (s.p === null || s.p === undefined ? "(none)" : s.p); }

  function renderRows(shown) {
    var list = $("items");
    list.textContent = "";
    shown.forEach(function (i) {
      var it = items[i], tr = node("tr"), sa = side(i, state.a), sb = side(i, state.b);
      tr.dataset.i = String(i);
      if (i === state.selected) tr.className = "sel";
      tr.appendChild(node("td", it.d));
      tr.appendChild(node("td", it.id));
      tr.appendChild(node("td", it.q.slice(0, 160), "qtext"));
      tr.appendChild(node("td", dash(it.g)));
      tr.appendChild(node("td", predText(sa)));
      tr.appendChild(node("td", predText(sb)));
      var td = node("td"); td.appendChild(badge(data.directions[dirOf(i)])); tr.appendChild(td);
      if (ov) tr.appendChild(node("td", ov.labels[ov.marks.charAt(i)], "ov ov-" + ov.marks.charAt(i)));
      if (many) {
        var all = node("td", null, "runs-row");
        runs.forEach(function (r, k) {
          var b = badge(data.verdictLabels[verdictOf(k, i)].charAt(0));
          b.className = "badge b-" + slug(data.verdictLabels[verdictOf(k, i)]);
          b.title = r.label + ": " + data.verdictLabels[verdictOf(k, i)] + " (" + predText(side(i, k)) + ")";
          all.appendChild(b);
        });
        tr.appendChild(all);
      }
      tr.appendChild(node("td", sa ? dash(sa.t) : "-", "num"));
      tr.appendChild(node("td", sb ? dash(sb.t) : "-", "num"));
      tr.addEventListener("click", function () { showItem(i); });
      list.appendChild(tr);
    });
  }

  function render() {
    if (state.q && !have(everyBlock())) {
      $("items-status").textContent = "Reading the generations for the search\u2026";
      return withTexts(everyBlock(), render);
    }
    headers();
    var idx = filtered(), at = evalkitPager.page(state, idx, PAGE), start = at.start, shown = at.shown;
    renderRows(shown);
    $("items-status").textContent = idx.length ?
      "Showing " + (start + 1) + "\u2013" + (start + shown.length) + " of " + idx.length + " items" +
      (idx.length < items.length ? " (" + items.length + " in all)" : "") : "No item matches the filters.";
    if (state.selected >= 0 && idx.indexOf(state.selected) < 0) showItem(-1);
  }

  function scoresBlock(s) {
    var wrap = node("div"), names = Object.keys((s && s.sc) || {});
    if (!names.length) return wrap;
    wrap.appendChild(node("h4", "Scores"));
    var dl = node("dl");
    names.forEach(function (n) {
      var sc = s.sc[n], val = sc.v === null || sc.v === undefined ? "(not scored)" : String(sc.v);
      if (sc.a !== null && sc.a !== undefined && String(sc.a) !== val) val += " (read: " + sc.a + ")";
      if (sc.err) val += " \u2014 " + sc.err;
      dl.appendChild(node("dt", n)); dl.appendChild(node("dd", val, "score-" + n));
      if (sc.x) { dl.appendChild(node("dt", "")); dl.appendChild(node("dd", sc.x)); }
    });
    wrap.appendChild(dl);
    names.forEach(function (n) {
      if (!s.sc[n].reply) return;
      var d = node("details", null, "judge");
      d.appendChild(node("summary", "Judge's reply for " + n));
      d.appendChild(node("pre", s.sc[n].reply));
      wrap.appendChild(d);
    });
    return wrap;
  }

  function sideBox(i, r, which) {
    var s = side(i, r), box = node("div", null, "side");
    box.id = "side-" + which;
    var h = node("h4", (which === "a" ? "Baseline: " : "Candidate: ") + runs[r].label + " ");
    h.appendChild(badge(data.verdictLabels[verdictOf(r, i)]));
    box.appendChild(h);
    if (!s) { box.appendChild(node("p", "This run has no sample of the item.", "note")); return box; }
    var dl = node("dl");
    function fact(k, v) { dl.appendChild(node("dt", k)); dl.appendChild(node("dd", dash(v))); }
    fact("extracted", s.p === null || s.p === undefined ? (s.e ? null : "(none: unparsed)") : s.p);
    fact("rule matched", s.m);
    fact("finish reason", (s.f || "-") + (s.tr ? " (truncated)" : ""));
    fact("output tokens", s.t);
    fact("latency", s.l === null || s.l === undefined ? null : Number(s.l).toFixed(2) + " s");
    if (s.e) fact("error", s.e);
    if (s.vo) fact("votes", Object.keys(s.vo).map(function (k) { return k + " " + s.vo[k]; }).join(" \u00b7 "));
    box.appendChild(dl);
    var text = output(r, i);
    var pre = node("pre", text === null ? "(reading the generation\u2026)" : text || "(empty)", "generation");
    box.appendChild(pre);
    box.appendChild(scoresBlock(s));
    return box;
  }

  function showItem(i) {
    state.selected = i;
    var needs = i >= 0 ? [[state.a, blockOf(i)], [state.b, blockOf(i)]] : [];
    if (i >= 0 && !have(needs)) {
      withTexts(needs, function () { if (state.selected === i) showItem(i); });
    }
    var box = $("item-detail");
    box.textContent = "";
    var rows = $("items").children;
    for (var k = 0; k < rows.length; k++) rows[k].className = Number(rows[k].dataset.i) === i ? "sel" : "";
    if (i < 0) return;
    var it = items[i];
    var h = node("h3", it.d + " \u00b7 " + it.id + " ");
    h.appendChild(badge(data.directions[dirOf(i)]));
    if (ov) h.appendChild(node("span", " " + ov.labels[ov.marks.charAt(i)] + " (" + ov.rule + " rule)", "ov"));
    box.appendChild(h);
    box.appendChild(node("div", it.q, "q"));
    if (it.tg) { box.appendChild(node("h4", "Reference")); box.appendChild(node("pre", it.tg)); }
    var ol = node("ol");
    var sa = side(i, state.a), sb = side(i, state.b);
    Object.keys(it.o).forEach(function (key) {
      var li = node("li", key + ". " + it.o[key]);
      if (key === it.g) { li.className = "gold"; li.appendChild(node("strong", "  \u2713 gold")); }
      if (sa && sa.p === key) li.appendChild(node("strong", "  \u2190 " + runs[state.a].label));
      if (sb && sb.p === key) li.appendChild(node("strong", "  \u2190 " + runs[state.b].label));
      ol.appendChild(li);
    });
    box.appendChild(ol);
    var sides = node("div", null, "sides");
    sides.appendChild(sideBox(i, state.a, "a"));
    sides.appendChild(sideBox(i, state.b, "b"));
    box.appendChild(sides);
    if (many) {
      box.appendChild(node("h4", "Across all runs"));
      var t = node("table"), tr1 = node("tr"), tr2 = node("tr");
      t.id = "all-runs";
      runs.forEach(function (r, k) {
        tr1.appendChild(node("th", r.label));
        var td = node("td");
        td.appendChild(badge(data.verdictLabels[verdictOf(k, i)]));
        td.appendChild(node("span", " " + predText(side(i, k))));
        tr2.appendChild(td);
      });
      t.appendChild(tr1); t.appendChild(tr2);
      box.appendChild(t);
    }
  }

  function fillDirections() {
    var sel = $("f-dir"), keep = state.dir;
    sel.textContent = "";
    fill(sel, [""], ["all"]);
    Object.keys(data.directions).forEach(function (d) {
      if (data.binary ? d === "S" : (d === "R" || d === "W")) return;
      fill(sel, [d], [data.directions[d]]);
    });
    if (data.binary) fill(sel, ["U"], ["unparsed in either"]);
    sel.value = keep;
  }

  var labels = runs.map(function (r) { return r.label; }), idxs = runs.map(function (_, k) { return String(k); });
  fill($("pair-a"), idxs, labels); fill($("pair-b"), idxs, labels);
  var datasets = [];
  items.forEach(function (it) { if (datasets.indexOf(it.d) < 0) datasets.push(it.d); });
  fill($("f-dataset"), datasets);
  // Deep links: #a=0&b=2&dataset=medqa&dir=B&q=text&item=ID preselect the page.
  var wanted = null;
  location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
    if (!kv) return;
    var p = kv.split("="), k = decodeURIComponent(p[0]), v = decodeURIComponent((p[1] || "").replace(/\+/g, " "));
    if ((k === "a" || k === "b") && /^\d+$/.test(v) && Number(v) < runs.length) state[k] = Number(v);
    else if (k === "dataset" || k === "dir" || k === "q" || k === "ov") state[k] = v;
    else if (k === "item") wanted = v;
  });
  fillDirections();
  if (ov) {
    $("f-overlap-label").hidden = false;
    Object.keys(ov.labels).forEach(function (m) {
      if (ov.marks.indexOf(m) >= 0) fill($("f-overlap"), [m], [ov.labels[m]]);
    });
    $("f-overlap").value = state.ov;
  }
  $("pair-a").value = String(state.a); $("pair-b").value = String(state.b);
  $("f-dataset").value = state.dataset; $("f-q").value = state.q;
  function setPair(a, b) {
    state.a = a; state.b = b; state.page = 0;
    $("pair-a").value = String(a); $("pair-b").value = String(b);
    renderPair(); render();
    if (state.selected >= 0) showItem(state.selected);
  }
  // For tests and the bench: idle() resolves once no generation is being read.
  window.evalkitCompare = { setPair: setPair, idle: function () {
    return new Promise(function (done) { (function check() { if (busy) setTimeout(check, 2); else done(); })(); });
  } };
  $("pair-a").addEventListener("change", function (e) { setPair(Number(e.target.value), state.b); });
  $("pair-b").addEventListener("change", function (e) { setPair(state.a, Number(e.target.value)); });
  $("f-dataset").addEventListener("change", function (e) { state.dataset = e.target.value; state.page = 0; render(); });
  $("f-dir").addEventListener("change", function (e) { state.dir = e.target.value; state.page = 0; render(); });
  $("f-overlap").addEventListener("change", function (e) { state.ov = e.target.value; state.page = 0; render(); });
  $("f-q").addEventListener("input", function (e) { state.q = e.target.value; state.page = 0; render(); });
  evalkitPager.buttons(state, render);
  renderPair();
  render();
  if (wanted !== null) {
    for (var w = 0; w < items.length; w++) if (items[w].id === wanted && matches(w)) { showItem(w); break; }
  }
  // Inflate every block in the background once the file is read (not counted as busy), a few
  // blocks at a time so that a block an opened item asks for is not queued behind all the others:
  // by the time a search is typed they are usually ready.
  parsed.then(function () { setTimeout(function () {
    var all = everyBlock(), AT_ONCE = 8;
    (function next(k) {
      if (k >= all.length) { window.evalkitInflatedMs = performance.now(); return; }
      load(all.slice(k, k + AT_ONCE)).then(function () { next(k + AT_ONCE); });
    })(0);
  }, 100); });
  window.evalkitReadyMs = performance.now();  // for bench/bench_compare.py: navigation start -> page built
  document.body.dataset.ready = "1";
})();
