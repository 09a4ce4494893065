"""The scoring plan: which scorers score a run, their fingerprint, their metrics, and its manifest record.

``plan_scoring`` is the one place a plan is built, for ``evalkit run`` (runner) and for rescoring
saved generations (``evalkit score``, ``api.rescore``). ``--extractor NAME`` and
``--scorer-arg choice.extractor=NAME`` reach the same choice scorer, and the plan's record
(``manifest()``) names the extractor that scorer actually uses, so every table labels the scores
with what produced them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from evalkit.scoring.extract import DEFAULT_EXTRACTOR
from evalkit.scoring.base import Scorer, get_scorer, is_async, scoring_fingerprint
from evalkit.scoring.metrics import Metric

FINGERPRINT_CHARS = 16  # of the scoring fingerprint, stored in every sample line
CHOICE = "choice"


@dataclass
class ScoringPlan:
    """A run's scorers, the fingerprint of their specs, and the metrics they declare."""

    scorers: list[Scorer]
    # Scorer name -> the ``module:attr`` it was loaded from (scorers defined outside evalkit), recorded in
    # the manifest so a report can find the scorer's own report section again; not in the fingerprint.
    sources: dict[str, str] = field(default_factory=dict)
    fingerprint: str = field(init=False)

    def __post_init__(self) -> None:
        self.fingerprint = scoring_fingerprint(self.scorers)[:FINGERPRINT_CHARS]

    @property
    def has_async(self) -> bool:
        return any(is_async(s) for s in self.scorers)

    @property
    def sync_scorers(self) -> list[Scorer]:
        return [s for s in self.scorers if not is_async(s)]

    @property
    def metrics(self) -> dict[str, Metric]:
        """Score name -> metric, as the scorers declare them (scores of a scorer that declares
        none are aggregated by ``default_metric`` when read)."""
        out: dict[str, Metric] = {}
        for s in self.scorers:
            out.update(getattr(s, "metrics", None) or {})
        return out

    @property
    def extractor(self) -> str | None:
        """The extractor of the choice scorer (what its scores were extracted with), None without one."""
        for s in self.scorers:
            if s.name == CHOICE:
                return str(s.spec().get("extractor") or DEFAULT_EXTRACTOR)
        return None

    def manifest(self) -> dict[str, Any]:
        """How the run is scored, for manifest.json: fingerprint, scorers with specs, metrics, extractor."""
        return {"fingerprint": self.fingerprint,
                "scorers": [{"name": s.name, "spec": s.spec(),
                             **({"source": self.sources[s.name]} if s.name in self.sources else {})}
                            for s in self.scorers],
                "metrics": {name: m.spec() for name, m in self.metrics.items()},
                "extractor": self.extractor}

    def is_current(self, sample: Mapping[str, Any]) -> bool:
        """True when SAMPLE holds this plan's scores (or is a failed request, which is never scored).

        A score the judge could not give because its request failed (``retryable``: the judge
        was down) is not one of them: the sample is scored again by the next pass."""
        if sample.get("error"):
            return True
        return sample.get("scored_with") == self.fingerprint and not retryable_scores(sample.get("scores"))


def retryable_scores(scores: Mapping[str, Any] | None) -> bool:
    """True when SCORES hold a score whose request failed in a way a later pass may not (meta.retryable)."""
    return any(isinstance(s, Mapping) and (s.get("meta") or {}).get("retryable") for s in (scores or {}).values())


def record_default_metrics(record: dict[str, Any], summary: Mapping[str, Any]) -> None:
    """Add to a scoring RECORD (``ScoringPlan.manifest()``) the metric of every score its scorers
    declared none for, as SUMMARY (dataset -> ``score.DatasetSummary``) aggregated it: so the
    manifest names how each of the run's scores aggregates."""
    metrics = record.setdefault("metrics", {})
    for dataset in summary.values():
        for name, score in dataset.scores.items():
            metrics.setdefault(name, score.to_dict()["metric"])


def plan_scoring(scorers: Sequence[str] | None = None, *, extractor: str | None = None,
                 scorer_options: Mapping[str, Mapping[str, Any]] | None = None) -> ScoringPlan:
    """The plan of SCORERS (names or ``module:attr``; default: the choice scorer), each built with
    its SCORER_OPTIONS. EXTRACTOR is the choice scorer's extractor unless its options name one."""
    built, sources = [], {}
    for name in (["choice"] if scorers is None else scorers):
        options = dict((scorer_options or {}).get(name, {}))
        if name == CHOICE:
            options.setdefault("extractor", extractor or DEFAULT_EXTRACTOR)
        built.append(get_scorer(name, **options))
        if ":" in name:
            sources[built[-1].name] = name
    return ScoringPlan(built, sources)
