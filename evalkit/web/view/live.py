"""A run followed while it is written: its samples read as they are appended, its figures so far.

``LiveRun`` keeps the byte offset it has read to, and on each look reads only the complete
lines appended since (a line still being written waits for its newline). The figures are made
by the same ``build_report`` that ``evalkit report`` runs, over the samples read so far, so the
page's last figures are the report's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from evalkit.core.lock import live_holder
from evalkit.results.report import build_report
from evalkit.run.rundir import Run, choice_verdict, invocation_totals, item_samples
from evalkit.core.store import MANIFEST, SAMPLES, parse_json
from evalkit.web.view.catalog import json_file


def _seconds_since(stamp: str | None) -> float | None:
    if not stamp:
        return None
    try:
        return max(0.0, time.time() - datetime.fromisoformat(stamp).timestamp())
    except ValueError:
        return None


def _mtime_ns(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def _row_figures(row: Any) -> dict[str, Any]:
    scores = {name: {"mean": c.mean, "ci_low": c.ci_low, "ci_high": c.ci_high, "n": c.n}
              for name, c in row.scores.items()}
    return {"dataset": row.dataset, "n": row.n, "correct": row.correct, "accuracy": row.accuracy,
            "ci_low": row.ci_low, "ci_high": row.ci_high, "unparsed": row.unparsed, "errors": row.errors,
            "scores": scores}


@dataclass
class LiveRun:
    """One run directory as read so far; ``refresh`` reads what was appended since the last look."""

    run_dir: Path
    offset: int = 0
    samples: list[dict[str, Any]] = field(default_factory=list)
    _figures: dict[str, Any] | None = field(default=None, repr=False)
    _stamp: tuple[Any, ...] = field(default=(), repr=False)

    def refresh(self) -> bool:
        """Read the complete lines appended since the last look; whether any were."""
        path = self.run_dir / SAMPLES
        try:
            with open(path, "rb") as fh:
                if fh.seek(0, 2) < self.offset:  # the file was replaced (a rescore): read it anew
                    self.offset, self.samples = 0, []
                fh.seek(self.offset)
                chunk = fh.read()
        except OSError:
            return False
        end = chunk.rfind(b"\n") + 1  # a last line without its newline is still being written
        if end == 0:
            return False
        for line in chunk[:end].splitlines():
            if line.strip():
                record = parse_json(line)
                if isinstance(record, dict) and "dataset" in record and "id" in record:
                    record.pop("prompt", None)  # the text sent, often the largest field: no page shows it
                    self.samples.append(record)
        self.offset += end
        self._figures = None
        return True

    def manifest(self) -> dict[str, Any]:
        return json_file(self.run_dir / MANIFEST)

    def figures(self) -> dict[str, Any]:
        """Progress (items done of total, errors, rate, ETA) and the report's rows so far."""
        self.refresh()
        holder = live_holder(self.run_dir)
        stamp = (self.offset, _mtime_ns(self.run_dir / MANIFEST), holder is None)
        if self._figures is not None and stamp == self._stamp:
            return self._figures  # nothing new since the last look: the same figures
        self._stamp = stamp
        manifest = self.manifest()
        run = Run(path=self.run_dir, name=self.run_dir.name, samples=list(self.samples), manifest=manifest,
                  live_writer=holder)
        items = item_samples(self.samples)
        rows = [_row_figures(r) for r in build_report([run]).rows] if items else []
        total = manifest.get("total") if isinstance(manifest.get("total"), int) else None
        done = len(items)
        errors = sum(1 for s in items.values() if s.get("error"))
        elapsed = _seconds_since(manifest.get("started_at"))
        rate = done / elapsed if elapsed and done else None
        totals = invocation_totals(manifest) or {}
        self._figures = {
            "live": holder is not None, "status": "running" if holder else manifest.get("status"),
            "writer": holder.describe() if holder else None, "total": total, "done": done, "errors": errors,
            "retries": totals.get("retries"), "rate_per_s": rate, "started_at": manifest.get("started_at"),
            "eta_s": (total - done) / rate if rate and total is not None and holder else None,
            "samples": len(self.samples), "rows": rows,
            "correct_so_far": sum(1 for s in items.values() if choice_verdict(s) is True),
        }
        return self._figures


class LiveRuns:
    """The runs being followed, by directory; the oldest dropped past a few, to bound memory."""

    def __init__(self, keep: int = 4) -> None:
        self.keep = keep
        self.runs: dict[Path, LiveRun] = {}

    def get(self, run_dir: Path) -> LiveRun:
        live = self.runs.pop(run_dir, None) or LiveRun(run_dir)
        self.runs[run_dir] = live  # most recently used last
        while len(self.runs) > self.keep:
            self.runs.pop(next(iter(self.runs)))
        return live
