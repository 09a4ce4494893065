"""The file store: run directories, append-only samples, summary and manifest.

A run directory is ``results/<task-folder>/<run-name>/`` holding
``samples.jsonl`` (one SampleRecord a line, appended and flushed as each
sample finishes), ``summary.json`` and ``manifest.json``, and while a run is
unfinished ``generations.jsonl`` and ``scores.jsonl``. The file names are here, once;
this module reads and appends JSON lines at the byte level (``iter_numbered``,
``SampleWriter``, ``settle_torn_tail``), and ``evalkit.core.journal`` is the one journal
convention the three JSONL files follow on top of it.
"""

from __future__ import annotations

import gc
import json
import os
import re
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

# Lone surrogates (a "\\ud800" escape in a server's or a file's JSON) cannot be encoded as
# UTF-8; written as backslash escapes inside JSON strings they read back as the same text.
_ERRORS = "backslashreplace"

from evalkit.config import MANIFEST, SAMPLES  # noqa: E402,F401 (their home: the names callers compare with)

SUMMARY = "summary.json"
GENERATIONS = "generations.jsonl"  # the journals of an unfinished run (evalkit.core.journal)
SCORES = "scores.jsonl"


# Input documents (benchmark files, suites, rubrics, generation logs, flags) nested deeper than
# this are refused: no real record comes near it, and Python's parser fails with a RecursionError
# near 1,000 levels (less when called from deep in the stack), as later writers of the data could.
MAX_JSON_DEPTH = 100
_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def _too_deep_at(text: str, max_depth: int) -> int | None:
    """Offset of the first bracket of TEXT nested deeper than MAX_DEPTH (strings skipped), or None."""
    depth = 0
    for match in _JSON_TOKEN.finditer(text):
        char = text[match.start()]
        if char in "[{":
            depth += 1
            if depth > max_depth:
                return match.start()
        elif char in "]}":
            depth -= 1
    return None


def parse_json(text: str | bytes, *, max_depth: int | None = MAX_JSON_DEPTH) -> Any:
    """``json.loads(TEXT)``, where nesting deeper than MAX_DEPTH levels (None: as deep as the parser
    goes) is a ``json.JSONDecodeError`` at the bracket that goes too deep, never a RecursionError.

    The parsed value's containers are walked (without recursion) only when TEXT has more than
    MAX_DEPTH opening brackets, so a flat record costs two counts; the text is scanned for the
    place only when it is too deep.
    """
    try:
        value = json.loads(text)
    except RecursionError:
        doc = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        what = "nested too deep for the JSON parser" if max_depth is None else f"nested more than {max_depth} levels deep"
        raise json.JSONDecodeError(what, doc, _too_deep_at(doc, max_depth or 500) or 0) from None
    if max_depth is not None and isinstance(value, (dict, list)):
        opens = text.count(b"[") + text.count(b"{") if isinstance(text, bytes) else text.count("[") + text.count("{")
        if opens > max_depth and _deeper_than(value, max_depth):
            doc = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
            raise json.JSONDecodeError(f"nested more than {max_depth} levels deep", doc,
                                       _too_deep_at(doc, max_depth) or 0)
    return value


def _deeper_than(value: Any, max_depth: int) -> bool:
    """True when containers in VALUE nest more than MAX_DEPTH levels (VALUE itself is level 1)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


# Run directories whose lock this process holds (evalkit.core.lock registers each): every write into one
# first asks its lock whether it is still this process's, so a writer whose lock was taken over
# (it stalled past the stale age, say) stops before its next write instead of writing beside the new holder.
_WRITE_GUARDS: dict[str, Callable[[], None]] = {}


def guard_writes(directory: str | Path, check: Callable[[], None]) -> Callable[[], None]:
    """Have every write into DIRECTORY (JSONL appends, ``write_json``, ``write_jsonl``) call CHECK first,
    which raises to stop it; returns the function that removes the guard."""
    key = os.path.realpath(directory)
    _WRITE_GUARDS[key] = check

    def unguard() -> None:
        if _WRITE_GUARDS.get(key) is check:
            del _WRITE_GUARDS[key]
    return unguard


def check_writes(path: str | Path, *, directory_key: str | None = None) -> None:
    """Before writing PATH: its directory's guard (``guard_writes``), if it has one, which raises to stop the write.
    DIRECTORY_KEY is the directory's real path when the caller knows it (a writer appending many lines)."""
    if not _WRITE_GUARDS:
        return
    check = _WRITE_GUARDS.get(directory_key or os.path.realpath(os.path.dirname(os.path.abspath(path))))
    if check is not None:
        check()


