"""Reports: load runs, reduce them to per-dataset rows, and format the rows.

A RUN is a run directory (``samples.jsonl`` + ``manifest.json`` + ``summary.json``)
or a bare samples file. The numbers are computed from the samples, never taken
from summary.json, so a re-scored samples file reports what it holds.

Item-level verdicts: when several samples share (dataset, id) (self-consistency
writes ``index`` 1, 2, ...; a resumed run may hold a failed attempt and then its
retry), the item's verdict is its first successful sample with index 0; an item
whose every index-0 attempt failed counts as an error.
"""

from __future__ import annotations

import csv
import io
import json
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Sequence

import numpy as np
from rich.table import Table

from evalkit.config import CI_METHODS  # noqa: F401 (named here too: its old home)
from evalkit.config import DEFAULT_CI, DEFAULT_CONFIDENCE, DEFAULT_SEED
from evalkit.core.records import LEGACY_SCORE, ReportTable
from evalkit.run.rundir import (ItemKey, Run, choice_answer, choice_verdict, counting_samples,  # noqa: F401
                          invocation_totals, item_samples, load_run, load_runs, score_dicts)
from evalkit.scoring.metrics import Metric, default_metric, shows_percent, with_options
from evalkit.core.stats import DEFAULT_RESAMPLES, bootstrap_proportion_ci, wilson_interval
from evalkit.core.store import SAMPLES
from evalkit.results.report_extras import dataset_extras, scorer_tables, section_providers

CIMethod = Literal["wilson", "bootstrap"]


# --- per-dataset numbers ------------------------------------------------------------------

