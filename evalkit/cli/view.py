"""CLI: ``evalkit view``, the results folder as a live web application."""

from __future__ import annotations

import click

from evalkit.cli.options import config_argument, config_option
from evalkit.config import ReportSettings, ViewSettings


@click.command("view")
@config_argument("results_dir", source=(ReportSettings, "results_dir"), required=False,
                 type=click.Path(exists=True, file_okay=False))
@config_option("--host", source=(ViewSettings, "host"),
               help="Address to listen on; another than loopback needs a token (made and printed when not given).")
@config_option("--port", type=int, source=(ViewSettings, "port"), help="Port to listen on (0: a free one).")
@config_option("--studies-dir", source=(ViewSettings, "studies_dir"),
               help="Where the rating studies are (evalkit study create's folder), listed on the home page.")
@config_option("--token", source=(ViewSettings, "token"), envvar="EVALKIT_VIEW_TOKEN",
               help="The token every request must carry (required off loopback) [env EVALKIT_VIEW_TOKEN].")
def view_command(results_dir: str, host: str, port: int, studies_dir: str, token: str | None) -> None:
    """Serve RESULTS_DIR in the browser: runs as they are written, sweeps, leaderboard, comparisons.

    Read only: it never writes into a run directory (the run index's cache aside). Stop it with Ctrl-C.
    """
    from evalkit import api

    def announce(url: str, notes: list[str]) -> None:
        for note in notes:
            click.echo(f"note: {note}", err=True)
        click.echo(f"evalkit view of {results_dir}: open {url}", err=False)

    try:
        api.view(results_dir, settings=ViewSettings(host=host, port=port, token=token, studies_dir=studies_dir), announce=announce)
    except OSError as exc:
        raise click.ClickException(str(exc)) from exc
