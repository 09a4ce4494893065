"""Report figures for reasoning models: k-sample metrics, reasoning tokens, truncation hints;
and the sections of scorers that bring their own.

``dataset_extras`` computes them for one dataset's samples (it fills
``ReportRow.extra``, which ``ReportRow.to_dict`` flattens into the JSON row);
the rest formats them as rich tables and markdown beside the accuracy table.

A scorer's report section is declared on its class (``evalkit.scoring.base``): ``report_extra(samples)
-> dict`` (its figures for one dataset's samples, {} when they carry none of its scores) and
``report_tables(rows) -> [ReportTable]`` (titled tables made of the report rows' ``extra``).
``scorer_tables`` collects them into ``Report.sections``; this module lays them out as rich tables
and markdown, ``Report.to_dict`` puts them in the JSON, and ``evalkit.results.pages.report`` on the page,
each the same generic way for every scorer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from rich.table import Table

from evalkit.config import DEFAULT_CONFIDENCE, DEFAULT_SEED
from evalkit.results.kmetrics import k_sample_metrics
from evalkit.results.reasoning import reasoning_stats
from evalkit.core.stats import DEFAULT_RESAMPLES

if TYPE_CHECKING:
    from evalkit.core.records import ReportTable
    from evalkit.results.report import Report, ReportRow

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


def scorer_tables(rows: Sequence["ReportRow"], providers: Sequence[Any] | None = None) -> list["ReportTable"]:
    """Every scorer's report tables made of the report ROWS (PROVIDERS; None: the built-in ones)."""
    from evalkit.core.records import ReportTable

    tables: list[ReportTable] = []
    for provider in (section_providers() if providers is None else providers):
        for table in provider.report_tables(rows):
            if not isinstance(table, ReportTable):
                raise TypeError(f"{getattr(provider, 'name', provider)!r}.report_tables gave {type(table).__name__}, "
                                "not evalkit.core.records.ReportTable")
            tables.append(table)
    return tables


def section_rich_table(section: "ReportTable") -> Table:
    """A scorer's report table as a rich Table, its notes as the caption."""
    t = Table(title=section.title, title_justify="left", caption="; ".join(section.notes) or None,
              caption_justify="left")
    for i, h in enumerate(section.header):
        t.add_column(h, justify="left" if i < section.label_columns else "right")
    first_reference = section.reference_from
    for k, row in enumerate(section.rows):
        reference = first_reference is not None and k >= first_reference
        t.add_row(*row, style="dim" if reference else None,
                  end_section=first_reference is not None and k == first_reference - 1)
    return t


def section_markdown(section: "ReportTable") -> list[str]:
    """A scorer's report table as markdown lines: a heading, the table, its notes."""
    from evalkit.results.report import markdown_table

    lines = [f"## {section.title}", "", markdown_table(section.header, section.rows, section.label_columns), ""]
    if section.notes:
        lines += [*(f"- {note}" for note in section.notes), ""]
    return lines


def _pct(x: Any) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _tok(x: Any) -> str:
    return "-" if x is None else f"{x:.0f}"


def _ci(pair: Any) -> str:
    return "-" if not pair else f"[{100 * pair[0]:.1f}, {100 * pair[1]:.1f}]"


def k_sample_ks(report: "Report") -> list[int]:
    """Every k that has a pass@k column in some row, ascending."""
    ks = {int(key[5:]) for r in report.rows for key in r.extra if key.startswith("pass@") and key[5:].isdigit()}
    return sorted(ks)


def k_sample_header(report: "Report") -> list[str]:
    cols = ["run", "dataset", "n", "K", "maj@K %", "maj@K CI"]
    cols += [f"pass@{k} %" for k in k_sample_ks(report)]
    return cols + ["avg@K %", "avg@K sd", "avg@K CI"]


def k_sample_cells(r: "ReportRow", ks: Sequence[int]) -> list[str]:
    e, k = r.extra, r.extra["k_samples"]
    cells = [r.run, r.dataset, str(e["k_items"]), str(k), _pct(e.get(f"maj@{k}")), _ci(e.get(f"maj@{k}_ci"))]
    cells += [_pct(e.get(f"pass@{j}")) for j in ks]
    return cells + [_pct(e.get(f"avg@{k}")), _pct(e.get(f"avg@{k}_std")), _ci(e.get(f"avg@{k}_ci"))]


def reasoning_header() -> list[str]:
    return ["run", "dataset", "thinking %", "reason tok mean", "p50", "p95", "answer tok mean", "p50", "p95",
            "source", "trunc. in thinking", "other unparsed"]


def reasoning_cells(r: "ReportRow") -> list[str]:
    e = r.extra
    return [r.run, r.dataset, _pct(e.get("thinking")),
            _tok(e.get("reasoning_tokens_mean")), _tok(e.get("reasoning_tokens_p50")), _tok(e.get("reasoning_tokens_p95")),
            _tok(e.get("answer_tokens_mean")), _tok(e.get("answer_tokens_p50")), _tok(e.get("answer_tokens_p95")),
            str(e.get("reasoning_tokens_source", "-")), str(e.get("truncated_in_thinking", 0)),
            str(e.get("unparsed_other", 0))]


def _k_rows(report: "Report") -> list["ReportRow"]:
    return [r for r in report.rows if r.group is None and "k_samples" in r.extra]


def _reasoning_rows(report: "Report") -> list["ReportRow"]:
    return [r for r in report.rows if r.group is None and (r.extra.get("thinking") or 0) > 0]


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


def extra_tables(report: "Report") -> list[Table]:
    """Rich tables for the k-sample metrics and the reasoning figures (none when they do not apply)."""
    tables = []
    rows = _k_rows(report)
    if rows:
        ks = k_sample_ks(report)
        t = Table(title="k-sample metrics (maj@K is the run's majority vote)", title_justify="left")
        for i, h in enumerate(k_sample_header(report)):
            t.add_column(h, justify="left" if i < 2 else "right", no_wrap=True)
        for r in rows:
            t.add_row(*k_sample_cells(r, ks))
        tables.append(t)
    rows = _reasoning_rows(report)
    if rows:
        t = Table(title="Reasoning: tokens per generation", title_justify="left")
        for i, h in enumerate(reasoning_header()):
            t.add_column(h, justify="left" if i < 2 else "right", no_wrap=True)
        for r in rows:
            t.add_row(*reasoning_cells(r))
        tables.append(t)
    tables += [section_rich_table(section) for section in report.sections]
    return tables


def extra_markdown(report: "Report") -> list[str]:
    """Markdown sections for the same tables (lines to join), empty when they do not apply."""
    from evalkit.results.report import markdown_table

    parts: list[str] = []
    rows = _k_rows(report)
    if rows:
        ks = k_sample_ks(report)
        parts += ["## k-sample metrics", "",
                  markdown_table(k_sample_header(report), (k_sample_cells(r, ks) for r in rows), 2), ""]
    rows = _reasoning_rows(report)
    if rows:
        parts += ["## Reasoning: tokens per generation", "",
                  markdown_table(reasoning_header(), (reasoning_cells(r) for r in rows), 2), ""]
    for section in report.sections:
        parts += section_markdown(section)
    return parts
