"""evalkit compare: the item-by-item data, the page, and the page driven in a real headless Chromium.

The browser tests drive Debian's ``chromium`` through Playwright's Python package (its
executable path; no browser is downloaded). They skip when either is missing, unless
EVALKIT_REQUIRE_CHROMIUM=1 (CI), which makes that a failure.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import shutil

import pytest
from click.testing import CliRunner

from evalkit.cli import main
from evalkit.results.compare import (BROKEN, FIXED, LEFT_OUT, SAME_RIGHT, SAME_WRONG, build_comparison, pair_rows,
                             verdict_of)
from evalkit.results.pages.compare import comparison_payload, render_compare_html
from evalkit.results.gate import format_p, compare_runs
from tests.runfactory import make_sample, verdict_samples, write_run

# Text that would break a naive page: it closes the data element, runs a script, and plants an image
# whose error handler runs code.
HOSTILE_OUTPUT = ("Final answer: B </script><script>window.__pwned = 1; document.title = 'PWNED'</script> "
                  "<!-- & <b>bold</b>")
HOSTILE_QUESTION = "Which drug? <img src=x onerror=\"window.__pwned = 2; document.title = 'IMG'\"> \u2028 end"

# medqa: 8 items. base: r r r w w u r E ; cand: r w w r w r u r  (E = a failed request)
BASE = [True, True, True, False, False, None, True, True]
CAND = [True, False, False, True, False, True, None, True]


def _runs(tmp_path, *, third: bool = False):
    root = tmp_path / "results"
    a = verdict_samples("medqa", BASE, prefix="mq") + verdict_samples("pubmedqa", [True, False, True], prefix="p")
    a[7] = make_sample("mq-7", "medqa", error="HTTP 500 from http://127.0.0.1:8080/v1/chat/completions")
    b = verdict_samples("medqa", CAND, prefix="mq") + verdict_samples("pubmedqa", [True, True, False], prefix="p")
    b[1] = make_sample("mq-1", "medqa", correct=False, gold="A", output=HOSTILE_OUTPUT, question=HOSTILE_QUESTION,
                       method="final_answer", completion_tokens=321, latency_s=2.5)
    a[1] = make_sample("mq-1", "medqa", correct=True, gold="A", question=HOSTILE_QUESTION,
                       output="The answer is A, because of the history.", completion_tokens=123, latency_s=1.25)
    runs = [write_run(root, "ckpt-100", a, model="ft-100",
                      extra_manifest={"server": {"model_hash": {"sha256": "aaa111"}},
                                      "generation": {"max_new_tokens": 512, "temperature": 0.0}}),
            write_run(root, "ckpt-200", b, model="ft-200",
                      extra_manifest={"server": {"model_hash": {"sha256": "bbb222"}},
                                      "generation": {"max_new_tokens": 1024, "temperature": 0.0}})]
    if third:
        c = verdict_samples("medqa", [False] * 8, prefix="mq") + verdict_samples("pubmedqa", [True] * 3, prefix="p")
        runs.append(write_run(root, "ckpt-300", c, model="ft-300"))
    return runs


# --- the data ---------------------------------------------------------------------------------

def test_directions_are_the_gates_flips(tmp_path):
    base, cand = _runs(tmp_path)
    comp = build_comparison([base, cand], n_resamples=500)
    gate = compare_runs(base, cand, n_resamples=500, allow_mismatch=True)
    pair = comp.pair(0, 1)
    lost = {(v.dataset, f.id) for v in gate.datasets for f in v.lost_items}
    gained = {(v.dataset, i) for v in gate.datasets for i in v.gained_ids}
    assert set(comp.items_going(0, 1, BROKEN)) == lost == {("medqa", "mq-1"), ("medqa", "mq-2"), ("medqa", "mq-6"),
                                                         ("pubmedqa", "p-2")}
    assert set(comp.items_going(0, 1, FIXED)) == gained == {("medqa", "mq-3"), ("medqa", "mq-5"), ("pubmedqa", "p-1")}
    assert comp.items_going(0, 1, LEFT_OUT) == [("medqa", "mq-7")]  # the failed request is not paired
    assert set(comp.items_going(0, 1, SAME_RIGHT)) == {("medqa", "mq-0"), ("pubmedqa", "p-0")}
    assert set(comp.items_going(0, 1, SAME_WRONG)) == {("medqa", "mq-4")}
    # The reverse pair swaps fixed and broken.
    assert set(comp.items_going(1, 0, FIXED)) == lost
    assert len(pair.directions) == len(comp.items) == 11
    # Per-run verdicts: unparsed and the error are told apart from wrong.
    assert comp.verdicts[0][:8] == "rrrwwure" and comp.verdicts[1][:8] == "rwwrwrur"


def test_settings_that_differ_come_from_the_manifests(tmp_path):
    comp = build_comparison(_runs(tmp_path), n_resamples=200)
    assert comp.differing == ["model", "checkpoint", "max_new_tokens"]
    assert [s["checkpoint"] for s in comp.settings] == ["aaa111", "bbb222"]


def test_pair_rows_are_the_gates_numbers(tmp_path):
    base, cand = _runs(tmp_path)
    gate = compare_runs(base, cand, n_resamples=500)
    rows = {r[0]: r for r in pair_rows(gate)}
    v = {d.dataset: d for d in gate.datasets}["medqa"]
    # 7 paired medqa items: both right mq-0; both wrong mq-4; fixed mq-3, mq-5; broken mq-1, mq-2, mq-6.
    assert rows["medqa"][:6] == ["medqa", "7", "1", "1", "2", "3"]
    assert rows["medqa"][8] == f"{100 * v.diff:+.1f}" and rows["medqa"][12] == v.status


def test_verdict_of_reads_a_named_score(tmp_path):
    s = make_sample("x", correct=True)
    s["scores"] = {"correct": {"value": True}, "grade": {"value": 3}, "pass": {"value": False}}
    assert verdict_of(s) == "r" and verdict_of(s, "grade") == "s" and verdict_of(s, "pass") == "w"
    assert verdict_of(s, "missing") == "n" and verdict_of(None) == "-"


def test_a_single_run_is_refused(tmp_path):
    base, _ = _runs(tmp_path)
    with pytest.raises(ValueError, match="at least two runs"):
        build_comparison([base])
    res = CliRunner().invoke(main, ["compare", str(base), "-o", str(tmp_path / "c.html")])
    assert res.exit_code != 0 and "at least two runs" in res.output


def test_cli_names_an_unwritable_output(tmp_path):
    base, cand = _runs(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = CliRunner().invoke(main, ["compare", str(base), str(cand), "-o", str(blocker / "c.html"),
                                    "--resamples", "200"])
    assert res.exit_code == 1 and "cannot write the page" in res.output and str(blocker) in res.output


# --- the page -----------------------------------------------------------------------------------

def test_page_is_self_contained_and_embeds_text_inertly(tmp_path):
    comp = build_comparison(_runs(tmp_path), n_resamples=200)
    html = render_compare_html(comp)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<link" not in html and "@import" not in html and "url(" not in html
    assert html.count("<script") == 4 and html.count("</script>") == 4  # data, two runs' generations, code
    assert "<img" not in html and "\u2028" not in html
    data = re.search(r'<script type="application/json" id="evalkit-compare">(.*?)</script>', html, re.S).group(1)
    payload = json.loads(data)
    assert payload == json.loads(json.dumps(comparison_payload(comp)))
    item = next(i for i in payload["items"] if i["id"] == "mq-1")
    assert item["q"] == HOSTILE_QUESTION
    k = payload["items"].index(item)
    packed = re.search(r'<script type="application/gzip" id="evalkit-out-1-0">(.*?)</script>', html, re.S).group(1)
    outputs = json.loads(gzip.decompress(base64.b64decode(packed)))
    assert outputs[k] == HOSTILE_OUTPUT
    assert payload["pairs"]["0-1"]["dirs"] == comp.pair(0, 1).directions


def test_generations_are_embedded_in_blocks_of_items_all_runs_together(tmp_path):
    from evalkit.results.pages.compare import BLOCK, run_outputs

    n = 2 * BLOCK + 7
    runs = [write_run(tmp_path / "results", name, verdict_samples("medqa", [k % 3 == j for k in range(n)], prefix="q"))
            for j, name in enumerate(["a", "b"])]
    comp = build_comparison(runs, n_resamples=200)
    html = render_compare_html(comp)
    ids = re.findall(r'id="(evalkit-(?:out|done)-[\d-]+)"', html)
    assert ids == ["evalkit-out-0-0", "evalkit-out-1-0", "evalkit-done-0", "evalkit-out-0-1", "evalkit-out-1-1",
                   "evalkit-done-1", "evalkit-out-0-2", "evalkit-out-1-2", "evalkit-done-2"]
    for r, texts in enumerate(run_outputs(comp)):
        joined = []
        for k in range(3):
            packed = re.search(f'id="evalkit-out-{r}-{k}">(.*?)</script>', html, re.S).group(1)
            joined += json.loads(gzip.decompress(base64.b64decode(packed)))
        assert joined == texts and len(joined) == n


def test_cli_writes_the_page(tmp_path):
    base, cand = _runs(tmp_path)
    out = tmp_path / "out" / "compare.html"
    res = CliRunner().invoke(main, ["compare", str(base), str(cand), "-o", str(out), "--resamples", "200"])
    assert res.exit_code == 0, res.output
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert "medqa: 2 fixed, 3 broken of 7 paired" in res.output


# --- headless Chromium --------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REQUIRED = os.environ.get("EVALKIT_REQUIRE_CHROMIUM") == "1"
try:
    from playwright.sync_api import sync_playwright
except ImportError:  # the test extra is not installed
    sync_playwright = None

needs_browser = pytest.mark.skipif(
    (CHROMIUM is None or sync_playwright is None) and not REQUIRED,
    reason="needs Debian's chromium (apt-get install -y chromium) and playwright (pip install -e '.[test]')",
)


@pytest.fixture
def browser_page():
    assert CHROMIUM, "chromium is required here (EVALKIT_REQUIRE_CHROMIUM=1) but is not installed"
    assert sync_playwright is not None, \
        "playwright is required here (EVALKIT_REQUIRE_CHROMIUM=1): pip install -e '.[test]'"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 1600})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("dialog", lambda d: (errors.append("dialog: " + d.message), d.dismiss()))
            page.errors = errors
            yield page
        finally:
            browser.close()


def _open(page, path):
    page.goto(path.as_uri())
    page.wait_for_selector("body[data-ready='1']", timeout=15000)


def _shown_stats(page) -> dict[str, list[str]]:
    rows = page.eval_on_selector_all(
        "#pair-stats tr", "trs => trs.map(tr => Array.from(tr.children).map(td => td.textContent))")
    return {r[0]: r for r in rows}


def _gate_json(base, cand, tmp_path, *extra: str) -> dict:
    out = tmp_path / "gate.json"
    res = CliRunner().invoke(main, ["gate", "--baseline", str(base), "--candidate", str(cand), "--json", str(out),
                                    "--resamples", "500", *extra])
    assert res.exit_code in (0, 1), res.output
    return json.loads(out.read_text(encoding="utf-8"))


def _check_stats_equal_gate(shown: dict[str, list[str]], gate: dict) -> None:
    assert set(shown) == {d["dataset"] for d in gate["datasets"]}
    for d in gate["datasets"]:
        row = shown[d["dataset"]]
        both_right = d["baseline_correct"] - d["lost"]
        assert row[1:6] == [str(d["n"]), str(both_right), str(d["n"] - both_right - d["lost"] - d["gained"]),
                            str(d["gained"]), str(d["lost"])]
        assert float(row[6]) == round(100 * d["baseline_accuracy"], 1)
        assert float(row[7]) == round(100 * d["candidate_accuracy"], 1)
        assert float(row[8]) == round(d["diff_points"], 1)
        low, high = (float(x) for x in row[9].strip("[]").split(","))
        assert (low, high) == (round(100 * d["diff_low"], 1), round(100 * d["diff_high"], 1))
        assert row[10] == format_p(d["p_value"]) and row[11] == format_p(d["p_holm"])  # as the gate prints them
        assert row[12] == d["status"]


@needs_browser
def test_browser_broken_item_and_gate_statistics(tmp_path, browser_page):
    base, cand = _runs(tmp_path)
    page_file = tmp_path / "compare.html"
    res = CliRunner().invoke(main, ["compare", str(base), str(cand), "-o", str(page_file), "--resamples", "500"])
    assert res.exit_code == 0, res.output
    gate = _gate_json(base, cand, tmp_path, "--allow-mismatch")
    page = browser_page
    _open(page, page_file)

    _check_stats_equal_gate(_shown_stats(page), gate)
    assert page.text_content("#pair-verdict").startswith("gate: " + gate["verdict"])

    page.select_option("#f-dir", "B")  # broken
    ids = page.eval_on_selector_all("#items tr", "trs => trs.map(tr => tr.children[1].textContent)")
    lost = sorted(f["id"] for d in gate["datasets"] for f in d["lost_items"])
    assert sorted(ids) == lost
    page.click("#items tr[data-i] >> text=mq-1")
    page.evaluate("evalkitCompare.idle()")
    assert page.text_content("#side-a pre.generation") == "The answer is A, because of the history."
    assert page.text_content("#side-b pre.generation") == HOSTILE_OUTPUT
    detail = page.text_content("#item-detail")
    assert HOSTILE_QUESTION.replace("\u2028", "") in detail.replace("\u2028", "")
    assert "final_answer" in detail and "321" in detail and "2.50 s" in detail and "\u2713 gold" in detail

    # The planted markup stayed text: no script ran, no image was made, the title is the page's own.
    assert page.title() == "evalkit compare"
    assert page.evaluate("window.__pwned === undefined")
    assert page.evaluate("document.scripts.length") == 4
    assert page.evaluate("document.images.length") == 0
    assert page.errors == []

    # Unparsed in either, then a text search, narrow the table as they say.
    page.select_option("#f-dir", "U")
    ids = page.eval_on_selector_all("#items tr", "trs => trs.map(tr => tr.children[1].textContent)")
    assert sorted(ids) == ["mq-5", "mq-6"]
    page.select_option("#f-dir", "")
    page.fill("#f-q", "because of the history")
    page.evaluate("evalkitCompare.idle()")
    assert page.eval_on_selector_all("#items tr", "trs => trs.length") == 1


@needs_browser
def test_browser_three_runs_pick_a_pair_and_sort(tmp_path, browser_page):
    runs = _runs(tmp_path, third=True)
    page_file = tmp_path / "compare.html"
    res = CliRunner().invoke(main, ["compare", *map(str, runs), "-o", str(page_file), "--resamples", "500"])
    assert res.exit_code == 0, res.output
    page = browser_page
    _open(page, page_file)
    page.select_option("#pair-b", "2")
    _check_stats_equal_gate(_shown_stats(page), _gate_json(runs[0], runs[2], tmp_path, "--allow-mismatch"))
    # Each row shows the item's verdict in all three runs.
    first = page.eval_on_selector_all("#items tr:first-child .runs-row .badge", "bs => bs.map(b => b.title)")
    assert [t.split(":")[0] for t in first] == ["ckpt-100", "ckpt-200", "ckpt-300"]
    page.click("#items-head th[data-sort='id']")
    page.click("#items-head th[data-sort='id']")  # descending
    ids = page.eval_on_selector_all("#items tr", "trs => trs.map(tr => tr.children[1].textContent)")
    assert ids == sorted(ids, reverse=True) and len(ids) == 11
    page.click("#items tr >> nth=0")
    assert page.eval_on_selector_all("#all-runs th", "ths => ths.length") == 3
    assert page.errors == []


@needs_browser
def test_browser_judged_item_shows_each_axis_and_reply(tmp_path, browser_page):
    root = tmp_path / "results"

    def judged(grade: int, reply: str) -> dict:
        s = make_sample("hb-0", "healthbench", correct=True)
        s["scores"] = {"correct": {"value": True},
                       "accuracy": {"value": grade, "meta": {"reply": reply}},
                       "safety": {"value": 5, "meta": {"reply": "safe </script><img src=x onerror=alert(1)>"}}}
        return s

    a = write_run(root, "a", [judged(4, "Mostly right.")])
    b = write_run(root, "b", [judged(2, "Misses the dose.")])
    page_file = tmp_path / "judged.html"
    page_file.write_text(render_compare_html(build_comparison([a, b], n_resamples=200, score="accuracy")),
                         encoding="utf-8")
    page = browser_page
    _open(page, page_file)
    page.click("#items tr >> nth=0")
    page.evaluate("evalkitCompare.idle()")
    assert page.text_content("#side-a .score-accuracy") == "4"
    assert page.text_content("#side-b .score-accuracy") == "2"
    replies = page.eval_on_selector_all("#side-b details.judge pre", "ps => ps.map(p => p.textContent)")
    assert replies == ["Misses the dose.", "safe </script><img src=x onerror=alert(1)>"]
    assert page.evaluate("document.images.length") == 0 and page.errors == []
    assert page.text_content("#items tr .badge") == "broken"


@needs_browser
def test_browser_shows_the_votes_of_a_multi_sample_run(tmp_path, browser_page):
    root = tmp_path / "results"
    voted = make_sample("mq-0", correct=True)
    voted.update(strategy="self-consistency", votes={"A": 3, "B": 2})
    a = write_run(root, "greedy", [make_sample("mq-0", correct=False)])
    b = write_run(root, "sc5", [voted])
    page_file = tmp_path / "votes.html"
    page_file.write_text(render_compare_html(build_comparison([a, b], n_resamples=200)), encoding="utf-8")
    page = browser_page
    _open(page, page_file)
    page.click("#items tr >> nth=0")
    page.evaluate("evalkitCompare.idle()")
    assert "A 3 \u00b7 B 2" in page.text_content("#side-b dl")
    assert "votes" not in page.text_content("#side-a dl")


@needs_browser
def test_browser_item_of_a_late_block_shows_its_generations(tmp_path, browser_page):
    from evalkit.results.pages.compare import BLOCK

    n = 2 * BLOCK + 7
    runs = [write_run(tmp_path / "results", name, [make_sample(f"q{k}", correct=k % 2 == j, output=f"{name} says {k}")
                                                   for k in range(n)]) for j, name in enumerate(["a", "b"])]
    page_file = tmp_path / "blocks.html"
    page_file.write_text(render_compare_html(build_comparison(runs, n_resamples=200)), encoding="utf-8")
    page = browser_page
    _open(page, page_file)
    page.click("#p-next")
    page.click("#p-next")  # the third page: the third block
    page.click("#items tr >> nth=2")
    page.evaluate("evalkitCompare.idle()")
    k = 2 * BLOCK + 2
    assert page.text_content("#side-a pre.generation") == f"a says {k}"
    assert page.text_content("#side-b pre.generation") == f"b says {k}"
    page.fill("#f-q", "b says 3")  # the search reads every block
    page.evaluate("evalkitCompare.idle()")
    ids = page.eval_on_selector_all("#items tr", "trs => trs.map(tr => tr.children[1].textContent)")
    assert sorted(ids) == sorted(f"q{i}" for i in range(n) if str(i).startswith("3"))
    assert page.errors == []


# --- the trend page of a sweep -----------------------------------------------------------------

def _sweep(tmp_path):
    from evalkit.results.pages.trend import TrendPoint

    root = tmp_path / "results"
    runs = []
    for step, verdicts in [(1000, [True, False, False, True]), (2000, [True, True, False, True]),
                           (3000, [False, True, True, True])]:
        runs.append(write_run(root, f"step-{step}", verdict_samples("medqa", verdicts, prefix="mq"),
                              model=f"ft-{step}"))
    points = [TrendPoint(step, "medqa", sum(v) / 4, 0.1, 0.9, run)
              for (step, v), run in zip([(1000, [1, 0, 0, 1]), (2000, [1, 1, 0, 1]), (3000, [0, 1, 1, 1])], runs)]
    return runs, points


def test_trend_orders_runs_by_step_and_gates_earlier_to_later(tmp_path):
    from evalkit.results.pages.trend import render_trend_html, sweep_runs

    runs, points = _sweep(tmp_path)
    ordered, index = sweep_runs(list(reversed(points)))
    assert [str(r) for r in ordered] == [str(r) for r in runs] and index == [2, 1, 0]
    html = render_trend_html(points, n_resamples=200)
    assert html.count("<circle") == 3 and 'data-run="2"' in html
    payload = json.loads(re.search(r'id="evalkit-compare">(.*?)</script>', html, re.S).group(1))
    assert sorted(payload["pairs"]) == ["0-1", "0-2", "1-2"]


@needs_browser
def test_browser_trend_two_clicks_compare_their_runs(tmp_path, browser_page):
    from evalkit.results.pages.trend import render_trend_html

    runs, points = _sweep(tmp_path)
    page_file = tmp_path / "trend.html"
    page_file.write_text(render_trend_html(points, n_resamples=500), encoding="utf-8")
    page = browser_page
    _open(page, page_file)
    page.click("svg.trend circle[data-run='2']")
    page.click("svg.trend circle[data-run='0']")  # the earlier step becomes the baseline
    assert page.input_value("#pair-a") == "0" and page.input_value("#pair-b") == "2"
    _check_stats_equal_gate(_shown_stats(page), _gate_json(runs[0], runs[2], tmp_path))
    assert "steps 1000 and 3000" in page.text_content("#trend-note")
    assert page.errors == []


# --- runs the gate would not compare (issue 29, item 9) ------------------------------------------

def test_cli_and_page_say_when_the_prompts_differ(tmp_path):
    root = tmp_path / "results"
    base = write_run(root, "strict", verdict_samples("medqa", [True, False, True, True]), prompt="strict")
    cand = write_run(root, "cot", verdict_samples("medqa", [True, True, False, True]), prompt="cot")
    out = tmp_path / "c.html"
    res = CliRunner().invoke(main, ["compare", str(base), str(cand), "-o", str(out), "--resamples", "200"])
    assert res.exit_code == 0, res.output  # comparing two prompts is what compare is for: said, not refused
    assert "mismatch: prompts differ: baseline 'strict', candidate 'cot'" in res.output
    assert "NOT COMPARABLE without --allow-mismatch" in res.output
    page = out.read_text(encoding="utf-8")
    assert 'id="mismatches"' in page and "mismatch: prompts differ" in page


def test_cli_and_page_say_when_the_benchmarks_differ(tmp_path):
    root = tmp_path / "results"
    base = write_run(root, "a", verdict_samples("medqa", [True, False, True]), prompt="strict")
    cand = write_run(root, "b", verdict_samples("pubmedqa", [True, True, False]), prompt="strict")
    out = tmp_path / "c.html"
    res = CliRunner().invoke(main, ["compare", str(base), str(cand), "-o", str(out), "--resamples", "200"])
    assert res.exit_code == 2, res.output  # nothing could be paired, as the gate's NOT COMPARABLE
    assert "mismatch: medqa: only in the baseline" in res.output
    assert "mismatch: pubmedqa: only in the candidate" in res.output and "NOT COMPARABLE" in res.output
    page = out.read_text(encoding="utf-8")
    assert "No setting differs" not in page and "1 setting differs." in page
    comp = build_comparison([base, cand], n_resamples=200)
    assert comp.differing == ["benchmarks"] and [s["benchmarks"] for s in comp.settings] == ["medqa", "pubmedqa"]
    assert "medqa: only in the baseline" in comp.mismatches


@needs_browser
def test_browser_paired_table_fits_1400_px_without_a_scrollbar(tmp_path, browser_page):
    """Long dataset names and the gate's 13 columns fit a 1,400 px window (issue 29, item 18): headers
    wrap, a long name breaks; the item table too."""
    names = ["medagents_medxpertqa_understanding", "igakuqa_112_a", "medxpertqa_text"]
    runs = [write_run(tmp_path / "results", run, [s for d in names for s in verdict_samples(d, verdicts)],
                      prompt="strict")
            for run, verdicts in (("base", [True, False] * 30), ("cand", [False, True] * 30))]
    page_file = tmp_path / "c.html"
    page_file.write_text(render_compare_html(build_comparison(runs, n_resamples=200)), encoding="utf-8")
    browser_page.set_viewport_size({"width": 1400, "height": 1000})
    _open(browser_page, page_file)
    widths = browser_page.evaluate("""() => Array.from(document.querySelectorAll('#pair .scroll, #browser .scroll'))
        .filter(d => d.clientWidth > 0).map(d => [d.scrollWidth, d.clientWidth])""")
    assert widths and all(scroll <= client for scroll, client in widths), widths
    assert browser_page.errors == []
