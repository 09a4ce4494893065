"""A rating study's rubrics: the shipped rubric files read with what raters need beside the judge's
fields (each axis's definition, and for pairwise axes whether the pick is the better or the worse answer)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalkit.scoring.rubrics import RubricError, load_rubric
from evalkit.core.store import parse_json

DESIGNS = ("independent", "pairwise", "both")
POOLS = ("physician", "lay")
# The shipped rubric of each (design, pool) a study rates with, unless told otherwise.
STUDY_RUBRICS = {("independent", "physician"): "medpalm2_physician",
                 ("independent", "lay"): "medpalm2_lay",
                 ("pairwise", "physician"): "medpalm2_pairwise"}
PAIR_CHOICES = ("A", "B", "tie")


@dataclass(frozen=True)
class StudyAxis:
    """One axis as a rater sees it: its question, its labelled choices (worst first for an
    independent axis; A / B / tie for a pairwise one), its definition; ``picks`` is "worse" on a
    pairwise axis whose chosen answer is the one with more of a fault, else "better"."""

    name: str
    question: str
    choices: tuple[str, ...]
    definition: str = ""
    picks: str = "better"


@dataclass(frozen=True)
class StudyRubric:
    """A rubric a study's raters answer: its name, whether it rates one answer or a pair, its axes."""

    name: str
    pairwise: bool
    axes: tuple[StudyAxis, ...]
    description: str = ""

    def axis(self, name: str) -> StudyAxis:
        """The axis called NAME (KeyError when there is none)."""
        for a in self.axes:
            if a.name == name:
                return a
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """The rubric as stored in a study (so a study keeps the wording its raters saw)."""
        return {"name": self.name, "pairwise": self.pairwise, "description": self.description,
                "axes": [{"name": a.name, "question": a.question, "choices": list(a.choices),
                          "definition": a.definition, "picks": a.picks} for a in self.axes]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "StudyRubric":
        """The inverse of ``to_dict``."""
        return cls(name=data["name"], pairwise=bool(data["pairwise"]), description=data.get("description", ""),
                   axes=tuple(StudyAxis(a["name"], a["question"], tuple(a["choices"]), a.get("definition", ""),
                                        a.get("picks", "better")) for a in data["axes"]))


def load_study_rubric(name_or_file: str | Path) -> StudyRubric:
    """The rubric NAME_OR_FILE (shipped name or path) as raters see it. A pairwise rubric is one whose
    every axis has the scale A / B / tie; its axes may say ``"picks": "worse"``."""
    rubric = load_rubric(name_or_file)
    if rubric.kind != "axes":
        raise RubricError(f"{rubric.source}: a study rates on axes; {rubric.kind!r} rubrics are for the judge only")
    raw = parse_json(Path(rubric.source).read_text(encoding="utf-8"))
    raw_axes = {a["name"]: a for a in raw["axes"]}
    pair = [tuple(str(v) for v in a.scale) == PAIR_CHOICES for a in rubric.axes]
    if any(pair) and not all(pair):
        raise RubricError(f"{rubric.source}: either every axis is pairwise (scale A / B / tie) or none is")
    axes = []
    for a in rubric.axes:
        extra = raw_axes[a.name]
        picks = extra.get("picks", "better")
        if picks not in ("better", "worse"):
            raise RubricError(f"{rubric.source}: axis {a.name!r}: picks is 'better' or 'worse', got {picks!r}")
        definition = extra.get("definition", "")
        if not isinstance(definition, str):
            raise RubricError(f"{rubric.source}: axis {a.name!r}: definition must be a string")
        axes.append(StudyAxis(a.name, a.question, tuple(str(v) for v in a.scale), definition.strip(), picks))
    return StudyRubric(name=rubric.name, pairwise=all(pair), axes=tuple(axes), description=rubric.description)
