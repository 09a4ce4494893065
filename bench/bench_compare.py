"""How big is an ``evalkit compare`` page at real sizes, and how fast does it open and filter?

Builds synthetic runs over the real question files in shared/eval_data: two runs of
MedQA's 1,273 test items and five of MedXpertQA's 2,450 text items. Each sample has a
generated reasoning text (log-normal length, median about 2,000 characters, as a
reasoning model writes), the extracted letter and rule, tokens and latency; the runs'
verdicts are correlated (an item hard for one checkpoint is hard for the next), with
about 2% unparsed answers and 0.3% failed requests. Then, per case:

- builds the comparison (the gate on every ordered pair) and renders the page, timed;
- opens it in headless Chromium (Debian's ``chromium``, driven by Playwright) 3 x REPEAT
  times: time from navigation start to the page built (the page's own ``evalkitReadyMs``);
- clicks an item the moment the page is built (an observer set before the page loads), before the
  browser has read the generations, and times that click to both generations shown;
- right after opening, opens an item (both generations side by side), then filters:
  direction "broken", a dataset, a text search (first and second keystroke), another pair
  of runs (five-run case); on a second fresh page, a search first thing (it waits for
  whatever generations are still being inflated). Each is timed in the page from the event
  to the table laid out. The page inflates every run's generations in the background once
  it is up; the time from navigation start to that done is printed too.

Run from the repository root: ``python -m bench.bench_compare`` (BENCH_REPEAT, default 3).
"""

from __future__ import annotations

import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.common import SHARED
from evalkit.results.compare import build_comparison
from evalkit.results.pages.compare import render_compare_html
from evalkit.data.datasets import load_dataset

REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))


def _reasoning(rng: random.Random, corpus: str) -> str:
    """Text about as long and as compressible as a model's reasoning: spans of the benchmark's own
    questions, taken at random (gzip shrinks it about as much as real English)."""
    chars = min(12000, int(math.exp(rng.gauss(math.log(2000), 0.6))))
    out, size = [], 0
    while size < chars:
        start = rng.randrange(0, len(corpus) - 200)
        out.append(corpus[start:start + 200])
        size += 200
    return "Let me think step by step. " + " ".join(out)[:chars]


