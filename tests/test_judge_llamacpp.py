"""End to end on the real embedded server (SmolLM2-135M): answer 10 LiveQA questions, judge them on Med-PaLM 2's axes.

SmolLM2's ratings are poor; this checks the machinery (requests, files, table,
judge errors recorded as errors), not the quality. The answers are generated with
evalkit's client and the Med-PaLM 2 long-form prompt and saved as a run's
samples.jsonl; `evalkit judge` grades that run through the CLI.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evalkit.client import EndpointPool
from evalkit.longform import load_longform
from evalkit.prompts import load_template, render_prompt
from evalkit.records import GenerationParams, SampleRecord
from evalkit.rubrics import load_rubric
from tests.conftest import SHARED, free_port

pytestmark = pytest.mark.server

if os.environ.get("EVALKIT_REQUIRE_SERVER") != "1":
    pytest.importorskip("llama_cpp", reason="embedded backend not installed: pip install -e '.[local]'")

LIVEQA = SHARED / "eval_data" / "longform" / "liveqa_med_test.jsonl"


def evalkit(*args: str, env: dict, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "evalkit", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    state = tmp_path_factory.mktemp("judge-e2e-state")
    env = {**os.environ, "EVALKIT_STATE_DIR": str(state)}
    out = evalkit("serve", "--backend", "llamacpp", "--name", "judge-e2e", "--port", str(free_port()), "--timeout",
                  "300", env=env)
    assert out.returncode == 0, out.stderr
    yield env, json.loads((state / "judge-e2e.json").read_text())
    evalkit("stop", "--name", "judge-e2e", env=env)


async def answer(url: str, model: str, prompts: list[str]) -> list:
    async with EndpointPool([url], model=model) as pool:
        return [(await pool.complete(p, GenerationParams(max_new_tokens=40)))[0] for p in prompts]


@pytest.mark.skipif(not LIVEQA.exists(), reason="../shared/eval_data/longform absent")
def test_smollm2_answers_ten_liveqa_questions_and_judges_them_on_medpalm2(served, tmp_path):
    env, handle = served
    url = f"http://127.0.0.1:{handle['port']}/v1"
    items = load_longform(LIVEQA).items[:10]
    template = load_template("medpalm_longform")
    prompts = [render_prompt(template, item) for item in items]
    gens = asyncio.run(answer(url, handle["model"], prompts))
    run = tmp_path / "run"
    run.mkdir()
    with open(run / "samples.jsonl", "w") as fh:
        for item, prompt, gen in zip(items, prompts, gens):
            assert gen.text.strip() and prompt.endswith("Complete Answer:")
            fh.write(json.dumps(SampleRecord(id=item.id, dataset=item.dataset, question=item.question, options={},
                                             answer_idx=None, prompt=prompt, output=gen.text,
                                             finish_reason=gen.finish_reason, usage=gen.usage,
                                             target=item.target).to_dict()) + "\n")
    out = evalkit("judge", str(run), "--rubric", "medpalm2", "--judge-server", "judge-e2e", "--json-schema",
                  "--max-tokens", "200", "--max-attempts", "2", "--concurrency", "1", env=env)
    assert out.returncode == 0, out.stderr
    axes = [a.name for a in load_rubric("medpalm2").axes]
    for axis in axes:
        assert axis in out.stdout  # one row per axis in the table
    judged = [json.loads(line) for line in (run / "judged-medpalm2.jsonl").read_text().splitlines()]
    assert len(judged) == 10
    for s in judged:
        assert set(s["scores"]) == set(axes)
        for axis, score in s["scores"].items():
            meta = score["meta"]
            assert meta["judge_prompt"] and "judge_reply" in meta and meta["attempts"] >= 1
            assert meta["judge_tokens"]["prompt_tokens"] > 0 and meta["latency_s"] > 0
            axis_scale = next(a for a in load_rubric("medpalm2").axes if a.name == axis).scale
            if score.get("error"):
                assert score["value"] is None  # a judge error is never a rating
            else:
                assert 0 <= score["value"] < len(axis_scale) and score["answer"] in axis_scale
    assert "judge smollm2-135m-instruct:" in out.stderr and "requests" in out.stderr
    journal = (run / "scores.jsonl").read_text().splitlines()
    assert len(journal) == 10
    # Judging again asks nothing: all ten are journaled.
    again = evalkit("judge", str(run), "--rubric", "medpalm2", "--judge-server", "judge-e2e", "--json-schema",
                    "--max-tokens", "200", "--max-attempts", "2", env=env)
    assert again.returncode == 0, again.stderr
    assert "10 resumed" in again.stderr and "judge smollm2-135m-instruct: 0 requests" in again.stderr
