"""TEMPORARY SHIM of ``evalkit.scoring.metrics`` (issue 21, branch units-scoring), for issue 22's scorers.

It implements only what those scorers use of the agreed interface (docs: the notes'
metrics_interface.md): ``MetricValue``, ``get_metric`` by name for ``proportion``,
``weighted_proportion`` and ``mean``. Code imports it only when ``evalkit.scoring.metrics`` is absent
(``evalkit.scoring.metric_api``); delete this file once that module is on main.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from evalkit.stats import wilson_interval

N_RESAMPLES = 2000


@dataclass(frozen=True)
class MetricValue:
    value: float | None
    ci: tuple[float, float] | None
    n: int
    extra: dict[str, Any] = field(default_factory=dict)


def _scored(scores: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [s for s in scores if s.get("value") is not None and not s.get("error")]


class Proportion:
    name = "proportion"

    def spec(self) -> dict[str, Any]:
        return {"name": self.name}

    def aggregate(self, scores: Sequence[Mapping[str, Any]]) -> MetricValue:
        done = _scored(scores)
        k = sum(1 for s in done if s["value"])
        if not done:
            return MetricValue(None, None, 0)
        return MetricValue(k / len(done), wilson_interval(k, len(done)), len(done))


class WeightedProportion:
    name = "weighted_proportion"

    def spec(self) -> dict[str, Any]:
        return {"name": self.name}

    def aggregate(self, scores: Sequence[Mapping[str, Any]]) -> MetricValue:
        done = _scored(scores)
        weights = np.array([float((s.get("meta") or {}).get("weight", 1)) for s in done])
        values = np.array([float(s["value"]) for s in done])
        keep = weights > 0
        excluded = int((~keep).sum())
        w, v = weights[keep], values[keep]
        if not len(w):
            return MetricValue(None, None, 0, {"weight_total": 0.0, "excluded": excluded})
        rng = np.random.default_rng(0)
        idx = rng.integers(0, len(w), size=(N_RESAMPLES, len(w)))
        draws = (v[idx] * w[idx]).sum(axis=1) / w[idx].sum(axis=1)
        lo, hi = np.percentile(draws, [2.5, 97.5])
        return MetricValue(float((v * w).sum() / w.sum()), (float(lo), float(hi)), int(len(w)),
                           {"weight_total": float(w.sum()), "excluded": excluded})


class Mean:
    name = "mean"

    def spec(self) -> dict[str, Any]:
        return {"name": self.name}

    def aggregate(self, scores: Sequence[Mapping[str, Any]]) -> MetricValue:
        from evalkit.stats import bootstrap_mean_ci

        done = [float(s["value"]) for s in _scored(scores)]
        if not done:
            return MetricValue(None, None, 0)
        m = bootstrap_mean_ci(done)
        return MetricValue(m.mean, (m.lo, m.hi), m.n)


_BUILTIN = {"proportion": Proportion, "weighted_proportion": WeightedProportion, "mean": Mean}


def get_metric(spec: str | Mapping[str, Any]) -> Any:
    name = spec if isinstance(spec, str) else spec["name"]
    return _BUILTIN[name]()
