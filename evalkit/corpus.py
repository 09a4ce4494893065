"""Reading training corpora for the overlap analysis (the I/O edge of ``evalkit.overlap``).

A corpus is files or folders of them (searched recursively, hidden files skipped),
each plain text, JSONL (``.jsonl`` / ``.ndjson``) or one JSON document (``.json``),
optionally gzip (``.gz``) or zstd (``.zst``, needs the ``zstandard`` package)
compressed. Each file is read once, streaming, in chunks of ``chunk_bytes``; memory
is the benchmark index plus a few arrays per chunk, whatever the corpus size.

- Plain text: the file is one document; n-grams run across line breaks. A hit's
  location is the line where its first word is.
- JSONL: each line is a document; its text is the strings FIELD selects (default:
  every string in the record), each a segment that no n-gram crosses.
- JSON (one document, parsed whole): every string (or those FIELD selects) is a
  document; its location is its JSON path.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, Sequence

import numpy as np

from evalkit.config import OverlapSettings, field_default
from evalkit.overlap import (RECORD_BREAK, SEGMENT_BREAK, TEXT_TABLE, BenchmarkIndex, Scanner,
                             normalize_bytes, word_arrays)

CHUNK_BYTES = 4 << 20
_JSONL_SUFFIXES = {".jsonl", ".ndjson"}


class CorpusError(ValueError):
    """A training path that cannot be read (named in the message)."""


def train_files(paths: Sequence[str | Path]) -> list[Path]:
    """The files under PATHS (a folder: every non-hidden file below it, sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                out.extend(Path(root) / f for f in sorted(files) if not f.startswith("."))
        elif p.is_file():
            out.append(p)
        else:
            raise CorpusError(f"{p}: no such file or folder")
    return out


def _kind(path: Path) -> tuple[str, str]:
    """(compression, format) from the file name: ('gz'|'zst'|'', 'jsonl'|'json'|'text')."""
    suffixes = [s.lower() for s in path.suffixes]
    comp = suffixes.pop().lstrip(".") if suffixes and suffixes[-1] in (".gz", ".zst", ".zstd") else ""
    last = suffixes[-1] if suffixes else ""
    fmt = "jsonl" if last in _JSONL_SUFFIXES else "json" if last == ".json" else "text"
    return comp.replace("zstd", "zst"), fmt


def open_binary(path: Path) -> BinaryIO:
    """PATH opened for reading bytes, decompressed by its suffix."""
    comp, _ = _kind(path)
    if comp == "gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if comp == "zst":
        try:
            import zstandard
        except ImportError as e:  # pragma: no cover - depends on the install
            raise CorpusError(f"{path}: reading .zst needs the zstandard package "
                              "(pip install 'evalkit[overlap]')") from e
        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True))
    return open(path, "rb")


# ---------------------------------------------------------------------- field selection

_PATH_STEP = re.compile(r"\.([^.\[\]]+)|\[(\*|\d+)\]|\[['\"]([^'\"]+)['\"]\]")


def field_selector(spec: str | None) -> Callable[[Any], Iterator[str]]:
    """A function record -> its strings: every string (SPEC None), key SPEC, or a JSON path.

    A JSON path starts with ``$``: ``$.messages[*].content``, ``$.a.b``, ``$['k']``;
    ``*`` (also ``.*``) takes every member.
    """
    if spec is None:
        return all_strings
    if not spec.startswith("$"):
        steps: list[str | int] = [spec]
    else:
        steps = []
        rest = spec[1:]
        while rest:
            m = _PATH_STEP.match(rest)
            if not m:
                raise CorpusError(f"--field {spec!r}: cannot read the JSON path at {rest!r}")
            name, idx, quoted = m.groups()
            steps.append(quoted if quoted is not None else "*" if idx == "*" or name == "*"
                         else int(idx) if idx is not None else name)
            rest = rest[m.end():]

    def select(record: Any) -> Iterator[str]:
        nodes = [record]
        for step in steps:
            nodes = [c for n in nodes for c in _children(n, step)]
        for n in nodes:
            yield from all_strings(n)
    return select


