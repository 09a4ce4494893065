"""Sweep planning without a server: training steps, checkpoints, the state file, each job's standing,
watch readiness, Slurm settings, and the trend and gates over runs written on disk."""

from __future__ import annotations

import sys

import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from evalkit.sweep.state import (Checkpoint, CheckpointJob, SweepError, SweepSettings, SweepState, classify,
                           find_checkpoints, model_file, ready_checkpoints, training_step)
from evalkit.sweep.jobs import SlurmOptions, parse_sbatch_directives, serve_request
from evalkit.sweep.report import resolve_baseline, sweep_gate, sweep_junit, sweep_trend, trend_markdown
from tests.runfactory import verdict_samples, write_run


@pytest.mark.parametrize("path, step", [
    ("/out/checkpoint-1200", 1200),                        # HF Trainer
    ("/out/checkpoint-1200/model.safetensors", 1200),
    ("/ds/global_step1200", 1200),                         # DeepSpeed
    ("/mg/iter_0001200", 1200),                            # Megatron (zero-padded)
    ("/nemo/checkpoints/megatron_gpt--step=1200-consumed_samples=9600.0.ckpt", 1200),  # NeMo
    ("/nemo/step=1200", 1200),
    ("/out/final", None),
    ("/out/checkpoint-best", None),
])
def test_training_step_from_framework_names(path, step):
    assert training_step(path) == step


def test_step_from_regex():
    assert training_step("/runs/ep3-s450/model", r"-s(\d+)") == 450
    assert training_step("/runs/ep3-s450", r"ep(?P<step>\d+)") == 3
    assert training_step("/runs/final", r"-s(\d+)") is None
    with pytest.raises(SweepError, match="group"):
        training_step("/runs/ep3", r"ep\d+")
    with pytest.raises(SweepError, match="regular expression"):
        training_step("/runs/ep3", r"ep(")


def _ckpts(tmp_path: Path, steps=(300, 100, 2000, 200)) -> Path:
    for s in steps:
        (tmp_path / "train" / f"checkpoint-{s}").mkdir(parents=True)
    return tmp_path / "train"


def test_find_checkpoints_orders_by_step_and_dedupes(tmp_path):
    train = _ckpts(tmp_path)
    found = find_checkpoints([str(train / "checkpoint-*"), str(train / "checkpoint-100")])
    assert [c.step for c in found] == [100, 200, 300, 2000]  # numeric, not lexical, order
    assert len({c.key for c in found}) == 4


def test_find_checkpoints_errors_name_the_pattern(tmp_path):
    with pytest.raises(SweepError, match="nowhere/checkpoint-1"):
        find_checkpoints([str(tmp_path / "nowhere" / "checkpoint-1")])
    with pytest.raises(SweepError, match="no checkpoint matches"):
        find_checkpoints([str(tmp_path / "x-*")])


def test_model_file_for_llamacpp_is_the_folders_gguf(tmp_path):
    d = tmp_path / "checkpoint-5"
    d.mkdir()
    with pytest.raises(SweepError, match="one .gguf"):
        model_file(str(d), "llamacpp")
    (d / "m.gguf").write_bytes(b"x")
    assert model_file(str(d), "llamacpp") == str(d / "m.gguf")
    assert model_file(str(d), "vllm") == str(d)


def _settings(tmp_path: Path, **kw) -> SweepSettings:
    data = tmp_path / "a.jsonl"
    data.touch()
    return SweepSettings(name="ft", sweep_dir=str(tmp_path / "sweep"), results_dir=str(tmp_path / "results"),
                         eval_files=[str(data)], **kw)


def test_state_round_trip_and_refuses_other_settings(tmp_path):
    state = SweepState.open(_settings(tmp_path))
    new = state.add(find_checkpoints([str(_ckpts(tmp_path) / "checkpoint-*")]))
    assert len(new) == 4
    state.record_submission(new[0].key, executor="slurm", job_id="7_0", log="/l/7_0_0_log.out")
    state.save()
    again = SweepState.open(_settings(tmp_path))
    assert again.add(new) == []  # already recorded: jobs kept
    assert again.last_submission(new[0].key)["job_id"] == "7_0"
    with pytest.raises(SweepError, match="other settings"):
        SweepState.open(_settings(tmp_path, generation={"max_new_tokens": 5}))


def test_jobs_get_their_own_names_and_fixed_run_dirs(tmp_path):
    s = _settings(tmp_path)
    a, b = (CheckpointJob(Checkpoint.at(tmp_path / f"checkpoint-{i}"), s) for i in (1, 2))
    assert a.server_name != b.server_name and a.run_dir != b.run_dir and a.status_file != b.status_file
    assert a.run_dir.parent.parent == Path(s.results_dir)
    assert a.served_model_name == "ft/checkpoint-1"


