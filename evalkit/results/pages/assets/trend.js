(function () {
  "use strict";
  // A verdict on a run still going is provisional: say so wherever the comparison writes one.
  var partialBox = document.getElementById("trend-partial");
  var partial = partialBox ? JSON.parse(partialBox.getAttribute("data-runs")) : {};
  function markProvisional(el) {
    if (!el || !partialBox) return;
    var a = document.getElementById("pair-a"), b = document.getElementById("pair-b");
    var which = [a && a.value, b && b.value].filter(function (r) { return r !== null && partial[r]; });
    var text = el.textContent, tag = " — PROVISIONAL: ";
    if (!which.length || !/gate: /.test(text) || text.indexOf(tag) >= 0) return;
    el.textContent = text + tag + which.map(function (r) { return partial[r]; }).join(", ") + " not complete";
  }
  ["pair-verdict", "pair-clean-note"].forEach(function (id) {
    var el = document.getElementById(id);
    if (!el) return;
    new MutationObserver(function () { markProvisional(el); }).observe(el, { childList: true, characterData: true,
                                                                            subtree: true });
    markProvisional(el);
  });
  var picked = null, note = document.getElementById("trend-note");
  Array.prototype.forEach.call(document.querySelectorAll("svg.trend circle[data-run]"), function (c) {
    c.addEventListener("click", function () {
      var run = Number(c.getAttribute("data-run")), step = Number(c.getAttribute("data-step"));
      if (picked === null || picked.run === run) {
        if (picked) picked.el.classList.remove("picked");
        picked = { run: run, step: step, el: c };
        c.classList.add("picked");
        note.textContent = "Step " + step + " picked: click another point to compare.";
        return;
      }
      var a = picked.step <= step ? picked.run : run, b = picked.step <= step ? run : picked.run;
      var picked0 = picked.step;
      picked.el.classList.remove("picked");
      picked = null;
      window.evalkitCompare.setPair(a, b);
      note.textContent = "Compared below: the runs of steps " + Math.min(step, picked0) + " and " +
        Math.max(step, picked0) + ". Click two more points to compare others.";
      document.getElementById("pair").scrollIntoView();
    });
  });
})();
