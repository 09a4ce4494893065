"""k-sample metrics of multi-sample runs (``--samples K``): pass@k, maj@k and avg@k.

Pure functions over stored sample dicts. Each multi-sample record keeps every
generation of its deciding stage (the last one: the K samples of
self-consistency, the R refinements of ensemble refinement), each with its
extracted ``pred``; a generation is right when its letter is the gold one
(``score.is_correct``, so unparsed generations are wrong).

* pass@k: the unbiased estimator of Chen et al. (2021), "Evaluating Large
  Language Models Trained on Code": with n generations of which c are right,
  ``1 - C(n-c, k) / C(n, k)``, the chance that k generations drawn without
  replacement hold a right one; averaged over items.
* maj@k: the majority vote over an item's first k generations
  (``scoring.choice.majority_vote``: unparsed ones cast no vote, ties go to the earliest
  vote), so maj@K is the run's own verdict.
* avg@k: the mean accuracy of single generations (mean over items of c/n), with
  its spread across samples: the standard deviation of the K accuracies of
  "generation j of every item", j = 1..K.

CIs: maj@k is a proportion (Wilson interval); pass@k and avg@k are means of
per-item values in [0, 1], given a percentile bootstrap over items.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from evalkit.config import DEFAULT_CONFIDENCE, DEFAULT_SEED
from evalkit.scoring.choice import majority_vote
from evalkit.run.summary import is_correct
from evalkit.core.stats import DEFAULT_RESAMPLES, wilson_interval


def pass_at_k(n: int, c: int, k: int) -> float:
    """Chen et al.'s unbiased pass@k of one item: n generations, c of them right.

    Computed as ``1 - prod_{i=n-c+1}^{n} (1 - k/i)``, which equals
    ``1 - C(n-c, k)/C(n, k)`` without the huge binomials.
    """
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")
    if n - c < k:
        return 1.0
    miss = 1.0
    for i in range(n - c + 1, n + 1):
        miss *= 1.0 - k / i
    return 1.0 - miss


@dataclass(frozen=True)
class ItemGenerations:
    """One item's deciding-stage generations, reduced to right/wrong, with their letters in order."""

    preds: tuple[str | None, ...]
    gold: str

    @property
    def n(self) -> int:
        return len(self.preds)

    @property
    def right(self) -> tuple[bool, ...]:
        return tuple(is_correct(p, self.gold) for p in self.preds)

    @property
    def c(self) -> int:
        return sum(self.right)


def item_generations(sample: Mapping[str, Any]) -> ItemGenerations | None:
    """The deciding stage of a stored multi-sample record, or None for a one-sample record or an error."""
    stages = sample.get("stages")
    if sample.get("error") or not stages or sample.get("answer_idx") in (None, ""):
        return None  # a failed request, one sample, or not a multiple-choice item
    outputs = sorted(stages[-1].get("outputs") or [], key=lambda g: g.get("k", 0))
    if not outputs:
        return None
    return ItemGenerations(tuple(g.get("pred") for g in outputs), str(sample["answer_idx"]))


def _bootstrap_mean_ci(values: Sequence[float], confidence: float, n_resamples: int, seed: int) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of VALUES (resampling items)."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return (0.0, 1.0)
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    step = max(1, 2_000_000 // arr.size)  # resamples per chunk: about 16 MB of indices at a time
    for start in range(0, n_resamples, step):
        stop = min(n_resamples, start + step)
        means[start:stop] = arr[rng.integers(0, arr.size, size=(stop - start, arr.size))].mean(axis=1)
    alpha = (1.0 - confidence) / 2
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return (float(lo), float(hi))


def default_ks(k_max: int, requested: Iterable[int] = ()) -> list[int]:
    """1 and K, plus any requested k up to K, ascending."""
    ks = {1, k_max} | {k for k in requested if 1 <= k <= k_max}
    return sorted(ks)


def k_sample_metrics(
    samples: Iterable[Mapping[str, Any]],
    *,
    ks: Iterable[int] = (),
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> dict[str, Any]:
    """pass@k, maj@k and avg@K over the multi-sample records among SAMPLES (one dataset).

    Returns {} when no sample has several generations. Otherwise keys
    ``k_samples`` (K, the fewest generations any item has), ``k_items`` (items), and for
    each k of ``default_ks``: ``pass@k`` and ``maj@k`` with ``pass@k_ci`` /
    ``maj@k_ci`` ([low, high]); and ``avg@K`` with ``avg@K_ci`` and ``avg@K_std``.
    Requested k larger than K are ignored.
    """
    items = [g for g in (item_generations(s) for s in samples) if g is not None]
    if not items:
        return {}
    k_max = min(g.n for g in items)
    out: dict[str, Any] = {"k_samples": k_max, "k_items": len(items)}
    for k in default_ks(k_max, ks):
        per_item = [pass_at_k(g.n, g.c, k) for g in items]
        out[f"pass@{k}"] = float(np.mean(per_item))
        out[f"pass@{k}_ci"] = list(_bootstrap_mean_ci(per_item, confidence, n_resamples, seed))
        votes = sum(is_correct(majority_vote(g.preds[:k])[0], g.gold) for g in items)
        out[f"maj@{k}"] = votes / len(items)
        out[f"maj@{k}_ci"] = list(wilson_interval(votes, len(items), confidence))
    per_item_avg = [sum(g.right[:k_max]) / k_max for g in items]
    out[f"avg@{k_max}"] = float(np.mean(per_item_avg))
    out[f"avg@{k_max}_ci"] = list(_bootstrap_mean_ci(per_item_avg, confidence, n_resamples, seed))
    by_position = [np.mean([g.right[j] for g in items]) for j in range(k_max)]
    out[f"avg@{k_max}_std"] = float(np.std(by_position, ddof=1)) if k_max > 1 else 0.0
    return out
