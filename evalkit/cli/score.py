"""``evalkit score``: re-extract and re-score saved generations."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from pathlib import Path

import click
from rich.table import Table

from evalkit.cli import stdout_console
from evalkit.cli.options import config_option
from evalkit.config import RunConfig
from evalkit.api import (
    default_output, EXTRACTORS, fmt_ci, is_medreason_log, live_writer, medreason_report, pct,
    plan_scoring, rescore, RunLocked, SAMPLES, samples_path, snapshot_note, summarize, try_lock_run_dir,
    wilson_interval, write_jsonl
)


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


def _output_lock(output: Path):
    """The run-directory lock when OUTPUT is a run's samples.jsonl (an in-place rewrite), else nothing.

    A running evalkit run holds that lock and appends to the file: replacing the file under it
    would lose every sample it saves after. Then the command refuses (exit 4) naming the run.
    """
    if output.name != SAMPLES or not output.parent.is_dir():
        return nullcontext()
    try:
        return try_lock_run_dir(output.parent)
    except RunLocked as exc:
        who = exc.holder.describe() if exc.holder else "another process (its record is unreadable)"
        click.echo(f"busy: {output} is being written by a running evalkit run ({who}); rewriting it now would "
                   "lose what that run saves after. Wait for the run to end, or write elsewhere with -o.", err=True)
        sys.exit(4)


@click.command("score")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@config_option(
    "--extractor",
    "extractor_name",
    type=click.Choice(sorted(EXTRACTORS)),
    source=(RunConfig, "extractor"),
    help="Answer extractor: 'evalkit' (principled cascade) or 'medreason' (reproduces the MedReason/HuatuoGPT-o1 scorer).",
)
@click.option("--scorer", "scorers", multiple=True,
              help="Scorer by name or module:attr (repeatable) [default: choice with --extractor].")
@click.option("--scorer-arg", "scorer_args", multiple=True, metavar="SCORER.KEY=VALUE",
              help="An option for a scorer (repeatable).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Where to write the rescored samples (JSON lines). Default: beside PATH.")
def score_command(path: Path, extractor_name: str, scorers: tuple[str, ...], scorer_args: tuple[str, ...],
                  output: Path | None) -> None:
    """Re-extract and re-score saved generations in PATH, without a server.

    PATH is an evalkit run directory or samples.jsonl, or a MedReason-format
    log (a JSON list of items with output, options and answer_idx).
    """
    from evalkit.cli.run import parse_scorer_args

    label = extractor_name if not scorers else "+".join(n.rpartition(":")[2] or n for n in scorers)
    output = output or default_output(path, label)
    run_samples = None if is_medreason_log(path) else samples_path(path)
    writer = live_writer(run_samples) if run_samples else None  # looked at before and after reading
    with _output_lock(output):  # a run's samples.jsonl is rewritten only by the lock's holder
        try:
            plan = plan_scoring(list(scorers) or None, extractor=extractor_name,
                                scorer_options=parse_scorer_args(scorer_args))
            extractor_name = plan.extractor or extractor_name  # the one the choice scorer uses, whichever flag
            samples = rescore(path, plan=plan, journal=output.with_name(output.name + ".journal"))
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        write_jsonl(output, samples)
        output.with_name(output.name + ".journal").unlink(missing_ok=True)
    writer = writer or (live_writer(run_samples) if run_samples else None)
    if writer is not None:
        click.echo(f"note: {snapshot_note(run_samples, writer, len(samples))}", err=True)
    console = stdout_console()
    summary = summarize(samples, plan.metrics)
    if any(d.choice for d in summary.values()):
        console.print(_summary_table(samples, extractor_name))
    from evalkit.cli.run import scores_table

    extra = scores_table(summary)
    if extra is not None:
        console.print(extra)
    if extractor_name == "medreason" and all(s.name == "choice" for s in plan.scorers):
        console.print(_compat_table(samples))
    what = f"the {extractor_name!r} extractor" if not scorers else f"scorers {', '.join(scorers)}"
    console.print(f"{len(samples)} samples rescored with {what} -> {output}")
