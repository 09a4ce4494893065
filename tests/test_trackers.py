"""evalkit export / --log-to: figures sent to real local trackers and read back with the trackers' own readers.

MLflow: a SQLite store in tmp, and a local `mlflow server` process (127.0.0.1, stopped by its process
group), read back with MlflowClient. W&B: offline mode (WANDB_MODE=offline, WANDB_DIR in tmp), read back
with W&B's own reader of the run's .wandb files (`wandb leet inspect --json`). No network.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from evalkit.cli import main
from evalkit.sweep.state import Checkpoint, SweepSettings, SweepState
from tests.runfactory import verdict_samples, write_run

ROOT = Path(__file__).resolve().parent.parent
import mlflow  # noqa: E402,F401  (the extras `make test` installs: missing, this file fails, never skips)
import wandb  # noqa: E402,F401

MEDQA = [True, False, True, True, False, True, True, True]
PUBMEDQA = [True, True, False, True]


def _run(root: Path, name: str = "r1", **manifest) -> Path:
    samples = verdict_samples("medqa", MEDQA) + verdict_samples("pubmedqa", PUBMEDQA)
    return write_run(root, name, samples, extra_manifest={"status": "complete", "evalkit_version": "0.0-test",
                                                           "generation": {"temperature": 0, "max_new_tokens": 64},
                                                           **manifest})


def _sweep(tmp_path: Path, steps=(100, 200, 300)) -> Path:
    """A sweep whose checkpoints' runs are on disk, as its jobs write them (as tests/test_sweep.py makes them)."""
    data = tmp_path / "a.jsonl"
    data.touch()
    settings = SweepSettings(name="ft", sweep_dir=str(tmp_path / "sweep"), results_dir=str(tmp_path / "results"),
                             eval_files=[str(data)])
    try:
        state = SweepState.load(settings.sweep_dir)
    except ValueError:
        state = SweepState.open(settings)
    state.add(Checkpoint.at(tmp_path / "train" / f"checkpoint-{s}") for s in steps)
    for job in state.jobs():
        k = job.checkpoint.step // 100
        if not job.run_dir.exists():
            write_run(Path(settings.results_dir), job.run_name,
                      verdict_samples("medqa", [i % (k + 1) != 0 for i in range(12)]),
                      task=job.task_folder, extra_manifest={"status": "complete", "checkpoint": job.identity(
                          {"sha256": f"hash{job.checkpoint.step}"})})
    state.save()
    return Path(settings.sweep_dir)


def _export(*args: str, env: dict | None = None):
    result = CliRunner().invoke(main, ["export", *args], env=env, catch_exceptions=False)
    return result


# ---------------------------------------------------------------- the figures (pure)


def test_the_figures_are_the_reports_cells_named_for_grouping(tmp_path):
    from evalkit import api
    from evalkit.results.trackers.figures import plan_run

    run = _run(tmp_path)
    plan = plan_run(run)
    by_key = {p.key: p for p in plan.points}
    rows = {r.dataset: r for r in api.report([run]).rows}
    cell = rows["medqa"].scores["correct"]
    assert by_key["eval/medqa/accuracy"].value == cell.mean == 6 / 8
    assert (by_key["eval/medqa/accuracy_ci_low"].value, by_key["eval/medqa/accuracy_ci_high"].value) == \
        (cell.ci_low, cell.ci_high)
    assert by_key["eval/medqa/accuracy_n"].value == 8 and by_key["eval/pubmedqa/accuracy_n"].value == 4
    assert {p.step for p in plan.points} == {0}
    assert plan.params["model"] == "test-model" and plan.params["generation.max_new_tokens"] == "64"
    assert plan.params["evalkit_version"] == "0.0-test"
    assert set(plan.runs[0].files()) == {"manifest.json", "summary.json", "report.md"}
    assert "medqa" in plan.runs[0].report_markdown
    assert plan_run(run, step=1200).points[0].step == 1200


def test_an_unfinished_run_is_not_sent_and_says_so(tmp_path):
    from evalkit.results.trackers.figures import plan_run

    plan = plan_run(_run(tmp_path, status="interrupted"))
    assert plan.runs == [] and "interrupted" in plan.notes[0]


