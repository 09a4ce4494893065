"""The runner against a loopback test double: files written, resume, faults, errors."""

import json

import pytest

from tests.conftest import write_items
from evalkit.serving.client import RequestError
from evalkit.core.records import GenerationParams
from evalkit.run.runner import EndpointDown, RunConfig, run_eval
from evalkit.core.store import read_json, read_samples

SAMPLE_FIELDS = {
    "id": str, "dataset": str, "question": str, "options": dict, "answer_idx": str, "prompt": str, "output": str,
    "finish_reason": str, "method": str, "correct": bool, "usage": dict, "latency_s": float,
}


def config(tmp_path, url, files, **kw):
    kw.setdefault("concurrency", 8)
    kw.setdefault("max_attempts", 3)
    return RunConfig(eval_files=[str(f) for f in files], endpoint=url, results_dir=str(tmp_path / "results"),
                     params=GenerationParams(max_new_tokens=16), **kw)


def test_run_writes_every_item_once_with_typed_fields(tmp_path, loopback, items_file):
    srv = loopback()
    result = run_eval(config(tmp_path, srv.url, [items_file]))
    samples = read_samples(result.run_dir)
    assert sorted(s["id"] for s in samples) == sorted({s["id"] for s in samples})
    assert len(samples) == 12
    for s in samples:
        for field, typ in SAMPLE_FIELDS.items():
            assert isinstance(s[field], typ), (field, s[field])
        assert s["pred"] in s["options"]  # the double always says "The answer is X."
        assert s["correct"] == (s["pred"] == s["answer_idx"])
        assert s["prompt"].startswith("Please answer the following multiple-choice questions.")
    summary = read_json(result.run_dir / "summary.json")
    d = summary["datasets"]["tiny"]
    assert d["n"] == 12 and d["correct"] == sum(s["correct"] for s in samples)
    assert d["accuracy"] == pytest.approx(d["correct"] / 12)
    assert summary["complete"] is True
    manifest = read_json(result.run_dir / "manifest.json")
    assert manifest["model"] == "loopback-model"
    assert manifest["prompt"] == "strict" and len(manifest["prompt_sha256"]) == 64
    assert manifest["data"][0]["items"] == 12 and len(manifest["data"][0]["sha256"]) == 64
    assert manifest["generation"]["max_new_tokens"] == 16
    assert manifest["finished_at"] >= manifest["started_at"]


def test_rerun_resumes_without_new_requests(tmp_path, loopback, items_file):
    srv = loopback()
    first = run_eval(config(tmp_path, srv.url, [items_file], limit=5))
    assert first.requested == 5
    # Same settings, larger limit: same run directory, only the new items are requested.
    second = run_eval(config(tmp_path, srv.url, [items_file]))
    assert second.run_dir == first.run_dir
    assert (second.resumed, second.requested) == (5, 7)
    assert srv.stats()["requests"] == 12 + 0  # no finished item was asked twice
    ids = [s["id"] for s in read_samples(second.run_dir)]
    assert len(ids) == len(set(ids)) == 12


def test_changed_settings_start_a_new_run_directory(tmp_path, loopback, items_file):
    srv = loopback()
    a = run_eval(config(tmp_path, srv.url, [items_file], limit=2))
    b = run_eval(config(tmp_path, srv.url, [items_file], limit=2, prompt="free"))
    assert a.run_dir != b.run_dir
    assert b.requested == 2


def test_transient_faults_are_retried_and_counted(tmp_path, loopback, items_file):
    srv = loopback("--fail-500", "0.2", "--fail-429", "0.1", "--drop", "0.1", "--seed", "3")
    result = run_eval(config(tmp_path, srv.url, [items_file], max_attempts=8))
    assert result.errors == 0
    assert result.retries > 0
    assert len(read_samples(result.run_dir)) == 12


def test_failed_samples_are_errors_not_wrong_answers_and_retried_on_resume(tmp_path, loopback, items_file):
    bad = loopback("--fail-500", "0.5", "--seed", "1")
    result = run_eval(config(tmp_path, bad.url, [items_file], max_attempts=1, run_name="r"))
    assert 0 < result.errors < 12
    summary = read_json(result.run_dir / "summary.json")
    d = summary["datasets"]["tiny"]
    assert d["errors"] == result.errors and d["n"] == 12 - result.errors
    assert summary["complete"] is False
    bad.stop()
    good = loopback()
    again = run_eval(config(tmp_path, good.url, [items_file], max_attempts=1, run_name="r", task_folder="loopback-model"))
    assert again.requested == result.errors
    d = read_json(again.run_dir / "summary.json")["datasets"]["tiny"]
    assert (d["n"], d["errors"]) == (12, 0)


