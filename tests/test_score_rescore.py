"""Rescoring saved generations: the library function and the ``evalkit score`` command."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from evalkit.cli import main
from evalkit.core.records import Generation, Item
from evalkit.run.rescore import default_output, read_generations, rescore
from evalkit.run.summary import extract_and_check, rescore_sample, score_sample, summarize

MQ = {"A": "Aspirin", "B": "Clopidogrel", "C": "Warfarin", "D": "Heparin"}


def _sample(i, output, gold="B", **extra):
    base = {
        "id": f"q{i}", "dataset": "medqa", "question": "Which drug?", "options": MQ, "answer_idx": gold,
        "prompt": "p", "output": output, "finish_reason": "stop", "pred": "A", "method": "stale",
        "correct": False, "usage": {}, "latency_s": 0.1, "truncated": False, "error": None, "index": 0, "meta": {},
    }
    base.update(extra)
    return base


@pytest.fixture()
def run_dir(tmp_path):
    run = tmp_path / "results" / "medqa" / "run1"
    run.mkdir(parents=True)
    samples = [
        _sample(0, "The answer is B."),
        _sample(1, "I cannot answer that."),
        _sample(2, "Let's consider each option. A. Aspirin is", finish_reason="length"),
        _sample(3, "", error="HTTP 500 after 3 retries", finish_reason=None),
        _sample(4, "The answer is C.", dataset="pubmedqa", gold="C", options={"A": "yes", "B": "no", "C": "maybe"}),
    ]
    (run / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    return run


def test_judge_and_score_sample_share_the_rule():
    assert extract_and_check("The answer is b", MQ, "B") == ("B", "answer_is", True)
    assert extract_and_check("no idea", MQ, "B") == (None, None, False)
    item = Item(id="1", dataset="medqa", question="q", options=MQ, answer_idx="C")
    record = score_sample(item, "p", Generation("Final answer: C", "length", {}, 1.0))
    assert (record.pred, record.method, record.correct, record.truncated) == ("C", "final_answer", True, True)


def test_rescore_sample_keeps_errors_as_errors():
    out = rescore_sample(_sample(0, "", error="timeout", pred="B", correct=True))
    assert (out["pred"], out["method"], out["correct"], out["error"]) == (None, None, False, "timeout")


def test_rescore_run_directory(run_dir):
    samples = rescore(run_dir)
    by_id = {s["id"]: s for s in samples}
    assert (by_id["q0"]["pred"], by_id["q0"]["method"], by_id["q0"]["correct"]) == ("B", "answer_is", True)
    assert by_id["q1"]["pred"] is None and by_id["q1"]["correct"] is False
    assert by_id["q2"]["truncated"] is True and by_id["q2"]["pred"] is None
    assert by_id["q3"]["error"] and by_id["q3"]["pred"] is None
    summary = summarize(samples)
    assert (summary["medqa"].n, summary["medqa"].correct, summary["medqa"].unparsed, summary["medqa"].errors) == (3, 1, 2, 1)
    assert summary["pubmedqa"].accuracy == 1.0
    # The same file read as samples.jsonl directly gives the same result.
    assert rescore(run_dir / "samples.jsonl") == samples


def test_rescore_to_file_is_evalkit_score_as_a_function(run_dir):
    """api.rescore: rescore, the written file beside the run (never over it), and what it used."""
    from evalkit import api

    done = api.rescore(run_dir, extractor="medreason")
    assert done.output == default_output(run_dir, "medreason") and done.output.parent == run_dir
    assert [json.loads(line) for line in done.output.read_text().splitlines()] == done.samples
    assert done.samples == rescore(run_dir, "medreason") and done.extractor == "medreason" and done.note is None
    assert done.summary["medqa"].n == 3
    from evalkit.benchmarks.medreason.extract import compat_table
    assert done.extractor_table == compat_table(done.samples)  # MedReason's own figures, with its extractor only
    assert not done.output.with_name(done.output.name + ".journal").exists()
    default = api.rescore(run_dir)
    assert default.output.name == "samples.rescored-evalkit.jsonl" and default.extractor_table is None  # the default extractor


def test_rescore_with_the_compat_extractor_guesses(run_dir):
    samples = {s["id"]: s for s in rescore(run_dir, "medreason")}
    assert samples["q1"]["pred"] in MQ  # a refusal still scores as some letter
    assert samples["q1"]["method"] == "medreason_similarity"


def test_medreason_log(tmp_path):
    log = tmp_path / "huatuo_medqa.json"
    items = [
        {"question": "q1", "options": MQ, "answer_idx": "B", "source": "MedQA_USLME_test", "output": "## Thinking\n\nhmm\n\n## Final Response\n\nThe answer is B."},
        {"question": "q2", "options": str(MQ), "answer_idx": "D", "source": "MedQA_USLME_test", "output": "I am not sure."},
        {"question": "q3", "options": {"A": "yes", "B": "no", "C": "maybe"}, "answer_idx": "A", "source": "pubmedqa", "output": "Yes, it does."},
    ]
    log.write_text(json.dumps(items))
    samples = rescore(log)
    assert [s["dataset"] for s in samples] == ["MedQA_USLME_test", "MedQA_USLME_test", "pubmedqa"]
    assert [s["pred"] for s in samples] == ["B", None, "A"]
    assert samples[1]["options"] == MQ
    # The object-of-lists form keyed by source.
    grouped = tmp_path / "grouped.json"
    grouped.write_text(json.dumps({"medqa": [items[0]]}))
    assert read_generations(grouped)[0]["dataset"] == "MedQA_USLME_test"


def test_bad_input_names_the_file_and_place(tmp_path):
    log = tmp_path / "bad.json"
    log.write_text(json.dumps([{"options": MQ, "answer_idx": "A", "output": "x"}, {"options": MQ, "output": "x"}]))
    with pytest.raises(ValueError, match=r"bad\.json: item 1: missing 'answer_idx'"):
        rescore(log)
    broken = tmp_path / "broken.json"
    broken.write_text('[\n{"output": "x",\n')
    with pytest.raises(ValueError, match=r"broken\.json:3: not valid JSON"):
        rescore(broken)
    samples = tmp_path / "samples.jsonl"
    samples.write_text(json.dumps({"dataset": "x", "options": "not a dict", "answer_idx": "A", "output": ""}) + "\n")
    with pytest.raises(ValueError, match=r"samples\.jsonl: sample 1: 'options' is a string"):
        rescore(samples)
    with pytest.raises(ValueError, match="unknown extractor"):
        rescore(samples, "nope")


def test_cli_score_writes_samples_and_prints_the_table(run_dir, tmp_path):
    out = tmp_path / "rescored.jsonl"
    result = CliRunner().invoke(main, ["score", str(run_dir), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "medqa" in result.output and "pubmedqa" in result.output
    assert "compat" not in result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 5 and lines[0]["pred"] == "B" and lines[0]["correct"] is True


def test_cli_score_default_output_and_compat_table(run_dir):
    result = CliRunner().invoke(main, ["score", str(run_dir), "--extractor", "medreason"])
    assert result.exit_code == 0, result.output
    assert "compat" in result.output
    assert default_output(run_dir, "medreason").exists()
    assert (run_dir / "samples.jsonl").read_text().count('"method": "stale"') == 5  # input untouched


def test_cli_score_reports_bad_input_cleanly(tmp_path):
    log = tmp_path / "bad.json"
    log.write_text("{}")
    result = CliRunner().invoke(main, ["score", str(log)])
    assert result.exit_code == 1 and "holds no samples" in result.output
    log.write_text("[1]")
    result = CliRunner().invoke(main, ["score", str(log)])
    assert result.exit_code == 1 and "item 0: expected an object" in result.output
    result = CliRunner().invoke(main, ["score", str(log), "--extractor", "nope"])
    assert result.exit_code == 2 and "nope" in result.output


def test_rescoring_a_multi_sample_record_revotes_every_generation():
    from evalkit.run.summary import rescore_sample

    gens = [{"k": 0, "output": "Answer: B", "pred": "A", "method": "x", "finish_reason": "stop", "usage": {}},
            {"k": 1, "output": "The answer is B.", "pred": "A", "method": "x", "finish_reason": "stop", "usage": {}},
            {"k": 2, "output": "I refuse.", "pred": "A", "method": "x", "finish_reason": "length", "usage": {}}]
    sample = {"id": "1", "dataset": "d", "options": {"A": "a", "B": "b"}, "answer_idx": "B", "output": "I refuse.",
              "pred": "A", "method": "majority_vote", "correct": False, "votes": {"A": 3},
              "stages": [{"name": "sample", "prompt": "p", "pred": "A", "votes": {"A": 3}, "unparsed": 0,
                          "outputs": gens}]}
    out = rescore_sample(sample)
    assert (out["pred"], out["correct"], out["votes"], out["method"]) == ("B", True, {"B": 2}, "majority_vote")
    assert out["stages"][0]["unparsed"] == 1 and out["output"] == "Answer: B" and out["truncated"] is False
    assert sample["pred"] == "A"  # the input is not modified


def test_rescoring_keeps_one_sample_per_item_when_an_error_was_retried(tmp_path):
    from evalkit.run.rescore import rescore

    base = {"dataset": "d", "options": {"A": "a", "B": "b"}, "answer_idx": "B", "index": 0}
    lines = [
        {**base, "id": "1", "output": "", "error": "HTTP 500", "pred": None, "correct": False},
        {**base, "id": "2", "output": "The answer is A.", "pred": "A", "correct": False},
        {**base, "id": "1", "output": "The answer is B.", "pred": "B", "correct": True},
        {**base, "id": "2", "output": "", "error": "late failure", "pred": None, "correct": False},
    ]
    p = tmp_path / "samples.jsonl"
    p.write_text("".join(json.dumps(s) + "\n" for s in lines))
    out = rescore(p)
    assert [(s["id"], s["pred"], s.get("error")) for s in out] == [("1", "B", None), ("2", "A", None)]
