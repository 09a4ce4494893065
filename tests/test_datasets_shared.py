"""Every public benchmark file in ../shared/eval_data loads clean and prompts as expected.

The files are never copied into the repository: these tests read them in
place and skip (saying why) only when the shared folder is absent. Expected
prompts are rebuilt here from each file's raw first record, by rules written
independently of the loader (no data text is hard-coded).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from evalkit.benchmarks.pubmedqa import PUBMEDQA_OPTIONS
from evalkit.data.datasets import load_dataset
from evalkit.data.prompts import load_template, render_prompt
from evalkit.data.registry import benchmarks, get_benchmark

SHARED = Path(os.environ.get("EVALKIT_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")
EVAL_DATA = SHARED / "eval_data"
needs_shared = pytest.mark.skipif(not EVAL_DATA.is_dir(), reason=f"shared benchmark folder {EVAL_DATA} is absent")

STRICT = ("Please answer the following multiple-choice questions. Please answer the following "
          "multiple-choice questions, ensuring your response concludes with the correct option in "
          "the format: 'The answer is A.'.\n")
FREE = "Please answer the following multiple-choice question:\n"
PUBLIC = [b.name for b in benchmarks() if not b.local and b.adapter in ("mcq", "pubmedqa")]  # long-form: test_longform.py


def first_raw(name: str) -> dict:
    """The first record of a benchmark file, read with plain json."""
    path = EVAL_DATA / get_benchmark(name).file
    if path.suffix == ".jsonl":
        with open(path, encoding="utf-8") as fh:
            return json.loads(fh.readline())
    return json.loads(path.read_text(encoding="utf-8"))


def lines(options: dict) -> str:
    return "\n".join(f"{k}. {v}" for k, v in options.items())


@needs_shared
@pytest.mark.parametrize("name", PUBLIC)
def test_benchmark_loads_with_registered_count_and_no_problems(name):
    bench = get_benchmark(name)
    loaded = load_dataset(EVAL_DATA / bench.file)
    assert loaded.skipped == []
    assert len(loaded.items) == bench.items
    assert loaded.verified is True and loaded.sha256 == bench.sha256
    assert loaded.benchmark == name
    assert loaded.shape == bench.shape
    counts = {len(item.options) for item in loaded.items}
    low, high = bench.options if isinstance(bench.options, tuple) else (bench.options, bench.options)
    assert min(counts) == low and max(counts) == high
    ids = [(item.dataset, item.id) for item in loaded.items]
    assert len(set(ids)) == len(ids)
    assert all(item.answer_idx in item.options for item in loaded.items)
    if bench.datasets:
        assert {k: len(v) for k, v in loaded.datasets().items()} == bench.datasets
    else:
        assert {item.dataset for item in loaded.items} == {name}


@needs_shared
def test_ids_are_stable_across_loads():
    path = EVAL_DATA / "medbullets_op5.jsonl"  # no ids of its own, and repeated questions
    first = [item.id for item in load_dataset(path).items]
    second = [item.id for item in load_dataset(path).items]
    assert first == second
    assert any(i.endswith("-2") for i in first)  # the repeated questions stay distinct


@needs_shared
@pytest.mark.parametrize("name", ["medqa", "medbullets_op4", "medbullets_op5", "hle_biomed", "medxpertqa"])
def test_strict_prompt_of_first_item_options_dict_files(name):
    raw = first_raw(name)
    item = load_dataset(EVAL_DATA / get_benchmark(name).file).items[0]
    assert render_prompt(load_template("strict"), item) == STRICT + raw["question"] + "\n" + lines(raw["options"])
    assert render_prompt(load_template("free"), item) == FREE + raw["question"] + "\n" + lines(raw["options"])


@needs_shared
def test_medqa_first_item_fields():
    raw = first_raw("medqa")
    item = load_dataset(EVAL_DATA / "medqa_test.jsonl").items[0]
    assert item.answer_idx == raw["answer_idx"]
    assert item.meta == {"answer": raw["answer"], "meta_info": raw["meta_info"]}
    assert re.fullmatch(r"[0-9a-f]{12}", item.id)


@needs_shared
def test_medxpertqa_keeps_breakdown_fields_and_label():
    raw = first_raw("medxpertqa")
    item = load_dataset(EVAL_DATA / "MedXpertQA_test.jsonl").items[0]
    assert item.id == raw["id"] and item.answer_idx == raw["label"]
    for key in ("medical_task", "body_system", "question_type"):
        assert item.meta[key] == raw[key]


@needs_shared
def test_hle_keeps_free_text_answer():
    raw = first_raw("hle_biomed")
    item = load_dataset(EVAL_DATA / "HLE_biomed.jsonl").items[0]
    assert item.id == str(raw["idx"]) and item.meta["answer"] == raw["answer"]


def _embedded_oracle(question: str) -> tuple[str, dict[str, str]]:
    stem, block = question.split("\nAnswer Choices: ", 1)
    parts = re.split(r"\(([A-J])\) ", block)[1:]
    return stem, {parts[i]: parts[i + 1].strip() for i in range(0, len(parts), 2)}


@needs_shared
@pytest.mark.parametrize("name", ["medmcqa", "mmlu_medical"])
def test_embedded_choices_are_split_out(name):
    raw = first_raw(name)
    stem, options = _embedded_oracle(raw["question"])
    item = load_dataset(EVAL_DATA / get_benchmark(name).file).items[0]
    assert item.options == options and item.answer_idx == raw["label"][0]
    assert render_prompt(load_template("strict"), item) == STRICT + stem + "\n" + lines(options)


@needs_shared
def test_medxpertqa_text_drops_the_repeated_choice_block():
    raw = first_raw("medxpertqa_text")
    stem, _ = _embedded_oracle(raw["question"])
    item = load_dataset(EVAL_DATA / "medxpertqa_text_2450.jsonl").items[0]
    assert render_prompt(load_template("strict"), item) == STRICT + stem + "\n" + lines(raw["options"])
    assert item.meta["question_type"] == raw["question_type"]


@needs_shared
def test_pubmedqa_split_prompt_includes_the_abstract():
    split = first_raw("pubmedqa")
    pmid, decision = next(iter(split.items()))
    record = json.loads((EVAL_DATA / "pubmedqa" / "ori_pqal.json").read_text(encoding="utf-8"))[pmid]
    loaded = load_dataset(EVAL_DATA / "pubmedqa" / "test_ground_truth.json")
    item = loaded.items[0]
    assert item.id == pmid and item.options == PUBMEDQA_OPTIONS
    assert item.options[item.answer_idx] == decision
    assert EVAL_DATA / "pubmedqa" / "ori_pqal.json" in loaded.extra_files
    context = "\n".join(record["CONTEXTS"])
    expected = STRICT + "Context: " + context + "\nQuestion: " + record["QUESTION"] + "\nA. yes\nB. no\nC. maybe"
    assert render_prompt(load_template("strict"), item) == expected
    assert render_prompt(load_template("free"), item) == (
        FREE + "Context: " + context + "\nQuestion: " + record["QUESTION"] + "\nA. yes\nB. no\nC. maybe")


@needs_shared
def test_pubmedqa_three_shapes_agree():
    split = load_dataset(EVAL_DATA / "pubmedqa" / "test_ground_truth.json").items
    export = load_dataset(EVAL_DATA / "pubmedqa" / "pubmedqa_test500.jsonl").items
    pqal = {i.id: i for i in load_dataset(EVAL_DATA / "pubmedqa" / "ori_pqal.json").items}
    assert [(i.id, i.question, i.context, i.answer_idx) for i in split] == \
        [(i.id, i.question, i.context, i.answer_idx) for i in export]
    assert all(pqal[i.id].answer_idx == i.answer_idx for i in split)


@needs_shared
def test_mirage_sources_become_datasets_and_can_be_selected():
    raw = first_raw("mirage")
    qid, record = next(iter(raw["medqa"].items()))
    loaded = load_dataset(EVAL_DATA / "mirage_benchmark.json")
    item = loaded.items[0]
    assert (item.dataset, item.id, item.answer_idx) == ("medqa", qid, record["answer"])
    assert render_prompt(load_template("strict"), item) == STRICT + record["question"] + "\n" + lines(record["options"])
    bioasq = load_dataset(EVAL_DATA / "mirage_benchmark.json", dataset="bioasq")
    assert {i.dataset for i in bioasq.items} == {"bioasq"} and len(bioasq.items) == 618
