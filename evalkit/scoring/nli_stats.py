"""Agreement of categorical labels (a judge's NLI labels against physicians'). Pure functions, no I/O.

- ``label_agreement(gold, pred, labels)``: accuracy, macro-F1, Cohen's kappa and the confusion
  matrix (rows gold, columns predicted), each with a percentile bootstrap interval over pairs.
- ``fleiss_kappa(ratings, labels)``: agreement of several raters who each label every pair.
- ``leave_one_out(ratings, labels)``: each rater against the majority of the others, on the pairs
  where the others agree (with two others, a majority exists only when they agree).
- ``word_overlap_labels``: the trivial baseline (Entailment when most of the statement's content
  words occur in the answer, else Neutral; it never says Contradiction).

A statistic that is undefined (no pairs; chance agreement 1) is None, never a made-up number.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from evalkit.config import DEFAULT_CONFIDENCE, DEFAULT_SEED, JudgeSettings, field_default

DEFAULT_RESAMPLES = field_default(JudgeSettings, "n_resamples")  # the judge's agreement figures
OVERLAP_THRESHOLD = 0.6  # fixed beforehand, not fitted to the labels it is scored on
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset("""the and for are with that this from have has can may not but its it's into than then
their there these those was were will would should could been being also such other more most some any
all each which who whom what when where why how about over after before your you they them his her our
does did doing per via""".split())


def _codes(values: Sequence[Any], labels: Sequence[str]) -> np.ndarray:
    index = {label: i for i, label in enumerate(labels)}
    try:
        return np.array([index[v] for v in values], dtype=int)
    except KeyError as exc:
        raise ValueError(f"label {exc.args[0]!r} is not one of {', '.join(labels)}") from None


def _confusion(g: np.ndarray, p: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(g * k + p, minlength=k * k).reshape(k, k)


def _accuracy(m: np.ndarray) -> float | None:
    n = m.sum()
    return float(np.trace(m) / n) if n else None


def _macro_f1(m: np.ndarray) -> float | None:
    """Mean over the labels that occur (in gold or predicted) of 2 TP / (2 TP + FP + FN)."""
    tp = np.diag(m).astype(float)
    fp = m.sum(axis=0) - tp
    fn = m.sum(axis=1) - tp
    present = (m.sum(axis=0) + m.sum(axis=1)) > 0
    if not present.any():
        return None
    denom = (2 * tp + fp + fn)[present]
    return float(np.mean(2 * tp[present] / denom))


def _kappa(m: np.ndarray) -> float | None:
    """Cohen's kappa: (observed - chance agreement) / (1 - chance agreement)."""
    n = m.sum()
    if not n:
        return None
    po = np.trace(m) / n
    pe = float((m.sum(axis=0) * m.sum(axis=1)).sum()) / (n * n)
    return None if pe >= 1 else float((po - pe) / (1 - pe))


@dataclass
class LabelAgreement:
    """One labeller against the gold labels: figures, intervals and the confusion matrix."""

    n: int
    labels: list[str]
    accuracy: float | None
    macro_f1: float | None
    kappa: float | None
    confusion: list[list[int]]
    accuracy_ci: tuple[float, float] | None = None
    macro_f1_ci: tuple[float, float] | None = None
    kappa_ci: tuple[float, float] | None = None
    confusion_ci: list[list[tuple[int, int]]] | None = None
    missing: int = 0  # pairs with no prediction (a judge error), left out of n
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _interval(draws: list[float | None], confidence: float) -> tuple[float, float] | None:
    vals = np.array([d for d in draws if d is not None], dtype=float)
    if not len(vals):
        return None
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(vals, [tail, 100 - tail])
    return (float(lo), float(hi))


