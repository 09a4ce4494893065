(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("evalkit-samples").textContent);
  var runs = data.runs, samples = data.samples, PAGE = 25;
  var state = { run: "", dataset: "", verdict: "", q: "", page: 0, selected: -1 };
  var $ = function (id) { return document.getElementById(id); };

  function verdict(s) {
    if (s.error) return "error";
    if (s.pred === null || s.pred === undefined) return "unparsed";
    return s.correct ? "correct" : "wrong";
  }
  function node(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function badge(v) { return node("span", v, "badge b-" + v); }
  // A collapsed <details> block: SUMMARY shown, CONTENT revealed on a click.
  function folded(summary, content, cls) {
    var d = node("details", null, cls);
    d.appendChild(node("summary", summary));
    d.appendChild(content);
    return d;
  }
  function voteText(votes) {
    var keys = Object.keys(votes || {});
    return keys.length ? keys.map(function (k) { return k + " " + votes[k]; }).join(" \u00b7 ") : "(no votes)";
  }
  function stageBox(st) {
    var wrap = node("div");
    var n = st.outputs.length;
    if (st.prompt) wrap.appendChild(folded("Prompt of the " + st.name + " stage", node("pre", st.prompt), "prompt"));
    var ol = node("ol", null, "gens");
    st.outputs.forEach(function (g) {
      var li = node("li");
      li.appendChild(node("div", "generation " + g.k + ": " + (g.pred === null || g.pred === undefined ? "no answer (unparsed)" : "votes " + g.pred) +
                          (g.method ? " (rule " + g.method + ")" : "") + ", finish " + g.finish_reason +
                          (g.completion_tokens ? ", " + g.completion_tokens + " tokens" : ""), "gen-head"));
      li.appendChild(node("pre", g.output || "(empty)"));
      ol.appendChild(li);
    });
    wrap.appendChild(ol);
    var summary = st.name + " stage: " + n + " generation" + (n === 1 ? "" : "s") + ", votes " + voteText(st.votes) +
                  (st.unparsed ? ", " + st.unparsed + " unparsed" : "") + " \u2192 " + (st.pred === null || st.pred === undefined ? "no answer" : st.pred);
    return folded(summary, wrap, "stage");
  }
  function matches(s) {
    var v = verdict(s);
    if (state.run !== "" && String(s.run) !== state.run) return false;
    if (state.dataset && s.dataset !== state.dataset) return false;
    if (state.verdict === "wrong" && !(v === "wrong" || v === "unparsed")) return false;
    if (state.verdict === "truncated" && !s.truncated) return false;
    if (state.verdict && state.verdict !== "wrong" && state.verdict !== "truncated" && v !== state.verdict) return false;
    if (state.q) {
      var hay = (s.id + "\n" + s.question + "\n" + s.output).toLowerCase();
      if (hay.indexOf(state.q.toLowerCase()) < 0) return false;
    }
    return true;
  }
  function filtered() {
    var out = [];
    for (var i = 0; i < samples.length; i++) if (matches(samples[i])) out.push(i);
    return out;
  }
  function showDetail(i) {
    state.selected = i;
    var box = $("sample-detail");
    box.textContent = "";
    if (i < 0) { box.appendChild(node("p", "No sample matches the filters.", "note")); return; }
    var s = samples[i], v = verdict(s);
    var h = node("h3", runs[s.run].label + " \u00b7 " + s.dataset + " \u00b7 " + s.id +
                 (s.index ? " (generation " + s.index + ")" : "") + " ");
    h.appendChild(badge(v));
    box.appendChild(h);
    box.appendChild(node("div", s.question, "q"));
    if (s.context) box.appendChild(folded("Abstract (context given with the question)", node("div", s.context, "q ctx"), "context"));
    var ol = node("ol");
    Object.keys(s.options).forEach(function (k) {
      var li = node("li", k + ". " + s.options[k]);
      if (k === s.gold) { li.className = "gold"; li.appendChild(node("strong", "  \u2713 gold")); }
      if (k === s.pred) {
        if (k !== s.gold) li.className = "pred-wrong";
        li.appendChild(node("strong", "  \u2190 extracted"));
      }
      ol.appendChild(li);
    });
    box.appendChild(ol);
    var dl = node("dl");
    function fact(k, val) { dl.appendChild(node("dt", k)); dl.appendChild(node("dd", val === null || val === undefined || val === "" ? "-" : val)); }
    fact("extracted", s.pred === null ? "(none: unparsed)" : s.pred);
    fact("gold", s.gold);
    fact("rule matched", s.method);
    fact("finish reason", s.finish_reason + (s.truncated ? " (truncated)" : ""));
    fact("latency", s.latency_s === null || s.latency_s === undefined ? null : Number(s.latency_s).toFixed(2) + " s");
    fact("output tokens", s.completion_tokens);
    if (s.error) fact("error", s.error);
    if (s.strategy) fact("strategy", s.strategy);
    if (s.votes) fact("votes", voteText(s.votes));
    if (Object.keys(s.meta).length) fact("meta", JSON.stringify(s.meta));
    box.appendChild(dl);
    box.appendChild(node("h4", s.stages ? "Model output (the first generation that voted for the answer)" : "Model output"));
    box.appendChild(node("pre", s.output || "(empty)"));
    (s.stages || []).forEach(function (st) { box.appendChild(stageBox(st)); });
    var names = Object.keys(s.scores || {});
    if (names.length) {
      box.appendChild(node("h4", "Scores"));
      var sl = node("dl");
      names.forEach(function (n) {
        var sc = s.scores[n], val = sc.value === null || sc.value === undefined ? "(not scored)" : String(sc.value);
        if (sc.answer !== null && sc.answer !== undefined && String(sc.answer) !== val) val += " (read: " + sc.answer + ")";
        if (sc.error) val += " \u2014 " + sc.error;
        sl.appendChild(node("dt", n)); sl.appendChild(node("dd", val));
        if (sc.explanation) { sl.appendChild(node("dt", "")); sl.appendChild(node("dd", sc.explanation)); }
      });
      box.appendChild(sl);
      names.forEach(function (n) {
        var sc = s.scores[n];
        if (sc.reply) box.appendChild(folded("Judge's reply for " + n, node("pre", sc.reply), "judge"));
        if (sc.judge_prompt) box.appendChild(folded("Judge's prompt for " + n, node("pre", sc.judge_prompt), "judge"));
      });
    }
    box.appendChild(folded("Prompt sent", node("pre", s.prompt || "(not recorded)"), "prompt"));
    var rows = $("sample-list").children;
    for (var r = 0; r < rows.length; r++) rows[r].className = Number(rows[r].dataset.i) === i ? "sel" : "";
  }
  function render() {
    var idx = filtered(), at = evalkitPager.page(state, idx, PAGE), list = $("sample-list");
    var start = at.start, shown = at.shown;
    list.textContent = "";
    shown.forEach(function (i) {
      var s = samples[i], tr = node("tr");
      tr.dataset.i = String(i);
      [runs[s.run].label, s.dataset, s.id, s.pred === null ? "-" : s.pred, s.gold].forEach(function (t) { tr.appendChild(node("td", t)); });
      var td = node("td"); td.appendChild(badge(verdict(s))); tr.appendChild(td);
      tr.addEventListener("click", function () { showDetail(i); });
      list.appendChild(tr);
    });
    $("browser-status").textContent = idx.length ?
      "Showing " + (start + 1) + "\u2013" + (start + shown.length) + " of " + idx.length + " samples" +
      (idx.length < samples.length ? " (" + samples.length + " in all)" : "") : "No sample matches the filters.";
    var keep = idx.indexOf(state.selected) >= 0 ? state.selected : (shown.length ? shown[0] : -1);
    showDetail(keep);
  }
  function fill(select, values, labels) {
    values.forEach(function (v, k) { var o = node("option", labels ? labels[k] : v); o.value = v; select.appendChild(o); });
  }
  var datasets = [];
  samples.forEach(function (s) { if (datasets.indexOf(s.dataset) < 0) datasets.push(s.dataset); });
  fill($("f-run"), runs.map(function (_, i) { return String(i); }), runs.map(function (r) { return r.label; }));
  fill($("f-dataset"), datasets);
  // Deep links: #dataset=medqa&verdict=wrong&q=text&item=ID preselect the browser.
  var wanted = null;
  location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
    if (!kv) return;
    var p = kv.split("="), k = decodeURIComponent(p[0]), v = decodeURIComponent((p[1] || "").replace(/\+/g, " "));
    if (k === "run") { for (var r = 0; r < runs.length; r++) if (runs[r].label === v) state.run = String(r); }
    else if (k === "dataset" || k === "verdict" || k === "q") state[k] = v;
    else if (k === "item") wanted = v;
  });
  $("f-run").value = state.run; $("f-dataset").value = state.dataset;
  $("f-verdict").value = state.verdict; $("f-q").value = state.q;
  [["f-run", "run"], ["f-dataset", "dataset"], ["f-verdict", "verdict"]].forEach(function (p) {
    $(p[0]).addEventListener("change", function (e) { state[p[1]] = e.target.value; state.page = 0; render(); });
  });
  $("f-q").addEventListener("input", function (e) { state.q = e.target.value; state.page = 0; render(); });
  evalkitPager.buttons(state, render);
  if (wanted !== null) {
    var idx = filtered();
    for (var k = 0; k < idx.length; k++) if (samples[idx[k]].id === wanted) {
      state.selected = idx[k]; state.page = Math.floor(k / PAGE); break;
    }
  }
  render();
})();
