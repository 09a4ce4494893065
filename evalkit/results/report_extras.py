"""Report figures beyond accuracy, computed: k-sample metrics, reasoning tokens, truncation hints;
and the sections of scorers that bring their own.

``dataset_extras`` computes them for one dataset's samples (it fills
``ReportRow.extra``, which ``ReportRow.to_dict`` flattens into the JSON row). This module knows no
report: ``evalkit.results.report`` builds on it and lays the figures out as rich tables and markdown
beside the accuracy table (``extra_tables``, ``extra_markdown``).

A scorer's report section is declared on its class (``evalkit.scoring.base``): ``report_extra(samples)
-> dict`` (its figures for one dataset's samples, {} when they carry none of its scores) and
``report_tables(rows) -> [ReportTable]`` (titled tables made of the report rows' ``extra``).
``scorer_tables`` collects them into ``Report.sections``; ``evalkit.results.report`` lays them out as
rich tables, markdown and CSV, ``Report.to_dict`` puts them in the JSON, and
``evalkit.results.pages.report`` on the page, each the same generic way for every scorer.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from evalkit.config import DEFAULT_CONFIDENCE, DEFAULT_SEED
from evalkit.core.records import ReportTable
from evalkit.core.stats import DEFAULT_RESAMPLES
from evalkit.results.kmetrics import k_sample_metrics
from evalkit.results.reasoning import reasoning_stats

# A truncation rate above this gets a hint to raise --max-new-tokens.
TRUNCATION_HINT_RATE = 0.05


def outside_scorers(runs: Iterable[Any]) -> list[str]:
    """The scorers defined outside evalkit that the RUNS' manifests name (each scorer's ``source``, the
    ``module:attr`` it was loaded from), each once."""
    names: list[str] = []
    for run in runs:
        for entry in (((getattr(run, "manifest", None) or {}).get("scoring") or {}).get("scorers") or []):
            source = entry.get("source") if isinstance(entry, Mapping) else None
            if isinstance(source, str) and ":" in source:
                names.append(source)
    return list(dict.fromkeys(names))


def section_providers(runs: Iterable[Any] = ()) -> list[Any]:
    """The scorers that bring a report section: the built-in ones and the ``outside_scorers`` of RUNS
    that load here."""
    from evalkit.scoring import report_section_providers

    return report_section_providers(outside_scorers(runs))


def unloadable_scorers(runs: Iterable[Any]) -> list[str]:
    """A warning for each outside scorer of RUNS that does not load here: the report shows its scores, but
    cannot show the section it may bring."""
    from evalkit.scoring import ScorerError, scorer_factory

    warnings = []
    for source in outside_scorers(runs):
        try:
            scorer_factory(source)
        except ScorerError as exc:
            warnings.append(f"scorer {source} (named in a run's manifest) cannot be loaded here: {exc}; "
                            "its own report section, if it has one, is left out (its scores are shown)")
    return warnings


def dataset_extras(samples: Iterable[Mapping[str, Any]], *, ks: Sequence[int] = (),
                   confidence: float = DEFAULT_CONFIDENCE, n_resamples: int = DEFAULT_RESAMPLES,
                   seed: int = DEFAULT_SEED,
                   providers: Sequence[Any] | None = None) -> dict[str, Any]:
    """Reasoning figures and (for multi-sample runs) pass@k / maj@k / avg@k of one dataset's samples,
    and the figures of every scorer that brings a report section (PROVIDERS; None: the built-in ones)."""
    samples = list(samples)
    out = reasoning_stats(samples)
    out.update(k_sample_metrics(samples, ks=ks, confidence=confidence, n_resamples=n_resamples, seed=seed))
    for provider in (section_providers() if providers is None else providers):
        out.update(provider.report_extra(samples))
    return out


def scorer_tables(rows: Sequence[Any], providers: Sequence[Any] | None = None) -> list[ReportTable]:
    """Every scorer's report tables made of the report ROWS (``report.ReportRow``s; PROVIDERS: None, the
    built-in ones)."""
    tables: list[ReportTable] = []
    for provider in (section_providers() if providers is None else providers):
        for table in provider.report_tables(rows):
            if not isinstance(table, ReportTable):
                raise TypeError(f"{getattr(provider, 'name', provider)!r}.report_tables gave {type(table).__name__}, "
                                "not evalkit.core.records.ReportTable")
            tables.append(table)
    return tables


def truncation_hints(rows: Iterable[Any], max_new_tokens: int | None = None) -> list[str]:
    """One line per dataset whose truncation rate is high, saying what to do about it: room for a
    model that thinks (2000 tokens, as published reasoning evaluations give, more for long thinkers); for one that does not,
    a look at its outputs (an answer that long is often a loop).

    ROWS are report rows (their ``extra["thinking"]``: the share of generations that think) or
    (name, n, truncated[, thinking]) tuples, thinking a count; unknown thinking gets both advices.
    """
    hints = []
    for r in rows:
        if hasattr(r, "dataset"):
            name, n, truncated, thinking = r.dataset, r.n, r.truncated, (r.extra or {}).get("thinking")
        else:
            name, n, truncated, *rest = r
            thinking = rest[0] if rest else None
        if n and truncated / n > TRUNCATION_HINT_RATE:
            limit = f" --max-new-tokens {max_new_tokens}" if max_new_tokens else " the token limit"
            advice = (THINKING_ADVICE if thinking else NO_THINKING_ADVICE) if thinking is not None else \
                f"{THINKING_ADVICE} {NO_THINKING_ADVICE}"
            hints.append(f"{name}: {100 * truncated / n:.1f}% of answers hit{limit}; truncated answers count as "
                         f"wrong. {advice}")
    return hints


THINKING_ADVICE = "Thinking models need room: published reasoning evaluations give 2000, long thinkers need more."
NO_THINKING_ADVICE = ("Its answers show no thinking: look at the truncated outputs (evalkit report's sample browser) "
                      "before raising the limit; an answer that long is often a loop.")
