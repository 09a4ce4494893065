"""Accuracy split by overlap, laid out: the JSON data and CSV columns of the report's and the
leaderboard's split, the leaderboard's clean-accuracy cells, and the compare page's section and
per-item marks.

The numbers are ``evalkit.results.overlap_split``'s (``overlap_rows``: overlap rate, accuracy on
overlapping and on clean items with Wilson intervals, the difference with Newcombe's); this
module only lays them out. ``evalkit.results.report_document`` makes the split a section of the report
and of the leaderboard (a table every format lays out like a scorer's, its figures under the
JSON's ``overlap`` key, CSV columns) and changes none of their figures.
"""

from __future__ import annotations

import csv
import io
from html import escape
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from evalkit.config import DEFAULT_CONFIDENCE
from evalkit.results.overlap_split import (OVERLAP_HEADER, OverlapRow, OverlapSet, check_overlap, overlap_cells,
                                   overlap_rows)

if TYPE_CHECKING:
    from evalkit.results.leaderboard import Leaderboard
    from evalkit.run.rundir import ItemKey

OVERLAP, CLEAN, NOT_COVERED = "o", "c", "-"
OVERLAP_NOTE = ("Overlapping: the overlap file's {rule} rule flags the item; clean: it covers the item and does not "
                "flag it. Accuracy with 95% Wilson intervals; the difference (overlapping \u2212 clean) with "
                "Newcombe's interval. Failed requests are left out.")


def overlap_doc(rows: Sequence[OverlapRow], rule: str, notes: Sequence[str] = ()) -> dict[str, Any]:
    """The split as JSON-able data: the rule, one entry per (run, dataset), and NOTES (what checking
    the runs against the overlap file said: ``overlap_split.check_overlap``) when there are any."""
    return {"rule": rule, "rows": [r.to_dict() for r in rows], **({"notes": list(notes)} if notes else {})}


CSV_FIELDS = ["overlap_rule", "overlap_n", "overlap_items", "overlap_rate", "acc_overlap", "acc_overlap_ci_low",
              "acc_overlap_ci_high", "acc_clean", "acc_clean_ci_low", "acc_clean_ci_high", "overlap_minus_clean",
              "overlap_minus_clean_ci_low", "overlap_minus_clean_ci_high", "not_in_overlap_file"]


def _num(x: float | None) -> str:
    return "" if x is None else f"{x:.6g}"


def overlap_csv_cells(r: OverlapRow | None, rule: str) -> list[str]:
    """CSV_FIELDS for one (run, dataset); blanks where there is no split (a group's row)."""
    if r is None:
        return [""] * len(CSV_FIELDS)

    def ci(pair: tuple[float, float] | None) -> list[str]:
        return ["", ""] if pair is None else [_num(pair[0]), _num(pair[1])]

    return [rule, str(r.n), str(r.overlapping), _num(r.overlap_rate), _num(r.acc_overlap), *ci(r.acc_overlap_ci),
            _num(r.acc_clean), *ci(r.acc_clean_ci), _num(r.diff), *ci(r.diff_ci), str(r.not_covered)]


def with_overlap_csv(text: str, rows: Sequence[OverlapRow], rule: str,
                     one_dataset: Callable[[Mapping[str, str]], bool] = lambda line: not line.get("group")) -> str:
    """A CSV with CSV_FIELDS appended to each line of one dataset of one run (columns ``run`` and
    ``dataset``; ONE_DATASET tells those lines from a group's or a macro average's); other lines
    get blanks."""
    by_key = {(r.run, r.dataset): r for r in rows}
    reader = csv.reader(io.StringIO(text))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = next(reader)
    writer.writerow(header + CSV_FIELDS)
    for line in reader:
        named = dict(zip(header, line))
        split = by_key.get((named.get("run", ""), named.get("dataset", ""))) if one_dataset(named) else None
        writer.writerow(line + overlap_csv_cells(split, rule))
    return out.getvalue()


def overlap_table_html(rows: Sequence[OverlapRow], rule: str, *, section_id: str = "overlap") -> str:
    """The split as a page section (every text escaped)."""
    head = "".join(f'<th class="{"num" if i >= 2 else ""}">{escape(h)}</th>' for i, h in enumerate(OVERLAP_HEADER))
    body = "".join("<tr>" + "".join(f'<td class="{"num" if i >= 2 else ""}">{escape(c)}</td>'
                                    for i, c in enumerate(overlap_cells(r))) + "</tr>" for r in rows)
    return (f'<section id="{section_id}"><h2>Accuracy by overlap with training data ({escape(rule)} rule)</h2>'
            f'<p class="note">{escape(OVERLAP_NOTE.format(rule=rule))}</p>'
            f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
            "</section>\n")


