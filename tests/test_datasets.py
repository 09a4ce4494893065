"""Loading, normalization and validation on small files written by the tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.data.datasets import (
    DatasetError,
    Problem,
    content_id,
    load_dataset,
    normalize_record,
    split_embedded_choices,
)

BROKEN = Path(__file__).parent / "data" / "broken"


def write_jsonl(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def rec(**kw):
    base = {"question": "Which?", "options": {"A": "one", "B": "two"}, "answer_idx": "B"}
    base.update(kw)
    return base


# --------------------------------------------------------------------------- broken corpus


def problems_of(name: str) -> list[str]:
    with pytest.raises(DatasetError) as info:
        load_dataset(BROKEN / name)
    return [str(p) for p in info.value.problems]


def test_broken_jsonl_reports_every_problem_with_its_line():
    p = str(BROKEN / "records.jsonl")
    assert problems_of("records.jsonl") == [
        f"{p}:2: malformed JSON: Expecting ',' delimiter (column 98)",
        f"{p}:4: missing question",
        f"{p}:5: missing options",
        f"{p}:6: option B is empty",
        f"{p}:7: answer 'E' is not among the options (A, B)",
        f"{p}:8: duplicate id 'q1' (first at line 1)",
        f"{p}:11: label must hold exactly one letter, got 2",
        f"{p}:12: record is a JSON array, expected an object",
        f"{p}:13: option key 'a' is not a capital letter A-Z",
        f"{p}:14: missing answer (answer_idx, label, final_decision or answer)",
    ]


def test_error_message_lists_every_problem():
    with pytest.raises(DatasetError) as info:
        load_dataset(BROKEN / "records.jsonl")
    text = str(info.value)
    assert len(text.splitlines()) == 10
    assert isinstance(info.value, ValueError)
    assert text.splitlines()[0].startswith(f"{BROKEN / 'records.jsonl'}:2: ")


def test_skip_invalid_keeps_the_valid_records_and_lists_the_rest():
    loaded = load_dataset(BROKEN / "records.jsonl", skip_invalid=True)
    assert [i.id for i in loaded.items] == ["q1", "q3", "q10"]
    assert [p.line for p in loaded.skipped] == [2, 4, 5, 6, 7, 8, 11, 12, 13, 14]
    assert loaded.skipped[0].to_dict() == {
        "path": str(BROKEN / "records.jsonl"), "line": 2,
        "message": "malformed JSON: Expecting ',' delimiter (column 98)"}
    assert loaded.items[2].answer_idx == "B"  # gold from a one-element label list


def test_non_utf8_byte_is_reported_on_its_line_and_skippable():
    assert problems_of("non_utf8.jsonl") == [
        f"{BROKEN / 'non_utf8.jsonl'}:2: not valid UTF-8: byte 0xe9 at column 30"]
    loaded = load_dataset(BROKEN / "non_utf8.jsonl", skip_invalid=True)
    assert [i.id for i in loaded.items] == ["q1", "q3"]


@pytest.mark.parametrize("name", ["empty.jsonl", "blank.jsonl"])
def test_empty_file_is_an_error_even_when_skipping(name):
    assert problems_of(name) == [f"{BROKEN / name}:1: file is empty"]
    with pytest.raises(DatasetError):
        load_dataset(BROKEN / name, skip_invalid=True)


def test_malformed_json_file_names_the_line():
    assert problems_of("malformed.json") == [
        f"{BROKEN / 'malformed.json'}:5: malformed JSON: Expecting ',' delimiter (column 3)"]


def test_json_list_problems_point_at_the_record_start():
    p = BROKEN / "records.json"
    assert problems_of("records.json") == [
        f"{p}:11: option B is empty",
        f"{p}:20: answer 'C' is not among the options (A, B)",
    ]
    loaded = load_dataset(p, skip_invalid=True)
    assert [i.id for i in loaded.items] == ["a", "d"]
    # a list of options is lettered A, B, C...; a free-text answer is matched to its option
    assert loaded.items[1].options == {"A": "x", "B": "y", "C": "z"} and loaded.items[1].answer_idx == "C"


def test_sources_file_reports_empty_question_and_repeated_key():
    p = BROKEN / "sources.json"
    assert problems_of("sources.json") == [
        f"{p}:11: question is empty",
        f"{p}:22: duplicate id 'k1' (first at line 21)",
    ]


def test_unrecognized_layout():
    assert problems_of("layout.json") == [
        f"{BROKEN / 'layout.json'}:1: unrecognized layout: expected a list of records, "
        "{source: [records]}, {id: record} or PubMedQA's files"]


def test_pubmedqa_split_without_its_pqal_file():
    p = BROKEN / "pubmedqa_split" / "split.json"
    [message] = problems_of("pubmedqa_split/split.json")
    assert message.startswith(f"{p}:1: a PubMedQA split is read with ori_pqal.json from the same folder")


def test_missing_file(tmp_path):
    with pytest.raises(DatasetError) as info:
        load_dataset(tmp_path / "nope.jsonl")
    assert "cannot read file" in str(info.value)


# --------------------------------------------------------------------------- layouts


def test_jsonl_normalizes_and_keeps_the_rest_in_meta(tmp_path):
    path = write_jsonl(tmp_path / "mine.jsonl", [rec(answer="two", meta_info="step1", id=7)])
    loaded = load_dataset(path)
    [item] = loaded.items
    assert (item.id, item.dataset, item.answer_idx) == ("7", "mine", "B")
    assert item.meta == {"answer": "two", "meta_info": "step1"}
    assert loaded.benchmark is None and loaded.verified is None and loaded.shape == "jsonl"
    assert len(loaded.sha256) == 64


def test_dataset_name_override(tmp_path):
    path = write_jsonl(tmp_path / "mine.jsonl", [rec()])
    assert load_dataset(path, dataset="custom").items[0].dataset == "custom"


def test_registered_file_name_gives_the_registry_name_but_not_verified(tmp_path):
    path = write_jsonl(tmp_path / "medqa_test.jsonl", [rec()])
    loaded = load_dataset(path)
    assert loaded.items[0].dataset == "medqa"
    assert loaded.benchmark == "medqa" and loaded.verified is False


def test_relaxation_applies_only_to_the_exact_published_file(tmp_path):
    # HLE_biomed.jsonl may have an empty option, but only with the registered sha256.
    path = write_jsonl(tmp_path / "HLE_biomed.jsonl", [rec(options={"A": "x", "B": ""}, answer_idx="A")])
    with pytest.raises(DatasetError, match="option B is empty"):
        load_dataset(path)


def test_json_sources_keys_are_dataset_names(tmp_path):
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps({"medqa": [rec()], "pubmedqa": [rec(question="Other?")]}))
    loaded = load_dataset(path)
    assert [i.dataset for i in loaded.items] == ["medqa", "pubmedqa"]
    assert loaded.shape == "json-sources"
    assert [i.dataset for i in load_dataset(path, dataset="pubmedqa").items] == ["pubmedqa"]
    with pytest.raises(DatasetError, match="no dataset 'x' in this file"):
        load_dataset(path, dataset="x")


def test_json_keyed_records_use_the_key_as_id(tmp_path):
    path = tmp_path / "keyed.json"
    path.write_text(json.dumps({"k1": rec(), "k2": rec(question="Two?")}))
    loaded = load_dataset(path)
    assert [i.id for i in loaded.items] == ["k1", "k2"] and loaded.shape == "json-keyed"


def pubmedqa_files(folder: Path) -> Path:
    folder.mkdir()
    pqal = {
        "101": {"QUESTION": "Does X help?", "CONTEXTS": ["Background.", "Results."], "LABELS": ["B", "R"],
                "final_decision": "yes", "LONG_ANSWER": "It does."},
        "102": {"QUESTION": "Is Y safe?", "CONTEXTS": ["Only one part."], "final_decision": "maybe"},
        "103": {"QUESTION": "Unused?", "CONTEXTS": [], "final_decision": "no"},
    }
    (folder / "ori_pqal.json").write_text(json.dumps(pqal, indent=1))
    split = folder / "test_ground_truth.json"
    split.write_text('{\n "102": "no",\n "101": "yes",\n "999": "yes"\n}\n')
    return split


def test_pubmedqa_original_shapes(tmp_path):
    split = pubmedqa_files(tmp_path / "pq")
    pqal = load_dataset(split.with_name("ori_pqal.json"))
    assert [i.id for i in pqal.items] == ["101", "102", "103"] and pqal.shape == "pubmedqa-pqal"
    first = pqal.items[0]
    assert first.options == {"A": "yes", "B": "no", "C": "maybe"} and first.answer_idx == "A"
    assert first.context == "Background.\nResults."
    assert first.meta == {"LABELS": ["B", "R"], "LONG_ANSWER": "It does."}
    with pytest.raises(DatasetError) as info:
        load_dataset(split)
    assert [str(p) for p in info.value.problems] == [f"{split}:4: PMID 999 is not in {split.with_name('ori_pqal.json')}"]
    loaded = load_dataset(split, skip_invalid=True)
    # the split file's decision is the ground truth
    assert [(i.id, i.answer_idx) for i in loaded.items] == [("102", "B"), ("101", "A")]
    assert loaded.items[0].dataset == "pubmedqa" and loaded.shape == "pubmedqa-split"


def test_pubmedqa_jsonl_export(tmp_path):
    path = write_jsonl(tmp_path / "pq.jsonl", [
        {"pmid": "5", "question": "Q?", "contexts": ["a", "b"], "final_decision": "maybe", "long_answer": "x"}])
    [item] = load_dataset(path).items
    assert (item.id, item.answer_idx, item.context, item.meta) == ("5", "C", "a\nb", {"long_answer": "x"})


def test_bad_final_decision(tmp_path):
    path = write_jsonl(tmp_path / "pq.jsonl", [{"question": "Q?", "contexts": ["a"], "final_decision": "perhaps"}])
    with pytest.raises(DatasetError, match=r"pq.jsonl:1: final_decision 'perhaps' is not yes, no or maybe"):
        load_dataset(path)


def test_bom_and_crlf_are_accepted(tmp_path):
    path = tmp_path / "win.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(rec()).encode() + b"\r\n" + json.dumps(rec(question="B?")).encode() + b"\r\n")
    assert len(load_dataset(path).items) == 2


def test_no_valid_record_left_is_an_error(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [rec(answer_idx="Z")])
    with pytest.raises(DatasetError) as info:
        load_dataset(path, skip_invalid=True)
    assert [p.message for p in info.value.problems][-1] == "no valid record left"


# --------------------------------------------------------------------------- ids


def test_hash_ids_are_stable_and_repeats_are_numbered(tmp_path):
    records = [rec(), rec(question="Other?"), rec()]
    a = [i.id for i in load_dataset(write_jsonl(tmp_path / "a.jsonl", records)).items]
    b = [i.id for i in load_dataset(write_jsonl(tmp_path / "b.jsonl", records)).items]
    assert a == b
    assert a[0] == content_id("Which?", {"A": "one", "B": "two"}) and a[2] == a[0] + "-2"
    assert len(set(a)) == 3


def test_content_id_depends_on_question_options_and_their_order():
    base = content_id("Q", {"A": "x", "B": "y"})
    assert len(base) == 12
    assert base != content_id("Q2", {"A": "x", "B": "y"})
    assert base != content_id("Q", {"A": "y", "B": "x"})
    assert base != content_id("Q", {"A": "x", "B": "y", "C": "z"})
    assert content_id("Q\ud800", {"A": "x"})  # a lone surrogate from JSON does not crash


def test_given_ids_repeated_across_sources_are_fine(tmp_path):
    path = tmp_path / "two.json"
    path.write_text(json.dumps({"a": [rec(id="1")], "b": [rec(id="1")]}))
    assert len(load_dataset(path).items) == 2


# --------------------------------------------------------------------------- records


def test_embedded_choices_split_in_letter_order():
    stem, options = split_embedded_choices(
        "Largest commissure?\nAnswer Choices: (A) Ganser (B) Gudden (C) Corpus callosum (D) Both (A) & (C)")
    assert stem == "Largest commissure?"
    assert options == {"A": "Ganser", "B": "Gudden", "C": "Corpus callosum", "D": "Both (A) & (C)"}


def test_embedded_choices_ignore_bracketed_letters_inside_words():
    _, options = split_embedded_choices("Q?\nAnswer Choices: (A) Give Rh(D) immunoglobulin (B) Wait (C) Deliver")
    assert options == {"A": "Give Rh(D) immunoglobulin", "B": "Wait", "C": "Deliver"}


def test_no_embedded_choices():
    assert split_embedded_choices("Plain question?") is None


def test_explicit_options_win_over_an_embedded_block():
    item, errors = normalize_record(
        {"question": "Q?\nAnswer Choices: (A) x (B) y", "options": {"A": "x", "B": "Y!"}, "label": "B"},
        dataset="d")
    assert errors == [] and item.question == "Q?" and item.options["B"] == "Y!"


@pytest.mark.parametrize("record, message", [
    ({"question": "Q?", "options": {"A": "x"}, "answer_idx": "A"}, "only 1 option, at least 2 are needed"),
    ({"question": "Q?", "options": "A, B", "answer_idx": "A"}, "options must be an object {letter: text} or a list"),
    ({"question": "Q?", "options": {"A": "x", "B": 3}, "answer_idx": "A"}, "option B is not text"),
    ({"question": 5, "options": {"A": "x", "B": "y"}, "answer_idx": "A"}, "question is not text"),
    ({"question": "Q?", "options": {"A": "x", "B": "y"}, "answer_idx": 1}, "answer key 1 is not a letter"),
    ({"question": "Q?", "options": {"A": "x", "B": "y"}, "answer": "zzz"}, "answer 'zzz' is not among the options (A, B)"),
    ({"question": "Q?", "options": {"A": "x", "B": "y"}, "answer_idx": "A", "context": 3},
     "context must be text or a list of texts"),
])
def test_record_problems(record, message):
    item, errors = normalize_record(record, dataset="d")
    assert item is None and errors == [message]


def test_problem_str_and_error_type():
    problem = Problem(Path("x.jsonl"), 3, "missing question")
    assert str(problem) == "x.jsonl:3: missing question"
    error = DatasetError([problem, Problem(Path("x.jsonl"), 4, "missing options")])
    assert str(error) == "x.jsonl:3: missing question\nx.jsonl:4: missing options"


def test_keyed_file_with_a_bad_record_reports_that_record(tmp_path):
    path = tmp_path / "keyed.json"
    path.write_text('{\n "k1": {"question": "Q?", "options": {"A": "x", "B": "y"}, "answer_idx": "A"},\n "k2": {"q": 1}\n}\n')
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    assert [str(p) for p in info.value.problems] == [f"{path}:3: missing question", f"{path}:3: missing options",
                                                     f"{path}:3: missing answer (answer_idx, label, final_decision or answer)"]


def test_jsonl_content_in_a_json_file_gets_a_hint(tmp_path):
    path = write_jsonl(tmp_path / "actually_lines.json", [rec(), rec(question="B?")])
    with pytest.raises(DatasetError, match=r"actually_lines.json:2: malformed JSON: Extra data .*name the file .jsonl"):
        load_dataset(path)
