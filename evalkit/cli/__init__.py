"""The ``evalkit`` command line: a thin shell over the library API (``evalkit.api``).

This module only declares the group and registers each command; what commands share is in
``evalkit.cli.common``, so no command module imports this package (no import cycle).
"""

from __future__ import annotations

import click

from evalkit.api import __version__


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

for _command in (_serve.serve, _serve.status, _serve.stop, _run.run, score_command, report_command,
                 leaderboard_command, gate_command, compare_command, data, judge_command, overlap_command, _sweep,
                 _study, view_command, export_command):
    main.add_command(_command)
