"""Metrics: how the named scores of one dataset become one table cell (a value with its interval).

A scorer declares, per score name, the metric that aggregates it (``Scorer.metrics``); the run's
manifest records each metric's ``spec()``; report, leaderboard, gate and HTML read that record
(``rundir.run_metrics``) and aggregate with ``get_metric(spec)``, falling back to
``default_metric`` for runs written before metrics were recorded.

Built in:

- ``proportion``: the share of true values, with Wilson's interval (or a percentile bootstrap);
- ``mean``: the mean, with a percentile bootstrap interval;
- ``clipped_mean(lo, hi)``: the mean clipped to [lo, hi] *after* averaging (a rubric-item
  grader's overall figure is ``clipped_mean(0, 1)`` of its per-conversation scores);
- ``weighted_proportion``: ``sum(value * w) / sum(w)`` with ``w = score.meta["weight"]`` (1 when
  absent); items of weight 0 are left out and counted in ``extra["excluded"]``.

A user's metric is any object with ``name``, ``spec()`` and ``aggregate(scores)``, named by
``"module:attr"`` (a class or factory called with the spec's other keys, or an instance).

Pure: no I/O. The report-time options (confidence, resamples, seed, the proportion's interval
method) are fields of the built-in metrics, set with ``with_options``; they are not part of
``spec()``, which says what the figure *is*, not how its interval was drawn.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, ClassVar, Iterable, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np

from evalkit.config import DEFAULT_CONFIDENCE, DEFAULT_SEED
from evalkit.core.plugins import load_attr, load_plugins
from evalkit.core.stats import DEFAULT_RESAMPLES, bootstrap_mean_ci, bootstrap_proportion_ci, wilson_interval


class MetricError(ValueError):
    """A metric cannot be found or built, or does not fit the values it is given."""


@dataclass(frozen=True)
class MetricValue:
    """One aggregated cell: the value (None when nothing was scored), its 95% interval, the items
    that count, and what else the metric reports (``errors``: items present but unscored)."""

    value: float | None
    ci: tuple[float, float] | None
    n: int
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Metric(Protocol):
    """How the scores of one name, over the items of one dataset, aggregate."""

    name: str

    def spec(self) -> dict[str, Any]:
        """JSON: ``{"name": ..., **params}``; stored in manifests, read back by ``get_metric``."""
        ...

    def aggregate(self, scores: Sequence[Mapping[str, Any]]) -> MetricValue:
        """SCORES: stored score dicts (value, answer, explanation, meta, error), one per item."""
        ...


MetricFactory = Callable[..., Metric]
METRICS: dict[str, MetricFactory] = {}


def register_metric(name: str) -> Callable[[MetricFactory], MetricFactory]:
    """Class decorator: make a metric available by NAME (in manifests and ``get_metric``)."""
    def add(factory: MetricFactory) -> MetricFactory:
        METRICS[name] = factory
        return factory
    return add


def scored_values(scores: Iterable[Mapping[str, Any] | None]) -> tuple[list[Any], int]:
    """(values of the scored items, how many items are unscored: value None, an error, or no score)."""
    values, unscored = [], 0
    for s in scores:
        mapping = type(s) is dict or isinstance(s, Mapping)  # type() first: typing's isinstance is slow per item
        value = s.get("value") if mapping else None  # type: ignore[union-attr]
        if value is None or (mapping and s.get("error")):  # type: ignore[union-attr]
            unscored += 1
        else:
            values.append(value)
    return values, unscored


@dataclass(frozen=True, kw_only=True)
class _Options:
    """Report-time options every built-in metric takes, by keyword (not part of its spec)."""

    confidence: float = DEFAULT_CONFIDENCE
    n_resamples: int = DEFAULT_RESAMPLES
    seed: int = DEFAULT_SEED

    def spec(self) -> dict[str, Any]:
        """The metric's name and the parameters that change its figure (not the report-time options)."""
        return {"name": self.name}  # type: ignore[attr-defined]