def _job(tmp_path):
    return CheckpointJob(Checkpoint.at(tmp_path / "checkpoint-1"), _settings(tmp_path))


def test_classify_each_standing(tmp_path):
    job = _job(tmp_path)
    sub = {"executor": "slurm", "job_id": "7_1", "log": "x"}
    assert classify(job, None, None, {}, None).state == "new"
    assert classify(job, sub, None, {}, "complete").state == "done"
    assert classify(job, None, None, {}, "complete").state == "done"  # done elsewhere: never again
    assert classify(job, sub, "PENDING", {}, None).state == "pending"
    assert classify(job, sub, "RUNNING", {"job_id": "7_1", "state": "running"}, "running").state == "running"
    cancelled = classify(job, sub, "CANCELLED", {"job_id": "7_1", "state": "cancelled", "error": "SIGTERM"},
                         "interrupted")
    assert cancelled.state == "failed" and "cancelled" in cancelled.detail and "resumes" in cancelled.detail
    died = classify(job, sub, None, {"job_id": "7_1", "state": "running"}, "running")
    assert died.state == "failed" and "node died" in died.detail
    never = classify(job, sub, None, {"job_id": "6_0", "state": "done"}, None)
    assert never.state == "failed" and "never started" in never.detail
    local = {"executor": "local", "job_id": "123"}
    assert classify(job, local, None, {"job_id": "123", "state": "running"}, None, local_alive=True).state == "running"
    assert [v.needs_submitting for v in (never, died, cancelled)] == [True, True, True]


def test_ready_checkpoints_by_marker_and_by_quiet_files(tmp_path):
    train = _ckpts(tmp_path, steps=(100, 200))
    (train / "logs").mkdir()  # no step in the name: never a checkpoint
    (train / "checkpoint-100" / "w.gguf").write_bytes(b"GGUF123")
    (train / "checkpoint-200" / "w.gguf").write_bytes(b"GGUF")
    assert ready_checkpoints(train, {}, marker="DONE") == []
    (train / "checkpoint-100" / "DONE").touch()
    assert [c.step for c in ready_checkpoints(train, {}, marker="DONE")] == [100]

    seen: dict = {}
    t = os.stat(train / "checkpoint-100" / "w.gguf").st_mtime
    assert ready_checkpoints(train, seen, quiet_s=60, clock=t + 100) == []  # first look: nothing to compare
    assert [c.step for c in ready_checkpoints(train, seen, quiet_s=60, clock=t + 200)] == [100, 200]
    (train / "checkpoint-200" / "more.bin").write_bytes(b"4567")  # still being written
    assert [c.step for c in ready_checkpoints(train, seen, quiet_s=60, clock=t + 300)] == [100]


def test_an_empty_checkpoint_folder_is_not_complete_however_quiet(tmp_path):
    """Issue 29 item 2: the trainer made checkpoint-100/ and is still writing its weights; a folder the
    backend cannot load yet is not complete, however long nothing changed in it, marker or not."""
    from evalkit.sweep.state import checkpoint_readiness

    train = _ckpts(tmp_path, steps=(100,))
    seen: dict = {}
    t = os.stat(train / "checkpoint-100").st_mtime
    for k in range(3):
        assert ready_checkpoints(train, seen, quiet_s=1, clock=t + 100 + k) == []
    (train / "checkpoint-100" / "DONE").touch()  # a marker written before the weights
    assert ready_checkpoints(train, {}, marker="DONE") == []
    ((ck, why),) = checkpoint_readiness(train, {}, backend="llamacpp", marker="DONE")
    assert ck.step == 100 and "no .gguf file" in why
    (train / "checkpoint-100" / "model.gguf").write_bytes(b"GGUF")
    assert [c.step for c in ready_checkpoints(train, {}, marker="DONE")] == [100]
    seen = {}
    t = os.stat(train / "checkpoint-100" / "model.gguf").st_mtime
    ready_checkpoints(train, seen, quiet_s=1, clock=t + 100)
    assert [c.step for c in ready_checkpoints(train, seen, quiet_s=1, clock=t + 101)] == [100]


