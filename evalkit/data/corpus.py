"""Reading training corpora for the overlap analysis (the I/O edge of ``evalkit.data.overlap``).

A corpus is files or folders of them (searched recursively, hidden files skipped),
each plain text, JSONL (``.jsonl`` / ``.ndjson``) or one JSON document (``.json``),
optionally gzip (``.gz``) or zstd (``.zst``, needs the ``zstandard`` package)
compressed. Each file is read once, streaming, in chunks of ``chunk_bytes`` (the scan's
buffer); memory is the benchmark index plus a few arrays per chunk, whatever the corpus
size and however long its lines.

A compressed file is decoded piece by piece: one that is cut short or corrupt ends
early, everything decoded before the break is scanned, and the file is reported as
incomplete (nothing decoded: unreadable); ``CorpusScan.partial`` says a scan met one.

- Plain text: the file is one document; n-grams run across line breaks. A hit's
  location is the line where its first word is.
- JSONL: each line is a document; its text is the strings FIELD selects (default:
  every string in the record), each a segment that no n-gram crosses.
- JSON (one document, parsed whole): every string (or those FIELD selects) is a
  document; its location is its JSON path.
- A JSONL line or a JSON document longer than the buffer is not parsed (that would
  take many times its size in memory): it is scanned as plain text, streaming, with
  JSON's escapes decoded (``\\n``, ``\\t``... as spaces, ``\\uXXXX`` as the character).
  What is matched there is every string *and key* of it, and an n-gram may run from
  one string into the next; FIELD is not applied. Its location is the JSONL line (a
  JSON document: the line of the file). A note names each such line.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, Sequence

import numpy as np

from evalkit.config import OverlapSettings, field_default
from evalkit.data.overlap import (RECORD_BREAK, SEGMENT_BREAK, TEXT_TABLE, BenchmarkIndex, Scanner,
                             normalize_bytes, word_arrays)

CHUNK_BYTES = 4 << 20
_JSONL_SUFFIXES = {".jsonl", ".ndjson"}


class CorpusError(ValueError):
    """A training path that cannot be read (named in the message)."""


def train_files(paths: Sequence[str | Path], unlisted: list[tuple[str, str]] | None = None) -> list[Path]:
    """The files under PATHS (a folder: every non-hidden file below it, sorted). A folder that cannot
    be listed goes into UNLISTED as (folder, why) when given (os.walk would skip it silently)."""
    out: list[Path] = []

    def note(e: OSError) -> None:
        if unlisted is not None:
            unlisted.append((str(e.filename), f"cannot list the folder: {e.strerror or e}"))
    for p in map(Path, paths):
        if p.is_dir():
            for root, dirs, files in os.walk(p, onerror=note):
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
    """PATH opened for reading bytes, decompressed by its suffix (a ``DecodedStream`` when compressed)."""
    comp, _ = _kind(path)
    if comp:
        return io.BufferedReader(DecodedStream(path, comp), buffer_size=_PIECE_BYTES)  # type: ignore[return-value]
    return open(path, "rb")


_PIECE_BYTES = 1 << 16  # compressed bytes decoded at a time (gzip output is capped at this too)


def _zstd_module() -> Any:
    try:
        import zstandard
    except ImportError as e:  # pragma: no cover - depends on the install
        raise CorpusError("reading .zst needs the zstandard package (pip install 'evalkit[overlap]')") from e
    return zstandard


class DecodedStream(io.RawIOBase):
    """A gzip or zstd file decoded piece by piece.

    A stream cut short, or corrupt, ends the reading early instead of raising (the
    decoders raise only at the end of a large read, and the bytes of that read were
    lost): ``problem`` says what happened and ``decoded`` how many bytes came out
    before it. Several gzip members or zstd frames one after another are read in turn.
    """

    def __init__(self, path: Path, comp: str):
        self.decoded = 0
        self.problem: str | None = None
        self._comp = comp
        self._error: tuple[type[BaseException], ...] = (zlib.error,)
        if comp == "zst":
            self._error = (_zstd_module().ZstdError,)
        self._src = open(path, "rb")
        self._dec = self._decoder()
        self._out, self._pos, self._ended, self._started = b"", 0, False, False

    def _decoder(self) -> Any:
        if self._comp == "gz":
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        return _zstd_module().ZstdDecompressor().decompressobj()

    def readable(self) -> bool:
        """Always: a reading stream."""
        return True

    def readinto(self, buf: Any) -> int:
        """Decoded bytes into BUF; 0 at the end of the stream (or at the break, see ``problem``)."""
        while self._pos >= len(self._out) and not self._ended:
            self._out, self._pos = self._more(), 0
        n = min(len(buf), len(self._out) - self._pos)
        buf[:n] = self._out[self._pos:self._pos + n]
        self._pos += n
        self.decoded += n
        return n

    def _more(self) -> bytes:
        """The next piece of decoded bytes (maybe empty); at the end sets ``_ended`` (and ``problem``)."""
        dec = self._dec
        try:
            if self._comp == "gz" and dec.unconsumed_tail:
                return dec.decompress(dec.unconsumed_tail, _PIECE_BYTES)
            data = b""
            if dec.eof:  # a member (frame) ended: another may follow; gzip allows zero padding after
                data = dec.unused_data.lstrip(b"\0")
                while not data:
                    data = self._src.read(_PIECE_BYTES)
                    if not data:
                        self._ended = True
                        return b""
                    data = data.lstrip(b"\0")
                self._dec = dec = self._decoder()
            else:
                data = self._src.read(_PIECE_BYTES)
            if not data:
                self._ended = True
                if self._started:
                    self.problem = "the compressed stream ends before its end marker (the file was cut short)"
                return b""
            self._started = True
            return dec.decompress(data, _PIECE_BYTES) if self._comp == "gz" else dec.decompress(data)
        except self._error as e:
            self._ended = True
            self.problem = f"corrupt compressed data ({e})"
            return b""

    def close(self) -> None:
        """Close the compressed file too."""
        self._src.close()
        super().close()


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
    """The outcome of scanning a corpus: the scanner (per-item results) and what went wrong.

    ``incomplete``: file -> why only part of it was searched (a compressed stream cut short
    or corrupt: what came before the break was searched); ``unreadable``: file -> why none
    of it was; ``problems``: every warning, in order (those two, and notes such as a line
    scanned as text). ``partial``: some file was incomplete or unreadable.
    """

    scanner: Scanner
    files: list[str] = field(default_factory=list)
    bytes_read: int = 0
    problems: list[str] = field(default_factory=list)
    incomplete: dict[str, str] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)

    @property
    def partial(self) -> bool:
        """Whether some file could not be searched whole."""
        return bool(self.incomplete or self.unreadable)


def scan_corpus(index: BenchmarkIndex, paths: Sequence[str | Path], field_spec: str | None = None,
                chunk_bytes: int = CHUNK_BYTES) -> CorpusScan:
    """Scan every file under PATHS once against INDEX; memory stays within a few CHUNK_BYTES buffers."""
    out = CorpusScan(Scanner(index))
    unlisted: list[tuple[str, str]] = []
    files = train_files(paths, unlisted)
    for folder, why in unlisted:
        _file_problem(out, folder, 0, why)
    for path in files:
        out.files.append(str(path))
        out.scanner.next_file()
        before = out.bytes_read
        _, fmt = _kind(path)
        why: str | None = None
        try:
            with open_binary(path) as fh:
                if fmt == "jsonl":
                    _scan_jsonl(out, fh, str(path), field_selector(field_spec), chunk_bytes)
                elif fmt == "json":
                    _scan_json(out, fh, str(path), field_spec, chunk_bytes)
                else:
                    _scan_text(out, _blocks(out, fh, chunk_bytes), str(path), chunk_bytes)
                raw = getattr(fh, "raw", None)
                why = raw.problem if isinstance(raw, DecodedStream) else None
        except (OSError, EOFError) as e:
            why = f"cannot read: {e}"
        if why is not None:
            _file_problem(out, str(path), out.bytes_read - before, why)
    return out


def _file_problem(out: CorpusScan, name: str, read: int, why: str) -> None:
    """Record that NAME was searched only for its first READ bytes (none: unreadable), and why."""
    if read:
        out.incomplete[name] = why
        out.problems.append(f"{name}: incomplete: {why}; the {read:,} bytes read before it were searched")
    else:
        out.unreadable[name] = why
        out.problems.append(f"{name}: unreadable: {why}")


def _blocks(out: CorpusScan, fh: BinaryIO, size: int) -> Iterator[bytes]:
    """FH's bytes, SIZE at a time, counted in OUT.bytes_read."""
    while block := fh.read(size):
        out.bytes_read += len(block)
        yield block


