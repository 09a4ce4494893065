"""``evalkit score``: re-extract and re-score saved generations."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.table import Table

from evalkit import api
from evalkit.cli.common import EXIT_BUSY, fmt_ci, parse_scorer_args, pct, scores_table, stdout_console
from evalkit.cli.options import config_option
from evalkit.config import SAMPLES, RunConfig


def _summary_table(summary: dict, extractor_name: str) -> Table:
    """Each dataset's accuracy with its Wilson interval (the summary's), as the choice scorer counts it."""
    table = Table(title=f"Accuracy with the {extractor_name!r} extractor (unparsed counts as wrong)")
    for name in ("dataset", "n", "correct", "acc %", "95% CI (Wilson)", "unparsed", "truncated", "errors"):
        table.add_column(name, justify="left" if name == "dataset" else "right", no_wrap=True)
    for dataset, s in summary.items():
        table.add_row(dataset, str(s.n), str(s.correct), pct(s.accuracy), fmt_ci(*s.ci), str(s.unparsed),
                      str(s.truncated), str(s.errors))
    return table


@click.command("score")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@config_option(
    "--extractor",
    "extractor_name",
    type=click.Choice(api.settings.extractors()),
    source=(RunConfig, "extractor"),
    help="Answer extractor: 'evalkit' (principled cascade) or one a benchmark registers (one reproducing "
         "another harness's scorer prints its own figures too).",
)
@click.option("--scorer", "scorers", multiple=True,
              help="Scorer by name or module:attr (repeatable) [default: the items' own: choice with --extractor for multiple choice, the scorer a target type registers for its items].")
@click.option("--scorer-arg", "scorer_args", multiple=True, metavar="SCORER.KEY=VALUE",
              help="An option for a scorer (repeatable).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Where to write the rescored samples (JSON lines). Default: beside PATH.")
def score_command(path: Path, extractor_name: str, scorers: tuple[str, ...], scorer_args: tuple[str, ...],
                  output: Path | None) -> None:
    """Re-extract and re-score saved generations in PATH, without a server.

    PATH is an evalkit run directory or samples.jsonl, or another harness's log that a benchmark
    registers a reader for (e.g. a JSON list of items with output, options and answer_idx).
    """
    try:
        done = api.rescore(path, extractor_name, output=output, scorers=scorers,
                           scorer_options=parse_scorer_args(scorer_args))
    except api.BusyError as exc:
        if exc.lost:
            click.echo(f"stopped: {exc}", err=True)
            sys.exit(EXIT_BUSY)
        who = exc.holder.describe() if exc.holder else "another process (its record is unreadable)"
        click.echo(f"busy: {exc.run_dir / SAMPLES} is being written by a running evalkit run ({who}); rewriting it "
                   "now would lose what that run saves after. Wait for the run to end, or write elsewhere with -o.",
                   err=True)
        sys.exit(EXIT_BUSY)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if done.note is not None:
        click.echo(f"note: {done.note}", err=True)
    console = stdout_console()
    summary = done.summary
    if any(d.choice for d in summary.values()):
        console.print(_summary_table(summary, done.extractor))
    extra = scores_table(summary)
    if extra is not None:
        console.print(extra)
    if done.extractor_table is not None:
        for table in api.render(done.extractor_table, "rich"):  # the extractor's own table
            console.print(table)
    names = [sc.name for sc in done.plan.scorers]
    what = f"the {done.extractor!r} extractor" if names == ["choice"] else f"scorers {', '.join(names)}"
    console.print(f"{len(done.samples)} samples rescored with {what} -> {done.output}")
