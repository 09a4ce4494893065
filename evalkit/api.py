"""The library surface: what a notebook calls, the same functions the CLI calls.

    from evalkit import api
    result = api.evaluate(api.RunConfig(eval_files=["eval_data/sample_medqa.jsonl"],
                                        endpoint="http://127.0.0.1:8321/v1"))
    df = api.samples_frame(result.run_dir)          # one row per sample, a column per score
    report = api.report([result.run_dir])           # rows with CIs per dataset and score

Every default lives in the config types (``RunConfig.resolved``), not in the CLI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from evalkit.gate import GateResult, compare_runs
from evalkit.records import GenerationParams, Item, SampleRecord, Score
from evalkit.report import Report, build_report
from evalkit.rescore import rescore
from evalkit.runner import RunConfig, RunResult, run_eval
from evalkit.runs import Run, load_run, to_dataframe
from evalkit.scoring import get_scorer

__all__ = ["GenerationParams", "Item", "RunConfig", "RunResult", "Run", "SampleRecord", "Score", "evaluate",
           "gate", "get_scorer", "load_run", "report", "rescore_run", "samples_frame"]


def evaluate(config: RunConfig, **callbacks: Any) -> RunResult:
    """Run (or resume) an evaluation; see ``evalkit.runner.run_eval`` for the callbacks."""
    return run_eval(config, **callbacks)


def samples_frame(run: "str | Path | Run", *, counting_only: bool = True):
    """A run's samples as a pandas DataFrame (``score:NAME`` columns for its scores)."""
    return to_dataframe(run, counting_only=counting_only)


def report(runs: Iterable["str | Path | Run"], **options: Any) -> Report:
    """Per-dataset rows with CIs for each run (``build_report``'s options)."""
    return build_report(runs, **options)


def gate(baseline: "str | Path | Run", candidate: "str | Path | Run", **options: Any) -> GateResult:
    """Is CANDIDATE worse than BASELINE? (``compare_runs``'s options, e.g. ``score="grade"``)."""
    return compare_runs(baseline, candidate, **options)


def rescore_run(run: "str | Path", scorers: Sequence[str] | None = None, *, extractor: str = "evalkit",
                scorer_options: Mapping[str, Mapping[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The saved generations of RUN scored again (nothing is requested from the answering server)."""
    return rescore(run, extractor, scorers=list(scorers) if scorers else None, scorer_options=scorer_options)
