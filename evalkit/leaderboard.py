"""The leaderboard: every run under a results folder as a models x datasets table.

A row is one (model, prompt, extractor) setup; its cells may come from several
runs (a run per benchmark is common). Where two runs of a setup cover the same
dataset, the one that finished last wins and the other is noted. Each cell has
its confidence interval; the macro average (unweighted mean over the row's
datasets) has a stratified bootstrap interval.

Comparability is checked, not assumed: per dataset, the set of answered items
most rows share is the reference, and a cell scored on other items is flagged,
as is a macro average over flagged cells or over only some of the datasets.
Such rows sort below the comparable ones.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter, OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from rich.table import Table

from evalkit.report import (
    CI_METHODS,
    CIMethod,
    Run,
    accuracy_ci,
    fmt_ci,
    load_run,
    markdown_table,
    pct,
    run_labels,
)
from evalkit.stats import DEFAULT_RESAMPLES, bootstrap_macro_ci
from evalkit.store import SAMPLES

FLAG = "!"


@dataclass
class Cell:
    """One model's accuracy on one dataset, from one run."""

    dataset: str
    run: str
    n: int
    correct: int
    accuracy: float
    ci_low: float
    ci_high: float
    errors: int
    flag: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LeaderboardRow:
    model: str
    prompt: str | None
    extractor: str
    cells: "OrderedDict[str, Cell]"
    macro: float | None = None
    macro_low: float | None = None
    macro_high: float | None = None
    flags: list[str] = field(default_factory=list)

    @property
    def comparable(self) -> bool:
        return not self.flags

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "prompt": self.prompt, "extractor": self.extractor,
            "macro": self.macro, "macro_low": self.macro_low, "macro_high": self.macro_high,
            "comparable": self.comparable, "flags": list(self.flags),
            "cells": {k: c.to_dict() for k, c in self.cells.items()},
        }


@dataclass
class Leaderboard:
    datasets: list[str]
    rows: list[LeaderboardRow]
    ci_method: str = "wilson"
    confidence: float = 0.95
    notes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # runs left out, each with why (naming the file)

    @property
    def ci_label(self) -> str:
        return f"{round(self.confidence * 100):g}% CI ({self.ci_method}; macro: bootstrap)"

    def to_dict(self) -> dict[str, Any]:
        return {"ci_method": self.ci_method, "macro_ci_method": "bootstrap", "confidence": self.confidence,
                "datasets": list(self.datasets), "rows": [r.to_dict() for r in self.rows],
                "notes": list(self.notes)}


