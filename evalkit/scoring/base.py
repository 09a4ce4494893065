"""The scorer protocol, the registry of built-in scorers, and loading a scorer from ``module:attr``.

A scorer is any object with ``name``, ``requires``, ``spec()`` and ``score(item, sample)``
(a plain or an ``async`` method) that returns ``{score name: Score}``. Nothing else
is asked of it: a user's scorer needs no evalkit base class.

A scorer may also bring its own **report section**, as two functions on its class (static
methods: the report reads them without building the scorer, so a judge needs no endpoint):
``report_extra(samples) -> dict``, its figures for one dataset's sample lines (kept on the
report row's ``extra``; {} when the samples carry none of its scores), and
``report_tables(rows) -> [ReportTable]``, titled tables (``evalkit.core.records.ReportTable``: header,
text cells, notes) made of the report rows. Every report format lays them out the same way.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
from typing import Any, Awaitable, Callable, Mapping, Protocol, Sequence, runtime_checkable

from evalkit.core.plugins import load_attr, load_plugins
from evalkit.core.records import Item, SampleRecord, Score
from evalkit.scoring.metrics import Metric
from evalkit.core.errors import InputError


class ScorerError(InputError):
    """A scorer cannot be found, built, or used on these items."""


@runtime_checkable
class Scorer(Protocol):
    """What the scoring stage needs of a scorer."""

    name: str
    requires: tuple[str, ...]
    # Optional: ``metrics: Mapping[str, Metric]``, score name -> how it aggregates (default_metric if absent);
    # ``report_extra`` and ``report_tables`` on the class, its report section (see the module docstring).

    def spec(self) -> dict[str, Any]:
        """Everything that changes this scorer's scores (goes into the scoring fingerprint)."""
        ...

    def score(self, item: Item, sample: SampleRecord) -> "Mapping[str, Score] | Awaitable[Mapping[str, Score]]":
        """The named scores of SAMPLE, an answer to ITEM."""
        ...


ScorerFactory = Callable[..., Scorer]
SCORERS: dict[str, ScorerFactory] = {}


def register_scorer(name: str) -> Callable[[ScorerFactory], ScorerFactory]:
    """Class decorator: make a scorer available by NAME (``--scorer NAME``)."""
    def add(factory: ScorerFactory) -> ScorerFactory:
        SCORERS[name] = factory
        return factory
    return add


# Scorer options that hold a secret (a judge's api_key, a user scorer's token): never shown, never saved.
_SECRET_OPTION = re.compile(r"(?:^|_)(?:api_?key|key|token|secret|password)$", re.IGNORECASE)


def is_secret_option(key: str) -> bool:
    """True for a scorer option that holds a secret (``api_key``, ``..._token``, ``password``...)."""
    return bool(_SECRET_OPTION.search(key))


def secret_option_values(scorer_options: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The values of every secret option in SCORER_OPTIONS ({scorer: {key: value}}), to redact."""
    return [str(v) for options in scorer_options.values() for k, v in options.items()
            if is_secret_option(k) and v not in (None, "")]


def scorer_factory(name: str) -> Any:
    """What NAME (a built-in name or ``module:attr``) names, not built: its class, factory or instance."""
    if ":" in name:
        return _load_attr(name)
    if name not in SCORERS:
        load_plugins()
    try:
        return SCORERS[name]
    except KeyError:
        raise ScorerError(f"unknown scorer {name!r}; built in: {', '.join(sorted(SCORERS))}, "
                          "or give one as module:attr") from None


def report_section_providers(names: Sequence[str] = ()) -> list[Any]:
    """The scorers (classes or instances, not built) that bring a report section: every built-in one,
    then those of NAMES (e.g. the ``module:attr`` scorers a run's manifest records) that can be loaded."""
    found: list[Any] = []
    load_plugins()
    for name in [*SCORERS, *names]:
        try:
            factory = scorer_factory(name)
        except ScorerError:
            continue  # not installed here: no section (report_extras.unloadable_scorers says so)
        if callable(getattr(factory, "report_extra", None)) and callable(getattr(factory, "report_tables", None)) \
                and factory not in found:
            found.append(factory)
    return found


def get_scorer(name: str, **options: Any) -> Scorer:
    """The scorer called NAME (a built-in name, or ``module:attr`` outside evalkit), built with OPTIONS.

    ``attr`` may be a class or factory (called with OPTIONS) or a ready instance.
    """
    factory = scorer_factory(name)
    if callable(factory) and (inspect.isclass(factory) or not _looks_like_scorer(factory)):
        try:
            scorer = factory(**options)
        except TypeError as exc:
            shown = {k: "***" if is_secret_option(k) else v for k, v in options.items()}
            reason = str(exc)
            for secret in secret_option_values({name: options}):
                reason = reason.replace(secret, "***")
            raise ScorerError(f"cannot build scorer {name!r} with {shown or 'no options'}: {reason}") from None
    else:
        if options:
            raise ScorerError(f"scorer {name!r} is an instance; it takes no options")
        scorer = factory
    if not _looks_like_scorer(scorer):
        raise ScorerError(f"{name!r} is not a scorer: it needs name, requires, spec() and score(item, sample)")
    return scorer


def scorer_metrics_for_spec(name: str, spec: Any) -> "Mapping[str, Metric]":
    """The metrics a built-in scorer NAME declares for a recorded SPEC (its ``metrics_for_spec``),
    for manifests written before metrics were recorded; {} when it cannot say."""
    factory = SCORERS.get(name)
    for_spec = getattr(factory, "metrics_for_spec", None)
    if for_spec is None or not isinstance(spec, Mapping):
        return {}
    return for_spec(spec)


def _looks_like_scorer(obj: Any) -> bool:
    return not inspect.isclass(obj) and all(hasattr(obj, a) for a in ("name", "requires", "spec", "score"))



def _load_attr(ref: str) -> Any:
    return load_attr(ref, "scorer", ScorerError)

def is_async(scorer: Scorer) -> bool:
    """True when the scorer's ``score`` is a coroutine function (it calls a model)."""
    return inspect.iscoroutinefunction(scorer.score)


def scoring_fingerprint(scorers: Sequence[Scorer]) -> str:
    """A hash of every scorer's name and spec: equal fingerprints mean equal scores."""
    doc = [{"name": s.name, "spec": s.spec()} for s in scorers]
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def check_requirements(scorers: Sequence[Scorer], item: Item, where: str) -> None:
    """Raise ScorerError when ITEM lacks a field one of SCORERS needs (checked before any request)."""
    for s in scorers:
        for req in s.requires:
            value = getattr(item, req, None)
            if value is None or value == {} or value == "":
                hint = ("these items have no options: choose a scorer for long answers (e.g. --scorer judge) or "
                        "an --adapter that reads the options" if req in ("options", "answer_idx") else
                        f"choose another scorer, or an --adapter that fills {req!r}")
                raise ScorerError(f"{where}: scorer {s.name!r} needs {req!r}, which item {item.id!r} lacks; {hint}")
