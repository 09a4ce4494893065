"""The terminal's format: rich tables (``--format rich``; a sweep's trend calls it ``table``, a rating
study's report ``text``)."""

from __future__ import annotations

from typing import Any

from evalkit.results.formats.registry import Format, register, register_format

FORMAT = register_format(Format("text", "tables in the terminal", aliases=("rich", "table"), terminal=True))


@register("report", "rich")
def report_renderables(doc: Any, **_: Any) -> list[Any]:
    """A report document as rich renderables: the report's tables, the document's sections, the hints."""
    from rich.text import Text

    from evalkit.results.report import report_tables, section_rich_table

    out: list[Any] = list(report_tables(doc.report))
    out += [section_rich_table(s.table) for s in doc.sections]
    out += [Text(f"hint: {hint}") for hint in doc.hints]
    return out


@register("leaderboard", "rich")
def leaderboard_renderables(doc: Any, width: int | None = None, **_: Any) -> list[Any]:
    """The leaderboard (a table per group, each row on one line of WIDTH columns) and its sections."""
    from evalkit.results.leaderboard import leaderboard_tables
    from evalkit.results.report import section_rich_table

    return [*leaderboard_tables(doc.leaderboard, width), *(section_rich_table(s.table) for s in doc.sections)]


@register("gate", "rich")
def gate_renderables(result: Any, flips: int = 0, **_: Any) -> list[Any]:
    """The gate's verdict table and, with FLIPS, up to that many right-to-wrong items per dataset."""
    from evalkit.results.gate import flips_table, gate_table

    table = flips_table(result, limit=flips) if flips else None
    return [gate_table(result), *([table] if table is not None else [])]


@register("table", "rich")
def table_renderables(table: Any, **_: Any) -> list[Any]:
    """One ``ReportTable`` (a scorer's or an extractor's own table) as a rich table, its notes the caption."""
    from evalkit.results.report import section_rich_table

    return [section_rich_table(table)]
