"""The ``evalkit`` command line: a thin shell over the library API."""

from __future__ import annotations

import click
from rich.console import Console

from evalkit.api import __version__


# The exit codes several commands share (evalkit gate's own are api.EXIT_PASS / EXIT_REGRESSION / EXIT_MISMATCH).
EXIT_INCOMPLETE = 3  # evalkit run / judge: samples failed, or wait for a judge that did not answer; the next run resumes
EXIT_BUSY = 4  # a run directory another evalkit process is writing (api.RunLocked)
EXIT_INTERRUPTED = 130  # stopped by Ctrl-C; what was saved is kept and the same command resumes


def stdout_console(*, stderr: bool = False) -> Console:
    """A console for results; wide when piped, so tables are not cut to 80 columns."""
    console = Console(stderr=stderr, soft_wrap=False)
    return console if console.is_terminal else Console(stderr=stderr, soft_wrap=False, width=200)


def fail_on_bad_input(exc: Exception) -> None:
    """An input the command cannot use (its message names the file and line or the endpoint): exit 1."""
    raise click.ClickException(str(exc)) from exc


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="evalkit")
def main() -> None:
    """Evaluate a served language model on medical QA benchmarks."""


# Each command group lives in its own module under evalkit/cli/; register it here.
from evalkit.cli import run as _run  # noqa: E402
from evalkit.cli import serve as _serve  # noqa: E402
from evalkit.cli.compare import compare_command  # noqa: E402
from evalkit.cli.data import data  # noqa: E402
from evalkit.cli.export import export_command  # noqa: E402
from evalkit.cli.judge import judge_command  # noqa: E402
from evalkit.cli.overlap import overlap_command  # noqa: E402
from evalkit.cli.report import gate_command, leaderboard_command, report_command  # noqa: E402
from evalkit.cli.score import score_command  # noqa: E402
from evalkit.cli.study import study as _study  # noqa: E402
from evalkit.cli.sweep import sweep as _sweep  # noqa: E402
from evalkit.cli.view import view_command  # noqa: E402

main.add_command(_serve.serve)
main.add_command(_serve.status)
main.add_command(_serve.stop)
main.add_command(_run.run)
main.add_command(score_command)
main.add_command(report_command)
main.add_command(leaderboard_command)
main.add_command(gate_command)
main.add_command(compare_command)
main.add_command(data)
main.add_command(judge_command)
main.add_command(overlap_command)
main.add_command(_sweep)
main.add_command(_study)
main.add_command(view_command)
main.add_command(export_command)
