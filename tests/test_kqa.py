"""K-QA: the adapter, the statement judge against a stand-in whose replies are known, K-QA's
figures, and the judge's agreement with physicians, with every figure computed by hand."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from evalkit.cli import main
from evalkit.data.datasets import load_dataset
from evalkit.benchmarks.kqa.statements import (kqa_figures, parse_label_reply, parse_labels_reply, read_nli_pairs,
                         render_answer_prompt)
from evalkit.scoring.nli_stats import fleiss_kappa, label_agreement, leave_one_out, word_overlap_labels
from evalkit.core.records import Item, SampleRecord
from evalkit.results.report import build_report, report_tables
from evalkit.scoring import get_scorer
from tests.conftest import ROOT, SHARED
from tests.html_sections import html_sections
from tests.serverproc import ServerProcess

KQA = SHARED / "eval_data" / "kqa"
L = ("Entailment", "Neutral", "Contradiction")
E, N, C = L


# --------------------------------------------------------------------------- statistics (pure)


def test_label_agreement_equals_the_hand_computed_figures():
    a = label_agreement([E, E, N, N, N, C], [E, N, N, N, E, C], L, n_resamples=200)
    assert a.n == 6 and a.confusion == [[1, 1, 0], [1, 2, 0], [0, 0, 1]]
    assert a.accuracy == pytest.approx(4 / 6)
    assert a.macro_f1 == pytest.approx((0.5 + 2 / 3 + 1) / 3)  # F1 per label: E 2/4, N 4/6, C 2/2
    assert a.kappa == pytest.approx(10 / 22)  # (24/36 - 14/36) / (1 - 14/36)
    assert a.accuracy_ci[0] <= a.accuracy <= a.accuracy_ci[1] and a.kappa_ci[0] < a.kappa_ci[1]
    assert a.confusion_ci[2][2][0] <= 1 <= a.confusion_ci[2][2][1]
    missing = label_agreement([E, N], [E, None], L, n_resamples=0)
    assert missing.n == 1 and missing.missing == 1 and missing.accuracy == 1.0
    constant = label_agreement([N, N], [N, N], L, n_resamples=0)
    assert constant.kappa is None  # chance agreement 1: undefined, not a number


def test_fleiss_kappa_and_each_rater_against_the_others():
    ratings = [[E, E, E], [E, E, N], [N, N, C], [E, N, C]]
    assert fleiss_kappa(ratings, L) == pytest.approx(1 / 22)  # P-bar 5/12, chance 14/36
    first, _, third = leave_one_out(ratings, L, n_resamples=0)
    assert first.n == 1 and first.accuracy == 1.0  # only item 1 has two others agreeing
    assert third.n == 3 and third.accuracy == pytest.approx(1 / 3)


def test_word_overlap_baseline_never_says_contradiction():
    answer = "Escitalopram is an SSRI antidepressant."
    got = word_overlap_labels([answer, answer], ["Escitalopram is an antidepressant of the SSRI class",
                                                 "Side effects include insomnia"])
    assert got == [E, N]  # 3 of 4 content words (>= 0.6); none


def test_kqa_figures_follow_the_kqa_script():
    figures = kqa_figures([1 / 3, 1.0, None], [2, 0, None], n_questions=3)
    assert figures["Comp"] == pytest.approx((1 / 3 + 1) / 3) and figures["Comp_norm"] == pytest.approx(2 / 3)
    assert figures["Hall"] == pytest.approx(2 / 3) and figures["Hall_norm"] == 1.0
    assert figures["N_contra"] == 2 and figures["N_answered_questions"] == 2


def test_replies_parse_or_say_what_is_wrong():
    assert parse_label_reply('{"label": "Contradiction"}') == ("contradiction", None)
    assert parse_label_reply('```json\n{"label": "entails"}\n```') == ("entailment", None)
    assert "one of" in parse_label_reply('{"label": "maybe"}')[1]
    assert parse_labels_reply('{"labels": ["neutral", "entailment"]}', 2) == (["neutral", "entailment"], None)
    assert "expected 3 labels" in parse_labels_reply('{"labels": ["neutral"]}', 3)[1]
    assert "1. first\n2. second" in render_answer_prompt("q", "a", ["first", "second"])


# --------------------------------------------------------------------------- data


@pytest.mark.skipif(not KQA.is_dir(), reason=f"{KQA} is absent")
def test_the_published_files_load_with_their_statements():
    loaded = load_dataset(KQA / "questions_w_answers.jsonl")
    assert loaded.verified is True and loaded.benchmark == "kqa" and len(loaded.items) == 201
    assert sum(len(i.target.must_have) for i in loaded.items) == 889  # 892 less 3 empty strings
    assert sum(len(i.target.nice_to_have) for i in loaded.items) == 697
    pairs = read_nli_pairs(KQA / "NLI_medical_annotator.csv")
    assert len(pairs) == 399 and [sum(p.majority == x for p in pairs) for x in L] == [153, 234, 12]


# --------------------------------------------------------------------------- against a stand-in judge

RULES = [
    {"contains": "claim-m1", "replies": ['{"label": "entailment"}']},
    {"contains": "claim-m2", "replies": ['{"label": "contradiction"}']},
    {"contains": "claim-m3", "replies": ["not json", '{"label": "neutral"}']},  # asked again once
    {"contains": "claim-n1", "replies": ['{"label": "contradiction"}']},
    {"contains": "claim-n2", "replies": ['{"label": "neutral"}']},
    {"contains": "claim-m4", "replies": ['{"label": "entailment"}']},
]
RECORDS = [{"Question": "What helps q-one?", "Free_form_answer": "ref",
            "Must_have": ["claim-m1 is so", "claim-m2 is so", "claim-m3 is so"],
            "Nice_to_have": ["claim-n1 is so", "claim-n2 is so"]},
           {"Question": "What helps q-two?", "Free_form_answer": "ref", "Must_have": ["claim-m4 is so"],
            "Nice_to_have": []}]


@pytest.fixture
def standin(tmp_path):
    started = []

    def start(rules, *args):
        path = tmp_path / f"rules-{len(started)}.json"
        path.write_text(json.dumps(rules))
        srv = ServerProcess(Path(__file__).resolve().parent / "judge_server.py", "--rules", str(path), *args)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()


def kqa_item(record: dict) -> Item:
    from evalkit.benchmarks.kqa.statements import kqa

    return kqa(record, dataset="kqa")


@pytest.mark.parametrize("per, requests", [("statement", 5 + 1), ("answer", 1)])
def test_scorer_labels_each_statement_and_gives_kqa_figures(standin, per, requests):
    import asyncio

    rules = RULES if per == "statement" else [
        {"contains": "Statements:", "replies": ['{"labels": ["entailment", "contradiction", "neutral", '
                                                '"contradiction", "neutral"]}']}]
    srv = standin(rules)
    scorer = get_scorer("kqa", endpoint=srv.url, model="judge-double", per=per)
    item = kqa_item(RECORDS[0])
    sample = SampleRecord(id=item.id, dataset="kqa", output="<think>x</think>An answer.")
    scores = asyncio.run(scorer.score(item, sample))
    asyncio.run(scorer.aclose())
    comp, hall = scores["comprehensiveness"], scores["hallucination"]
    assert comp.value == pytest.approx(1 / 3) and comp.answer == "1/3 Must_have entailed"
    assert hall.value == 2 and hall.meta["contradicted"] == ["claim-m2 is so", "claim-n1 is so"]
    assert [s["label"] for s in comp.meta["statements"]] == ["entailment", "contradiction", "neutral",
                                                             "contradiction", "neutral"]
    assert comp.meta["judge_requests"] == requests  # every request sent, re-asks included
    assert scorer.usage.requests == srv.stats()["requests"] == requests
    assert ("judge_prompt" in comp.meta) == (per == "answer") and "judge_prompt" not in hall.meta
    assert "An answer." in (comp.meta.get("judge_prompt") or "An answer.") and "<think>" not in str(comp.meta)


def test_run_and_report_end_to_end(standin, tmp_path):
    data = tmp_path / "kqa_sample.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    srv = standin(RULES, "--default", "Rest and fluids.")
    args = ["run", "--eval-file", str(data), "--adapter", "kqa", "--endpoint", srv.url, "--model", "judge-double",
            "--scorer", "kqa", "--scorer-arg", f"kqa.endpoint={srv.url}", "--scorer-arg", "kqa.model=judge-double",
            "--results-dir", str(tmp_path / "res"), "--quiet"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    run = next((tmp_path / "res").glob("*/*"))
    rep = CliRunner().invoke(main, ["report", str(run), "--format", "markdown"])
    assert rep.exit_code == 0, rep.output
    assert json.loads((run / "manifest.json").read_text())["scoring"]["metrics"] == {
        "comprehensiveness": {"name": "mean"}, "hallucination": {"name": "mean"}}
    section = rep.output.split("## K-QA", 1)[1]
    # Comp = (1/3 + 1) / 2 questions; Hall = 2 contradicted / 2 questions; 6 statements judged, one re-asked
    assert "| 2/2 | 66.7 | 66.7 | 1.000 | 1.000 | 2 | 7 |" in section
    # the same section on the HTML page and in the text report, laid out by no K-QA code of theirs
    page = tmp_path / "report.html"
    r = CliRunner().invoke(main, ["report", str(run), "--format", "html", "-o", str(page)])
    assert r.exit_code == 0, r.output
    header, rows, notes = html_sections(page.read_text(encoding="utf-8"))["K-QA"]
    assert header[2:9] == ["answered", "Comp %", "Comp_norm %", "Hall", "Hall_norm", "contradicted", "judge requests"]
    (row,) = rows
    assert row[1:9] == ["kqa_sample", "2/2", f"{100 * (1 / 3 + 1) / 2:.1f}", f"{100 * (1 / 3 + 1) / 2:.1f}",
                        f"{2 / 2:.3f}", f"{2 / 2:.3f}", "2", "7"]
    assert any(n.startswith("Comp:") for n in notes)
    console = Console(width=400, record=True, file=io.StringIO())
    for table in report_tables(build_report([run])):
        console.print(table)
    text = console.export_text().split("K-QA", 1)[1]
    line = next(x for x in text.splitlines() if "│ kqa_sample " in x)
    assert [c.strip() for c in line.split("│")[3:10]] == ["2/2", "66.7", "66.7", "1.000", "1.000", "2", "7"]


def write_physicians_csv(path: Path) -> None:
    rows = [("claim-p1", (E, E, E)), ("claim-p2", (E, E, N)), ("claim-p3", (N, N, C)), ("claim-p4", (N, N, N)),
            ("claim-p5", (N, E, N)), ("claim-p6", (C, C, N))]
    majority = [E, E, N, N, N, C]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["", "Question", "llm_x", "answer", "claim", "category_x", "majority_label", "label_0", "label_1",
                    "label_2"])
        for i, ((claim, labels), maj) in enumerate(zip(rows, majority)):
            w.writerow([i, "Q?", "m", f"An answer\nover two lines {i}.", f"{claim} holds", "Must_have", maj, *labels])


def test_judge_cli_on_the_physicians_file_reports_hand_computed_agreement(standin, tmp_path):
    path = tmp_path / "NLI_medical_annotator.csv"
    write_physicians_csv(path)
    judged = ["entailment", "neutral", "neutral", "neutral", "entailment", "contradiction"]
    srv = standin([{"contains": f"claim-p{i + 1}", "replies": [json.dumps({"label": x})]}
                   for i, x in enumerate(judged)])
    out = tmp_path / "agreement.json"
    args = ["judge", str(path), "--judge-endpoint", srv.url, "--judge-model", "judge-double", "--json", str(out),
            "--work-dir", str(tmp_path / "work"), "--resamples", "200"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    assert doc["judge"]["accuracy"] == pytest.approx(4 / 6) and doc["judge"]["kappa"] == pytest.approx(10 / 22)
    assert doc["judge"]["macro_f1"] == pytest.approx((0.5 + 2 / 3 + 1) / 3)
    assert doc["judge"]["confusion"] == [[1, 1, 0], [1, 2, 0], [0, 0, 1]]
    assert doc["always_neutral"]["accuracy"] == 0.5 and doc["always_neutral"]["kappa"] == 0
    assert len(doc["physicians"]) == 3 and doc["fleiss_kappa"] is not None
    assert "floor: always Neutral" in r.output and "ceiling: physician 0" in r.output
    assert srv.stats()["requests"] == 6
    again = CliRunner().invoke(main, args)  # resumes from the journal: nothing asked again
    assert again.exit_code == 0 and srv.stats()["requests"] == 6 and "6 resumed" in again.output
    from evalkit.benchmarks.kqa.statements import NLI_JOURNAL

    journal = tmp_path / "work" / NLI_JOURNAL  # the file the library journals to is the one the CLI names
    assert journal.is_file() and f"resumed from {journal}" in again.output.replace("\n", "")


def test_the_journal_name_is_written_once():
    """K-QA's journal file name lives in evalkit.benchmarks.kqa.statements (NLI_JOURNAL); the CLI reads it off the Judgement."""
    from evalkit.benchmarks.kqa.statements import NLI_JOURNAL

    sources = [p for p in sorted((ROOT / "evalkit").rglob("*.py")) if NLI_JOURNAL in p.read_text(encoding="utf-8")]
    assert [p.relative_to(ROOT).as_posix() for p in sources] == ["evalkit/benchmarks/kqa/statements.py"]


def test_json_schema_constrains_every_request(standin):
    import asyncio

    srv = standin(RULES)
    scorer = get_scorer("kqa", endpoint=srv.url, model="judge-double", json_schema="true")
    item = kqa_item(RECORDS[1])
    scores = asyncio.run(scorer.score(item, SampleRecord(id=item.id, dataset="kqa", output="Fluids.")))
    asyncio.run(scorer.aclose())
    assert scores["comprehensiveness"].value == 1.0 and scores["hallucination"].value == 0
    assert srv.stats()["response_formats"] == srv.stats()["requests"] == 1
    assert scorer.spec()["kqa"]["json_schema"] is True
