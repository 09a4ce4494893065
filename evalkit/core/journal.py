"""Journals: the append-only JSONL files of a run directory, under one convention.

A run keeps three journals, each a ``JournalKind``:

- ``samples.jsonl`` (``SAMPLES``): one finished sample a line (a ``SampleRecord``);
- ``generations.jsonl`` (``GENERATIONS``): each generation of a multi-sample strategy as it
  arrives, while the run is unfinished;
- ``scores.jsonl`` (``scoring.stage.SCORES``): each sample's model-judge scores as they arrive,
  while the scoring pass is unfinished.

The convention, the same for all three:

- **envelope**: every line names what it is about with ``dataset``, ``id`` and ``index`` (the
  sample index, 0 when absent); a kind's ``key`` adds what else tells its records apart (the
  stage and generation number; the scoring fingerprint). The rest of the line is the record,
  with its fields as earlier versions wrote them (old readers keep working, and files written
  before this module load as they are).
- **append**: one line per record, flushed at once (a killed process loses nothing written);
  fsynced on close and at most ``sync_every_s`` seconds after the last fsync.
- **reading**: a last line without its newline is kept when it parses; one that does not (a
  write cut short by a kill) is dropped and reported as ``file:line`` (``TornLine``), and the
  writer cuts it before appending. A malformed line elsewhere is an error naming file and line.
- **which record counts**: per key, the last one, except that a record the kind does not call
  ``ok`` (a failed request, a judge that could not be reached) never replaces one it does.
- **resume**: ``Journal.done()`` (the records, for small journals) or ``LineIndex`` (line
  numbers only, for samples.jsonl, whose records are large) say what is already there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Hashable, Iterator, Mapping

from evalkit.core import store
from evalkit.core.store import SampleWriter, iter_numbered

SampleKey = tuple[str, str, int]


def sample_key(record: Mapping[str, Any]) -> SampleKey:
    """(dataset, id, index): the envelope of every journal line; what identifies one sample
    across lines, runs and resumes."""
    return (str(record["dataset"]), str(record["id"]), int(record.get("index") or 0))


def _always_ok(record: Mapping[str, Any]) -> bool:
    return True


@dataclass(frozen=True)
class JournalKind:
    """One journal's file name, its key (the envelope plus what tells its records apart), which
    of its records are ``ok`` (one that is not never replaces one that is), and its fsync policy."""

    file: str
    key: Callable[[Mapping[str, Any]], Hashable] = sample_key
    ok: Callable[[Mapping[str, Any]], bool] = _always_ok
    sync_every_s: float | None = 5.0


def _generation_key(record: Mapping[str, Any]) -> Hashable:
    return (*sample_key(record), int(record["stage"]), int(record["k"]))


def _sample_ok(record: Mapping[str, Any]) -> bool:
    return not record.get("error")


SAMPLES = JournalKind(store.SAMPLES, sample_key, _sample_ok)
GENERATIONS = JournalKind(store.GENERATIONS, _generation_key)


@dataclass(frozen=True)
class TornLine:
    """A last line cut short (a write of a killed process), dropped: where it was and its size."""

    path: Path
    line: int
    size: int

    def __str__(self) -> str:
        return (f"{self.path}:{self.line}: torn last line ({self.size} bytes, a write cut short) dropped; "
                "what it held is done again")


class Journal:
    """One journal file of KIND: read it (``records``, ``done``, ``index``), append to it (``writer``).

    A torn last line met while reading or cut when a writer opens the file is kept in ``torn``
    and reported to ON_TORN; without ON_TORN, one the writer cuts is logged as a warning of the
    ``evalkit`` logger (a line taken off the file is never silent). A run reports it among its
    notices: the writer cuts it before the run reads the file.
    """

    def __init__(self, path: str | Path, kind: JournalKind, *, on_torn: Callable[[TornLine], None] | None = None):
        self.path = Path(path)
        self.kind = kind
        self.on_torn = on_torn
        self.torn: TornLine | None = None

    @classmethod
    def in_run(cls, run_dir: str | Path, kind: JournalKind, *,
               on_torn: Callable[[TornLine], None] | None = None) -> "Journal":
        """The journal of KIND in the run directory RUN_DIR."""
        return cls(Path(run_dir) / kind.file, kind, on_torn=on_torn)

    def _torn(self, line: int, size: int) -> None:
        self.torn = TornLine(self.path, line, size)
        if self.on_torn is not None:
            self.on_torn(self.torn)

    def _cut(self, line: int, size: int) -> None:
        self._torn(line, size)
        if self.on_torn is None:  # a line is taken off the file: never silently
            logging.getLogger("evalkit").warning("%s", self.torn)

    def records(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """(line number, record) of every complete line, in order (a torn last line: ``torn``)."""
        return iter_numbered(self.path, on_torn=self._torn)

    def latest(self, keep: Callable[[Mapping[str, Any]], bool] | None = None) -> dict[Hashable, dict[str, Any]]:
        """The record that counts per key (among those KEEP accepts), in first-seen key order."""
        key, ok = self.kind.key, self.kind.ok
        out: dict[Hashable, dict[str, Any]] = {}
        for _, record in self.records():
            if keep is not None and not keep(record):
                continue
            k = key(record)
            old = out.get(k)
            if old is None or ok(record) or not ok(old):
                out[k] = record
        return out

    def done(self, keep: Callable[[Mapping[str, Any]], bool] | None = None) -> dict[Hashable, dict[str, Any]]:
        """What resuming takes as done: the record that counts per key, where it is ``ok``."""
        ok = self.kind.ok
        return {k: r for k, r in self.latest(keep).items() if ok(r)}

    def writer(self) -> SampleWriter:
        """A writer appending to the journal (its torn last line settled first), under the kind's fsync policy."""
        return SampleWriter(self.path, sync_every_s=self.kind.sync_every_s, on_torn=self._cut)

    def remove(self) -> None:
        """Delete the journal (what it held is in samples.jsonl now)."""
        self.path.unlink(missing_ok=True)