def _text_chunks(blocks: Iterator[bytes], chunk_bytes: int) -> Iterator[bytes]:
    """BLOCKS re-cut into pieces of at most about CHUNK_BYTES that end after whitespace (a newline if
    there is one)."""
    rest = b""
    for block in blocks:
        rest += block
        while len(rest) >= chunk_bytes:
            cut = _chunk_cut(rest, chunk_bytes)
            if cut == 0:  # no whitespace yet: read one more block first (memory stays about 2 blocks)
                break
            yield rest[:cut]
            rest = rest[cut:]
    while rest:
        cut = _chunk_cut(rest, chunk_bytes) or len(rest)
        yield rest[:cut]
        rest = rest[cut:]


def _chunk_cut(data: bytes, chunk_bytes: int) -> int:
    """Where to end the next piece of DATA: after the last newline (else space or tab) in its first
    CHUNK_BYTES; 0 when there is none and DATA is under 2 CHUNK_BYTES (wait for more); else a hard
    cut at CHUNK_BYTES that splits no UTF-8 character (a CJK character is a word)."""
    cut = data.rfind(b"\n", 0, chunk_bytes) + 1
    if cut == 0:
        cut = max(data.rfind(b" ", 0, chunk_bytes), data.rfind(b"\t", 0, chunk_bytes)) + 1
    if cut or len(data) < 2 * chunk_bytes:
        return cut
    cut = chunk_bytes
    while cut > chunk_bytes - 4 and 0x80 <= data[cut - 1] <= 0xBF:
        cut -= 1
    if data[cut - 1] >= 0xC0:
        cut -= 1
    return cut