def test_a_sweeps_checkpoints_are_at_their_steps_with_their_identity(tmp_path):
    from evalkit.sweep.track import plan_sweep

    plan = plan_sweep(_sweep(tmp_path))
    assert sorted({p.step for p in plan.points}) == [100, 200, 300]
    assert [r.label for r in plan.runs] == ["step_100", "step_200", "step_300"]
    assert plan.params["step_200.checkpoint.sha256"] == "hash200" and plan.params["sweep"] == "ft"
    assert "trend.json" in plan.extra_files


def test_without_the_package_the_option_names_the_extra(tmp_path, monkeypatch):
    from evalkit.results.trackers import base

    monkeypatch.setitem(base.PACKAGES, "mlflow", "evalkit_no_such_module")
    result = CliRunner().invoke(main, ["export", str(_run(tmp_path)), "--to", "mlflow"])
    assert result.exit_code == 2 and "pip install 'evalkit[mlflow]'" in result.output
    result = CliRunner().invoke(main, ["run", "--eval-file", "x.jsonl", "--log-to", "mlflow"])
    assert result.exit_code == 2 and "pip install 'evalkit[mlflow]'" in result.output  # before anything runs
    assert "not a tracker" in CliRunner().invoke(main, ["export", str(tmp_path), "--to", "neptune"]).output


# ---------------------------------------------------------------- MLflow


@pytest.fixture
def mlflow_sqlite(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)  # MLflow's local artifact store lands here
    return uri


def _history(client, run_id: str) -> dict[str, list[tuple[int, float]]]:
    run = client.get_run(run_id)
    return {k: sorted((m.step, m.value) for m in client.get_metric_history(run_id, k)) for k in run.data.metrics}


def test_mlflow_run_exported_twice_holds_each_point_once(tmp_path, mlflow_sqlite):
    from mlflow.tracking import MlflowClient

    run = _run(tmp_path / "results")
    first = _export(str(run), "--to", "mlflow:evals", "--log-samples")
    assert first.exit_code == 0, first.output
    assert "8 points sent, 0 already there" in first.output  # 2 datasets x (value, ci_low, ci_high, n)
    again = _export(str(run), "--to", "mlflow:evals", "--log-samples")
    assert "0 points sent, 8 already there" in again.output

    client = MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name("evals").experiment_id])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    history = _history(client, runs[0].info.run_id)
    assert history["eval/medqa/accuracy"] == [(0, 0.75)] and history["eval/pubmedqa/accuracy_n"] == [(0, 4.0)]
    assert len(history) == 8
    params = runs[0].data.params
    assert params["model"] == "test-model" and params["generation.temperature"] == "0"
    files = {f.path for f in client.list_artifacts(runs[0].info.run_id, "evalkit")}
    assert files == {"evalkit/manifest.json", "evalkit/summary.json", "evalkit/report.md", "evalkit/samples.json"}
    table = json.loads(Path(client.download_artifacts(runs[0].info.run_id, "evalkit/samples.json", str(tmp_path)))
                       .read_text())
    assert len(table["data"]) == 12 and "score:correct" in table["columns"]  # not appended twice


