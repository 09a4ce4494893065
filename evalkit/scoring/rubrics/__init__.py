"""Rubrics for the model judge: data files, validated when loaded.

A rubric is a JSON file. The shape of an axis rubric::

    {"name": "grade4",
     "axes": [{"name": "grade", "question": "How good is this answer? ...", "scale": [1, 2, 3, 4],
               "metric": "mean"}],                                   # optional, per axis
     "template": "... {question} ... {answer} ... {axes} ..."}     # optional

Each axis names the question put to the judge and its scale: a list of ints, or a
list of labels (strings, listed worst first: a label's value is its position,
0-based). An axis may name the metric its scores aggregate by (``metric``: a name or a
spec object of ``scoring.metrics``); without one, a 0/1 scale is a proportion and any other
a mean. ``kind: "rubric_items"`` is a rubric-item grader instead: the items come
with each record (``Item.target``: ``RubricItems``, each a criterion and its points) and the judge
says for each whether it is met. The shipped rubrics live beside this module (``grade4``,
``medpalm2``) and in the folders benchmarks register (``register_rubric_dir``: a benchmark's own
grader ships with it); any other file is loaded by path.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalkit.core.plugins import load_plugins
from evalkit.core.store import parse_json
from evalkit.core.errors import InputError

RUBRIC_DIR = Path(__file__).resolve().parent
RUBRIC_DIRS: list[Path] = [RUBRIC_DIR]  # where a rubric is looked up by name: this folder, then those registered
KINDS = ("axes", "rubric_items")
_AXIS_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# The judge prompt of an axis rubric that brings no template of its own.
DEFAULT_TEMPLATE = """You are a careful medical expert grading an answer to a consumer health question.

Question:
{question}
{reference}
Answer to grade:
{answer}

Grade the answer on each axis below. For each axis, pick exactly one value from its scale.
{axes}

Reply with one JSON object and nothing else, mapping each axis name to the value you chose, for example:
{example}"""

# The template fields each kind may use (anything else in a template is an error).
TEMPLATE_FIELDS = {
    "axes": {"question", "answer", "reference", "axes", "example"},
    "rubric_items": {"conversation", "criterion", "points", "question"},
}
REQUIRED_FIELDS = {"axes": {"answer"}, "rubric_items": {"conversation", "criterion"}}


class RubricError(InputError):
    """A rubric file cannot be read or does not have the expected shape (the message names the file)."""


@dataclass(frozen=True)
class Axis:
    """One axis of a rubric: its name (the score name), the question to the judge, its scale, and
    the metric its scores aggregate by (a spec for ``scoring.metrics.get_metric``: a name such as
    ``"mean"``, or ``{"name": "clipped_mean", "lo": 1, "hi": 4}``); None: the default (a 0/1 scale
    as a proportion, any other as a mean)."""

    name: str
    question: str
    scale: tuple[int | str, ...]
    metric: str | tuple[tuple[str, Any], ...] | None = None  # a spec dict is kept as sorted items (hashable)

    @property
    def metric_spec(self) -> str | dict[str, Any] | None:
        """The metric the rubric file names for this axis, as written (None: the default)."""
        return dict(self.metric) if isinstance(self.metric, tuple) else self.metric

    @property
    def is_numeric(self) -> bool:
        return isinstance(self.scale[0], int)

    def value_of(self, rating: int | str) -> int:
        """The stored value of RATING (one of ``scale``): the int itself, or a label's 0-based position."""
        return rating if isinstance(rating, int) else self.scale.index(rating)

    def categories(self) -> list[int]:
        """Every value a score on this axis can take, in order (what agreement statistics tabulate)."""
        return list(self.scale) if self.is_numeric else list(range(len(self.scale)))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Rubric:
    """A loaded, validated rubric. ``sha256`` hashes its canonical content (goes into the judge's spec)."""

    name: str
    kind: str
    axes: tuple[Axis, ...]
    template: str
    source: str
    sha256: str
    description: str = ""
    question: str = ""
    score_name: str = ""

    @property
    def score_names(self) -> list[str]:
        """The names of the scores a judge with this rubric gives each sample."""
        return [self.score_name] if self.kind == "rubric_items" else [a.name for a in self.axes]


def register_rubric_dir(folder: Path) -> Path:
    """Look rubrics up by name in FOLDER too (a benchmark's folder registers itself: its grader's file)."""
    if folder not in RUBRIC_DIRS:
        RUBRIC_DIRS.append(folder)
    return folder


def shipped_rubrics() -> list[str]:
    """Names of the rubrics that come with evalkit (those benchmarks register included)."""
    load_plugins()
    return sorted({p.stem for folder in RUBRIC_DIRS for p in folder.glob("*.json")})


def _shipped(name: str) -> Path | None:
    """The shipped rubric file called NAME, the plugins loaded when it is not found at first."""
    for attempt in range(2):
        found = next((folder / f"{name}.json" for folder in RUBRIC_DIRS if (folder / f"{name}.json").is_file()),
                     None)
        if found is not None or attempt:
            return found
        load_plugins()
    return None


