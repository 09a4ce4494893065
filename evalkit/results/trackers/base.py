"""The trackers evalkit sends figures to: a target's spelling, whether its package is installed, the
protocol each tracker's run follows, and the ledger of what was sent where the tracker cannot be asked.

Nothing here talks to a tracker. Credentials and servers are the trackers' own environment variables
(``MLFLOW_TRACKING_URI``, ``WANDB_API_KEY``, ``WANDB_MODE`` ...), read by their libraries; evalkit
never writes them anywhere.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

from evalkit.config import TRACKERS
from evalkit.results.trackers.figures import Point
from evalkit.core.errors import InputError

LEDGER = "trackers.json"  # beside a run's (or in a sweep's) files: what was sent to trackers that cannot be asked
PACKAGES = {"mlflow": "mlflow", "wandb": "wandb"}  # tracker -> the module its extra installs


class TrackerError(InputError):
    """A tracker target cannot be used: unknown, its package not installed, or its run not found."""


@dataclass(frozen=True)
class TrackerTarget:
    """A tracker (``mlflow`` or ``wandb``), the experiment or project NAME (None: the settings' default),
    and RUN_ID: the tracker's run to attach to (a training run), None for one of evalkit's own."""

    kind: str
    name: str | None = None
    run_id: str | None = None

    def __str__(self) -> str:
        return self.kind + (f":{self.name}" if self.name else "")


def parse_target(spec: str) -> TrackerTarget:
    """``mlflow``, ``mlflow:EXPERIMENT``, ``wandb`` or ``wandb:PROJECT`` as a target (TrackerError otherwise)."""
    kind, _, name = spec.partition(":")
    kind = kind.strip().lower()
    if kind not in TRACKERS:
        raise TrackerError(f"{spec!r}: not a tracker (choose from {', '.join(TRACKERS)}, as TRACKER[:NAME])")
    return TrackerTarget(kind, name.strip() or None)


def require(kind: str) -> None:
    """TrackerError naming the extra to install when KIND's package is not importable here."""
    if importlib.util.find_spec(PACKAGES[kind]) is None:
        raise TrackerError(f"sending to {kind} needs its package: pip install 'evalkit[{kind}]'")


def with_run_ids(targets: Sequence[TrackerTarget], run_ids: Sequence[str]) -> list[TrackerTarget]:
    """TARGETS with the tracker run ids RUN_IDS give (``TRACKER=ID``, or a bare ID when one target is given)."""
    ids: dict[str, str] = {}
    for spec in run_ids:
        kind, eq, value = spec.partition("=")
        if not eq:
            if len(targets) != 1:
                raise TrackerError(f"--tracker-run-id {spec}: with several trackers, say which: TRACKER=ID")
            kind, value = targets[0].kind, spec
        if kind not in {t.kind for t in targets}:
            raise TrackerError(f"--tracker-run-id {spec}: {kind} is not a tracker the figures go to")
        ids[kind] = value
    return [TrackerTarget(t.kind, t.name, ids.get(t.kind, t.run_id)) for t in targets]


class TrackerRun(Protocol):
    """One run of a tracker, opened for an export. ``run_id`` and ``where`` name it for the user."""

    run_id: str
    where: str

    def sent_points(self, keys: Sequence[str]) -> set[tuple[str, int]]:
        """(key, step) of each point of KEYS the tracker run already holds."""

    def log_points(self, points: Sequence[Point]) -> None:
        """Send POINTS (each at its step)."""

    def log_params(self, params: Mapping[str, str]) -> list[str]:
        """Send the parameters not already there; notes about any it holds with another value."""

    def log_files(self, label: str, files: Mapping[str, "Path | str"]) -> bool:
        """Send FILES (name -> a path or the text) under LABEL; False when they were there already."""

    def log_samples(self, label: str, columns: list[str], rows: list[list[Any]]) -> bool:
        """Send a run's samples as a table under LABEL; False when it was there already."""

    def close(self) -> None:
        """End the export (a run evalkit made is marked finished; a training run is left as it was)."""


def read_ledger(folder: Path) -> dict[str, Any]:
    """The ledger in FOLDER ({} when there is none yet, or it cannot be read: nothing is known to be sent)."""
    from evalkit.core.store import parse_json

    try:
        doc = parse_json((folder / LEDGER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def write_ledger(folder: Path, doc: Mapping[str, Any]) -> None:
    """Write the ledger in FOLDER atomically."""
    from evalkit.core.store import write_json

    write_json(folder / LEDGER, dict(doc))


__all__ = ["LEDGER", "TrackerError", "TrackerRun", "TrackerTarget", "parse_target", "read_ledger", "require",
           "with_run_ids", "write_ledger"]