def test_mlflow_sweep_exported_twice_then_resumed_adds_only_new_checkpoints(tmp_path, mlflow_sqlite):
    from mlflow.tracking import MlflowClient

    sweep = _sweep(tmp_path)
    for _ in range(2):
        assert _export(str(sweep), "--to", "mlflow:ft").exit_code == 0
    client = MlflowClient()
    (tracked,) = client.search_runs([client.get_experiment_by_name("ft").experiment_id])
    history = _history(client, tracked.info.run_id)
    assert all(len(points) == 3 for points in history.values()) and len(history) == 4
    assert [s for s, _ in history["eval/medqa/accuracy"]] == [100, 200, 300]
    assert history["eval/medqa/accuracy"][0][1] == 6 / 12  # step 100: every other item right

    _sweep(tmp_path, steps=(100, 200, 300, 400))  # the sweep resumed: one more checkpoint finished
    out = _export(str(sweep), "--to", "mlflow:ft").output
    assert "4 points sent, 12 already there" in out
    history = _history(client, tracked.info.run_id)
    assert [s for s, _ in history["eval/medqa/accuracy"]] == [100, 200, 300, 400]
    assert tracked.data.params["step_300.checkpoint.sha256"] == "hash300"
    names = {f.path for f in client.list_artifacts(tracked.info.run_id, "evalkit")}
    assert {"evalkit/trend.json", "evalkit/step_100", "evalkit/step_400"} <= names


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path):
    """A local `mlflow server` (SQLite store, artifacts served from tmp), stopped by its process group."""
    port = _free_port()
    log = open(tmp_path / "mlflow-server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                             "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
                             "--artifacts-destination", str(tmp_path / "served-artifacts"), "--workers", "1"],
                            cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        import urllib.request

        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError("mlflow server did not start:\n" +
                                       (tmp_path / "mlflow-server.log").read_text()[-3000:])
                time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_mlflow_server_eval_curves_sit_in_the_training_run(tmp_path, mlflow_server, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    client = MlflowClient()
    training = client.create_run(client.create_experiment("training"), run_name="sft")
    for step in (100, 200, 300):
        client.log_metric(training.info.run_id, "train/loss", 1.0 / step, step=step)
    sweep = _sweep(tmp_path)
    for _ in range(2):
        result = _export(str(sweep), "--to", "mlflow", "--tracker-run-id", training.info.run_id, "--log-samples")
        assert result.exit_code == 0, result.output
    history = _history(client, training.info.run_id)
    assert [s for s, _ in history["train/loss"]] == [100, 200, 300]
    assert [s for s, _ in history["eval/medqa/accuracy"]] == [100, 200, 300]
    assert all(len(v) == 3 for v in history.values())
    assert client.get_run(training.info.run_id).info.status == "RUNNING"  # the training run is left as it was
    assert client.get_run(training.info.run_id).data.params["sweep"] == "ft"
    names = {f.path for f in client.list_artifacts(training.info.run_id, "evalkit/step_200")}
    assert names == {f"evalkit/step_200/{n}" for n in ("manifest.json", "summary.json", "report.md", "samples.json")}
    assert list((tmp_path / "served-artifacts").rglob("report.md"))  # the server stored them


# ---------------------------------------------------------------- W&B (offline)


@pytest.fixture
def wandb_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wb"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    (tmp_path / "wb").mkdir()
    wandb.teardown()  # W&B reads its environment once per process; each test's export is a fresh command's
    yield tmp_path / "wb"
    wandb.teardown()


def wandb_records(wandb_dir: Path, run_id: str) -> list[dict]:
    """Every record of every .wandb file of RUN_ID (a resumed offline run writes a file per resume), read by
    W&B's own reader of its transaction log."""
    records = []
    for f in sorted(wandb_dir.glob(f"wandb/offline-run-*-{run_id}/run-{run_id}.wandb")):
        out = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(f)],
                             capture_output=True, text=True, check=True, timeout=120).stdout
        records += [json.loads(line) for line in out.splitlines() if line.strip()]
    return records


