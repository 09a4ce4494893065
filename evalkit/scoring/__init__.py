"""Scorers: turn an item and its sample into named scores (see docs/architecture.md).

``get_scorer("choice")`` or ``get_scorer("my.module:MyScorer")`` gives a scorer;
``SCORERS`` lists the built-in names.
"""

from evalkit.scoring.base import (SCORERS, Scorer, ScorerError, get_scorer, is_async, register_scorer,
                                  scoring_fingerprint)

__all__ = ["SCORERS", "Scorer", "ScorerError", "get_scorer", "is_async", "register_scorer", "scoring_fingerprint"]
