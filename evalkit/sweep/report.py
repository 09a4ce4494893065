"""A sweep's tables: the trend over training steps, and a gate per checkpoint against a baseline.

Both read the checkpoints' run directories through ``report`` and ``gate`` (and so through
``run/rundir.py``); nothing here writes a run. The trend has one row per checkpoint in step order:
each benchmark's score with its CI, the suite's average (the mean of the benchmarks' scores,
as the suite table averages them), and the best step (the highest average).
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table

from evalkit.config import DEFAULT_CONFIDENCE, IntervalSettings, ReportSettings, field_default
from evalkit.results.formats import register
from evalkit.results.gate import EXIT_MISMATCH, EXIT_PASS, EXIT_REGRESSION, GateResult, compare_runs, junit_xml
from evalkit.results.report import ScoreCell, build_report, fmt_ci, pct
from evalkit.run.rundir import MANIFEST
from evalkit.sweep.state import CheckpointJob, SweepError, SweepState, run_status, training_step

if TYPE_CHECKING:
    from evalkit.results.pages.trend import TrendPoint


@dataclass
class TrendRow:
    """One checkpoint's scores (None where its run has no such benchmark yet)."""

    job: CheckpointJob
    run_status: str | None
    cells: dict[str, ScoreCell | None] = field(default_factory=dict)

    @property
    def average(self) -> float | None:
        means = [c.mean for c in self.cells.values() if c is not None and c.mean is not None]
        return sum(means) / len(means) if means and len(means) == len(self.cells) else None

    @property
    def partial(self) -> bool:
        """Its run exists but is not complete (still running, interrupted, failed): its figures may change."""
        return self.run_status is not None and self.run_status != "complete"

    @property
    def run_text(self) -> str:
        """The run's standing as a table cell: ``complete``, ``PARTIAL (running)``, ``not run``."""
        if self.run_status is None:
            return "not run"
        return f"PARTIAL ({self.run_status})" if self.partial else self.run_status

    def to_dict(self) -> dict[str, Any]:
        ck = self.job.checkpoint
        return {"step": ck.step, "checkpoint": ck.path, "key": ck.key, "run_dir": str(self.job.run_dir),
                "run_status": self.run_status, "partial": self.partial, "average": self.average,
                "scores": {d: (c.to_dict() if c else None) for d, c in self.cells.items()}}


@dataclass
class Trend:
    """The sweep's scores per training step, for one named score."""

    score: str
    datasets: list[str]
    rows: list[TrendRow]

    @property
    def best(self) -> TrendRow | None:
        """The checkpoint with the highest average over complete runs (the earlier step on a tie)."""
        scored = [r for r in self.rows if r.average is not None and r.run_status == "complete"]
        return max(scored, key=lambda r: (r.average, -(r.job.checkpoint.step or 0))) if scored else None

    def to_dict(self) -> dict[str, Any]:
        best = self.best
        return {"score": self.score, "datasets": self.datasets, "rows": [r.to_dict() for r in self.rows],
                "best": None if best is None else {"step": best.job.checkpoint.step, "checkpoint": best.job.checkpoint.path,
                                                   "average": best.average}}


def trend_score(state: SweepState, score: str | None = None) -> str:
    """The score a sweep's trend and gates read: SCORE when named, else the one its suite's table shows
    (the suite's ``table_score``, else, as in the report's suite table, the primary score of the first
    checkpoint run's scorer), else the multiple-choice verdict."""
    verdict = field_default(ReportSettings, "score")
    suite = state.settings.suite
    if score or suite is None:
        return score or verdict
    if suite.get("score"):
        return str(suite["score"])
    from evalkit.run.rundir import recorded_metrics
    from evalkit.core.store import read_json

    for job in state.jobs():  # the suite table's default (suites.primary_score), read off the manifest
        if (job.run_dir / MANIFEST).exists():
            return next(iter(recorded_metrics(read_json(job.run_dir / MANIFEST))), verdict)
    return verdict


def sweep_trend(state: SweepState, *, score: str | None = None,
                ci: str = field_default(IntervalSettings, "ci"), confidence: float = DEFAULT_CONFIDENCE) -> Trend:
    """Each checkpoint with a run (complete or partial) in training-step order, with SCORE (``trend_score``)
    per benchmark."""
    score = trend_score(state, score)
    rows: list[TrendRow] = []
    datasets: dict[str, None] = {}
    for job in state.jobs():
        status, _ = run_status(job.run_dir)
        row = TrendRow(job, status)
        if status is not None and (job.run_dir / MANIFEST).exists():
            report = build_report([job.run_dir], ci=ci, confidence=confidence)
            for r in report.rows:
                if r.group is None:
                    datasets.setdefault(r.dataset)
                    row.cells[r.dataset] = r.scores.get(score)
        rows.append(row)
    for row in rows:
        for d in datasets:
            row.cells.setdefault(d, None)
        row.cells = {d: row.cells[d] for d in datasets}
    return Trend(score=score, datasets=list(datasets), rows=rows)


