"""End to end on the real embedded server (SmolLM2-135M): answer 10 LiveQA questions, judge them on Med-PaLM 2's axes.

SmolLM2's ratings are poor; this checks the machinery (requests, files, table,
judge errors recorded as errors), not the quality. `evalkit run` answers with the Med-PaLM 2 long-form prompt;
`evalkit judge` grades that run through the CLI.
"""

from __future__ import annotations

import json
import os

import pytest

from evalkit.scoring.rubrics import load_rubric
from tests.conftest import free_port, run_evalkit, SHARED, skip_unless_embedded_backend

pytestmark = pytest.mark.server

skip_unless_embedded_backend()

LIVEQA = SHARED / "eval_data" / "longform" / "liveqa_med_test.jsonl"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    state = tmp_path_factory.mktemp("judge-e2e-state")
    env = {**os.environ, "EVALKIT_STATE_DIR": str(state)}
    out = run_evalkit("serve", "--backend", "llamacpp", "--name", "judge-e2e", "--port", str(free_port()), "--timeout",
                  "300", env=env)
    assert out.returncode == 0, out.stderr
    yield env, json.loads((state / "judge-e2e.json").read_text())
    run_evalkit("stop", "--name", "judge-e2e", env=env)


@pytest.mark.skipif(not LIVEQA.exists(), reason="../shared/eval_data/longform absent")
def test_smollm2_answers_ten_liveqa_questions_and_judges_them_on_medpalm2(served, tmp_path):
    env, handle = served
    out = run_evalkit("run", "--eval-file", str(LIVEQA), "--limit", "10", "--prompt", "medpalm_longform", "--server",
                  "judge-e2e", "--max-new-tokens", "32", "--results-dir", str(tmp_path / "res"), "--quiet", env=env)
    assert out.returncode == 0, out.stderr
    run = next((tmp_path / "res").glob("*/*"))
    answers = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    assert len(answers) == 10 and all(a["output"].strip() and a["prompt"].endswith("Complete Answer:")
                                      for a in answers)
    out = run_evalkit("judge", str(run), "--rubric", "medpalm2", "--judge-server", "judge-e2e", "--json-schema",
                  "--max-tokens", "160", "--max-attempts", "2", "--concurrency", "1", env=env)
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
            if axis != axes[0]:  # the one request's prompt and reply are stored once, with the first axis
                assert meta == {"axis": axis, "judged_with": axes[0], **({"retryable": True} if
                                                                          meta.get("retryable") else {})}
                continue
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
    again = run_evalkit("judge", str(run), "--rubric", "medpalm2", "--judge-server", "judge-e2e", "--json-schema",
                    "--max-tokens", "160", "--max-attempts", "2", env=env)
    assert again.returncode == 0, again.stderr
    assert "10 resumed" in again.stderr and "judge smollm2-135m-instruct: 0 requests" in again.stderr
