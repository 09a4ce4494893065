"""Per-dataset summaries of scored samples, and the multiple-choice verdict helpers.

Pure functions. An unparsed answer (pred None) counts as wrong in accuracy and
is also counted on its own; a failed request (error) is neither right nor
wrong and is left out of n. Every named score of a sample (its ``scores``) is
summed up too, by the metric its scorer declares (else binary scores as a
proportion, others as a mean).

The scorers themselves live in evalkit.scoring; the functions here that score
(``extract_and_check``, ``score_sample``, ``rescore_sample``) are the library's short forms
of the ``choice`` scorer, kept for notebooks and earlier callers.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from evalkit.scoring.extract import extract_choice
from evalkit.core.records import Extraction, Generation, Item, SampleRecord
from evalkit.run.rundir import SampleKey, choice_answer, choice_verdict, counting_samples, sample_key  # noqa: F401
from evalkit.scoring.choice import ChoiceScorer, is_correct  # noqa: F401 (re-exported)
from evalkit.scoring.metrics import Mean, Metric, MetricError, Proportion, shows_percent, value_of_mean, with_options
from evalkit.scoring.stage import ScoringPlan, apply_scores, rescore_line
from evalkit.core.stats import wilson_interval
from evalkit.core.store import paused_gc

Extractor = Callable[[str, Mapping[str, str]], Extraction]
_THINKS = re.compile(r"</?think>", re.I)  # a generation that thinks, as evalkit.results.reasoning splits it


def extract_and_check(
    text: str, options: Mapping[str, str], answer_idx: str, extractor: Extractor = extract_choice
) -> tuple[str | None, str | None, bool]:
    """(pred, method, correct) of one generation: the choice scorer's rule, in short."""
    pred, method = extractor(text or "", options)
    return pred, method, is_correct(pred, answer_idx)


def score_sample(item: Item, prompt: str, generation: Generation, *, index: int = 0,
                 extractor: Extractor = extract_choice) -> SampleRecord:
    """The scored SampleRecord of one generation for a multiple-choice ITEM."""
    record = SampleRecord(id=item.id, dataset=item.dataset, question=item.question, options=dict(item.options),
                          answer_idx=item.answer_idx, prompt=prompt, index=index, meta=dict(item.meta),
                          output=generation.text, finish_reason=generation.finish_reason,
                          usage=dict(generation.usage), latency_s=generation.latency_s,
                          truncated=generation.finish_reason == "length")
    plan = ScoringPlan([ChoiceScorer(extractor)])
    return apply_scores(record, item, plan.scorers, plan.fingerprint)


def rescore_sample(sample: Mapping[str, Any], extractor: Extractor = extract_choice,
                   plan: ScoringPlan | None = None) -> dict[str, Any]:
    """A copy of a stored sample dict scored again (default: the choice scorer with EXTRACTOR);
    ``scoring.stage.rescore_line`` with a default plan."""
    return rescore_line(sample, plan or ScoringPlan([ChoiceScorer(extractor)]))


def rescore_samples(samples: Iterable[Mapping[str, Any]], extractor: Extractor = extract_choice,
                    plan: ScoringPlan | None = None) -> list[dict[str, Any]]:
    """``rescore_sample`` over many samples, in order."""
    plan = plan or ScoringPlan([ChoiceScorer(extractor)])
    with paused_gc():
        return [rescore_line(s, plan) for s in samples]