def find_runs(root: str | Path) -> list[Path]:
    """Every run directory (a folder holding samples.jsonl) under ``root``, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a directory")
    return sorted(p.parent for p in root.rglob(SAMPLES))


def _sort_key_time(run: Run) -> tuple[str, float]:
    stamp = run.finished_at or ""
    try:
        mtime = (run.path / SAMPLES if run.path.is_dir() else run.path).stat().st_mtime
    except OSError:
        mtime = 0.0
    return (str(stamp), mtime)


def build_leaderboard(
    runs_or_root: "str | Path | Iterable[str | Path | Run]",
    *,
    ci: CIMethod = "wilson",
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Leaderboard:
    """Collect runs (or every run under a folder) into a models x datasets table."""
    if ci not in CI_METHODS:
        raise ValueError(f"unknown CI method {ci!r} (choose from {', '.join(CI_METHODS)})")
    sources = find_runs(runs_or_root) if isinstance(runs_or_root, (str, Path)) else list(runs_or_root)
    runs, skipped = load_runs_skipping_damaged(sources)
    labels = dict(zip(map(id, runs), run_labels(runs)))
    notes: list[str] = [f"skipped {reason}" for reason in skipped]

    # Which run supplies each (setup, dataset): the latest one.
    chosen: OrderedDict[tuple[str, str | None, str], OrderedDict[str, Run]] = OrderedDict()
    for run in sorted(runs, key=_sort_key_time):
        setup = (run.model, run.prompt, run.extractor)
        for dataset in OrderedDict((d, None) for d, _ in run.items()):
            per = chosen.setdefault(setup, OrderedDict())
            if dataset in per:
                notes.append(f"{run.model} / {dataset}: run {labels[id(run)]} supersedes {labels[id(per[dataset])]}")
            per[dataset] = run

    datasets = sorted({d for per in chosen.values() for d in per})
    answered: dict[tuple, frozenset[str]] = {}
    rows: list[LeaderboardRow] = []
    for setup, per in chosen.items():
        cells: OrderedDict[str, Cell] = OrderedDict()
        for dataset in datasets:
            if dataset not in per:
                continue
            run = per[dataset]
            items = [s for (d, _), s in run.items().items() if d == dataset]
            ok = [s for s in items if not s.get("error")]
            correct = sum(1 for s in ok if s.get("correct"))
            lo, hi = accuracy_ci(correct, len(ok), ci, confidence, n_resamples=n_resamples, seed=seed)
            cells[dataset] = Cell(dataset, labels[id(run)], len(ok), correct,
                                  correct / len(ok) if ok else 0.0, lo, hi, len(items) - len(ok))
            answered[(setup, dataset)] = frozenset(str(s["id"]) for s in ok)
        rows.append(LeaderboardRow(model=setup[0], prompt=setup[1], extractor=setup[2], cells=cells))

    # Flag cells scored on other items than most rows for that dataset.
    for dataset in datasets:
        sets = Counter(answered[(setup, dataset)] for setup, per in chosen.items() if dataset in per)
        reference = max(sets, key=lambda s: (sets[s], len(s)))
        for row in rows:
            cell = row.cells.get(dataset)
            if cell is None:
                continue
            mine = answered[((row.model, row.prompt, row.extractor), dataset)]
            if mine != reference:
                cell.flag = (f"{dataset}: scored on {len(mine)} answered items, not the {len(reference)} "
                             f"most runs answered ({len(mine & reference)} in common)")
                row.flags.append(cell.flag)

    for row in rows:
        counts = [(c.correct, c.n) for c in row.cells.values() if c.n]
        if counts:
            row.macro = sum(s / n for s, n in counts) / len(counts)
            row.macro_low, row.macro_high = bootstrap_macro_ci(
                counts, confidence, n_resamples=n_resamples, seed=seed)
        missing = [d for d in datasets if d not in row.cells]
        if missing:
            row.flags.append(f"macro over {len(row.cells)} of {len(datasets)} datasets (missing: {', '.join(missing)})")

    rows.sort(key=lambda r: (not r.comparable, -(r.macro if r.macro is not None else -1.0), r.model))
    return Leaderboard(datasets=datasets, rows=rows, ci_method=ci, confidence=confidence, notes=notes,
                       skipped=skipped)


def load_runs_skipping_damaged(sources: Iterable["str | Path | Run"]) -> tuple[list[Run], list[str]]:
    """Load each run; one whose files are damaged (a torn manifest.json, say) is left out, and the
    reason, naming the file, is returned instead, so one bad run does not hide all the others."""
    runs, skipped = [], []
    for source in sources:
        try:
            runs.append(load_run(source))
        except ValueError as exc:
            skipped.append(str(exc))
    return runs, skipped


# --- formats ---------------------------------------------------------------------------------

def _cell_text(cell: Cell | None) -> str:
    if cell is None:
        return "-"
    mark = FLAG if cell.flag else ""
    return f"{pct(cell.accuracy)}{mark} {fmt_ci(cell.ci_low, cell.ci_high)}"


def _macro_text(row: LeaderboardRow) -> str:
    if row.macro is None:
        return "-"
    mark = FLAG if row.flags else ""
    return f"{pct(row.macro)}{mark} {fmt_ci(row.macro_low, row.macro_high)}"


def table_header(lb: Leaderboard) -> list[str]:
    """Column names: rank, setup, macro average, then one per dataset."""
    return ["#", "model", "prompt", "extractor", "macro avg", *lb.datasets]


def table_cells(lb: Leaderboard, rank: int, row: LeaderboardRow) -> list[str]:
    """Display cells of one row; flagged numbers carry "!"."""
    return [str(rank), row.model, row.prompt or "-", row.extractor, _macro_text(row),
            *(_cell_text(row.cells.get(d)) for d in lb.datasets)]


def footnotes(lb: Leaderboard) -> list[str]:
    """Why numbers are flagged, and which runs were superseded."""
    lines = [f"{r.model} ({r.prompt or '-'}, {r.extractor}): {f}" for r in lb.rows for f in r.flags]
    return lines + lb.notes


def leaderboard_table(lb: Leaderboard) -> Table:
    """Rich table; flagged numbers carry "!" and are explained in the caption."""
    foot = footnotes(lb)
    table = Table(title=f"Leaderboard: accuracy % with {lb.ci_label}", title_justify="left",
                  caption=("\n".join(f"{FLAG} {n}" for n in foot) if foot else None), caption_justify="left")
    for i, h in enumerate(table_header(lb)):
        table.add_column(h, justify="right" if i in (0,) or i >= 4 else "left", no_wrap=i >= 4)
    for rank, row in enumerate(lb.rows, start=1):
        table.add_row(*table_cells(lb, rank, row), style=None if row.comparable else "yellow")
    return table


def leaderboard_markdown(lb: Leaderboard) -> str:
    parts = [f"## Leaderboard: accuracy % with {lb.ci_label}", "",
             markdown_table(table_header(lb), (table_cells(lb, i, r) for i, r in enumerate(lb.rows, start=1)), 4)]
    foot = footnotes(lb)
    if foot:
        parts += ["", *(f"- {FLAG} {n}" for n in foot)]
    return "\n".join(parts) + "\n"


def leaderboard_csv(lb: Leaderboard) -> str:
    """Long format: one line per (row, dataset) plus one for the macro average."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["rank", "model", "prompt", "extractor", "dataset", "run", "n", "correct", "accuracy",
                "ci_low", "ci_high", "errors", "flag"])
    for rank, row in enumerate(lb.rows, start=1):
        w.writerow([rank, row.model, row.prompt or "", row.extractor, "macro", "", "", "",
                    _f(row.macro), _f(row.macro_low), _f(row.macro_high), "", "; ".join(row.flags)])
        for c in row.cells.values():
            w.writerow([rank, row.model, row.prompt or "", row.extractor, c.dataset, c.run, c.n, c.correct,
                        _f(c.accuracy), _f(c.ci_low), _f(c.ci_high), c.errors, c.flag or ""])
    return out.getvalue()


def _f(x: float | None) -> str:
    return "" if x is None else f"{x:.6g}"


def leaderboard_json(lb: Leaderboard) -> str:
    return json.dumps(lb.to_dict(), indent=2, ensure_ascii=False) + "\n"


def format_leaderboard(lb: Leaderboard, fmt: str) -> str:
    if fmt == "markdown":
        return leaderboard_markdown(lb)
    if fmt == "csv":
        return leaderboard_csv(lb)
    if fmt == "json":
        return leaderboard_json(lb)
    if fmt == "html":
        from evalkit.html_report import render_leaderboard_html

        return render_leaderboard_html(lb)
    raise ValueError(f"unknown format {fmt!r} (choose from rich, markdown, csv, json, html)")

