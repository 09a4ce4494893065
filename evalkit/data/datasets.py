"""Benchmark files -> validated, normalized ``Item`` records.

One loader for every supported layout, detected from the file itself:

- ``.jsonl``: one record per line (MedQA, MedBullets, MedXpertQA, HLE, the
  MedXpertQA-repository MedMCQA / MMLU files, a decision-field export);
- ``.json`` list of records;
- ``.json`` object ``{source: [records]}`` or ``{source: {id: record}}``
  (each key becomes the dataset name, as other harnesses and MIRAGE use);
- ``.json`` object ``{id: record}``;
- a ``.json`` object of a layout a benchmark's folder registers (``register_file_shape``), tried
  before the keyed layouts: a benchmark's original files (for instance a split of ids to gold
  decisions, read together with the file of records beside it).

Each record is normalized the same way whatever the layout: the question,
options (a dict, a list, or choices embedded in the question as
``Answer Choices: (A) ... (B) ...``, or yes/no/maybe for a decision field), the gold
letter (``answer_idx``, ``label``, ``final_decision``, or ``answer``), an
optional context and a stable id. Every problem in the file is collected and
reported at once as ``path:line: message``.

Every benchmark shape goes through here, long-form ones included (their adapters are in
evalkit.data.longform): one loader, one error type (``DatasetError``).
"""

from __future__ import annotations

import hashlib
import json
import re
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator

from evalkit.data.adapters import (DECISION_OPTIONS, Adapter, AdapterError, adapt, content_id,  # noqa: F401
                              get_adapter, normalize_record, split_embedded_choices)
from evalkit.core.plugins import load_plugins
from evalkit.core.records import Item
from evalkit.data.registry import Benchmark, match_file
from evalkit.core.store import parse_json
from evalkit.core.errors import InputError

MAX_LINE_BYTES = 16 << 20  # a longer JSONL line is an error at its line, not a memory spike

_WS = re.compile(r"[ \t\n\r]*")
_decoder = json.JSONDecoder()
_JSON_TYPE = {list: "array", str: "string", int: "number", float: "number", bool: "boolean",
              type(None): "null"}


@dataclass(frozen=True)
class FileShape:
    """A JSON object layout of a benchmark's own files (its folder registers it: ``register_file_shape``).

    ``claims(values)``: whether the object whose member values are VALUES has this layout.
    ``read(path, members, problems)``: MEMBERS are the object's (key, value, line) in file order; it gives
    ((record, line, key) for each record, {other file read: its sha256}), appending what is wrong with a
    member to PROBLEMS (a ``Problem``) and raising DatasetError when the file cannot be read at all.
    ``about`` names the files for a message listing the layouts the loader knows."""

    name: str
    claims: Callable[[list[Any]], bool]
    read: Callable[..., tuple[list[tuple[Any, int, str | None]], dict[Path, str]]]
    about: str


FILE_SHAPES: dict[str, FileShape] = {}


def register_file_shape(shape: FileShape) -> FileShape:
    """Register SHAPE under its name (a benchmark's folder does, when it is imported)."""
    FILE_SHAPES[shape.name] = shape
    return shape


def shape_for(values: list[Any]) -> FileShape | None:
    """The registered layout that claims a JSON object of VALUES, if any (the plugins load first)."""
    load_plugins()
    return next((shape for shape in FILE_SHAPES.values() if shape.claims(values)), None)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file, at a line (1-based)."""

    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line > 0 else str(self.path)  # line 0: the whole file
        return f"{where}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "line": self.line, "message": self.message}


class DatasetError(InputError):
    """A file that cannot be used as it is; ``problems`` lists everything wrong."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass
class LoadedDataset:
    """The valid items of one file, and how they were read.

    ``shape`` is the container layout detected; ``benchmark`` the registry
    entry the file name matched (None for a user file) and ``verified``
    whether its sha256 equals the registered one. ``extra_files`` maps any
    file read alongside (a registered shape's companion file) to its sha256. ``lines``
    holds the line each item starts at (for messages about an item found later).
    """

    items: list[Item]
    path: Path
    sha256: str
    skipped: list[Problem] = field(default_factory=list)
    shape: str = "jsonl"
    benchmark: str | None = None
    verified: bool | None = None
    extra_files: dict[Path, str] = field(default_factory=dict)
    lines: list[int] = field(default_factory=list)

    def datasets(self) -> dict[str, list[Item]]:
        """Items grouped by dataset name, in order of first appearance."""
        groups: dict[str, list[Item]] = {}
        for item in self.items:
            groups.setdefault(item.dataset, []).append(item)
        return groups

    def target_counts(self) -> dict[str, Counter]:
        """Per dataset, how many items carry each kind of target (its type's name, or ``none``), most first."""
        return {
            name: Counter(type(item.target).__name__ if item.target is not None else "none" for item in items)
            for name, items in self.datasets().items()
        }

    def option_counts(self) -> dict[str, Counter]:
        """Per dataset, how many items have each number of options."""
        return {
            name: Counter(len(item.options) for item in items)
            for name, items in self.datasets().items()
        }


