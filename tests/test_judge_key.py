"""A judge's API key is never printed or written: it comes from $EVALKIT_JUDGE_API_KEY (or the variable
judge.api_key_env names), and one given as --scorer-arg judge.api_key=... is masked in the resume hint,
in error messages and in the manifest (issue 20, item 6)."""

import os
import signal

from evalkit.cli.run import without_secrets
from tests.conftest import run_evalkit, write_items
from tests.test_faults import finish, run_to_end, runner_cmd, start_runner, wait_for_lines

KEY = "sk-judge-5ecret-9876543210"


def files_containing(root, needle: str) -> list:
    return [p for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def judge_args(url: str, *extra: str) -> list[str]:
    return ["--scorer", "choice", "--scorer", "judge", "--scorer-arg", f"judge.endpoint={url}",
            "--scorer-arg", "judge.model=loopback-model", "--scorer-arg", "judge.max_attempts=1", *extra]


def test_without_secrets_drops_a_scorer_arg_that_sets_a_key_in_both_spellings():
    argv = ["run", "--scorer-arg", f"judge.api_key={KEY}", "--limit", "3", f"--scorer-arg=judge.api_key={KEY}",
            "--scorer-arg", "judge.model=m", "--judge-api-key", KEY]
    assert without_secrets(argv) == (["run", "--limit", "3", "--scorer-arg", "judge.model=m"], True)
    assert without_secrets(["run", "--scorer-arg", "judge.api_key_env=MY_KEY"])[1] is False  # a name, not a key


def test_ctrl_c_never_shows_a_judge_key_given_as_a_scorer_arg_nor_writes_it(tmp_path, loopback):
    answers = loopback("--delay-s", "0.02")
    judge = loopback("--require-key", KEY)
    data = write_items(tmp_path / "d.jsonl", 300)
    cmd = runner_cmd(tmp_path, answers.url, data, "--concurrency", "4",
                     *judge_args(judge.url, "--scorer-arg", f"judge.api_key={KEY}"))
    samples = tmp_path / "results" / "loopback-model" / "r" / "samples.jsonl"
    proc = start_runner(cmd)
    wait_for_lines(samples, 20, proc)
    proc.send_signal(signal.SIGINT)
    rc, out, err = finish(proc, timeout=20)
    assert rc == 130 and "resume with: evalkit run" in err, err
    assert "$EVALKIT_JUDGE_API_KEY" in err and "judge.endpoint=" in err
    assert KEY not in out + err
    assert files_containing(tmp_path / "results", KEY) == []


def test_the_judge_key_comes_from_the_environment_and_is_never_written(tmp_path, loopback):
    answers = loopback()
    judge = loopback("--require-key", KEY)
    data = write_items(tmp_path / "d.jsonl", 5)
    env = {**os.environ, "EVALKIT_JUDGE_API_KEY": KEY}
    res = run_evalkit(*runner_cmd(tmp_path, answers.url, data, *judge_args(judge.url))[3:], env=env)
    assert KEY not in res.stdout + res.stderr
    stats = judge.stats()
    assert stats["requests"] >= 5 and stats["401"] == 0, res.stderr  # the judge got the key
    assert files_containing(tmp_path / "results", KEY) == []

    other = tmp_path / "other"
    env = {**os.environ, "MY_JUDGE_KEY": KEY}
    env.pop("EVALKIT_JUDGE_API_KEY", None)
    res = run_evalkit("run", "--eval-file", str(data), "--endpoint", answers.url, "--results-dir", str(other),
                      "--quiet", *judge_args(judge.url, "--scorer-arg", "judge.api_key_env=MY_JUDGE_KEY"), env=env)
    assert judge.stats()["401"] == 0 and judge.stats()["requests"] > stats["requests"], res.stderr
    assert files_containing(other, KEY) == []


def test_a_scorer_that_cannot_be_built_never_shows_its_key(tmp_path):
    data = write_items(tmp_path / "d.jsonl", 3)
    res = run_evalkit("run", "--eval-file", str(data), "--endpoint", "http://127.0.0.1:9/v1", "--quiet",
                      "--results-dir", str(tmp_path / "results"), "--scorer", "judge",
                      "--scorer-arg", "judge.endpoint=http://127.0.0.1:9/v1", "--scorer-arg", "judge.model=m",
                      "--scorer-arg", f"judge.api_key={KEY}", "--scorer-arg", "judge.no_such_option=1")
    assert res.returncode != 0 and "cannot build scorer 'judge'" in res.stderr, res.stderr
    assert KEY not in res.stdout + res.stderr and "'api_key': '***'" in res.stderr