class LineIndex:
    """Which line of a journal holds the record that counts for each key, without the records.

    One small int per key (line number, ok and selected bits): about 0.2 kB per key, so memory
    stays flat in the size of the records. The rule is the journal's: a later line beats an
    earlier one, except that a line that is not ``ok`` never beats one that is. Keys can be
    *selected* (the ones a run covers); ``selected_records`` streams their counting lines.
    """

    _OK, _SELECTED = 2, 1

    def __init__(self, kind: JournalKind = SAMPLES) -> None:
        self.kind = kind
        self.best: dict[Hashable, int] = {}  # key -> lineno << 2 | ok << 1 | selected
        self.lines = 0

    def load(self, journal: Journal, on_record: Callable[[dict[str, Any]], None] | None = None) -> None:
        """Index the lines of JOURNAL; ON_RECORD sees each record as it is read."""
        key, ok = self.kind.key, self.kind.ok
        for lineno, record in journal.records():
            self.add(key(record), ok(record), lineno)
            if on_record is not None:
                on_record(record)
        self.lines = _count_lines(journal.path)

    def add(self, key: Hashable, ok: bool, lineno: int | None = None, selected: bool = False) -> None:
        """Note that line LINENO (default: the next line) holds a record of KEY."""
        if lineno is None:
            self.lines += 1
            lineno = self.lines
        old = self.best.get(key)
        if old is None:
            self.best[key] = lineno << 2 | ok * self._OK | selected * self._SELECTED
        elif ok or not old & self._OK:  # an ok record beats one that is not, later beats earlier
            self.best[key] = lineno << 2 | ok * self._OK | (selected or old & self._SELECTED)

    def done(self, key: Hashable) -> bool:
        """True when KEY has an ok record."""
        return bool(self.best.get(key, 0) & self._OK)

    def select(self, key: Hashable) -> None:
        if key in self.best:
            self.best[key] |= self._SELECTED

    def counting(self, lineno: int, record: Mapping[str, Any]) -> bool:
        """True when line LINENO holds the record that counts for its key (selected or not)."""
        v = self.best.get(self.kind.key(record))
        return v is not None and v >> 2 == lineno

    def selected_records(self, journal: Journal) -> Iterator[dict[str, Any]]:
        """Stream the records that count, for the selected keys."""
        key = self.kind.key
        for lineno, record in journal.records():
            v = self.best.get(key(record))
            if v is not None and v & self._SELECTED and v >> 2 == lineno:
                yield record


def _count_lines(path: Path) -> int:
    n = 0
    if path.exists():
        with open(path, "rb") as fh:
            for _ in fh:
                n += 1
    return n
