"""The whole report of some runs as one document, and its renderers (``evalkit report``).

``report_document`` reads the runs and makes everything a report shows: the ``Report`` (rows,
throughput, the scorers' sections), the notes and warnings about the runs (a partial snapshot, a
run with no sample), the truncation hints, and the document's own sections, each a
``records.ReportTable``: a suite's table (runs of ``evalkit run --suite``) and the split by an
overlap file. ``render_report`` lays the document out in a format of the renderer registry
(``evalkit.results.formats``: markdown, CSV, JSON or HTML) and ``report_renderables`` as rich tables;
a section is laid out by the same code whether a scorer or the document brings it. JSON keeps each section's figures as numbers under its own key
(``suites``, ``overlap``) beside the scorers' ``sections``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from evalkit.config import IntervalSettings, OverlapSettings, field_default
from evalkit.core.records import ReportTable
from evalkit.results.report import Report, build_report, run_labels
from evalkit.run.rundir import Run, empty_run_reason, load_runs, partial_note

@dataclass(frozen=True)
class DocumentSection:
    """A section the document adds to the report: its table (text cells, every format lays it out),
    the key its figures have in the JSON (``key``; with ``json_list`` the sections of one key are a
    list there, as ``suites``), those figures as JSON-able data, whether the CSV shows it as a block
    (the overlap split is columns there), and its id on the page."""

    key: str
    table: ReportTable
    data: Any = None
    csv_block: bool = True
    anchor: str | None = None  # the page's section id; None: laid out as a scorer's section
    json_list: bool = False


@dataclass
class ReportDocument:
    """Everything ``evalkit report`` shows of some runs. ``notes`` (partial snapshots) and ``warnings``
    (runs with no sample) are about the input and go to stderr; ``hints`` say what to change
    (truncated answers); ``overlap`` is the split behind the overlap section, for the CSV's columns."""

    report: Report
    runs: list[Run]
    sections: list[DocumentSection] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)
    overlap: tuple[str, list[Any]] | None = None  # (rule, OverlapRow per run and dataset)

    @property
    def rows(self) -> list[Any]:
        """The report's rows: per run and dataset, with CIs per named score (``api.report(runs).rows``)."""
        return self.report.rows

    def to_dict(self) -> dict[str, Any]:
        """The JSON document: the report's keys, then each section's figures under its key."""
        return _with_sections(self.report.to_dict(), self.sections)


def _with_sections(doc: dict[str, Any], sections: Sequence[DocumentSection]) -> dict[str, Any]:
    for section in sections:
        if section.json_list:
            doc.setdefault(section.key, []).append(section.data)
        else:
            doc[section.key] = section.data
    return doc


def report_document(runs: Iterable["str | Path | Run"], *, by: Sequence[str] = (),
                    ci: str = field_default(IntervalSettings, "ci"),
                    confidence: float = field_default(IntervalSettings, "confidence"),
                    n_resamples: int = field_default(IntervalSettings, "n_resamples"),
                    seed: int = field_default(IntervalSettings, "seed"), ks: Sequence[int] = (),
                    overlap_file: "str | Path | None" = None,
                    overlap_rule: str = field_default(OverlapSettings, "rule"),
                    overlap_stale: str = field_default(OverlapSettings, "stale")) -> ReportDocument:
    """The report of RUNS with its notes, warnings, hints and sections (suite tables; with OVERLAP_FILE,
    the split by it under OVERLAP_RULE; items whose text it did not flag: OVERLAP_STALE). ValueError
    when no run has a sample, or an item's text is not the overlap file's (``overlap_split.check_overlap``);
    OSError / ValueError for a run or an overlap file that cannot be read."""
    from evalkit.results.report_extras import unloadable_scorers
    from evalkit.data.suites import report_suite_tables, suite_section

    loaded = load_runs(runs)
    notes = [n for n in map(partial_note, loaded) if n]
    empty = [why for why in map(empty_run_reason, loaded) if why is not None]
    if len(empty) == len(loaded):
        raise ValueError("no run has a sample to report:\n" + "\n".join(empty))
    report = build_report(loaded, by=by, ci=ci, confidence=confidence,  # type: ignore[arg-type]
                          n_resamples=n_resamples, seed=seed, ks=ks)
    labels = run_labels(loaded)
    sections = [DocumentSection("suites", suite_section(t), t.to_dict(), json_list=True)
                for t in report_suite_tables(loaded, labels, report.rows)]
    overlap = None
    warnings = empty + unloadable_scorers(loaded)
    if overlap_file is not None:
        checked: list[str] = []  # what checking the runs against the file said: on stderr and under the table
        overlap = (overlap_rule, _overlap_split(loaded, labels, Path(overlap_file), overlap_rule, overlap_stale,
                                                checked))
        warnings += checked
        sections.append(_overlap_section(*overlap, checked))
    return ReportDocument(report, loaded, sections, notes, warnings, _hints(loaded, labels, report), overlap)