@dataclass
class ScoreSummary:
    """One named score over a dataset, streamed: how many samples have it, their sum, whether all
    are bool, and the metric its scorer declares (None: ``default_metric``, by the values)."""

    n: int = 0
    total: float = 0.0
    all_bool: bool = True
    errors: int = 0  # samples the scorer could not score (a judge that never replied validly)
    metric: Metric | None = None
    # The scored dicts (value and meta only), kept for a metric that is not a function of the plain
    # mean (a weighted proportion: an exam's score), so its figure is the report's, not None.
    kept: list[dict[str, Any]] | None = None

    def add(self, score: Mapping[str, Any], value: Any) -> None:
        """Count one sample's stored SCORE dict, whose VALUE is not None."""
        self.n += 1
        self.total += float(value)
        self.all_bool = self.all_bool and isinstance(value, bool)
        if self.metric is not None and getattr(self.metric, "value_of_mean", None) is None:
            if self.kept is None:
                self.kept = []
            self.kept.append({"value": value, "meta": score.get("meta")})

    @property
    def mean(self) -> float | None:
        """The plain mean of the values."""
        return self.total / self.n if self.n else None

    @property
    def binary(self) -> bool:
        """True when the figure is a share shown in percent (by the metric; else: all values are bool)."""
        return shows_percent(self.metric) if self.metric is not None else self.all_bool

    @property
    def value(self) -> float | None:
        """The figure by the score's metric: from the mean where it follows from it (a clipped mean,
        say), else the metric over the kept scores (a weighted proportion); None when nothing is scored."""
        metric = self.metric or (Proportion() if self.all_bool else Mean())
        if self.kept is None:
            return value_of_mean(metric, self.mean)
        try:
            return with_options(metric, n_resamples=1).aggregate(self.kept).value  # the figure, not its CI
        except MetricError:
            return None

    def to_dict(self) -> dict[str, Any]:
        metric = self.metric or (Proportion() if self.all_bool else Mean())
        return {"n": self.n, "mean": self.mean, "value": self.value, "metric": metric.spec(),
                "kind": "binary" if self.binary else "numeric", "score_errors": self.errors}


@dataclass
class DatasetSummary:
    """Counts for one dataset of a run. Accuracy is correct / n (errors excluded from n).

    ``choice`` is True when the dataset's samples were scored as multiple choice
    (they carry ``pred``); ``scores`` sums up every named score.
    """

    n: int = 0
    correct: int = 0
    unparsed: int = 0
    truncated: int = 0
    errors: int = 0
    choice: bool = False
    scores: "OrderedDict[str, ScoreSummary]" = field(default_factory=OrderedDict)
    thinking: int = 0  # samples whose output shows thinking (<think>...</think>): the truncation hint's advice

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0

    @property
    def ci(self) -> tuple[float, float]:
        """The accuracy's 95% Wilson interval (what the end-of-run and ``evalkit score`` tables show)."""
        return wilson_interval(self.correct, self.n)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"n": self.n}
        if self.choice:
            d.update(correct=self.correct, accuracy=self.accuracy, unparsed=self.unparsed)
        d.update(truncated=self.truncated, errors=self.errors)
        if self.scores:
            d["scores"] = {name: s.to_dict() for name, s in self.scores.items()}
        return d


def summarize(samples: Iterable[Mapping[str, Any]],
              metrics: Mapping[str, Metric] | None = None) -> "OrderedDict[str, DatasetSummary]":
    """Per-dataset counts over sample dicts (as stored in samples.jsonl), in first-seen order;
    METRICS: score name -> metric, as the run's scorers declare them."""
    out: OrderedDict[str, DatasetSummary] = OrderedDict()
    for s in samples:
        d = out.setdefault(s["dataset"], DatasetSummary())
        if s.get("error"):
            d.errors += 1
            continue
        d.n += 1
        verdict = choice_verdict(s)
        if verdict is not None:  # scored as multiple choice
            d.choice = True
            d.correct += verdict
            d.unparsed += choice_answer(s)[0] is None
        d.truncated += bool(s.get("truncated"))
        d.thinking += bool(_THINKS.search(s.get("output") or ""))
        scores = s.get("scores")
        if not scores:
            continue
        for name, score in scores.items():
            agg = d.scores.get(name)
            if agg is None:
                agg = d.scores[name] = ScoreSummary(metric=(metrics or {}).get(name))
            value = score.get("value") if type(score) is dict else None
            if value is None:
                agg.errors += 1
                continue
            agg.add(score, value)
    return out