def _write_runs(root: Path, data_file: Path, n_runs: int, accuracies: list[float], seed: int) -> list[Path]:
    import json

    items = load_dataset(data_file).items
    corpus = " ".join(item.question for item in items)
    rng = random.Random(seed)
    hardness = [rng.random() for _ in items]
    paths = []
    for r in range(n_runs):
        run_dir = root / data_file.stem / f"ckpt-{(r + 1) * 500}"
        run_dir.mkdir(parents=True)
        with open(run_dir / "samples.jsonl", "w", encoding="utf-8") as fh:
            for item, hard in zip(items, hardness):
                letters = list(item.options)
                if rng.random() < 0.003:
                    rec = {"output": "", "pred": None, "method": None, "correct": False, "finish_reason": None,
                           "usage": {}, "error": "HTTP 503 from http://127.0.0.1:8000/v1/chat/completions"}
                else:
                    right = 0.75 * hard + 0.25 * rng.random() < accuracies[r]
                    unparsed = rng.random() < 0.02
                    pred = None if unparsed else (item.answer_idx if right else
                                                  rng.choice([k for k in letters if k != item.answer_idx]))
                    text = _reasoning(rng, corpus) + (f"\n\nThe answer is {pred}." if pred else "")
                    rec = {"output": text, "pred": pred, "method": "answer_is" if pred else None,
                           "correct": bool(pred and right), "finish_reason": "length" if unparsed else "stop",
                           "usage": {"prompt_tokens": 300, "completion_tokens": len(text) // 4}, "error": None}
                fh.write(json.dumps({
                    "id": item.id, "dataset": item.dataset, "question": item.question, "options": item.options,
                    "answer_idx": item.answer_idx, "prompt": "", "latency_s": round(rng.uniform(2, 40), 2),
                    "truncated": rec["finish_reason"] == "length", "index": 0, "meta": {}, **rec}) + "\n")
        manifest = {"model": f"ft-step{(r + 1) * 500}", "prompt": "cot", "extractor": "evalkit", "strategy": "single",
                    "generation": {"max_new_tokens": 4096, "temperature": 0.0, "top_p": 1.0},
                    "server": {"model_hash": {"sha256": f"{r:02d}" * 32}}}
        (run_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
        paths.append(run_dir)
    return paths


_FILTER_JS = """async ([id, value, evt]) => {
  const el = document.getElementById(id), t0 = performance.now();
  el.value = value; el.dispatchEvent(new Event(evt));
  await window.evalkitCompare.idle();                          // a search first inflates the generations
  void document.getElementById("item-table").offsetHeight;   // force the layout
  return performance.now() - t0;
}"""


_OPEN_ITEM_JS = """async () => {
  const t0 = performance.now();
  document.querySelector("#items tr:nth-child(3)").click();
  await window.evalkitCompare.idle();
  void document.getElementById("item-detail").offsetHeight;
  return performance.now() - t0;
}"""


# Clicks the third row the moment the page is built (before the browser has read the generations)
# and records when the item's generations are shown: the earliest click a person could make.
_EARLY_CLICK_JS = """new MutationObserver(function (_, obs) {
  if (!document.body || document.body.dataset.ready !== "1") return;
  obs.disconnect();
  var t0 = performance.now();
  document.querySelector("#items tr:nth-child(3)").click();
  window.evalkitCompare.idle().then(function () {
    void document.getElementById("item-detail").offsetHeight;
    window.__earlyClick = [t0, performance.now() - t0];
  });
}).observe(document, {subtree: true, childList: true, attributes: true});"""


def _early_click(browser, page_file: Path, times: dict[str, list[float]]) -> None:
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    page.add_init_script(_EARLY_CLICK_JS)
    page.goto(page_file.as_uri())
    page.wait_for_function("window.__earlyClick !== undefined", timeout=60000)
    at, took = page.evaluate("window.__earlyClick")
    assert page.text_content("#side-b pre.generation") not in ("", "(reading the generation\u2026)")
    times.setdefault("item clicked the moment the page is built", []).append(took)
    times.setdefault("  (that click: ms after navigation start)", []).append(at)
    page.close()


def _open_page(browser, page_file: Path, times: dict[str, list[float]]):
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    page.goto(page_file.as_uri())
    page.wait_for_selector("body[data-ready='1']", timeout=60000)
    times.setdefault("open (navigation start -> page built)", []).append(page.evaluate("window.evalkitReadyMs"))
    return page


def _parsed_ms(page) -> float:
    """Navigation start -> the whole file parsed (the generations come after the page's script)."""
    page.wait_for_load_state("domcontentloaded")
    return page.evaluate("performance.getEntriesByType('navigation')[0].domContentLoadedEventStart")


def _measure(page_file: Path, n_runs: int, query: str) -> dict[str, list[float]]:
    """Per repeat, two fresh pages: one opens an item at once and then filters; the other searches at
    once (waiting for every run's generations to be inflated). Times in ms, measured in the page."""
    from playwright.sync_api import sync_playwright

    times: dict[str, list[float]] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox", "--disable-gpu"])
        for _ in range(REPEAT):
            _early_click(browser, page_file, times)
            page = _open_page(browser, page_file, times)
            times.setdefault("open the first item", []).append(page.evaluate(_OPEN_ITEM_JS))
            times.setdefault("whole file parsed (background: generations)", []).append(_parsed_ms(page))
            steps = [("filter: broken", ["f-dir", "B", "change"]),
                     ("filter: a dataset", ["f-dataset", page.eval_on_selector("#f-dataset option:nth-child(2)",
                                                                               "o => o.value"), "change"]),
                     ("filter: all datasets", ["f-dataset", "", "change"]),
                     ("filter: all changes", ["f-dir", "", "change"]),
                     ("search", ["f-q", query, "input"]),
                     ("search: next keystroke", ["f-q", query + "s", "input"]),
                     ("search cleared", ["f-q", "", "input"])]
            if n_runs > 2:
                steps.append((f"pair: ckpt 1 vs {n_runs}", ["pair-b", str(n_runs - 1), "change"]))
            for name, args in steps:
                times.setdefault(name, []).append(page.evaluate(_FILTER_JS, args))
            page.close()
            page = _open_page(browser, page_file, times)
            times.setdefault("search first thing on a fresh page", []).append(
                page.evaluate(_FILTER_JS, ["f-q", query, "input"]))
            page.wait_for_function("window.evalkitInflatedMs !== undefined", timeout=60000)
            times.setdefault("every run's texts inflated (in the background)", []).append(
                page.evaluate("window.evalkitInflatedMs"))
            page.close()
        browser.close()
    return times


def run_case(label: str, data_file: Path, n_runs: int, accuracies: list[float], query: str) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-compare-"))
    try:
        runs = _write_runs(tmp / "results", data_file, n_runs, accuracies, seed=n_runs)
        t0 = time.perf_counter()
        comparison = build_comparison(runs)
        t1 = time.perf_counter()
        html = render_compare_html(comparison)
        t2 = time.perf_counter()
        page_file = tmp / "compare.html"
        page_file.write_text(html, encoding="utf-8")
        size = page_file.stat().st_size
        print(f"\n{label}: {n_runs} runs x {len(comparison.items)} items, {len(comparison.pairs)} ordered pairs gated")
        print(f"  build: comparison {t1 - t0:.2f} s, render {t2 - t1:.2f} s; page {size / 1e6:.1f} MB")
        for name, ms in _measure(page_file, n_runs, query).items():
            verdict = ("background: no target" if "background" in name or name.startswith("  (") else
                       "ok" if max(ms) < 1000 else "OVER 1 s")
            print(f"  {name:40s} median {statistics.median(ms):7.1f} ms  max {max(ms):7.1f} ms  "
                  f"({max(ms) / 1000:.2f} of the 1 s budget: {verdict})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    data = SHARED / "eval_data"
    medqa, medx = data / "medqa_test.jsonl", data / "medxpertqa_text_2450.jsonl"
    missing = [p for p in (medqa, medx) if not p.exists()]
    if missing or shutil.which("chromium") is None:
        print(f"needs {', '.join(map(str, missing)) or 'chromium on PATH'}", file=sys.stderr)
        return 2
    print(f"headless chromium; {REPEAT} opens per case; times measured inside the page")
    run_case("MedQA test", medqa, 2, [0.62, 0.60], "pain")
    run_case("MedXpertQA text", medx, 5, [0.14, 0.17, 0.19, 0.2, 0.22], "fever")
    return 0


if __name__ == "__main__":
    sys.exit(main())
