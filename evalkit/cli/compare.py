"""CLI: ``evalkit compare``, the item-by-item comparison of runs as an HTML page."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from evalkit.cli.options import (alpha_option, config_option, interval_options, max_drop_option, overlap_options,
                                 score_option)
from evalkit import api
from evalkit.cli.common import fail_on_bad_input
from evalkit.config import EXIT_MISMATCH, CompareSettings


@click.command("compare")
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@config_option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), source=(CompareSettings, "output"),
               help="Write the page to this file.")
@score_option("The named score to compare (e.g. a judge's axis); numeric scores use a paired bootstrap.")
@max_drop_option("The gate's largest tolerated drop in points (as for evalkit gate).")
@alpha_option("The gate's significance level (Holm-corrected over datasets).")
@config_option("--title", source=(CompareSettings, "title"), help="The page's title.")
@interval_options(ci=False)
@overlap_options("An overlap.jsonl (evalkit overlap): mark overlapping items (a filter), show accuracy on "
                 "overlapping vs clean items and each pair's paired result on the clean items too.")
def compare_command(runs: tuple[Path, ...], output: Path, score: str, max_drop: float, alpha: float, title: str,
                    seed: int, resamples: int, overlap_file: Path | None, overlap_rule: str,
                    overlap_stale: str) -> None:
    """Compare BASELINE CANDIDATE [RUN...] item by item in one self-contained HTML page.

    The first RUN is the baseline and the second the candidate; with more runs (the
    checkpoints of a sweep) any two can be paired on the page. The paired statistics are
    those of `evalkit gate` with the same options.
    """
    if len(runs) < 2:
        raise click.UsageError("give at least two runs: BASELINE CANDIDATE [RUN...]")
    try:
        comparison = api.compare(runs, score=score, max_drop=max_drop, alpha=alpha, seed=seed, n_resamples=resamples,
                                 overlap_file=overlap_file, overlap_rule=overlap_rule, overlap_stale=overlap_stale)
    except (OSError, ValueError) as exc:
        fail_on_bad_input(exc)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(api.render(comparison, "html", title=title), encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"{output}: cannot write the page ({exc.strerror or exc})") from exc
    for note in comparison.overlap_notes:
        click.echo(f"warning: {note}", err=True)
    pair = comparison.pair(0, 1)
    for reason in comparison.mismatches:
        click.echo(f"mismatch: {reason}", err=True)
    for verdict in pair.gate.datasets:
        click.echo(f"{verdict.dataset}: {verdict.gained} fixed, {verdict.lost} broken of {verdict.n} paired "
                   f"({100 * verdict.diff:+.1f} pts, {verdict.status})", err=True)
    for verdict in pair.clean_gate.datasets if pair.clean_gate is not None else ():
        click.echo(f"{verdict.dataset} (clean items): {verdict.gained} fixed, {verdict.lost} broken of {verdict.n} "
                   f"paired ({100 * verdict.diff:+.1f} pts, {verdict.status})", err=True)
    click.echo(f"wrote {output}", err=True)
    if not pair.gate.datasets:
        click.echo("NOT COMPARABLE (exit 2): the baseline and candidate share no benchmark with items scored in "
                   "both; nothing was paired.", err=True)
        sys.exit(EXIT_MISMATCH)
    if comparison.mismatches:
        click.echo("not comparable as evalkit gate sees them (it says NOT COMPARABLE without --allow-mismatch): "
                   "the paired results are on the shared items only.", err=True)