def _scan_text(out: CorpusScan, blocks: Iterator[bytes], name: str, chunk_bytes: int,
               line: int | None = None) -> None:
    """Scan BLOCKS as one text document; a hit's location is its line, or LINE when given."""
    scanner, n = out.scanner, out.scanner.index.ngram
    carry, carried, base_line = b"", 0, 1
    for raw in _text_chunks(blocks, chunk_bytes):
        norm = carry + normalize_bytes(raw, TEXT_TABLE)
        w = word_arrays(norm)
        scanner.scan(w, name, (lambda k: line) if line is not None else _line_locator(norm, w, base_line), carried)
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


# JSON text read without parsing it: escapes decoded (control ones as spaces) so that words stay apart.
_ESCAPE = re.compile(rb"\\u([dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F][0-9a-fA-F]{2})"
                     rb"|\\u([0-9a-fA-F]{4})|\\(.)", re.S)
_CONTROL_ESCAPES = {b"n": b" ", b"r": b" ", b"t": b" ", b"b": b" ", b"f": b" "}
_SAFE_CUT = re.compile(rb"(?s).*[^\\0-9a-fA-Fu]")  # up to the last byte no escape can continue after


def _unescape(m: re.Match) -> bytes:
    hi, lo, one, char = m.groups()
    if char is not None:
        return _CONTROL_ESCAPES.get(char, char)
    cp = 0x10000 + ((int(hi, 16) - 0xD800) << 10) + (int(lo, 16) - 0xDC00) if hi else int(one, 16)
    return chr(cp).encode("utf-8", "replace")  # a lone surrogate becomes "?"


def json_text(pieces: Iterator[bytes]) -> Iterator[bytes]:
    """Raw JSON bytes -> the same text with its string escapes decoded, piece by piece; no escape is
    split between two pieces."""
    pending = b""
    for piece in pieces:
        data = pending + piece
        m = _SAFE_CUT.match(data)
        cut = m.end() if m else 0
        if not cut and len(data) > _PIECE_BYTES:  # nothing but hex digits and backslashes: cut anyway
            cut = len(data) - 12
        pending = data[cut:]
        if cut:
            yield _ESCAPE.sub(_unescape, data[:cut])
    if pending:
        yield _ESCAPE.sub(_unescape, pending)


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


def _line_pieces(out: CorpusScan, fh: BinaryIO, first: bytes, limit: int) -> Iterator[bytes]:
    """FIRST (already counted) and the rest of its line, LIMIT bytes at a time."""
    piece = first
    while True:
        yield piece
        if piece.endswith(b"\n"):
            return
        piece = fh.readline(limit)
        if not piece:
            return
        out.bytes_read += len(piece)


