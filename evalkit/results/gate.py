"""The regression gate: is a candidate checkpoint worse than its baseline?

The two runs are paired item by item. Per dataset: both accuracies, the
difference with a paired bootstrap interval, and an exact McNemar p-value on
the discordant items; the p-values are Holm-adjusted over the datasets. A
dataset fails when its drop exceeds ``max_drop`` points AND its adjusted p is
at most ``alpha``: a large drop that could be noise does not fail, nor does a
real but negligible one.

Any named score can be gated (``score``, default ``correct``, the multiple-choice
verdict), by the metric the runs record for it (``rundir.Run.metric``). A score whose
metric is a proportion (true/false) is compared as above; any other by a paired
bootstrap of the per-item differences, whose two-sided bootstrap p-value takes
McNemar's place; ``max_drop`` is then in hundredths of the score's unit. Each
dataset's verdict also gives both runs' figures by the metric (``baseline_value``,
``candidate_value``: for a rubric-item grader, the clipped mean); runs that record different
metrics for the score cannot be compared.

Exit codes (``GateResult.exit_code``): 0 pass, 1 regression, 2 the runs cannot
be compared (different items, prompts or extractors, or nothing to pair).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from rich.markup import escape
from rich.table import Table

import numpy as np

from evalkit.config import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, DEFAULT_SEED, GateSettings, field_default
from evalkit.results.report import pct
from evalkit.core.records import LEGACY_SCORE
from evalkit.run.rundir import (Run, choice_answer, empty_run_reason, load_run, partial_note,
                          sample_score_dicts, sample_scores)
from evalkit.scoring.metrics import Metric
from evalkit.core.stats import holm_adjust, mcnemar_exact, paired_bootstrap_diff, paired_bootstrap_mean_diff

if TYPE_CHECKING:
    from evalkit.results.overlap_split import OverlapSet

from evalkit.config import EXIT_MISMATCH, EXIT_PASS, EXIT_REGRESSION  # noqa: E402,F401 (defined with the config)


@dataclass
class Flip:
    """An item whose verdict changed between the runs."""

    dataset: str
    id: str
    gold: str | None
    baseline_pred: str | None
    candidate_pred: str | None
    candidate_method: str | None


@dataclass
class DatasetVerdict:
    """The comparison on one dataset. Accuracies and differences are fractions."""

    dataset: str
    n: int
    baseline_correct: int
    candidate_correct: int
    diff: float
    diff_low: float
    diff_high: float
    lost: int
    gained: int
    p_value: float
    p_holm: float = 1.0
    status: str = ""
    failed: bool = False
    excluded_errors: int = 0
    lost_items: list[Flip] = field(default_factory=list)
    gained_ids: list[str] = field(default_factory=list)
    metric: dict[str, Any] = field(default_factory=dict)  # the score's metric spec
    baseline_value: float | None = None  # each run's figure by that metric, over the paired items
    candidate_value: float | None = None

    @property
    def baseline_accuracy(self) -> float:
        return self.baseline_correct / self.n if self.n else 0.0

    @property
    def candidate_accuracy(self) -> float:
        return self.candidate_correct / self.n if self.n else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["baseline_accuracy"] = self.baseline_accuracy
        d["candidate_accuracy"] = self.candidate_accuracy
        d["diff_points"] = 100 * self.diff
        return d


@dataclass
class GateResult:
    """The gate's verdict over all datasets, and why the runs may not be comparable."""

    baseline: str
    candidate: str
    max_drop: float
    alpha: float
    confidence: float
    allow_mismatch: bool
    datasets: list[DatasetVerdict]
    mismatches: list[str]
    warnings: list[str] = field(default_factory=list)
    score: str = LEGACY_SCORE

    @property
    def blocked(self) -> bool:
        """True when the runs cannot be compared: a mismatch without override, or nothing paired."""
        return (bool(self.mismatches) and not self.allow_mismatch) or not self.datasets

    @property
    def failed_datasets(self) -> list[str]:
        return [d.dataset for d in self.datasets if d.failed]

    @property
    def exit_code(self) -> int:
        if self.blocked:
            return EXIT_MISMATCH
        return EXIT_REGRESSION if self.failed_datasets else EXIT_PASS

    def write_reports(self, *, json_out: "str | Path | None" = None,
                      junit_out: "str | Path | None" = None) -> list[Path]:
        """Write the verdict as JSON to JSON_OUT and as JUnit XML to JUNIT_OUT (their folders made as
        needed); JSON_OUT "-" (stdout) is left to the caller. The paths written, in that order."""
        written = []
        for target, text in ((json_out, gate_json), (junit_out, junit_xml)):
            if target is None or str(target) == "-":
                continue
            path = Path(target)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text(self), encoding="utf-8")
            written.append(path)
        return written

    @property
    def verdict(self) -> str:
        if self.blocked:
            return "NOT COMPARABLE"
        return "FAIL" if self.failed_datasets else "PASS"

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "baseline": self.baseline,
            "candidate": self.candidate,
            "max_drop_points": self.max_drop,
            "alpha": self.alpha,
            "confidence": self.confidence,
            "allow_mismatch": self.allow_mismatch,
            "mismatches": list(self.mismatches),
            "warnings": list(self.warnings),
            "failed_datasets": self.failed_datasets,
            "datasets": [d.to_dict() for d in self.datasets],
        }