def accuracy_ci(
    correct: int,
    n: int,
    method: CIMethod = DEFAULT_CI,
    confidence: float = DEFAULT_CONFIDENCE,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> tuple[float, float]:
    """Confidence interval of ``correct / n`` by Wilson score or percentile bootstrap."""
    if method == "wilson":
        return wilson_interval(correct, n, confidence)
    if method == "bootstrap":
        return bootstrap_proportion_ci(correct, n, confidence, n_resamples=n_resamples, seed=seed)
    raise ValueError(f"unknown CI method {method!r} (choose from {', '.join(CI_METHODS)})")


@dataclass
class ReportRow:
    """Numbers for one dataset (or one group of it, see ``group``) of one run.

    Rates and accuracy are fractions of ``n`` (items answered without error);
    latencies in seconds over those items; ``group`` is "field=value" or None.
    """

    run: str
    model: str
    prompt: str | None
    extractor: str
    dataset: str
    group: str | None
    n: int
    correct: int
    accuracy: float
    ci_low: float
    ci_high: float
    unparsed: int
    unparsed_rate: float
    truncated: int
    truncated_rate: float
    errors: int
    latency_p50: float | None
    latency_p95: float | None
    output_tokens_mean: float | None
    scores: dict[str, "ScoreCell"] = field(default_factory=dict)
    # k-sample and reasoning figures of a dataset row (evalkit.results.report_extras), flattened by to_dict.
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["scores"] = {name: c.to_dict() for name, c in self.scores.items()}
        d.update(d.pop("extra"))
        return d


@dataclass
class ScoreCell:
    """One named score over a row's items, aggregated by the metric recorded for it (``metric``, its
    spec): the value (``mean``, the table cell), its interval, the items that count, and ``errors``,
    the items the scorer could not score. ``kind`` is "binary" when the value is a share shown in
    percent, else "numeric"."""

    name: str
    kind: str
    n: int
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    errors: int = 0
    metric: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def score_cell(name: str, scores: Sequence[Mapping[str, Any] | Any], metric: Metric | None = None,
               ci: CIMethod = DEFAULT_CI, confidence: float = DEFAULT_CONFIDENCE, *,
               n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> ScoreCell:
    """The cell of score NAME over SCORES (stored score dicts, or bare values) aggregated by METRIC
    (default: ``default_metric`` of the values), with the report's interval options."""
    dicts = [s if isinstance(s, Mapping) else {"value": s} for s in scores]
    metric = metric or default_metric(d.get("value") for d in dicts)
    got = with_options(metric, ci_method=ci, confidence=confidence, n_resamples=n_resamples,
                       seed=seed).aggregate(dicts)
    lo, hi = got.ci if got.ci is not None else (None, None)
    extra = {k: v for k, v in got.extra.items() if k != "errors"}
    return ScoreCell(name, "binary" if shows_percent(metric) else "numeric", got.n, got.value, lo, hi,
                     int(got.extra.get("errors", len(dicts) - got.n)), metric.spec(), extra)


@dataclass
class RunThroughput:
    """Speed of one run. Rates need the manifest's wall time and are None without it."""

    run: str
    model: str
    requests: int
    errors: int
    wall_s: float | None
    requests_per_s: float | None
    output_tokens: int | None
    output_tokens_per_s: float | None
    latency_p50: float | None
    latency_p95: float | None
    judge: "JudgeTotals | None" = None  # a model judge's requests, apart from the answering model's
    retries: int | None = None  # summed over the run's invocations (None: a manifest that does not keep them)
    invocations: int | None = None  # how many times `evalkit run` ran in this directory (resumes included)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class JudgeTotals:
    """What a model judge cost a run: its requests (one per sample and rubric, however many axes),
    their tokens and the seconds they took, as the judge's scores recorded them."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    attempts: int = 0


def judge_totals(samples: Iterable[Mapping[str, Any]]) -> JudgeTotals | None:
    """The judge's totals over SAMPLES (None when no score came from a judge). The axes of one
    rubric share one request, so a request is counted once per distinct prompt and reply."""
    totals, seen_any = JudgeTotals(), False
    for s in samples:
        asks = {}
        for score in (s.get("scores") or {}).values():
            meta = score.get("meta") if isinstance(score, dict) else None
            if not meta or "judge_prompt" not in meta:
                continue
            asks[(meta.get("judge_prompt"), meta.get("judge_reply"))] = meta
        for meta in asks.values():
            seen_any = True
            tokens = meta.get("judge_tokens") or {}
            totals.requests += 1
            totals.prompt_tokens += int(tokens.get("prompt_tokens") or 0)
            totals.completion_tokens += int(tokens.get("completion_tokens") or 0)
            totals.seconds += float(meta.get("latency_s") or 0.0)
            totals.attempts += int(meta.get("attempts") or 1)
    return totals if seen_any else None


@dataclass
class Report:
    """Rows per (run, dataset[, group]) plus one throughput line per run."""

    rows: list[ReportRow]
    throughput: list[RunThroughput]
    ci_method: str = DEFAULT_CI
    confidence: float = DEFAULT_CONFIDENCE
    by: list[str] = field(default_factory=list)
    # Scorers' own report tables (evalkit.core.records.ReportTable), made of the rows; see evalkit.results.report_extras.
    sections: list[Any] = field(default_factory=list)

    @property
    def ci_label(self) -> str:
        return f"{round(self.confidence * 100):g}% CI ({self.ci_method})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "ci_method": self.ci_method,
            "confidence": self.confidence,
            "by": list(self.by),
            "rows": [r.to_dict() for r in self.rows],
            "runs": [t.to_dict() for t in self.throughput],
            "sections": [t.to_dict() for t in self.sections],
        }


def _percentiles(values: Sequence[float]) -> tuple[float | None, float | None]:
    if not values:
        return (None, None)
    p50, p95 = np.percentile(np.asarray(values, dtype=float), [50, 95])
    return (float(p50), float(p95))


def _latencies(samples: Iterable[Mapping[str, Any]]) -> list[float]:
    # A latency of 0 means "not measured" (a re-scored file, say), not an instant reply.
    return [float(s["latency_s"]) for s in samples
            if isinstance(s.get("latency_s"), (int, float)) and s["latency_s"] > 0]


def _completion_tokens(sample: Mapping[str, Any]) -> int | None:
    usage = sample.get("usage") or {}
    value = usage.get("completion_tokens")
    return int(value) if isinstance(value, (int, float)) else None


def group_value(sample: Mapping[str, Any], field_name: str) -> str:
    """A sample's value for a breakdown field: ``meta[field]``, else the sample's own field."""
    meta = sample.get("meta") or {}
    value = meta.get(field_name, sample.get(field_name))
    if value is None or value == "":
        return "(none)"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, Mapping):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _row(run: Run, label: str, dataset: str, group: str | None, items: list[dict[str, Any]],
         ci: CIMethod, confidence: float, n_resamples: int, seed: int) -> ReportRow:
    answered = [s for s in items if not s.get("error")]
    n = len(answered)
    correct = sum(1 for s in answered if choice_verdict(s))
    unparsed = sum(1 for s in answered if choice_answer(s)[0] is None)
    truncated = sum(1 for s in answered if s.get("truncated"))
    lo, hi = accuracy_ci(correct, n, ci, confidence, n_resamples=n_resamples, seed=seed)
    p50, p95 = _percentiles(_latencies(answered))
    tokens = [t for t in (_completion_tokens(s) for s in answered) if t is not None]
    cells = {name: score_cell(name, scores, run.metric(name, (d.get("value") for d in scores)), ci, confidence,
                              n_resamples=n_resamples, seed=seed)
             for name, scores in score_dicts(answered).items()}
    return ReportRow(
        run=label,
        model=run.model,
        prompt=run.prompt,
        extractor=run.extractor,
        dataset=dataset,
        group=group,
        n=n,
        correct=correct,
        accuracy=correct / n if n else 0.0,
        ci_low=lo,
        ci_high=hi,
        unparsed=unparsed,
        unparsed_rate=unparsed / n if n else 0.0,
        truncated=truncated,
        truncated_rate=truncated / n if n else 0.0,
        errors=len(items) - n,
        latency_p50=p50,
        latency_p95=p95,
        output_tokens_mean=sum(tokens) / len(tokens) if tokens else None,
        scores=cells,
    )


def run_throughput(run: Run, label: str | None = None) -> RunThroughput:
    """Requests/s and output tokens/s over the run's wall time; latency percentiles.

    Where the manifest keeps each invocation of the run (a first run and its resumes), the
    requests (retries included), retries and wall time are their sums. An earlier manifest
    has only its last invocation's time: then every line of the samples file counts as one
    request (failed ones and extra generations included) over that time.
    """
    errors = sum(1 for s in run.samples if s.get("error"))
    ok = [s for s in run.samples if not s.get("error")]
    tokens_each = [t for t in (_completion_tokens(s) for s in ok) if t is not None]
    tokens = sum(tokens_each) if tokens_each else None
    totals = invocation_totals(run.manifest)
    if totals is not None and totals["requests"] is not None:
        requests, wall = totals["requests"], totals["wall_s"] or None
    else:
        requests, wall = len(run.samples), run.wall_s
    p50, p95 = _percentiles(_latencies(ok))
    return RunThroughput(
        run=label or run.name,
        model=run.model,
        requests=requests,
        errors=errors,
        wall_s=wall,
        requests_per_s=requests / wall if wall else None,
        output_tokens=tokens,
        output_tokens_per_s=tokens / wall if wall and tokens is not None else None,
        latency_p50=p50,
        latency_p95=p95,
        judge=judge_totals(counting_samples(run.samples)),
        retries=totals["retries"] if totals else None,
        invocations=totals["invocations"] if totals else None,
    )


def run_labels(runs: Sequence[Run]) -> list[str]:
    """Short, distinct display names: the run's name, with its parent folder where names repeat."""
    names = [r.name for r in runs]
    labels = list(names)
    for i, r in enumerate(runs):
        if names.count(r.name) > 1:
            path = r.path.resolve()
            run_dir = path if path.is_dir() else path.parent
            # A run directory is named by its task folder; a loose file by its folder.
            owner = run_dir.parent if (path.is_dir() or path.name == SAMPLES) else run_dir
            labels[i] = f"{owner.name}/{r.name}"
    return labels


def build_report(
    runs: Iterable["str | Path | Run"],
    *,
    by: Sequence[str] = (),
    ci: CIMethod = DEFAULT_CI,
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    ks: Sequence[int] = (),
) -> Report:
    """Per-dataset rows for each run (and per-group rows for each ``by`` field).

    Dataset rows also carry reasoning figures and, for multi-sample runs, pass@k,
    maj@k and avg@k (k = 1, K and each of KS up to K), and the figures of scorers that bring a
    report section, whose tables are the report's ``sections``; see evalkit.results.report_extras.
    """
    if ci not in CI_METHODS:
        raise ValueError(f"unknown CI method {ci!r} (choose from {', '.join(CI_METHODS)})")
    loaded = load_runs(runs)
    labels = run_labels(loaded)
    providers = section_providers(loaded)
    rows: list[ReportRow] = []
    for run, label in zip(loaded, labels):
        per_dataset: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        for (dataset, _), s in run.items().items():
            per_dataset.setdefault(dataset, []).append(s)
        for dataset, items in per_dataset.items():
            rows.append(_row(run, label, dataset, None, items, ci, confidence, n_resamples, seed))
            rows[-1].extra.update(dataset_extras(items, ks=ks, confidence=confidence, n_resamples=n_resamples,
                                                 seed=seed, providers=providers))
            for field_name in by:
                groups: dict[str, list[dict[str, Any]]] = {}
                for s in items:
                    groups.setdefault(group_value(s, field_name), []).append(s)
                if set(groups) == {"(none)"}:
                    continue  # the field does not exist in this dataset
                for value in sorted(groups):
                    rows.append(_row(run, label, dataset, f"{field_name}={value}", groups[value],
                                     ci, confidence, n_resamples, seed))
    throughput = [run_throughput(r, label) for r, label in zip(loaded, labels)]
    return Report(rows=rows, throughput=throughput, ci_method=ci, confidence=confidence, by=list(by),
                  sections=scorer_tables(rows, providers))


# --- formatting helpers ------------------------------------------------------------------

def pct(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{100 * x:.{digits}f}"


def fmt_ci(lo: float | None, hi: float | None, digits: int = 1) -> str:
    if lo is None or hi is None:
        return "-"
    return f"[{100 * lo:.{digits}f}, {100 * hi:.{digits}f}]"


def fmt_num(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def accuracy_cells(r: ReportRow) -> list[str]:
    """Display cells of one accuracy row (group rows indented under their dataset); a dataset not
    scored as multiple choice (long-form answers) shows "-" for accuracy."""
    label = r.dataset if r.group is None else f"  {r.group}"
    choice = LEGACY_SCORE in r.scores
    return [
        r.run, label, str(r.n), pct(r.accuracy) if choice else "-", fmt_ci(r.ci_low, r.ci_high) if choice else "-",
        pct(r.unparsed_rate) if choice else "-", pct(r.truncated_rate), str(r.errors),
        fmt_num(r.latency_p50), fmt_num(r.latency_p95),
    ]


def score_header(report: Report) -> list[str]:
    """Column names of the named-scores table."""
    return ["run", "dataset", "score", "metric", "n", "value", "95% CI" if report.confidence == 0.95 else "CI",
            "not scored"]


def metric_label(spec: Mapping[str, Any]) -> str:
    """A metric spec as a short label: ``mean``, ``proportion (wilson)``, ``clipped_mean [0, 1]``."""
    name = str(spec.get("name", "?")).rpartition(":")[2]
    params = [f"{v:g}" if isinstance(v, (int, float)) else str(v) for k, v in spec.items() if k != "name"]
    return f"{name} [{', '.join(params)}]" if params else name


def score_rows(report: Report) -> list[list[str]]:
    """One row per (report row, named score) other than the multiple-choice ``correct`` (the accuracy
    table shows that one): binary scores in percent, others as they are."""
    out = []
    for r in report.rows:
        for name, c in r.scores.items():
            if name == LEGACY_SCORE:
                continue
            label = r.dataset if r.group is None else f"  {r.group}"
            if c.kind == "binary":  # a share (the metric shows percent)
                mean, ci = pct(c.mean), fmt_ci(c.ci_low, c.ci_high)
            else:
                mean = fmt_num(c.mean, 3)
                ci = "-" if c.ci_low is None else f"[{c.ci_low:.3f}, {c.ci_high:.3f}]"
            out.append([r.run, label, name, metric_label(c.metric), str(c.n), mean, ci, str(c.errors)])
    return out


def accuracy_header(report: Report) -> list[str]:
    """Column names of the accuracy table."""
    return ["run", "dataset", "n", "acc %", report.ci_label, "unparsed %", "truncated %", "errors",
            "p50 s", "p95 s"]


def _setup_cells(r: ReportRow) -> list[str]:
    return [r.model, r.prompt or "-", r.extractor]


def throughput_header() -> list[str]:
    """Column names of the throughput table."""
    return ["run", "model", "requests", "errors", "wall s", "req/s", "out tok/s", "p50 s", "p95 s", "retries",
            "invocations"]


def throughput_cells(t: RunThroughput) -> list[str]:
    """Display cells of one run's throughput ("-" where unknown)."""
    return [t.run, t.model, str(t.requests), str(t.errors), fmt_num(t.wall_s, 1),
            fmt_num(t.requests_per_s), fmt_num(t.output_tokens_per_s, 1),
            fmt_num(t.latency_p50), fmt_num(t.latency_p95), _count(t.retries), _count(t.invocations)]


def _count(n: int | None) -> str:
    return "-" if n is None else str(n)


def run_setups(report: Report) -> list[list[str]]:
    """[run, model, prompt, extractor] per run, in report order."""
    seen: OrderedDict[str, list[str]] = OrderedDict()
    for r in report.rows:
        seen.setdefault(r.run, [r.run, *_setup_cells(r)])
    return list(seen.values())


# --- k-sample and reasoning figures (report_extras.dataset_extras), as cells ---------------------

def _tok(x: Any) -> str:
    return "-" if x is None else f"{x:.0f}"


def _ci_pair(pair: Any) -> str:
    return "-" if not pair else f"[{100 * pair[0]:.1f}, {100 * pair[1]:.1f}]"


def k_sample_ks(report: Report) -> list[int]:
    """Every k that has a pass@k column in some row, ascending."""
    ks = {int(key[5:]) for r in report.rows for key in r.extra if key.startswith("pass@") and key[5:].isdigit()}
    return sorted(ks)


def k_sample_header(report: Report) -> list[str]:
    cols = ["run", "dataset", "n", "K", "maj@K %", "maj@K CI"]
    cols += [f"pass@{k} %" for k in k_sample_ks(report)]
    return cols + ["avg@K %", "avg@K sd", "avg@K CI"]


def k_sample_cells(r: ReportRow, ks: Sequence[int]) -> list[str]:
    e, k = r.extra, r.extra["k_samples"]
    cells = [r.run, r.dataset, str(e["k_items"]), str(k), pct(e.get(f"maj@{k}")), _ci_pair(e.get(f"maj@{k}_ci"))]
    cells += [pct(e.get(f"pass@{j}")) for j in ks]
    return cells + [pct(e.get(f"avg@{k}")), pct(e.get(f"avg@{k}_std")), _ci_pair(e.get(f"avg@{k}_ci"))]


def reasoning_header() -> list[str]:
    return ["run", "dataset", "thinking %", "reason tok mean", "p50", "p95", "answer tok mean", "p50", "p95",
            "source", "trunc. in thinking", "other unparsed"]


def reasoning_cells(r: ReportRow) -> list[str]:
    e = r.extra
    return [r.run, r.dataset, pct(e.get("thinking")),
            _tok(e.get("reasoning_tokens_mean")), _tok(e.get("reasoning_tokens_p50")), _tok(e.get("reasoning_tokens_p95")),
            _tok(e.get("answer_tokens_mean")), _tok(e.get("answer_tokens_p50")), _tok(e.get("answer_tokens_p95")),
            str(e.get("reasoning_tokens_source", "-")), str(e.get("truncated_in_thinking", 0)),
            str(e.get("unparsed_other", 0))]


def _k_rows(report: Report) -> list[ReportRow]:
    return [r for r in report.rows if r.group is None and "k_samples" in r.extra]


def _reasoning_rows(report: Report) -> list[ReportRow]:
    return [r for r in report.rows if r.group is None and (r.extra.get("thinking") or 0) > 0]


# --- rich ------------------------------------------------------------------------------------

def report_tables(report: Report) -> list[Table]:
    """Rich tables: accuracy per dataset, then the runs' setup and throughput."""
    acc = Table(title=f"Accuracy with {report.ci_label}", title_justify="left")
    for i, h in enumerate(accuracy_header(report)):
        acc.add_column(h, justify="left" if i < 2 else "right", no_wrap=i == 4)
    previous = None
    for r in report.rows:
        cells = accuracy_cells(r)
        if r.run == previous:
            cells[0] = ""
        elif previous is not None:
            acc.add_section()
        previous = r.run
        acc.add_row(*cells, style="dim" if r.group else None)
    tables = [acc]
    extra = score_rows(report)
    if extra:
        scores = Table(title=f"Scores, each by its metric with {report.ci_label} for proportions, bootstrap otherwise",
                       title_justify="left")
        for i, h in enumerate(score_header(report)):
            scores.add_column(h, justify="left" if i < 4 else "right", no_wrap=i == 6)
        for row in extra:
            scores.add_row(*row)
        tables.append(scores)
    tables += extra_tables(report)
    speed = Table(title="Runs: setup and throughput", title_justify="left")
    for i, h in enumerate(["run", "model", "prompt", "extractor"] + throughput_header()[2:]):
        speed.add_column(h, justify="left" if i < 4 else "right")
    setups = {s[0]: s for s in run_setups(report)}
    for t in report.throughput:
        setup = setups.get(t.run, [t.run, t.model, "-", "-"])
        speed.add_row(*setup, *throughput_cells(t)[2:])
    tables.append(speed)
    judged = judge_rows(report)
    if judged:
        judge = Table(title="Judge (its requests, apart from the answering model's)", title_justify="left")
        for i, h in enumerate(JUDGE_HEADER):
            judge.add_column(h, justify="left" if i == 0 else "right")
        for row in judged:
            judge.add_row(*row)
        tables.append(judge)
    return tables


def section_rich_table(section: ReportTable) -> Table:
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


def extra_tables(report: Report) -> list[Table]:
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


def render_summary_table(samples_or_run: "str | Path | Run | Iterable[Mapping[str, Any]]",
                         *, title: str | None = None, confidence: float = DEFAULT_CONFIDENCE) -> Table:
    """End-of-run table: dataset, n, accuracy with Wilson CI, unparsed, truncated, errors.

    Takes a RUN (directory or samples file), a loaded Run, or the sample dicts
    themselves (as the runner holds them in memory).
    """
    if isinstance(samples_or_run, (str, Path, Run)):
        run = load_run(samples_or_run)
    else:
        run = Run(path=Path("."), name="run", samples=[dict(s) for s in samples_or_run])
    report = build_report([run], confidence=confidence)
    table = Table(title=title, title_justify="left")
    for i, h in enumerate(["dataset", "n", "acc %", report.ci_label, "unparsed", "truncated", "errors"]):
        table.add_column(h, justify="left" if i == 0 else "right", no_wrap=i == 3)
    for r in report.rows:
        table.add_row(r.dataset, str(r.n), pct(r.accuracy), fmt_ci(r.ci_low, r.ci_high),
                      str(r.unparsed), str(r.truncated), str(r.errors))
    return table


# --- markdown / csv / json ---------------------------------------------------------------------

def _md_escape(cell: str) -> str:
    return cell.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]], right_from: int = 1) -> str:
    """A GitHub-flavoured markdown table; columns from ``right_from`` on are right-aligned."""
    lines = ["| " + " | ".join(_md_escape(h) for h in header) + " |",
             "|" + "|".join("---:" if i >= right_from else "---" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def section_markdown(section: ReportTable) -> list[str]:
    """A scorer's report table as markdown lines: a heading, the table, its notes."""
    lines = [f"## {section.title}", "", markdown_table(section.header, section.rows, section.label_columns), ""]
    if section.notes:
        lines += [*(f"- {note}" for note in section.notes), ""]
    return lines


def extra_markdown(report: Report) -> list[str]:
    """Markdown sections for the same tables (lines to join), empty when they do not apply."""
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


def report_markdown(report: Report) -> str:
    parts = [f"## Accuracy with {report.ci_label}", "",
             markdown_table(accuracy_header(report), (accuracy_cells(r) for r in report.rows), 2), ""]
    extra = score_rows(report)
    if extra:
        parts += [f"## Scores, each by its metric with {report.ci_label} for proportions, bootstrap otherwise", "",
                  markdown_table(score_header(report), extra, 4), ""]
    parts += extra_markdown(report)
    parts += ["## Runs: setup and throughput", ""]
    setups = {s[0]: s for s in run_setups(report)}
    header = ["run", "model", "prompt", "extractor"] + throughput_header()[2:]
    parts.append(markdown_table(
        header,
        ([*setups.get(t.run, [t.run, t.model, "-", "-"]), *throughput_cells(t)[2:]] for t in report.throughput),
        4,
    ))
    judged = judge_rows(report)
    if judged:
        parts += ["", "## Judge (its requests, apart from the answering model's)", "",
                  markdown_table(JUDGE_HEADER, judged, 1)]
    return "\n".join(parts) + "\n"


JUDGE_HEADER = ["run", "judge requests", "attempts", "prompt tokens", "completion tokens", "judge s"]


def judge_rows(report: Report) -> list[list[str]]:
    """One row per run that a model judge scored."""
    return [[t.run, str(t.judge.requests), str(t.judge.attempts), str(t.judge.prompt_tokens),
             str(t.judge.completion_tokens), fmt_num(t.judge.seconds, 1)]
            for t in report.throughput if t.judge is not None]


def report_csv(report: Report, *, sections: bool = True) -> str:
    """One CSV row per report row; the run's throughput is repeated on each of its rows. With SECTIONS,
    each of the scorers' sections follows as a block after a blank line (``section_csv``), so the
    per-row table is the lines up to the first blank one."""
    speed = {t.run: t for t in report.throughput}
    out = io.StringIO()
    fields = [f for f in ReportRow.__dataclass_fields__ if f not in ("scores", "extra")]
    names = list(OrderedDict.fromkeys(n for r in report.rows for n in r.scores if n != LEGACY_SCORE))
    score_fields = [f"{n}_{k}" for n in names for k in ("n", "mean", "ci_low", "ci_high")]
    run_fields = ["requests", "wall_s", "requests_per_s", "output_tokens_per_s", "retries", "invocations"]
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(fields + score_fields + ["ci_method", "confidence"] + [f"run_{f}" for f in run_fields])
    for r in report.rows:
        d = r.to_dict()
        t = speed[r.run].to_dict()
        cells = []
        for n in names:
            c = d["scores"].get(n) or {}
            cells += [_csv_cell(c.get(k)) for k in ("n", "mean", "ci_low", "ci_high")]
        writer.writerow([_csv_cell(d[f]) for f in fields] + cells + [report.ci_method, report.confidence]
                        + [_csv_cell(t[f]) for f in run_fields])
    return out.getvalue() + ("".join("\n" + section_csv(t) for t in report.sections) if sections else "")


def section_csv(section: Any) -> str:
    """A report section (``records.ReportTable``) as a CSV block: its title alone on a line, its header,
    its rows, then each note on a line of its own as ``note: ...``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([section.title])
    writer.writerow(section.header)
    writer.writerows(section.rows)
    writer.writerows([f"note: {note}"] for note in section.notes)
    return out.getvalue()


def _csv_cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return v


def report_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"
