"""What a tracker is sent of a run or a sweep: the figures, the identity, the files (no tracker code).

The figures are the report's own (``report_document``: each dataset's score cells with their
intervals, as ``evalkit report`` shows them), never computed again here. A sweep's plan, made of
its checkpoints' runs each read the same way at its training step, is made above this layer
(``evalkit.sweep.track``) from the pieces here (``run_figures``, ``shared_identity``, ``source_key``).
Only finished runs are sent: a partial run's figures would sit at their step for good (the export
does not send a point twice), so it waits until it is complete.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from evalkit.results.comparable import is_partial, run_status
from evalkit.config import TrackerSettings
from evalkit.results.run_index import read_summary
from evalkit.core.records import LEGACY_SCORE
from evalkit.run.rundir import MANIFEST, SUMMARY, read_manifest

CHOICE_NAME = "accuracy"  # the multiple-choice verdict (LEGACY_SCORE) is named as the report's column names it
SAMPLE_COLUMNS = ("dataset", "id", "index", "question", "answer_idx", "pred", "correct", "output", "finish_reason",
                  "truncated", "error", "latency_s")
PARAM_CHARS = 500  # a longer identity value (a prompt template, say) is cut: trackers cap a parameter's length


@dataclass(frozen=True)
class Point:
    """One figure at one training step."""

    key: str
    step: int
    value: float


@dataclass
class RunFigures:
    """One evalkit run as a tracker sees it: its LABEL within the tracker run ("" for a run sent alone,
    ``step_N`` for a sweep's checkpoint), its points, its identity and its files."""

    label: str
    run_dir: Path
    step: int
    points: list[Point]
    identity: dict[str, str]
    report_markdown: str

    def files(self) -> dict[str, Path | str]:
        """The artifacts: the run's manifest and summary as they are, and the report as markdown."""
        out: dict[str, Path | str] = {name: self.run_dir / name for name in (MANIFEST, SUMMARY)
                                      if (self.run_dir / name).exists()}
        out["report.md"] = self.report_markdown
        return out


@dataclass
class ExportPlan:
    """What one tracker run receives: SOURCE names the evalkit run or sweep (the same on every export,
    so a later export finds the tracker run an earlier one made), NAME is the tracker run's name,
    PARAMS its parameters, RUNS the evalkit runs sent, NOTES the runs left out and why, EXTRA_FILES
    files of the whole export (a sweep's trend)."""

    source: str
    name: str
    params: dict[str, str]
    runs: list[RunFigures]
    notes: list[str] = field(default_factory=list)
    extra_files: dict[str, str] = field(default_factory=dict)

    @property
    def points(self) -> list[Point]:
        return [p for r in self.runs for p in r.points]


def clean_name(text: str) -> str:
    """TEXT as a part of a metric or parameter name both trackers take (letters, digits, ``_ - . /``)."""
    return re.sub(r"[^A-Za-z0-9_.\-/ ]+", "_", text).strip() or "_"


def metric_points(report_rows: Sequence[Any], step: int, prefix: str) -> list[Point]:
    """Each dataset row's score cells (the report's ``ScoreCell``s) as points at STEP:
    ``PREFIX/DATASET/SCORE`` and its ``_ci_low``, ``_ci_high`` and ``_n``; a cell with no value sends nothing."""
    points = []
    for row in report_rows:
        if row.group is not None:
            continue
        for name, cell in row.scores.items():
            if cell.mean is None:
                continue
            key = f"{prefix}/{clean_name(row.dataset)}/{CHOICE_NAME if name == LEGACY_SCORE else clean_name(name)}"
            points.append(Point(key, step, float(cell.mean)))
            points += [Point(f"{key}_{part}", step, float(v))
                       for part, v in (("ci_low", cell.ci_low), ("ci_high", cell.ci_high), ("n", cell.n))
                       if v is not None]
    return points


def run_identity(manifest: Mapping[str, Any] | None) -> dict[str, str]:
    """The run's identity as flat text parameters: model, checkpoint (path, step, content hash), prompt,
    scoring, generation settings and the evalkit version, as the manifest records them."""
    from evalkit.results.comparable import checkpoint_hash
    from evalkit.run.rundir import RunManifest

    m = manifest or {}
    info = RunManifest.from_dict(m)
    ident: dict[str, Any] = {"model": info.model, "backend": m.get("backend"), "prompt": info.prompt,
                             "prompt_sha256": m.get("prompt_sha256"), "extractor": info.extractor,
                             "scorers": ",".join(info.scorers) or None, "strategy": info.strategy,
                             "samples": info.samples, "evalkit_version": info.evalkit_version,
                             "fingerprint": info.fingerprint, "checkpoint.sha256": checkpoint_hash(m)}
    checkpoint = m.get("checkpoint") if isinstance(m.get("checkpoint"), Mapping) else {}
    for k in ("path", "step"):
        ident[f"checkpoint.{k}"] = checkpoint.get(k)
    for k, v in (checkpoint.get("content_hash") or {}).items():
        ident[f"checkpoint.{k}"] = v
    ident.update({f"generation.{k}": v for k, v in info.generation.items()})
    return {clean_name(k): _text(v) for k, v in ident.items() if v not in (None, "", [], {})}


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= PARAM_CHARS else text[:PARAM_CHARS - 3] + "..."


def sendable(manifest: Mapping[str, Any] | None, summary: Mapping[str, Any] | None = None) -> bool:
    """Whether a run is finished, as the leaderboard judges it (``comparable.run_status``): its manifest
    says complete, or, where it records no status, its summary does not say incomplete. A partial run's
    figures are never sent: a point once sent is never sent again, so they would stay."""
    return not is_partial(run_status(manifest, summary))


def run_figures(run_dir: Path, *, label: str, step: int, settings: TrackerSettings) -> RunFigures:
    """RUN_DIR's figures at STEP, its identity and its report (``report_document``, as ``evalkit report``)."""
    from evalkit.results.report_document import render_report, report_document

    doc = report_document([run_dir])
    manifest = doc.runs[0].manifest
    return RunFigures(label, run_dir, step, metric_points(doc.report.rows, step, settings.prefix),
                      run_identity(manifest), render_report(doc, "markdown"))


def source_key(kind: str, text: str) -> str:
    """A short stable key of an evalkit run or sweep: what a tracker run is found by on the next export."""
    return f"{kind}-{hashlib.sha1(text.encode()).hexdigest()[:16]}"


def plan_run(run_dir: Path, *, step: int | None = None,
             settings: TrackerSettings = TrackerSettings()) -> ExportPlan:
    """The export of one run directory: at STEP, else its checkpoint's training step, else the settings'."""
    manifest = read_manifest(run_dir / MANIFEST) if (run_dir / MANIFEST).exists() else {}
    recorded = (manifest.get("checkpoint") or {}).get("step") if isinstance(manifest.get("checkpoint"), dict) else None
    at = step if step is not None else (recorded if isinstance(recorded, int) else settings.step)
    source = source_key("run", f"{run_dir.parent.name}/{run_dir.name}:{manifest.get('fingerprint')}")
    name = f"{run_dir.parent.name}/{run_dir.name}"
    summary = read_summary(run_dir)
    if not sendable(manifest, summary):
        return ExportPlan(source, name, {}, [], [f"{run_dir}: not sent, the run is {run_status(manifest, summary)} "
                                                  "(export it once complete)"])
    figures = run_figures(run_dir, label="", step=at, settings=settings)
    return ExportPlan(source, name, dict(figures.identity), [figures])


def shared_identity(runs: Sequence[RunFigures]) -> dict[str, str]:
    """The identity values every run shares, once; the others under each run's label (``step_N.model``)."""
    if not runs:
        return {}
    keys = {k for r in runs for k in r.identity}
    shared = {k: runs[0].identity[k] for k in keys
              if all(r.identity.get(k) == runs[0].identity.get(k) for r in runs)}
    out = dict(shared)
    for r in runs:
        out.update({f"{r.label}.{k}": v for k, v in r.identity.items() if k not in shared})
    return out


def samples_rows(run_dir: Path) -> tuple[list[str], list[list[Any]]]:
    """The run's counting samples as a table: the columns of SAMPLE_COLUMNS it has, and one per score;
    every cell a string, number, boolean or None (what a W&B Table and an MLflow table take)."""
    from evalkit.run.rundir import to_dataframe

    frame = to_dataframe(run_dir)
    columns = [c for c in SAMPLE_COLUMNS if c in frame.columns] + \
        sorted(c for c in frame.columns if str(c).startswith("score:"))
    rows = [[_cell(v) for v in values] for values in frame[columns].itertuples(index=False, name=None)]
    return columns, rows


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return None if value != value else value  # NaN: a sample without that score
    return json.dumps(value, default=str)


def default_target_name(kind: str, settings: TrackerSettings = TrackerSettings()) -> str:
    """The MLflow experiment or W&B project a target that names none goes to."""
    return settings.mlflow_experiment if kind == "mlflow" else settings.wandb_project


__all__ = ["ExportPlan", "Point", "RunFigures", "clean_name", "default_target_name",
           "metric_points", "plan_run", "run_figures", "run_identity", "samples_rows", "sendable", "shared_identity",
           "source_key"]
