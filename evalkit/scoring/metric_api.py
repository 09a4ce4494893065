"""The metric interface issue 22's scorers declare: ``evalkit.scoring.metrics`` when present,
else the temporary shim (``_metrics_shim``) until that module lands on main. Also the
metric these scorers add: ``count`` (how many items have a true value)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

try:  # the real module (issue 21)
    from evalkit.scoring.metrics import MetricValue, get_metric  # type: ignore[import-not-found]
    SHIM = False
except ImportError:  # pragma: no cover - until issue 21 is merged
    from evalkit.scoring._metrics_shim import MetricValue, get_metric  # noqa: F401
    SHIM = True


def _scored(scores: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [s for s in scores if isinstance(s, Mapping) and s.get("value") is not None and not s.get("error")]


class Count:
    """How many scored items have a true (non-zero) value: e.g. questions where a contraindicated
    choice was picked. Items of weight 0 (``meta["weight"]``: a question the exam excluded) do not
    count and are reported in ``extra["excluded"]``. No interval (a count of this run's items, not
    an estimate)."""

    name = "count"

    def spec(self) -> dict[str, Any]:
        return {"name": "evalkit.scoring.metric_api:Count"}

    def aggregate(self, scores: Sequence[Mapping[str, Any]]) -> MetricValue:
        done = _scored(scores)
        counted = [s for s in done if (s.get("meta") or {}).get("weight", 1) != 0]
        return MetricValue(float(sum(1 for s in counted if s["value"])), None, len(counted),
                           {"excluded": len(done) - len(counted)})

