"""The file store: run directories, append-only samples, summary and manifest.

A run directory is ``results/<task-folder>/<run-name>/`` holding
``samples.jsonl`` (one SampleRecord a line, appended and flushed as each
sample finishes), ``summary.json`` and ``manifest.json``.
"""

from __future__ import annotations

import gc
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

# Lone surrogates (a "\\ud800" escape in a server's or a file's JSON) cannot be encoded as
# UTF-8; written as backslash escapes inside JSON strings they read back as the same text.
_ERRORS = "backslashreplace"

SAMPLES = "samples.jsonl"
SUMMARY = "summary.json"
MANIFEST = "manifest.json"


def samples_path(run: str | Path) -> Path:
    """The samples file of RUN, which is a run directory or a samples file itself."""
    run = Path(run)
    return run / SAMPLES if run.is_dir() else run


def iter_numbered(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Stream (line number, record) from a JSONL file, one line in memory at a time.

    A last line without its newline is kept when it parses and dropped when it
    does not (a torn write of a killed run); a malformed line anywhere else is an
    error naming the file and line. A missing file yields nothing.
    """
    path = Path(path)
    if not path.exists():
        return
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except json.JSONDecodeError as exc:
                if not raw.endswith(b"\n"):
                    return  # torn final write: dropped, it will be redone on resume
                raise ValueError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            yield lineno, record


def iter_samples(path: str | Path) -> Iterator[dict[str, Any]]:
    """Yield each complete sample of a run directory or samples file (see ``iter_numbered``)."""
    for _, record in iter_numbered(samples_path(path)):
        yield record


@contextmanager
def paused_gc() -> Iterator[None]:
    """Hold off the cyclic garbage collector while many acyclic records are built.

    Reading or scoring a large run makes hundreds of thousands of dicts, and every few
    hundred of them start a collection; the full ones walk every live container (all the
    samples already read). That cost a third of the time of rescoring 100,000 samples
    (bench/bench_extract.py). Sample dicts hold no reference cycles, so reference counting
    frees them as before; the collector is switched back on when the block ends.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def read_samples(path: str | Path) -> list[dict[str, Any]]:
    """All complete samples of a run directory or samples file."""
    with paused_gc():
        return list(iter_samples(path))


def read_json(path: str | Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def write_json(path: str | Path, data: Any) -> None:
    """Write JSON atomically (temp file + rename), so a reader never sees half a file.

    On failure (a full disk, say) the old file stays as it was and no temp file is left.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8", errors=_ERRORS) as fh:
            json.dump(data, fh, indent=2, ensure_ascii=False, sort_keys=False)
            fh.write("\n")
        os.replace(tmp, path)
    except OSError as exc:
        _remove_quietly(tmp)
        raise _naming(exc, path) from None
    except BaseException:
        _remove_quietly(tmp)
        raise


def _naming(exc: OSError, path: Path) -> OSError:
    """EXC naming PATH: a failed write on an open file names no file (a full disk, say), and the
    temp file of an atomic write is not the file the user knows."""
    if exc.filename is not None and str(exc.filename) != str(path.with_name(path.name + ".tmp")):
        return exc
    return OSError(exc.errno, exc.strerror, str(path))


def encode_line(record: dict[str, Any]) -> bytes:
    """One JSON line as UTF-8 bytes, lone surrogates written as JSON escapes (as SampleWriter does)."""
    return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8", _ERRORS)


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def write_jsonl(path: str | Path, records: Iterable[dict[str, Any]]) -> None:
    """Write RECORDS as JSON lines atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8", errors=_ERRORS) as fh:
            for record in records:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        _remove_quietly(tmp)
        raise _naming(exc, path) from None
    except BaseException:
        _remove_quietly(tmp)
        raise


class SampleWriter:
    """Appends samples to a samples file, one line each, flushed at once.

    A torn last line left by a killed run is cut off when the writer opens the
    file, so later appends start on a clean line.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _truncate_torn_tail(self.path)
        self._fh = open(self.path, "a", encoding="utf-8", errors=_ERRORS)
        self._failed = False  # a write failed: closing cannot flush either, and must not mask that error

    def write(self, sample: dict[str, Any]) -> None:
        try:
            self._fh.write(json.dumps(sample, ensure_ascii=False) + "\n")
            self._fh.flush()
        except OSError as exc:
            self._failed = True
            # A failed write on an open file names no file; say which one (a full disk, say).
            raise OSError(exc.errno, exc.strerror, str(self.path)) from None

    def moved_away(self) -> bool:
        """True when the path no longer names the file this writer appends to (another process
        replaced or removed it): what is appended from then on is not in the file at the path."""
        try:
            mine, now = os.fstat(self._fh.fileno()), os.stat(self.path)
        except (OSError, ValueError):
            return True
        return (mine.st_dev, mine.st_ino) != (now.st_dev, now.st_ino)

    def write_many(self, samples: Iterable[dict[str, Any]]) -> None:
        for s in samples:
            self.write(s)

    def close(self) -> None:
        if not self._fh.closed:
            try:
                if not self._failed:
                    self._fh.flush()
                    os.fsync(self._fh.fileno())
            except OSError as exc:
                raise OSError(exc.errno, exc.strerror, str(self.path)) from None
            finally:
                try:
                    self._fh.close()
                except OSError:
                    pass  # the flush above already failed and says why

    def __enter__(self) -> "SampleWriter":
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        try:
            self.close()
        except OSError:
            if exc_type is None:
                raise
            # Already failing (a full disk, say): closing cannot flush either; keep the first error.


def _truncate_torn_tail(path: Path) -> None:
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as fh:
        data = fh.read()
        if data.endswith(b"\n"):
            return
        cut = data.rfind(b"\n") + 1  # 0 when the only line is torn
        fh.truncate(cut)