def _cell(c: ScoreCell | None) -> str:
    if c is None or c.mean is None:
        return "-"
    return f"{pct(c.mean)} {fmt_ci(c.ci_low, c.ci_high)} n={c.n}"


def _partial_note(trend: Trend) -> str | None:
    partial = [r for r in trend.rows if r.partial]
    if not partial:
        return None
    return (f"PARTIAL: {', '.join(r.job.checkpoint.label for r in partial)}: the run is not complete; its figures "
            "cover the items done so far, and it is never the best step")


def trend_table(trend: Trend) -> Table:
    """The trend as a table: step, checkpoint, each benchmark (score % with its CI), the average, and the
    run's standing (a partial run's row marked, and said under the table)."""
    best = trend.best
    table = Table(title=f"sweep trend ({trend.score}, % with CI; * best step)", caption=_partial_note(trend))
    for col in ("step", "checkpoint", *trend.datasets, "average", "run"):
        table.add_column(col, justify="right" if col not in ("checkpoint", "run") else "left")
    for r in trend.rows:
        ck = r.job.checkpoint
        star = " *" if best is not None and r is best else (" (partial)" if r.partial else "")
        avg = "-" if r.average is None else pct(r.average)
        table.add_row(f"{ck.step_text}{star}", Path(ck.path).name,
                      *[_cell(r.cells[d]) for d in trend.datasets], avg, r.run_text,
                      style="yellow" if r.partial else None)
    return table


