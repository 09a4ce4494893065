"""Suites: a named list of registered benchmarks run together and reported as one table.

A suite is data (``eval_data/suites/NAME.json``): its benchmarks (registry names,
with the column each gets and, e.g. for questions about an abstract, that the prompt must show
the item's context), the prompt and generation settings its source used, and the
published figures to compare with, and the scorers that grade it (``"scorers"``, with
``"scorer_options"``: ``{scorer: {key: value}}``, for the whole suite or on a benchmark's row).
``evalkit run --suite NAME`` evaluates every benchmark in one run (a row naming other scorers
than the rest becomes a run of its own, as a run has one scoring plan); ``evalkit report`` then
prints one column per benchmark plus their average, with the published rows beneath.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from evalkit.config import DEFAULT_DATA_DIR, DEFAULT_PROMPT
from evalkit.core.records import LEGACY_SCORE, ReportTable
from evalkit.data.registry import bundled_dir, get_benchmark
from evalkit.core.store import parse_json
from evalkit.core.errors import InputError

SUITES_DIR = "suites"


class SuiteError(InputError):
    """A suite file is missing, malformed, or names something unknown."""


@dataclass(frozen=True)
class SuiteBenchmark:
    """One column of a suite: a registered benchmark."""

    name: str
    column: str
    prompt_variant: str | None = None  # "context": the prompt must show the item's context (abstract)
    note: str = ""
    scorers: tuple[str, ...] | None = None  # None: the suite's
    scorer_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # added to the suite's


@dataclass(frozen=True)
class PublishedRow:
    """A published result to compare with: accuracy in % per benchmark, and the average as printed."""

    model: str
    scores: dict[str, float]
    average: float | None = None


@dataclass(frozen=True)
class Suite:
    name: str
    title: str
    benchmarks: tuple[SuiteBenchmark, ...]
    prompt: str = DEFAULT_PROMPT
    generation: dict[str, Any] = field(default_factory=dict)
    published: tuple[PublishedRow, ...] = ()
    published_source: str = ""
    path: Path | None = None
    scorers: tuple[str, ...] | None = None  # None: the run's (--scorer, else the items' own: Item.default_scorers)
    scorer_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    table_score: str | None = None  # the score that fills the suite table; None: its scorer's primary score

    def files(self, data_dir: str | Path = DEFAULT_DATA_DIR) -> list[Path]:
        """The benchmark files under DATA_DIR, in column order; SuiteError naming every missing one."""
        paths, missing = [], []
        for b in self.benchmarks:
            bench = get_benchmark(b.name)
            paths.append(bench.local_path(data_dir))
            for needed in (bench, *(get_benchmark(r) for r in bench.requires)):
                if not needed.local_path(data_dir).exists():
                    missing.append(needed)
        if missing:
            where = "" if Path(data_dir) == DEFAULT_DATA_DIR else f" --data-dir {data_dir}"
            names = " ".join(dict.fromkeys(m.name for m in missing))
            raise SuiteError(f"suite {self.name!r}: missing benchmark files "
                             f"{', '.join(str(m.local_path(data_dir)) for m in missing)}; "
                             f"`evalkit data fetch {names}{where}` fetches them (or pass --data-dir)")
        return paths

    def to_manifest(self) -> dict[str, Any]:
        """What a run's manifest records of the suite (enough for the report's layout)."""
        doc = {"name": self.name, "title": self.title,
               "benchmarks": [{"name": b.name, "column": b.column} for b in self.benchmarks]}
        if self.table_score:
            doc["score"] = self.table_score
        return doc


def suite_path(name_or_path: str) -> Path:
    """A suite file: a path as given, else ``eval_data/suites/NAME.json``."""
    p = Path(name_or_path)
    if p.suffix == ".json" and p.exists():
        return p
    return bundled_dir("eval_data") / SUITES_DIR / f"{name_or_path}.json"


def known_suites() -> list[str]:
    folder = bundled_dir("eval_data") / SUITES_DIR
    return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


def load_suite(name_or_path: str) -> Suite:
    """Read and check a suite: every benchmark must be in the registry."""
    path = suite_path(name_or_path)
    if not path.exists():
        raise SuiteError(f"unknown suite {name_or_path!r} (known: {', '.join(known_suites()) or 'none'})")
    try:
        data = parse_json(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SuiteError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    try:
        benchmarks = tuple(SuiteBenchmark(name=b["name"], column=b.get("column", b["name"]),
                                          prompt_variant=b.get("prompt_variant"), note=b.get("note", ""),
                                          scorers=_scorer_names(b), scorer_options=_scorer_options(b))
                           for b in data["benchmarks"])
        published = data.get("published") or {}
        rows = tuple(PublishedRow(model=r["model"], scores={k: float(v) for k, v in r["scores"].items()},
                                  average=r.get("average")) for r in published.get("rows", []))
        suite = Suite(name=data.get("name", path.stem), title=data.get("title", path.stem), benchmarks=benchmarks,
                      prompt=data.get("prompt", DEFAULT_PROMPT), generation=dict(data.get("generation") or {}),
                      published=rows, published_source=published.get("source", ""), path=path,
                      scorers=_scorer_names(data), scorer_options=_scorer_options(data),
                      table_score=_table_score(data))
    except (KeyError, TypeError, ValueError) as exc:
        raise SuiteError(f"{path}: malformed suite ({type(exc).__name__}: {exc})") from None
    for b in suite.benchmarks:
        try:
            get_benchmark(b.name)
        except KeyError as exc:
            raise SuiteError(f"{path}: {exc.args[0]}") from None
    return suite


def _scorer_names(doc: Mapping[str, Any]) -> tuple[str, ...] | None:
    """DOC's ``scorers`` (a list of scorer names or ``module:attr``), None when it names none."""
    names = doc.get("scorers")
    if names is None:
        return None
    if isinstance(names, str) or not isinstance(names, list) or not names \
            or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"'scorers' must be a non-empty list of scorer names, got {names!r}")
    return tuple(names)


