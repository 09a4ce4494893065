"""The leaderboard: every run under a results folder as a configurations x datasets table.

A row is one configuration (see ``evalkit.results.comparable.Configuration``): model
identity, prompt, extractor, generation parameters, sampling strategy and
scoring version. Runs that differ in any of these are different rows, and the
settings that differ between rows are shown. A row's cells may come from several
runs of one configuration (a run per benchmark is common); where two runs cover
the same dataset, a complete one beats a partial one, then the one that finished
last wins, and the other is noted.

Ranks are only given where numbers are comparable, like with like: the rows are
split into tables (``LeaderboardGroup``), each ranked on the datasets all its rows
cover with the same items, headed by what its rows share, the table covering the
most items first; the macro average (unweighted mean over a table's datasets, with
a stratified bootstrap interval) is taken over those. Rows with a partial run
(killed and not resumed, failed requests) or nothing scored are listed apart,
unranked, with the reason. Left at the default score, a benchmark whose runs have
no multiple-choice verdict shows its run's primary score (e.g. an exam's score).
"""

from __future__ import annotations

import csv
import fnmatch
import io
import json
import os
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from rich.table import Table

from evalkit.config import (DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, DEFAULT_SEED, IntervalSettings, ReportSettings,
                            field_default)
from evalkit.results.comparable import (
    SETTINGS,
    Configuration,
    choose_ranked,
    configuration_of,
    is_partial,
    reference_items,
    run_status,
    varying_settings,
)
from evalkit.results.report import (
    CI_METHODS,
    CIMethod,
    Run,
    fmt_ci,
    load_run,
    markdown_table,
    pct,
    run_labels,
)
from evalkit.results.run_index import IndexedRun, cell_data, load_runs_indexed
from evalkit.run.rundir import empty_run_reason, sample_score_dicts
from evalkit.scoring.metrics import Metric, default_metric, shows_percent, with_options
from evalkit.core.stats import bootstrap_macro_ci, bootstrap_macro_mean_ci
from evalkit.core.store import SAMPLES, SUMMARY, parse_json

FLAG = "!"
NO_INDEX_ENV = "EVALKIT_NO_INDEX"  # set (to anything but "" or "0") to read every run from disk
SCORE = SCORE_DEFAULT = field_default(ReportSettings, "score")  # the default score ranked: the choice scorer's verdict


@dataclass
class Cell:
    """One row's score on one dataset, from one run."""

    dataset: str
    run: str
    n: int
    correct: int
    accuracy: float
    ci_low: float
    ci_high: float
    errors: int
    flag: str | None = None
    run_path: str = ""
    status: str = "complete"
    in_macro: bool = False
    score: str = SCORE_DEFAULT  # the score it shows: the one asked for, else its run's primary score

    @property
    def partial(self) -> bool:
        return is_partial(self.status)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "partial": self.partial}


@dataclass
class LeaderboardRow:
    """One configuration: its cells, and its rank and macro average if it is ranked."""

    config: Configuration
    cells: "OrderedDict[str, Cell]"
    rank: int | None = None
    macro: float | None = None
    macro_low: float | None = None
    macro_high: float | None = None
    flags: list[str] = field(default_factory=list)
    group: int | None = None  # the index of its table in Leaderboard.groups

    @property
    def model(self) -> str:
        return self.config.model

    @property
    def prompt(self) -> str | None:
        return self.config.prompt

    @property
    def extractor(self) -> str:
        return self.config.extractor

    @property
    def ranked(self) -> bool:
        return self.rank is not None

    @property
    def comparable(self) -> bool:
        """Ranked with nothing flagged."""
        return self.ranked and not self.flags

    @property
    def partial(self) -> bool:
        return any(c.partial for c in self.cells.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank, "ranked": self.ranked, "group": self.group, "partial": self.partial,
            "comparable": self.comparable,
            "model": self.model, "checkpoint": self.config.checkpoint, "prompt": self.prompt,
            "prompt_sha256": self.config.prompt_sha256, "extractor": self.extractor,
            "settings": self.config.settings(),
            "macro": self.macro, "macro_low": self.macro_low, "macro_high": self.macro_high,
            "flags": list(self.flags),
            "cells": {k: c.to_dict() for k, c in self.cells.items()},
        }


