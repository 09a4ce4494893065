"""Request controls: what the request body holds, what the manifest and fingerprint record, bad values."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

from evalkit.serving.client import build_payload, parse_completion, read_usage
from evalkit.core.records import GenerationParams
from evalkit.cli.controls import ControlError, json_object, text_or_file
from evalkit.run.manifest import run_fingerprint
from evalkit.run.runner import RunConfig, run_eval
from evalkit.core.store import read_json
from tests.conftest import ROOT

BASE_BODY = {"model": "m", "messages": [{"role": "user", "content": "Q?"}], "max_tokens": 1024,
             "temperature": 0.0, "top_p": 1.0}


def test_defaults_send_the_same_body_as_before():
    assert build_payload("m", "Q?", GenerationParams()) == BASE_BODY


@pytest.mark.parametrize("field, value, key, sent", [
    ("top_k", 20, "top_k", 20),
    ("min_p", 0.05, "min_p", 0.05),
    ("presence_penalty", 1.5, "presence_penalty", 1.5),
    ("frequency_penalty", -0.5, "frequency_penalty", -0.5),
    ("stop", ("</answer>", "\n\n\n"), "stop", ["</answer>", "\n\n\n"]),
    ("chat_template_kwargs", {"enable_thinking": False}, "chat_template_kwargs", {"enable_thinking": False}),
])
def test_each_control_goes_into_the_body_and_nothing_else_changes(field, value, key, sent):
    body = build_payload("m", "Q?", GenerationParams(**{field: value}))
    assert body[key] == sent
    assert {k: v for k, v in body.items() if k != key} == BASE_BODY


def test_system_prompt_is_the_first_message():
    body = build_payload("m", "Q?", GenerationParams(system_prompt="You are a careful physician."))
    assert body["messages"] == [{"role": "system", "content": "You are a careful physician."},
                                {"role": "user", "content": "Q?"}]


def test_extra_body_is_merged_last_and_may_override_sampling_keys():
    params = GenerationParams(top_k=5, extra_body={"top_k": 40, "repetition_penalty": 1.1, "separate_reasoning": True})
    body = build_payload("m", "Q?", params, n=3)
    assert body["top_k"] == 40 and body["repetition_penalty"] == 1.1 and body["separate_reasoning"] is True
    assert body["n"] == 3


@pytest.mark.parametrize("key", ["model", "messages", "n", "stream"])
def test_extra_body_may_not_replace_what_the_runner_relies_on(key):
    with pytest.raises(ValueError, match=key):
        GenerationParams(extra_body={key: 1})


def test_non_object_template_kwargs_are_refused():
    with pytest.raises(ValueError, match="chat_template_kwargs must be a JSON object"):
        GenerationParams(chat_template_kwargs=["enable_thinking"])  # type: ignore[arg-type]


def test_stop_given_as_one_string_is_one_sequence():
    assert GenerationParams(stop="END").stop == ("END",)  # type: ignore[arg-type]


# --- fingerprint and manifest -------------------------------------------------------------------

def _fp(params: GenerationParams) -> str:
    prompt = SimpleNamespace(sha256="p" * 64, context_variant=None)
    data = [SimpleNamespace(sha256="d" * 64)]
    return run_fingerprint(model="m", prompt=prompt, data=data, params=params)  # type: ignore[arg-type]


def test_fingerprint_without_controls_is_todays():
    # The document the fingerprint hashed before the controls existed, written out by hand.
    old_doc = {"model": "m", "prompt_sha256": "p" * 64, "data_sha256": ["d" * 64],
               "params": {"max_new_tokens": 256, "temperature": 0.0, "top_p": 1.0, "seed": None}}
    expected = hashlib.sha256(json.dumps(old_doc, sort_keys=True).encode()).hexdigest()
    assert _fp(GenerationParams(max_new_tokens=256, temperature=0.0)) == expected


@pytest.mark.parametrize("control", [
    {"system_prompt": "Be brief."}, {"stop": ("X",)}, {"top_k": 20}, {"min_p": 0.1}, {"presence_penalty": 0.5},
    {"frequency_penalty": 0.5}, {"chat_template_kwargs": {"enable_thinking": False}}, {"extra_body": {"a": 1}},
])
def test_every_control_changes_the_fingerprint(control):
    assert _fp(GenerationParams(max_new_tokens=256, **control)) != _fp(GenerationParams(max_new_tokens=256))


def test_run_sends_the_controls_and_the_manifest_records_them(tmp_path, loopback, items_file):
    record = tmp_path / "bodies.jsonl"
    srv = loopback("--record", str(record))
    params = GenerationParams(max_new_tokens=16, system_prompt="You are a physician.", stop=("\n\nQuestion",),
                              top_k=20, min_p=0.05, presence_penalty=0.3, frequency_penalty=0.2,
                              chat_template_kwargs={"enable_thinking": False}, extra_body={"separate_reasoning": True})
    result = run_eval(RunConfig(eval_files=[str(items_file)], endpoint=srv.url, params=params, concurrency=4,
                                results_dir=str(tmp_path / "res")))
    bodies = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(bodies) == 12
    for body in bodies:
        assert body["messages"][0] == {"role": "system", "content": "You are a physician."}
        assert body["stop"] == ["\n\nQuestion"] and body["top_k"] == 20 and body["min_p"] == 0.05
        assert body["presence_penalty"] == 0.3 and body["frequency_penalty"] == 0.2
        assert body["chat_template_kwargs"] == {"enable_thinking": False} and body["separate_reasoning"] is True
    generation = read_json(result.run_dir / "manifest.json")["generation"]
    assert generation == {"max_new_tokens": 16, "temperature": 0.0, "top_p": 1.0, "seed": None,
                          "system_prompt": "You are a physician.", "stop": ["\n\nQuestion"], "top_k": 20,
                          "min_p": 0.05, "presence_penalty": 0.3, "frequency_penalty": 0.2,
                          "chat_template_kwargs": {"enable_thinking": False},
                          "extra_body": {"separate_reasoning": True}}
    # The same items without the controls are another run, in another directory.
    plain = run_eval(RunConfig(eval_files=[str(items_file)], endpoint=srv.url, concurrency=4,
                               params=GenerationParams(max_new_tokens=16), results_dir=str(tmp_path / "res")))
    assert plain.run_dir != result.run_dir


# --- parsing the flags ---------------------------------------------------------------------------

def test_text_or_file_reads_at_files(tmp_path):
    f = tmp_path / "system.txt"
    f.write_text("Think step by step.\n", encoding="utf-8")
    assert text_or_file(f"@{f}", "--system-prompt") == "Think step by step.\n"
    assert text_or_file("plain text", "--system-prompt") == "plain text"
    with pytest.raises(ControlError, match=r"--system-prompt @.*missing.txt.*cannot read"):
        text_or_file(f"@{tmp_path / 'missing.txt'}", "--system-prompt")


def test_json_object_errors_name_the_flag(tmp_path):
    assert json_object('{"enable_thinking": false}', "--chat-template-kwargs") == {"enable_thinking": False}
    with pytest.raises(ControlError, match="--chat-template-kwargs: not valid JSON"):
        json_object("{enable_thinking: false}", "--chat-template-kwargs")
    with pytest.raises(ControlError, match="--extra-body: expected a JSON object"):
        json_object("[1, 2]", "--extra-body")
    f = tmp_path / "body.json"
    f.write_text('{\n  "a": 1,\n  oops\n}', encoding="utf-8")
    with pytest.raises(ControlError, match=r"body.json:3"):
        json_object(f"@{f}", "--extra-body")


def test_cli_refuses_bad_json_before_contacting_anything(tmp_path, items_file):
    out = subprocess.run([sys.executable, "-m", "evalkit", "run", "--eval-file", str(items_file), "--endpoint",
                          "http://127.0.0.1:9/v1", "--extra-body", '{"n": 4}'], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert out.returncode == 2
    assert "extra_body may not set n" in out.stderr


# --- usage ----------------------------------------------------------------------------------------

def test_reasoning_tokens_are_read_from_usage_details():
    usage = {"prompt_tokens": 10, "completion_tokens": 300, "total_tokens": 310,
             "completion_tokens_details": {"reasoning_tokens": 250, "accepted_prediction_tokens": None}}
    assert read_usage(usage) == {"prompt_tokens": 10, "completion_tokens": 300, "total_tokens": 310,
                                 "reasoning_tokens": 250}
    gens = parse_completion({"choices": [{"message": {"content": "B", "reasoning_content": "hmm"},
                                          "finish_reason": "stop"}], "usage": usage}, 0.5)
    assert gens[0].usage["reasoning_tokens"] == 250 and gens[0].text == "<think>hmm</think>B"
    assert read_usage({"completion_tokens": 3}) == {"completion_tokens": 3}
    assert read_usage(None) == {}


def test_system_prompt_replaces_a_conversations_own_system_message():
    convo = [{"role": "system", "content": "old"}, {"role": "user", "content": "hi"}]
    body = build_payload("m", convo, GenerationParams(system_prompt="new"))
    assert body["messages"] == [{"role": "system", "content": "new"}, {"role": "user", "content": "hi"}]
    assert convo[0]["content"] == "old"  # the item's own conversation is not modified
    assert build_payload("m", convo, GenerationParams())["messages"] == convo


def test_leaderboard_configurations_tell_runs_with_other_controls_apart():
    from evalkit.results.comparable import configuration_of

    def config(generation):
        return configuration_of(model="m", prompt="strict", prompt_sha256="s", extractor="evalkit",
                                manifest={"generation": generation, "strategy": "single"})

    plain = {"max_new_tokens": 64, "temperature": 0.0, "top_p": 1.0, "seed": None}
    with_stop = GenerationParams(max_new_tokens=64, temperature=0.0, stop=("\n",)).to_dict()
    assert config(plain).controls is None
    assert config(GenerationParams(max_new_tokens=64, temperature=0.0).to_dict()).controls is None
    assert config(with_stop).controls == '{"stop":["\\n"]}'
    assert config(with_stop) != config(plain)
