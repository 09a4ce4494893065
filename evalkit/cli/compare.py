"""CLI: ``evalkit compare``, the item-by-item comparison of runs as an HTML page."""

from __future__ import annotations

from pathlib import Path

import click

from evalkit.cli.report import _fail_on_bad_input, _resamples_option, _seed_option


@click.command("compare")
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("compare.html"),
              show_default=True, help="Write the page to this file.")
@click.option("--score", default="correct", show_default=True,
              help="The named score to compare (e.g. a judge's axis); numeric scores use a paired bootstrap.")
@click.option("--max-drop", type=click.FloatRange(0), default=1.0, show_default=True,
              help="The gate's largest tolerated drop in points (as for evalkit gate).")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.05,
              show_default=True, help="The gate's significance level (Holm-corrected over datasets).")
@click.option("--title", default="evalkit compare", show_default=True, help="The page's title.")
@_seed_option
@_resamples_option
@click.option("--overlap", "overlap_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="An overlap.jsonl (evalkit overlap): mark overlapping items (a filter), show accuracy on "
                   "overlapping vs clean items and each pair's paired result on the clean items too.")
@click.option("--overlap-rule", type=click.Choice(["medpalm", "ngram"]), default="medpalm", show_default=True,
              help="Which rule of the overlap file marks an item as overlapping.")
def compare_command(runs: tuple[Path, ...], output: Path, score: str, max_drop: float, alpha: float, title: str,
                    seed: int, resamples: int, overlap_file: Path | None, overlap_rule: str) -> None:
    """Compare BASELINE CANDIDATE [RUN...] item by item in one self-contained HTML page.

    The first RUN is the baseline and the second the candidate; with more runs (the
    checkpoints of a sweep) any two can be paired on the page. The paired statistics are
    those of `evalkit gate` with the same options.
    """
    from evalkit.api import compare
    from evalkit.api import render_compare_html

    if len(runs) < 2:
        raise click.UsageError("give at least two runs: BASELINE CANDIDATE [RUN...]")
    try:
        from evalkit.api import read_overlap

        overlap = read_overlap(overlap_file, overlap_rule) if overlap_file is not None else None
        comparison = compare(runs, score=score, max_drop=max_drop, alpha=alpha, seed=seed, n_resamples=resamples,
                             overlap=overlap)
    except (OSError, ValueError) as exc:
        _fail_on_bad_input(exc)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(render_compare_html(comparison, title=title), encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"{output}: cannot write the page ({exc.strerror or exc})") from exc
    pair = comparison.pair(0, 1)
    for verdict in pair.gate.datasets:
        click.echo(f"{verdict.dataset}: {verdict.gained} fixed, {verdict.lost} broken of {verdict.n} paired "
                   f"({100 * verdict.diff:+.1f} pts, {verdict.status})", err=True)
    for verdict in pair.clean_gate.datasets if pair.clean_gate is not None else ():
        click.echo(f"{verdict.dataset} (clean items): {verdict.gained} fixed, {verdict.lost} broken of {verdict.n} "
                   f"paired ({100 * verdict.diff:+.1f} pts, {verdict.status})", err=True)
    click.echo(f"wrote {output}", err=True)
