"""The leaderboard ranks like with like (issue 29, item 16): a table per group of rows that cover the
same items, the largest coverage first, each headed by what its rows share; a benchmark scored by its
own scorer shows that score; a row stays on one line of a 120-column terminal."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from click.testing import CliRunner
from rich.console import Console

from evalkit.cli import main
from evalkit.results.leaderboard import build_leaderboard, leaderboard_tables
from evalkit.results.report_document import format_leaderboard
from tests.runfactory import verdict_samples, write_run


def _manifest(sha: str, **generation):
    return {"generation": {"max_new_tokens": 2048, "temperature": 0.0, "top_p": 1.0, "seed": None, **generation},
            "strategy": "single", "samples": 1, "status": "complete", "prompt_sha256": "p" * 64,
            "server": {"model_hash": {"sha256": sha * 64}}, "scoring_fingerprint": "f" * 64}


@pytest.fixture
def sweep(tmp_path):
    """Three 4-item runs of a sweep (three checkpoints) and one run of the same model on 30 items."""
    root = tmp_path / "results"
    for step, sha, verdicts in (("100", "1", [True, False, False, False]), ("200", "2", [True, True, False, False]),
                                ("300", "3", [True, True, True, False])):
        write_run(root, f"step-{step}", verdict_samples("medqa", verdicts), task="sweep",
                  model="Qwen2.5-7B-Instruct-medical-sft-long-name", prompt="strict", extra_manifest=_manifest(sha))
    write_run(root, "full", verdict_samples("medqa", [True] * 21 + [False] * 9), task="full",
              model="Qwen2.5-7B-Instruct-medical-sft-long-name", prompt="strict", extra_manifest=_manifest("9"))
    return root


def test_the_thirty_item_run_heads_its_own_table_above_the_four_item_sweep(sweep):
    lb = build_leaderboard(sweep, n_resamples=200)
    assert [(g.ranked, g.items, len(g.rows)) for g in lb.groups] == [(True, {"medqa": 30}, 1),
                                                                    (True, {"medqa": 4}, 3)]
    full, steps = lb.groups
    assert full.rows[0].rank == 1 and full.rows[0].cells["medqa"].n == 30 and not full.rows[0].flags
    assert [(r.rank, r.cells["medqa"].correct) for r in steps.rows] == [(1, 3), (2, 2), (3, 1)]
    assert not any(r.flags for r in lb.rows) and lb.ranked_datasets == ["medqa"]
    # each table is headed by what its rows share; only the checkpoint varies within the sweep's
    assert steps.heading.startswith("Ranked on medqa (4 items); shared: prompt=strict")
    assert steps.varying == ["checkpoint"] and "max_new_tokens=2048" in steps.heading
    md = format_leaderboard(lb, "markdown")
    assert md.index("### 1. Ranked on medqa (30 items)") < md.index("### 2. Ranked on medqa (4 items)")
    assert "covers less" not in md
    data = json.loads(format_leaderboard(lb, "json"))
    assert [g["items"] for g in data["groups"]] == [{"medqa": 30}, {"medqa": 4}]
    assert [r["group"] for r in data["rows"]] == [0, 1, 1, 1]
    rows = list(csv.DictReader(io.StringIO(format_leaderboard(lb, "csv"))))
    assert [r["table"] for r in rows if r["dataset"] == "macro"] == ["1", "2", "2", "2"]


def test_each_row_is_one_line_at_120_columns(sweep):
    for step, sha in (("400", "4"), ("500", "5")):  # more settings that vary: tokens, temperature, top p
        write_run(sweep, f"step-{step}", verdict_samples("medqa", [True, False, True, False]), task="sweep",
                  model="Qwen2.5-7B-Instruct-medical-sft-long-name", prompt="strict-with-a-long-template-name",
                  extra_manifest=_manifest(sha, max_new_tokens=int(step), temperature=0.6, top_p=0.95))
    lb = build_leaderboard(sweep, n_resamples=200)
    console = Console(width=120, record=True, file=io.StringIO())
    for table in leaderboard_tables(lb, width=120):
        console.print(table)
    text = console.export_text()
    body = [ln for ln in text.splitlines() if re.match(r"^│\s*\d+\s*│", ln)]  # the ranked rows' lines
    assert len(body) == len(lb.rows) == 6, text  # one line per row, no row wrapped onto a second
    assert all(len(ln) <= 120 for ln in text.splitlines() if ln.startswith(("│", "┃", "┏", "└")))


def test_a_run_scored_by_its_own_scorer_shows_its_primary_score(tmp_path):
    root = tmp_path / "results"
    samples = verdict_samples("igakuqa_112_a", [True, True, False, True])
    # IgakuQA: points per question as the weight, 0 = excluded by the ministry; no multiple-choice verdict
    for s, (value, weight) in zip(samples, ((True, 1), (True, 3), (False, 3), (True, 0))):
        for key in ("correct", "pred", "method"):
            s.pop(key, None)
        s["scores"] = {"igakuqa": {"value": value, "meta": {"weight": weight}}, "kinki_picked": {"value": 0}}
    scoring = {"scorers": [{"name": "igakuqa"}],
               "metrics": {"igakuqa": {"name": "weighted_proportion"}, "kinki_picked": {"name": "count"}}}
    write_run(root, "igaku", samples, task="igaku", model="m", prompt="igakuqa_strict",
              extra_manifest={"scoring": scoring, "status": "complete"})
    write_run(root, "mcq", verdict_samples("medqa", [True, False]), task="mcq", model="m", prompt="strict")
    lb = build_leaderboard(root, n_resamples=200)
    cell = next(r for r in lb.rows if "igakuqa_112_a" in r.cells).cells["igakuqa_112_a"]
    assert cell.score == "igakuqa" and cell.accuracy == pytest.approx(4 / 7)  # 1 + 3 of 7 points
    md = format_leaderboard(lb, "markdown")
    assert "igakuqa_112_a [igakuqa]" in md and "57.1" in md
    asked = build_leaderboard(root, n_resamples=200, score="kinki_picked")  # a score named is that score
    assert next(r for r in asked.rows if "igakuqa_112_a" in r.cells).cells["igakuqa_112_a"].score == "kinki_picked"


def test_the_cli_prints_a_table_per_group(sweep):
    res = CliRunner(env={"COLUMNS": "120"}).invoke(main, ["leaderboard", str(sweep), "--resamples", "200"])
    assert res.exit_code == 0, res.output
    assert "1. Ranked on medqa (30 items)" in res.output and "2. Ranked on medqa (4 items)" in res.output