def _overlap_split(loaded: Sequence[Run], labels: Sequence[str], path: Path, rule: str, stale: str,
                   warnings: list[str]) -> list[Any]:
    """Each run's datasets split by the overlap file (evalkit.results.overlap_split), each run checked against
    it first; what the check says goes into WARNINGS."""
    from evalkit.results.overlap_split import check_overlap, overlap_rows, read_overlap

    overlap = read_overlap(path, rule, stale)
    rows = []
    for run, label in zip(loaded, labels):
        checked, notes = check_overlap(overlap, run.items(), label)
        warnings.extend(n for n in notes if n not in warnings)
        rows += overlap_rows(label, run.items(), checked)
    return rows


def _overlap_section(rule: str, rows: Sequence[Any], checked: Sequence[str] = ()) -> DocumentSection:
    from evalkit.results.overlap_split import OVERLAP_HEADER, overlap_cells
    from evalkit.results.overlap_tables import OVERLAP_NOTE, overlap_doc

    table = ReportTable(f"Accuracy by overlap with training data ({rule} rule)", OVERLAP_HEADER,
                        [overlap_cells(r) for r in rows], [OVERLAP_NOTE.format(rule=rule), *checked])
    return DocumentSection("overlap", table, overlap_doc(rows, rule, checked), csv_block=False, anchor="overlap")


def _hints(loaded: Sequence[Run], labels: Sequence[str], report: Report) -> list[str]:
    """Truncation hints per run (its label first when there are several runs)."""
    from evalkit.results.report_extras import truncation_hints

    out = []
    for run, label in zip(loaded, labels):
        limit = ((run.manifest or {}).get("generation") or {}).get("max_new_tokens")
        rows = [r for r in report.rows if r.run == label and r.group is None]
        out += [f"{label}: {hint}" if len(loaded) > 1 else hint for hint in truncation_hints(rows, limit)]
    return out


# --- renderers: thin wrappers over the registry (evalkit.results.formats) ----------------------

def report_renderables(doc: ReportDocument) -> list[Any]:
    """The document as rich renderables for a terminal: the report's tables, the document's sections,
    the hints."""
    from evalkit.results.formats import render

    return render("report", doc, "rich")


def render_report(doc: ReportDocument, fmt: str) -> str:
    """The document as text in FMT: one of ``format_names("report", terminal=False)`` (markdown, csv,
    json, html)."""
    from evalkit.results.formats import render

    return render("report", doc, fmt, terminal=False)


def format_report(report: Report, fmt: str) -> str:
    """A bare report (no document sections) as text in FMT, as ``render_report`` lays it out."""
    return render_report(ReportDocument(report, []), fmt)


# --- the leaderboard -----------------------------------------------------------------------------