def _children(node: Any, step: str | int) -> list[Any]:
    if step == "*":
        return list(node.values()) if isinstance(node, dict) else list(node) if isinstance(node, list) else []
    if isinstance(step, int):
        return [node[step]] if isinstance(node, list) and -len(node) <= step < len(node) else []
    return [node[step]] if isinstance(node, dict) and step in node else []


def all_strings(node: Any) -> Iterator[str]:
    """Every string value in NODE (dict values, list items, nested), in order."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for v in node.values():
            yield from all_strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from all_strings(v)


def _strings_with_paths(node: Any, path: str, key: str | None) -> Iterator[tuple[str, str]]:
    """(string, JSON path) for every string in NODE, or only those under a key named KEY."""
    if isinstance(node, str):
        if key is None:
            yield node, path or "$"
    elif isinstance(node, (dict, list)):
        pairs = node.items() if isinstance(node, dict) else enumerate(node)
        for k, v in pairs:
            sub = f"{path}.{k}" if isinstance(k, str) and re.fullmatch(r"\w+", k) else f"{path}[{k!r}]"
            if key is not None and k == key:
                for s in all_strings(v):
                    yield s, (sub if path else "$" + sub)
            else:
                yield from _strings_with_paths(v, sub if path else "$" + sub, key)


# ---------------------------------------------------------------------- scanning


@dataclass
class CorpusScan:
    """The outcome of scanning a corpus: the scanner (per-item results) and what went wrong."""

    scanner: Scanner
    files: list[str] = field(default_factory=list)
    bytes_read: int = 0
    problems: list[str] = field(default_factory=list)


def scan_corpus(index: BenchmarkIndex, paths: Sequence[str | Path], field_spec: str | None = None,
                chunk_bytes: int = CHUNK_BYTES) -> CorpusScan:
    """Scan every file under PATHS once against INDEX."""
    out = CorpusScan(Scanner(index))
    for path in train_files(paths):
        out.files.append(str(path))
        out.scanner.next_file()
        _, fmt = _kind(path)
        try:
            with open_binary(path) as fh:
                if fmt == "jsonl":
                    _scan_jsonl(out, fh, str(path), field_selector(field_spec), chunk_bytes)
                elif fmt == "json":
                    _scan_json(out, fh, str(path), field_spec)
                else:
                    _scan_text(out, fh, str(path), chunk_bytes)
        except (OSError, EOFError) as e:
            out.problems.append(f"{path}: cannot read: {e}")
        except Exception as e:  # zstd/gzip decoders raise their own error types
            if type(e).__module__.startswith(("zstandard", "gzip", "zlib")):
                out.problems.append(f"{path}: cannot read: {e}")
            else:
                raise
    return out


def _text_chunks(fh: BinaryIO, chunk_bytes: int) -> Iterator[bytes]:
    """Blocks of about CHUNK_BYTES that end after whitespace (a newline if one is near)."""
    rest = b""
    while True:
        block = fh.read(chunk_bytes)
        if not block:
            if rest:
                yield rest
            return
        data = rest + block
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            cut = max(data.rfind(b" "), data.rfind(b"\t")) + 1
        if cut == 0:  # no whitespace at all: keep reading (up to 16 blocks), then cut
            if len(data) < 16 * chunk_bytes:
                rest = data
                continue
            cut = len(data)
            while cut > len(data) - 4 and 0x80 <= data[cut - 1] <= 0xBF:
                cut -= 1  # not inside a UTF-8 character (a CJK character is a word)
            if cut > 0 and data[cut - 1] >= 0xC0:
                cut -= 1
        rest = data[cut:]
        yield data[:cut]


def _scan_text(out: CorpusScan, fh: BinaryIO, name: str, chunk_bytes: int) -> None:
    scanner, n = out.scanner, out.scanner.index.ngram
    carry, carried, base_line = b"", 0, 1
    for raw in _text_chunks(fh, chunk_bytes):
        out.bytes_read += len(raw)
        norm = carry + normalize_bytes(raw, TEXT_TABLE)
        w = word_arrays(norm)
        scanner.scan(w, name, _line_locator(norm, w, base_line), carried)
        keep = min(max(n - 1, 1), w.count)
        cut = w.offset(w.count - keep) if keep else len(norm)
        scanner.advance(w.count - keep)
        base_line += norm.count(b"\n", 0, cut)
        carry, carried = norm[cut:], keep


def _line_locator(norm: bytes, w: Any, base_line: int) -> Callable[[int], int]:
    newlines: list[np.ndarray] = []

    def locate(k: int) -> int:
        if not newlines:
            newlines.append(np.flatnonzero(np.frombuffer(norm, dtype=np.uint8) == 0x0A))
        return base_line + int(np.searchsorted(newlines[0], w.offset(k)))
    return locate


def _record_bytes(strings: Iterator[str]) -> bytes:
    """A document's strings as UTF-8, joined by a break word no n-gram crosses."""
    return SEGMENT_BREAK.join(x.encode("utf-8", "replace") for x in strings)


