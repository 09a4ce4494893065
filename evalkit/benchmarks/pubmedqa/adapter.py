"""The ``pubmedqa`` adapter: PubMedQA records only (``final_decision`` required), with the abstract."""

from __future__ import annotations

from typing import Any

from evalkit.core.records import Item
from evalkit.data.adapters import DECISION_OPTIONS, AdapterError, mcq, register_adapter

PUBMEDQA_OPTIONS = DECISION_OPTIONS  # yes / no / maybe as A / B / C: the generic decision field's options


@register_adapter("pubmedqa")
def pubmedqa(record: Any, *, dataset: str, key: str | None = None, allow: frozenset[str] = frozenset()) -> Item:
    """A PubMedQA record: question, abstract, and ``final_decision`` yes / no / maybe."""
    if isinstance(record, dict) and "final_decision" not in record:
        raise AdapterError(["missing final_decision (a PubMedQA record needs yes, no or maybe)"])
    return mcq(record, dataset=dataset, key=key, allow=allow)