@dataclass
class LeaderboardGroup:
    """One table of the leaderboard: rows ranked together on the datasets they all cover with the same
    items (``datasets``, ``items``), or (``ranked`` False) the rows listed apart: partial runs and runs
    with nothing scored. ``shared`` holds the settings its rows have in common, ``varying`` the others."""

    datasets: list[str]
    items: dict[str, int]
    rows: list[LeaderboardRow]
    columns: list[str]  # the datasets shown: the ranked ones, then the others its rows have
    shared: dict[str, Any]
    varying: list[str]
    ranked: bool = True

    @property
    def coverage(self) -> int:
        """The items each row is ranked on, over every ranked dataset (groups are shown largest first)."""
        return sum(self.items.values())

    @property
    def heading(self) -> str:
        """What the table's rows share: the items they are ranked on and their common settings."""
        shared = ", ".join(f"{n}={_setting_text(v, n)}" for n, v in self.shared.items())
        if not self.ranked:
            what = "Listed apart, unranked (partial runs, runs with nothing scored)"
        else:
            what = "Ranked on " + ", ".join(f"{d} ({self.items[d]} items)" for d in self.datasets)
        return what + (f"; shared: {shared}" if shared else "")

    def to_dict(self) -> dict[str, Any]:
        return {"ranked": self.ranked, "datasets": list(self.datasets), "items": dict(self.items),
                "columns": list(self.columns), "shared": dict(self.shared), "varying": list(self.varying),
                "heading": self.heading}


@dataclass
class Leaderboard:
    """Tables of rows ranked like with like (``groups``, the largest coverage first), then the rows
    listed apart; ``rows`` holds every row in that order, ``ranked_datasets`` the first table's."""

    datasets: list[str]
    rows: list[LeaderboardRow]
    ranked_datasets: list[str] = field(default_factory=list)
    varying: list[str] = field(default_factory=list)
    ci_method: str = field_default(IntervalSettings, "ci")
    confidence: float = DEFAULT_CONFIDENCE
    notes: list[str] = field(default_factory=list)
    filters: dict[str, list[str]] = field(default_factory=dict)
    score: str = SCORE_DEFAULT
    kind: str = "binary"  # "numeric": cells are not shares in percent (their metric says)
    skipped: list[str] = field(default_factory=list)  # runs left out, each with why (naming the file)
    metric: dict[str, Any] = field(default_factory=lambda: {"name": "proportion"})  # the score's metric spec
    groups: list[LeaderboardGroup] = field(default_factory=list)

    @property
    def ci_label(self) -> str:
        method = self.ci_method if self.kind == "binary" else "bootstrap"
        return f"{round(self.confidence * 100):g}% CI ({method}; macro: bootstrap)"

    @property
    def what(self) -> str:
        """What the cells hold, for titles."""
        if self.score == SCORE_DEFAULT:
            return "accuracy %"
        return f"{self.score} %" if self.kind == "binary" else f"{self.metric.get('name', 'mean')} {self.score}"

    @property
    def ranked_rows(self) -> list[LeaderboardRow]:
        return [r for r in self.rows if r.ranked]

    @property
    def apart_rows(self) -> list[LeaderboardRow]:
        return [r for r in self.rows if not r.ranked]

    def to_dict(self) -> dict[str, Any]:
        return {"score": self.score, "kind": self.kind, "metric": dict(self.metric),
                "ci_method": self.ci_method, "macro_ci_method": "bootstrap", "confidence": self.confidence,
                "datasets": list(self.datasets), "ranked_datasets": list(self.ranked_datasets),
                "varying_settings": list(self.varying), "filters": dict(self.filters),
                "groups": [g.to_dict() for g in self.groups],
                "rows": [r.to_dict() for r in self.rows], "notes": list(self.notes)}


# --- which runs -------------------------------------------------------------------------------

