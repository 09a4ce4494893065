"""Typed records that flow between the stages (see docs/architecture.md).

dataset -> Item -> (prompt) -> Generation(s) -> SampleRecord -> Score(s)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

# GenerationParams lives with the other config types; imported here so old imports keep working.
from evalkit.config import RESERVED_BODY_KEYS, GenerationParams  # noqa: F401


@dataclass(frozen=True, slots=True)
class Item:
    """One normalized benchmark question.

    A multiple-choice item has ``options`` (ordered, letter -> text) and
    ``answer_idx`` (the gold letter). A long-form item has no options; its
    ``target`` holds what it is graded against (reference answers, a rubric).
    ``context`` carries a passage such as PubMedQA's abstract; ``messages`` a
    conversation to send as it is (multi-turn prompts such as HealthBench's);
    ``meta`` keeps every other field of the source record (for breakdowns).
    """

    id: str
    dataset: str
    question: str
    options: dict[str, str] = field(default_factory=dict)
    answer_idx: str | None = None
    context: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    target: Any = None
    messages: list[dict[str, str]] | None = None

    @property
    def is_choice(self) -> bool:
        """True for a multiple-choice item (options and a gold letter)."""
        return bool(self.options) and self.answer_idx is not None


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
    A long-form item has no options; its ``target`` is what a judge grades against.

    ``error`` is set (and ``output`` empty) when the request failed after its
    retries; such a sample is neither right nor wrong and is retried on resume.

    Multi-sample strategies (see evalkit.sampling) still write one line per item:
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
    target: Any = None
    scores: dict[str, dict[str, Any]] | None = None
    scored_with: str | None = None
    context: str | None = None  # the passage given with the question (PubMedQA's abstract), for audits

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
        return Item(id=self.id, dataset=self.dataset, question=self.question, options=self.options or {},
                    answer_idx=self.answer_idx, meta=self.meta or {}, target=self.target, context=self.context)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SampleRecord":
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})