def label_agreement(gold: Sequence[str], pred: Sequence[str | None], labels: Sequence[str], *,
                    confidence: float = DEFAULT_CONFIDENCE, n_resamples: int = DEFAULT_RESAMPLES,
                    seed: int = DEFAULT_SEED,
                    note: str = "") -> LabelAgreement:
    """PRED against GOLD, pair by pair. A None prediction (no valid judge reply) is left out of n and
    counted in ``missing``. Intervals: percentile bootstrap over pairs (resampled with replacement)."""
    if len(gold) != len(pred):
        raise ValueError(f"gold and predicted labels differ in length: {len(gold)} vs {len(pred)}")
    keep = [i for i, p in enumerate(pred) if p is not None]
    g = _codes([gold[i] for i in keep], labels)
    p = _codes([pred[i] for i in keep], labels)
    k = len(labels)
    m = _confusion(g, p, k)
    out = LabelAgreement(len(keep), list(labels), _accuracy(m), _macro_f1(m), _kappa(m), m.tolist(),
                         missing=len(gold) - len(keep), note=note)
    if len(keep) < 2 or n_resamples <= 0:
        return out
    rng = np.random.default_rng(seed)
    acc, f1, kap, cells = [], [], [], []
    for _ in range(n_resamples):
        idx = rng.integers(0, len(keep), len(keep))
        mb = _confusion(g[idx], p[idx], k)
        acc.append(_accuracy(mb))
        f1.append(_macro_f1(mb))
        kap.append(_kappa(mb))
        cells.append(mb)
    out.accuracy_ci, out.macro_f1_ci, out.kappa_ci = (_interval(acc, confidence), _interval(f1, confidence),
                                                      _interval(kap, confidence))
    stack = np.stack(cells)
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(stack, [tail, 100 - tail], axis=0)
    out.confusion_ci = [[(int(round(lo[r, c])), int(round(hi[r, c]))) for c in range(k)] for r in range(k)]
    return out


def fleiss_kappa(ratings: Sequence[Sequence[str]], labels: Sequence[str]) -> float | None:
    """Fleiss' kappa of RATINGS (one row per pair, one label per rater; every row the same length)."""
    if not ratings:
        return None
    raters = len(ratings[0])
    if raters < 2 or any(len(r) != raters for r in ratings):
        raise ValueError("Fleiss' kappa needs the same number (>= 2) of ratings on every pair")
    counts = np.array([[list(r).count(label) for label in labels] for r in ratings], dtype=float)
    n = len(ratings)
    p_i = ((counts * counts).sum(axis=1) - raters) / (raters * (raters - 1))
    p_bar = p_i.mean()
    p_j = counts.sum(axis=0) / (n * raters)
    pe = float((p_j * p_j).sum())
    return None if pe >= 1 else float((p_bar - pe) / (1 - pe))


def leave_one_out(ratings: Sequence[Sequence[str]], labels: Sequence[str], **kw: Any) -> list[LabelAgreement]:
    """Each rater against the majority of the other raters, on the pairs where that majority exists
    (more than half of the others agree; with two others, when both agree)."""
    raters = len(ratings[0]) if ratings else 0
    out = []
    for r in range(raters):
        gold, pred = [], []
        for row in ratings:
            others = [x for i, x in enumerate(row) if i != r]
            top = max(set(others), key=others.count)
            if others.count(top) * 2 > len(others):
                gold.append(top)
                pred.append(row[r])
        out.append(label_agreement(gold, pred, labels,
                                   note=f"rater {r} vs the majority of the others, on the {len(gold)} of "
                                        f"{len(ratings)} pairs where they have one", **kw))
    return out


def content_words(text: str) -> set[str]:
    """Lower-case words of three or more characters, less a few function words."""
    return {w for w in _WORD.findall(text.lower()) if len(w) >= 3 and w not in _STOP}


def word_overlap_labels(answers: Sequence[str], statements: Sequence[str], *, entail: str = "Entailment",
                        neutral: str = "Neutral", threshold: float = OVERLAP_THRESHOLD) -> list[str]:
    """The word-overlap baseline: ENTAIL when at least THRESHOLD of a statement's content words occur in
    its answer, else NEUTRAL."""
    out = []
    for answer, statement in zip(answers, statements, strict=True):
        words = content_words(statement)
        share = len(words & content_words(answer)) / len(words) if words else 0.0
        out.append(entail if share >= threshold else neutral)
    return out


@dataclass
class NliReport:
    """The judge between its floor and its ceiling, as ``evalkit judge`` prints it."""

    judge: LabelAgreement
    always_neutral: LabelAgreement
    word_overlap: LabelAgreement
    physicians: list[LabelAgreement] = field(default_factory=list)
    fleiss_kappa: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"judge": self.judge.to_dict(), "always_neutral": self.always_neutral.to_dict(),
                "word_overlap": self.word_overlap.to_dict(), "physicians": [p.to_dict() for p in self.physicians],
                "fleiss_kappa": self.fleiss_kappa}