@register_metric("proportion")
@dataclass(frozen=True)
class Proportion(_Options):
    """The share of true values (bools, or 0/1), with Wilson's interval (``ci_method="bootstrap"``:
    a percentile bootstrap)."""

    ci_method: str = field(default="wilson", kw_only=True)
    name: str = field(default="proportion", init=False)
    percent: ClassVar[bool] = True

    def value_of_mean(self, mean: float) -> float:
        """The figure from the plain mean of the values (what a streamed summary keeps)."""
        return mean

    def aggregate(self, scores: Sequence[Mapping[str, Any]]) -> MetricValue:
        values, unscored = scored_values(scores)
        bad = next((v for v in values if not (isinstance(v, bool) or v in (0, 1))), None)
        if bad is not None:
            raise MetricError(f"proportion needs true/false (or 0/1) values, got {bad!r}")
        n, k = len(values), sum(1 for v in values if v)
        if n == 0:
            return MetricValue(None, None, 0, {"successes": 0, "errors": unscored})
        if self.ci_method == "wilson":
            lo, hi = wilson_interval(k, n, self.confidence)
        elif self.ci_method == "bootstrap":
            lo, hi = bootstrap_proportion_ci(k, n, self.confidence, n_resamples=self.n_resamples, seed=self.seed)
        else:
            raise MetricError(f"unknown interval method {self.ci_method!r}: wilson or bootstrap")
        return MetricValue(k / n, (lo, hi), n, {"successes": k, "errors": unscored})


def _numbers(values: Sequence[Any], metric: str) -> list[float]:
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError):
        bad = next(v for v in values if not isinstance(v, (int, float)))
        raise MetricError(f"{metric} needs numbers, got {bad!r}") from None


@register_metric("mean")
@dataclass(frozen=True)
class Mean(_Options):
    """The mean of the values (bools count as 0/1), with a percentile bootstrap interval."""

    name: str = field(default="mean", init=False)

    def value_of_mean(self, mean: float) -> float:
        """The figure from the plain mean of the values (what a streamed summary keeps)."""
        return mean

    def aggregate(self, scores: Sequence[Mapping[str, Any]]) -> MetricValue:
        values, unscored = scored_values(scores)
        m = bootstrap_mean_ci(_numbers(values, self.name), self.confidence, n_resamples=self.n_resamples,
                              seed=self.seed)
        ci = (m.lo, m.hi) if m.n else None
        return MetricValue(m.mean, ci, m.n, {"errors": unscored})  # type: ignore[arg-type]


@register_metric("clipped_mean")
@dataclass(frozen=True)
class ClippedMean(_Options):
    """The mean of the values clipped to [LO, HI] after averaging (per-item values are not clipped);
    the interval is the bootstrap interval of the mean, clipped the same way."""

    lo: float = 0.0
    hi: float = 1.0
    name: str = field(default="clipped_mean", init=False)

    def __post_init__(self) -> None:
        if not self.lo <= self.hi:
            raise MetricError(f"clipped_mean needs lo <= hi, got lo={self.lo}, hi={self.hi}")

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "lo": self.lo, "hi": self.hi}

    def _clip(self, x: float) -> float:
        return min(self.hi, max(self.lo, x))

    def value_of_mean(self, mean: float) -> float:
        """The figure from the plain mean of the values (what a streamed summary keeps): clipped."""
        return self._clip(mean)

    def aggregate(self, scores: Sequence[Mapping[str, Any]]) -> MetricValue:
        values, unscored = scored_values(scores)
        m = bootstrap_mean_ci(_numbers(values, self.name), self.confidence, n_resamples=self.n_resamples,
                              seed=self.seed)
        if not m.n:
            return MetricValue(None, None, 0, {"errors": unscored})
        return MetricValue(self._clip(m.mean), (self._clip(m.lo), self._clip(m.hi)), m.n,  # type: ignore[arg-type]
                           {"unclipped_mean": m.mean, "errors": unscored})


