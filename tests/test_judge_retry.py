"""A judge killed in the middle of a run's scoring pass, then restarted (real processes).

The scores it could not give are retryable judge errors: the run is not complete, and the next
run of the same command (or `evalkit judge RUN`) asks the judge for those samples only.
"""

import json
import shutil
import sys

import pytest

from evalkit.core.store import iter_samples, read_json
from tests.conftest import ROOT, run_evalkit, write_items
from tests.serverproc import ServerProcess
from tests.test_faults import finish, run_to_end, start_runner, wait_for_lines

N = 24


def judge_double(tmp_path, *, port=None) -> ServerProcess:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps([{"contains": "Question number", "replies": ['{"grade": 3}']}]))
    # Slow replies: the first few scores are journaled while most are still to come when it dies.
    return ServerProcess(ROOT / "tests" / "judge_server.py", "--rules", str(rules), "--delay-s", "0.5", port=port)


def run_cmd(results, answer_url, judge_url, data):
    return [sys.executable, "-m", "evalkit", "run", "--eval-file", str(data), "--endpoint", answer_url,
            "--results-dir", str(results), "--run-name", "r", "--quiet", "--scorer", "judge",
            "--scorer-arg", f"judge.endpoint={judge_url}", "--scorer-arg", "judge.model=judge-double",
            "--scorer-arg", "judge.concurrency=8"]


def grades(run_dir):
    """(scored, retryable judge errors) among the run's samples."""
    values = [s["scores"]["grade"] for s in iter_samples(run_dir)]
    ok = [v for v in values if v["value"] is not None]
    retry = [v for v in values if v["value"] is None and v["meta"].get("retryable")]
    return ok, retry


@pytest.fixture
def servers(tmp_path, loopback):
    started = []

    def judge(port=None):
        started.append(judge_double(tmp_path, port=port))
        return started[-1]

    yield loopback(), judge
    for s in started:
        s.stop()


def test_scores_lost_to_a_dead_judge_are_asked_again_by_the_same_command_and_by_evalkit_judge(tmp_path, servers):
    answers, start_judge = servers
    judge = start_judge()
    data = write_items(tmp_path / "d.jsonl", N)
    cmd = run_cmd(tmp_path / "results", answers.url, judge.url, data)
    proc = start_runner(cmd)
    run_dir = tmp_path / "results" / "loopback-model" / "r"
    wait_for_lines(run_dir / "scores.jsonl", 1, proc, timeout=60)  # the scoring pass has begun
    judge.stop()  # SIGKILL mid-pass
    rc, _, err = finish(proc, timeout=120)
    ok, retry = grades(run_dir)
    assert ok and retry and len(ok) + len(retry) == N
    summary = read_json(run_dir / "summary.json")
    assert summary["complete"] is False and summary["scores_to_retry"] == len(retry)
    assert read_json(run_dir / "manifest.json")["status"] != "complete"
    assert rc == 3 and f"{len(retry)} samples could not be scored because the judge did not answer" in err
    answered = answers.stats()["requests"]

    # Two ways to finish the same failed run: a copy for the rerun, the original for `evalkit judge`.
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "results", copy)
    judge = start_judge(port=judge.port)  # the judge comes back where it was

    rc, _, err = run_to_end(run_cmd(copy, answers.url, judge.url, data), timeout=120)
    assert rc == 0, err
    assert judge.stats()["requests"] == len(retry)  # only the scores it had not given
    assert answers.stats()["requests"] == answered  # and no answer asked again
    again_ok, again_retry = grades(copy / "loopback-model" / "r")
    assert len(again_ok) == N and not again_retry
    assert read_json(copy / "loopback-model" / "r" / "summary.json")["complete"] is True

    asked = judge.stats()["requests"]
    res = run_evalkit("judge", str(run_dir), "--judge-endpoint", judge.url, "--judge-model", "judge-double",
                      "--resamples", "20", timeout=120)
    assert res.returncode == 0, res.stderr
    assert judge.stats()["requests"] - asked == len(retry)
    judged = [json.loads(line) for line in (run_dir / "judged-grade4.jsonl").read_text().splitlines()]
    assert len(judged) == N and all(s["scores"]["grade"]["value"] is not None for s in judged)
