"""The HTML report: self-contained, safely embedded, and rendered by headless Chromium.

The Chromium test needs the Debian package: ``apt-get install -y chromium``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from evalkit.cli import main
from evalkit.results.pages.report import json_for_script, render_html, render_leaderboard_html
from evalkit.results.leaderboard import build_leaderboard
from evalkit.results.report import build_report, load_runs
from tests.runfactory import make_sample, verdict_samples, write_run

# Sample text that would break a naive page: it tries to close the data element
# and run a script that renames the page.
HOSTILE = "Final answer: B </script><script>document.title='PWNED'</script> <!-- & <b>bold</b>"


@pytest.fixture
def two_runs(tmp_path):
    a = [
        make_sample("mq-1", "medqa", correct=True, question="A 45-year-old man has chest pain. Next step?",
                    options={"A": "ECG", "B": "Discharge", "C": "MRI", "D": "Biopsy"}, gold="A",
                    output="The patient needs an ECG first. The answer is A.", method="answer_is",
                    meta={"meta_info": "step1"}),
        make_sample("mq-2", "medqa", correct=False, gold="C", output=HOSTILE, method="final_answer",
                    meta={"meta_info": "step2&3"}),
        make_sample("mq-3", "medqa", correct=None, output="It could be several things.", truncated=True),
        make_sample("mq-4", "medqa", error="HTTP 500 from http://127.0.0.1:8080/v1/chat/completions"),
    ] + verdict_samples("pubmedqa", [True, True, False, True], prefix="pmid")
    b = verdict_samples("medqa", [True, True, True], prefix="mq") + verdict_samples("pubmedqa", [True, False, False, False], prefix="pmid")
    run_a = write_run(tmp_path / "results", "medreason", a, model="MedReason-8B", prompt="cot", wall_s=4.0)
    run_b = write_run(tmp_path / "results", "huatuo", b, model="HuatuoGPT-o1-8B", prompt="cot", wall_s=5.0)
    return run_a, run_b


def _html(runs) -> str:
    loaded = load_runs(runs)
    return render_html(build_report(loaded, by=["meta_info"]), loaded)


def test_json_for_script_cannot_close_the_element():
    text = json_for_script({"x": HOSTILE, "sep": "a\u2028b"})
    assert "</" not in text and "<" not in text and ">" not in text and "&" not in text
    assert "\u2028" not in text
    assert json.loads(text) == {"x": HOSTILE, "sep": "a\u2028b"}


def test_html_is_self_contained_and_embeds_the_samples(two_runs):
    html = _html(two_runs)
    # Nothing is fetched: no external stylesheets, scripts, images or fonts.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<link" not in html and "@import" not in html and "url(" not in html
    assert html.count("<script") == 2 and html.count("</script>") == 2  # the hostile text stays escaped
    data = re.search(r'<script type="application/json" id="evalkit-samples">(.*?)</script>', html, re.S).group(1)
    payload = json.loads(data)
    assert [r["label"] for r in payload["runs"]] == ["medreason", "huatuo"]
    assert len(payload["samples"]) == 8 + 7
    hostile = [s for s in payload["samples"] if s["id"] == "mq-2" and s["run"] == 0][0]
    assert hostile["output"] == HOSTILE and hostile["method"] == "final_answer" and hostile["gold"] == "C"
    # The plot is inline SVG, one marker per (run, dataset).
    svg = re.search(r"<svg.*?</svg>", html, re.S).group(0)
    assert svg.count("<circle") == 4


def test_leaderboard_html_is_self_contained(two_runs, tmp_path):
    html = render_leaderboard_html(build_leaderboard(tmp_path / "results"))
    assert "MedReason-8B" in html and "HuatuoGPT-o1-8B" in html and "<svg" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)


def test_report_cli_writes_html(two_runs, tmp_path):
    out = tmp_path / "out" / "r.html"
    res = CliRunner().invoke(main, ["report", *map(str, two_runs), "--format", "html", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


# --- headless Chromium ----------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# CI sets EVALKIT_REQUIRE_CHROMIUM=1 so a missing browser fails there instead of skipping.
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("EVALKIT_REQUIRE_CHROMIUM") != "1",
    reason="chromium is not installed (CI must run: apt-get update && apt-get install -y chromium)",
)


def _chromium(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    assert CHROMIUM, "chromium is required here (EVALKIT_REQUIRE_CHROMIUM=1) but is not installed"
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", "--window-size=1280,2000", *extra, url]
    env = dict(os.environ, HOME=str(profile))
    return subprocess.run(args, capture_output=True, text=True, timeout=120, env=env)


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", head[16:24])


@needs_chromium
def test_html_report_renders_in_headless_chromium(two_runs, tmp_path):
    page = tmp_path / "report.html"
    page.write_text(_html(two_runs), encoding="utf-8")
    shot = tmp_path / "report.png"
    done = _chromium(page.as_uri(), tmp_path / "profile-shot", f"--screenshot={shot}")
    assert shot.exists(), done.stderr[-2000:]
    assert _png_size(shot) == (1280, 2000)
    assert shot.stat().st_size > 20_000  # a blank page compresses to a few kB

    dom = _chromium(page.as_uri(), tmp_path / "profile-dom", "--dump-dom").stdout
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))
    # Tables and plot came through.
    assert "<title>evalkit report</title>" in dom  # the hostile sample did not run
    assert "95% CI (wilson)" in text and "meta_info=step2&amp;3" in dom
    assert dom.count("<circle") == 4
    # The browser script ran: it wrote the status line and the first sample's detail.
    assert "Showing 1–15 of 15 samples" in text
    assert "A 45-year-old man has chest pain. Next step?" in text
    assert "The patient needs an ECG first. The answer is A." in text
    assert "rule matched answer_is" in text and "✓ gold" in text and "← extracted" in text
    assert "PWNED" not in dom.split("<script", 1)[0]

    # A deep link filters the list and opens the hostile sample: its text shows as text.
    dom = _chromium(page.as_uri() + "#run=medreason&dataset=medqa&verdict=wrong&item=mq-2",
                    tmp_path / "profile-link", "--dump-dom").stdout
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))
    assert "Showing 1–2 of 2 samples (15 in all)" in text  # mq-2 wrong, mq-3 unparsed
    detail = dom[dom.index('id="sample-detail"'):]
    assert "&lt;/script&gt;&lt;script&gt;document.title='PWNED'&lt;/script&gt;" in detail
    assert "rule matched final_answer" in text and "extracted A" in text
    assert "<title>evalkit report</title>" in dom


# --- auditing: every generation and its votes, the abstract, the prompt sent -------------------

GENERATIONS = ["First pass. The answer is A.", "Second pass. The answer is B.", "I cannot decide.",
               "Third pass. The answer is A.", "Fourth pass. The answer is A."]


def _generation(k: int, text: str) -> dict:
    letter = text[-2] if text.endswith(".") and "answer is" in text else None
    return {"k": k, "output": text, "pred": letter, "method": "answer_is" if letter else None,
            "finish_reason": "stop", "usage": {"completion_tokens": 10 + k}, "latency_s": 0.1}


@pytest.fixture
def audit_runs(tmp_path):
    """A self-consistency run (5 generations, votes A 3 / B 1 / 1 unparsed) and a PubMedQA-shaped
    run whose abstracts are only in the benchmark file the manifest names."""
    from evalkit.data.datasets import load_dataset

    outputs = [_generation(k, t) for k, t in enumerate(GENERATIONS)]
    sc = make_sample("mq-1", "medqa", correct=True, gold="A", output=GENERATIONS[0], method="majority_vote",
                     prompt="Answer the question.\nQuestion mq-1?\nA. option A of mq-1")
    sc.update(strategy="self-consistency", votes={"A": 3, "B": 1},
              stages=[{"name": "sample", "prompt": sc["prompt"], "pred": "A", "votes": {"A": 3, "B": 1},
                       "unparsed": 1, "outputs": outputs}])
    run_sc = write_run(tmp_path / "results", "sc", [sc], model="m", prompt="strict",
                       extra_manifest={"strategy": "self-consistency", "samples": 5})

    data = tmp_path / "pqa_items.jsonl"
    data.write_text("\n".join(json.dumps({"pmid": f"p{i}", "question": f"Does treatment {i} help?",
                                          "contexts": [f"Background of study {i}.", f"Results of study {i}."],
                                          "final_decision": "yes"}) for i in range(2)) + "\n")
    loaded = load_dataset(data)
    samples = [make_sample(it.id, it.dataset, correct=True, gold=it.answer_idx, question=it.question,
                           options=dict(it.options), prompt=f"Context: {it.context}\nQuestion: {it.question}")
               for it in loaded.items]
    run_pqa = write_run(tmp_path / "results", "pqa", samples, model="m", prompt="strict",
                        extra_manifest={"data": [{"path": str(data), "sha256": loaded.sha256}]})
    return run_sc, run_pqa, data


def _payload(html: str) -> dict:
    return json.loads(re.search(r'<script type="application/json" id="evalkit-samples">(.*?)</script>',
                                html, re.S).group(1))


def test_payload_carries_generations_votes_abstract_and_prompt(audit_runs):
    run_sc, run_pqa, _ = audit_runs
    samples = _payload(_html([run_sc, run_pqa]))["samples"]
    sc = samples[0]
    assert sc["votes"] == {"A": 3, "B": 1} and sc["strategy"] == "self-consistency"
    [stage] = sc["stages"]
    assert [g["output"] for g in stage["outputs"]] == GENERATIONS and stage["unparsed"] == 1
    assert [g["pred"] for g in stage["outputs"]] == ["A", "B", None, "A", "A"]
    assert stage["prompt"] is None  # the first stage's prompt is the sample's own, not repeated
    assert sc["prompt"].startswith("Answer the question.")
    pqa = samples[1]
    assert pqa["context"] == "Background of study 0.\nResults of study 0."
    assert pqa["prompt"].startswith("Context: Background of study 0.")


def test_abstract_is_not_taken_from_a_changed_benchmark_file(audit_runs):
    _, run_pqa, data = audit_runs
    data.write_text(data.read_text().replace("Background", "Edited"))
    assert all(s["context"] is None for s in _payload(_html([run_pqa]))["samples"])


def _dom_text(dom: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))


@needs_chromium
def test_html_report_shows_generations_votes_abstract_and_prompt_collapsed(audit_runs, tmp_path):
    run_sc, run_pqa, _ = audit_runs
    page = tmp_path / "audit.html"
    page.write_text(_html([run_sc, run_pqa]), encoding="utf-8")

    dom = _chromium(page.as_uri() + "#run=sc&item=mq-1", tmp_path / "profile-sc", "--dump-dom").stdout
    detail = dom[dom.index('id="sample-detail"'):]
    text = _dom_text(detail)
    assert "votes A 3 · B 1" in text and "strategy self-consistency" in text
    assert "sample stage: 5 generations, votes A 3 · B 1, 1 unparsed → A" in text
    for i, g in enumerate(GENERATIONS):  # every generation, each with what it voted
        assert g in text
    assert "generation 1: votes B (rule answer_is), finish stop, 11 tokens" in text
    assert "generation 2: no answer (unparsed)" in text
    assert "Prompt sent" in text and "Answer the question. Question mq-1?" in text
    # The audit blocks are collapsed: <details> without "open".
    blocks = re.findall(r"<details[^>]*>", detail)
    assert blocks and all("open" not in b for b in blocks), blocks
    assert '<details class="stage">' in detail and '<details class="prompt">' in detail

    dom = _chromium(page.as_uri() + "#run=pqa&item=p1", tmp_path / "profile-pqa", "--dump-dom").stdout
    detail = dom[dom.index('id="sample-detail"'):]
    text = _dom_text(detail)
    assert "Abstract (context given with the question)" in text
    assert "Background of study 1. Results of study 1." in text and '<details class="context">' in detail
    assert "Prompt sent" in text and "Context: Background of study 1." in text


def test_a_self_consistency_run_from_evalkit_run_shows_every_generation(tmp_path, loopback, items_file):
    """The record `evalkit run --samples 3` writes carries what the page shows."""
    srv = loopback()
    res = CliRunner().invoke(main, ["run", "--eval-file", str(items_file), "--endpoint", srv.url, "--quiet",
                                    "--samples", "3", "--temperature", "0.7", "--seed", "1", "--limit", "4",
                                    "--results-dir", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    [run_dir] = (tmp_path / "r").glob("*/*")
    samples = _payload(_html([run_dir]))["samples"]
    assert len(samples) == 4
    for s in samples:
        [stage] = s["stages"]
        assert len(stage["outputs"]) == 3 and all(g["output"] for g in stage["outputs"])
        assert sum(stage["votes"].values()) + stage["unparsed"] == 3
        assert s["votes"] == stage["votes"] and s["prompt"].strip()


def test_named_scores_and_a_judges_reply_are_shown(tmp_path):
    from evalkit.results.pages.report import prompt_text

    conversation = [{"role": "user", "content": "My child has a fever."}, {"role": "assistant", "content": "How old?"},
                    {"role": "user", "content": "Two years."}]
    s = make_sample("lf-1", "liveqa", correct=True, gold="A", output="Give fluids and see a doctor.")
    for k in ("pred", "method", "correct"):
        s.pop(k, None)
    s.update(options={}, answer_idx=None, prompt=conversation,
             scores={"grade": {"value": 3, "answer": "3", "meta": {"reply": '{"grade": 3}', "prompt": "Rate it."}},
                     "harm": {"value": None, "error": "judge gave no valid reply after 3 attempts"}})
    run = write_run(tmp_path / "results", "lf", [s], model="m", prompt="medpalm_longform")
    loaded = load_runs([run])
    html = render_html(build_report(loaded), loaded)
    shown = _payload(html)["samples"][0]
    assert shown["scores"]["grade"]["reply"] == '{"grade": 3}' and shown["scores"]["grade"]["value"] == 3
    assert shown["scores"]["harm"]["error"].startswith("judge gave no valid reply")
    assert shown["prompt"] == prompt_text(conversation) and "assistant: How old?" in shown["prompt"]
    page = tmp_path / "lf.html"
    page.write_text(html, encoding="utf-8")
    dom = _chromium(page.as_uri(), tmp_path / "profile-lf", "--dump-dom").stdout
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))
    assert "Judge's reply for grade" in text and "(not scored) — judge gave no valid reply" in text
    assert "user: My child has a fever." in text


@needs_chromium
def test_the_report_pages_its_samples_with_the_shared_pager(tmp_path):
    """The sample browser's pager (assets/pager.js, the comparison's too): 60 samples are 3 pages of 25;
    a deep link to the last item opens its page, where "next" is disabled."""
    run = write_run(tmp_path / "results", "many", verdict_samples("medqa", [True, False] * 30, prefix="mq"))
    page = tmp_path / "report.html"
    page.write_text(_html([run]), encoding="utf-8")
    assert page.read_text(encoding="utf-8").count("var evalkitPager") == 1  # inlined once, not linked
    dom = _chromium(page.as_uri(), tmp_path / "profile-p1", "--dump-dom").stdout
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))
    assert "page 1 of 3" in text and "Showing 1–25 of 60 samples" in text
    assert re.search(r'id="p-prev"[^>]*disabled', dom) and not re.search(r'id="p-next"[^>]*disabled', dom)
    dom = _chromium(page.as_uri() + "#item=mq-59", tmp_path / "profile-p3", "--dump-dom").stdout
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))
    assert "page 3 of 3" in text and "Showing 51–60 of 60 samples" in text
    assert re.search(r'id="p-next"[^>]*disabled', dom) and not re.search(r'id="p-prev"[^>]*disabled', dom)