def _scan_jsonl(out: CorpusScan, fh: BinaryIO, name: str, select: Callable[[Any], Iterator[str]],
                batch_bytes: int) -> None:
    texts: list[bytes] = []
    labels: list[int] = []
    size = lineno = 0
    while line := fh.readline(batch_bytes):
        lineno += 1
        out.bytes_read += len(line)
        if len(line) >= batch_bytes and not line.endswith(b"\n"):  # longer than the buffer: never parsed
            if texts:
                _scan_records(out, texts, labels, name)
                texts, labels, size = [], [], 0
            out.problems.append(f"{name}:{lineno}: a line longer than the scan buffer ({batch_bytes} bytes): "
                                "scanned as text (every string and key, escapes decoded; no --field)")
            out.scanner.next_file()  # no match runs into or out of this document
            _scan_text(out, json_text(_line_pieces(out, fh, line, batch_bytes)), name, batch_bytes, lineno)
            out.scanner.next_file()
            continue
        if not line.strip():
            continue
        try:
            texts.append(_record_bytes(select(json.loads(line))))
        except ValueError as e:  # its words are still searched: a cut or hand-written line can hold a copy
            out.problems.append(f"{name}:{lineno}: not JSON ({e}); scanned as plain text")
            texts.append(b"".join(json_text(iter([line]))))
        labels.append(lineno)
        size += len(line)
        if size >= batch_bytes:
            _scan_records(out, texts, labels, name)
            texts, labels, size = [], [], 0
    if texts:
        _scan_records(out, texts, labels, name)


def _scan_json(out: CorpusScan, fh: BinaryIO, name: str, field_spec: str | None, chunk_bytes: int) -> None:
    data = fh.read(chunk_bytes + 1)
    out.bytes_read += len(data)
    if len(data) > chunk_bytes:  # parsing it would take many times its size: scanned as text instead
        out.problems.append(f"{name}: a JSON document longer than the scan buffer ({chunk_bytes} bytes): "
                            "scanned as text (every string and key, escapes decoded; no --field)")
        _scan_text(out, json_text(itertools.chain([data], _blocks(out, fh, chunk_bytes))), name, chunk_bytes)
        return
    try:
        doc = json.loads(data)
    except ValueError as e:
        out.problems.append(f"{name}: not JSON ({e}); scanned as plain text")
        _scan_text(out, json_text(iter([data])), name, chunk_bytes)
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
    incomplete: dict[str, str] = field(default_factory=dict)  # file -> why only part of it was searched
    unreadable: dict[str, str] = field(default_factory=dict)  # file -> why none of it was

    @property
    def partial(self) -> bool:
        """Whether some training file could not be searched whole (the flags may miss overlap)."""
        return bool(self.incomplete or self.unreadable)


def analyse_overlap(items: Sequence[Any], train: Sequence[str | Path], *, field_spec: str | None = None,
                    ngram: int = field_default(OverlapSettings, "ngram"),
                    chunk_bytes: int = CHUNK_BYTES, header_extra: dict[str, Any] | None = None) -> OverlapResult:
    """Which of ITEMS the corpus TRAIN holds, by Med-PaLM 2's rule and by the n-gram rule.

    Each row carries the item's ``fingerprint`` (``overlap.text_fingerprint``), so that a run of
    another version of the benchmark is not split by flags that were not computed for its text;
    the header lists the files that were searched only in part (``incomplete``) or not at all
    (``unreadable``). HEADER_EXTRA goes into the header as it is (the benchmark files' sha256)."""
    from evalkit.data.overlap import index_items, overlap_header, text_fingerprint

    index = index_items(items, ngram)
    scan = scan_corpus(index, train, field_spec, chunk_bytes)
    rows = [{**f.to_dict(), "fingerprint": text_fingerprint(it.question, it.context)}
            for f, it in zip(scan.scanner.found, items, strict=True)]  # one query per item, in order
    header = overlap_header(index, scan.files, field=field_spec, bytes_read=scan.bytes_read,
                            problems=scan.problems, complete=not scan.partial,
                            incomplete=scan.incomplete, unreadable=scan.unreadable,
                            flagged={"medpalm": sum(r["medpalm_overlap"] for r in rows),
                                     "ngram": sum(r["ngram_overlap"] for r in rows)}, **(header_extra or {}))
    return OverlapResult(header, rows, scan.problems, scan.incomplete, scan.unreadable)
