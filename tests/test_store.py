import json

import pytest

from evalkit.core.store import SampleWriter, iter_samples, read_samples, write_json, read_json


def test_torn_last_line_is_dropped_on_read_and_cut_before_append(tmp_path):
    p = tmp_path / "samples.jsonl"
    p.write_text(json.dumps({"id": "1"}) + "\n" + json.dumps({"id": "2"}) + "\n" + '{"id": "3", "out')
    assert [s["id"] for s in read_samples(p)] == ["1", "2"]
    with SampleWriter(p) as w:
        w.write({"id": "4"})
    assert [s["id"] for s in read_samples(p)] == ["1", "2", "4"]
    assert p.read_text().endswith("\n")


def test_only_line_torn(tmp_path):
    p = tmp_path / "samples.jsonl"
    p.write_text('{"id": ')
    with SampleWriter(p) as w:
        w.write({"id": "a"})
    assert read_samples(p) == [{"id": "a"}]


def test_malformed_line_in_the_middle_names_file_and_line(tmp_path):
    p = tmp_path / "samples.jsonl"
    p.write_text('{"id": "1"}\nnot json\n{"id": "3"}\n')
    with pytest.raises(ValueError, match=r"samples.jsonl:2: not valid JSON"):
        list(iter_samples(p))


def test_run_dir_or_file(tmp_path):
    (tmp_path / "samples.jsonl").write_text('{"id": "x"}\n')
    assert read_samples(tmp_path) == read_samples(tmp_path / "samples.jsonl") == [{"id": "x"}]


def test_write_json_atomic_roundtrip(tmp_path):
    write_json(tmp_path / "m.json", {"a": [1, "é"]})
    assert read_json(tmp_path / "m.json") == {"a": [1, "é"]}
    assert not list(tmp_path.glob("*.tmp"))


def test_paused_gc_restores_the_collector_even_after_an_error():
    import gc

    from evalkit.core.store import paused_gc

    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        with paused_gc():
            assert not gc.isenabled()
            raise RuntimeError("scorer failed")
    assert gc.isenabled()
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()  # a caller that had switched it off keeps it off
    finally:
        gc.enable()


def test_read_samples_and_rescoring_leave_the_collector_on(tmp_path):
    import gc

    from evalkit.run.summary import rescore_samples
    from evalkit.core.store import read_samples

    path = tmp_path / "samples.jsonl"
    path.write_text('{"id": "1", "dataset": "d", "options": {"A": "x", "B": "y"}, "answer_idx": "B", '
                    '"output": "The answer is B.", "finish_reason": "stop"}\n')
    samples = read_samples(path)
    assert gc.isenabled()
    (scored,) = rescore_samples(samples)
    assert gc.isenabled() and scored["pred"] == "B" and scored["correct"] is True