def samples_path(run: str | Path) -> Path:
    """The samples file of RUN, which is a run directory or a samples file itself."""
    run = Path(run)
    return run / SAMPLES if run.is_dir() else run


def iter_numbered(path: str | Path, *, max_depth: int | None = None,
                  on_torn: Callable[[int, int], None] | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """Stream (line number, record) from a JSONL file, one line in memory at a time.

    A last line without its newline is kept when it parses and dropped when it
    does not (a torn write of a killed run; ON_TORN(line number, bytes) hears of it);
    a malformed line anywhere else (one nested deeper than MAX_DEPTH included, see
    ``parse_json``) is an error naming the file and line. A missing file yields nothing.
    """
    path = Path(path)
    if not path.exists():
        return
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                record = parse_json(raw, max_depth=max_depth)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                if not raw.endswith(b"\n"):
                    if on_torn is not None:
                        on_torn(lineno, len(raw))
                    return  # torn final write: dropped, it will be redone on resume
                why = exc.msg if isinstance(exc, json.JSONDecodeError) else f"not UTF-8 at byte {exc.start + 1}"
                raise ValueError(f"{path}:{lineno}: not valid JSON ({why})") from None
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
    check_writes(path)
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
    check_writes(path)
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
    """Appends records to a JSONL file, one line each, flushed at once (the append side of a journal).

    Durability: every line is flushed as it is written, so a killed process loses nothing it
    wrote; the file is fsynced when the writer closes and, with SYNC_EVERY_S, at most that many
    seconds after the last fsync as lines are written (what a power loss can cost).
    A torn last line left by a killed run is settled when the writer opens the file, so later
    appends start on a clean line: one that parses is kept (given its newline, as readers keep
    it), one that does not is cut off and ON_TORN(line number, bytes) hears of it.
    """

    def __init__(self, path: str | Path, *, sync_every_s: float | None = None,
                 on_torn: Callable[[int, int], None] | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._guard_key = os.path.realpath(self.path.parent)  # see check_writes
        check_writes(self.path, directory_key=self._guard_key)
        torn = settle_torn_tail(self.path)
        if torn is not None and on_torn is not None:
            on_torn(*torn)
        self._fh = open(self.path, "a", encoding="utf-8", errors=_ERRORS)
        self._failed = False  # a write failed: closing cannot flush either, and must not mask that error
        self.sync_every_s = sync_every_s
        self._synced = time.monotonic()

    def write(self, sample: dict[str, Any]) -> None:
        check_writes(self.path, directory_key=self._guard_key)
        try:
            self._fh.write(json.dumps(sample, ensure_ascii=False) + "\n")
            self._fh.flush()
            if self.sync_every_s is not None and time.monotonic() - self._synced >= self.sync_every_s:
                os.fsync(self._fh.fileno())
                self._synced = time.monotonic()
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


_TAIL_BLOCK = 1 << 16


def settle_torn_tail(path: Path) -> tuple[int, int] | None:
    """Make PATH end on a complete line: a last line without its newline is completed when it
    parses and cut off when it does not. Returns (its line number, its bytes) when it was cut.
    Only the tail is read, and the lines are counted only when one is cut."""
    if not path.exists():
        return None
    size = path.stat().st_size
    if size == 0:
        return None
    with open(path, "rb+") as fh:
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return None
        start = size
        while start > 0:  # find the start of the last line, a block at a time from the end
            begin = max(0, start - _TAIL_BLOCK)
            fh.seek(begin)
            cut = fh.read(start - begin).rfind(b"\n")
            if cut >= 0:
                start = begin + cut + 1
                break
            start = begin
        fh.seek(start)
        tail = fh.read()
        try:
            parse_json(tail, max_depth=None)
        except (json.JSONDecodeError, UnicodeDecodeError):
            fh.truncate(start)
            return _lines_before(fh, start) + 1, len(tail)
        fh.seek(size)
        fh.write(b"\n")  # a complete record whose newline was not written: kept, as readers keep it
        return None


def _lines_before(fh: Any, end: int) -> int:
    fh.seek(0)
    n, left = 0, end
    while left > 0:
        block = fh.read(min(left, 1 << 20))
        if not block:
            break
        n += block.count(b"\n")
        left -= len(block)
    return n