@register_metric("weighted_proportion")
@dataclass(frozen=True)
class WeightedProportion(_Options):
    """``sum(value * w) / sum(w)`` over the items, ``w = meta["weight"]`` (1 when absent); items of
    weight 0 are excluded (``extra["excluded"]``); the interval is a bootstrap over the items."""

    name: str = field(default="weighted_proportion", init=False)
    percent: ClassVar[bool] = True

    def aggregate(self, scores: Sequence[Mapping[str, Any]]) -> MetricValue:
        values, weights, excluded, unscored = [], [], 0, 0
        for s in scores:
            value = s.get("value") if isinstance(s, Mapping) else None
            if value is None or s.get("error"):
                unscored += 1
                continue
            raw = (s.get("meta") or {}).get("weight", 1)
            if isinstance(raw, bool) or not isinstance(raw, (int, float)) or raw < 0:
                raise MetricError(f"weighted_proportion needs a weight >= 0 in meta['weight'], got {raw!r}")
            if raw == 0:
                excluded += 1
                continue
            values.append(value)
            weights.append(float(raw))
        x, w = np.asarray(_numbers(values, self.name)), np.asarray(weights)
        extra = {"weight_total": float(w.sum()), "excluded": excluded, "errors": unscored}
        if not len(x):
            return MetricValue(None, None, 0, extra)
        rng = np.random.default_rng(self.seed)
        draws = np.empty(self.n_resamples)
        chunk = max(1, 2_000_000 // len(x))
        for start in range(0, self.n_resamples, chunk):
            stop = min(self.n_resamples, start + chunk)
            idx = rng.integers(0, len(x), size=(stop - start, len(x)))
            draws[start:stop] = (x[idx] * w[idx]).sum(axis=1) / w[idx].sum(axis=1)
        tail = (1.0 - self.confidence) / 2.0
        lo, hi = np.quantile(draws, [tail, 1.0 - tail])
        return MetricValue(float((x * w).sum() / w.sum()), (float(lo), float(hi)), len(x), extra)



def _load_attr(ref: str) -> Any:
    return load_attr(ref, "metric", MetricError)

def get_metric(spec: "str | Mapping[str, Any] | Metric") -> Metric:
    """The metric named by SPEC: a name (``"mean"``), a spec dict (``{"name": "clipped_mean", "lo": 0,
    "hi": 1}``), ``"module:attr"`` (or such a name in a spec dict), or a metric itself."""
    if not isinstance(spec, (str, Mapping)):
        if isinstance(spec, Metric):
            return spec
        raise MetricError(f"not a metric or a metric spec: {spec!r}")
    params = {} if isinstance(spec, str) else {k: v for k, v in spec.items() if k != "name"}
    name = spec if isinstance(spec, str) else spec.get("name")
    if not isinstance(name, str) or not name:
        raise MetricError(f"a metric spec needs a name: {spec!r}")
    if ":" not in name and name not in METRICS:
        load_plugins()
    factory = _load_attr(name) if ":" in name else METRICS.get(name)
    if factory is None:
        raise MetricError(f"unknown metric {name!r}; built in: {', '.join(sorted(METRICS))}, or module:attr")
    if inspect.isclass(factory) or (callable(factory) and not isinstance(factory, Metric)):
        try:
            metric = factory(**params)
        except TypeError as exc:
            raise MetricError(f"cannot build metric {name!r} with {params or 'no parameters'}: {exc}") from None
    elif params:
        raise MetricError(f"metric {name!r} is an instance; it takes no parameters")
    else:
        metric = factory
    if not isinstance(metric, Metric):
        raise MetricError(f"{name!r} is not a metric: it needs name, spec() and aggregate(scores)")
    return metric


def default_metric(values: Iterable[Any]) -> Metric:
    """The metric of a score that declares none: bools -> proportion (Wilson), numbers -> mean
    (bootstrap). None values are ignored; no value at all gives a proportion."""
    if all(isinstance(v, bool) for v in values if v is not None):
        return Proportion()
    return Mean()


def with_options(metric: Metric, **options: Any) -> Metric:
    """METRIC with the report-time OPTIONS it has fields for (confidence, n_resamples, seed, ci_method);
    others, and a user's metric without such fields, are left as they are."""
    try:
        names = {f.name for f in fields(metric) if f.init}  # type: ignore[arg-type]
    except TypeError:
        return metric
    known = {k: v for k, v in options.items() if k in names and v is not None}
    return replace(metric, **known) if known else metric  # type: ignore[type-var]


def shows_percent(metric: Metric) -> bool:
    """True when METRIC's values are shares shown in percent (``percent = True`` on the metric)."""
    return bool(getattr(metric, "percent", False))


def value_of_mean(metric: Metric, mean: float | None) -> float | None:
    """METRIC's figure from the plain MEAN of the values, for metrics that are a function of it
    (proportion, mean, clipped_mean: their ``value_of_mean``); None for others (weighted ones)."""
    of_mean = getattr(metric, "value_of_mean", None)
    return None if mean is None or of_mean is None else float(of_mean(mean))


def metric_of(name: str, recorded: Mapping[str, Mapping[str, Any]] | None, values: Iterable[Any]) -> Metric:
    """The metric of score NAME: the one RECORDED for it (a manifest's ``metrics``), else
    ``default_metric`` of its VALUES."""
    spec = (recorded or {}).get(name)
    return get_metric(spec) if spec else default_metric(values)
