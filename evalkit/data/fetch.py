"""Fetch registered benchmark files, verified by sha256.

A file comes from its public origin (the registry URL), from a mirror URL
(``http(s)://host/dir``, the file's registry path appended) or from a mirror
directory. It is written to a temporary file beside the destination and
moved into place only when its sha256 matches the registry, so a tampered or
truncated copy never replaces a good file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable

from evalkit import __version__
from evalkit.data.registry import DEFAULT_DATA_DIR, Benchmark, bundled_dir, get_benchmark
from evalkit.core.errors import EvalkitError, UnreachableError

_CHUNK = 1 << 20


class FetchError(EvalkitError, RuntimeError):
    """A file that could not be fetched, or whose checksum did not match."""


class OriginUnreachable(FetchError, UnreachableError):
    """An http(s) origin did not answer or refused the file (offline, no route, HTTP error)."""


@dataclass(frozen=True)
class FetchResult:
    """What happened to one file: ``fetched``, ``present`` (already good) or ``replaced``."""

    name: str
    path: Path
    status: str
    source: str
    sha256: str


def sha256_file(path: str | Path) -> str:
    """The sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _origin(bench: Benchmark, source: str | None) -> str:
    """Where to read BENCH from: a URL or a local file path.

    evalkit's own files (``local`` entries) come from the bundled copy unless
    the mirror has them too.
    """
    if source is None:
        if bench.local:
            return str(bundled_dir("eval_data") / bench.file)
        if not bench.url:
            raise FetchError(f"{bench.name}: no public origin is registered for {bench.file} "
                             "(it is a derived file); fetch it from a mirror with --from DIR_OR_URL")
        return bench.url
    if _is_url(source):
        return source.rstrip("/") + "/" + bench.file
    mirror = Path(source)
    if not mirror.is_dir():
        raise FetchError(f"mirror {mirror} is not a directory (give a folder or an http(s) URL)")
    for candidate in (mirror / bench.file, mirror / bench.file_name):
        if candidate.is_file():
            return str(candidate)
    if bench.local:
        return _origin(bench, None)  # evalkit's own files ship with it
    raise FetchError(f"{bench.name}: {bench.file} is not in mirror {mirror}")


def _open(origin: str, timeout: float) -> BinaryIO:
    if _is_url(origin):
        request = urllib.request.Request(origin, headers={"User-Agent": f"evalkit/{__version__}"})
        try:
            return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (http/https only)
        except urllib.error.HTTPError as exc:
            raise OriginUnreachable(f"{origin}: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise OriginUnreachable(f"{origin}: {getattr(exc, 'reason', exc)}") from None
    try:
        return open(origin, "rb")
    except OSError as exc:
        raise FetchError(f"{origin}: {exc.strerror or exc}") from None


def fetch_file(
    bench: Benchmark, *, source: str | None = None, data_dir: str | Path = DEFAULT_DATA_DIR,
    timeout: float = 60.0,
) -> FetchResult:
    """Put BENCH's file under DATA_DIR, verified; see the module docstring for SOURCE."""
    dest = bench.local_path(data_dir)
    had_file = dest.is_file()
    if had_file and sha256_file(dest) == bench.sha256:
        return FetchResult(bench.name, dest, "present", str(dest), bench.sha256)
    origin = _origin(bench, source)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, _open(origin, timeout) as src:
            try:
                for chunk in iter(lambda: src.read(_CHUNK), b""):
                    h.update(chunk)
                    out.write(chunk)
            except OSError as exc:
                raise FetchError(f"{origin}: read failed: {exc}") from None
        got = h.hexdigest()
        if got != bench.sha256:
            kept = f"; the existing {dest} was left as it was" if had_file else ""
            raise FetchError(f"{bench.name}: checksum mismatch for {origin}: expected sha256 "
                             f"{bench.sha256}, got {got}; refused{kept}")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return FetchResult(bench.name, dest, "replaced" if had_file else "fetched", origin, got)


def plan(names: Iterable[str]) -> list[Benchmark]:
    """The registry entries to fetch for NAMES, each after the files it is read with."""
    ordered: list[Benchmark] = []
    seen: set[str] = set()

    def add(name: str) -> None:
        try:
            bench = get_benchmark(name)
        except KeyError as exc:
            raise FetchError(exc.args[0]) from None
        if bench.name in seen:
            return
        seen.add(bench.name)
        for required in bench.requires:
            add(required)
        ordered.append(bench)

    for name in names:
        add(name)
    return ordered


def fetch(
    names: Iterable[str], *, source: str | None = None, data_dir: str | Path = DEFAULT_DATA_DIR,
    timeout: float = 60.0,
) -> list[FetchResult]:
    """Fetch the named benchmarks and the files they are read with (``requires``).

    Stops at the first failure, raising FetchError; files already fetched stay.
    """
    return [fetch_file(b, source=source, data_dir=data_dir, timeout=timeout) for b in plan(names)]
