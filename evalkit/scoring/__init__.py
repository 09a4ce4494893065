"""Scorers: turn an item and its sample into named scores (see docs/architecture.md).

``get_scorer("choice")`` or ``get_scorer("my.module:MyScorer")`` gives a scorer;
``SCORERS`` lists the built-in names.
"""

from evalkit.scoring.base import (SCORERS, Scorer, ScorerError, get_scorer, is_async, register_scorer,
                                  report_section_providers, scorer_factory, scoring_fingerprint)
from evalkit.scoring import choice, rubric_judge  # noqa: E402, F401  (the built-in scorers register themselves)
from evalkit.scoring.metrics import METRICS, Metric, MetricValue, default_metric, get_metric, register_metric

__all__ = ["METRICS", "Metric", "MetricValue", "SCORERS", "Scorer", "ScorerError", "default_metric", "get_metric",
           "get_scorer", "is_async", "register_metric", "register_scorer", "report_section_providers",
           "scorer_factory", "scoring_fingerprint"]
