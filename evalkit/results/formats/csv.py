"""CSV: one row per report (or leaderboard) row, the overlap split as columns, each other section as a
titled block after a blank line."""

from __future__ import annotations

from typing import Any

from evalkit.results.formats.registry import Format, register, register_format

FORMAT = register_format(Format("csv", "one row per table row"))


@register("report", "csv")
def report_csv(doc: Any, **_: Any) -> str:
    """One row per report row (with the overlap split's columns), then each section as a titled block."""
    from evalkit.results.report import report_csv as rows, section_csv

    text = rows(doc.report, sections=False)
    if doc.overlap is not None:
        from evalkit.results.overlap_tables import with_overlap_csv

        text = with_overlap_csv(text, doc.overlap[1], doc.overlap[0])
    blocks = [*doc.report.sections, *(s.table for s in doc.sections if s.csv_block)]
    return text + "".join("\n" + section_csv(t) for t in blocks)


@register("leaderboard", "csv")
def leaderboard_csv(doc: Any, **_: Any) -> str:
    """One row per leaderboard cell (with the clean-accuracy columns of an overlap file), then the sections."""
    from evalkit.results.leaderboard import leaderboard_csv as rows
    from evalkit.results.report import section_csv

    text = rows(doc.leaderboard)
    if doc.overlap is not None:
        from evalkit.results.overlap_tables import leaderboard_overlap_csv

        text = leaderboard_overlap_csv(text, doc.leaderboard, doc.overlap[1], doc.overlap[0])
    return text + "".join("\n" + section_csv(s.table) for s in doc.sections if s.csv_block)