def test_wandb_offline_sweep_exported_twice_leaves_three_points_per_metric(tmp_path, wandb_offline, monkeypatch):
    secret = "evalkit-test-key-" + "x" * 24
    monkeypatch.setenv("WANDB_API_KEY", secret)  # W&B's own variable: evalkit never writes it
    sweep = _sweep(tmp_path)
    outputs = [_export(str(sweep), "--to", "wandb:evals", "--log-samples").output for _ in range(2)]
    assert "12 points sent, 0 already there" in outputs[0] and "0 points sent, 12 already there" in outputs[1]
    run_id = re.search(r"run (\S+) ", outputs[0]).group(1)
    records = wandb_records(wandb_offline, run_id)
    assert len({r.get("run", {}).get("run_id") for r in records if r["type"] == "run"}) == 1
    rows = [r["history"]["item"] for r in records if r["type"] == "history"]
    curve = [(row["train/global_step"], row["eval/medqa/accuracy"]) for row in rows if "eval/medqa/accuracy" in row]
    assert curve == [(100, 0.5), (200, 8 / 12), (300, 9 / 12)]
    for key in ("eval/medqa/accuracy_ci_low", "eval/medqa/accuracy_ci_high", "eval/medqa/accuracy_n"):
        assert len([row for row in rows if key in row]) == 3
    metric = [r["metric"] for r in records if r["type"] == "metric"]
    assert {"glob_name": "eval/*", "step_metric": "train/global_step"}.items() <= metric[0].items()
    config = [r["run"]["config"]["update"] for r in records if r["type"] == "run"][0]
    configs = [json.dumps(r) for r in records if r["type"] in ("run", "config")]
    assert any('"step_300.checkpoint.sha256": "hash300"' in c for c in configs), config
    artifacts = [r["artifact"] for r in records if r["type"] == "artifact" and r["artifact"]["type"] == "evaluation"]
    assert len(artifacts) == 4  # one per checkpoint and the trend, sent once
    tables = [k for row in rows for k in row if k.startswith("eval_samples/") and k.endswith("._type")]
    assert sorted(tables) == [f"eval_samples/step_{s}._type" for s in (100, 200, 300)]

    assert not [p for p in (*sweep.rglob("*"), *(tmp_path / "results").rglob("*"))
                if p.is_file() and secret in p.read_text(errors="replace")]

    _sweep(tmp_path, steps=(100, 200, 300, 400))
    out = _export(str(sweep), "--to", "wandb:evals").output
    assert "4 points sent, 12 already there" in out
    rows = [r["history"]["item"] for r in wandb_records(wandb_offline, run_id) if r["type"] == "history"]
    assert [row["train/global_step"] for row in rows if "eval/medqa/accuracy" in row] == [100, 200, 300, 400]


def test_run_and_sweep_take_the_tracker_options():
    for command in (["run"], ["sweep", "run"]):
        text = CliRunner().invoke(main, [*command, "--help"], terminal_width=200).output
        assert "--log-to" in text and "--tracker-run-id" in text and "--log-samples" in text


# ---------------------------------------------------------------- the docs page's examples


def _sh_blocks(page: str) -> list[str]:
    """The page's ```sh blocks, less those the line before marks `<!-- not run: ... -->`."""
    blocks, lines = [], page.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```sh":
            end = lines.index("```", i + 1)
            before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            if not before.startswith("<!-- not run:"):
                blocks.append("\n".join(lines[i + 1:end]))
            i = end
        i += 1
    return blocks


def test_the_docs_examples_run(tmp_path, wandb_offline):
    page = (ROOT / "docs/trackers.md").read_text(encoding="utf-8")
    assert page.splitlines()[0] == "<!-- examples run by: tests/test_trackers.py -->"
    blocks = _sh_blocks(page)
    assert len(blocks) >= 3
    _run(tmp_path / "results", "my-run")
    _sweep(tmp_path)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(ROOT)}
    for block in blocks:
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, f"{block}\n{done.stdout}\n{done.stderr}"
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert client.get_experiment_by_name("medqa-evals") is not None


def test_evalkit_run_sends_only_when_asked(tmp_path, loopback, wandb_offline, mlflow_sqlite):
    from mlflow.tracking import MlflowClient

    from tests.conftest import write_items

    srv = loopback()
    items = write_items(tmp_path / "items.jsonl", 5)
    base = ["run", "--eval-file", str(items), "--endpoint", srv.url, "--quiet"]
    quiet = CliRunner().invoke(main, [*base, "--results-dir", str(tmp_path / "plain")])
    assert quiet.exit_code == 0, quiet.output
    assert not (tmp_path / "mlflow.db").exists() and not list(wandb_offline.iterdir())
    assert not list((tmp_path / "plain").rglob("trackers.json"))

    sent = CliRunner().invoke(main, [*base, "--results-dir", str(tmp_path / "r"), "--log-to", "mlflow:runs",
                                     "--log-to", "wandb:runs"])
    assert sent.exit_code == 0, sent.output
    assert sent.output.count("4 points sent, 0 already there") == 2  # one dataset: value, ci_low, ci_high, n
    client = MlflowClient()
    (tracked,) = client.search_runs([client.get_experiment_by_name("runs").experiment_id])
    assert [m.step for m in client.get_metric_history(tracked.info.run_id, "eval/items/accuracy_n")] == [0]
    assert tracked.data.params["evalkit_version"]
    run_id = re.search(r"wandb:runs: run (\S+) ", sent.output).group(1)
    rows = [r["history"]["item"] for r in wandb_records(wandb_offline, run_id) if r["type"] == "history"]
    assert [row["eval/items/accuracy_n"] for row in rows if "eval/items/accuracy_n" in row] == [5]


