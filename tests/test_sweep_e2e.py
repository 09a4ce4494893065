"""A sweep end to end: three checkpoints (step-named folders holding the shipped SmolLM2 GGUF), a few
items of two benchmark files, through a real one-node Slurm (sbatch job arrays, one job cancelled
with scancel mid-run and the sweep run again) and through the local executor.

Each runs twice: with a llama-server stand-in (the loopback double behind llama-server's flags)
and with the real llama.cpp server (marked ``server``); requests are paced (--rps 2) so that a
job can be cancelled mid-run whatever the server's speed. Checked: every (checkpoint, item) evaluated exactly once, the cancelled job's server
stopped, the trend in step order, the gate verdicts and their JUnit file, and a second run of the
same command submitting nothing.
"""

from __future__ import annotations

import json
import os
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_evalkit, wait_for

ITEMS_PER_FILE = 4
STEPS = (100, 200, 300)


def _gguf() -> Path:
    from evalkit.serving.backends.llamacpp import smollm2_gguf_path
    from evalkit.serving.errors import ServerError

    try:
        return smollm2_gguf_path()
    except ServerError as exc:
        pytest.skip(f"the embedded model is not installed ({exc}): make install")


@pytest.fixture(params=["standin", pytest.param("llamacpp", marks=pytest.mark.server)])
def sweep_env(request, tmp_path, isolated_state):
    """Checkpoints, two small benchmark files and the environment of the CLI (and of the jobs),
    served by the llama-server stand-in and by the real llama-server."""
    return _sweep_env(request.param, tmp_path, isolated_state)


@pytest.fixture
def standin_sweep_env(tmp_path, isolated_state):
    """``sweep_env`` with the stand-in only: for what does not depend on the server's kind (the
    signal handling, taking over a dead job's server, watch mode; the Slurm and local-executor
    tests run both kinds)."""
    return _sweep_env("standin", tmp_path, isolated_state)


def _sweep_env(kind: str, tmp_path: Path, isolated_state: Path) -> tuple[Path, dict]:
    gguf = _gguf()
    for step in STEPS:
        d = tmp_path / "train" / f"checkpoint-{step}"
        d.mkdir(parents=True)
        (d / "model.gguf").symlink_to(gguf)
    lines = (ROOT / "eval_data" / "sample_medqa.jsonl").read_text(encoding="utf-8").splitlines()
    (tmp_path / "med_a.jsonl").write_text("\n".join(lines[:ITEMS_PER_FILE]) + "\n", encoding="utf-8")
    (tmp_path / "med_b.jsonl").write_text("\n".join(lines[ITEMS_PER_FILE:2 * ITEMS_PER_FILE]) + "\n",
                                          encoding="utf-8")
    env = {**os.environ, "EVALKIT_STATE_DIR": str(isolated_state),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    if kind == "standin":
        wrapper = tmp_path / "llama-server"
        wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} {ROOT / 'tests' / 'llama_server_standin.py'} \"$@\"\n")
        wrapper.chmod(0o755)
        env.update(EVALKIT_LLAMA_SERVER=str(wrapper), STANDIN_DELAY_S="0.1")
    else:
        from tests.conftest import skip_unless_embedded_backend

        skip_unless_embedded_backend()
    return tmp_path, env


def _sweep_args(root: Path, executor: str, *extra: str) -> list[str]:
    return ["sweep", "run", str(root / "train" / "checkpoint-*"), "--name", "ft",
            "--eval-file", str(root / "med_a.jsonl"), "--eval-file", str(root / "med_b.jsonl"),
            "--results-dir", str(root / "results"), "--sweep-dir", str(root / f"sweep-{executor}"),
            "--backend", "llamacpp", "--max-new-tokens", "24", "--concurrency", "1", "--server-parallel", "1",
            "--rps", "2",  # 8 requests take 4 s or more, whatever the server: time to cancel a job mid-run
            "--n-ctx", "1024", "--executor", executor, *extra]


def _state(root: Path, executor: str) -> dict:
    return json.loads((root / f"sweep-{executor}" / "sweep.json").read_text())


def _run_dirs(root: Path) -> dict[int, Path]:
    out = {}
    for manifest in (root / "results").glob("ft--*/*/manifest.json"):
        out[json.loads(manifest.read_text())["checkpoint"]["step"]] = manifest.parent
    return out


