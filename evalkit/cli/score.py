"""``evalkit score``: re-extract and re-score saved generations."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from evalkit.cli import stdout_console
from evalkit.extract import DEFAULT_EXTRACTOR, EXTRACTORS
from evalkit.extract_medreason import medreason_report
from evalkit.report import fmt_ci, pct
from evalkit.rescore import default_output, rescore
from evalkit.stats import wilson_interval
from evalkit.store import write_jsonl
from evalkit.score import summarize


def _summary_table(samples: list[dict], extractor_name: str) -> Table:
    table = Table(title=f"Accuracy with the {extractor_name!r} extractor (unparsed counts as wrong)")
    for name in ("dataset", "n", "correct", "acc %", "95% CI (Wilson)", "unparsed", "truncated", "errors"):
        table.add_column(name, justify="left" if name == "dataset" else "right", no_wrap=True)
    for dataset, s in summarize(samples).items():
        lo, hi = wilson_interval(s.correct, s.n)
        table.add_row(dataset, str(s.n), str(s.correct), pct(s.accuracy), fmt_ci(lo, hi), str(s.unparsed),
                      str(s.truncated), str(s.errors))
    return table


def _compat_table(samples: list[dict]) -> Table:
    table = Table(title="MedReason compat numbers (max of first/last match; empty generations dropped) — not evalkit accuracy")
    for name in ("source", "n", "first-match acc %", "last-match acc %", "compat acc %", "dropped empty"):
        table.add_column(name, justify="left" if name == "source" else "right")
    for source, s in medreason_report(samples).items():
        table.add_row(source, str(s.n), pct(s.first_accuracy), pct(s.last_accuracy), pct(s.accuracy),
                      str(s.dropped_empty))
    return table


@click.command("score")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--extractor",
    "extractor_name",
    type=click.Choice(sorted(EXTRACTORS)),
    default=DEFAULT_EXTRACTOR,
    show_default=True,
    help="Answer extractor: 'evalkit' (principled cascade) or 'medreason' (reproduces the MedReason/HuatuoGPT-o1 scorer).",
)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Where to write the rescored samples (JSON lines). Default: beside PATH.")
def score_command(path: Path, extractor_name: str, output: Path | None) -> None:
    """Re-extract and re-score saved generations in PATH, without a server.

    PATH is an evalkit run directory or samples.jsonl, or a MedReason-format
    log (a JSON list of items with output, options and answer_idx).
    """
    try:
        samples = rescore(path, extractor_name)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    output = output or default_output(path, extractor_name)
    write_jsonl(output, samples)
    console = stdout_console()
    console.print(_summary_table(samples, extractor_name))
    if extractor_name == "medreason":
        console.print(_compat_table(samples))
    console.print(f"{len(samples)} samples rescored with the {extractor_name!r} extractor -> {output}")
