"""Typed records that flow between the stages.

dataset -> Item -> (prompt) -> Request -> Generation -> Extraction -> SampleRecord
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple


@dataclass(frozen=True)
class Item:
    """One normalized benchmark question.

    ``options`` is ordered (letter -> text); ``answer_idx`` is the gold letter.
    ``context`` carries a passage such as PubMedQA's abstract; ``meta`` keeps
    every other field of the source record (for breakdowns).
    """

    id: str
    dataset: str
    question: str
    options: dict[str, str]
    answer_idx: str
    context: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


class Extraction(NamedTuple):
    """The option a generation committed to, and the rule that found it.

    ``letter`` is None when the text commits to no option (unparsed);
    ``method`` names the rule that matched, or is None.
    """

    letter: str | None
    method: str | None


# Body keys the client sets itself; --extra-body may not replace them (the runner relies on them).
RESERVED_BODY_KEYS = frozenset({"model", "messages", "n", "stream"})


@dataclass(frozen=True)
class GenerationParams:
    """Sampling parameters and request controls sent with every request of a run.

    The fields after ``seed`` are optional controls; at their defaults they are
    left out of the request body and of ``fingerprint_doc``, so runs made
    without them keep the fingerprints (and run directories) they had.
    ``chat_template_kwargs`` goes to the server's chat template (SGLang and vLLM
    read it from the top level of the body, e.g. ``{"enable_thinking": false}``);
    ``extra_body`` is merged into the body last, for anything else a server takes.
    """

    max_new_tokens: int = 1024
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    system_prompt: str | None = None
    stop: tuple[str, ...] = ()
    top_k: int | None = None
    min_p: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    chat_template_kwargs: dict[str, Any] | None = None
    extra_body: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))
        elif not isinstance(self.stop, tuple):
            object.__setattr__(self, "stop", tuple(self.stop))
        for name in ("chat_template_kwargs", "extra_body"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, dict):
                raise ValueError(f"{name} must be a JSON object, got {type(value).__name__}")
        clash = sorted(RESERVED_BODY_KEYS & set(self.extra_body or {}))
        if clash:
            raise ValueError(f"extra_body may not set {', '.join(clash)}: evalkit sets them itself")

    def to_dict(self) -> dict[str, Any]:
        """Every field (as the manifest records it)."""
        d = asdict(self)
        d["stop"] = list(self.stop)
        return d

    def fingerprint_doc(self) -> dict[str, Any]:
        """The fields that identify a run: the four original ones always, the controls only when set."""
        d = self.to_dict()
        doc = {k: d[k] for k in ("max_new_tokens", "temperature", "top_p", "seed")}
        defaults = GenerationParams().to_dict()
        doc.update({k: v for k, v in d.items() if k not in doc and v != defaults[k]})
        return doc


@dataclass(frozen=True)
class Generation:
    """What the server returned for one request."""

    text: str
    finish_reason: str | None
    usage: dict[str, int]
    latency_s: float


@dataclass
class SampleRecord:
    """One line of ``samples.jsonl``: the item, what was asked, what came back, the verdict.

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
    question: str
    options: dict[str, str]
    answer_idx: str
    prompt: str
    output: str
    finish_reason: str | None
    pred: str | None
    method: str | None
    correct: bool
    usage: dict[str, int]
    latency_s: float
    truncated: bool = False
    error: str | None = None
    index: int = 0
    meta: dict[str, Any] = field(default_factory=dict)
    strategy: str | None = None
    votes: dict[str, int] | None = None
    stages: list[dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The fields as a shallow dict, for writing one JSON line (asdict's deep copy costs
        about 50 us a sample, a tenth of the runner's per-sample budget)."""
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SampleRecord":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})