def _examples(keys: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(sorted(keys)[:limit])
    return shown + (", ..." if len(keys) > limit else "")


def _setup_mismatches(base: Run, cand: Run) -> list[str]:
    reasons = []
    if base.prompt and cand.prompt and base.prompt != cand.prompt:
        reasons.append(f"prompts differ: baseline {base.prompt!r}, candidate {cand.prompt!r}")
    elif base.prompt_sha256 and cand.prompt_sha256 and base.prompt_sha256 != cand.prompt_sha256:
        reasons.append("prompt templates differ (sha256) though their names agree")
    if base.extractor != cand.extractor:
        reasons.append(f"extractors differ: baseline {base.extractor!r}, candidate {cand.extractor!r}")
    return reasons


def scored_pair(baseline_sample: dict[str, Any], candidate_sample: dict[str, Any], score: str) -> bool:
    """Whether an item's two samples are paired on SCORE: neither request failed and both have the score."""
    return all(not s.get("error") and sample_scores(s).get(score) is not None
               for s in (baseline_sample, candidate_sample))


def compare_runs(
    baseline: "str | Path | Run",
    candidate: "str | Path | Run",
    *,
    max_drop: float = field_default(GateSettings, "max_drop"),
    alpha: float = field_default(GateSettings, "alpha"),
    confidence: float = DEFAULT_CONFIDENCE,
    allow_mismatch: bool = field_default(GateSettings, "allow_mismatch"),
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    score: str = field_default(GateSettings, "score"),
    clean_only: "OverlapSet | None" = None,
) -> GateResult:
    """Pair two runs item by item and decide, per dataset, whether the candidate regressed on SCORE.

    With CLEAN_ONLY (an ``evalkit.results.overlap_split.OverlapSet``), only the items it marks
    clean are compared; items it flags or does not cover are left out, with a warning. An item
    whose text is not the one it flagged raises StaleOverlapError (a ValueError), or with
    ``stale="ignore"`` is left out too (``overlap_split.check_overlap``).

    ``max_drop`` is in accuracy points (1.0 = one percentage point; for a numeric score,
    0.01 of its unit). With ``allow_mismatch`` the comparison goes ahead on the items both
    runs share. Items either run could not score (a judge error) are left out, with a warning.
    """
    base, cand = load_run(baseline), load_run(candidate)
    base_items, cand_items = base.items(), cand.items()
    mismatches = _setup_mismatches(base, cand)
    mismatches += [f"{side}: {why}" for side, run in (("baseline", base), ("candidate", cand))
                   if (why := empty_run_reason(run)) is not None]
    warnings: list[str] = [note for note in (partial_note(base), partial_note(cand)) if note]
    if clean_only is not None:
        base_items = _clean_items(base_items, clean_only, warnings, "the baseline")
        cand_items = _clean_items(cand_items, clean_only, warnings, "the candidate", count=False)

    datasets: OrderedDict[str, None] = OrderedDict()
    for dataset, _ in list(base_items) + list(cand_items):
        datasets[dataset] = None

    verdicts: list[DatasetVerdict] = []
    for dataset in datasets:
        paired = _paired_items(dataset, base_items, cand_items, score, mismatches, warnings)
        if paired is None:
            continue
        pairs, excluded = paired
        verdicts.append(_dataset_verdict(dataset, base, cand, pairs, excluded, score, mismatches,
                                         confidence=confidence, n_resamples=n_resamples, seed=seed))

    for v, adjusted in zip(verdicts, holm_adjust([v.p_value for v in verdicts])):
        v.p_holm = adjusted
        v.status, v.failed = _status(v, max_drop, alpha)

    return GateResult(
        baseline=str(baseline if not isinstance(baseline, Run) else baseline.path),
        candidate=str(candidate if not isinstance(candidate, Run) else candidate.path),
        max_drop=max_drop, alpha=alpha, confidence=confidence, allow_mismatch=allow_mismatch,
        datasets=verdicts, mismatches=mismatches, warnings=warnings, score=score,
    )


def _paired_items(dataset: str, base_items: "OrderedDict", cand_items: "OrderedDict", score: str,
                  mismatches: list[str], warnings: list[str]) -> tuple[list[tuple[dict, dict]], int] | None:
    """DATASET's (baseline, candidate) samples paired by item id, both scored on SCORE, and how many
    shared items were left out (a failed request, the score missing); None when there is nothing to
    compare. What makes the runs differ goes into MISMATCHES, what was left out into WARNINGS."""
    b_ids = {i for d, i in base_items if d == dataset}
    c_ids = {i for d, i in cand_items if d == dataset}
    if not b_ids or not c_ids:
        side = "baseline" if b_ids else "candidate"
        mismatches.append(f"{dataset}: only in the {side}")
        return None
    if b_ids != c_ids:
        mismatches.append(_different_items(dataset, b_ids, c_ids))
    shared = [i for d, i in base_items if d == dataset and i in c_ids]
    pairs, excluded, prompt_diffs = [], 0, []
    for item_id in shared:
        b, c = base_items[(dataset, item_id)], cand_items[(dataset, item_id)]
        if not scored_pair(b, c, score):
            excluded += 1
            continue
        if b.get("prompt") is not None and c.get("prompt") is not None and b["prompt"] != c["prompt"]:
            prompt_diffs.append(item_id)
        pairs.append((b, c))
    if prompt_diffs:
        mismatches.append(f"{dataset}: the prompt sent differs on {len(prompt_diffs)} of {len(pairs)} "
                          f"items, e.g. {_examples(prompt_diffs)}")
    if excluded:
        warnings.append(f"{dataset}: {excluded} items left out because a request failed or {score!r} is "
                        "missing in either run")
    if not pairs:
        mismatches.append(f"{dataset}: no item answered and scored ({score!r}) in both runs")
        return None
    return pairs, excluded


def _different_items(dataset: str, b_ids: set[str], c_ids: set[str]) -> str:
    """The mismatch of a dataset whose items differ between the runs."""
    only_b, only_c = sorted(b_ids - c_ids), sorted(c_ids - b_ids)
    msg = f"{dataset}: different items ({len(b_ids & c_ids)} shared"
    if only_b:
        msg += f"; {len(only_b)} only in the baseline, e.g. {_examples(only_b)}"
    if only_c:
        msg += f"; {len(only_c)} only in the candidate, e.g. {_examples(only_c)}"
    return msg + ")"


def _dataset_verdict(dataset: str, base: Run, cand: Run, pairs: list[tuple[dict, dict]], excluded: int, score: str,
                     mismatches: list[str], *, confidence: float, n_resamples: int, seed: int) -> DatasetVerdict:
    """The verdict on one dataset's PAIRS, by the score's metric: paired statistics for a proportion,
    a paired bootstrap of differences for a mean (and of the metric's own figures for another function
    of the mean); each run's figure by the metric. Runs recording different metrics add a mismatch."""
    metric, mismatch = _metric_of(base, cand, score, pairs)
    if mismatch:
        mismatches.append(f"{dataset}: {mismatch}")
    if metric.name == "proportion":
        verdict = _binary_verdict(dataset, pairs, score, excluded, confidence, n_resamples, seed)
    else:
        verdict = _numeric_verdict(dataset, pairs, score, excluded, confidence, n_resamples, seed)
        if metric.name != "mean" and hasattr(metric, "value_of_mean"):
            _compare_by_metric(verdict, pairs, score, metric, confidence, n_resamples, seed)
    verdict.metric = metric.spec()
    verdict.baseline_value = metric.aggregate([sample_score_dicts(b)[score] for b, _ in pairs]).value
    verdict.candidate_value = metric.aggregate([sample_score_dicts(c)[score] for _, c in pairs]).value
    return verdict


def _clean_items(items: "OrderedDict", overlap: "OverlapSet", warnings: list[str], whose: str,
                 count: bool = True) -> "OrderedDict":
    """ITEMS less those OVERLAP flags or does not cover (evalkit.results.overlap_split.split_by_overlap), once
    checked against it (``check_overlap``: StaleOverlapError for an item whose text changed, or it
    is left out); what the check says, and with COUNT what was left out, go into WARNINGS."""
    from evalkit.results.overlap_split import check_overlap, split_by_overlap

    overlap, notes = check_overlap(overlap, items, whose)
    warnings.extend(n for n in notes if n not in warnings)
    hit, clean, missing = split_by_overlap(items, overlap)
    if count:
        warnings.append(f"--clean-only ({overlap.rule} rule): {len(hit)} overlapping items left out"
                        + (f", and {len(missing)} the overlap file does not cover" if missing else ""))
    return OrderedDict(clean)


def _answer(sample: Mapping[str, Any], score: str) -> tuple[str | None, str | None]:
    """(answer, rule) of SCORE in SAMPLE: the letter and extraction rule for the multiple-choice verdict."""
    if score == LEGACY_SCORE:
        return choice_answer(sample)
    d = sample_score_dicts(sample).get(score) or {}
    return d.get("answer"), (d.get("meta") or {}).get("method")


def _metric_of(base: Run, cand: Run, score: str, pairs: list) -> tuple[Metric, str | None]:
    """The metric SCORE is compared by (the baseline's, as recorded), and a mismatch when the candidate
    records another one for it."""
    b = base.metric(score, (sample_scores(x)[score] for x, _ in pairs))
    c = cand.metric(score, (sample_scores(y)[score] for _, y in pairs))
    if b.spec() != c.spec():
        return b, f"{score!r} is aggregated by {b.spec()} in the baseline but {c.spec()} in the candidate"
    return b, None


def _binary_verdict(dataset: str, pairs: list, score: str, excluded: int, confidence: float,
                    n_resamples: int, seed: int) -> DatasetVerdict:
    """A true/false score (a proportion) compared by its paired statistics: a paired bootstrap of the
    difference and an exact McNemar test on the items whose verdict changed."""
    bv = [bool(sample_scores(b)[score]) for b, _ in pairs]
    cv = [bool(sample_scores(c)[score]) for _, c in pairs]
    pd = paired_bootstrap_diff(bv, cv, confidence, n_resamples=n_resamples, seed=seed)
    lost_items = [Flip(dataset, str(b["id"]), b.get("answer_idx"), _answer(b, score)[0], *_answer(c, score))
                  for (b, c), x, y in zip(pairs, bv, cv) if x and not y]
    gained_ids = [str(b["id"]) for (b, _), x, y in zip(pairs, bv, cv) if y and not x]
    return DatasetVerdict(
        dataset=dataset, n=pd.n, baseline_correct=sum(bv), candidate_correct=sum(cv),
        diff=pd.diff, diff_low=pd.lo, diff_high=pd.hi, lost=pd.lost, gained=pd.gained,
        p_value=mcnemar_exact(pd.lost, pd.gained), excluded_errors=excluded,
        lost_items=lost_items, gained_ids=gained_ids)


def _numeric_verdict(dataset: str, pairs: list, score: str, excluded: int, confidence: float,
                     n_resamples: int, seed: int) -> DatasetVerdict:
    """A named score compared by a paired bootstrap of per-item differences (a binary named score too,
    as 0/1). ``baseline_correct`` / ``candidate_correct`` hold the score sums."""
    bv = [float(sample_scores(b)[score]) for b, _ in pairs]
    cv = [float(sample_scores(c)[score]) for _, c in pairs]
    pd = paired_bootstrap_mean_diff(bv, cv, confidence, n_resamples=n_resamples, seed=seed)
    d = np.asarray(cv) - np.asarray(bv)
    # Two-sided bootstrap p-value: how often the resampled mean difference falls on the far side of 0.
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(n_resamples, len(d)))].mean(axis=1) if len(d) else np.zeros(1)
    p = 1.0 if not d.any() else min(1.0, 2 * min(float((means <= 0).mean()), float((means >= 0).mean())))
    lost = [Flip(dataset, str(b["id"]), b.get("answer_idx"), f"{x:g}", f"{y:g}", None)
            for (b, _), x, y in zip(pairs, bv, cv) if y < x]
    gained = [str(b["id"]) for (b, _), x, y in zip(pairs, bv, cv) if y > x]
    return DatasetVerdict(dataset=dataset, n=pd.n, baseline_correct=round(sum(bv), 6),
                          candidate_correct=round(sum(cv), 6), diff=pd.diff, diff_low=pd.lo, diff_high=pd.hi,
                          lost=pd.lost, gained=pd.gained, p_value=p, excluded_errors=excluded,
                          lost_items=lost, gained_ids=gained)


