"""Run-directory safety: names that become path parts, and a manifest read that names its file.

A run directory is ``<results-dir>/<task-folder>/<run-name>``. The two names
come from flags or from the served model's id, so each must be exactly one
plain path component: never empty, ``.`` or ``..``, never holding a path
separator or NUL, never absolute. Then nothing a run writes lands outside
``--results-dir``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

_SEPARATORS = tuple({"/", "\\", os.sep, os.altsep or "/"})


def check_path_component(name: str, what: str) -> str:
    """Return NAME when it is one plain relative path component; raise ValueError naming WHAT otherwise."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{what} must be a non-empty name")
    if name in (".", ".."):
        raise ValueError(f"{what} {name!r} is not allowed: it must name a folder inside the results directory")
    if any(sep in name for sep in _SEPARATORS) or "\0" in name:
        raise ValueError(f"{what} {name!r} must be a single folder name, without '/' or '\\' "
                         "(results always stay inside --results-dir)")
    return name


def run_dir_inside(results_dir: str | Path, task_folder: str, run_name: str) -> Path:
    """``results_dir / task_folder / run_name``, with both names checked (see check_path_component)."""
    return Path(results_dir) / check_path_component(task_folder, "task folder") / \
        check_path_component(run_name, "run name")


def read_manifest(path: str | Path) -> dict[str, Any]:
    """A run's manifest.json as a dict; a torn or foreign file is a ValueError naming the file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text (byte {exc.start}); the file is damaged") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); the file is torn or damaged") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: not a run manifest (a JSON object was expected)")
    return doc


def write_failure_message(exc: OSError, progress: Any) -> str:
    """One line for a run that could not write (read-only results, full disk): what failed and what was kept.

    PROGRESS is the run's RunProgress (its run_dir, total, resumed, done and errors).
    """
    where = exc.filename if exc.filename is not None else "results"
    reason = exc.strerror or type(exc).__name__
    run_dir = getattr(progress, "run_dir", None)
    if run_dir is None or not progress.total:
        return f"{where}: {reason}; nothing was written and no completion was requested"
    kept = progress.resumed + progress.done - progress.errors
    return (f"{where}: {reason}; kept {kept} of {progress.total} answered samples in {Path(run_dir) / 'samples.jsonl'} "
            "(complete lines only: a torn last line is cut on resume)")
