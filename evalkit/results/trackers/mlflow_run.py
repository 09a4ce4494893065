"""MLflow as a tracker: figures as metrics by step, identity as parameters, files and samples as artifacts.

What the run already holds is read from MLflow itself (each metric's history, the parameters, the
artifact listing), so an export sent twice adds nothing the second time. The tracking server is
MLflow's own setting (``MLFLOW_TRACKING_URI``; without it, MLflow's local default).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from evalkit.config import TrackerSettings
from evalkit.results.trackers.base import TrackerError, TrackerTarget
from evalkit.results.trackers.figures import ExportPlan, Point, default_target_name

SOURCE_TAG = "evalkit_source"  # the tag an export finds its own run by on the next export
ARTIFACT_DIR = "evalkit"
BATCH_METRICS = 1000  # MLflow's log_batch limits
BATCH_PARAMS = 100


class MlflowRun:
    """An MLflow run opened for an export: the one TARGET names (run_id), else the experiment's run
    tagged with the plan's source, else a new one."""

    def __init__(self, target: TrackerTarget, plan: ExportPlan, settings: TrackerSettings) -> None:
        import mlflow
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient()
        self.attached = target.run_id is not None
        try:
            run = self.client.get_run(target.run_id) if self.attached else self._own_run(target, plan, settings)
        except MlflowException as exc:
            raise TrackerError(f"mlflow ({mlflow.get_tracking_uri()}): {exc.message}") from None
        self.run = run
        self.run_id = run.info.run_id
        self.where = f"{mlflow.get_tracking_uri()} experiment {run.info.experiment_id}"

    def _own_run(self, target: TrackerTarget, plan: ExportPlan, settings: TrackerSettings) -> Any:
        name = target.name or default_target_name("mlflow", settings)
        experiment = self.client.get_experiment_by_name(name)
        exp_id = experiment.experiment_id if experiment else self.client.create_experiment(name)
        found = self.client.search_runs([exp_id], filter_string=f"tags.{SOURCE_TAG} = '{plan.source}'",
                                        max_results=1)
        if found:
            return found[0]
        return self.client.create_run(exp_id, run_name=plan.name, tags={SOURCE_TAG: plan.source})

    def sent_points(self, keys: Sequence[str]) -> set[tuple[str, int]]:
        """Each point of KEYS in the run's metric history (only keys the run has are asked for)."""
        held = set(self.run.data.metrics)
        return {(key, m.step) for key in keys if key in held for m in self.client.get_metric_history(self.run_id, key)}

    def log_points(self, points: Sequence[Point]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(p.key, p.value, now, p.step) for p in points]
        for i in range(0, len(metrics), BATCH_METRICS):
            self.client.log_batch(self.run_id, metrics=metrics[i:i + BATCH_METRICS])

    def log_params(self, params: Mapping[str, str]) -> list[str]:
        """MLflow keeps a parameter's first value: those held with another value are left, with a note."""
        from mlflow.entities import Param

        held = self.run.data.params
        new = [Param(k, v) for k, v in params.items() if k not in held]
        for i in range(0, len(new), BATCH_PARAMS):
            self.client.log_batch(self.run_id, params=new[i:i + BATCH_PARAMS])
        return [f"mlflow run {self.run_id}: parameter {k} kept as {held[k]!r} (this export has {v!r})"
                for k, v in params.items() if k in held and held[k] != v]

    def _artifact_dir(self, label: str) -> str:
        return f"{ARTIFACT_DIR}/{label}" if label else ARTIFACT_DIR

    def log_files(self, label: str, files: Mapping[str, "Path | str"]) -> bool:
        """The files under ``evalkit/LABEL/``; not sent again when the run holds each of them at the same size
        (a changed file is sent again, replacing the old one at its path)."""
        where = self._artifact_dir(label)
        blobs = {n: (c.read_bytes() if isinstance(c, Path) else c.encode("utf-8")) for n, c in files.items()}
        held = {f.path: f.file_size for f in self.client.list_artifacts(self.run_id, where)}
        if all(held.get(f"{where}/{name}") == len(data) for name, data in blobs.items()):
            return False
        with tempfile.TemporaryDirectory(prefix="evalkit-mlflow-") as tmp:
            for name, data in blobs.items():
                (Path(tmp) / name).write_bytes(data)
            self.client.log_artifacts(self.run_id, tmp, artifact_path=where)
        return True

    def log_samples(self, label: str, columns: list[str], rows: list[list[Any]]) -> bool:
        """``evalkit/LABEL/samples.json``, an MLflow table; MLflow appends to a table logged twice, so one
        that is there already is left as it is."""
        import pandas as pd

        where = self._artifact_dir(label)
        path = f"{where}/samples.json"
        if any(f.path == path for f in self.client.list_artifacts(self.run_id, where)):
            return False
        self.client.log_table(self.run_id, data=pd.DataFrame(rows, columns=columns), artifact_file=path)
        return True

    def close(self) -> None:
        if not self.attached:
            self.client.set_terminated(self.run_id)


__all__ = ["ARTIFACT_DIR", "MlflowRun", "SOURCE_TAG"]
