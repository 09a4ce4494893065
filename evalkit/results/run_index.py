"""An index of finished runs, so the leaderboard need not parse every samples.jsonl each time.

The index is a SQLite file in the results folder (``RESULTS/.evalkit-index.sqlite``). It is a
cache: the run directories stay the source of truth, and the index can be deleted at any time.
Per run directory (keyed by its path relative to the results folder) it holds what the
leaderboard reads of a run: the manifest, the scoring stamps of its samples (``scored_with``), its
datasets in first-seen order, and per (dataset, score) the counting samples' score dicts in item
order, the ids of the items with a value, and the dataset's failed requests.

Each entry carries a staleness key (samples.jsonl size and mtime_ns, manifest.json and
summary.json mtime_ns); a run whose key differs, a new run, and a damaged one are read from disk
(``rundir.load_run``), and finished ones are written back. Only complete runs with items and no live
writer are cached: a partial or running run is always read from disk. Runs no longer on disk drop
out. An unreadable or corrupt index file is removed and rebuilt; a results folder that cannot be
written to is simply read without an index. Writers take SQLite's write lock for the whole update,
so concurrent leaderboards do not corrupt the file (the later one waits, or reads from disk).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from evalkit.results.comparable import COMPLETE, run_status
from evalkit.run.rundir import MANIFEST, SAMPLES, SUMMARY, Run, load_run, parse_json, sample_score_dicts

INDEX_FILE = ".evalkit-index.sqlite"
SCHEMA_VERSION = 1
_BUSY_TIMEOUT_S = 10.0
CellData = tuple[list[Mapping[str, Any]], int, frozenset[str]]  # (score dicts, errors, ids with a value)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (key TEXT PRIMARY KEY, stamp TEXT NOT NULL, name TEXT NOT NULL,
    manifest TEXT, stamps TEXT NOT NULL, datasets TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cells (key TEXT NOT NULL, dataset TEXT NOT NULL, errors INTEGER NOT NULL,
    PRIMARY KEY (key, dataset));
CREATE TABLE IF NOT EXISTS scores (key TEXT NOT NULL, dataset TEXT NOT NULL, score TEXT NOT NULL,
    ids TEXT NOT NULL, dicts TEXT NOT NULL, PRIMARY KEY (key, dataset, score));
"""


@dataclass
class IndexedRun(Run):
    """A finished run read from the index: its manifest and names as ``Run`` has them, its datasets,
    and its cells fetched on demand (``cell``). ``samples`` is empty: nothing per sample is loaded."""

    datasets: list[str] = field(default_factory=list)
    stamps: list[str] = field(default_factory=list)
    fetch: Callable[[str, str], CellData] | None = field(default=None, repr=False, compare=False)

    def cell(self, dataset: str, score: str) -> CellData:
        """(the counting samples' score dicts of SCORE in item order, failed requests, ids of the
        items with a value) of DATASET."""
        assert self.fetch is not None
        return self.fetch(dataset, score)

    def items(self) -> Any:
        """Not held: an indexed run carries no samples (``cell_data`` reads its cells)."""
        raise NotImplementedError(f"{self.path}: an indexed run holds no samples; read it with runs.load_run")

    def stamp_samples(self) -> list[dict[str, str]]:
        """One stand-in sample per scoring stamp, what ``comparable.scoring_version`` reads."""
        return [{"scored_with": s} for s in self.stamps]


def cell_data(run: Run, dataset: str, score: str) -> CellData:
    """What the leaderboard needs of one run's DATASET for SCORE, from the index or from the samples."""
    if isinstance(run, IndexedRun):
        return run.cell(dataset, score)
    return _cells_of_samples([s for (d, _), s in run.items().items() if d == dataset], score)


def _cells_of_samples(samples: Sequence[Mapping[str, Any]], score: str) -> CellData:
    errors, columns = score_columns(samples)
    dicts, ids = columns.get(score, ([], []))
    return dicts, errors, frozenset(ids)


def score_columns(samples: Iterable[Mapping[str, Any]]
                  ) -> tuple[int, dict[str, tuple[list[Mapping[str, Any]], list[str]]]]:
    """(failed requests, {score: (the stored score dicts in sample order, ids of the samples whose
    dict has a value)}) of one dataset's counting samples, in one pass."""
    errors = 0
    columns: dict[str, tuple[list[Mapping[str, Any]], list[str]]] = {}
    for sample in samples:
        errors += 1 if sample.get("error") else 0
        for score, stored in sample_score_dicts(sample).items():
            dicts, ids = columns.setdefault(score, ([], []))
            dicts.append(stored)
            if stored.get("value") is not None:
                ids.append(str(sample["id"]))
    return errors, columns


def staleness_key(run_dir: Path) -> str | None:
    """samples.jsonl size and mtime_ns, manifest.json and summary.json mtime_ns ("-" where absent)."""
    try:
        st = (run_dir / SAMPLES).stat()
    except OSError:
        return None
    parts = [str(st.st_size), str(st.st_mtime_ns)]
    for name in (MANIFEST, SUMMARY):
        try:
            parts.append(str((run_dir / name).stat().st_mtime_ns))
        except OSError:
            parts.append("-")
    return ":".join(parts)


