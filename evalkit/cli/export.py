"""``evalkit export RUN|SWEEP_DIR --to mlflow|wandb``, and the sending behind ``--log-to`` of run and sweep run."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import click

from evalkit.cli.options import tracker_options
from evalkit.config import TrackerSettings, field_default


def check_run_ids(trackers: Sequence[str], tracker_run_ids: Sequence[str]) -> None:
    """A usage error, before anything runs, when --tracker-run-id does not fit the trackers named."""
    from evalkit import api

    if tracker_run_ids and not trackers:
        raise click.UsageError("--tracker-run-id goes with the trackers it is for (--log-to / --to)")
    try:
        api.settings.trackers(trackers, tracker_run_ids)
    except api.InputError as exc:
        raise click.UsageError(str(exc)) from None


def send_to_trackers(paths: Sequence["str | Path"], trackers: Sequence[str], tracker_run_ids: Sequence[str],
                     log_samples: bool, *, step: int | None = None) -> bool:
    """Each of PATHS sent to TRACKERS (``api.export``), a line per tracker run on stdout and the notes on
    stderr; False (after the others were sent) when one could not be sent, its reason said."""
    from evalkit import api

    ok = True
    for path in paths:
        try:
            results = api.export(path, trackers, tracker_run_ids=tracker_run_ids, log_samples=log_samples, step=step)
        except (api.InputError, ValueError, OSError) as exc:  # ValueError: a run or sweep that cannot be read
            click.echo(f"error: {path}: not sent: {exc}", err=True)
            ok = False
            continue
        for result in results:
            click.echo(result.line())
            for note in result.notes:
                click.echo(f"note: {note}", err=True)
    return ok


@click.command("export")
@click.argument("path", type=click.Path(exists=True, file_okay=False))
@tracker_options("--to")
@click.option("--step", type=int, default=None,
              help="A run's training step [default: its checkpoint's, as the manifest records it, else "
                   f"{field_default(TrackerSettings, 'step')}]; a sweep's checkpoints are each at their own.")
def export_command(path: str, trackers: tuple[str, ...], tracker_run_ids: tuple[str, ...], log_samples: bool,
                   step: int | None) -> None:
    """Send the figures of PATH, a run directory or a sweep folder, to MLflow and/or W&B.

    Idempotent: a point the tracker run already holds (the same name at the same step) is not sent
    again, so running it again after more of a sweep's checkpoints finished adds only those."""
    if not trackers:
        raise click.UsageError("name a tracker: --to mlflow[:EXPERIMENT] or --to wandb[:PROJECT] (repeatable)")
    check_run_ids(trackers, tracker_run_ids)
    if not send_to_trackers([path], trackers, tracker_run_ids, log_samples, step=step):
        click.get_current_context().exit(1)
