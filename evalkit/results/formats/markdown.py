"""GitHub markdown: the tables, then each section of the document as a titled table."""

from __future__ import annotations

from typing import Any

from evalkit.results.formats.registry import Format, register, register_format

FORMAT = register_format(Format("markdown", "GitHub markdown tables"))


def with_sections(table_text: str, sections: Any) -> str:
    """TABLE_TEXT, then each of SECTIONS (``report_document.DocumentSection``) as a markdown table."""
    from evalkit.results.report import section_markdown

    lines = [line for s in sections for line in section_markdown(s.table)]
    return table_text + ("\n" + "\n".join(lines) if lines else "")


@register("report", "markdown")
def report_markdown(doc: Any, **_: Any) -> str:
    """A report document: the report's tables (its scorers' sections too), then the document's sections."""
    from evalkit.results.report import report_markdown as tables

    return with_sections(tables(doc.report), doc.sections)


@register("leaderboard", "markdown")
def leaderboard_markdown(doc: Any, **_: Any) -> str:
    """A leaderboard document: a table per group, then its sections."""
    from evalkit.results.leaderboard import leaderboard_markdown as tables

    return with_sections(tables(doc.leaderboard), doc.sections)
