"""The ``count`` metric: how many items of a dataset have a true score (e.g. an exam's questions
with a contraindicated choice picked, which the exam limits). Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from evalkit.scoring.metrics import MetricValue, register_metric


@register_metric("count")
@dataclass(frozen=True)
class Count:
    """The number of scored items whose value is true (non-zero). Items of weight 0 (``meta["weight"]``:
    a question the exam excluded) do not count and are reported in ``extra["excluded"]``; unscored
    items in ``extra["errors"]``. No interval: a count of this run's items, not an estimate."""

    name: str = field(default="count", init=False)

    def spec(self) -> dict[str, Any]:
        return {"name": self.name}

    def aggregate(self, scores: Sequence[Mapping[str, Any]]) -> MetricValue:
        counted, excluded, unscored = [], 0, 0
        for s in scores:
            if not isinstance(s, Mapping) or s.get("value") is None or s.get("error"):
                unscored += 1
            elif (s.get("meta") or {}).get("weight", 1) == 0:
                excluded += 1
            else:
                counted.append(s["value"])
        return MetricValue(float(sum(1 for v in counted if v)), None, len(counted),
                           {"excluded": excluded, "errors": unscored})
