"""Sweep planning without a server: training steps, checkpoints, the state file, each job's standing,
watch readiness, Slurm settings, and the trend and gates over runs written on disk."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from evalkit.sweep import (Checkpoint, CheckpointJob, SweepError, SweepSettings, SweepState, classify,
                           find_checkpoints, model_file, ready_checkpoints, training_step)
from evalkit.sweep_jobs import SlurmOptions, parse_sbatch_directives, serve_request
from evalkit.sweep_report import resolve_baseline, sweep_gate, sweep_junit, sweep_trend, trend_markdown
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
    (train / "checkpoint-100" / "w.bin").write_bytes(b"123")
    assert ready_checkpoints(train, {}, marker="DONE") == []
    (train / "checkpoint-100" / "DONE").touch()
    assert [c.step for c in ready_checkpoints(train, {}, marker="DONE")] == [100]

    seen: dict = {}
    t = os.stat(train / "checkpoint-100" / "w.bin").st_mtime
    assert ready_checkpoints(train, seen, quiet_s=60, clock=t + 100) == []  # first look: nothing to compare
    assert [c.step for c in ready_checkpoints(train, seen, quiet_s=60, clock=t + 200)] == [100, 200]
    (train / "checkpoint-200" / "more.bin").write_bytes(b"4567")  # still being written
    assert [c.step for c in ready_checkpoints(train, seen, quiet_s=60, clock=t + 300)] == [100]


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


def test_sglang_gets_the_nodes_gpus_as_dp(tmp_path, monkeypatch):
    import evalkit.backends.base as backend_base

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
    assert [s.get("name") for s in root.findall("testsuite")] == ["evalkit.sweep.step100", "evalkit.sweep.step300"]
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


def test_one_sweep_run_at_a_time_per_sweep_folder(tmp_path):
    from evalkit.lock import try_lock_run_dir
    from evalkit.sweep_jobs import SweepLaunch, start_sweep

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
    from evalkit.sweep_report import trend_score

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
