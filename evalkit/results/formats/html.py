"""HTML: a self-contained page (its CSS, JavaScript and data inline), written to a file."""

from __future__ import annotations

from typing import Any

from evalkit.config import CompareSettings, field_default
from evalkit.results.formats.registry import Format, register, register_format

FORMAT = register_format(Format("html", "a self-contained page", page=True))


def _sections(doc: Any) -> str:
    from evalkit.results.pages.report import section_html

    return "".join(section_html(s.table, anchor=s.anchor) for s in doc.sections)


@register("report", "html")
def report_page(doc: Any, **_: Any) -> str:
    """A report document's page: tables, plot, the document's sections and the sample browser."""
    from evalkit.results.pages.report import render_html

    return render_html(doc.report, doc.runs, sections=_sections(doc))


@register("leaderboard", "html")
def leaderboard_page(doc: Any, **_: Any) -> str:
    """A leaderboard document's page: the tables, then its sections."""
    from evalkit.results.pages.report import render_leaderboard_html

    return render_leaderboard_html(doc.leaderboard, sections=_sections(doc))


@register("compare", "html")
def compare_page(comparison: Any, title: str = field_default(CompareSettings, "title"), **options: Any) -> str:
    """A comparison's page (``results.compare.Comparison``), item by item; OPTIONS are
    ``pages.compare.render_compare_html``'s."""
    from evalkit.results.pages.compare import render_compare_html

    return render_compare_html(comparison, title=title, **options)
