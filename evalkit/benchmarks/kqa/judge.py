"""``evalkit judge NLI_medical_annotator.csv``: the K-QA judge against the physicians, as a file pass
(``evalkit.run.judging.register_file_pass``): which files it claims, how it judges them (journaled,
resumable: ``statements.evaluate_nli_file``) and the agreement table the command line prints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from evalkit.benchmarks.kqa.statements import (NLI_JOURNAL, PHYSICIAN_LABELS, NliFileError, evaluate_nli_file,
                                               is_nli_file)
from evalkit.config import JudgeSettings
from evalkit.run.judging import FilePass, register_file_pass
from evalkit.scoring.judge_pass import JudgeInputError

console = Console(stderr=True, soft_wrap=True)


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _ci(ci: Any) -> str:
    return "" if not ci else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def agreement_rows(report: Any) -> list[tuple[str, Any]]:
    """(who, LabelAgreement) in the order printed: floor, judge, ceiling."""
    rows = [("floor: always Neutral", report.always_neutral), ("floor: word overlap", report.word_overlap),
            ("judge", report.judge)]
    rows += [(f"ceiling: physician {i} vs the other two", a) for i, a in enumerate(report.physicians)]
    return rows


def print_nli_report(done: Any, path: Path, *, out: Console) -> None:
    """The agreement table of a judged K-QA physicians' file (``api.judge``'s result) and the judge's
    confusion matrix."""
    report, pairs, per, scorer = done.report, done.pairs, done.per, done.judge
    table = Table(title=f"{path.name}: agreement with the physicians' majority ({len(pairs)} pairs; "
                        f"judge {scorer.model}, one request per {per})")
    for name in ("who", "n", "accuracy", "95% CI", "macro-F1", "95% CI ", "Cohen's kappa", "95% CI  "):
        table.add_column(name, justify="left" if name == "who" else "right")
    for who, a in agreement_rows(report):
        table.add_row(who, str(a.n), _f(a.accuracy), _ci(a.accuracy_ci), _f(a.macro_f1), _ci(a.macro_f1_ci),
                      _f(a.kappa), _ci(a.kappa_ci))
    out.print(table)
    out.print(f"Fleiss' kappa of the three physicians: {_f(report.fleiss_kappa)}")
    confusion = Table(title="physicians' majority (rows) x judge (columns): count [95% CI]")
    confusion.add_column("majority \\ judge")
    labels = report.judge.labels  # the physicians' own words for them
    for label in labels:
        confusion.add_column(label, justify="right")
    cis = report.judge.confusion_ci or [[None] * len(labels)] * len(labels)
    for label, row, ci_row in zip(labels, report.judge.confusion, cis):
        confusion.add_row(label, *(f"{v} [{c[0]}, {c[1]}]" if c else str(v) for v, c in zip(row, ci_row)))
    out.print(confusion)
    if report.judge.missing:
        console.print(f"[yellow]{report.judge.missing} pairs got no valid judge reply; they count in no figure[/]")
    console.print(f"{len(pairs)} pairs, {done.resumed} resumed from {done.journal}")


def claims(path: Path) -> bool:
    """The physicians' file, or any CSV: the only CSV ``evalkit judge`` reads (one that is not the
    physicians' file is refused saying so)."""
    return is_nli_file(path) or path.suffix.lower() == ".csv"


def judge_file(path: Path, scorer: Any, settings: JudgeSettings, work_dir: Path, progress: Any
               ) -> tuple[Any, list, int]:
    """Judge the physicians' file PATH (see ``FilePass``): (NliReport, pairs, resumed)."""
    try:
        report, pairs, _labels, resumed = evaluate_nli_file(path, scorer, per=settings.request_per,
                                                            work_dir=work_dir, limit=settings.limit,
                                                            n_resamples=settings.n_resamples,
                                                            on_start=progress.start, on_judged=progress.judged)
    except NliFileError as exc:  # nothing was sent
        raise JudgeInputError(str(exc)) from None
    return report, pairs, resumed


FILE_PASS = register_file_pass(FilePass("kqa", claims, judge_file, NLI_JOURNAL, print_nli_report))
