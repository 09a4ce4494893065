"""Pairwise ranking of two runs' answers by a judge: pure aggregation (the calls are RubricJudgeScorer.compare).

Each pair is shown twice, A first then B first, to cancel position bias. Per item
and axis, the two verdicts are read back in terms of A and B: when they agree that
is the outcome; when they disagree (A in one order, B or a tie in the other) the
outcome is a tie and the disagreement is counted. Rates of A winning, tying and
losing come with Wilson intervals over items.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from evalkit.config import DEFAULT_CONFIDENCE
from evalkit.core.stats import wilson_interval

WIN, TIE, LOSS = "A", "tie", "B"


def in_terms_of_a(verdict: str, a_first: bool) -> str:
    """A judge's "1" / "2" / "tie" as "A", "B" or "tie", given which answer was shown first."""
    if verdict == "tie":
        return TIE
    first_won = verdict == "1"
    return WIN if first_won == a_first else LOSS


def combine(a_first_verdict: str, b_first_verdict: str) -> tuple[str, bool]:
    """The outcome for A from the verdicts of both orders, and whether the orders disagreed."""
    x = in_terms_of_a(a_first_verdict, True)
    y = in_terms_of_a(b_first_verdict, False)
    if x == y:
        return x, False
    return TIE, True


@dataclass
class PairwiseSummary:
    """Win / tie / loss of A against B on one axis."""

    axis: str
    n: int
    wins: int
    ties: int
    losses: int
    disagreements: int
    errors: int

    def rate(self, count: int) -> float | None:
        return count / self.n if self.n else None

    def to_dict(self, confidence: float = DEFAULT_CONFIDENCE) -> dict:
        out: dict = {"n": self.n, "disagreements": self.disagreements, "judge_errors": self.errors}
        for key, count in (("win", self.wins), ("tie", self.ties), ("loss", self.losses)):
            out[key] = self.rate(count)
            out[f"{key}_ci"] = list(wilson_interval(count, self.n, confidence)) if self.n else None
        out["disagreement_rate"] = self.rate(self.disagreements)
        return out


def summarize(outcomes: Iterable[tuple[str, str | None, bool]], axes: list[str]) -> dict[str, PairwiseSummary]:
    """Per axis, count OUTCOMES: (axis, outcome or None for a judge error, orders disagreed)."""
    out = {a: PairwiseSummary(a, 0, 0, 0, 0, 0, 0) for a in axes}
    for axis, outcome, disagreed in outcomes:
        s = out[axis]
        if outcome is None:
            s.errors += 1
            continue
        s.n += 1
        s.wins += outcome == WIN
        s.ties += outcome == TIE
        s.losses += outcome == LOSS
        s.disagreements += disagreed
    return out