def load_rubric(name_or_file: str | Path) -> Rubric:
    """The rubric called NAME_OR_FILE (a shipped name such as ``grade4``) or read from that file path."""
    text_ref = str(name_or_file)
    path = Path(text_ref)
    if not path.is_file():
        shipped = _shipped(text_ref) if path.suffix == "" else None
        if shipped is not None:
            path = shipped
        else:
            raise RubricError(f"no rubric {text_ref!r}: not a file, and not one of the shipped rubrics "
                              f"({', '.join(shipped_rubrics())})")
    try:
        data = parse_json(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RubricError(f"{path}: cannot read rubric: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise RubricError(f"{path}: not valid JSON: {exc}") from None
    return parse_rubric(data, source=str(path))


def parse_rubric(data: Any, *, source: str = "<rubric>") -> Rubric:
    """Validate DATA (a parsed rubric document) and build the Rubric; errors name SOURCE and the field."""
    def fail(where: str, message: str) -> RubricError:
        return RubricError(f"{source}: {where}: {message}")

    if not isinstance(data, dict):
        raise fail("top level", f"a rubric is a JSON object, got {type(data).__name__}")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise fail("name", "missing or empty (a rubric needs a name)")
    kind = data.get("kind", "axes")
    if kind not in KINDS:
        raise fail("kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise fail("description", "must be a string")

    axes: list[Axis] = []
    question = ""
    score_name = ""
    if kind == "axes":
        raw_axes = data.get("axes")
        if not isinstance(raw_axes, list) or not raw_axes:
            raise fail("axes", "must be a non-empty list of {name, question, scale}")
        for i, raw in enumerate(raw_axes):
            axes.append(_parse_axis(raw, f"axes[{i}]", fail))
        names = [a.name for a in axes]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise fail("axes", f"axis names repeat: {', '.join(repeated)}")
    else:
        question = data.get("question", "")
        if not isinstance(question, str) or not question.strip():
            raise fail("question", "a rubric_items rubric needs the question put to the judge for each item")
        score_name = data.get("score", name)
        if not isinstance(score_name, str) or not _AXIS_NAME.match(score_name):
            raise fail("score", f"{score_name!r} is not a valid score name (letters, digits, _)")
        if "axes" in data:
            raise fail("axes", "a rubric_items rubric takes its items from each record, not from 'axes'")

    template = data.get("template")
    if template is None:
        if kind == "rubric_items":
            raise fail("template", "a rubric_items rubric needs a template")
        template = DEFAULT_TEMPLATE
    if not isinstance(template, str) or not template.strip():
        raise fail("template", "must be a non-empty string")
    _check_template(template, kind, fail)

    # An axis's metric is not hashed: it says how scores aggregate, not what the judge is asked, so
    # changing it re-judges nothing (the manifest records the metrics of each invocation).
    canonical = json.dumps({"name": name, "kind": kind, "axes": [[a.name, a.question, list(a.scale)] for a in axes],
                            "question": question, "score": score_name, "template": template},
                           sort_keys=True, ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return Rubric(name=name, kind=kind, axes=tuple(axes), template=template, source=source, sha256=digest,
                  description=description, question=question, score_name=score_name)


def _parse_axis(raw: Any, where: str, fail: Any) -> Axis:
    if not isinstance(raw, dict):
        raise fail(where, "an axis is an object {name, question, scale}")
    name = raw.get("name")
    if not isinstance(name, str) or not _AXIS_NAME.match(name):
        raise fail(f"{where}.name", f"{name!r} is not a valid axis name (letters, digits, _; it becomes a score name)")
    question = raw.get("question")
    if not isinstance(question, str) or not question.strip():
        raise fail(f"{where}.question", f"axis {name!r} needs the question put to the judge")
    scale = raw.get("scale")
    if not isinstance(scale, list) or len(scale) < 2:
        raise fail(f"{where}.scale", f"axis {name!r} needs a scale of at least two values")
    if all(isinstance(v, int) and not isinstance(v, bool) for v in scale):
        pass
    elif all(isinstance(v, str) and v.strip() for v in scale):
        lowered = [v.strip().lower() for v in scale]
        if len(set(lowered)) != len(lowered):
            raise fail(f"{where}.scale", f"axis {name!r} repeats a label (labels compare case-insensitively)")
    else:
        raise fail(f"{where}.scale", f"axis {name!r}: a scale is all ints or all non-empty labels, got {scale!r}")
    if len(set(scale)) != len(scale):
        raise fail(f"{where}.scale", f"axis {name!r} repeats a value")
    return Axis(name=name, question=question.strip(), scale=tuple(scale),
                metric=_axis_metric(raw.get("metric"), f"{where}.metric", name, fail))


def _axis_metric(spec: Any, where: str, axis: str, fail: Any) -> str | tuple[tuple[str, Any], ...] | None:
    """An axis's ``metric`` as given: absent, a metric name, or a spec object with a ``name``. Whether
    the metric exists and takes these parameters is checked when the judge is built
    (``scoring.rubric_judge.rubric_metrics``: the metrics live in the scoring package, which reads rubrics)."""
    if spec is None:
        return None
    if isinstance(spec, str) and spec.strip():
        return spec.strip()
    if isinstance(spec, dict) and isinstance(spec.get("name"), str) and spec["name"].strip():
        return tuple(sorted(spec.items()))
    raise fail(where, f"axis {axis!r}: a metric is a name (\"mean\") or an object with a name "
                      f"({{\"name\": \"clipped_mean\", \"lo\": 1, \"hi\": 4}}), got {spec!r}")


def _check_template(template: str, kind: str, fail: Any) -> None:
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:
        raise fail("template", f"not a valid format string: {exc} (write literal braces as {{{{ }}}})") from None
    unknown = fields - TEMPLATE_FIELDS[kind]
    if unknown:
        raise fail("template", f"unknown field(s) {', '.join('{' + f + '}' for f in sorted(unknown))}; "
                               f"known: {', '.join('{' + f + '}' for f in sorted(TEMPLATE_FIELDS[kind]))}")
    missing = REQUIRED_FIELDS[kind] - fields
    if missing:
        raise fail("template", f"must contain {', '.join('{' + f + '}' for f in sorted(missing))}")
