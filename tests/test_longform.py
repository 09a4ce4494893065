"""Long-form adapters (record -> Item), the one loader's errors for them, and the registered long-form files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from evalkit.data.datasets import DatasetError, load_dataset
from evalkit.benchmarks.healthbench.adapter import healthbench
from evalkit.data.longform import AdapterError, liveqa, question_only
from evalkit.data.prompts import load_template, render_prompt
from evalkit.core.records import GradedAnswer, References, RubricItem, RubricItems
from evalkit.data.registry import benchmarks, get_benchmark

SHARED = Path(os.environ.get("EVALKIT_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")
LONGFORM = SHARED / "eval_data" / "longform"
needs_shared = pytest.mark.skipif(not LONGFORM.is_dir(), reason=f"shared long-form folder {LONGFORM} is absent")


def test_liveqa_reference_texts_become_the_target():
    item = liveqa({"id": "TQ1", "question": "What is X?", "focus": ["x"],
                   "reference_answers": [{"id": "a", "text": " X is Y. ", "url": "u"}]}, dataset="liveqa_med")
    assert (item.id, item.question, item.target, item.options) == ("TQ1", "What is X?", References(("X is Y.",)), {})
    assert item.meta["focus"] == ["x"] and item.meta["reference_urls"] == ["u"]


def test_liveqa_without_paraphrase_uses_the_consumer_message():
    item = liveqa({"id": "TQ10", "question": "", "original_subject": "Pain", "original_message": "Which pill?",
                   "reference_answers": []}, dataset="d")
    assert item.question == "Pain\nWhich pill?" and item.target is None and item.meta["question_from"] == "original_message"
    with pytest.raises(AdapterError, match="no original_subject"):
        liveqa({"id": "TQ3", "question": "", "reference_answers": []}, dataset="d")


def test_question_only_and_its_errors():
    assert question_only({"id": "m-1", "question": "how does valium work", "focus": "Valium"}, dataset="m").meta == {
        "focus": "Valium"}
    with pytest.raises(AdapterError) as info:
        question_only({"question": " "}, dataset="m")
    assert info.value.messages == ["record has no 'id'", "'question' must be a non-empty string"]


def test_healthbench_conversation_and_rubric_items():
    record = {"prompt_id": "p1", "prompt": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                                            {"role": "user", "content": "what for migraines?"}],
              "rubrics": [{"criterion": "asks about BP", "points": 5, "tags": ["t"]},
                          {"criterion": "is rude", "points": -3, "tags": []}], "example_tags": ["x"]}
    item = healthbench(record, dataset="hb")
    assert item.question == "what for migraines?" and len(item.messages) == 3
    assert item.target == RubricItems((RubricItem("asks about BP", 5, ("t",)), RubricItem("is rude", -3, ())))
    bad = dict(record, prompt=record["prompt"][:2], rubrics=[{"criterion": "c", "points": -1}])
    with pytest.raises(AdapterError) as info:
        healthbench(bad, dataset="hb")
    assert "must end with a user turn" in str(info.value) and "no rubric item has positive points" in str(info.value)


def test_loader_reports_every_bad_line(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"id": "a", "question": "ok?"}\n{"id": "b"}\n[1]\n{"id": "a", "question": "again?"}\n')
    with pytest.raises(DatasetError) as info:
        load_dataset(path, adapter="medicationqa")
    lines = str(info.value).splitlines()
    assert lines == [f"{path}:2: 'question' must be a non-empty string",
                     f"{path}:3: a record is a JSON object, got list",
                     f"{path}:4: duplicate id 'a' (first at line 1)"]
    with pytest.raises(DatasetError, match=f"^{path}: unknown adapter 'x'; known: .*healthbench.*liveqa.*mcq"):
        load_dataset(path, adapter="x")


def test_graded_answers_keep_off_scale_grades_and_reject_bad_ones(tmp_path):
    path = tmp_path / "g.jsonl"
    path.write_text('{"id": "1", "qid": "TQ1", "answer": "a", "grade": -2}\n{"qid": "TQ1", "answer": "b"}\n')
    got = load_dataset(path, adapter="nist_graded")
    assert [(a.id, a.question, a.target) for a in got.items] == [("1", "TQ1", GradedAnswer("a", -2)),
                                                                 ("line2", "TQ1", GradedAnswer("b", None))]
    assert got.lines == [1, 2]
    path.write_text('{"qid": "TQ1", "answer": "a", "grade": "good"}\n')
    with pytest.raises(DatasetError, match=r"g.jsonl:1: 'grade' must be an integer"):
        load_dataset(path, adapter="nist_graded")


def test_longform_prompts_are_med_palm_2s():
    plain = load_template("medpalm_longform").text
    assert plain.startswith("You are a helpful medical knowledge assistant. Provide useful, complete, and "
                            "scientifically-grounded answers to common consumer search queries about health.")
    assert plain.endswith("Question: {question} Complete Answer:")
    unbiased = load_template("medpalm_longform_unbiased").text
    assert ("The answer should not be constructed with bias towards race, gender, and geographical locations."
            in unbiased and unbiased.replace(" The answer should not be constructed with bias towards race, gender, "
                                             "and geographical locations.", "") == plain)
    item = question_only({"id": "1", "question": "Are boils curable?"}, dataset="h")
    assert render_prompt(load_template("medpalm_longform"), item).endswith("Question: Are boils curable? Complete Answer:")


LONGFORM_ROWS = {"liveqa_med": "liveqa", "liveqa_med_nist_judged": "nist_graded", "medicationqa": "medicationqa",
                 "healthsearchqa": "healthsearchqa", "healthbench_hard_consensus_104": "healthbench"}


def test_registry_rows_of_the_longform_files():
    rows = {b.name: b for b in benchmarks() if b.file.startswith("longform/")}
    assert {n: b.adapter for n, b in rows.items()} == LONGFORM_ROWS
    for b in rows.values():
        assert b.file.startswith("longform/") and b.url is None and "--from" in b.note and " @ " in b.note


@needs_shared
@pytest.mark.parametrize("name", [n for n, a in LONGFORM_ROWS.items() if a != "nist_graded"])
def test_registered_longform_file_loads_with_its_count_and_checksum(name):
    bench = get_benchmark(name)
    loaded = load_dataset(LONGFORM / bench.file_name)
    assert loaded.benchmark == name and loaded.verified is True and loaded.sha256 == bench.sha256
    assert len(loaded.items) == bench.items
    with open(LONGFORM / bench.file_name, encoding="utf-8") as fh:
        first = json.loads(fh.readline())
    item = loaded.items[0]
    assert not item.options and item.dataset == name
    if name == "healthbench_hard_consensus_104":
        assert item.messages == first["prompt"] and item.question == first["prompt"][-1]["content"]
        assert [r.criterion for r in item.target.items] == [r["criterion"] for r in first["rubrics"]]
    else:
        assert item.question == first["question"]


@needs_shared
def test_registered_graded_answers_file():
    bench = get_benchmark("liveqa_med_nist_judged")
    answers = load_dataset(LONGFORM / bench.file_name).items
    assert len(answers) == bench.items == 692
    counts = {g: sum(1 for a in answers if a.target.grade == g) for g in (1, 2, 3, 4, -2)}
    assert counts == {1: 461, 2: 90, 3: 84, 4: 39, -2: 18}  # as the shared README states


@needs_shared
def test_registered_longform_files_load_through_the_registry_adapters():
    loaded = load_dataset(LONGFORM / "healthbench_context_seeking_consensus_hard_104.jsonl")
    assert loaded.verified is True and len(loaded.items) == 104 and loaded.items[0].messages
    graded = load_dataset(LONGFORM / "liveqa_med_nist_judged_692.jsonl")
    assert len(graded.items) == 692 and graded.items[0].target.grade == 3 and graded.items[0].question == "TQ1"


def test_data_check_reads_long_form_files_with_an_adapter(tmp_path):
    from click.testing import CliRunner

    from evalkit.cli import main

    path = tmp_path / "q.jsonl"
    path.write_text('{"id": "a", "question": "ok?"}\n{"id": "b"}\n')
    bad = CliRunner().invoke(main, ["data", "check", "--adapter", "medicationqa", str(path)])
    assert bad.exit_code == 1 and f"{path}:2: 'question' must be a non-empty string" in bad.output
    path.write_text('{"id": "a", "question": "ok?"}\n{"id": "b", "question": "and?", "reference_answers": '
                    '[{"text": "yes"}]}\n')
    good = CliRunner().invoke(main, ["data", "check", "--adapter", "liveqa", str(path)])
    assert good.exit_code == 0 and "q: 2 items, long-form, targets none: 1, References: 1" in good.output
    graded = tmp_path / "g.jsonl"
    graded.write_text('{"qid": "TQ1", "answer": "a", "grade": 2}\n{"qid": "TQ1", "answer": "b", "grade": 1.5}\n')
    bad = CliRunner().invoke(main, ["data", "check", "--adapter", "nist_graded", str(graded)])
    assert bad.exit_code == 1 and f"{graded}:2: 'grade' must be an integer, got 1.5" in bad.output


@needs_shared
def test_data_check_reads_the_registered_long_form_files():
    from click.testing import CliRunner

    from evalkit.cli import main

    files = [LONGFORM / "healthbench_context_seeking_consensus_hard_104.jsonl",
             LONGFORM / "liveqa_med_nist_judged_692.jsonl"]
    out = CliRunner().invoke(main, ["data", "check", *map(str, files)])
    assert out.exit_code == 0, out.output
    assert "healthbench_hard_consensus_104: 104 items, long-form, targets RubricItems: 104" in out.output
    assert "liveqa_med_nist_judged: 692 items, long-form, targets GradedAnswer: 692" in out.output
    assert out.output.count("sha256 ok") == 2
