"""What a results folder holds, as the view lists it: runs, sweeps, and safe lookups by key.

A run's key is its folder relative to the results folder (``loopback/run-a``). Every lookup
goes through ``Catalog.run_dir`` / ``Catalog.sweep_dir``, which accept only keys of folders
found under the results folder whose real path (symlinks followed) stays inside it, so no
request can reach outside, whatever ``..``, encoding or link it tries.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from evalkit.core.lock import live_holder
from evalkit.run.rundir import find_runs
from evalkit.core.store import MANIFEST, SAMPLES, SUMMARY
from evalkit.web.study.db import STUDY_DB, study_progress
from evalkit.sweep.state import STATE_FILE

SWEEPS_FOLDER = "sweeps"  # sweep run's default --sweep-dir is RESULTS_DIR/sweeps/NAME


@dataclass(frozen=True)
class RunEntry:
    """One run as the home page lists it (read from its manifest and summary only)."""

    key: str
    model: str
    checkpoint: str
    benchmarks: list[str]
    prompt: str
    started_at: str
    status: str
    live: bool
    scores: dict[str, float | None] = field(default_factory=dict)  # dataset -> its summary's headline

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "model": self.model, "checkpoint": self.checkpoint,
                "benchmarks": self.benchmarks, "prompt": self.prompt, "started_at": self.started_at,
                "status": self.status, "live": self.live, "scores": self.scores,
                "score": next((v for v in self.scores.values() if v is not None), None)}


def json_file(path: Path) -> dict[str, Any]:
    """The JSON object in PATH; {} when it is missing, unreadable, or not an object (a run being written)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _checkpoint_name(manifest: Mapping[str, Any]) -> str:
    ck = manifest.get("checkpoint")
    if isinstance(ck, Mapping):
        return str(ck.get("step") or ck.get("path") or ck.get("name") or "")
    if ck:
        return str(ck)
    server = manifest.get("server")
    if isinstance(server, Mapping) and isinstance(server.get("checkpoint"), Mapping):
        return str(server["checkpoint"].get("sha256", ""))[:12]
    return ""


def headline_scores(summary: Mapping[str, Any]) -> dict[str, float | None]:
    """Per dataset of SUMMARY (summary.json), the figure its table leads with: accuracy, else the mean
    of its first score."""
    out: dict[str, float | None] = {}
    for name, cell in (summary.get("datasets") or {}).items():
        if not isinstance(cell, Mapping):
            continue
        value = cell.get("accuracy")
        if value is None:
            scores = cell.get("scores") or {}
            first = next(iter(scores.values()), {}) if isinstance(scores, Mapping) else {}
            value = first.get("mean") if isinstance(first, Mapping) else None
        out[str(name)] = value if isinstance(value, (int, float)) else None
    return out


def run_entry(root: Path, run_dir: Path) -> RunEntry:
    """RUN_DIR's row: names from its manifest, figures from its summary, live when its lock is held."""
    manifest = json_file(run_dir / MANIFEST)
    summary = json_file(run_dir / SUMMARY)
    live = live_holder(run_dir) is not None
    benchmarks = [Path(str(d.get("path", ""))).stem for d in manifest.get("data") or [] if isinstance(d, Mapping)]
    prompt = manifest.get("prompt")
    return RunEntry(
        key=run_dir.relative_to(root).as_posix(), model=str(manifest.get("model") or run_dir.name),
        checkpoint=_checkpoint_name(manifest),
        benchmarks=benchmarks or list(headline_scores(summary)),
        prompt=str(prompt.get("name") if isinstance(prompt, Mapping) else prompt or ""),
        started_at=str(manifest.get("started_at") or ""),
        status="running" if live else str(manifest.get("status") or ("complete" if summary.get("complete") else "")),
        live=live, scores=headline_scores(summary))


class Catalog:
    """The runs and sweeps under one results folder, looked up only by the keys it lists."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise FileNotFoundError(f"{root}: not a directory (the results folder to view)")

    def _inside(self, path: Path) -> bool:
        try:
            return path.resolve().is_relative_to(self.root)
        except OSError:
            return False

    def run_dirs(self) -> list[Path]:
        """Every run directory under the results folder that really lies inside it."""
        return [p for p in find_runs(self.root) if self._inside(p)]

    def runs(self) -> list[RunEntry]:
        """Every run's row, newest first."""
        entries = [run_entry(self.root, p) for p in self.run_dirs()]
        return sorted(entries, key=lambda e: e.started_at, reverse=True)

    def run_dir(self, key: str) -> Path | None:
        """The run directory whose key is KEY, else None (unknown, outside, or not a run).

        Resolved directly, not by listing the folder (a live page asks every second): a key of plain
        names whose real path stays inside the results folder and holds a samples file."""
        parts = key.strip("/").split("/")
        if not key.strip("/") or any(part in ("", ".", "..") for part in parts):
            return None
        candidate = self.root.joinpath(*parts)
        if not self._inside(candidate) or not (candidate / SAMPLES).is_file():
            return None
        return candidate

    def sweep_dirs(self) -> dict[str, Path]:
        """Sweep name -> its state folder, for the sweeps kept in RESULTS/sweeps/ (the default place)."""
        folder = self.root / SWEEPS_FOLDER
        if not folder.is_dir():
            return {}
        return {p.parent.name: p.parent for p in sorted(folder.glob(f"*/{STATE_FILE}")) if self._inside(p)}

    def studies(self, studies_dir: str | Path) -> list[dict[str, Any]]:
        """Each rating study in STUDIES_DIR (``evalkit study create``'s folder): its name and progress."""
        out = []
        for path in sorted(Path(studies_dir).glob(f"*/{STUDY_DB}")):
            try:
                out.append({"name": path.parent.name, **study_progress(path)})
            except sqlite3.Error as exc:
                out.append({"name": path.parent.name, "error": f"{path}: {exc}"})
        return out

    def sweep_dir(self, name: str) -> Path | None:
        """The state folder of sweep NAME, else None."""
        return self.sweep_dirs().get(name)
