"""What several commands share: exit codes, consoles, the handling of bad input, and the tables of a
run's (or a rescore's) per-dataset counts. Commands import this module, never the package."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.table import Table

from evalkit.cli.controls import parse_json

# The exit codes several commands share (a gate's are config.EXIT_PASS / EXIT_REGRESSION / EXIT_MISMATCH).
EXIT_INCOMPLETE = 3  # evalkit run / judge: samples failed, or wait for a judge that did not answer; the next run resumes
EXIT_BUSY = 4  # a run directory another evalkit process is writing (api.BusyError)
EXIT_INTERRUPTED = 130  # stopped by Ctrl-C; what was saved is kept and the same command resumes


def stdout_console(*, stderr: bool = False) -> Console:
    """A console for results; wide when piped, so tables are not cut to 80 columns."""
    console = Console(stderr=stderr, soft_wrap=False)
    return console if console.is_terminal else Console(stderr=stderr, soft_wrap=False, width=200)


def fail_on_bad_input(exc: Exception) -> None:
    """An input the command cannot use (its message names the file and line or the endpoint): exit 1."""
    raise click.ClickException(str(exc)) from exc


def pct(x: float | None) -> str:
    """A share as a percentage with one decimal ("-" for none)."""
    return "-" if x is None else f"{100 * x:.1f}"


def fmt_ci(lo: float, hi: float) -> str:
    """An interval of shares as percentages: ``[61.2, 70.3]``."""
    return f"[{100 * lo:.1f}, {100 * hi:.1f}]"


def score_value(s: Any) -> str:
    """A named score's figure: a percentage for a yes/no score, else the number; "-" when it has none."""
    if s.value is None:
        return "-"
    return f"{100 * s.value:.1f}%" if s.binary else f"{s.value:.3f}"


def summary_table(summary: dict, title: str) -> Table:
    """The end-of-run table, from the streamed per-dataset counts (no samples reloaded); the interval is
    the summary's own (Wilson)."""
    table = Table(title=title, title_justify="left")
    for col, justify in (("dataset", "left"), ("n", "right"), ("accuracy", "right"), ("95% CI (Wilson)", "right"),
                         ("unparsed", "right"), ("truncated", "right"), ("errors", "right")):
        table.add_column(col, justify=justify, no_wrap=True)
    for name, d in summary.items():
        if d.choice:
            table.add_row(name, str(d.n), f"{pct(d.accuracy)}%", fmt_ci(*d.ci), str(d.unparsed), str(d.truncated),
                          str(d.errors))
        else:  # scored otherwise (an exam's own scorer, a judge): its first score here, by its metric; all of them below
            table.add_row(name, str(d.n), _first_score(d), "-", "-", str(d.truncated), str(d.errors))
    return table


def _first_score(d: Any) -> str:
    """A dataset's first named score with a figure, as "57.1% exam"; "-" when it has none."""
    for score_name, s in d.scores.items():
        if s.value is not None:
            return f"{score_value(s)} {score_name}"
    return "-"


def scores_table(summary: dict) -> Table | None:
    """Every named score other than the choice scorer's (shown as accuracy above), by its metric."""
    rows = [(dataset, name, s) for dataset, d in summary.items() for name, s in d.scores.items() if name != "correct"]
    if not rows:
        return None
    table = Table(title="scores (each by its metric over scored samples; `evalkit report` adds CIs)",
                  title_justify="left")
    for col, justify in (("dataset", "left"), ("score", "left"), ("metric", "left"), ("n", "right"),
                         ("value", "right"), ("not scored", "right")):
        table.add_column(col, justify=justify, no_wrap=True)
    for dataset, name, s in rows:
        table.add_row(dataset, name, s.to_dict()["metric"]["name"], str(s.n), score_value(s), str(s.errors))
    return table


def parse_scorer_args(args: tuple[str, ...]) -> dict[str, dict[str, object]]:
    """``SCORER.KEY=VALUE`` options as {scorer: {key: value}}; values that read as JSON are parsed."""
    out: dict[str, dict[str, object]] = {}
    for arg in args:
        target, eq, value = arg.partition("=")
        scorer, dot, key = target.rpartition(".")
        if not eq or not dot or not scorer or not key:
            raise ValueError(f"{arg!r} is not SCORER.KEY=VALUE")
        try:
            parsed: object = parse_json(value)
        except (ValueError, RecursionError):
            parsed = value
        out.setdefault(scorer, {})[key] = parsed
    return out