def find_runs(root: str | Path) -> list[Path]:
    """Every run directory (a folder holding samples.jsonl) under ``root``, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a directory")
    return sorted(p.parent for p in root.rglob(SAMPLES))


def run_dir_of(run: Run) -> Path:
    """The folder a run lives in (the run directory, or a samples file's folder)."""
    return run.path if run.path.is_dir() else run.path.parent


def task_folder_of(run: Run) -> str:
    """The task folder of a run: the folder its run directory sits in (results/<task>/<run>)."""
    path = run.path.resolve()
    if path.is_dir() or path.name == SAMPLES:
        return (path if path.is_dir() else path.parent).parent.name
    return path.parent.name


def _matches(value: str | None, patterns: Sequence[str]) -> bool:
    return value is not None and any(fnmatch.fnmatchcase(value, p) for p in patterns)


def select_runs(runs: Iterable[Run], *, task_folders: Sequence[str] = (), models: Sequence[str] = (),
                prompts: Sequence[str] = (), run_names: Sequence[str] = ()) -> list[Run]:
    """The runs that pass every given filter; each filter is a list of globs, any of which may match.

    A prompt matches by its template name or its display name ("strict +SC5"); a run
    name by the run's own name or "task-folder/name".
    """
    out = []
    for run in runs:
        task = task_folder_of(run)
        base_prompt = (run.manifest or {}).get("prompt")
        if task_folders and not _matches(task, task_folders):
            continue
        if models and not _matches(run.model, models):
            continue
        if prompts and not (_matches(run.prompt, prompts) or
                            _matches(base_prompt if isinstance(base_prompt, str) else None, prompts)):
            continue
        if run_names and not (_matches(run.name, run_names) or _matches(f"{task}/{run.name}", run_names)):
            continue
        out.append(run)
    return out


def _summary_of(run: Run) -> dict[str, Any] | None:
    """summary.json beside a run's samples, if there is one that parses."""
    if not (run.path.is_dir() or run.path.name == SAMPLES):
        return None  # a loose samples file has no summary of its own
    path = run_dir_of(run) / SUMMARY
    try:
        data = parse_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def status_of(run: Run) -> str:
    """"complete" or why the run is partial (see ``comparable.run_status``)."""
    return run_status(run.manifest, _summary_of(run))


def config_of(run: Run) -> Configuration:
    """The leaderboard row a run belongs to."""
    return configuration_of(model=run.model, prompt=run.prompt, prompt_sha256=run.prompt_sha256,
                            extractor=run.extractor, manifest=run.manifest,
                            samples=run.stamp_samples() if isinstance(run, IndexedRun) else run.samples)


def _finish_key(run: Run) -> tuple[str, float]:
    stamp = run.finished_at or ""
    try:
        mtime = (run.path / SAMPLES if run.path.is_dir() else run.path).stat().st_mtime
    except OSError:
        mtime = 0.0
    return (str(stamp), mtime)


def assign_cells(runs: Sequence[Run], labels: Mapping[int, str], statuses: Mapping[int, str],
                 configs: Mapping[int, Configuration]
                 ) -> tuple["OrderedDict[Configuration, OrderedDict[str, Run]]", list[str]]:
    """Which run supplies each (configuration, dataset): a complete run before a partial one,
    then the one that finished last. Returns the choice and a note per superseded run."""
    chosen: OrderedDict[Configuration, OrderedDict[str, Run]] = OrderedDict()
    notes: list[str] = []
    for run in sorted(runs, key=lambda r: (not is_partial(statuses[id(r)]), _finish_key(r))):
        per = chosen.setdefault(configs[id(run)], OrderedDict())
        for dataset in datasets_of(run):
            if dataset in per:
                notes.append(f"{run.model} / {dataset}: run {labels[id(run)]} supersedes {labels[id(per[dataset])]}")
            per[dataset] = run
    return chosen, notes


# --- what a cell holds (the one place that reads a score) ---------------------------------------



def datasets_of(run: Run) -> list[str]:
    """The run's datasets, in first-seen order."""
    if isinstance(run, IndexedRun):
        return list(run.datasets)
    return list(OrderedDict((d, None) for d, _ in run.items()))


def score_dicts_of(samples: Iterable[Mapping[str, Any]], score: str = SCORE) -> list[Mapping[str, Any]]:
    """The stored score dicts of SCORE over samples that have it (what its metric aggregates)."""
    return [d for d in (sample_score_dicts(s).get(score) for s in samples) if d is not None]


def score_cell(samples: Sequence[Mapping[str, Any]], *, ci: CIMethod, confidence: float, n_resamples: int,
               seed: int, score: str = SCORE, metric: Metric | None = None
               ) -> tuple[int, float, float, float, float, int]:
    """(n, sum, value, ci_low, ci_high, errors) of SCORE over one dataset's samples, aggregated by METRIC
    (the run's recorded metric; default: ``default_metric`` of the values); n counts the samples with a
    value, errors the failed requests."""
    return score_cell_of(score_dicts_of(samples, score), sum(1 for s in samples if s.get("error")), ci=ci,
                         confidence=confidence, n_resamples=n_resamples, seed=seed, metric=metric)


def score_cell_of(dicts: Sequence[Mapping[str, Any]], errors: int, *, ci: CIMethod, confidence: float,
                  n_resamples: int, seed: int, metric: Metric | None = None, values: Sequence[Any] | None = None
                  ) -> tuple[int, float, float, float, float, int]:
    """``score_cell`` from a dataset's stored score dicts (item order) and its count of failed requests;
    VALUES, the dicts' values that are not None, where the caller has them already."""
    if values is None:
        values = [d.get("value") for d in dicts if d.get("value") is not None]
    metric = metric or default_metric(values)
    got = with_options(metric, ci_method=ci, confidence=confidence, n_resamples=n_resamples,
                       seed=seed).aggregate(dicts)
    # Nothing scored: the interval a share has then is all of [0, 1]; other metrics have none (0, 0).
    lo, hi = got.ci if got.ci is not None else ((0.0, 1.0) if shows_percent(metric) else (0.0, 0.0))
    total = got.extra.get("successes", float(sum(float(v) for v in values)))
    return got.n, total, got.value if got.value is not None else 0.0, lo, hi, errors


# --- the table ----------------------------------------------------------------------------------

def build_leaderboard(
    runs_or_root: "str | Path | Iterable[str | Path | Run]",
    *,
    ci: CIMethod = field_default(IntervalSettings, "ci"),
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    task_folders: Sequence[str] = (),
    models: Sequence[str] = (),
    prompts: Sequence[str] = (),
    run_names: Sequence[str] = (),
    score: str = SCORE,
    index: bool = True,
) -> Leaderboard:
    """Collect runs (or every run under a folder) into a configurations x datasets table of SCORE
    (any named score: ``correct`` by default, a judge's axis, a scorer of yours).

    The filters (globs; see ``select_runs``) choose the runs before anything is compared. Given a
    folder, finished runs are read through its index (``evalkit.results.run_index``) unless INDEX is False or
    $EVALKIT_NO_INDEX is set; the figures are the same either way.
    """
    if ci not in CI_METHODS:
        raise ValueError(f"unknown CI method {ci!r} (choose from {', '.join(CI_METHODS)})")
    runs, skipped = _load_leaderboard_runs(runs_or_root, index)
    runs = select_runs(runs, task_folders=task_folders, models=models, prompts=prompts, run_names=run_names)
    filters = {k: list(v) for k, v in (("task_folder", task_folders), ("model", models), ("prompt", prompts),
                                       ("run_name", run_names)) if v}
    labels = dict(zip(map(id, runs), run_labels(runs)))
    # A run with no sample (an empty samples.jsonl) has its own row, below the line, saying why.
    empty = [LeaderboardRow(config=config_of(r), cells=OrderedDict(), flags=[f"run {labels[id(r)]}: {why}"])
             for r in runs if not isinstance(r, IndexedRun) and (why := empty_run_reason(r)) is not None]
    runs = [r for r in runs if isinstance(r, IndexedRun) or r.items()]  # an indexed run has items
    statuses = {id(r): status_of(r) for r in runs}
    configs = {id(r): config_of(r) for r in runs}
    chosen, notes = assign_cells(runs, labels, statuses, configs)
    notes = [f"skipped {reason}" for reason in skipped] + notes

    rows, coverages, values, metrics = _score_cells(chosen, labels, statuses, score, ci=ci, confidence=confidence,
                                                    n_resamples=n_resamples, seed=seed)
    asked = [m for (config, dataset), m in metrics.items() if rows[config].cells[dataset].score == score]
    metric = (asked or list(metrics.values()) or [default_metric(())])[0]
    if any(m.spec() != metric.spec() for m in asked):
        notes.append(f"{score!r} is aggregated differently across runs ("
                     f"{', '.join(sorted({json.dumps(m.spec(), sort_keys=True) for m in asked}))})")
    eligible = [c for c, row in rows.items() if not row.partial]
    groups = _ranked_groups(rows, coverages, eligible, values, metrics, confidence=confidence,
                            n_resamples=n_resamples, seed=seed)
    reference = reference_items(coverages, eligible or list(rows))
    for config, row in rows.items():
        if not row.ranked:
            _flag_apart(row, coverages[config], reference, score)
    apart = sorted((r for r in rows.values() if not r.ranked),
                   key=lambda r: (r.partial, -len(r.cells), r.model, r.prompt or "")) + empty
    if apart:
        groups.append(_group(apart, [], {}, ranked=False))
    for i, group in enumerate(groups):
        for row in group.rows:
            row.group = i
    ordered = [row for group in groups for row in group.rows]
    ranked_datasets = groups[0].datasets if groups and groups[0].ranked else []
    others = sorted({d for per in chosen.values() for d in per} - set(ranked_datasets))
    return Leaderboard(datasets=ranked_datasets + others, rows=ordered, ranked_datasets=ranked_datasets,
                       varying=varying_settings([r.config for r in ordered]), ci_method=ci,
                       confidence=confidence, notes=notes, filters=filters, score=score,
                       kind="binary" if shows_percent(metric) else "numeric", skipped=skipped,
                       metric=metric.spec(), groups=groups)


def _ranked_groups(rows: Mapping[Configuration, LeaderboardRow], coverages: Mapping[Configuration, Any],
                   eligible: Sequence[Configuration], values: Mapping[tuple[Configuration, str], list[Any]],
                   metrics: Mapping[tuple[Configuration, str], Metric], **interval: Any) -> list[LeaderboardGroup]:
    """Like with like: the ELIGIBLE rows split into tables, each ranked on the datasets its rows all
    cover with the same items (``comparable.choose_ranked`` on the rows not placed yet, until none
    covers anything), the table covering the most items first. Rows left over have nothing scored."""
    groups: list[LeaderboardGroup] = []
    left = list(eligible)
    while left:
        datasets, ranked = choose_ranked(coverages, left)
        if not ranked:
            break
        reference = reference_items(coverages, ranked)
        proportions = all(metrics[(c, d)].name == "proportion" for c in ranked for d in datasets)
        _rank(rows, ranked, datasets, values=None if proportions else values, **interval)
        for config in ranked:
            _flag(rows[config], coverages[config], reference)
        members = sorted((rows[c] for c in ranked), key=lambda r: r.rank or 0)
        groups.append(_group(members, datasets, {d: len(reference[d]) for d in datasets}))
        left = [c for c in left if c not in ranked]
    return sorted(groups, key=lambda g: (-g.coverage, -len(g.datasets), -len(g.rows)))


def _group(rows: list[LeaderboardRow], datasets: list[str], items: dict[str, int],
           ranked: bool = True) -> LeaderboardGroup:
    """A table of ROWS ranked on DATASETS (ITEMS each), with what its rows share and what varies."""
    configs = [r.config for r in rows]
    varying = varying_settings(configs, skip=("model",))
    shared = {n: getattr(configs[0], n) for n in SETTINGS
              if n != "model" and n not in varying and getattr(configs[0], n) is not None}
    others = sorted({d for r in rows for d in r.cells} - set(datasets))
    return LeaderboardGroup(datasets=list(datasets), items=items, rows=rows, columns=list(datasets) + others,
                            shared=shared, varying=varying, ranked=ranked)


def _load_leaderboard_runs(runs_or_root: "str | Path | Iterable[str | Path | Run]", index: bool
                           ) -> tuple[list[Any], list[str]]:
    """The runs of RUNS_OR_ROOT (a folder's through its index when INDEX allows) and the damaged ones skipped."""
    sources = find_runs(runs_or_root) if isinstance(runs_or_root, (str, Path)) else list(runs_or_root)
    # The index lives in a results folder, never inside a run directory given as the folder.
    if (isinstance(runs_or_root, (str, Path)) and index and os.environ.get(NO_INDEX_ENV, "") in ("", "0")
            and not (Path(runs_or_root) / SAMPLES).exists()):
        return load_runs_indexed(runs_or_root, sources)  # type: ignore[arg-type]
    return load_runs_skipping_damaged(sources)


def _score_cells(chosen: Mapping[Configuration, Mapping[str, Any]], labels: Mapping[int, str],
                 statuses: Mapping[int, str], score: str, *, ci: CIMethod, confidence: float, n_resamples: int,
                 seed: int) -> tuple[dict[Configuration, LeaderboardRow], dict[Configuration, dict[str, frozenset[str]]],
                                     dict[tuple[Configuration, str], list[Any]],
                                     dict[tuple[Configuration, str], Metric]]:
    """One row per configuration with a cell per dataset of its CHOSEN runs, each cell SCORE aggregated
    by its run's metric (SCORE left at the default, a run without it shows its primary score: an
    exam's score); with the items each cell covers, its values and its metric."""
    coverages: dict[Configuration, dict[str, frozenset[str]]] = {}
    rows: dict[Configuration, LeaderboardRow] = {}
    values: dict[tuple[Configuration, str], list[Any]] = {}
    metrics: dict[tuple[Configuration, str], Metric] = {}
    for config, per in chosen.items():
        cells: OrderedDict[str, Cell] = OrderedDict()
        coverages[config] = {}
        for dataset in sorted(per):
            run = per[dataset]
            shown, (dicts, errors, coverages[config][dataset]) = score, cell_data(run, dataset, score)
            primary = next(iter(run.metrics or {}), score)
            if score == SCORE_DEFAULT and primary != score and not coverages[config][dataset]:
                shown, (dicts, errors, coverages[config][dataset]) = primary, cell_data(run, dataset, primary)
            values[(config, dataset)] = [d.get("value") for d in dicts if d.get("value") is not None]
            metric = metrics[(config, dataset)] = run.metric(shown, values[(config, dataset)])
            n, correct, acc, lo, hi, errors = score_cell_of(dicts, errors, ci=ci, confidence=confidence,
                                                            n_resamples=n_resamples, seed=seed, metric=metric,
                                                            values=values[(config, dataset)])
            cells[dataset] = Cell(dataset, labels[id(run)], n, correct, acc, lo, hi, errors,
                                  run_path=str(run.path), status=statuses[id(run)], score=shown)
        rows[config] = LeaderboardRow(config=config, cells=cells)
    return rows, coverages, values, metrics


def _rank(rows: Mapping[Configuration, LeaderboardRow], ranked: Sequence[Configuration],
          datasets: Sequence[str], *, confidence: float, n_resamples: int, seed: int,
          values: Mapping[tuple[Configuration, str], list[Any]] | None = None) -> None:
    """Macro average of the cells' values over DATASETS for each ranked row, and ranks by it (best
    first). Without VALUES (a proportion) the macro interval is a stratified bootstrap of the counts;
    with them, a stratified bootstrap of the datasets' means."""
    for config in ranked:
        row = rows[config]
        counts = [(row.cells[d].correct, row.cells[d].n) for d in datasets]
        for d in datasets:
            row.cells[d].in_macro = True
        row.macro = sum(row.cells[d].accuracy for d in datasets if row.cells[d].n) / len(counts)
        if values is None:
            row.macro_low, row.macro_high = bootstrap_macro_ci(counts, confidence, n_resamples=n_resamples,
                                                               seed=seed)
        else:
            groups = [[float(v) for v in values[(config, d)]] for d in datasets]
            row.macro_low, row.macro_high = bootstrap_macro_mean_ci(groups, confidence, n_resamples=n_resamples,
                                                                    seed=seed)
    order = sorted(ranked, key=lambda c: (-(rows[c].macro or 0.0), c.model, c.prompt or ""))
    for rank, config in enumerate(order, start=1):
        rows[config].rank = rank


def _flag(row: LeaderboardRow, coverage: Mapping[str, frozenset[str]],
          reference: Mapping[str, frozenset[str]]) -> None:
    """Mark the row's cells scored on other items than the REFERENCE its table shares."""
    for dataset, cell in row.cells.items():
        mine, ref = coverage[dataset], reference.get(dataset)
        if ref is not None and mine != ref:
            cell.flag = (f"{dataset}: scored on {len(mine)} answered items, not the {len(ref)} the ranked rows share "
                         f"({len(mine & ref)} in common)")
            row.flags.append(cell.flag)


def _flag_apart(row: LeaderboardRow, coverage: Mapping[str, frozenset[str]],
                reference: Mapping[str, frozenset[str]], score: str) -> None:
    """Say why a row is listed apart (a partial run, nothing scored), and which cells are on other items."""
    partial = [c for c in row.cells.values() if c.partial]
    if partial:
        row.flags.append("partial: " + ", ".join(f"{c.dataset} from run {c.run} ({c.status})" for c in partial))
    elif row.cells and not any(coverage.values()):
        row.flags.append(f"no item has a {score!r} score")
    _flag(row, coverage, reference)


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

def _value_text(x: float | None, lo: float | None, hi: float | None, kind: str) -> tuple[str, str]:
    if kind == "binary":
        return pct(x), fmt_ci(lo, hi)
    return (f"{x:.3f}" if x is not None else "-"), (f"[{lo:.3f}, {hi:.3f}]" if lo is not None else "-")


def _cell_text(cell: Cell | None, kind: str = "binary") -> str:
    if cell is None or cell.n == 0:
        return "-"
    mark = FLAG if cell.flag or cell.partial else ""
    value, ci = _value_text(cell.accuracy, cell.ci_low, cell.ci_high, kind)
    return f"{value}{mark} {ci}"


def _macro_text(row: LeaderboardRow, kind: str = "binary") -> str:
    if row.macro is None:
        return "-"
    value, ci = _value_text(row.macro, row.macro_low, row.macro_high, kind)
    return f"{value} {ci}"


def _setting_text(value: Any, name: str) -> str:
    if value is None:
        return "?"
    if name in ("checkpoint", "prompt_sha256", "scoring_version") and len(str(value)) > 16:
        return str(value)[:12]
    return str(value)


def settings_text(lb: Leaderboard, row: LeaderboardRow, names: Sequence[str] | None = None) -> str:
    """The row's values of the settings NAMES (default: those that differ between all rows), as "name=value, ..."."""
    return ", ".join(f"{name}={_setting_text(getattr(row.config, name), name)}"
                     for name in (lb.varying if names is None else names))


def row_status(row: LeaderboardRow) -> str:
    """Why a row is unranked, in a word: "partial", "not scored" (nothing has the score) or "empty" (a run
    with no sample); "" for a ranked row."""
    if row.ranked:
        return ""
    if not row.cells:
        return "empty"
    return "partial" if row.partial else "not scored"


def _macro_column(group: LeaderboardGroup) -> bool:
    return group.ranked and len(group.datasets) > 1


def column_label(lb: Leaderboard, group: LeaderboardGroup, dataset: str) -> str:
    """A dataset's column: its name, the score its cells show where it is not the leaderboard's (an
    exam's score), and "(not in macro)" for a dataset the table is not ranked on."""
    scores = sorted({r.cells[dataset].score for r in group.rows if dataset in r.cells} - {lb.score})
    label = dataset + "".join(f" [{score}]" for score in scores)
    if group.ranked and dataset not in group.datasets:
        label += " (not in macro)" if _macro_column(group) else " (not ranked)"
    return label


def table_header(lb: Leaderboard, group: LeaderboardGroup) -> list[str]:
    """GROUP's column names: rank, model, the settings that differ between its rows (those it shares
    head the table), the macro average when it is ranked on several datasets, one per dataset."""
    head = ["#", "model"] + (["settings"] if group.varying else [])
    if _macro_column(group):
        head.append(f"macro avg ({len(group.datasets)} datasets)")
    return head + [column_label(lb, group, d) for d in group.columns]


def first_number_column(lb: Leaderboard, group: LeaderboardGroup) -> int:
    """The index of GROUP's first numeric column."""
    return 3 if group.varying else 2


def table_cells(lb: Leaderboard, group: LeaderboardGroup, row: LeaderboardRow) -> list[str]:
    """Display cells of one row of GROUP; flagged and partial numbers carry "!"."""
    cells = [str(row.rank) if row.ranked else row_status(row), row.model]
    if group.varying:
        cells.append(settings_text(lb, row, group.varying))
    if _macro_column(group):
        cells.append(_macro_text(row, lb.kind))
    return cells + [_cell_text(row.cells.get(d), lb.kind) for d in group.columns]


def row_name(lb: Leaderboard, row: LeaderboardRow) -> str:
    parts = [row.prompt or "-", row.extractor]
    if lb.varying:
        parts.append(settings_text(lb, row))
    return f"{row.model} ({', '.join(parts)})"


def ranking_note(lb: Leaderboard) -> str:
    """What the ranks and macro averages are computed over."""
    ranked = [g for g in lb.groups if g.ranked]
    if not ranked:
        return "nothing is ranked: no complete run"
    return (f"like with like: {len(ranked)} ranked table{'s' if len(ranked) > 1 else ''}, the largest coverage "
            f"first; the rows of a table cover its ranked datasets with the same items (first: ranks and macro "
            f"averages over {', '.join(lb.ranked_datasets)})")


def footnotes(lb: Leaderboard) -> list[str]:
    """Why rows are listed apart or numbers flagged, and which runs were superseded."""
    return [f"{row_name(lb, r)}: {f}" for r in lb.rows for f in r.flags] + lb.notes


def _fit(header: list[str], rows: list[list[str]], first_num: int, width: int | None) -> dict[int, int]:
    """Widths for the text columns (model, settings) that keep each row on one line of WIDTH columns
    (rich's box: 3 per column and 1), the numbers kept whole; {} when everything fits."""
    widths = [max(len(c) for c in column) for column in zip(header, *rows)]
    excess = sum(widths) + 3 * len(widths) + 1 - (width or 10 ** 6)
    fitted: dict[int, int] = {}
    while excess > 0:
        j = max(range(1, first_num), key=lambda k: widths[k])
        if widths[j] <= 8:
            break  # the numbers alone are wider: rich wraps what it must
        widths[j] -= 1
        fitted[j] = widths[j]
        excess -= 1
    return fitted


def leaderboard_tables(lb: Leaderboard, width: int | None = None) -> list[Table]:
    """Rich tables, one per group (its heading as the title), each row on one line of WIDTH columns
    (model and settings shortened with "…" where needed); the notes under the last."""
    tables = []
    for i, group in enumerate(lb.groups):
        last = i == len(lb.groups) - 1
        caption = "\n".join([ranking_note(lb), *(f"{FLAG} {n}" for n in footnotes(lb))]) if last else None
        table = Table(title=f"{i + 1}. {group.heading}", title_justify="left", caption=caption,
                      caption_justify="left")
        header, first_num = table_header(lb, group), first_number_column(lb, group)
        rows = [table_cells(lb, group, r) for r in group.rows]
        fitted = _fit(header, rows, first_num, width)
        for j, h in enumerate(header):
            table.add_column(h, justify="right" if j == 0 or j >= first_num else "left", no_wrap=True,
                             overflow="ellipsis", max_width=fitted.get(j))
        for row, cells in zip(group.rows, rows):
            table.add_row(*cells, style=None if row.comparable else "yellow")
        tables.append(table)
    return tables


def leaderboard_markdown(lb: Leaderboard) -> str:
    parts = [f"## Leaderboard: {lb.what} with {lb.ci_label}", "", ranking_note(lb)]
    for i, group in enumerate(lb.groups):
        rows = [table_cells(lb, group, r) for r in group.rows]
        parts += ["", f"### {i + 1}. {group.heading}", "",
                  markdown_table(table_header(lb, group), rows, first_number_column(lb, group))]
    foot = footnotes(lb)
    if foot:
        parts += ["", *(f"- {FLAG} {n}" for n in foot)]
    return "\n".join(parts) + "\n"


_CSV_SETTINGS = ("checkpoint", "prompt_sha256", "scorers", "max_new_tokens", "temperature", "top_p", "strategy", "samples",
                 "refine_samples", "scoring_version")


def leaderboard_csv(lb: Leaderboard) -> str:
    """Long format: one line per (row, dataset) plus one for the macro average."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["rank", "status", "model", "prompt", "extractor", *_CSV_SETTINGS, "dataset", "run", "run_status",
                "in_macro", "n", "correct", "accuracy", "ci_low", "ci_high", "errors", "flag", "score", "table"])
    for row in lb.rows:
        head = [row.rank if row.ranked else "", row_status(row) or "ranked", row.model, row.prompt or "",
                row.extractor, *("" if getattr(row.config, s) is None else getattr(row.config, s)
                                 for s in _CSV_SETTINGS)]
        table = "" if row.group is None else row.group + 1
        w.writerow([*head, "macro", "", "", "", "", "", _f(row.macro), _f(row.macro_low), _f(row.macro_high), "",
                    "; ".join(row.flags), "", table])
        for c in row.cells.values():
            w.writerow([*head, c.dataset, c.run, c.status, int(c.in_macro), c.n, c.correct, _f(c.accuracy),
                        _f(c.ci_low), _f(c.ci_high), c.errors, c.flag or "", c.score, table])
    return out.getvalue()


def _f(x: float | None) -> str:
    return "" if x is None else f"{x:.6g}"


def leaderboard_json(lb: Leaderboard) -> str:
    return json.dumps(lb.to_dict(), indent=2, ensure_ascii=False) + "\n"