def _sample_keys(run_dir: Path) -> list[tuple[str, str]]:
    keys = []
    for line in (run_dir / "samples.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            s = json.loads(line)
            keys.append((s["dataset"], s["id"]))
    return keys


def _status(root: Path, executor: str, env: dict) -> dict[int, dict]:
    out = run_evalkit("sweep", "status", str(root / f"sweep-{executor}"), "--json", env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    return {v["step"]: v for v in json.loads(out.stdout)}


def _check_results(root: Path, env: dict, executor: str) -> None:
    """Every (checkpoint, item) once, identities in the manifests, the trend in step order, the gates."""
    runs = _run_dirs(root)
    assert sorted(runs) == list(STEPS)
    for step, run_dir in runs.items():
        keys = _sample_keys(run_dir)
        assert len(keys) == 2 * ITEMS_PER_FILE and len(set(keys)) == len(keys), (step, keys)
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["status"] == "complete"
        ident = manifest["checkpoint"]
        assert ident["path"].endswith(f"checkpoint-{step}") and ident["content_hash"]["sha256"]
        assert manifest["model"] == f"ft/checkpoint-{step}"
    report = run_evalkit("sweep", "report", str(root / f"sweep-{executor}"), "--format", "json", env=env,
                         timeout=300)
    assert report.returncode == 0, report.stderr
    trend = json.loads(report.stdout)
    assert [r["step"] for r in trend["rows"]] == list(STEPS)
    assert trend["datasets"] == ["med_a", "med_b"]
    assert trend["best"]["step"] in STEPS
    for row in trend["rows"]:
        cell = row["scores"]["med_a"]
        assert cell["n"] == ITEMS_PER_FILE and cell["ci_low"] <= cell["mean"] <= cell["ci_high"]
    junit = root / f"gate-{executor}.xml"
    gated = run_evalkit("sweep", "report", str(root / f"sweep-{executor}"), "--baseline", "100", "--junit", str(junit),
                        env=env, timeout=300)
    assert gated.returncode in (0, 1), gated.stdout + gated.stderr
    suites = ET.parse(junit).getroot().findall("testsuite")
    assert [s.get("name") for s in suites] == ["evalkit.sweep.state.step200", "evalkit.sweep.state.step300"]
    failures = sum(int(s.get("failures")) for s in suites)
    assert (gated.returncode == 1) == (failures > 0)
    assert "gate: " in gated.stdout


def _lines(path: Path) -> int:
    try:
        return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    except OSError:
        return 0


@pytest.mark.slurm
def test_sweep_on_slurm_with_a_cancelled_job(slurm_cluster, sweep_env):
    root, env = sweep_env
    env = {**env, **slurm_cluster.env}
    args = _sweep_args(root, "slurm", "--cpus", "1", "--time", "20", "--array-parallelism", "2",
                       "--sbatch", "comment=evalkit-test")
    first = run_evalkit(*args, env=env, timeout=300)
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.count("as slurm job") == 3
    state = _state(root, "slurm")
    job_of = {d["step"]: d["jobs"][-1]["job_id"] for d in state["checkpoints"].values()}
    assert all("_" in j for j in job_of.values())  # one array
    submission = next((root / "sweep-slurm" / "logs").rglob("*_submission.sh")).read_text()
    assert "#SBATCH --array=0-2%2" in submission and "#SBATCH --comment=evalkit-test" in submission

    # Cancel checkpoint-200's job once it has saved a sample but not all of them.
    run_200 = lambda: next(iter((root / "results").glob("ft--checkpoint-200-*/*/samples.jsonl")), None)  # noqa: E731
    wait_for(lambda: run_200() is not None and _lines(run_200()) >= 1, 300, "checkpoint-200 to save a sample",
          poll=0.05)
    assert slurm_cluster.command("scancel", job_of[200]).returncode == 0
    wait_for(lambda: not any(s in ("PENDING", "RUNNING", "COMPLETING") for j, s in slurm_cluster.queue().items()
                          if j in job_of.values()), 300, "the array to end")
    saved_at_cancel = _lines(run_200())
    assert 1 <= saved_at_cancel < 2 * ITEMS_PER_FILE, "the job was not cancelled mid-run"

    status = _status(root, "slurm", env)
    assert status[100]["state"] == "done" and status[300]["state"] == "done"
    assert status[200]["state"] == "failed" and "cancel" in status[200]["detail"], status[200]
    job_status = json.loads(next((root / "sweep-slurm" / "jobs").glob("checkpoint-200-*.json")).read_text())
    assert job_status["state"] == "cancelled" and "SIGTERM" in job_status["error"]
    assert not list(Path(env["EVALKIT_STATE_DIR"]).glob("sweep-ft-*.json")), \
        "the cancelled job left its server recorded (not stopped)"
    human = run_evalkit("sweep", "status", str(root / "sweep-slurm"), env=env, timeout=120)
    assert human.returncode == 0, human.stderr
    assert "2 done, 1 failed" in human.stdout and "SIGTERM received" in human.stdout  # the log's last lines

    again = run_evalkit(*args, "--wait", env=env, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("as slurm job") == 1 and "submitted step 200" in again.stdout
    assert all(v["state"] == "done" for v in _status(root, "slurm", env).values())
    assert len(_state(root, "slurm")["checkpoints"]) == 3
    _check_results(root, env, "slurm")

    third = run_evalkit(*args, env=env, timeout=300)
    assert third.returncode == 0 and "nothing to submit" in third.stdout


def test_sweep_with_the_local_executor(sweep_env):
    root, env = sweep_env
    args = _sweep_args(root, "local", "--local-jobs", "2")
    first = run_evalkit(*args, env=env, timeout=900)
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.count("as local job") == 3
    _check_results(root, env, "local")
    again = run_evalkit(*args, env=env, timeout=300)
    assert again.returncode == 0 and "nothing to submit" in again.stdout


def test_sigterm_stops_a_job_and_its_server_and_the_next_try_resumes(standin_sweep_env):
    """The job body without a scheduler: SIGTERM mid-run (as scancel sends it) ends the job cleanly,
    its server stopped and its samples kept; the next try evaluates only the missing items."""
    import pickle
    import signal
    import subprocess

    from evalkit import api
    from evalkit.sweep.state import Checkpoint, CheckpointJob, SweepSettings

    root, env = standin_sweep_env
    settings = SweepSettings(name="ft", sweep_dir=str(root / "sweep-direct"), results_dir=str(root / "results"),
                             eval_files=[str(root / "med_a.jsonl"), str(root / "med_b.jsonl")],
                             generation={"max_new_tokens": 16}, run={"concurrency": 1, "rps": 2})
    job = CheckpointJob(Checkpoint.at(root / "train" / "checkpoint-200"), settings)
    (root / "job.pkl").write_bytes(pickle.dumps((job, api.evaluate)))  # as submitit carries them: by name
    body = ("import pickle, sys; from evalkit.sweep.jobs import run_checkpoint; "
            "run_checkpoint(*pickle.load(open(sys.argv[1], 'rb')))")
    proc = subprocess.Popen([sys.executable, "-c", body, str(root / "job.pkl")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: _lines(job.run_dir / "samples.jsonl") >= 1, 120, "a saved sample", poll=0.05)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert "SIGTERM received" in out
    saved = _lines(job.run_dir / "samples.jsonl")
    assert 1 <= saved < 2 * ITEMS_PER_FILE
    status = json.loads(job.status_file.read_text())
    assert status["state"] == "cancelled"
    assert json.loads((job.run_dir / "manifest.json").read_text())["status"] == "interrupted"
    assert not list(Path(env["EVALKIT_STATE_DIR"]).glob("*.json")), "the server is still recorded"

    again = subprocess.run([sys.executable, "-c", body, str(root / "job.pkl")], env=env, capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    keys = _sample_keys(job.run_dir)
    assert len(keys) == 2 * ITEMS_PER_FILE == len(set(keys))
    manifest = json.loads((job.run_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["resumed"] == saved


def test_a_job_killed_with_sigkill_takes_its_server_with_it_and_the_next_try_resumes(standin_sweep_env):
    """SIGKILL (a node's OOM killer, kill -9): the job cannot stop its server, so the kernel does (issue 29
    item 7: it used to run on, parent 1, `ready` in `evalkit status`, until a rerun found it). Its record
    and the run directory's lock record stay behind; the next try clears them, takes the lock over and
    completes the run, every item once."""
    import pickle
    import subprocess

    from evalkit import api
    from evalkit.sweep.state import Checkpoint, CheckpointJob, SweepSettings

    root, env = standin_sweep_env
    settings = SweepSettings(name="ft", sweep_dir=str(root / "sweep-direct"), results_dir=str(root / "results"),
                             eval_files=[str(root / "med_a.jsonl"), str(root / "med_b.jsonl")],
                             generation={"max_new_tokens": 16}, run={"concurrency": 1, "rps": 2})
    job = CheckpointJob(Checkpoint.at(root / "train" / "checkpoint-300"), settings)
    (root / "job.pkl").write_bytes(pickle.dumps((job, api.evaluate)))  # as submitit carries them: by name
    body = ("import pickle, sys; from evalkit.sweep.jobs import run_checkpoint; "
            "run_checkpoint(*pickle.load(open(sys.argv[1], 'rb')))")
    proc = subprocess.Popen([sys.executable, "-c", body, str(root / "job.pkl")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _lines(job.run_dir / "samples.jsonl") >= 1, 120, "a saved sample", poll=0.05)
        assert [h for h in api.servers() if h["name"] == job.server_name and h["alive"]]
        proc.kill()
        proc.wait(timeout=30)
        wait_for(lambda: not [h for h in api.servers() if h["name"] == job.server_name and h["alive"]], 15,
              "the killed job's server to end with it")
        assert (job.run_dir / ".evalkit.lock").exists()

        again = subprocess.run([sys.executable, "-c", body, str(root / "job.pkl")], env=env, capture_output=True,
                               text=True, timeout=300)
        assert again.returncode == 0, again.stdout + again.stderr
    finally:
        api.stop(job.server_name)
    keys = _sample_keys(job.run_dir)
    assert len(keys) == 2 * ITEMS_PER_FILE == len(set(keys))
    assert not api.servers()


def test_watch_waits_for_a_checkpoints_files_and_retries_one_that_failed_without_them(standin_sweep_env):
    """Issue 29 item 2: checkpoint-300/ exists but its weights do not yet. Its job fails saying so; a watch
    does not submit it while the folder stays as it is (however quiet), and submits it once the file is
    there."""
    root, env = standin_sweep_env
    (root / "train" / "checkpoint-300" / "model.gguf").unlink()
    first = run_evalkit(*_sweep_args(root, "local"), env=env, timeout=900)
    assert first.returncode == 1, first.stdout + first.stderr
    status = _status(root, "local", env)
    assert status[100]["state"] == status[200]["state"] == "done"
    assert status[300]["state"] == "failed" and status[300]["incomplete"], status[300]
    assert "no .gguf file in it yet" in status[300]["detail"]

    args = [a for a in _sweep_args(root, "local") if a != str(root / "train" / "checkpoint-*")]
    watch = [*args, "--watch", str(root / "train"), "--quiet-s", "0", "--watch-interval", "0.2", "--max-polls", "4"]
    waiting = run_evalkit(*watch, env=env, timeout=300)
    assert "as local job" not in waiting.stdout, waiting.stdout
    assert "waiting for step 300 (checkpoint-300): no .gguf file in it yet" in waiting.stdout

    (root / "train" / "checkpoint-300" / "model.gguf").symlink_to(_gguf())
    arrived = run_evalkit(*watch, env=env, timeout=600)
    assert arrived.returncode == 0, arrived.stdout + arrived.stderr
    assert "submitted step 300" in arrived.stdout and arrived.stdout.count("as local job") == 1
    assert all(v["state"] == "done" for v in _status(root, "local", env).values())
    assert sorted(_run_dirs(root)) == list(STEPS)


def test_watch_submits_each_checkpoint_once_it_is_marked_complete(standin_sweep_env):
    root, env = standin_sweep_env
    for step in (200, 300):
        (root / "train" / f"checkpoint-{step}" / "model.gguf").unlink()  # still being written
    (root / "train" / "checkpoint-100" / "DONE").touch()
    args = [a for a in _sweep_args(root, "local") if a != str(root / "train" / "checkpoint-*")]
    watch = [*args, "--watch", str(root / "train"), "--marker", "DONE", "--watch-interval", "0.2", "--max-polls", "2"]
    first = run_evalkit(*watch, env=env, timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "submitted step 100" in first.stdout and first.stdout.count("as local job") == 1

    (root / "train" / "checkpoint-200" / "model.gguf").symlink_to(_gguf())
    (root / "train" / "checkpoint-200" / "DONE").touch()
    second = run_evalkit(*watch, env=env, timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "submitted step 200" in second.stdout and second.stdout.count("as local job") == 1
    assert sorted(_run_dirs(root)) == [100, 200]


def test_a_suite_sweep_scores_each_checkpoint_with_the_suites_scorer(standin_sweep_env):
    """`evalkit sweep run --suite` builds each checkpoint's run from the suite's tasks: the scorer the
    suite names (IgakuQA's, with its option) is each checkpoint's scorer, as with `evalkit run --suite`."""
    from tests.test_igakuqa import two_section_suite

    root, env = standin_sweep_env
    data, suite = two_section_suite(root / "suite", scorer_options={"igakuqa": {"credited_to_all": "199A3"}})
    args = ["sweep", "run", str(root / "train" / "checkpoint-*"), "--name", "ft", "--suite", str(suite),
            "--data-dir", str(data), "--results-dir", str(root / "results"), "--sweep-dir", str(root / "sweep-suite"),
            "--backend", "llamacpp", "--max-new-tokens", "16", "--concurrency", "2", "--n-ctx", "1024",
            "--executor", "local"]
    first = run_evalkit(*args, env=env, timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    runs = _run_dirs(root)
    assert sorted(runs) == list(STEPS)
    for step, run_dir in runs.items():
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["status"] == "complete", step
        assert manifest["scoring"]["scorers"] == [{"name": "igakuqa", "spec": {"rules": "igakuqa-2",
                                                                                 "credited_to_all": ["199A3"]}}]
        assert manifest["suite"]["name"] == "igakuqa_two" and manifest["prompt"] == "igakuqa_strict"
        assert {d for d, _ in _sample_keys(run_dir)} == {"igakuqa_112_a", "igakuqa_112_b"}
    state = _state(root, "suite")
    assert [t["scorers"] for t in state["settings"]["tasks"]] == [["igakuqa"], ["igakuqa"]]
    again = run_evalkit(*args, env=env, timeout=300)
    assert again.returncode == 0 and "nothing to submit" in again.stdout
    # the trend reads the score the suite's table shows (its table_score), not the multiple-choice verdict
    report = run_evalkit("sweep", "report", str(root / "sweep-suite"), "--format", "json", env=env, timeout=120)
    assert report.returncode == 0, report.stdout + report.stderr
    trend = json.loads(report.stdout)
    assert trend["score"] == "igakuqa"
    assert [row["step"] for row in trend["rows"]] == list(STEPS)  # every checkpoint, not an empty trend
    assert all(set(row["scores"]) == {"igakuqa_112_a", "igakuqa_112_b"} for row in trend["rows"])
    assert all(cell is not None for row in trend["rows"] for cell in row["scores"].values())
    named = run_evalkit("sweep", "report", str(root / "sweep-suite"), "--format", "json", "--score", "correct",
                        env=env, timeout=120)
    assert json.loads(named.stdout)["score"] == "correct"


def test_a_sweep_refuses_a_suite_whose_rows_need_runs_of_their_own(standin_sweep_env):
    """A checkpoint's job makes one run; a suite row with scorers of its own would need a second."""
    from tests.test_igakuqa import two_section_suite

    root, env = standin_sweep_env
    data, suite = two_section_suite(root / "suite")
    doc = json.loads(suite.read_text())
    doc["benchmarks"][1]["scorers"] = ["tests.toy_scorers:ToyScorer"]
    suite.write_text(json.dumps(doc))
    out = run_evalkit("sweep", "run", str(root / "train" / "checkpoint-*"), "--suite", str(suite), "--data-dir",
                      str(data), "--results-dir", str(root / "results"), "--executor", "local", env=env, timeout=120)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "igakuqa_112_b" in out.stderr and "one run per checkpoint" in out.stderr
    assert not (root / "results").exists() or not list((root / "results").glob("ft--*"))