def item_marks(items: Sequence["ItemKey"], overlap: OverlapSet) -> str:
    """One letter per item: OVERLAP, CLEAN, or NOT_COVERED (the overlap file does not list it)."""
    return "".join(NOT_COVERED if k not in overlap.covered else OVERLAP if k in overlap.overlapping else CLEAN
                   for k in items)


# ---------------------------------------------------------------- the leaderboard


def leaderboard_overlap(lb: "Leaderboard", overlap: OverlapSet, notes: list[str] | None = None,
                        confidence: float = DEFAULT_CONFIDENCE) -> list[tuple[str, str, dict[str, OverlapRow]]]:
    """Per leaderboard row (in its order): its rank (or why it is listed apart), its name, and per
    dataset the split of the run behind that cell. Each run is checked against OVERLAP first
    (``overlap_split.check_overlap``: StaleOverlapError, or items left out); NOTES gets what it says."""
    from evalkit.results.leaderboard import row_name, row_status
    from evalkit.run.rundir import load_run

    out = []
    loaded: dict[str, Any] = {}  # a run behind several cells is read once
    for row in lb.rows:
        cells: dict[str, OverlapRow] = {}
        for dataset, cell in row.cells.items():
            if cell.run_path not in loaded:
                loaded[cell.run_path] = load_run(cell.run_path)
            items = {k: s for k, s in loaded[cell.run_path].items().items() if k[0] == dataset}
            checked, said = check_overlap(overlap, items, cell.run)
            if notes is not None:
                notes.extend(n for n in said if n not in notes)
            split = overlap_rows(cell.run, items, checked, confidence)
            if split:
                cells[dataset] = split[0]
        out.append((str(row.rank) if row.ranked else row_status(row), row_name(lb, row), cells))
    return out


def _clean_text(r: OverlapRow | None) -> str:
    if r is None:
        return "-"
    acc = "-" if r.acc_clean is None or r.acc_clean_ci is None else (
        f"{100 * r.acc_clean:.1f} [{100 * r.acc_clean_ci[0]:.1f}, {100 * r.acc_clean_ci[1]:.1f}]")
    return f"{acc} ({r.n - r.overlapping} clean, {100 * r.overlap_rate:.0f}% overlap)"


def leaderboard_clean_cells(lb: "Leaderboard", split: Sequence[tuple[str, str, dict[str, OverlapRow]]]
                            ) -> tuple[list[str], list[list[str]]]:
    """The clean-accuracy table: the leaderboard's rows and datasets, each cell the accuracy on
    the clean items with its CI, how many are clean and the overlap rate."""
    header = ["#", "configuration", *lb.datasets]
    return header, [[rank, name, *(_clean_text(cells.get(d)) for d in lb.datasets)] for rank, name, cells in split]


def leaderboard_overlap_doc(split: Sequence[tuple[str, str, dict[str, OverlapRow]]], rule: str,
                            notes: Sequence[str] = ()) -> dict[str, Any]:
    rows = [{"rank": rank, "configuration": name, "cells": {d: r.to_dict() for d, r in cells.items()}}
            for rank, name, cells in split]
    return {"rule": rule, "rows": rows, **({"notes": list(notes)} if notes else {})}


def leaderboard_overlap_csv(text: str, lb: "Leaderboard", split: Sequence[tuple[str, str, dict[str, OverlapRow]]],
                            rule: str) -> str:
    """The leaderboard's long CSV with CSV_FIELDS on each (row, dataset) line (blank on macro lines)."""
    rows = [r for _, _, cells in split for r in cells.values()]
    return with_overlap_csv(text, rows, rule, lambda line: line.get("dataset") != "macro")


__all__ = ["CLEAN", "CSV_FIELDS", "NOT_COVERED", "OVERLAP", "OVERLAP_NOTE", "item_marks", "leaderboard_clean_cells",
           "leaderboard_overlap", "leaderboard_overlap_csv", "leaderboard_overlap_doc", "overlap_csv_cells",
           "overlap_doc", "overlap_table_html", "with_overlap_csv"]
