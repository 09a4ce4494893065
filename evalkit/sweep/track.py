"""A sweep sent to the trackers (MLflow, W&B), and the export of a path: a run directory or a sweep folder.

The trackers (``evalkit.results.trackers``) know runs: their figures, identity and files, and the
tracker runs they go to. A sweep is one tracker run with each finished checkpoint's figures at its
training step; planning it reads the sweep's state and trend, so it is done here, at the sweep's
layer, from the trackers' pieces, and so is ``export``, which takes either kind of path
(``evalkit export``, ``--log-to``, ``api.export``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from evalkit.config import TrackerSettings
from evalkit.core.store import SAMPLES
from evalkit.results.trackers.base import TrackerError, TrackerTarget
from evalkit.results.trackers.export import ExportResult, send, targets_of
from evalkit.results.trackers.figures import ExportPlan, plan_run, run_figures, shared_identity, source_key
from evalkit.sweep.report import sweep_trend, trend_json
from evalkit.sweep.state import STATE_FILE, SweepState
from evalkit.sweep.state import run_status as manifest_status


def plan_sweep(sweep_dir: Path, *, settings: TrackerSettings = TrackerSettings()) -> ExportPlan:
    """The export of a sweep: each checkpoint whose run is complete at its training step (one without a
    step in its name has no place on the step axis: left out, with a note), the parameters the runs share
    once and the others per checkpoint (``step_N.NAME``), and the sweep's trend as a file."""
    state = SweepState.load(sweep_dir)
    runs, notes = [], []
    for job in state.jobs():
        ck = job.checkpoint
        status, _ = manifest_status(job.run_dir)
        if status != "complete":
            notes.append(f"{ck.path}: not sent yet, its run is {status or 'not started'}")
        elif ck.step is None:
            notes.append(f"{ck.path}: no training step in its name; not sent")
        else:
            runs.append(run_figures(job.run_dir, label=f"step_{ck.step}", step=ck.step, settings=settings))
    s = state.settings
    params = {"sweep": s.name, "sweep.backend": s.backend, "sweep.settings_id": s.settings_id()}
    params.update(shared_identity(runs))
    extra = {"trend.json": trend_json(sweep_trend(state))} if runs else {}
    return ExportPlan(source_key("sweep", f"{s.name}:{s.settings_id()}"), f"sweep {s.name}", params, runs, notes,
                      extra)


def plan_export(path: "str | Path", *, step: int | None = None,
                settings: TrackerSettings = TrackerSettings()) -> ExportPlan:
    """The plan of PATH: a sweep folder (its state file) or a run directory (its samples)."""
    p = Path(path)
    if (p / STATE_FILE).exists():
        if step is not None:
            raise TrackerError(f"{p}: a sweep's checkpoints are sent at their own training steps; --step is for a run")
        return plan_sweep(p, settings=settings)
    if (p / SAMPLES).exists():
        return plan_run(p, step=step, settings=settings)
    raise TrackerError(f"{p}: neither a run directory ({SAMPLES}) nor a sweep folder ({STATE_FILE})")


def export(path: "str | Path", targets: Sequence["TrackerTarget | str"], *, log_samples: bool = False,
           step: int | None = None, settings: TrackerSettings = TrackerSettings()) -> list[ExportResult]:
    """PATH (a run directory or a sweep folder) sent to each of TARGETS; one result per target."""
    chosen = targets_of(targets)
    plan = plan_export(path, step=step, settings=settings)
    return [send(plan, t, ledger_dir=Path(path), log_samples=log_samples, settings=settings) for t in chosen]


__all__ = ["export", "plan_export", "plan_sweep"]