def test_a_tracker_run_id_that_fits_no_tracker_is_refused_before_anything_runs(tmp_path):
    base = ["run", "--eval-file", str(tmp_path / "x.jsonl"), "--endpoint", "http://127.0.0.1:9/v1"]
    both = CliRunner().invoke(main, [*base, "--log-to", "mlflow", "--log-to", "wandb", "--tracker-run-id", "abc"])
    assert both.exit_code == 2 and "TRACKER=ID" in both.output
    other = CliRunner().invoke(main, [*base, "--log-to", "mlflow", "--tracker-run-id", "wandb=abc"])
    assert other.exit_code == 2 and "wandb is not a tracker the figures go to" in other.output
    alone = CliRunner().invoke(main, ["export", str(tmp_path), "--tracker-run-id", "abc"])
    assert alone.exit_code == 2 and "name a tracker" in alone.output


def test_sweep_run_log_to_sends_each_checkpoint_at_its_step(tmp_path, isolated_state, wandb_offline):
    """`evalkit sweep run --executor local --log-to wandb` (the llama-server stand-in serving three
    checkpoints, as tests/test_sweep_e2e.py runs it): the curve by step, and the same command again
    submits nothing and sends nothing."""
    from tests.conftest import run_evalkit
    from tests.test_sweep_e2e import _sweep_args, _sweep_env

    root, env = _sweep_env("standin", tmp_path, isolated_state)
    args = _sweep_args(root, "local", "--local-jobs", "2", "--log-to", "wandb:ft")
    first = run_evalkit(*args, env=env, timeout=900)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "24 points sent, 0 already there" in first.stdout  # 2 files x 4 figures x 3 steps
    again = run_evalkit(*args, env=env, timeout=300)
    assert "nothing to submit" in again.stdout and "0 points sent, 24 already there" in again.stdout
    run_id = re.search(r"wandb:ft: run (\S+) ", first.stdout).group(1)
    rows = [r["history"]["item"] for r in wandb_records(wandb_offline, run_id) if r["type"] == "history"]
    assert [row["train/global_step"] for row in rows if "eval/med_b/accuracy" in row] == [100, 200, 300]
    assert [row["eval/med_a/accuracy_n"] for row in rows if "eval/med_a/accuracy_n" in row] == [4, 4, 4]


def test_a_tracker_that_does_not_answer_is_named_and_the_run_is_kept(tmp_path, monkeypatch):
    url = f"http://127.0.0.1:{_free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    run = _run(tmp_path)
    before = sorted((p.name, p.stat().st_size) for p in run.iterdir())
    result = CliRunner().invoke(main, ["export", str(run), "--to", "mlflow"])
    assert result.exit_code == 1 and f"{run}: not sent: mlflow ({url})" in result.output
    assert sorted((p.name, p.stat().st_size) for p in run.iterdir()) == before


def test_a_run_whose_summary_says_incomplete_is_not_sent(tmp_path):
    """A manifest without a status (an older run) and summary.json's ``complete: false``: partial, as the
    leaderboard says, so nothing is sent (a point once sent is never sent again)."""
    from evalkit.results.trackers.figures import plan_run
    from tests.runfactory import verdict_samples, write_run

    run_dir = write_run(tmp_path, "old", verdict_samples("medqa", [True, False]))
    summary = json.loads((run_dir / "summary.json").read_text())
    (run_dir / "summary.json").write_text(json.dumps({**summary, "complete": False}))
    plan = plan_run(run_dir)
    assert plan.runs == [] and "incomplete" in plan.notes[0], plan.notes
    (run_dir / "summary.json").write_text(json.dumps({**summary, "complete": True}))
    assert len(plan_run(run_dir).runs) == 1