def _table_score(doc: Mapping[str, Any]) -> str | None:
    """DOC's ``table_score``: a score name (e.g. ``correct``, or an exam's own score), None when it names none."""
    score = doc.get("table_score")
    if score is not None and (not isinstance(score, str) or not score):
        raise ValueError(f"'table_score' must be a score name such as \"correct\", got {score!r}")
    return score


def _scorer_options(doc: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """DOC's ``scorer_options``: {scorer: {key: value}}."""
    options = doc.get("scorer_options") or {}
    if not isinstance(options, Mapping) or not all(isinstance(v, Mapping) for v in options.values()):
        raise ValueError(f"'scorer_options' must map each scorer to its options, got {options!r}")
    return {str(k): dict(v) for k, v in options.items()}


def check_prompt(suite: Suite, template: Any) -> None:
    """SuiteError when a benchmark needs the context in its prompt and TEMPLATE (a PromptTemplate) cannot show it."""
    shows = "context" in template.fields or (template.context_variant is not None
                                             and "context" in template.context_variant.fields)
    for b in suite.benchmarks:
        if b.prompt_variant == "context" and not shows:
            raise SuiteError(f"suite {suite.name!r}: {b.name} needs a prompt that shows the abstract, and "
                             f"template {template.name!r} has neither a {{context}} field nor a _context variant")


@dataclass
class SuiteTable:
    """A suite's layout filled in: one row per run (the figure of ``score`` per column, in % for a share;
    None where a run has no such score) and the published rows."""

    suite: Mapping[str, Any]
    columns: list[str]
    rows: list[tuple[str, list[float | None], float | None]]
    published: list[tuple[str, list[float | None], float | None]]
    source: str = ""
    score: str = LEGACY_SCORE

    def to_dict(self) -> dict[str, Any]:
        def as_rows(rows):
            return [{"model": m, "scores": dict(zip(self.columns, v)), "average": a} for m, v, a in rows]
        return {"suite": self.suite.get("name"), "title": self.suite.get("title"), "columns": self.columns,
                "score": self.score, "runs": as_rows(self.rows), "published": as_rows(self.published),
                "published_source": self.source}


def _average(values: Sequence[float | None]) -> float | None:
    """The unweighted mean over the columns, as the published tables average; None unless every column has a value."""
    return sum(values) / len(values) if values and all(v is not None for v in values) else None  # type: ignore[misc]


def suite_table(suite_doc: Mapping[str, Any], report_rows: Sequence[Any], run_labels: Sequence[str],
                score: str | None = None) -> SuiteTable:
    """The suite layout for the runs RUN_LABELS of a report (rows with .run, .dataset, .group, .n, .scores).

    SUITE_DOC is the manifest's ``suite`` record; published rows come from the suite file when it is known.
    The cells are the figures of SCORE (in % when its metric gives a share): the suite file's
    ``table_score`` (the record's ``score``) if it names one, else SCORE, else the multiple-choice
    verdict (``correct``). A run without that score on a benchmark has None there, never 0.
    """
    score = suite_doc.get("score") or score or LEGACY_SCORE
    benches = [b["name"] for b in suite_doc["benchmarks"]]
    columns = [b.get("column", b["name"]) for b in suite_doc["benchmarks"]]
    rows = []
    for label in run_labels:
        figures = {r.dataset: _figure(r, score) for r in report_rows if r.run == label and r.group is None and r.n}
        values = [figures.get(b) for b in benches]
        rows.append((label, values, _average(values)))
    published, source = [], ""
    try:
        suite = load_suite(str(suite_doc["name"]))
    except SuiteError:
        suite = None
    if suite is not None:
        source = suite.published_source
        for p in suite.published:
            values = [p.scores.get(b) for b in benches]
            published.append((p.model, values, p.average if p.average is not None else _average(values)))
    return SuiteTable(dict(suite_doc), columns, rows, published, source, score)


def _figure(row: Any, score: str) -> float | None:
    """A report row's cell in a suite table: the SCORE's figure (x100 for a share); None without it."""
    cell = (getattr(row, "scores", None) or {}).get(score)
    if cell is None or cell.mean is None:
        return None
    return 100 * cell.mean if cell.kind == "binary" else cell.mean


def primary_score(run: Any) -> str:
    """The score a run's scorer is first judged by: the first score its manifest records a metric for
    (a scorer's metrics in the order it declares them), else the multiple-choice verdict."""
    return next(iter(getattr(run, "metrics", None) or {}), LEGACY_SCORE)


def report_suite_tables(runs: Sequence[Any], labels: Sequence[str], report_rows: Sequence[Any]) -> list[SuiteTable]:
    """One SuiteTable per suite among the runs' manifests, covering the runs of that suite; a suite
    that names no table score shows the primary score of its first run's scorer."""
    by_suite: dict[str, tuple[Mapping[str, Any], list[str], Any]] = {}
    for run, label in zip(runs, labels):
        doc = (run.manifest or {}).get("suite")
        if isinstance(doc, Mapping) and doc.get("benchmarks"):
            by_suite.setdefault(str(doc.get("name")), (doc, [], run))[1].append(label)
    return [suite_table(doc, report_rows, names, primary_score(first)) for doc, names, first in by_suite.values()]


def _cell(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def suite_section(table: SuiteTable) -> ReportTable:
    """The layout as a report section: one row per run, then the published rows, and the average."""
    what = "accuracy %" if table.score == LEGACY_SCORE else f"score {table.score}; shares in %"
    rows = [[name, *map(_cell, values), _cell(avg)] for name, values, avg in table.rows]
    rows += [[f"published: {name}", *map(_cell, values), _cell(avg)] for name, values, avg in table.published]
    return ReportTable(f"Suite {table.suite.get('name')}: {table.suite.get('title', '')} ({what})",
                       ["model / run", *table.columns, "Avg"], rows,
                       [f"published: {table.source}"] if table.source else [], label_columns=1,
                       reference_from=len(table.rows) if table.published else None)