@dataclass
class LeaderboardDocument:
    """Everything ``evalkit leaderboard`` shows: the leaderboard, warnings about runs left out (to
    stderr), and its sections (the clean-accuracy table of an overlap file); ``overlap`` is the split
    behind that section, for the CSV's columns."""

    leaderboard: Any
    sections: list[DocumentSection] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    overlap: tuple[str, list[Any]] | None = None  # (rule, leaderboard_overlap's rows)

    def to_dict(self) -> dict[str, Any]:
        return _with_sections(self.leaderboard.to_dict(), self.sections)


def leaderboard_document(runs_or_root: Any, *, overlap_file: "str | Path | None" = None,
                         overlap_rule: str = field_default(OverlapSettings, "rule"),
                         overlap_stale: str = field_default(OverlapSettings, "stale"),
                         **options: Any) -> LeaderboardDocument:
    """The leaderboard of RUNS_OR_ROOT (``leaderboard.build_leaderboard``'s OPTIONS) with the warnings
    about the runs it skipped and, with OVERLAP_FILE, the accuracy of each cell on the clean items
    (items whose text the file did not flag: OVERLAP_STALE). ValueError when no run is left (naming
    the filters), when the overlap split is asked of a score other than the multiple-choice verdict,
    or when an item's text is not the overlap file's (``overlap_split.check_overlap``)."""
    from evalkit.results.leaderboard import build_leaderboard
    from evalkit.core.records import LEGACY_SCORE

    lb = build_leaderboard(runs_or_root, **options)
    if not lb.rows:
        where = runs_or_root if isinstance(runs_or_root, (str, Path)) else "the runs given"
        if lb.filters:
            given = "; ".join(f"--{k.replace('_', '-')} {', '.join(v)}" for k, v in lb.filters.items())
            raise ValueError(f"no run under {where} matches the filters ({given})")
        raise ValueError(f"no runs (samples.jsonl) found under {where}")
    doc = LeaderboardDocument(lb, warnings=[f"skipped {reason}" for reason in lb.skipped])
    if overlap_file is not None:
        if lb.score != LEGACY_SCORE:
            raise ValueError(f"--overlap splits the multiple-choice verdict ({LEGACY_SCORE}), not --score {lb.score}")
        from evalkit.results.overlap_split import read_overlap
        from evalkit.results.overlap_tables import OVERLAP_NOTE, leaderboard_clean_cells, leaderboard_overlap, \
            leaderboard_overlap_doc

        checked: list[str] = []  # what checking the runs against the file said: on stderr and under the table
        split = leaderboard_overlap(lb, read_overlap(Path(overlap_file), overlap_rule, overlap_stale), checked)
        doc.warnings += checked
        header, rows = leaderboard_clean_cells(lb, split)
        table = ReportTable(f"Accuracy on clean items ({overlap_rule} rule)", header, rows,
                            [OVERLAP_NOTE.format(rule=overlap_rule) + " Ranks are the leaderboard's (all items).",
                             *checked])
        doc.sections.append(DocumentSection("overlap", table, leaderboard_overlap_doc(split, overlap_rule, checked),
                                            csv_block=False, anchor="overlap"))
        doc.overlap = (overlap_rule, split)
    return doc


def leaderboard_renderables(doc: LeaderboardDocument, width: int | None = None) -> list[Any]:
    """The leaderboard (a table per group, each row on one line of WIDTH columns) and its sections as rich tables."""
    from evalkit.results.formats import render

    return render("leaderboard", doc, "rich", width=width)


def render_leaderboard(doc: LeaderboardDocument, fmt: str) -> str:
    """The leaderboard document as text in FMT: one of ``format_names("leaderboard", terminal=False)``."""
    from evalkit.results.formats import render

    return render("leaderboard", doc, fmt, terminal=False)


def format_leaderboard(lb: Any, fmt: str) -> str:
    """A bare leaderboard (no sections) as text in FMT, as ``render_leaderboard`` lays it out."""
    return render_leaderboard(LeaderboardDocument(lb), fmt)
