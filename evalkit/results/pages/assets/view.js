/* evalkit view: the home page's run table, a run's live figures and items, a sweep's jobs and trend.
   Every text from a run (questions, generations, names) is written with textContent, never as markup. */
(function () {
  "use strict";

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }
  function pct(v) { return v === null || v === undefined ? "-" : (100 * v).toFixed(1) + "%"; }
  function getJSON(url) {
    return fetch(url, {credentials: "same-origin", cache: "no-store"}).then(function (r) {
      if (!r.ok) throw new Error(url + ": HTTP " + r.status);
      return r.json();
    });
  }
  function duration(s) {
    if (s === null || s === undefined) return "-";
    s = Math.round(s);
    return s >= 3600 ? Math.floor(s / 3600) + "h" + Math.floor((s % 3600) / 60) + "m" :
           s >= 60 ? Math.floor(s / 60) + "m" + (s % 60) + "s" : s + "s";
  }

  /* ---- home: filter, sort, pick runs to compare ---- */
  function home(section) {
    var table = document.getElementById("run-table"), body = table.tBodies[0];
    var filter = document.getElementById("run-filter"), button = document.getElementById("compare-button");
    var rows = Array.prototype.slice.call(body.rows), sortKey = null, ascending = true;
    filter.addEventListener("input", function () {
      var words = filter.value.toLowerCase().split(/\s+/).filter(Boolean), shown = 0;
      rows.forEach(function (row) {
        var hay = [row.dataset.key, row.dataset.model, row.dataset.checkpoint, row.dataset.benchmarks,
                   row.dataset.prompt, row.dataset.started_at, row.dataset.status].join(" ").toLowerCase();
        var keep = words.every(function (w) { return hay.indexOf(w) >= 0; });
        row.hidden = !keep; if (keep) shown++;
      });
      document.getElementById("run-count").textContent = "(" + shown + " of " + rows.length + ")";
    });
    Array.prototype.forEach.call(table.tHead.querySelectorAll("th[data-sort]"), function (th) {
      th.addEventListener("click", function () {
        var key = th.dataset.sort;
        ascending = sortKey === key ? !ascending : true; sortKey = key;
        rows.sort(function (a, b) {
          var x = a.dataset[key] || "", y = b.dataset[key] || "";
          if (key === "score") { x = x === "" ? -1 : parseFloat(x); y = y === "" ? -1 : parseFloat(y); }
          return (x < y ? -1 : x > y ? 1 : 0) * (ascending ? 1 : -1);
        });
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
    var order = [];  // in the order ticked: the first is the comparison's baseline
    function picked() { return order.slice(); }
    body.addEventListener("change", function (ev) {
      var box = ev.target;
      if (!box.classList || !box.classList.contains("pick")) return;
      order = order.filter(function (k) { return k !== box.value; });
      if (box.checked) order.push(box.value);
      button.disabled = order.length < 2;
      document.getElementById("compare-hint").textContent = order.length ?
        "baseline: " + order[0] + (order.length > 1 ? "; then " + order.slice(1).join(", ") : "") :
        "tick two or more runs to compare them";
    });
    button.addEventListener("click", function () {
      window.location.href = "compare?" + picked().map(function (k) { return "run=" + encodeURIComponent(k); }).join("&");
    });
  }

  /* ---- a run: live figures ---- */
  function runPage(section) {
    var url = section.dataset.progress, every = parseInt(section.dataset.pollMs, 10) || 1000;
    var tbody = document.getElementById("figures").tBodies[0], lastSamples = -1, timer = null;
    function show(f) {
      var state = document.getElementById("run-state");
      state.textContent = f.live ? "running" : (f.status || "finished");
      state.className = "pill " + (f.live ? "warn" : f.status === "complete" ? "good" : "");
      var total = f.total || 0, done = f.done || 0;
      document.getElementById("progress-bar").style.width = total ? Math.min(100, 100 * done / total) + "%" : "0";
      var line = total ? done + " of " + total + " items" : done + " items";
      if (f.live) line += " · " + (f.rate_per_s ? f.rate_per_s.toFixed(2) + " items/s" : "-") + " · ETA " + duration(f.eta_s);
      line += " · errors " + (f.errors || 0);
      if (f.retries !== null && f.retries !== undefined) line += " · retries " + f.retries;
      if (f.writer) line += " · writer " + f.writer;
      document.getElementById("progress-line").textContent = line;
      tbody.textContent = "";
      (f.rows || []).forEach(function (r) {
        var tr = el("tr");
        tr.appendChild(el("td", r.dataset));
        tr.appendChild(el("td", r.n, "num")); tr.appendChild(el("td", r.correct, "num"));
        tr.appendChild(el("td", pct(r.accuracy), "num"));
        tr.appendChild(el("td", "[" + pct(r.ci_low) + ", " + pct(r.ci_high) + "]", "num"));
        tr.appendChild(el("td", r.unparsed, "num")); tr.appendChild(el("td", r.errors, "num"));
        var names = Object.keys(r.scores || {}).map(function (n) {
          var c = r.scores[n];
          return n + " " + (c.mean === null ? "-" : c.mean.toFixed(3)) + " (n=" + c.n + ")";
        });
        tr.appendChild(el("td", names.join("; ")));
        tr.dataset.dataset = r.dataset; tr.dataset.accuracy = r.accuracy; tr.dataset.n = r.n;
        tbody.appendChild(tr);
      });
      section.dataset.live = f.live ? "1" : "0";
      if (f.samples !== lastSamples) { lastSamples = f.samples; if (window.evalkitItems) window.evalkitItems(); }
      if (!f.live && timer !== null) {
        clearInterval(timer); timer = null;
        var frame = document.getElementById("report-frame");
        if (frame) frame.src = frame.src;  // the finished run's report
      }
    }
    function poll() { getJSON(url).then(show).catch(function (e) {
      document.getElementById("progress-line").textContent = String(e); }); }
    poll(); timer = setInterval(poll, every);
  }

  /* ---- a run: its items ---- */
  function items(section) {
    var url = section.dataset.items, per = parseInt(section.dataset.perPage, 10) || 100, offset = 0;
    var query = document.getElementById("item-query"), which = document.getElementById("item-verdict");
    var list = document.getElementById("item-list");
    function card(it) {
      var box = el("article", null, "item");
      box.dataset.id = it.id;
      var head = el("h3");
      head.appendChild(el("span", it.dataset + " / " + it.id + " "));
      head.appendChild(el("span", it.verdict, "verdict-" + it.verdict));
      box.appendChild(head);
      box.appendChild(el("pre", it.question, "text question"));
      var opts = Object.keys(it.options || {});
      if (opts.length) {
        var ul = el("ul");
        opts.forEach(function (k) { ul.appendChild(el("li", k + ". " + it.options[k])); });
        box.appendChild(ul);
      }
      box.appendChild(el("pre", it.output, "text output"));
      var facts = "gold " + (it.gold || "-") + " · answer " + (it.pred || "-") + " · rule " + (it.rule || "-") +
                  (it.finish_reason ? " · finish " + it.finish_reason : "") + (it.error ? " · error " + it.error : "");
      box.appendChild(el("p", facts, "muted small"));
      Object.keys(it.scores || {}).forEach(function (n) {
        var s = it.scores[n];
        box.appendChild(el("p", n + ": " + JSON.stringify(s.value) + (s.explanation ? " — " + s.explanation : ""), "small"));
      });
      return box;
    }
    function load() {
      var q = url + "?offset=" + offset + "&verdict=" + encodeURIComponent(which.value) + "&q=" + encodeURIComponent(query.value);
      getJSON(q).then(function (page) {
        list.textContent = "";
        page.items.forEach(function (it) { list.appendChild(card(it)); });
        document.getElementById("item-count").textContent = "(" + page.matching + " of " + page.total + ")";
        document.getElementById("item-range").textContent = page.matching ?
          (offset + 1) + "–" + Math.min(offset + per, page.matching) : "none";
        section.dataset.total = page.total;
      });
    }
    query.addEventListener("input", function () { offset = 0; load(); });
    which.addEventListener("change", function () { offset = 0; load(); });
    document.getElementById("item-prev").addEventListener("click", function () { offset = Math.max(0, offset - per); load(); });
    document.getElementById("item-next").addEventListener("click", function () { offset += per; load(); });
    window.evalkitItems = load;
    load();
  }

  /* ---- a sweep: jobs and trend ---- */
  function sweep(section) {
    var url = section.dataset.sweep, every = parseInt(section.dataset.pollMs, 10) || 2000, picked = null;
    var tbody = document.getElementById("jobs").tBodies[0], trend = document.getElementById("trend");
    var shownSvg = null, keys = [];
    function show(s) {
      keys = s.run_keys || [];
      if (s.trend_svg !== shownSvg) {
        shownSvg = s.trend_svg;
        trend.innerHTML = s.trend_svg;  // made on the server from numbers and escaped names
        picked = null;
      }
      var notes = document.getElementById("trend-notes");
      notes.textContent = "";
      (s.notes || []).forEach(function (n) { notes.appendChild(el("li", n)); });
      tbody.textContent = "";
      s.jobs.forEach(function (j) {
        var tr = el("tr");
        tr.dataset.state = j.state; tr.dataset.step = j.step;
        tr.appendChild(el("td", j.step === null ? "-" : j.step, "num"));
        tr.appendChild(el("td", j.key));
        tr.appendChild(el("td", j.state, j.state === "failed" ? "bad" : j.state === "done" ? "good" : "warn"));
        var detail = el("td", j.detail);
        if (j.log_tail && j.log_tail.length && j.state !== "done") detail.appendChild(el("pre", j.log_tail.join("\n"), "text small"));
        tr.appendChild(detail);
        var cell = el("td");
        if (j.run) { var a = el("a", j.run); a.href = "../run/" + j.run; cell.appendChild(a); }
        tr.appendChild(cell);
        tbody.appendChild(tr);
      });
      section.dataset.done = s.jobs.filter(function (j) { return j.state === "done"; }).length;
    }
    trend.addEventListener("click", function (ev) {
      var c = ev.target.closest ? ev.target.closest("circle[data-run]") : null;
      if (!c) return;
      var key = keys[parseInt(c.dataset.run, 10)];
      if (!key) return;
      if (picked === null || picked.key === key) {
        if (picked) picked.node.classList.remove("picked");
        picked = {key: key, node: c}; c.classList.add("picked");
        document.getElementById("sweep-note").textContent = "Now click another checkpoint's point.";
        return;
      }
      window.location.href = "../compare?run=" + encodeURIComponent(picked.key) + "&run=" + encodeURIComponent(key);
    });
    function poll() { getJSON(url).then(show).catch(function (e) {
      document.getElementById("sweep-note").textContent = String(e); }); }
    poll(); setInterval(poll, every);
  }

  var live = document.getElementById("live"), list = document.getElementById("items");
  if (list) items(list);
  if (live) runPage(live);
  var runs = document.getElementById("runs");
  if (runs) home(runs);
  var sw = document.getElementById("sweep");
  if (sw) sweep(sw);
})();