def read_summary(run_dir: Path) -> Any:
    """RUN_DIR's summary.json, parsed; None when it is missing or unreadable (a run still going)."""
    try:
        return parse_json((run_dir / SUMMARY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def cacheable(run: Run) -> bool:
    """A run directory that is finished: complete by its manifest and summary, no live writer, items."""
    if not run.path.is_dir() or run.live_writer is not None or not run.items():
        return False
    summary = read_summary(run.path)
    return run_status(run.manifest, summary if isinstance(summary, dict) else None) == COMPLETE


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version not in (0, SCHEMA_VERSION):
        raise sqlite3.DatabaseError(f"{path}: index schema {version}, not {SCHEMA_VERSION}")
    db.executescript(_SCHEMA)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    db.execute("SELECT count(*) FROM runs").fetchone()  # a damaged file fails here or above
    return db


def open_index(root: Path) -> sqlite3.Connection | None:
    """The index of ROOT, created if missing and rebuilt if corrupt; None where it cannot be had
    (a read-only folder, say): then the caller reads every run from disk."""
    path = root / INDEX_FILE
    for attempt in range(2):
        try:
            return _connect(path)
        except sqlite3.DatabaseError:
            if attempt:
                return None
            try:  # a corrupt or foreign file: the index is only a cache, start it again
                path.unlink()
                for suffix in ("-journal", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
            except OSError:
                return None
    return None


def _fetcher(db: sqlite3.Connection, key: str, run_dir: Path) -> Callable[[str, str], CellData]:
    def fetch(dataset: str, score: str) -> CellData:
        try:
            errors = db.execute("SELECT errors FROM cells WHERE key=? AND dataset=?", (key, dataset)).fetchone()
            row = db.execute("SELECT ids, dicts FROM scores WHERE key=? AND dataset=? AND score=?",
                             (key, dataset, score)).fetchone()
            if errors is None:
                raise sqlite3.DatabaseError(f"no cell {key} / {dataset}")
        except sqlite3.Error:  # the index went bad under us: the run directory answers
            return cell_data(load_run(run_dir), dataset, score)
        if row is None:
            return [], int(errors[0]), frozenset()
        return json.loads(row[1]), int(errors[0]), frozenset(json.loads(row[0]))
    return fetch


def _write(db: sqlite3.Connection, key: str, stamp: str, run: Run) -> None:
    datasets: dict[str, list[Mapping[str, Any]]] = {}
    for (dataset, _), sample in run.items().items():
        datasets.setdefault(dataset, []).append(sample)
    stamps = sorted({str(s["scored_with"]) for s in run.samples if s.get("scored_with")})
    db.execute("INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?)",
               (key, stamp, run.name, None if run.manifest is None else json.dumps(run.manifest),
                json.dumps(stamps), json.dumps(list(datasets))))
    for dataset, samples in datasets.items():
        errors, per_score = score_columns(samples)
        db.execute("INSERT OR REPLACE INTO cells VALUES (?, ?, ?)", (key, dataset, errors))
        db.executemany("INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?, ?)",
                       [(key, dataset, score, json.dumps(ids), json.dumps(dicts))
                        for score, (dicts, ids) in per_score.items()])


def _drop(db: sqlite3.Connection, keys: Iterable[str]) -> None:
    for key in keys:
        for table in ("runs", "cells", "scores"):
            db.execute(f"DELETE FROM {table} WHERE key=?", (key,))


def load_runs_indexed(root: str | Path, run_dirs: Sequence[Path]) -> tuple[list[Run], list[str]]:
    """Each of RUN_DIRS (run directories under ROOT) as a Run: from the index where its entry is fresh,
    else read from disk (and indexed if finished). Damaged runs are left out with the reason naming
    the file, as ``leaderboard.load_runs_skipping_damaged`` does."""
    root = Path(root)
    db = open_index(root)
    cached: dict[str, tuple[Any, ...]] = {}
    if db is not None:
        try:
            cached = {r[0]: r for r in db.execute("SELECT key, stamp, name, manifest, stamps, datasets FROM runs")}
        except sqlite3.Error:
            db = None
    runs: list[Run] = []
    skipped: list[str] = []
    fresh: list[tuple[str, str, Run]] = []
    keys: set[str] = set()
    for run_dir in run_dirs:
        key = run_dir.relative_to(root).as_posix() if run_dir.is_relative_to(root) else str(run_dir)
        keys.add(key)
        stamp = staleness_key(run_dir)
        row = cached.get(key)
        if db is not None and row is not None and stamp is not None and row[1] == stamp:
            runs.append(IndexedRun(path=run_dir, name=row[2], samples=[],
                                   manifest=None if row[3] is None else json.loads(row[3]),
                                   stamps=json.loads(row[4]), datasets=json.loads(row[5]),
                                   fetch=_fetcher(db, key, run_dir)))
            continue
        try:
            run = load_run(run_dir)
        except ValueError as exc:
            skipped.append(str(exc))
            continue
        runs.append(run)
        if stamp is not None and cacheable(run) and staleness_key(run_dir) == stamp:
            fresh.append((key, stamp, run))
    if db is not None:
        _update(db, fresh, gone=set(cached) - keys)  # runs no longer on disk
    return runs, skipped


def _update(db: sqlite3.Connection, fresh: Sequence[tuple[str, str, Run]], gone: Iterable[str]) -> None:
    """Write the freshly read finished runs and drop the runs no longer on disk, in one transaction;
    an index that cannot be written (busy past the timeout, read-only) is left as it was."""
    gone = list(gone)
    if not fresh and not gone:
        return
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            _drop(db, [k for k, _, _ in fresh] + gone)
            for key, stamp, run in fresh:
                _write(db, key, stamp, run)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    except sqlite3.Error:
        pass  # a cache that could not be updated: this leaderboard was read from disk all the same