def _compare_by_metric(verdict: DatasetVerdict, pairs: list, score: str, metric: Metric, confidence: float,
                       n_resamples: int, seed: int) -> None:
    """For a metric that is a function of the mean but not the mean itself (a clipped mean): the
    difference, its interval and p-value are those of the metric's figures, with the items resampled
    in pairs (a clipped mean: clip(mean of candidate) - clip(mean of baseline), not the mean difference)."""
    figure = np.frompyfunc(metric.value_of_mean, 1, 1)  # type: ignore[attr-defined]
    b = np.asarray([float(sample_scores(x)[score]) for x, _ in pairs])
    c = np.asarray([float(sample_scores(y)[score]) for _, y in pairs])
    rng = np.random.default_rng(seed)
    draws = np.empty(n_resamples)
    chunk = max(1, 2_000_000 // len(b))
    for start in range(0, n_resamples, chunk):
        idx = rng.integers(0, len(b), size=(min(n_resamples, start + chunk) - start, len(b)))
        draws[start:start + len(idx)] = (figure(c[idx].mean(axis=1)) - figure(b[idx].mean(axis=1))).astype(float)
    tail = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(draws, [tail, 1.0 - tail])
    verdict.diff = float(metric.value_of_mean(c.mean()) - metric.value_of_mean(b.mean()))  # type: ignore[attr-defined]
    verdict.diff_low, verdict.diff_high = float(lo), float(hi)
    verdict.p_value = 1.0 if not draws.any() else min(1.0, 2 * min(float((draws <= 0).mean()),
                                                                   float((draws >= 0).mean())))


def _status(v: DatasetVerdict, max_drop: float, alpha: float) -> tuple[str, bool]:
    drop_points = -100 * v.diff
    significant = v.p_holm <= alpha
    if v.lost == 0 and v.gained == 0:
        return "no change", False
    if v.diff < 0 and significant:
        if drop_points > max_drop:
            return "REGRESSION", True
        return "small drop", False
    if v.diff > 0 and significant:
        return "improvement", False
    return "not significant", False


# --- output ------------------------------------------------------------------------------------

def gate_table(result: GateResult) -> Table:
    """The verdict table for the terminal."""
    ci = f"{round(result.confidence * 100):g}% CI"
    table = Table(
        title=f"Gate on {result.score!r}: candidate vs baseline (fail if drop > {result.max_drop:g} pts and "
              f"Holm p <= {result.alpha:g})",
        title_justify="left",
    )
    header = ["dataset", "n", "baseline %", "candidate %", "diff pts", ci, "1->0", "0->1",
              "McNemar p", "Holm p", "verdict"]
    for i, h in enumerate(header):
        table.add_column(h, justify="left" if i in (0, 10) else "right", no_wrap=i == 5)
    for v in result.datasets:
        style = "bold red" if v.failed else ("green" if v.status == "improvement" else None)
        table.add_row(
            escape(v.dataset), str(v.n), pct(v.baseline_accuracy), pct(v.candidate_accuracy),
            f"{100 * v.diff:+.1f}", f"[{100 * v.diff_low:+.1f}, {100 * v.diff_high:+.1f}]",
            str(v.lost), str(v.gained), format_p(v.p_value), format_p(v.p_holm), v.status,
            style=style,
        )
    return table


def format_p(p: float) -> str:
    return f"{p:.2e}" if p < 1e-3 else f"{p:.4f}"


def flips_table(result: GateResult, limit: int | None = 20) -> Table | None:
    """Items right in the baseline and wrong in the candidate (up to ``limit`` per dataset)."""
    rows = []
    for v in result.datasets:
        shown = v.lost_items if limit is None else v.lost_items[:limit]
        rows += [(f.dataset, f.id, f.gold or "-", f.baseline_pred or "-", f.candidate_pred or "(none)",
                  f.candidate_method or "-") for f in shown]
        if limit is not None and len(v.lost_items) > limit:
            rows.append((v.dataset, f"... and {len(v.lost_items) - limit} more", "", "", "", ""))
    if not rows:
        return None
    table = Table(title="Flipped right -> wrong", title_justify="left")
    for h in ["dataset", "id", "gold", "baseline", "candidate", "rule"]:
        table.add_column(h)
    for r in rows:
        table.add_row(*(escape(str(cell)) for cell in r))  # names and ids from the runs are text, not markup
    return table


def gate_json(result: GateResult) -> str:
    return json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n"


def junit_xml(result: GateResult) -> str:
    """JUnit XML: one test case per dataset (a regression is a failure) and one for comparability."""
    suite = ET.Element("testsuite", name="evalkit.results.gate")
    props = ET.SubElement(suite, "properties")
    for key, value in [("baseline", result.baseline), ("candidate", result.candidate),
                       ("max_drop_points", result.max_drop), ("alpha", result.alpha),
                       ("verdict", result.verdict)]:
        ET.SubElement(props, "property", name=key, value=str(value))

    comparable = ET.SubElement(suite, "testcase", classname="evalkit.results.gate", name="comparable", time="0")
    errors = 0
    if result.mismatches:
        text = "\n".join(result.mismatches)
        if result.blocked:
            errors = 1
            ET.SubElement(comparable, "error", message="the runs cannot be compared",
                          type="Mismatch").text = text
        else:
            ET.SubElement(comparable, "system-out").text = "compared anyway (--allow-mismatch):\n" + text

    failures = 0
    for v in result.datasets:
        case = ET.SubElement(suite, "testcase", classname="evalkit.results.gate", name=v.dataset, time="0")
        summary = (f"{pct(v.baseline_accuracy)}% -> {pct(v.candidate_accuracy)}% "
                   f"({100 * v.diff:+.1f} pts, {round(result.confidence * 100):g}% CI "
                   f"[{100 * v.diff_low:+.1f}, {100 * v.diff_high:+.1f}]), n={v.n}, "
                   f"1->0 {v.lost}, 0->1 {v.gained}, McNemar p={format_p(v.p_value)}, Holm p={format_p(v.p_holm)}")
        if v.failed:
            failures += 1
            flipped = "\n".join(f"{f.id}: gold {f.gold}, baseline {f.baseline_pred}, candidate {f.candidate_pred}"
                                for f in v.lost_items)
            ET.SubElement(case, "failure", message=f"regression: {summary}",
                          type="Regression").text = "flipped right -> wrong:\n" + flipped
        else:
            ET.SubElement(case, "system-out").text = f"{v.status}: {summary}"
    suite.set("tests", str(len(result.datasets) + 1))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("skipped", "0")
    root = ET.Element("testsuites", name="evalkit gate", tests=suite.get("tests"),
                      failures=str(failures), errors=str(errors))
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