@dataclass(frozen=True)
class DataSource:
    """A benchmark file as a run reads it: its PATH, its registry row (None: a user's file; the row
    gives the dataset's name, its adapter and the sha256 the file is verified against) and the
    ADAPTER that replaces the row's (None: the row's, else ``mcq``)."""

    path: Path
    benchmark: Benchmark | None = None
    adapter: str | None = None

    @classmethod
    def of(cls, path: str | Path, adapter: str | None = None) -> "DataSource":
        """PATH with the registry row its file name matches (a file given without a planner)."""
        return cls(Path(path), match_file(path), adapter)


# --------------------------------------------------------------------------- files


@dataclass
class _Raw:
    """A raw record with where it came from, before normalization."""

    record: Any
    line: int
    dataset: str
    key: str | None = None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _decode(path: Path, data: bytes) -> tuple[str, list[Problem]]:
    """Text of DATA, and a problem for each line that is not UTF-8.

    Bad lines are blanked so the rest of a JSONL file can still be checked.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        problems, lines = [], []
        for number, raw in enumerate(data.split(b"\n"), start=1):
            try:
                lines.append(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                problems.append(Problem(path, number, f"not valid UTF-8: byte 0x{raw[exc.start]:02x} "
                                                      f"at column {exc.start + 1}"))
                lines.append("")
        text = "\n".join(lines)
    else:
        problems = []
    if text.startswith("\ufeff"):
        text = text[1:]
    return text, problems


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _capped_lines(fh: BinaryIO, cap: int) -> Iterator[bytes | None]:
    """The lines of FH, None in place of a line longer than CAP bytes (never more than CAP kept)."""
    while True:
        raw = fh.readline(cap + 1)
        if not raw:
            return
        if len(raw) > cap and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):  # skip the rest of the long line, a chunk at a time
                raw = fh.readline(1 << 20)
            yield None
            continue
        yield raw


def _jsonl_records(path: Path, dataset: str, problems: list[Problem], seen: list[bool],
                   max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[_Raw]:
    """The records of a JSONL file, read line by line so only the parsed items stay in memory.

    SEEN[0] becomes True once a non-blank line is met (to tell an empty file). A line
    longer than MAX_LINE_BYTES is a problem at its line, and is never held whole.
    """
    loads = parse_json  # json.loads, with a record nested too deep a problem at its line
    with open(path, "rb") as fh:
        for number, raw in enumerate(_capped_lines(fh, max_line_bytes), start=1):
            if raw is None:
                seen[0] = True
                problems.append(Problem(path, number, f"line is longer than {max_line_bytes / (1 << 20):g} MB "
                                                      "(the record-line cap, --max-record-mb)"))
                continue
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if not raw.strip():
                continue
            seen[0] = True
            try:
                line = raw.rstrip(b"\n").decode("utf-8")
            except UnicodeDecodeError as exc:
                problems.append(Problem(path, number, f"not valid UTF-8: byte 0x{raw[exc.start]:02x} "
                                                      f"at column {exc.start + 1}"))
                continue
            try:
                record = loads(line)
            except json.JSONDecodeError as exc:
                problems.append(Problem(path, number, f"malformed JSON: {exc.msg} (column {exc.colno})"))
                continue
            yield _Raw(record, number, dataset)


def _members(text: str, pos: int) -> list[tuple[Any, Any, int]]:
    """(key or index, value, start offset) of each member of the container at TEXT[POS].

    Walking the members ourselves gives each record's position (for line
    numbers) and keeps repeated keys that ``json.loads`` would silently merge
    (they surface as duplicate ids).
    The text must already be known to be valid JSON.
    """
    ws = _WS.match
    raw_decode = _decoder.raw_decode
    is_object = text[pos] == "{"
    closer = "}" if is_object else "]"
    out = []
    pos = ws(text, pos + 1).end()
    if text[pos] == closer:
        return out
    index = 0
    while True:
        key: Any = index
        if is_object:
            key, pos = raw_decode(text, pos)
            pos = ws(text, ws(text, pos).end() + 1).end()  # skip the colon
        value, end = raw_decode(text, pos)
        out.append((key, value, pos))
        pos = ws(text, end).end()
        if text[pos] != ",":
            return out
        pos = ws(text, pos + 1).end()
        index += 1


class _Lines:
    """Offset -> 1-based line number."""

    def __init__(self, text: str):
        self._newlines = [m.start() for m in re.finditer("\n", text)]

    def __call__(self, offset: int) -> int:
        return bisect_right(self._newlines, offset - 1) + 1


def _json_records(
    path: Path, text: str, dataset: str | None, default_name: str, problems: list[Problem]
) -> tuple[str, list[_Raw], dict[Path, str]]:
    """(shape, raw records, extra files read) of a .json file. Fatal problems raise."""
    try:
        top = parse_json(text)
    except json.JSONDecodeError as exc:
        hint = "; one record per line is JSONL, name the file .jsonl" if exc.msg == "Extra data" else ""
        raise DatasetError([Problem(path, exc.lineno, f"malformed JSON: {exc.msg} (column {exc.colno}){hint}")])
    start = _WS.match(text).end()
    line_of = _Lines(text)
    name = dataset or default_name

    if isinstance(top, list):
        return "json-list", [_Raw(v, line_of(s), name) for _, v, s in _members(text, start)], {}
    if not isinstance(top, dict) or not top:
        raise DatasetError([Problem(path, 1, "expected a list of records or an object of records")])

    members = _members(text, start)
    values = [v for _, v, _ in members]
    shape = shape_for(values)
    if shape is not None:
        found, extra = shape.read(path, [(str(k), v, line_of(s)) for k, v, s in members], problems)
        return shape.name, [_Raw(record, line, name, key) for record, line, key in found], extra
    if any(isinstance(v, dict) and ("question" in v or "QUESTION" in v) for v in values):
        return "json-keyed", [_Raw(v, line_of(s), name, str(k)) for k, v, s in members], {}
    if all(isinstance(v, list) or (isinstance(v, dict) and all(isinstance(r, dict) for r in v.values()))
           for v in values):
        # {source: [records]} or {source: {id: record}}: each key is a dataset.
        sources = [m for m in members if dataset is None or m[0] == dataset]
        if not sources:
            known = ", ".join(str(k) for k, _, _ in members)
            raise DatasetError([Problem(path, 1, f"no dataset {dataset!r} in this file (it has: {known})")])
        raws = []
        for source, value, s in sources:
            keyed = isinstance(value, dict)
            for key, record, rs in _members(text, s):
                raws.append(_Raw(record, line_of(rs), str(source), str(key) if keyed else None))
        return "json-sources", raws, {}
    known = ["{source: [records]}", "{id: record}", *dict.fromkeys(shape.about for shape in FILE_SHAPES.values())]
    raise DatasetError([Problem(path, 1, "unrecognized layout: expected a list of records, "
                                         f"{', '.join(known[:-1])} or {known[-1]}")])


def load_dataset(path: str | Path, *, skip_invalid: bool = False, dataset: str | None = None,
                 adapter: str | None = None, max_line_bytes: int = MAX_LINE_BYTES) -> LoadedDataset:
    """Load, validate and normalize every record of the benchmark file PATH.

    Every problem in the file is collected before anything is returned; any
    problem raises DatasetError listing them all as ``path:line: message``.
    With SKIP_INVALID, invalid records are left out and listed in
    ``skipped`` instead (a file that cannot be read at all, or one with no
    valid record left, still raises).

    The dataset name is the registry name when the file name matches a
    registered benchmark, else the file stem; DATASET overrides it. In a
    ``{source: ...}`` file each key is the dataset name, and DATASET selects
    that one source.

    Ids: the record's own (``id``, ``idx``, ``pmid``, ``qid`` or its key),
    else a 12-hex-digit hash of question and options; a repeated hash gets
    ``-2``, ``-3``... in file order so identical questions stay distinct.
    A repeated own id is an error. A JSONL line longer than MAX_LINE_BYTES is an
    error at its line (it is never read whole).

    Records become items through an adapter (evalkit.data.adapters): ADAPTER (a name or
    ``module:attr``), else the one the registry names for this file, else ``mcq``.
    An adapter that gives an item no id (a graded answer without one) has it named
    ``line<N>`` after the line its record starts at.
    """
    return read_dataset(DataSource.of(path, adapter), skip_invalid=skip_invalid, dataset=dataset,
                        max_line_bytes=max_line_bytes)


def read_dataset(source: DataSource, *, skip_invalid: bool = False, dataset: str | None = None,
                 max_line_bytes: int = MAX_LINE_BYTES) -> LoadedDataset:
    """SOURCE's file as ``load_dataset`` reads it, with the registry row its planner already looked up
    (``run.plan`` reads a task's row once; nothing here reads the registry again)."""
    path, bench = source.path, source.benchmark
    is_json = path.suffix.lower() == ".json"
    try:
        # A .json document is parsed whole; JSONL is streamed (hashed first, then read line by line).
        data = path.read_bytes() if is_json else b""
        digest = _sha256(data) if is_json else _file_sha256(path)
    except OSError as exc:
        hint = ""
        if isinstance(exc, FileNotFoundError) and bench is not None:
            hint = f" (it is the registered benchmark {bench.name!r}: `evalkit data fetch {bench.name}` downloads it)"
        raise DatasetError([Problem(path, 0, f"cannot read file: {exc.strerror or exc}{hint}")]) from None
    verified = None if bench is None else bench.sha256 == digest
    allow = bench.allow if bench is not None and verified else frozenset()
    default_name = bench.name if bench is not None else path.stem
    try:
        to_item = get_adapter(source.adapter or (bench.adapter if bench is not None else None))
    except ValueError as exc:
        raise DatasetError([Problem(path, 0, str(exc))]) from None

    extra: dict[Path, str] = {}
    if is_json:
        if not data.strip():
            raise DatasetError([Problem(path, 1, "file is empty")])
        text, problems = _decode(path, data)
        del data
        if problems:
            raise DatasetError(problems)
        shape, raws, extra = _json_records(path, text, dataset, default_name, problems)
        if not raws and not problems:
            raise DatasetError([Problem(path, 1, "file holds no records")])
        items, lines = _normalize_all(path, raws, allow, problems, to_item)
    else:
        shape = "jsonl"
        problems = []
        seen = [False]
        raws: Iterable[_Raw] = _jsonl_records(path, dataset or default_name, problems, seen, max_line_bytes)
        companions = tuple(getattr(to_item, "companions", ()) or ())
        if companions:
            joined, extra = _read_companions(path, companions, str(getattr(to_item, "join_key", "id")))
            raws = _with_companions(raws, joined, str(getattr(to_item, "join_key", "id")))
        items, lines = _normalize_all(path, raws, allow, problems, to_item)
        if not seen[0]:
            raise DatasetError([Problem(path, 1, "file is empty")])

    problems.sort(key=lambda p: p.line)
    if problems and not skip_invalid:
        raise DatasetError(problems)
    if not items:
        raise DatasetError(problems + [Problem(path, 1, "no valid record left")])
    return LoadedDataset(items, path, digest, problems, shape, bench.name if bench else None, verified, extra, lines)


def _read_companions(path: Path, suffixes: tuple[str, ...], key: str) -> tuple[dict[str, dict], dict[Path, str]]:
    """The companion files of PATH (``STEM + SUFFIX + .jsonl`` beside it, as an adapter's ``companions``
    names them), each indexed by its records' KEY, and their sha256. DatasetError naming a missing
    file or a bad line."""
    joined: dict[str, dict] = {}
    extra: dict[Path, str] = {}
    problems: list[Problem] = []
    for suffix in suffixes:
        other = path.with_name(path.stem + suffix + path.suffix)
        if not other.is_file():
            raise DatasetError([Problem(path, 1, f"this file is read with {other.name} from the same folder, "
                                                 f"and {other} is missing")])
        index: dict[Any, dict] = {}
        for raw in _jsonl_records(other, suffix, problems, [False]):
            if isinstance(raw.record, dict) and key in raw.record:
                index[raw.record[key]] = raw.record
            else:
                problems.append(Problem(other, raw.line, f"record has no {key!r} to join it by"))
        joined[suffix] = index
        extra[other] = _file_sha256(other)
    if problems:
        raise DatasetError(problems)
    return joined, extra


def _with_companions(raws: Iterable[_Raw], joined: dict[str, dict], key: str) -> Iterator[_Raw]:
    """RAWS with each record's companion lines under ``_companions`` ({suffix: record or None})."""
    for raw in raws:
        if isinstance(raw.record, dict):
            ident = raw.record.get(key)
            raw.record = {**raw.record, "_companions": {s: idx.get(ident) for s, idx in joined.items()}}
        yield raw


def _normalize_all(
    path: Path, raws: Iterable[_Raw], allow: frozenset[str], problems: list[Problem], to_item: Adapter
) -> tuple[list[Item], list[int]]:
    """Normalize RAWS, appending their problems; give ids; drop repeated ids. (items, the line of each)"""
    items: list[Item] = []
    lines: list[int] = []
    is_hash: list[bool] = []
    for raw in raws:
        item, errors, hashed = adapt(to_item, raw.record, raw.dataset, raw.key, allow)
        if errors:
            problems.extend(Problem(path, raw.line, message) for message in errors)
            continue
        if item.id == "":
            item = replace(item, id=f"line{raw.line}")
        items.append(item)
        lines.append(raw.line)
        is_hash.append(hashed)

    seen: dict[tuple[str, str], int] = {}
    hash_count: Counter = Counter()
    kept: list[Item] = []
    kept_lines: list[int] = []
    for item, line, hashed in zip(items, lines, is_hash):
        key = (item.dataset, item.id)
        if hashed:
            hash_count[key] += 1
            if hash_count[key] > 1:
                # The same question and options again: distinct items, numbered in file order.
                item = replace(item, id=f"{item.id}-{hash_count[key]}")
                key = (item.dataset, item.id)
        if key in seen:
            problems.append(Problem(path, line, f"duplicate id {item.id!r} (first at line {seen[key]})"))
            continue
        seen[key] = line
        kept.append(item)
        kept_lines.append(line)
    return kept, kept_lines


# --------------------------------------------------------------------------- the files of one run


@dataclass
class RunData:
    """The files of one run, read: each distinct file once (``loaded``), the dataset each source given
    was read as (``of_source``, in the order given: a repeated file is its first reading), and notices
    of what was read once."""

    loaded: list[LoadedDataset]
    of_source: list[LoadedDataset]
    notices: list[str]


def load_datasets(sources: Iterable[DataSource | str | Path], *, skip_invalid: bool = False,
                  max_line_bytes: int = MAX_LINE_BYTES) -> RunData:
    """Load the files of one run (``read_dataset`` each; a bare path is ``DataSource.of`` it).

    A file given twice (the same resolved path, or the same bytes under another path) is one
    dataset: read once, with a notice. Different files that would make the same dataset (the
    same file name in two folders, or the same ``{source: ...}`` key) are refused by
    ``check_distinct_datasets`` before any request: a dataset names one file.
    """
    data = RunData([], [], [])
    by_path: dict[Path, tuple[Path, LoadedDataset]] = {}
    by_content: dict[tuple[str, ...], LoadedDataset] = {}
    for given in sources:
        source = given if isinstance(given, DataSource) else DataSource.of(given)
        path = source.path
        real = _real_path(path)
        if real in by_path:
            first_path, ds = by_path[real]
            data.notices.append(f"{path} is given more than once (as {first_path}): read once")
            data.of_source.append(ds)
            continue
        ds = read_dataset(source, skip_invalid=skip_invalid, max_line_bytes=max_line_bytes)
        content = (ds.sha256, *sorted(ds.extra_files.values()))
        first = by_content.get(content)
        if first is not None:
            names = ", ".join(repr(n) for n in first.datasets())
            data.notices.append(f"{path} has the same content as {first.path} (sha256 {ds.sha256[:12]}): "
                                f"read once, as {names}")
            ds = first
        else:
            by_content[content] = ds
            data.loaded.append(ds)
        by_path[real] = (path, ds)
        data.of_source.append(ds)
    check_distinct_datasets(data.loaded)
    return data


def _real_path(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:
        return path.absolute()


def check_distinct_datasets(loaded: list[LoadedDataset]) -> None:
    """Raise DatasetError when two of LOADED (different files) make the same dataset.

    The error names both files, and an item id they share when they do (one run cannot hold
    two answers to one item, and a dataset's rows would mix two files).
    """
    owner: dict[str, tuple[LoadedDataset, list[Item]]] = {}
    problems: list[Problem] = []
    for ds in loaded:
        for name, items in ds.datasets().items():
            if name not in owner:
                owner[name] = (ds, items)
                continue
            first, first_items = owner[name]
            first_ids = {item.id for item in first_items}
            shared = [item.id for item in items if item.id in first_ids]
            if shared:
                more = f" and {len(shared) - 1} more" if len(shared) > 1 else ""
                problems.append(Problem(ds.path, 0, (
                    f"dataset {name!r} is also read from {first.path}, a different file, and both hold item id "
                    f"{shared[0]!r}{more}: one run cannot answer an item twice; give one of the two files, "
                    "or rename one (a dataset is named after its file)")))
            else:
                problems.append(Problem(ds.path, 0, (
                    f"dataset {name!r} is also read from {first.path}, a different file: two files cannot make "
                    "one dataset; rename one (a dataset is named after its file) or run them separately")))
    if problems:
        raise DatasetError(problems)
