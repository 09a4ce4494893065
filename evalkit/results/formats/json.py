"""JSON: the document's own dict (``to_dict()``), its figures as numbers, indented, UTF-8 kept."""

from __future__ import annotations

import json
from typing import Any

from evalkit.results.formats.registry import Format, register, register_format

FORMAT = register_format(Format("json", "the figures as a JSON document"))


def dumps(doc: Any) -> str:
    """DOC as the JSON every format module writes: indented, non-ASCII kept, a final newline."""
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


@register("report", "json")
@register("leaderboard", "json")
@register("gate", "json")
def document_json(doc: Any, **_: Any) -> str:
    """A report or leaderboard document (each section's figures under its key) or a gate's result."""
    return dumps(doc.to_dict())