def test_end_of_run_summary_from_the_live_index_matches_reindexing_the_file(tmp_path, loopback, items_file):
    # summary.json is built with the run's own index of samples.jsonl; after errors and a resume
    # (error lines followed by their retries) it must equal what indexing the file afresh gives.
    from evalkit.data.datasets import load_dataset
    from evalkit.run.resume import summary_on_disk

    bad = loopback("--fail-500", "0.5", "--seed", "1")
    first = run_eval(config(tmp_path, bad.url, [items_file], max_attempts=1, run_name="r"))
    assert first.errors > 0
    bad.stop()
    good = loopback()
    again = run_eval(config(tmp_path, good.url, [items_file], max_attempts=1, run_name="r", task_folder="loopback-model"))
    lines = read_samples(again.run_dir)
    assert len(lines) == 12 + first.errors  # the error lines stay; their retries come after them
    fresh, n_ok = summary_on_disk(again.run_dir / "samples.jsonl", load_dataset(items_file).items)
    written = read_json(again.run_dir / "summary.json")
    assert {name: d.to_dict() for name, d in fresh.items()} == written["datasets"]
    assert n_ok == 12 and written["complete"] is True


def test_unreachable_endpoint_is_a_clear_error_naming_it(tmp_path, items_file):
    from tests.conftest import free_port

    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(RequestError, match=url.replace(".", r"\.")):
        run_eval(config(tmp_path, url, [items_file]))


def test_server_dying_mid_run_stops_the_run_and_keeps_samples(tmp_path, loopback):
    files = [write_items(tmp_path / "big.jsonl", 400)]
    srv = loopback("--delay-s", "0.01")
    import threading

    threading.Timer(0.5, srv.stop).start()
    with pytest.raises(EndpointDown, match="run the same command again to resume"):
        run_eval(config(tmp_path, srv.url, files, concurrency=4, max_attempts=2, run_name="r"))
    run_dir = tmp_path / "results" / "loopback-model" / "r"
    kept = [s for s in read_samples(run_dir) if not s.get("error")]
    assert 0 < len(kept) < 400
    srv2 = loopback()
    result = run_eval(config(tmp_path, srv2.url, files, concurrency=4, run_name="r"))
    assert result.resumed == len(kept)
    final = {(s["id"]) for s in read_samples(run_dir) if not s.get("error")}
    assert len(final) == 400


def test_fewshot_run_draws_seeded_exemplars_once_and_records_them(tmp_path, loopback, items_file):
    srv = loopback()
    a = run_eval(config(tmp_path, srv.url, [items_file], prompt="fewshot", fewshot_k=2, run_name="a"))
    samples = read_samples(a.run_dir)
    manifest = read_json(a.run_dir / "manifest.json")
    assert len(manifest["exemplars"]) == 2
    # Every prompt holds the same two worked examples, then the evaluated question last.
    heads = {s["prompt"].split("Question: Question number")[0] for s in samples}
    assert len(heads) == 1 and (next(iter(heads))).count("The answer is") >= 2
    assert all(s["prompt"].rstrip().endswith("Answer:") for s in samples)
    b = run_eval(config(tmp_path, srv.url, [items_file], prompt="fewshot", fewshot_k=2, fewshot_seed=1, run_name="b"))
    assert read_json(b.run_dir / "manifest.json")["fingerprint"] != manifest["fingerprint"]


def test_items_with_context_use_the_context_variant_recorded_in_the_manifest(tmp_path, loopback):
    p = tmp_path / "pqa.jsonl"
    p.write_text(json.dumps({"pmid": "1", "question": "Does X help?", "contexts": ["Abstract text here."],
                             "final_decision": "yes"}) + "\n")
    srv = loopback()
    result = run_eval(config(tmp_path, srv.url, [p]))
    [s] = read_samples(result.run_dir)
    assert "Abstract text here." in s["prompt"] and s["options"] == {"A": "yes", "B": "no", "C": "maybe"}
    detail = read_json(result.run_dir / "manifest.json")["prompt_detail"]
    assert detail["name"] == "strict" and "{context}" in detail["context_variant"]["text"]
