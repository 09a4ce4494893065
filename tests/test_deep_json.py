"""JSON nested too deep is a file:line problem like any other bad record, never a RecursionError
traceback: benchmark files (run, data check, --skip-invalid), long-form files, suites, rubrics,
generation logs, samples files, flags (issue 20, item 3)."""

import json

import pytest

from evalkit.cli.run import parse_scorer_args
from evalkit.data.datasets import DatasetError, load_dataset
from evalkit.cli.controls import ControlError, json_object
from evalkit.scoring.rubrics import RubricError, load_rubric
from evalkit.core.store import MAX_JSON_DEPTH, parse_json
from evalkit.data.suites import SuiteError, load_suite
from tests.conftest import run_evalkit, write_items

DEEP = "[" * 10000 + "]" * 10000


def no_traceback(text: str) -> bool:
    return "Traceback" not in text and "RecursionError" not in text


def with_deep_line(path, n=3, at=2):
    """N valid items with DEEP as line AT."""
    lines = write_items(path, n).read_text().splitlines()
    lines.insert(at - 1, DEEP)
    path.write_text("\n".join(lines) + "\n")
    return path


def test_parse_json_refuses_deep_nesting_at_the_bracket_and_keeps_flat_text():
    with pytest.raises(json.JSONDecodeError) as err:
        parse_json(DEEP)
    assert "nested more than" in err.value.msg and err.value.colno == MAX_JSON_DEPTH + 1
    with pytest.raises(json.JSONDecodeError, match="too deep"):
        parse_json(DEEP, max_depth=None)  # the parser's own limit: still a decode error
    # Deep enough to break later readers, not the parser: refused at the bracket past the limit.
    with pytest.raises(json.JSONDecodeError) as err:
        parse_json('{"meta": ' + "[" * 150 + "]" * 150 + "}")
    assert "nested more than" in err.value.msg and err.value.colno == len('{"meta": ') + MAX_JSON_DEPTH
    assert parse_json('{"a": "' + "[" * 500 + '"}') == {"a": "[" * 500}  # brackets in strings are text
    assert parse_json(b"[" * 50 + b"]" * 50) is not None


def test_data_check_reports_deep_json_at_its_line(tmp_path):
    deep_json = tmp_path / "deep.json"
    deep_json.write_text(DEEP)
    deep_jsonl = with_deep_line(tmp_path / "deep.jsonl")
    for path, line in ((deep_json, 1), (deep_jsonl, 2)):
        res = run_evalkit("data", "check", str(path))
        assert res.returncode == 1 and no_traceback(res.stderr), res.stderr
        assert f"{path}:{line}: malformed JSON: nested more than" in res.stderr


def test_run_refuses_a_deep_record_at_its_line_and_skip_invalid_runs_the_rest(tmp_path, loopback):
    srv = loopback()
    data = with_deep_line(tmp_path / "d.jsonl")
    args = ["run", "--eval-file", str(data), "--endpoint", srv.url, "--results-dir", str(tmp_path / "results"),
            "--quiet"]
    res = run_evalkit(*args)
    assert res.returncode == 2 and no_traceback(res.stderr), res.stderr
    assert f"{data}:2: malformed JSON: nested more than" in res.stderr and srv.stats()["requests"] == 0

    res = run_evalkit(*args, "--skip-invalid")
    assert res.returncode == 0 and no_traceback(res.stderr), res.stderr
    assert "skipped 1 invalid record" in res.stderr and f"{data}:2: malformed JSON" in res.stderr
    assert srv.stats()["requests"] == 3

    whole = tmp_path / "deep.json"
    whole.write_text(DEEP)
    res = run_evalkit(*args[:2], str(whole), *args[3:], "--skip-invalid")
    assert res.returncode == 2 and no_traceback(res.stderr) and f"{whole}:1: malformed JSON" in res.stderr


def test_long_form_files_suites_rubrics_and_flags_name_the_deep_file(tmp_path):
    deep = tmp_path / "deep.jsonl"
    deep.write_text('{"question": "q", "answer": "a"}\n' + DEEP + "\n")
    for adapter in ("liveqa", "nist_graded"):  # long-form files and graded answers: the one loader
        with pytest.raises(DatasetError, match=f"{deep}:2: malformed JSON: nested more than"):
            load_dataset(deep, adapter=adapter)
    whole = tmp_path / "deep.json"
    whole.write_text(DEEP)
    with pytest.raises(SuiteError, match=f"{whole}:1: not valid JSON"):
        load_suite(str(whole))
    with pytest.raises(RubricError, match="nested more than"):
        load_rubric(whole)
    with pytest.raises(ControlError, match="not valid JSON"):
        json_object(DEEP, "--extra-body")
    assert parse_scorer_args(("judge.x=" + DEEP,)) == {"judge": {"x": DEEP}}  # kept as text, like other non-JSON


def test_score_and_report_name_the_deep_line_of_a_generation_log(tmp_path):
    log = tmp_path / "log.json"
    log.write_text(DEEP)
    res = run_evalkit("score", str(log))
    assert res.returncode == 1 and no_traceback(res.stderr), res.stderr
    assert f"{log}:1: not valid JSON" in res.stderr
    samples = tmp_path / "samples.jsonl"
    samples.write_text(json.dumps({"dataset": "d", "id": "1", "output": "A"}) + "\n" + DEEP + "\n")
    res = run_evalkit("report", str(samples))
    assert res.returncode == 1 and no_traceback(res.stderr), res.stderr
    assert f"{samples}:2: not valid JSON" in res.stderr
