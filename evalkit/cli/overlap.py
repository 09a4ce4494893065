"""CLI: ``evalkit overlap``: which benchmark items a training corpus holds."""

from __future__ import annotations

import time
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from evalkit.cli.common import stdout_console
from evalkit.cli.options import config_option
from evalkit.config import DEFAULT_DATA_DIR, OverlapSettings


@click.command("overlap")
@click.option("--train", "train", multiple=True, required=True, type=click.Path(exists=True, path_type=Path),
              help="Training data: a text, JSONL or JSON file (.gz/.zst too) or a folder of them; several after "
                   "one --train, or --train repeated.")
# The command takes no other argument: paths after --train's first (`--train a.jsonl b.jsonl`) are training data too.
@click.argument("more_train", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--eval-file", "eval_files", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="A benchmark file whose items are looked for (repeatable).")
@click.option("--suite", default=None, help="Look for the items of every benchmark of this suite.")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help=f"Where the suite's benchmark files are (default: {DEFAULT_DATA_DIR}).")
@config_option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), source=(OverlapSettings, "output"),
               help="Where the per-item results go (JSONL, a header line first).")
@click.option("--field", default=None, metavar="NAME|JSONPATH",
              help="The text of a JSON record: a key, or a JSON path such as '$.messages[*].content' "
                   "(default: every string).")
@config_option("--ngram", type=click.IntRange(1), source=(OverlapSettings, "ngram"),
               help="Words per n-gram of the n-gram rule (lm-eval's decontamination uses 13).")
@config_option("--accept-partial/--no-accept-partial", source=(OverlapSettings, "accept_partial"),
               help="Exit 0 even when a training file was cut short, corrupt or unreadable (what could be read "
                    "is searched either way, and the files are named).")
def overlap_command(train: tuple[Path, ...], more_train: tuple[Path, ...], eval_files: tuple[Path, ...],
                    suite: str | None, data_dir: Path | None, output: Path, field: str | None, ngram: int,
                    accept_partial: bool) -> None:
    """Which benchmark items the training data holds, by Med-PaLM 2's rule and by the n-gram rule.

    Med-PaLM 2: the whole question, or 512 contiguous characters of it, occur in one
    training document. n-gram: any 13-word n-gram of it does. Both compare words
    normalized as lm-eval does (lowercase, punctuation deleted, whitespace split;
    CJK per character); options and answers are not searched for.

    Exit 1 when a training file could be read only in part (a compressed file cut short
    or corrupt) or not at all, unless --accept-partial: the output is written either way,
    with what could be read, and its header names those files.
    """
    from evalkit import api

    train = train + more_train
    t0 = time.perf_counter()
    try:
        result = api.overlap(train, eval_files=eval_files, suite=suite, data_dir=data_dir, field=field,
                         ngram=ngram, output=output)
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    seconds = time.perf_counter() - t0
    console = stdout_console()
    for problem in result.problems:
        console.print(f"[yellow]warning:[/] {escape(problem)}", highlight=False)
    console.print(_summary_table(result.rows))
    mb = result.header["bytes_read"] / 1e6
    click.echo(f"read {len(result.header['train'])} files, {mb:.1f} MB in {seconds:.1f} s; wrote {output}", err=True)
    if result.partial:
        click.echo(f"PARTIAL: {len(result.incomplete)} training files incomplete, {len(result.unreadable)} "
                   f"unreadable (named above); the flags cover only what was read", err=True)
        for name in (*result.incomplete, *result.unreadable):
            click.echo(f"  {name}", err=True)
        if not accept_partial:
            click.echo("exit 1: fix or remove those files, or pass --accept-partial to accept a partial scan",
                       err=True)
            click.get_current_context().exit(1)


def _summary_table(rows: list[dict]) -> Table:
    table = Table(title="Overlap with the training data")
    for name in ("dataset", "items", "Med-PaLM 2 rule", "n-gram rule"):
        table.add_column(name, justify="left" if name == "dataset" else "right")
    per: dict[str, list[dict]] = {}
    for r in rows:
        per.setdefault(r["dataset"], []).append(r)
    for name, rs in per.items():
        n = len(rs)
        m = sum(r["medpalm_overlap"] for r in rs)
        g = sum(r["ngram_overlap"] for r in rs)
        table.add_row(name, str(n), f"{m} ({100 * m / n:.1f}%)", f"{g} ({100 * g / n:.1f}%)")
    return table
