"""A judge that is not there, or wants a key, and a server that wants a key (issue 29, items 5, 10 and 11):
the backoff arithmetic never overflows; `evalkit judge` stops at an unreachable judge as `run` stops at
an unreachable endpoint, with progress lines meanwhile; a pass where judge requests failed is
incomplete (non-zero exit, summary.json not complete); a malformed physicians' CSV is `file:line`;
a server that wants a key is said to want one, by `run` and by `status`."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import time

import pytest

from evalkit.serving import backends
from evalkit.serving.client import EndpointPool, RequestError, RetryPolicy
from evalkit.benchmarks.kqa.statements import NLI_JOURNAL
from evalkit.core.store import read_json
from tests.conftest import free_port, run_evalkit, write_items
from tests.test_faults import runner_cmd

KEY = "sk-wanted-4242"


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}/v1"


# --- item 5: the backoff arithmetic -------------------------------------------------------------------

def test_an_endpoint_marked_down_a_thousand_times_does_not_overflow_the_cool_down():
    async def go() -> None:
        async with EndpointPool([dead_url()], "m", retry=RetryPolicy(max_attempts=1)) as pool:
            pool.endpoints[0].outages = 1100  # a long outage of one endpoint of a pool
            with pytest.raises(RequestError) as err:
                await pool.send(b"{}")
            assert err.value.unreachable
            assert pool.endpoints[0].down_until - time.monotonic() <= 60.0

    asyncio.run(go())
    assert 0 <= RetryPolicy(max_attempts=5000).delay(3000) <= RetryPolicy().max_delay_s


# --- item 10: the physicians' file --------------------------------------------------------------------

HEADER = ["", "Question", "llm_x", "answer", "claim", "category_x", "majority_label", "label_0", "label_1", "label_2"]


def physicians_csv(path, n: int):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        for i in range(n):
            w.writerow([i, f"Question {i}?", "m", f"An answer {i}.", f"claim-{i} holds", "Must_have", "Neutral",
                        "Neutral", "Neutral", "Entailment"])
    return path


def test_judging_the_physicians_file_with_no_judge_listening_stops_with_progress(tmp_path):
    path = physicians_csv(tmp_path / "NLI_medical_annotator.csv", 120)
    t0 = time.monotonic()
    res = run_evalkit("judge", str(path), "--judge-endpoint", dead_url(), "--judge-model", "m",
                      "--work-dir", str(tmp_path / "work"), timeout=300)
    took = time.monotonic() - t0
    assert res.returncode == 1, res.stderr
    assert "judge down" in res.stderr and "stopped answering" in res.stderr and "run the same command" in res.stderr
    assert "progress 0/120" in res.stderr  # a progress line as soon as it starts
    assert "Traceback" not in res.stderr and took < 120, (took, res.stderr)


def test_judging_with_no_judge_listening_and_no_model_named_says_it_cannot_reach_it(tmp_path):
    path = physicians_csv(tmp_path / "NLI_medical_annotator.csv", 3)
    url = dead_url()
    res = run_evalkit("judge", str(path), "--judge-endpoint", url, "--work-dir", str(tmp_path / "work"))
    assert res.returncode == 2 and f"cannot reach the judge at {url}" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr


def test_a_judge_that_wants_a_key_stops_the_pass_and_says_where_the_key_goes(tmp_path, loopback):
    judge = loopback("--require-key", KEY)
    path = physicians_csv(tmp_path / "NLI_medical_annotator.csv", 40)
    env = {k: v for k, v in os.environ.items() if k != "EVALKIT_JUDGE_API_KEY"}
    res = run_evalkit("judge", str(path), "--judge-endpoint", judge.url, "--judge-model", "loopback-model",
                      "--work-dir", str(tmp_path / "work"), env=env)
    assert res.returncode == 1, res.stderr
    assert "needs an API key" in res.stderr and "$EVALKIT_JUDGE_API_KEY" in res.stderr, res.stderr
    assert judge.stats()["401"] <= 8  # it stopped asking at the first refusals, not after every pair


def write_rows(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        for row in rows:
            w.writerow(row)
    return path


@pytest.mark.parametrize("name, make, expected", [
    ("bad-label.csv", lambda p: write_rows(p, [HEADER, [0, "Q?", "m", "A.", "c", "Must_have", "Neutral", "Neutral",
                                                       "Maybe", "Neutral"]]),
     "bad-label.csv:2: needs answer, claim and labels"),
    ("short-row.csv", lambda p: write_rows(p, [HEADER, [0, "Q?", "m", "A.", "c", "Must_have", "Neutral", "Neutral",
                                                       "Neutral", "Neutral"], [1, "Q?", "m"]]),
     "short-row.csv:3: needs answer, claim and labels among Entailment, Neutral, Contradiction (got fewer fields"),
    ("no-header.csv", lambda p: write_rows(p, [["a", "b", "c"], [1, 2, 3]]),
     "no-header.csv:1: not K-QA's physicians' CSV (NLI_medical_annotator.csv): its header lacks answer"),
    ("binary.csv", lambda p: p.write_bytes(b"answer,claim\n\x00\xff\xfe\x81 binary"),
     "binary.csv:2: not UTF-8 text"),
    ("samples.txt", lambda p: p.write_bytes(b"\x00\xff\xfe\x81 binary\n"),
     "samples.txt:1: not valid JSON"),
])
def test_a_physicians_file_that_cannot_be_read_is_named_by_file_and_line(tmp_path, name, make, expected):
    path = tmp_path / name
    make(path)
    res = run_evalkit("judge", str(path), "--judge-endpoint", dead_url(), "--judge-model", "m",
                      "--work-dir", str(tmp_path / "work"))
    assert res.returncode == 2 and "nothing was sent" in res.stderr, res.stderr
    assert f"{tmp_path}/{expected}" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr


# --- item 10: a run scored by a judge that failed -------------------------------------------------------

def judge_args(url: str) -> list[str]:
    return ["--scorer", "choice", "--scorer", "judge", "--scorer-arg", f"judge.endpoint={url}",
            "--scorer-arg", "judge.model=loopback-model", "--scorer-arg", "judge.max_attempts=1"]


def test_a_run_whose_judge_wants_a_key_is_incomplete_and_says_so_then_resumes_with_it(tmp_path, loopback):
    answers, judge = loopback(), loopback("--require-key", KEY)
    data = write_items(tmp_path / "d.jsonl", 20)
    cmd = runner_cmd(tmp_path, answers.url, data, *judge_args(judge.url))[3:]
    env = {k: v for k, v in os.environ.items() if k != "EVALKIT_JUDGE_API_KEY"}
    res = run_evalkit(*cmd, env=env)
    summary = read_json(tmp_path / "results" / "loopback-model" / "r" / "summary.json")
    assert res.returncode == 3 and summary["complete"] is False, res.stderr
    assert "needs an API key" in res.stderr and "$EVALKIT_JUDGE_API_KEY" in res.stderr, res.stderr
    assert judge.stats()["401"] < 20  # it stopped asking
    again = run_evalkit(*cmd, env={**env, "EVALKIT_JUDGE_API_KEY": KEY})
    summary = read_json(tmp_path / "results" / "loopback-model" / "r" / "summary.json")
    assert again.returncode == 0 and summary["complete"] is True, again.stderr


def test_a_run_whose_judge_is_not_listening_is_incomplete(tmp_path, loopback):
    answers = loopback()
    data = write_items(tmp_path / "d.jsonl", 20)
    res = run_evalkit(*runner_cmd(tmp_path, answers.url, data, *judge_args(dead_url()))[3:], timeout=300)
    summary = read_json(tmp_path / "results" / "loopback-model" / "r" / "summary.json")
    assert res.returncode == 3 and summary["complete"] is False, res.stderr
    assert "stopped answering" in res.stderr, res.stderr


# --- item 11: a server that wants a key --------------------------------------------------------------

def test_run_against_a_server_that_wants_a_key_says_so(tmp_path, loopback):
    srv = loopback("--require-key", KEY, "--key-on-models")
    data = write_items(tmp_path / "d.jsonl", 3)
    env = {k: v for k, v in os.environ.items() if k != "EVALKIT_API_KEY"}
    res = run_evalkit(*runner_cmd(tmp_path, srv.url, data)[3:], env=env)
    assert res.returncode == 1, res.stderr
    assert "needs an API key" in res.stderr and "--api-key" in res.stderr and "$EVALKIT_API_KEY" in res.stderr
    assert "is it running" not in res.stderr
    wrong = run_evalkit(*runner_cmd(tmp_path, srv.url, data, "--api-key", "sk-not-it")[3:], env=env)
    assert wrong.returncode == 1 and "refuses the API key given" in wrong.stderr, wrong.stderr
    assert "sk-not-it" not in wrong.stderr
    right = run_evalkit(*runner_cmd(tmp_path, srv.url, data)[3:], env={**env, "EVALKIT_API_KEY": KEY})
    assert right.returncode == 0, right.stderr


def test_status_calls_a_healthy_server_that_wants_a_key_so(loopback):
    srv = loopback("--require-key", KEY, "--key-on-models")
    assert backends.probe_status(srv.url, timeout=5) == backends.NEEDS_KEY
    assert backends.probe_status(srv.url, api_key=KEY, timeout=5) == "ready"
    assert backends.probe_status(dead_url(), timeout=1) == "not answering"


def test_the_judge_journal_keeps_nothing_as_done_when_the_judge_refused(tmp_path, loopback):
    judge = loopback("--require-key", KEY)
    path = physicians_csv(tmp_path / "NLI_medical_annotator.csv", 5)
    env = {k: v for k, v in os.environ.items() if k != "EVALKIT_JUDGE_API_KEY"}
    res = run_evalkit("judge", str(path), "--judge-endpoint", judge.url, "--judge-model", "loopback-model",
                      "--work-dir", str(tmp_path / "work"), env=env)
    assert res.returncode == 1 and "$EVALKIT_JUDGE_API_KEY" in res.stderr, res.stderr  # it says where the key goes
    journal = tmp_path / "work" / NLI_JOURNAL
    lines = [json.loads(x) for x in journal.read_text().splitlines()] if journal.exists() else []
    assert lines, "the refused requests are journaled (as to be asked again)"
    assert all(line["label"] is None for line in lines)  # asked again when the key is given


def test_the_status_command_says_a_server_wants_a_key_not_that_it_is_not_answering(loopback, monkeypatch):
    from click.testing import CliRunner

    from evalkit.cli import main
    from evalkit.core.liveness import proc_start_time
    from evalkit.serving import processes, state

    srv = loopback("--require-key", KEY, "--key-on-models")
    pid = srv.proc.pid
    state.save_state(state.ServerHandle(
        name="keyed", backend="llamacpp", pid=pid, pgid=pid, host="127.0.0.1", port=srv.port, model="loopback-model",
        command=processes.proc_cmdline(pid), log_path="", started_at="", start_time=proc_start_time(pid),
        token="never-given-to-anyone"))
    monkeypatch.delenv("EVALKIT_API_KEY", raising=False)
    out = CliRunner().invoke(main, ["status"])
    assert out.exit_code == 0, out.output
    assert "needs a key" in out.output and "not answering" not in out.output
    assert "$EVALKIT_API_KEY" in out.output and "--api-key" in out.output
    monkeypatch.setenv("EVALKIT_API_KEY", KEY)
    assert "ready" in CliRunner().invoke(main, ["status"]).output


def test_a_refused_key_names_the_variable_the_judge_read_it_from(monkeypatch):
    from evalkit.serving.client import RequestError
    from evalkit.scoring.rubric_judge import RubricJudgeScorer

    monkeypatch.delenv("LAB_JUDGE_KEY", raising=False)
    judge = RubricJudgeScorer("grade4", "http://127.0.0.1:9/v1", "m", api_key_env="LAB_JUDGE_KEY")
    judge.down = RequestError("HTTP 401", endpoint="http://127.0.0.1:9/v1", status=401, retryable=False)
    reason = judge.down_reason()
    assert "$LAB_JUDGE_KEY" in reason and "EVALKIT_JUDGE_API_KEY" not in reason, reason
