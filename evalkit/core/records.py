"""Typed records that flow between the stages (see docs/architecture.md).

dataset -> Item -> (prompt) -> Generation(s) -> SampleRecord -> Score(s)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

from evalkit.core.plugins import load_plugins

LEGACY_SCORE = "correct"  # the one score of lines written before named scores (the multiple-choice verdict)


# --------------------------------------------------------------------------- targets
# What a long-form item is graded against: the built-in types here, and the kinds benchmarks register
# (``register_target``). Adapters build one of these (or None: a multiple-choice item is graded by
# ``options`` and ``answer_idx``, a bare question by nothing), scorers read them, and
# ``target_to_json`` / ``target_from_json`` give the form a samples.jsonl line stores.


class TargetError(ValueError):
    """A stored target that is none of the known shapes (the message says what was found)."""


@dataclass(frozen=True, slots=True)
class References:
    """Reference answers from trusted sources (LiveQA-Med's), shown to a judge. Stored as a list of strings."""

    answers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RubricItem:
    """One rubric criterion of a record and the points it is worth (negative: a penalty).

    ``tags`` is None when the stored item had no ``tags`` key (it is then left out again)."""

    criterion: str
    points: int | float
    tags: tuple[str, ...] | None = ()


@dataclass(frozen=True, slots=True)
class RubricItems:
    """The rubric items a conversation's answer is graded on, one judge request each. Stored as a list of
    ``{criterion, points, tags}``."""

    items: tuple[RubricItem, ...]


@dataclass(frozen=True, slots=True)
class GradedAnswer:
    """An answer with its human grade (None: ungraded), as the NIST-judged LiveQA file gives them.
    Stored as ``{answer, grade}``."""

    answer: str
    grade: int | None


Target = Any  # an instance of one of target_types() (None: no target)
BUILTIN_TARGET_TYPES: tuple[type, ...] = (References, RubricItems, GradedAnswer)


@dataclass(frozen=True)
class TargetKind:
    """A target type of a benchmark's own (its folder registers it: ``register_target``): how a
    samples.jsonl line stores it (``to_json``) and reads it back (``from_json``: the target a stored
    value holds, None when the value is not of this kind), its stored form as a message lists it
    (``shape``), and the scorers a run uses on its items when it names none (``default_scorers``)."""

    type: type
    to_json: Callable[[Any], Any]
    from_json: Callable[[Any], Any]
    shape: str
    default_scorers: tuple[str, ...] = ()


TARGET_KINDS: dict[type, TargetKind] = {}


def register_target(kind: TargetKind) -> TargetKind:
    """Register KIND (a benchmark's folder does, when it is imported)."""
    TARGET_KINDS[kind.type] = kind
    return kind


def target_types() -> tuple[type, ...]:
    """Every target type: the built-in ones and those registered (the plugins loaded: they register)."""
    load_plugins()
    return BUILTIN_TARGET_TYPES + tuple(TARGET_KINDS)


def target_to_json(target: Target | None) -> Any:
    """The JSON form a samples.jsonl line stores for TARGET (None stays None: the line leaves it out)."""
    if target is None:
        return None
    if isinstance(target, References):
        return list(target.answers)
    if isinstance(target, RubricItems):
        return [_rubric_item_json(i) for i in target.items]
    if isinstance(target, GradedAnswer):
        return {"answer": target.answer, "grade": target.grade}
    kind = TARGET_KINDS.get(type(target))
    if kind is not None:
        return kind.to_json(target)
    raise TargetError(f"not a target: {type(target).__name__} (one of "
                      f"{', '.join(t.__name__ for t in target_types())}, or None)")


def _rubric_item_json(item: RubricItem) -> dict[str, Any]:
    d: dict[str, Any] = {"criterion": item.criterion, "points": item.points}
    if item.tags is not None:
        d["tags"] = list(item.tags)
    return d


def target_from_json(value: Any) -> Target | None:
    """The target a stored line holds (what ``target_to_json`` wrote; a typed target is returned as it is).

    A list of strings is ``References``; a list of ``{criterion, points[, tags]}`` ``RubricItems``;
    ``{answer, grade}`` a ``GradedAnswer``; a registered kind's stored form that kind (``TargetKind``).
    Anything else raises TargetError."""
    if value is None or isinstance(value, BUILTIN_TARGET_TYPES) or type(value) in TARGET_KINDS:
        return value
    if isinstance(value, list):
        if all(isinstance(v, str) for v in value):
            return References(tuple(value))
        if all(_is_rubric_item(v) for v in value):
            return RubricItems(tuple(RubricItem(v["criterion"], v["points"],
                                           None if "tags" not in v else tuple(v["tags"])) for v in value))
    elif isinstance(value, dict):
        keys = set(value)
        if keys == {"answer", "grade"} and isinstance(value["answer"], str) and _is_grade(value["grade"]):
            return GradedAnswer(value["answer"], value["grade"])
    load_plugins()  # a stored kind of a benchmark not imported yet
    for kind in TARGET_KINDS.values():
        found = kind.from_json(value)
        if found is not None:
            return found
    shown = repr(value)
    shapes = ["a list of reference strings", "a list of {criterion, points, tags}", "{answer, grade}",
              *(kind.shape for kind in TARGET_KINDS.values())]
    raise TargetError(f"unknown target shape {shown[:80] + '...' if len(shown) > 80 else shown}: expected "
                      f"{', '.join(shapes[:-1])} or {shapes[-1]}")


def _is_rubric_item(v: Any) -> bool:
    return (isinstance(v, dict) and isinstance(v.get("criterion"), str) and isinstance(v.get("points"), (int, float))
            and not isinstance(v.get("points"), bool) and set(v) <= {"criterion", "points", "tags"}
            and (isinstance(v.get("tags", []), list) and all(isinstance(t, str) for t in v.get("tags", []))))


def _is_grade(v: Any) -> bool:
    return v is None or (isinstance(v, int) and not isinstance(v, bool))

# GenerationParams lives with the other config types; imported here so old imports keep working.
from evalkit.config import RESERVED_BODY_KEYS, GenerationParams  # noqa: F401


@dataclass(frozen=True, slots=True)
class Item:
    """One normalized benchmark question.

    A multiple-choice item has ``options`` (ordered, letter -> text) and
    ``answer_idx`` (the gold letter). A long-form item has no options; its
    ``target`` holds what it is graded against, one of the target types
    (``References``, ``RubricItems``, ``GradedAnswer``, or a registered kind's), or None.
    ``context`` carries a passage such as the abstract a question is about; ``messages`` a
    conversation to send as it is (multi-turn prompts);
    ``meta`` keeps every other field of the source record (for breakdowns).
    """

    id: str
    dataset: str
    question: str
    options: dict[str, str] = field(default_factory=dict)
    answer_idx: str | None = None
    context: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    target: Target | None = None
    messages: list[dict[str, str]] | None = None

    @property
    def is_choice(self) -> bool:
        """True for a multiple-choice item (options and a gold letter)."""
        return bool(self.options) and self.answer_idx is not None

    @property
    def default_scorers(self) -> tuple[str, ...]:
        """The scorers a run uses on this item when it names none: ``choice`` for a multiple-choice item,
        else the ones its target's registered kind names (``TargetKind.default_scorers``: a benchmark's
        scorer for its own targets), else none (a judge needs a
        judge server, so long answers are scored only when asked)."""
        if self.is_choice:
            return ("choice",)
        kind = TARGET_KINDS.get(type(self.target))  # a target's kind is registered when its class is imported
        return kind.default_scorers if kind is not None else ()


class Extraction(NamedTuple):
    """The option a generation committed to, and the rule that found it.

    ``letter`` is None when the text commits to no option (unparsed);
    ``method`` names the rule that matched, or is None.
    """

    letter: str | None
    method: str | None


@dataclass(frozen=True)
class Generation:
    """What the server returned for one request."""

    text: str
    finish_reason: str | None
    usage: dict[str, int]
    latency_s: float


@dataclass(slots=True)
class Score:
    """One named score of a sample, as a scorer produced it.

    ``value`` is a bool (right/wrong), an int on a scale, or a float; None when
    the scorer could not score (``error`` says why: a judge that never replied
    validly). ``answer`` is what the scorer read (the extracted letter, the
    judge's rating); ``meta`` holds details (the rule that matched, judge tokens).
    """

    value: bool | int | float | None
    answer: str | None = None
    explanation: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The stored form: empty fields are left out to keep sample lines short."""
        d: dict[str, Any] = {"value": self.value}
        if self.answer is not None:
            d["answer"] = self.answer
        if self.explanation is not None:
            d["explanation"] = self.explanation
        if self.meta:
            d["meta"] = self.meta
        if self.error is not None:
            d["error"] = self.error
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Score":
        return cls(value=data.get("value"), answer=data.get("answer"), explanation=data.get("explanation"),
                   meta=dict(data.get("meta") or {}), error=data.get("error"))


@dataclass
class SampleRecord:
    """One line of ``samples.jsonl``: the item, what was asked, what came back, its scores.

    ``scores`` maps each score name to its stored ``Score`` (``Score.to_dict``);
    ``scored_with`` is the scoring fingerprint they were computed under. The
    multiple-choice scorer also sets ``pred`` (letter or None), ``method`` (the
    extraction rule) and ``correct``, the fields every earlier version wrote.
    A long-form item has no options; its ``target`` is what a judge grades against, in
    its stored (JSON) form: ``target_to_json`` of the item's typed target.

    ``error`` is set (and ``output`` empty) when the request failed after its
    retries; such a sample is neither right nor wrong and is retried on resume.

    Multi-sample strategies (see evalkit.run.sampling) still write one line per item:
    ``pred``/``correct`` are the item-level majority verdict, ``output`` is the
    first generation that voted for it, ``strategy`` names the strategy,
    ``votes`` holds the deciding stage's vote counts, and ``stages`` every
    stage's prompt, votes and generations. All three stay None for one sample.
    """

    id: str
    dataset: str
    question: str = ""
    options: dict[str, str] = field(default_factory=dict)
    answer_idx: str | None = None
    prompt: Any = ""  # the user message, or the conversation sent (a list of {role, content})
    output: str = ""
    finish_reason: str | None = None
    pred: str | None = None
    method: str | None = None
    correct: bool | None = None
    usage: dict[str, int] = field(default_factory=dict)
    latency_s: float = 0.0
    truncated: bool = False
    error: str | None = None
    index: int = 0
    meta: dict[str, Any] = field(default_factory=dict)
    strategy: str | None = None
    votes: dict[str, int] | None = None
    stages: list[dict[str, Any]] | None = None
    target: Any = None  # the JSON form (target_to_json); item() gives the typed target
    scores: dict[str, dict[str, Any]] | None = None
    scored_with: str | None = None
    context: str | None = None  # the passage given with the question (an abstract), for audits

    # Fields a line leaves out when they are empty, so that earlier lines keep their shape.
    OPTIONAL_FIELDS = ("strategy", "votes", "stages", "target", "scores", "scored_with", "context")

    def to_dict(self) -> dict[str, Any]:
        """The fields as a shallow dict, for writing one JSON line (asdict's deep copy costs
        about 50 us a sample, a tenth of the runner's per-sample budget). Unset optional
        fields are dropped."""
        d = dict(self.__dict__)
        for name in self.OPTIONAL_FIELDS:
            if d.get(name) is None:
                d.pop(name, None)
        if d.get("correct") is None:  # not scored as multiple choice: no verdict fields at all
            for name in ("pred", "method", "correct"):
                d.pop(name, None)
        return d

    def item(self) -> Item:
        """The item this sample answers, rebuilt from the fields the line carries."""
        # Shared, not copied: scorers read items, never change them (and this is on the scoring hot path).
        try:
            target = target_from_json(self.target)
        except TargetError as exc:
            raise TargetError(f"sample {self.dataset}/{self.id}: {exc}") from None
        return Item(id=self.id, dataset=self.dataset, question=self.question, options=self.options or {},
                    answer_idx=self.answer_idx, meta=self.meta or {}, target=target, context=self.context)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SampleRecord":
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class ReportTable:
    """A table a scorer adds to the report (its ``report_tables``), engine-neutral: the text report,
    markdown, JSON and the HTML page all lay it out the same generic way.

    ``header`` names the columns; each of ``rows`` has one text cell per column (the scorer formats
    its figures: "57.1", "-", "PASS (...)"); the first ``label_columns`` columns are labels (left
    aligned), the rest figures. ``notes`` are sentences shown under the table (what the figures mean).
    ``reference_from``: the index of the first row that is a reference, not a run (a suite's published
    figures), which every layout sets apart; None when all rows are runs.
    """

    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    notes: tuple[str, ...] = ()
    label_columns: int = 2
    reference_from: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "header", tuple(str(h) for h in self.header))
        object.__setattr__(self, "rows", tuple(tuple(str(c) for c in row) for row in self.rows))
        object.__setattr__(self, "notes", tuple(str(n) for n in self.notes))
        bad = [i for i, row in enumerate(self.rows) if len(row) != len(self.header)]
        if bad:
            raise ValueError(f"report table {self.title!r}: row {bad[0]} has {len(self.rows[bad[0]])} cells "
                             f"for {len(self.header)} columns")

    def to_dict(self) -> dict[str, Any]:
        doc = {"title": self.title, "header": list(self.header), "rows": [list(r) for r in self.rows],
               "notes": list(self.notes), "label_columns": self.label_columns}
        if self.reference_from is not None:
            doc["reference_from"] = self.reference_from
        return doc
