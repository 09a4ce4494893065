"""Typed targets: what adapters build, what a samples.jsonl line stores, what scorers read back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.data.datasets import DatasetError, load_dataset
from evalkit.benchmarks.healthbench.adapter import healthbench
from evalkit.data.longform import liveqa, nist_graded, question_only
from evalkit.benchmarks.igakuqa.targets import ChoiceSets, NumericAnswer
from evalkit.benchmarks.kqa.targets import Statements
from evalkit.core.records import (GradedAnswer, Item, References, RubricItem, RubricItems, SampleRecord, TargetError,
                                  target_from_json, target_to_json)
from evalkit.scoring.stage import StoredSample
from evalkit.core.store import encode_line

# Lines written by the code before typed targets (main at 4988609) for these records: tests/data/targets_v1.jsonl.
FIXTURE = Path(__file__).parent / "data" / "targets_v1.jsonl"
RECORDS = [
    (liveqa, {"id": "TQ1", "question": "What is X?", "focus": ["x"],
              "reference_answers": [{"id": "a", "text": " X is Y. ", "url": "u"},
                                    {"id": "b", "text": "Ünïcode ≥ 2", "url": None}]}),
    (liveqa, {"id": "TQ2", "question": "No refs?", "reference_answers": []}),
    (question_only, {"id": "m-1", "question": "how does valium work", "focus": "Valium"}),
    (healthbench, {"prompt_id": "p1", "prompt": [{"role": "user", "content": "hi"},
                                                 {"role": "assistant", "content": "hello"},
                                                 {"role": "user", "content": "what for migraines?"}],
                   "rubrics": [{"criterion": "asks about BP", "points": 5, "tags": ["axis:completeness"]},
                               {"criterion": "is rude", "points": -3.5, "tags": []},
                               {"criterion": "no tags given", "points": 2}], "example_tags": ["x"]}),
    (nist_graded, {"id": "nist692-1", "qid": "TQ1", "grade": 3, "answer": "Noonan syndrome ..."}),
    (nist_graded, {"id": "nist692-2", "qid": "TQ1", "answer": "ungraded"}),
]


def line_of(item: Item) -> bytes:
    """A sample line for ITEM, built as the runner builds one."""
    s = SampleRecord(id=item.id, dataset=item.dataset, question=item.question, prompt="p", output="o",
                     finish_reason="stop", meta=dict(item.meta), target=target_to_json(item.target))
    return encode_line(s.to_dict())


def test_sample_lines_are_byte_identical_to_the_untyped_ones():
    expected = FIXTURE.read_bytes().splitlines(keepends=True)
    got = [line_of(fn(record, dataset="d")) for fn, record in RECORDS]
    assert got == expected


def test_adapters_build_typed_targets():
    items = [fn(record, dataset="d") for fn, record in RECORDS]
    assert items[0].target == References(("X is Y.", "Ünïcode ≥ 2"))
    assert items[1].target is None and items[2].target is None
    assert items[3].target == RubricItems((RubricItem("asks about BP", 5, ("axis:completeness",)),
                                           RubricItem("is rude", -3.5, ()), RubricItem("no tags given", 2, ())))
    assert items[4].target == GradedAnswer("Noonan syndrome ...", 3)
    assert items[5].target == GradedAnswer("ungraded", None)


def test_stored_targets_read_back_typed_and_write_back_the_same():
    for raw in FIXTURE.read_bytes().splitlines():
        line = json.loads(raw)
        record = SampleRecord.from_dict(line)
        typed = record.item().target
        assert target_to_json(typed) == line.get("target")
        assert encode_line(SampleRecord(**{**record.__dict__, "target": target_to_json(typed)}).to_dict()) \
            == raw + b"\n"
        assert StoredSample(dict(line)).target == typed  # the rescoring view reads the same typed target
    # A rubric item stored without tags keeps no tags key; ints and floats keep their JSON form.
    stored = [{"criterion": "c", "points": 2}, {"criterion": "d", "points": -1.5, "tags": ["t"]}]
    assert target_from_json(stored) == RubricItems((RubricItem("c", 2, None), RubricItem("d", -1.5, ("t",))))
    assert json.dumps(target_to_json(target_from_json(stored))) == json.dumps(stored)


def test_statements_and_empty_references_round_trip():
    kqa = Statements(("Mentions X",), ("Mentions Y", "Mentions Z"), "X, and Y or Z.")
    assert target_to_json(kqa) == {"must_have": ["Mentions X"], "nice_to_have": ["Mentions Y", "Mentions Z"],
                                   "reference": "X, and Y or Z."}
    assert target_from_json(target_to_json(kqa)) == kqa
    assert target_from_json({"must_have": ["a"], "nice_to_have": []}) == Statements(("a",))
    assert target_from_json([]) == References(()) and target_to_json(References(())) == []
    # IgakuQA's gold: sets of letters (either of two single ones here), or a number read into digit boxes.
    either = {"kind": "choices", "accept": [["a"], ["d"]]}
    assert target_from_json(either) == ChoiceSets((("a",), ("d",)))
    assert target_to_json(target_from_json(either)) == either
    number = {"kind": "number", "value": "2.1", "answer": "21", "template": "①.②g/日"}
    assert target_from_json(number) == NumericAnswer("2.1", "21", "①.②g/日")
    assert target_to_json(target_from_json(number)) == number
    assert target_from_json(kqa) is kqa and target_from_json(None) is None


@pytest.mark.parametrize("value", [{"references": ["..."]}, [1, 2], [{"criterion": "c"}], {"answer": "a"},
                                   {"answer": "a", "grade": "good"}, "text",
                                   {"kind": "number", "value": 2.1, "answer": "21", "template": ""},
                                   {"kind": "choices", "accept": ["a"]}])
def test_unknown_target_shapes_are_refused(value):
    with pytest.raises(TargetError, match="unknown target shape"):
        target_from_json(value)
    with pytest.raises(TargetError, match="not a target"):
        target_to_json(value)
    with pytest.raises(TargetError, match="^sample d/7: unknown target shape"):
        SampleRecord(id="7", dataset="d", target=value).item()


def untyped_adapter(record, *, dataset, key=None, allow=frozenset()):
    """An outside adapter that puts a plain dict in the target."""
    return Item(id=str(record["id"]), dataset=dataset, question=record["question"], target={"refs": ["x"]})


def test_an_adapter_giving_an_untyped_target_is_an_error_at_its_line(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"id": 1, "question": "q?"}\n')
    with pytest.raises(DatasetError) as info:
        load_dataset(path, adapter="tests.test_targets:untyped_adapter")
    assert str(info.value).startswith(f"{path}:1: the adapter gave a target of type dict; a target is one of "
                                      "References, RubricItems, GradedAnswer, Statements, ChoiceSets, NumericAnswer")


def test_judging_a_run_with_an_unknown_stored_target_names_the_file_and_sample(tmp_path):
    from evalkit.scoring.judge_pass import JudgeInputError, read_run

    samples = tmp_path / "samples.jsonl"
    samples.write_text(json.dumps({"id": "q1", "dataset": "d", "question": "Q?", "output": "A.",
                                   "target": {"refs": ["x"]}}) + "\n")
    with pytest.raises(JudgeInputError, match=f"^{samples}: sample d/q1: unknown target shape"):
        read_run(samples)


def test_kqa_items_store_the_json_their_untyped_targets_had():
    from evalkit.benchmarks.kqa.statements import kqa

    item = kqa({"Question": "Is X safe?", "Free_form_answer": "Mostly.", "Must_have": ["X is safe", " "],
                "Nice_to_have": ["Ask a doctor"]}, dataset="kqa", key="3")
    assert item.target == Statements(("X is safe",), ("Ask a doctor",), "Mostly.")
    stored = json.dumps(target_to_json(item.target), ensure_ascii=False)
    assert stored == '{"must_have": ["X is safe"], "nice_to_have": ["Ask a doctor"], "reference": "Mostly."}'
