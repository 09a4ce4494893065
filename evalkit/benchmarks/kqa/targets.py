"""K-QA's gold, a target type of its own (registered with ``evalkit.core.records.register_target``): the
statements an answer must and may contain (its Must_have / Nice_to_have), with the physician's answer.
Scored only when a run names a scorer (the ``kqa`` judge needs a judge server)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from evalkit.core.records import TargetKind, register_target


@dataclass(frozen=True, slots=True)
class Statements:
    """Statements an answer must contain and ones it may contain (must-have / nice-to-have), with the
    physician's reference answer when there is one. Stored as ``{must_have: [...], nice_to_have: [...],
    reference: text or null}``."""

    must_have: tuple[str, ...]
    nice_to_have: tuple[str, ...] = ()
    reference: str | None = None


def statements_json(target: Statements) -> dict[str, Any]:
    """The stored form of TARGET."""
    return {"must_have": list(target.must_have), "nice_to_have": list(target.nice_to_have),
            "reference": target.reference}


def statements_from_json(value: Any) -> Statements | None:
    """The Statements a stored VALUE holds, None when it holds none."""
    if not isinstance(value, dict):
        return None
    if set(value) in ({"must_have", "nice_to_have"}, {"must_have", "nice_to_have", "reference"}) and all(
            isinstance(value[k], list) and all(isinstance(s, str) for s in value[k])
            for k in ("must_have", "nice_to_have")) and isinstance(value.get("reference"), (str, type(None))):
        return Statements(tuple(value["must_have"]), tuple(value["nice_to_have"]), value.get("reference"))
    return None


STATEMENTS = register_target(TargetKind(Statements, statements_json, statements_from_json,
                                        "{must_have, nice_to_have, reference}"))
