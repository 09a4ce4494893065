"""CLI: ``evalkit report``, ``evalkit leaderboard`` and ``evalkit gate``."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from evalkit.cli.common import fail_on_bad_input, stdout_console
from evalkit.cli.options import (alpha_option, config_argument, config_option, format_option, interval_options,
                                 max_drop_option, overlap_options, score_option)
from evalkit import api
from evalkit.config import EXIT_MISMATCH, GateSettings, ReportSettings, field_default

REPORT_PAGE = field_default(ReportSettings, "report_page")
CHOICE_SCORE = field_default(ReportSettings, "score")  # the multiple-choice verdict, the one an overlap file splits
LEADERBOARD_PAGE = field_default(ReportSettings, "leaderboard_page")


def _console():
    return stdout_console()


def _emit(text: str, output: Path | None, fmt: str, default_name: str) -> None:
    """Write ``text`` to OUTPUT, or print it; a page (HTML) without -o goes to DEFAULT_NAME, not the terminal."""
    if output is None and api.settings.format(fmt).page:
        output = Path(default_name)
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
    except OSError as exc:  # a full disk, a read-only folder: say which file, not a traceback
        raise click.ClickException(f"{output}: cannot write the {fmt} output: {exc.strerror or exc}") from exc
    click.echo(f"wrote {output}", err=True)


def _show(doc: object, fmt: str, output: Path | None, default_name: str) -> None:
    """DOC (a report or leaderboard document) in FMT: a terminal format's tables printed, another format's text printed or
    written (``_emit``)."""
    if api.settings.format(fmt).terminal:
        console = _console()
        for renderable in api.render(doc, fmt, width=console.width):
            console.print(renderable)
        return
    _emit(api.render(doc, fmt), output, fmt, default_name)


def _check_output(fmt: str, output: Path | None) -> None:
    if api.settings.format(fmt).terminal and output is not None:
        raise click.UsageError("--output needs --format markdown, csv, json or html")


@click.command("report")
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@format_option()
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help=f"Write the report to this file (HTML defaults to {REPORT_PAGE}).")
@click.option("--by", "by", multiple=True, metavar="FIELD",
              help="Also break each dataset down by this meta field (repeatable), e.g. meta_info.")
@click.option("--k", "ks", multiple=True, type=click.IntRange(1), metavar="K",
              help="Also report pass@K and maj@K of multi-sample runs (repeatable; 1 and the run's K always).")
@interval_options()
@overlap_options("An overlap.jsonl (evalkit overlap): also show accuracy on overlapping vs clean items "
                 "(every format: a table, a JSON key, CSV columns, a page section).")
def report_command(runs: tuple[Path, ...], fmt: str, output: Path | None, by: tuple[str, ...], ci: str,
                   ks: tuple[int, ...], seed: int, resamples: int, overlap_file: Path | None,
                   overlap_rule: str, overlap_stale: str) -> None:
    """Accuracy (with CI), unparsed/truncated rates, errors and throughput of RUN...

    A RUN is a run directory or a samples.jsonl file. Multi-sample runs also get
    pass@k, maj@k and avg@k; runs with thinking get reasoning and answer tokens;
    runs of a suite (`evalkit run --suite`) get the suite's table. A run with no sample is
    named on stderr; when no RUN has one, nothing is reported and the exit status is 1.
    """
    _check_output(fmt, output)
    try:
        doc = api.report(runs, by=by, ci=ci, n_resamples=resamples, seed=seed, ks=ks,
                                  overlap_file=overlap_file, overlap_rule=overlap_rule, overlap_stale=overlap_stale)
    except (OSError, ValueError) as exc:
        fail_on_bad_input(exc)
    for note in doc.notes:
        click.echo(f"note: {note}", err=True)
    for why in doc.warnings:
        click.echo(f"warning: {why}", err=True)
    _show(doc, fmt, output, REPORT_PAGE)


@click.command("leaderboard")
@config_argument("directory", required=False, source=(ReportSettings, "results_dir"),
                 type=click.Path(exists=True, file_okay=False, path_type=Path))
@format_option("leaderboard")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help=f"Write the leaderboard to this file (HTML defaults to {LEADERBOARD_PAGE}).")
@click.option("--task-folder", "task_folders", multiple=True, metavar="GLOB",
              help="Only runs in this task folder (results/<task-folder>/<run>; repeatable, globs allowed).")
@click.option("--model", "models", multiple=True, metavar="GLOB", help="Only runs of this model (repeatable).")
@click.option("--prompt", "prompts", multiple=True, metavar="GLOB",
              help="Only runs with this prompt, e.g. strict or 'strict +SC*' (repeatable).")
@click.option("--run-name", "run_names", multiple=True, metavar="GLOB",
              help="Only runs whose name (or task-folder/name) matches, e.g. 'cot-*' (repeatable).")
@score_option("The named score to rank by (e.g. a judge's axis); numeric scores show means.",
              source=(ReportSettings, "score"))
@click.option("--no-index", is_flag=True,
              help="Read every run from disk, not through DIRECTORY/.evalkit-index.sqlite (also: EVALKIT_NO_INDEX=1).")
@interval_options()
@overlap_options("An overlap.jsonl (evalkit overlap): also show each cell's accuracy on the clean items.")
def leaderboard_command(directory: Path, fmt: str, output: Path | None, task_folders: tuple[str, ...],
                        models: tuple[str, ...], prompts: tuple[str, ...], run_names: tuple[str, ...],
                        score: str, no_index: bool, ci: str, seed: int, resamples: int,
                        overlap_file: Path | None, overlap_rule: str, overlap_stale: str) -> None:
    """Every run under DIRECTORY (default: the results folder) as a configurations x datasets table.

    A row is one configuration (model and checkpoint, prompt, extractor, generation
    parameters, sampling strategy, scoring version). Like is ranked with like: a table
    per group of rows that cover the same datasets with the same items (the largest
    coverage first), headed by what its rows share; partial runs are listed apart and
    not ranked. Each benchmark shows its primary score (an exam's own score, for instance) unless
    --score names one.
    """
    _check_output(fmt, output)
    if overlap_file is not None and score != CHOICE_SCORE:
        raise click.UsageError(f"--overlap splits the multiple-choice verdict ({CHOICE_SCORE}), not --score {score}")
    try:
        doc = api.leaderboard(directory, ci=ci, n_resamples=resamples, seed=seed,
                                       task_folders=task_folders, models=models, prompts=prompts,
                                       run_names=run_names, score=score, index=not no_index,
                              overlap_file=overlap_file, overlap_rule=overlap_rule, overlap_stale=overlap_stale)
    except (OSError, ValueError) as exc:
        fail_on_bad_input(exc)
    for warning in doc.warnings:
        click.echo(f"warning: {warning}", err=True)
    _show(doc, fmt, output, LEADERBOARD_PAGE)


@click.command("gate")
@click.option("--baseline", required=True, type=click.Path(exists=True, path_type=Path), help="The reference RUN.")
@click.option("--candidate", required=True, type=click.Path(exists=True, path_type=Path), help="The new RUN.")
@max_drop_option()
@alpha_option()
@click.option("--allow-mismatch", is_flag=True, help="Compare the shared items even if items/prompts/extractors differ.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
              help="Write the verdict as JSON to this file ('-' for stdout).")
@click.option("--junit", "junit_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a JUnit XML report to this file.")
@config_option("--show-flips", type=click.IntRange(0), source=(GateSettings, "show_flips"),
               help="How many right-to-wrong items to list per dataset.")
@score_option("The named score to gate (e.g. a judge's axis); numeric scores use a paired bootstrap.")
@interval_options(ci=False)
@click.option("--clean-only", is_flag=True, help="Gate only on the items --overlap marks clean.")
@overlap_options("The overlap.jsonl (evalkit overlap) that --clean-only reads.")
def gate_command(baseline: Path, candidate: Path, max_drop: float, alpha: float, allow_mismatch: bool,
                 json_out: Path | None, junit_out: Path | None, show_flips: int, score: str, seed: int,
                 resamples: int, clean_only: bool, overlap_file: Path | None, overlap_rule: str,
                 overlap_stale: str) -> None:
    """Fail (exit 1) if CANDIDATE is significantly worse than BASELINE on any dataset.

    Exit 0: pass; 1: a dataset dropped more than --max-drop points, significant at
    --alpha (exact McNemar, Holm-corrected); 2: the runs cannot be compared, or the
    gate could not finish (a run that cannot be read, a report that cannot be written):
    never 1, so a CI job reports a regression only when there is one.
    """
    if clean_only != (overlap_file is not None):
        raise click.UsageError("--clean-only and --overlap go together")
    try:
        code = _gate(baseline, candidate, max_drop=max_drop, alpha=alpha, allow_mismatch=allow_mismatch,
                     json_out=json_out, junit_out=junit_out, show_flips=show_flips, score=score, seed=seed,
                     resamples=resamples, overlap_file=overlap_file, overlap_rule=overlap_rule,
                     overlap_stale=overlap_stale)
    except Exception as exc:  # noqa: BLE001 - whatever stops the gate, it is not a regression
        what = str(exc) if isinstance(exc, (OSError, ValueError)) else f"{type(exc).__name__}: {exc}"
        click.echo(f"error: {what}", err=True)
        click.echo(f"NOT COMPARABLE (exit {EXIT_MISMATCH}): the gate could not compare "
                   f"{baseline} with {candidate}", err=True)
        code = EXIT_MISMATCH
    click.get_current_context().exit(code)


def _gate(baseline: Path, candidate: Path, *, max_drop: float, alpha: float, allow_mismatch: bool,
          json_out: Path | None, junit_out: Path | None, show_flips: int, score: str, seed: int,
          resamples: int, overlap_file: Path | None, overlap_rule: str, overlap_stale: str) -> int:
    """Compare the runs, print the verdict and write the reports; the exit code (see gate_command)."""
    result = api.gate(baseline, candidate, max_drop=max_drop, alpha=alpha, allow_mismatch=allow_mismatch,
                      n_resamples=resamples, seed=seed, score=score, overlap_file=overlap_file,
                      overlap_rule=overlap_rule, overlap_stale=overlap_stale)
    # With the JSON on stdout, the human-readable part goes to stderr.
    console = stdout_console(stderr=str(json_out) == "-")
    for reason in result.mismatches:
        console.print(f"[bold yellow]mismatch:[/] {escape(str(reason))}", highlight=False)
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {escape(str(warning))}", highlight=False)
    if result.datasets and not result.blocked:
        for renderable in api.render(result, "rich", flips=show_flips):
            console.print(renderable)
    if result.blocked and not result.datasets:
        console.print("[bold yellow]NOT COMPARABLE[/] (exit 2): no dataset was answered and scored in both runs.")
    elif result.blocked:
        console.print("[bold yellow]NOT COMPARABLE[/] (exit 2): use --allow-mismatch to compare the shared items.")
    elif result.failed_datasets:
        console.print(f"[bold red]FAIL[/] (exit 1): regression on {', '.join(result.failed_datasets)}")
    elif result.mismatches:
        console.print("[bold green]PASS[/] (on the shared items only, despite the mismatches: --allow-mismatch)")
    else:
        console.print("[bold green]PASS[/]")
    if json_out is not None and str(json_out) == "-":
        click.echo(api.render(result, "json"), nl=False)
    result.write_reports(json_out=json_out, junit_out=junit_out)
    return result.exit_code