def trend_markdown(trend: Trend) -> str:
    """The trend as a markdown table, with the run's standing per row (a partial run marked)."""
    best = trend.best
    head = ["step", "checkpoint", *trend.datasets, "average", "run"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in trend.rows:
        ck = r.job.checkpoint
        mark = " (best)" if best is not None and r is best else (" (partial)" if r.partial else "")
        run = f"**{r.run_text}**" if r.partial else r.run_text
        lines.append("| " + " | ".join([f"{ck.step_text}{mark}", Path(ck.path).name,
                                        *[_cell(r.cells[d]) for d in trend.datasets],
                                        "-" if r.average is None else pct(r.average), run]) + " |")
    note = _partial_note(trend)
    return "\n".join(lines) + "\n" + (f"\n{note}\n" if note else "")


def best_text(trend: Trend) -> str | None:
    """The best checkpoint in words (None when no complete run is scored): its step, or, for a checkpoint
    whose path gives no training step, its name and that it has none."""
    best = trend.best
    if best is None:
        return None
    ck = best.job.checkpoint
    where = f"best step: {ck.step}" if ck.step is not None else \
        f"best checkpoint: {Path(ck.path).name} (no training step in its path)"
    return f"{where} ({ck.path}), average {100 * best.average:.1f}%"


def trend_points(trend: Trend) -> tuple[list["TrendPoint"], list[str]]:
    """The trend's scored cells as the trend page's points (``evalkit.results.pages.trend.TrendPoint``), the
    same figures as ``trend_table`` and ``trend_json``; and a note per checkpoint left off the plot
    (a run without a training step in its name has no place on the step axis)."""
    from evalkit.results.pages.trend import TrendPoint

    points: list[TrendPoint] = []
    notes: list[str] = []
    for r in trend.rows:
        ck = r.job.checkpoint
        cells = [(d, c) for d, c in r.cells.items() if c is not None and c.mean is not None]
        if ck.step is None:
            if cells:
                notes.append(f"{ck.path}: no training step in its name; left off the plot")
            continue
        for dataset, c in cells:
            low = c.mean if c.ci_low is None else c.ci_low
            high = c.mean if c.ci_high is None else c.ci_high
            points.append(TrendPoint(ck.step, dataset, c.mean, low, high, r.job.run_dir,
                                     partial=r.run_status if r.partial else None))
    return points, notes


# ---------------------------------------------------------------- gates


def resolve_baseline(state: SweepState, spec: str) -> Path:
    """--baseline: a run directory, or one of the sweep's checkpoints (its path, key, or step)."""
    p = Path(spec)
    if (p / MANIFEST).exists():
        return p
    step = int(spec) if spec.isdigit() else training_step(spec)
    for job in state.jobs():
        ck = job.checkpoint
        if spec in (ck.key, ck.path) or str(p.resolve()) == ck.path or (step is not None and ck.step == step):
            status, _ = run_status(job.run_dir)
            if status != "complete":
                raise SweepError(f"--baseline {spec}: that checkpoint's run is not complete ({status or 'not run'})")
            return job.run_dir
    raise SweepError(f"--baseline {spec}: neither a run directory nor a checkpoint of this sweep")


@dataclass
class SweepGate:
    """Every complete checkpoint gated against one baseline run."""

    baseline: Path
    results: list[tuple[CheckpointJob, GateResult]]

    @property
    def regressed(self) -> list[CheckpointJob]:
        return [j for j, g in self.results if not g.blocked and g.failed_datasets]

    @property
    def exit_code(self) -> int:
        """1 when any checkpoint regressed, else 2 when any could not be compared, else 0."""
        if self.regressed:
            return EXIT_REGRESSION
        return EXIT_MISMATCH if any(g.blocked for _, g in self.results) else EXIT_PASS

    def to_dict(self) -> dict[str, Any]:
        return {"baseline": str(self.baseline), "exit_code": self.exit_code,
                "checkpoints": [{"step": j.checkpoint.step, "checkpoint": j.checkpoint.path, **g.to_dict()}
                                for j, g in self.results]}


def sweep_gate(state: SweepState, baseline: str, **options: Any) -> SweepGate:
    """Gate each checkpoint whose run is complete against BASELINE (``compare_runs``'s OPTIONS; the score
    by default ``trend_score``'s)."""
    options["score"] = trend_score(state, options.get("score"))
    base = resolve_baseline(state, baseline)
    results = []
    for job in state.jobs():
        status, _ = run_status(job.run_dir)
        if status != "complete" or job.run_dir.resolve() == base.resolve():
            continue
        results.append((job, compare_runs(base, job.run_dir, **options)))
    return SweepGate(base, results)


def gate_rows(gate: SweepGate) -> Table:
    table = Table(title="gate per checkpoint", caption=f"baseline: {gate.baseline}")
    for col in ("step", "checkpoint", "verdict", "regressed on"):
        table.add_column(col)
    for job, g in gate.results:
        table.add_row(job.checkpoint.step_text, Path(job.checkpoint.path).name, g.verdict,
                      ", ".join(g.failed_datasets) or ("; ".join(g.mismatches) if g.blocked else "-"))
    return table


def sweep_junit(gate: SweepGate) -> str:
    """One JUnit file for the sweep: a test suite per checkpoint (a regression is a failure)."""
    root = ET.Element("testsuites", name="evalkit sweep gate")
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for job, g in gate.results:
        suites = ET.fromstring(junit_xml(g).split("\n", 1)[1])
        for suite in suites.iter("testsuite"):
            suite.set("name", f"evalkit.sweep.state.step{job.checkpoint.step}" if job.checkpoint.step is not None
                      else f"evalkit.sweep.state.{job.checkpoint.key}")
            for case in suite.iter("testcase"):
                case.set("classname", suite.get("name"))
            for k in totals:
                totals[k] += int(suite.get(k, "0"))
            root.append(suite)
    for k, v in totals.items():
        root.set(k, str(v))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def trend_json(trend: Trend, gate: SweepGate | None = None) -> str:
    doc = trend.to_dict()
    if gate is not None:
        doc["gate"] = gate.to_dict()
    return json.dumps(doc, indent=2, default=lambda o: None if isinstance(o, float) and math.isnan(o) else str(o)) + "\n"


# ---------------------------------------------------------------- the trend in the formats of evalkit.results.formats

@register("trend", "table")
def trend_renderables(trend: Trend, gate: SweepGate | None = None, *, best: bool = True, **_: Any) -> list[Any]:
    """The trend's table, the best step in words (unless not BEST), and with GATE the gate per checkpoint
    (a terminal)."""
    from rich.text import Text

    best = best_text(trend) if best else None
    return [trend_table(trend), *([Text(best)] if best is not None else []), *([gate_rows(gate)] if gate else [])]


@register("trend", "markdown")
def _trend_markdown(trend: Trend, **_: Any) -> str:
    return trend_markdown(trend)


@register("trend", "json")
def _trend_json(trend: Trend, gate: SweepGate | None = None, **_: Any) -> str:
    return trend_json(trend, gate)


@register("trend", "html")
def trend_page(trend: Trend, title: str | None = None, gate: SweepGate | None = None, **gate_options: Any) -> str:
    """The trend page (``pages.trend.render_trend_html``) of the trend's own points; GATE_OPTIONS
    (score, max_drop, alpha) are the page's comparison's. ValueError with fewer than two scored checkpoints."""
    from evalkit.results.pages.trend import render_trend_html

    points, _ = trend_points(trend)
    return render_trend_html(points, title=title or f"evalkit sweep: {trend.score}", **gate_options)


@register("sweep_gate", "table")
def _gate_renderables(gate: SweepGate, **_: Any) -> list[Any]:
    return [gate_rows(gate)]


@register("sweep_gate", "junit")
def _gate_junit(gate: SweepGate, **_: Any) -> str:
    return sweep_junit(gate)


__all__ = ["SweepGate", "Trend", "TrendRow", "best_text", "gate_rows", "resolve_baseline", "sweep_gate", "sweep_junit",
           "sweep_trend", "trend_score", "trend_json", "trend_markdown", "trend_page", "trend_points", "trend_renderables", "trend_table"]
