"""``evalkit export`` / ``--log-to``: an export plan's figures sent to MLflow and W&B, idempotently.

A run directory is one tracker run (or the training run named by its id); a sweep folder is one
tracker run with each finished checkpoint's figures at its training step. Points the tracker run
already holds (at the same key and step) are not sent again, so exporting twice, or exporting a
sweep again after more checkpoints finished, adds only what is new. The export of a path (either
kind) is composed above this layer, where sweeps are known (``evalkit.sweep.track.export``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from evalkit.config import TrackerSettings
from evalkit.results.trackers.base import TrackerError, TrackerRun, TrackerTarget, parse_target, require
from evalkit.results.trackers.figures import ExportPlan, samples_rows


@dataclass
class ExportResult:
    """What one export sent to one tracker run: points sent and already there, runs, and notes
    (runs left out, parameters the tracker kept with another value)."""

    target: TrackerTarget
    run_id: str | None  # None: nothing was ready to send, no tracker run was opened
    where: str
    sent: int
    already: int
    runs: int
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        if self.run_id is None:
            return f"{self.target}: nothing sent ({self.where})"
        return (f"{self.target}: run {self.run_id} ({self.where}): {self.sent} points sent, {self.already} already "
                f"there, from {self.runs} run{'s' if self.runs != 1 else ''}")


def open_run(target: TrackerTarget, plan: ExportPlan, settings: TrackerSettings, ledger_dir: Path) -> TrackerRun:
    """The tracker run TARGET names for PLAN (its package checked first)."""
    require(target.kind)
    if target.kind == "mlflow":
        from evalkit.results.trackers.mlflow_run import MlflowRun

        return MlflowRun(target, plan, settings)
    from evalkit.results.trackers.wandb_run import WandbRun

    return WandbRun(target, plan, settings, ledger_dir)


def send(plan: ExportPlan, target: TrackerTarget, *, ledger_dir: Path, log_samples: bool = False,
         settings: TrackerSettings = TrackerSettings()) -> ExportResult:
    """PLAN sent to TARGET: the parameters, each point the tracker run lacks, each run's files, and
    with LOG_SAMPLES each run's samples as a table. With no finished run in PLAN no tracker run is opened."""
    if not plan.runs:
        return ExportResult(target, None, "no finished run yet", 0, 0, 0, list(plan.notes))
    try:
        return _send(plan, target, ledger_dir, log_samples, settings)
    except TrackerError:
        raise
    except Exception as exc:  # the tracker library's own errors (a server that does not answer, a refusal)
        raise TrackerError(f"{target}: {type(exc).__name__}: {exc}") from exc


def _send(plan: ExportPlan, target: TrackerTarget, ledger_dir: Path, log_samples: bool,
          settings: TrackerSettings) -> ExportResult:
    run = open_run(target, plan, settings, ledger_dir)
    try:
        points = plan.points
        held = run.sent_points(sorted({p.key for p in points}))
        new = [p for p in points if (p.key, p.step) not in held]
        notes = list(plan.notes) + run.log_params(plan.params)
        if new:
            run.log_points(new)
        for figures in plan.runs:
            run.log_files(figures.label, figures.files())
            if log_samples:
                run.log_samples(figures.label, *samples_rows(figures.run_dir))
        if plan.extra_files:
            run.log_files("", plan.extra_files)
    finally:
        run.close()
    return ExportResult(target, run.run_id, run.where, len(new), len(points) - len(new), len(plan.runs), notes)


def targets_of(targets: Sequence["TrackerTarget | str"]) -> list[TrackerTarget]:
    """TARGETS as TrackerTargets, each tracker's package checked (TrackerError when none is named, or one's
    package is missing): before anything is planned or sent."""
    chosen = [t if isinstance(t, TrackerTarget) else parse_target(t) for t in targets]
    if not chosen:
        raise TrackerError("name a tracker to send to: mlflow[:EXPERIMENT] or wandb[:PROJECT]")
    for t in chosen:
        require(t.kind)
    return chosen


__all__ = ["ExportResult", "open_run", "send", "targets_of"]