def test_missing_files_per_backend(tmp_path):
    from evalkit.sweep.state import missing_files

    d = tmp_path / "checkpoint-7"
    d.mkdir()
    (d / "optimizer.pt").write_bytes(b"x")  # a trainer's state, not weights
    (d / "training_args.bin").write_bytes(b"x")
    assert "gguf" in missing_files(d, "llamacpp")
    assert "config.json" in missing_files(d, "vllm")
    (d / "config.json").write_text("{}")
    assert "weight" in missing_files(d, "sglang")
    (d / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    (d / "model-00001-of-00002.safetensors").write_bytes(b"x")
    assert "model-00002-of-00002.safetensors" in missing_files(d, "vllm")
    (d / "model-00002-of-00002.safetensors").write_bytes(b"x")
    assert missing_files(d, "vllm") is None
    (d / "m.gguf").write_bytes(b"")
    assert "empty" in missing_files(d, "llamacpp")
    (d / "m.gguf").write_bytes(b"GGUF")
    assert missing_files(d, "llamacpp") is None and missing_files(d / "m.gguf", "llamacpp") is None


from tests.toy_backend import ToyBackend  # noqa: E402


class _DeclaringBackend(ToyBackend):
    """A backend from outside evalkit that says what a checkpoint of its own needs."""

    def missing_checkpoint_files(self, path):
        return None if (path / "weights.bin").exists() else "no weights.bin yet"


def test_another_backend_declares_what_it_needs(tmp_path, monkeypatch):
    from evalkit.sweep.state import missing_files

    d = tmp_path / "checkpoint-100"
    d.mkdir()
    # The toy backend declares nothing: an existing folder is enough (no HF config asked of it).
    assert missing_files(d, "tests.toy_backend:ToyBackend") is None
    monkeypatch.setattr(sys.modules[__name__], "DECLARING", _DeclaringBackend, raising=False)
    assert missing_files(d, f"{__name__}:DECLARING") == "no weights.bin yet"
    (d / "weights.bin").write_bytes(b"x")
    assert missing_files(d, f"{__name__}:DECLARING") is None


def test_watch_retries_a_checkpoint_that_failed_for_lack_of_files_only(tmp_path):
    """Issue 29 item 2: a job that failed because its checkpoint's files were not there yet is submitted
    again once the checkpoint is complete; a job that failed otherwise waits for `sweep run` again."""
    from evalkit.sweep.jobs import watch_candidates

    s = _settings(tmp_path)
    a, b, c, d = (CheckpointJob(Checkpoint.at(tmp_path / f"checkpoint-{i}"), s) for i in (1, 2, 3, 4))
    sub = {"executor": "local", "job_id": "9"}
    lacking = classify(a, sub, None, {"job_id": "9", "state": "failed", "error": "CheckpointIncomplete: no .gguf",
                                      "missing_files": "checkpoint ...: no .gguf file in it yet"}, None)
    other = classify(b, sub, None, {"job_id": "9", "state": "failed", "error": "ServerError: boom"}, None)
    new = classify(c, None, None, {}, None)
    done = classify(d, sub, None, {}, "complete")
    assert lacking.incomplete and not other.incomplete
    standing = [lacking, other, new, done]
    ready = [v.job.checkpoint for v in standing]
    assert watch_candidates(standing, ready) == {a.checkpoint.key, c.checkpoint.key}
    assert watch_candidates(standing, [b.checkpoint, d.checkpoint]) == set()  # not ready: nothing


def test_a_job_whose_process_is_dead_is_not_running_whatever_the_queue_says(tmp_path):
    """Issue 29 item 7: a job killed with SIGKILL (Slurm may show it COMPLETING, or RUNNING a while) is
    failed, not running, where its process can be seen to be gone."""
    import socket
    import subprocess
    import sys

    from evalkit.core.liveness import proc_start_time
    from evalkit.sweep.state import views

    job = _job(tmp_path)
    sub = {"executor": "slurm", "job_id": "7_1"}
    running = {"job_id": "7_1", "state": "running", "pid": 1, "host": "elsewhere"}
    for queue in ("RUNNING", "COMPLETING"):
        dead = classify(job, sub, queue, running, "running", body_alive=False)
        assert dead.state == "failed" and "gone" in dead.detail and dead.needs_submitting, dead
        assert classify(job, sub, queue, running, "running", body_alive=None).state == "running"

    state = SweepState.open(_settings(tmp_path))
    state.add([job.checkpoint])
    state.record_submission(job.checkpoint.key, executor="slurm", job_id="7_1", log=None)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    start = proc_start_time(proc.pid)
    job.status_file.parent.mkdir(parents=True)
    job.status_file.write_text(json.dumps({**running, "pid": proc.pid, "pid_start": start,
                                           "host": socket.gethostname()}))
    try:
        assert views(state, {"7_1": "RUNNING"})[0].state == "running"
    finally:
        proc.kill()
        proc.wait()
    (view,) = views(state, {"7_1": "RUNNING"})
    assert view.state == "failed" and f"({proc.pid} on " in view.detail


def test_a_sweep_state_file_of_the_wrong_shape_is_named_not_a_traceback(tmp_path):
    """Issue 29 item 12."""
    from click.testing import CliRunner

    from evalkit.cli import main

    state = SweepState.open(_settings(tmp_path))
    state.add([Checkpoint.at(tmp_path / "checkpoint-1")])
    state.save()
    good = json.loads(state.path.read_text())
    cases = [
        ({**good, "settings": ["x"]}, "settings is a list"),
        ({**good, "settings": {**good["settings"], "eval_files": "a.jsonl"}}, "settings.eval_files is a string"),
        ({**good, "settings": {k: v for k, v in good["settings"].items() if k != "name"}}, "settings.name is missing"),
        ({**good, "checkpoints": [1, 2]}, "checkpoints is a list"),
        ({**good, "checkpoints": {"k": {"step": 1}}}, "checkpoints['k'].path is missing"),
        ({**good, "checkpoints": {"k": {"path": "/x", "step": "ten"}}}, "checkpoints['k'].step is a string"),
        ({**good, "checkpoints": {"k": {"path": "/x", "jobs": {"a": 1}}}}, "checkpoints['k'].jobs is not a list"),
        ({**good, "settings": {**good["settings"], "name": "bad name!"}}, "sweep name"),
    ]
    for doc, want in cases:
        state.path.write_text(json.dumps(doc))
        with pytest.raises(SweepError, match=r"sweep\.json: .*" + re.escape(want)):
            SweepState.load(state.settings.sweep_dir)
        for command in ("status", "report"):
            res = CliRunner().invoke(main, ["sweep", command, state.settings.sweep_dir])
            assert res.exit_code == 2 and want in res.stderr and "sweep.json" in res.stderr, (command, want, res.output)
            assert not isinstance(res.exception, (TypeError, AttributeError, KeyError)), res.exception


def test_the_same_checkpoint_through_a_symlinked_folder_is_one_checkpoint(tmp_path):
    """Issue 29 item 12: identity is the real path."""
    train = _ckpts(tmp_path, steps=(100, 200))
    (tmp_path / "train-link").symlink_to(train, target_is_directory=True)
    (tmp_path / "latest").symlink_to(train / "checkpoint-200", target_is_directory=True)
    found = find_checkpoints([str(train / "checkpoint-*"), str(tmp_path / "train-link" / "checkpoint-*"),
                              str(tmp_path / "latest")])
    assert [c.step for c in found] == [100, 200]
    assert Checkpoint.at(tmp_path / "latest").key == Checkpoint.at(train / "checkpoint-200").key
    assert Checkpoint.at(tmp_path / "latest").step == 200  # the step from the real name where the link has none
    state = SweepState.open(_settings(tmp_path))
    assert len(state.add(find_checkpoints([str(train / "checkpoint-*")]))) == 2
    assert state.add(find_checkpoints([str(tmp_path / "train-link" / "checkpoint-*")])) == []
    # a sweep recorded by an earlier evalkit under the link's path: still the same checkpoint
    (tmp_path / "old").mkdir()
    old = SweepState.open(_settings(tmp_path / "old"))
    old.checkpoints["checkpoint-100-old"] = {"path": str(tmp_path / "train-link" / "checkpoint-100"), "step": 100,
                                             "jobs": []}
    assert [c.step for c in old.add(find_checkpoints([str(train / "checkpoint-*")]))] == [200]


def test_sbatch_directives_and_slurm_parameters():
    assert parse_sbatch_directives(["exclusive", "--gres=gpu:8", "#SBATCH --mail-type=END"]) == \
        {"exclusive": True, "gres": "gpu:8", "mail-type": "END"}
    with pytest.raises(SweepError, match="KEY=VALUE"):
        parse_sbatch_directives(["two words"])
    params = SlurmOptions(partition="gpu", gpus_per_node=8, cpus_per_task=64, mem="500G", time_min=120,
                          array_parallelism=4, sbatch=["exclusive"]).parameters("evalkit-sweep-x")
    assert params == {"job_name": "evalkit-sweep-x", "time": 120, "partition": "gpu", "gpus_per_node": 8,
                      "cpus_per_task": 64, "mem": "500G", "array_parallelism": 4,
                      "additional_parameters": {"exclusive": True}}


def test_a_folder_of_several_gguf_files_is_reported_before_a_job_starts(tmp_path):
    """model_file refuses a folder holding more than one .gguf (which one to serve?); missing_files says
    so up front: a watch waits with that reason instead of submitting a job that fails, and a job stops
    before serving, as one whose files are missing (a watch submits it again once one file is left)."""
    from evalkit.sweep.jobs import CheckpointIncomplete, run_checkpoint
    from evalkit.sweep.state import checkpoint_readiness, missing_files, read_job_status

    d = tmp_path / "train" / "checkpoint-100"
    d.mkdir(parents=True)
    for name in ("a.gguf", "b.gguf", "DONE"):
        (d / name).write_bytes(b"GGUF")
    reason = missing_files(d, "llamacpp")
    assert reason == "the llamacpp backend needs one .gguf file in it, found 2"
    assert missing_files(d, "vllm") is not None and missing_files(d / "a.gguf", "llamacpp") is None
    (_, why), = checkpoint_readiness(tmp_path / "train", {}, backend="llamacpp", marker="DONE")
    assert why == reason

    job = CheckpointJob(Checkpoint.at(d), _settings(tmp_path, backend="llamacpp"))
    with pytest.raises(CheckpointIncomplete, match="found 2"):
        run_checkpoint(job, lambda *a, **k: pytest.fail("evaluated a checkpoint it cannot serve"))
    status = read_job_status(job)
    assert status["state"] == "failed" and "found 2" in status["missing_files"]
    (d / "b.gguf").unlink()
    assert missing_files(d, "llamacpp") is None
    assert [c.step for c in ready_checkpoints(tmp_path / "train", {}, marker="DONE", backend="llamacpp")] == [100]


def test_a_job_evaluates_with_the_callable_it_is_handed(tmp_path):
    """The sweep layer never imports the API: the job serves its checkpoint (here with a backend from
    outside evalkit), hands the server to the evaluation it was given, and stops the server."""
    from types import SimpleNamespace

    from evalkit.serving.state import load_state
    from evalkit.sweep.jobs import run_checkpoint
    from evalkit.sweep.state import read_job_status

    (tmp_path / "checkpoint-5").mkdir()
    job = CheckpointJob(Checkpoint.at(tmp_path / "checkpoint-5"),
                        _settings(tmp_path, backend="tests.toy_backend:ToyBackend", suite={"name": "s"}))
    calls = []

    def evaluate(tasks, *, server, suite, **settings):
        calls.append((tasks, server, suite, settings, load_state(job.server_name)))
        return SimpleNamespace(runs=[SimpleNamespace(run_dir=job.run_dir, complete=True)])

    out = run_checkpoint(job, evaluate)
    assert out == {"key": job.checkpoint.key, "run_dir": str(job.run_dir), "complete": True}
    (tasks, server, suite, settings, recorded), = calls
    assert [t.data for t in tasks] == job.settings.eval_files and suite == {"name": "s"}
    assert recorded is not None and server.name == job.server_name == recorded.name  # served while evaluating
    assert settings["run_name"] == job.run_name and settings["checkpoint"]["path"] == job.checkpoint.path
    assert load_state(job.server_name) is None  # stopped afterwards
    assert read_job_status(job)["state"] == "done"


def test_the_api_hands_its_evaluate_to_the_sweeps_jobs(tmp_path, monkeypatch):
    """api.sweep.run / api.sweep.watch put api.evaluate in the launch (unless it names another); it
    pickles by name, as submitit carries a job's arguments to a node. A launch without one is refused."""
    import pickle

    from evalkit import api
    from evalkit.sweep import jobs

    seen = []
    monkeypatch.setattr(jobs, "start_sweep", lambda settings, patterns, launch, **kw: seen.append(launch) or [])
    monkeypatch.setattr(jobs, "watch_sweep", lambda settings, folder, launch, **kw: seen.append(launch) or [])

    def mine(*args, **kwargs):
        return None

    api.sweep.run(None, [])
    api.sweep.watch(None, "folder", jobs.SweepLaunch(executor="local"))
    api.sweep.run(None, [], jobs.SweepLaunch(evaluate=mine))
    assert [launch.evaluate for launch in seen] == [api.evaluate, api.evaluate, mine]
    assert seen[1].executor == "local"
    job = CheckpointJob(Checkpoint.at(tmp_path / "checkpoint-1"), _settings(tmp_path))
    assert pickle.loads(pickle.dumps((job, seen[0].evaluate))) == (job, api.evaluate)

    state = SweepState.open(_settings(tmp_path))
    state.add(find_checkpoints([str(_ckpts(tmp_path, steps=(1,)) / "checkpoint-*")]))
    with pytest.raises(SweepError, match="need the evaluation they run"):
        jobs.submit_pending(state, jobs.SweepLaunch(executor="local"))


def test_a_slurm_job_array_carries_the_evaluation_to_the_node(tmp_path, monkeypatch):
    """What submitit writes for each job of the array (a DelayedSubmission, cloudpickled) holds the job and
    api.evaluate, which a node's Python loads back by name (no Slurm here: the executor is stood in for)."""
    submitit = pytest.importorskip("submitit")
    from submitit.core.utils import DelayedSubmission

    from evalkit import api
    from evalkit.sweep import jobs

    written = []

    class Executor:
        def __init__(self, folder):
            self.folder = Path(str(folder).replace("%j", "0"))

        def update_parameters(self, **params):
            pass

        def map_array(self, fn, *iterables):
            out = []
            for i, args in enumerate(zip(*iterables)):
                path = tmp_path / f"job{i}.pkl"
                DelayedSubmission(fn, *args).dump(path)
                written.append(path)
                out.append(type("Job", (), {"job_id": f"7_{i}", "paths": type("P", (), {"stdout": "log"})})())
            return out

    monkeypatch.setattr(submitit, "SlurmExecutor", Executor)
    monkeypatch.setattr(jobs.shutil, "which", lambda name: "/usr/bin/" + name)
    settings = _settings(tmp_path)
    todo = [CheckpointJob(Checkpoint.at(tmp_path / f"checkpoint-{i}"), settings) for i in (1, 2)]
    ids = jobs.submit_slurm(todo, settings, SlurmOptions(), lambda *a: None, api.evaluate)
    assert ids == ["7_0", "7_1"]
    loaded = [DelayedSubmission.load(path) for path in written]
    assert [(d.function, d.args) for d in loaded] == [(jobs.run_checkpoint, (job, api.evaluate)) for job in todo]


def test_sglang_gets_the_nodes_gpus_as_dp(tmp_path, monkeypatch):
    import evalkit.serving.backends.base as backend_base

    monkeypatch.setattr(backend_base, "cuda_gpus_visible", lambda: 8)
    job = CheckpointJob(Checkpoint.at(tmp_path / "checkpoint-1"), _settings(tmp_path, backend="sglang"))
    req = serve_request(job, 31000)
    assert (req.dp, req.port, req.name, req.backend) == (8, 31000, job.server_name, "sglang")
    pinned = CheckpointJob(job.checkpoint, _settings(tmp_path, backend="sglang", serve={"dp": 2}))
    assert serve_request(pinned, 31000).dp == 2


def _written_sweep(tmp_path: Path, verdicts: dict[int, list[bool]]) -> SweepState:
    """A sweep whose checkpoints' runs are written on disk (as the jobs would have)."""
    state = SweepState.open(_settings(tmp_path))
    state.add(Checkpoint.at(tmp_path / "train" / f"checkpoint-{s}") for s in verdicts)
    for job in state.jobs():
        v = verdicts[job.checkpoint.step]
        samples = verdict_samples("medqa", v) + verdict_samples("pubmedqa", v)
        write_run(Path(job.settings.results_dir), job.run_name, samples, task=job.task_folder,
                  extra_manifest={"status": "complete", "checkpoint": job.identity()})
    state.save()
    return state


def test_trend_in_step_order_with_best_step_and_gate(tmp_path):
    good = [True] * 40
    state = _written_sweep(tmp_path, {300: [i % 2 == 0 for i in range(40)], 100: [i % 8 != 0 for i in range(40)],
                                      200: good})
    trend = sweep_trend(state)
    assert [r.job.checkpoint.step for r in trend.rows] == [100, 200, 300]
    assert trend.datasets == ["medqa", "pubmedqa"]
    assert trend.best.job.checkpoint.step == 200 and trend.best.average == 1.0
    assert [round(r.average, 2) for r in trend.rows] == [0.88, 1.0, 0.5]
    assert "200 (best)" in trend_markdown(trend)

    gate = sweep_gate(state, "200")
    assert [j.checkpoint.step for j in gate.regressed] == [300]  # 5 of 40 lost at step 100: not significant
    assert gate.exit_code == 1
    root = ET.fromstring(sweep_junit(gate).split("\n", 1)[1])
    assert [s.get("name") for s in root.findall("testsuite")] == ["evalkit.sweep.state.step100", "evalkit.sweep.state.step300"]
    assert root.get("failures") == "2"  # both datasets regressed at step 300

    assert sweep_gate(state, "100", max_drop=1.0).exit_code == 1  # step 300 fell below step 100
    assert sweep_gate(state, "300").exit_code == 0
    with pytest.raises(SweepError, match="neither"):
        resolve_baseline(state, "/nowhere")
    assert resolve_baseline(state, str(state.jobs()[0].run_dir)) == state.jobs()[0].run_dir


def test_trend_keeps_a_checkpoint_without_run(tmp_path):
    state = _written_sweep(tmp_path, {100: [True, False]})
    state.add([Checkpoint.at(tmp_path / "train" / "checkpoint-50")])
    trend = sweep_trend(state)
    assert [(r.job.checkpoint.step, r.run_status) for r in trend.rows] == [(50, None), (100, "complete")]
    assert trend.rows[0].average is None and trend.best.job.checkpoint.step == 100
    assert json.loads(json.dumps(trend.to_dict()))["best"]["step"] == 100


def _partial_sweep(tmp_path: Path) -> SweepState:
    """Steps 100 and 200 complete, step 300's run still going (4 of its items saved)."""
    state = _written_sweep(tmp_path, {100: [True, False] * 4, 200: [True] * 8})
    state.add([Checkpoint.at(tmp_path / "train" / "checkpoint-300")])
    job = next(j for j in state.jobs() if j.checkpoint.step == 300)
    samples = verdict_samples("medqa", [True] * 4) + verdict_samples("pubmedqa", [True] * 4)
    write_run(Path(job.settings.results_dir), job.run_name, samples, task=job.task_folder,
              extra_manifest={"status": "running", "checkpoint": job.identity()})
    state.save()
    return state


def test_a_partial_run_is_marked_in_every_format(tmp_path):
    """Issue 29 item 8: a checkpoint whose run is still going is not shown like a complete one."""
    from click.testing import CliRunner

    from evalkit.cli import main

    state = _partial_sweep(tmp_path)
    trend = sweep_trend(state)
    assert [r.partial for r in trend.rows] == [False, False, True]
    md = trend_markdown(trend).splitlines()
    assert md[0].endswith("| run |")
    row300 = next(line for line in md if "checkpoint-300" in line)
    assert "300 (partial)" in row300 and "PARTIAL (running)" in row300
    assert "PARTIAL (" not in next(line for line in md if "checkpoint-100" in line)
    assert any(line.startswith("PARTIAL: step 300") for line in md)
    doc = json.loads(CliRunner().invoke(main, ["sweep", "report", state.settings.sweep_dir, "--format", "json"]).stdout)
    assert [r["partial"] for r in doc["rows"]] == [False, False, True]
    table = CliRunner().invoke(main, ["sweep", "report", state.settings.sweep_dir])
    assert table.exit_code == 0 and "PARTIAL (running)" in table.stdout and "PARTIAL: step 300" in table.stdout
    assert "best step: 200" in table.stdout  # 300 scores 100% so far: a partial run is never the best
    gated = CliRunner().invoke(main, ["sweep", "report", state.settings.sweep_dir, "--baseline", "100"])
    assert "gate: PASS (step 300 not gated: the run is not complete)" in gated.stdout, gated.output


def test_the_trend_page_marks_partial_runs(tmp_path):
    """Issue 29 item 8: the trend page's points of a run still going are hollow and flagged, and the
    page says a gate involving it is provisional (the browser test checks the verdict line)."""
    from evalkit import api
    from evalkit.sweep.report import trend_points

    state = _partial_sweep(tmp_path)
    points, _ = trend_points(sweep_trend(state))
    assert {p.step for p in points if p.partial == "running"} == {300}
    assert all(p.partial is None for p in points if p.step != 300)
    page, _ = api.sweep.trend_page(sweep_trend(state))
    assert page.count('data-partial="running"') == 2  # its two benchmarks' points
    assert 'id="trend-partial"' in page and "step 300 (running)" in page and "PROVISIONAL" in page


def test_a_best_checkpoint_without_a_step_is_said_plainly(tmp_path):
    """Issue 29 item 12: not "best step: None"."""
    from click.testing import CliRunner

    from evalkit.cli import main

    state = _written_sweep(tmp_path, {100: [True, False]})
    state.add([Checkpoint.at(tmp_path / "train" / "final")])
    job = next(j for j in state.jobs() if j.checkpoint.step is None)
    write_run(Path(job.settings.results_dir), job.run_name,
              verdict_samples("medqa", [True, True]) + verdict_samples("pubmedqa", [True, True]),
              task=job.task_folder, extra_manifest={"status": "complete", "checkpoint": job.identity()})
    state.save()
    res = CliRunner().invoke(main, ["sweep", "report", state.settings.sweep_dir])
    assert res.exit_code == 0, res.output
    assert "None" not in res.stdout
    assert "best checkpoint: final (no training step in its path)" in res.stdout
    md = CliRunner().invoke(main, ["sweep", "report", state.settings.sweep_dir, "--format", "markdown"]).stdout
    assert "None" not in md and "| - (best) | final |" in md
    gated = CliRunner().invoke(main, ["sweep", "report", state.settings.sweep_dir, "--baseline", "100"])
    assert "None" not in gated.stdout


def test_the_hint_line_is_shell_quoted(tmp_path, monkeypatch):
    """Issue 29 item 12: pasting the hint runs `evalkit sweep status` on the folder, nothing else."""
    import shlex

    from click.testing import CliRunner

    from evalkit import api
    from evalkit.cli import main

    monkeypatch.setattr(api.sweep, "run", lambda *a, **k: [])
    data = tmp_path / "a.jsonl"
    data.touch()
    _ckpts(tmp_path, steps=(1,))
    sweep_dir = str(tmp_path / "s $(touch PWNED); echo 'x'")
    res = CliRunner().invoke(main, ["sweep", "run", str(tmp_path / "train" / "checkpoint-1"), "--eval-file", str(data),
                                    "--results-dir", str(tmp_path / "r"), "--sweep-dir", sweep_dir])
    assert res.exit_code == 0, res.output
    hint = re.search(r"`(evalkit sweep status .*)` shows the jobs", res.stdout).group(1)
    assert shlex.split(hint) == ["evalkit", "sweep", "status", sweep_dir]


def test_one_sweep_run_at_a_time_per_sweep_folder(tmp_path):
    from evalkit.core.lock import try_lock_run_dir
    from evalkit.sweep.jobs import SweepLaunch, start_sweep

    settings = _settings(tmp_path)
    train = _ckpts(tmp_path, steps=(1,))
    Path(settings.sweep_dir).mkdir(parents=True)
    with try_lock_run_dir(settings.sweep_dir):  # another `evalkit sweep run` submitting
        with pytest.raises(SweepError, match="in use by another `evalkit sweep run`"):
            start_sweep(settings, [str(train / "checkpoint-*")], SweepLaunch(executor="local"))
    assert not (Path(settings.sweep_dir) / "sweep.json").exists()  # nothing written by the refused one


def test_a_suite_sweep_without_a_table_score_reads_its_runs_primary_score(tmp_path):
    """As the report's suite table does (suites.primary_score): the first score the run's manifest
    records a metric for, not the multiple-choice verdict a judge-scored suite's runs do not have."""
    from evalkit.sweep.report import trend_score

    suite = {"name": "lf", "title": "long form", "benchmarks": [{"name": "medqa", "column": "MedQA"}]}
    state = SweepState.open(_settings(tmp_path, suite=suite))
    assert trend_score(state) == "correct"  # no run yet
    state.add([Checkpoint.at(tmp_path / "train" / "checkpoint-100")])
    (job,) = state.jobs()
    write_run(Path(job.settings.results_dir), job.run_name, verdict_samples("medqa", [True]), task=job.task_folder,
              extra_manifest={"status": "complete", "checkpoint": job.identity(),
                              "scoring": {"metrics": {"grade": {"name": "mean"}, "correct": {"name": "proportion"}}}})
    assert trend_score(state) == "grade"
    assert trend_score(state, "correct") == "correct"
    for sub in ("named", "files"):
        (tmp_path / sub).mkdir()
    named = SweepState.open(_settings(tmp_path / "named", suite={**suite, "score": "igakuqa"}))
    assert trend_score(named) == "igakuqa"
    assert trend_score(SweepState.open(_settings(tmp_path / "files"))) == "correct"


_TIED_PARENT = """
import os, signal, sys, time
from pathlib import Path
from evalkit.serving.launch import LaunchSpec, launch, tied_to_this_process

def start(name):
    spec = LaunchSpec(role="server", command=[sys.executable, "-c", "import time; time.sleep(120)"],
                      host="127.0.0.1", port=9, log_path=Path(sys.argv[1]) / (name + ".log"),
                      ready=lambda *a: True)
    return launch([spec], name=name, backend="test", model="m")

with tied_to_this_process():
    tied = start("tied")
free = start("free")
print(tied.pid, free.pid, flush=True)
time.sleep(120)
"""


def test_a_server_started_tied_dies_with_the_process_that_started_it(tmp_path, isolated_state):
    """Issue 29 item 7: a sweep job killed with SIGKILL takes its server with it (the kernel's
    parent-death signal); a server started otherwise (``evalkit serve``'s) outlives its starter."""
    import signal
    import subprocess
    import sys
    import time

    from evalkit.core.liveness import process_alive
    from tests.conftest import ROOT

    env = {**os.environ, "EVALKIT_STATE_DIR": str(isolated_state),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    parent = subprocess.Popen([sys.executable, "-c", _TIED_PARENT, str(tmp_path)], env=env, stdout=subprocess.PIPE,
                              text=True)
    tied = free = None
    try:
        tied, free = (int(x) for x in parent.stdout.readline().split())
        assert process_alive(tied) and process_alive(free)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=30)
        deadline = time.monotonic() + 10
        while process_alive(tied) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not process_alive(tied), "the tied server outlived the process that started it"
        assert process_alive(free), "a server not tied must outlive its starter (evalkit serve)"
    finally:
        if parent.poll() is None:
            parent.kill()
        for pid in (tied, free):
            if pid and process_alive(pid):
                os.kill(pid, signal.SIGKILL)
