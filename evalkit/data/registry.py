"""The benchmark registry: which public files evalkit knows by name.

The table is data (``eval_data/registry.json``), not code: one entry per file
with its public origin at a pinned commit, sha256, item count and layout.

Bundled files (the registry, prompt templates, the sample benchmark and the
few-shot exemplars) live in the repository's ``eval_data/`` and ``prompts/``
folders. A wheel installs the same folders as ``evalkit/_eval_data`` and
``evalkit/_prompts`` (see ``package-dir`` in pyproject.toml), so
``bundled_dir`` looks for the installed copy first and falls back to the
source tree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from evalkit.config import DEFAULT_DATA_DIR  # noqa: F401 (its home is evalkit.config)
from evalkit.core.store import parse_json

REGISTRY_FILE = "registry.json"


def bundled_dir(folder: str) -> Path:
    """The bundled FOLDER ("eval_data" or "prompts"), installed or in the source tree."""
    package = Path(__file__).resolve().parents[1]  # evalkit/
    installed = package / f"_{folder}"
    return installed if installed.is_dir() else package.parent / folder


@dataclass(frozen=True)
class Benchmark:
    """One registry entry: a benchmark file and what is known about it."""

    name: str
    file: str
    url: str | None
    sha256: str
    items: int
    options: int | tuple[int, int]
    source: str
    license: str
    shape: str
    gold: str
    requires: tuple[str, ...] = ()
    allow: frozenset[str] = frozenset()
    datasets: dict[str, int] = field(default_factory=dict)
    local: bool = False
    note: str = ""
    adapter: str = "mcq"  # the evalkit.data.adapters function that turns a record into an Item
    prompt: str | None = None  # the prompt template a run of it uses when none is given (None: the default)

    @property
    def file_name(self) -> str:
        """The bare file name, which is how a loaded file is matched to its entry."""
        return Path(self.file).name

    @property
    def options_text(self) -> str:
        """Options per item as printed: ``5`` or ``5-22``."""
        if isinstance(self.options, tuple):
            return f"{self.options[0]}-{self.options[1]}"
        return str(self.options)

    def local_path(self, data_dir: str | Path = DEFAULT_DATA_DIR) -> Path:
        """Where this benchmark lives under DATA_DIR."""
        return Path(data_dir) / self.file

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Benchmark":
        options = data["options"]
        return cls(
            name=data["name"],
            file=data["file"],
            url=data.get("url"),
            sha256=data["sha256"],
            items=int(data["items"]),
            options=tuple(options) if isinstance(options, list) else int(options),
            source=data["source"],
            license=data["license"],
            shape=data["shape"],
            gold=data["gold"],
            requires=tuple(data.get("requires", ())),
            allow=frozenset(data.get("allow", ())),
            datasets=dict(data.get("datasets", {})),
            local=bool(data.get("local", False)),
            note=data.get("note", ""),
            adapter=data.get("adapter", "mcq"),
            prompt=data.get("prompt"),
        )


@lru_cache(maxsize=4)
def _load(path: Path) -> tuple[Benchmark, ...]:
    try:
        table = parse_json(path.read_bytes())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); the registry is damaged") from None
    return tuple(Benchmark.from_dict(entry) for entry in table["benchmarks"])


def registry_path() -> Path:
    """The registry table in use."""
    return bundled_dir("eval_data") / REGISTRY_FILE


def benchmarks() -> list[Benchmark]:
    """Every registered benchmark, in table order."""
    return list(_load(registry_path()))


def get_benchmark(name: str) -> Benchmark:
    """The entry called NAME; KeyError listing the known names otherwise."""
    for bench in _load(registry_path()):
        if bench.name == name:
            return bench
    known = ", ".join(b.name for b in _load(registry_path()))
    raise KeyError(f"unknown benchmark {name!r} (known: {known})")


def match_file(path: str | Path) -> Benchmark | None:
    """The entry whose file has the same name as PATH, if any."""
    name = Path(path).name
    for bench in _load(registry_path()):
        if bench.file_name == name:
            return bench
    return None


def find_benchmark(target: str | Path) -> Benchmark | None:
    """The entry TARGET names: a registered name ("medqa"), else a file whose name is a registered
    file's ("…/medqa_test.jsonl"); None for a user's file. One reading of the table (a task's one)."""
    table = _load(registry_path())
    by_name = next((b for b in table if b.name == str(target)), None)
    if by_name is not None:
        return by_name
    name = Path(target).name
    return next((b for b in table if b.file_name == name), None)


def resolve_benchmark_file(target: str | Path, data_dir: str | Path = DEFAULT_DATA_DIR) -> Path:
    """TARGET as a path when it exists; else a registered name ("medqa") stands for its file
    under DATA_DIR (which may not be fetched yet); anything else is returned as a path."""
    path = Path(target)
    if path.exists():
        return path
    try:
        return get_benchmark(str(target)).local_path(data_dir)
    except KeyError:
        return path
