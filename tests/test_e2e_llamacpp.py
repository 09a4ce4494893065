"""End to end on the real embedded server: serve -> run -> files -> stop, through the CLI."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import free_port, run_evalkit, SHARED, skip_unless_embedded_backend, write_items
from evalkit.serving.backends import llamacpp
from evalkit.serving import checkpoint, probe
from evalkit.serving import processes
from evalkit.core.store import read_json, read_samples

API_KEY = "EVALKIT_API_KEY"

pytestmark = pytest.mark.server

skip_unless_embedded_backend()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    state = tmp_path_factory.mktemp("e2e-state")
    env = {**os.environ, "EVALKIT_STATE_DIR": str(state)}
    port = free_port()
    env[API_KEY] = "sk-e2e-secret"
    out = run_evalkit("serve", "--backend", "llamacpp", "--name", "e2e", "--port", str(port), "--timeout", "300",
                  env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"http://127.0.0.1:{port}/v1"
    handle = json.loads((state / "e2e.json").read_text())
    yield env, handle
    run_evalkit("stop", "--name", "e2e", env=env)


def test_the_key_is_in_no_argv_and_the_server_requires_it(served):
    _, handle = served
    for rec in handle["processes"]:
        argv = Path(f"/proc/{rec['pid']}/cmdline").read_bytes().decode()
        assert "sk-e2e-secret" not in argv and "api-key" not in argv
    assert "sk-e2e-secret" not in json.dumps(handle)
    url = f"http://127.0.0.1:{handle['port']}/v1"
    assert not probe.answers(url, handle["model"], timeout=30)  # no key: refused
    assert probe.answers(url, handle["model"], api_key="sk-e2e-secret", timeout=30)


def test_status_shows_the_server_answering(served):
    env, handle = served
    out = run_evalkit("status", env=env)
    assert out.returncode == 0
    assert "e2e" in out.stdout and "yes" in out.stdout and str(handle["port"]) in out.stdout


def test_run_writes_every_item_once_with_typed_fields(served, tmp_path):
    env, _ = served
    data = write_items(tmp_path / "mini.jsonl", 4)
    out = run_evalkit("run", "--eval-file", str(data), "--max-new-tokens", "24", "--results-dir", str(tmp_path / "res"),
                  "--quiet", env=env)
    assert out.returncode == 0, out.stderr
    assert "mini" in out.stdout and "accuracy" in out.stdout
    run_dir = next((tmp_path / "res").glob("*/*"))
    samples = read_samples(run_dir)
    assert sorted(s["id"] for s in samples) == sorted({s["id"] for s in samples}) and len(samples) == 4
    for s in samples:
        assert isinstance(s["output"], str) and s["output"]  # a real generation
        assert s["finish_reason"] in ("stop", "length")
        assert s["pred"] is None or s["pred"] in s["options"]
        assert isinstance(s["correct"], bool) and s["correct"] == (s["pred"] == s["answer_idx"])
        assert s["usage"]["completion_tokens"] > 0 and s["latency_s"] > 0
    manifest = read_json(run_dir / "manifest.json")
    assert manifest["backend"] == "llamacpp" and manifest["model"] == llamacpp.SMOLLM2_ALIAS
    server = manifest["server"]
    assert server["source"] == "evalkit serve" and server["model_hash"]["sha256"] == checkpoint.sha256_file(
        llamacpp.smollm2_gguf_path())
    assert server["reported"]["engine"] == "llama.cpp" and server["reported"]["engine_version"]
    # /props of a llama-server built without git says "b0-unknown"; serve asks the binary (issue 29)
    reported = server["reported"]["engine_version"]
    assert server["server_version"] == reported or (reported.startswith("b0-") and "unknown" not in
                                                    server["server_version"])
    assert "sk-e2e-secret" not in (run_dir / "manifest.json").read_text()
    summary = read_json(run_dir / "summary.json")["datasets"]["mini"]
    assert summary["n"] == 4 and summary["correct"] == sum(s["correct"] for s in samples)


@pytest.mark.skipif(not (SHARED / "eval_data" / "medqa_test.jsonl").exists(), reason="../shared/eval_data absent")
def test_run_on_the_public_medqa_file_with_no_flags_but_limit(served, tmp_path):
    env, _ = served
    out = run_evalkit("run", "--eval-file", str(SHARED / "eval_data" / "medqa_test.jsonl"), "--limit", "2",
                  "--prompt", "strict", "--max-new-tokens", "16", "--results-dir", str(tmp_path / "res"), "--quiet",
                  env=env)
    assert out.returncode == 0, out.stderr
    assert len(read_samples(next((tmp_path / "res").glob("*/*")))) == 2


def test_stop_leaves_no_process_alive(tmp_path):
    # A server of its own, so stopping it does not disturb the module's shared one.
    state = tmp_path / "state"
    env = {**os.environ, "EVALKIT_STATE_DIR": str(state)}
    out = run_evalkit("serve", "--backend", "llamacpp", "--name", "gone", "--port", str(free_port()), "--timeout", "300",
                  env=env)
    assert out.returncode == 0, out.stderr
    handle = json.loads((state / "gone.json").read_text())
    assert processes.group_alive(handle["pgid"])
    out = run_evalkit("stop", "--name", "gone", env=env)
    assert out.returncode == 0, out.stderr
    assert "stopped gone" in out.stderr
    assert not processes.group_alive(handle["pgid"])
    assert not Path(f"/proc/{handle['pid']}").exists() or not processes.process_alive(handle["pid"])
    assert not (state / "gone.json").exists()


def test_a_renamed_copy_of_the_gguf_is_served_and_filed_under_its_own_name(tmp_path):
    copy = tmp_path / "my-finetune.gguf"
    shutil.copyfile(llamacpp.smollm2_gguf_path(), copy)
    env = {**os.environ, "EVALKIT_STATE_DIR": str(tmp_path / "state")}
    out = run_evalkit("serve", "--model-path", str(copy), "--name", "ft", "--port", str(free_port()), "--timeout", "300",
                  env=env)
    assert out.returncode == 0, out.stderr
    assert "'my-finetune'" in out.stderr and "SmolLM2" not in out.stderr
    try:
        data = write_items(tmp_path / "mini.jsonl", 2)
        out = run_evalkit("run", "--eval-file", str(data), "--max-new-tokens", "8", "--results-dir",
                      str(tmp_path / "res"), "--quiet", env=env)
        assert out.returncode == 0, out.stderr
        (run_dir,) = (tmp_path / "res").glob("*/*")
        assert run_dir.parent.name == "my-finetune"
        manifest = read_json(run_dir / "manifest.json")
        assert manifest["model"] == "my-finetune"
        assert manifest["server"]["model_hash"]["sha256"] == checkpoint.sha256_file(copy)
        assert manifest["server"]["model_path"] == str(copy)
    finally:
        run_evalkit("stop", "--name", "ft", env=env)


@pytest.mark.skipif(not (SHARED / "eval_data" / "medqa_test.jsonl").exists(), reason="../shared/eval_data absent")
def test_suite_run_over_the_shared_benchmarks_prints_the_suite_table(served, tmp_path):
    env, _ = served
    res = tmp_path / "res"
    out = run_evalkit("run", "--suite", "medreason", "--data-dir", str(SHARED / "eval_data"), "--limit", "2",
                  "--max-new-tokens", "8", "--results-dir", str(res), "--quiet", env=env)
    assert out.returncode == 0, out.stderr
    run_dir = next(res.glob("*/*"))
    samples = read_samples(run_dir)
    assert sorted({s["dataset"] for s in samples}) == sorted(
        ["medbullets_op4", "medbullets_op5", "medxpertqa", "medqa", "medmcqa", "pubmedqa"])
    assert len(samples) == 12
    from evalkit.data.datasets import load_dataset

    contexts = {i.id: i.context for i in load_dataset(SHARED / "eval_data" / "pubmedqa" / "test_ground_truth.json").items}
    pubmed = [s for s in samples if s["dataset"] == "pubmedqa"]
    assert len(pubmed) == 2 and all(contexts[s["id"]] and contexts[s["id"]] in s["prompt"] for s in pubmed)
    manifest = read_json(run_dir / "manifest.json")
    assert manifest["suite"]["name"] == "medreason" and manifest["prompt"] == "strict"
    assert manifest["generation"]["max_new_tokens"] == 8 and manifest["generation"]["top_p"] == 0.9
    report = run_evalkit("report", str(run_dir), env=env)
    assert report.returncode == 0, report.stderr
    table = report.stdout[report.stdout.index("Suite medreason"):]
    for column in ("MedBullets (op4)", "MedBullets (op5)", "MedXpert", "MedQA", "MedMCQA", "PubMedQA", "Avg"):
        assert column in table
    assert "published: MedReason-8B" in table and "57.3" in table and "55.9" in table
    assert "hint:" in report.stdout  # 8 tokens truncate most answers: the report says what to do


def test_request_controls_reach_the_real_server(served, tmp_path):
    env, _ = served
    data = write_items(tmp_path / "ctl.jsonl", 2)
    out = run_evalkit("run", "--eval-file", str(data), "--max-new-tokens", "24", "--results-dir", str(tmp_path / "res"),
                  "--system-prompt", "Answer with one letter.", "--stop", "\n", "--top-k", "20", "--min-p", "0.05",
                  "--presence-penalty", "0.1", "--frequency-penalty", "0.1",
                  "--chat-template-kwargs", '{"enable_thinking": false}', "--quiet", env=env)
    assert out.returncode == 0, out.stderr
    run_dir = next((tmp_path / "res").glob("*/*"))
    for s in read_samples(run_dir):
        assert "\n" not in s["output"]  # the stop sequence held
    generation = read_json(run_dir / "manifest.json")["generation"]
    assert generation["system_prompt"] == "Answer with one letter." and generation["stop"] == ["\n"]
    assert generation["chat_template_kwargs"] == {"enable_thinking": False} and generation["top_k"] == 20
