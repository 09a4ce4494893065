"""IgakuQA's gold, as target types of its own (registered with ``evalkit.core.records.register_target``):
the sets of choices accepted and the number a calculation question asks for, each scored by the
``igakuqa`` scorer when a run names none."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from evalkit.core.records import TargetKind, register_target

SCORER = "igakuqa"  # the scorer of an item that names none (evalkit.benchmarks.igakuqa.scorer)


@dataclass(frozen=True, slots=True)
class ChoiceSets:
    """The sets of option letters accepted as right (an exam question may ask for several choices, and a
    few accept either of two). Right only when the letters picked equal one set exactly. Stored as
    ``{kind: "choices", accept: [[letters], ...]}``."""

    accept: tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class NumericAnswer:
    """A number to give (an exam's calculation questions): ``value`` the official number as text (compared
    exactly, as a decimal), ``answer`` the digits as published, ``template`` the question's answer line.
    Stored as ``{kind: "number", value, answer, template}``."""

    value: str
    answer: str
    template: str


def choices_json(target: ChoiceSets) -> dict[str, Any]:
    """The stored form of TARGET."""
    return {"kind": "choices", "accept": [list(a) for a in target.accept]}


def choices_from_json(value: Any) -> ChoiceSets | None:
    """The ChoiceSets a stored VALUE holds, None when it holds none."""
    if isinstance(value, dict) and set(value) == {"kind", "accept"} and value["kind"] == "choices" and isinstance(
            value["accept"], list) and all(isinstance(a, list) and all(isinstance(x, str) for x in a)
                                           for a in value["accept"]):
        return ChoiceSets(tuple(tuple(a) for a in value["accept"]))
    return None


def number_json(target: NumericAnswer) -> dict[str, Any]:
    """The stored form of TARGET."""
    return {"kind": "number", "value": target.value, "answer": target.answer, "template": target.template}


def number_from_json(value: Any) -> NumericAnswer | None:
    """The NumericAnswer a stored VALUE holds, None when it holds none."""
    if isinstance(value, dict) and set(value) == {"kind", "value", "answer", "template"} and \
            value["kind"] == "number" and all(isinstance(value[k], str) for k in ("value", "answer", "template")):
        return NumericAnswer(value["value"], value["answer"], value["template"])
    return None


CHOICES = register_target(TargetKind(ChoiceSets, choices_json, choices_from_json, "{kind: choices, accept}",
                                     (SCORER,)))
NUMBER = register_target(TargetKind(NumericAnswer, number_json, number_from_json,
                                    "{kind: number, value, answer, template}", (SCORER,)))