def _scan_records(out: CorpusScan, records: list[bytes], labels: list[Any], name: str) -> None:
    """One batch of documents (from ``_record_bytes``); LABELS[i] locates document i."""
    norm = normalize_bytes(RECORD_BREAK.join(records) + RECORD_BREAK, TEXT_TABLE)
    w = word_arrays(norm)
    ends: list[np.ndarray] = []
    mark = RECORD_BREAK[1]

    def locate(k: int) -> Any:
        if not ends:
            ends.append(np.flatnonzero(np.frombuffer(norm, dtype=np.uint8) == mark))
        return labels[int(np.searchsorted(ends[0], w.offset(k)))]
    out.scanner.scan(w, name, locate)
    out.scanner.advance(w.count + out.scanner.index.ngram)


def _scan_jsonl(out: CorpusScan, fh: BinaryIO, name: str, select: Callable[[Any], Iterator[str]],
                batch_bytes: int) -> None:
    texts: list[bytes] = []
    labels: list[int] = []
    size = 0
    for lineno, line in enumerate(fh, 1):
        out.bytes_read += len(line)
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as e:
            out.problems.append(f"{name}:{lineno}: not JSON ({e}); line skipped")
            continue
        texts.append(_record_bytes(select(record)))
        labels.append(lineno)
        size += len(line)
        if size >= batch_bytes:
            _scan_records(out, texts, labels, name)
            texts, labels, size = [], [], 0
    if texts:
        _scan_records(out, texts, labels, name)


def _scan_json(out: CorpusScan, fh: BinaryIO, name: str, field_spec: str | None) -> None:
    data = fh.read()
    out.bytes_read += len(data)
    try:
        doc = json.loads(data)
    except ValueError as e:
        out.problems.append(f"{name}: not JSON ({e}); file skipped")
        return
    if field_spec is not None and field_spec.startswith("$"):
        pairs = [(s, field_spec) for s in field_selector(field_spec)(doc)]
    else:
        pairs = list(_strings_with_paths(doc, "", field_spec))
    for start in range(0, len(pairs), 20000):
        batch = pairs[start:start + 20000]
        _scan_records(out, [_record_bytes(iter([s])) for s, _ in batch], [p for _, p in batch], name)


# ---------------------------------------------------------------------- the whole analysis


@dataclass
class OverlapResult:
    """``evalkit overlap``'s outcome: the header (rules, normalization) and one row per item."""

    header: dict[str, Any]
    rows: list[dict[str, Any]]
    problems: list[str]


def analyse_overlap(items: Sequence[Any], train: Sequence[str | Path], *, field_spec: str | None = None,
                    ngram: int = field_default(OverlapSettings, "ngram"),
                    chunk_bytes: int = CHUNK_BYTES) -> OverlapResult:
    """Which of ITEMS the corpus TRAIN holds, by Med-PaLM 2's rule and by the n-gram rule."""
    from evalkit.overlap import index_items, overlap_header

    index = index_items(items, ngram)
    scan = scan_corpus(index, train, field_spec, chunk_bytes)
    rows = [f.to_dict() for f in scan.scanner.found]
    header = overlap_header(index, scan.files, field=field_spec, bytes_read=scan.bytes_read,
                            problems=scan.problems,
                            flagged={"medpalm": sum(r["medpalm_overlap"] for r in rows),
                                     "ngram": sum(r["ngram_overlap"] for r in rows)})
    return OverlapResult(header, rows, scan.problems)
