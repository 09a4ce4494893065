"""Tasks: the unit of an evaluation.

A ``Task`` says what to evaluate and how: its data (a registered benchmark's name,
or a file with the adapter that reads it), its prompt, its strategy, its scorers
with their options, and the generation settings it needs. Registry rows and suite
files make tasks (``from_benchmark``, ``from_suite``); ``evalkit.api.evaluate``
runs one, several, or a suite's, on a server.

A task sets only what it cares about: every field left None (or empty) takes the
run's value, whose defaults live in ``evalkit.config``. ``evalkit.run.plan`` resolves
each task once (its file, registry row, adapter, prompt and settings) and groups tasks
that differ only in their data into one run (one run directory, one fingerprint over
their files), as a suite's benchmarks always have, so a suite still reports as one
table and resumes as one run; ``evalkit.run.runner`` executes them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from evalkit.config import DEFAULT_DATA_DIR, GenerationParams
from evalkit.data.registry import Benchmark, find_benchmark, get_benchmark
from evalkit.core.errors import InputError

if TYPE_CHECKING:
    from evalkit.data.suites import Suite

GENERATION_FIELDS = frozenset(f.name for f in dataclasses.fields(GenerationParams))


class TaskError(InputError):
    """A task that cannot be run as given (an unknown setting, a prompt that cannot show what it needs)."""


@dataclass(frozen=True)
class Task:
    """One evaluation: DATA read by ADAPTER, asked with PROMPT, answered by STRATEGY, scored by SCORERS.

    ``data`` is a registered benchmark's name (``"medqa"``, its file under the data folder) or a
    file path. ``name`` defaults to the benchmark's name or the file's stem. ``generation``
    holds the ``GenerationParams`` fields this task sets (``{"max_new_tokens": 2000}``).
    ``prompt_variant="context"`` says the prompt must show the item's context (an
    abstract). Fields left None take the run's value (``evalkit.config.RunConfig``).
    """

    data: str
    name: str = ""
    adapter: str | None = None
    prompt: str | None = None
    prompt_variant: str | None = None
    strategy: str | None = None
    samples: int | None = None
    scorers: tuple[str, ...] | None = None
    scorer_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    extractor: str | None = None
    generation: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.data, (str, Path)) or not str(self.data):
            raise TaskError(f"a task's data must be a benchmark name or a file path, got {self.data!r}")
        object.__setattr__(self, "data", str(self.data))
        if not self.name:
            row = self.registry_row()
            object.__setattr__(self, "name", row.name if row is not None else Path(self.data).stem)
        unknown = sorted(set(self.generation) - GENERATION_FIELDS)
        if unknown:
            raise TaskError(f"task {self.name!r}: unknown generation setting {', '.join(unknown)} "
                            f"(known: {', '.join(sorted(GENERATION_FIELDS))})")
        object.__setattr__(self, "generation", dict(self.generation))
        object.__setattr__(self, "scorer_options", {k: dict(v) for k, v in self.scorer_options.items()})
        if self.scorers is not None:
            object.__setattr__(self, "scorers", tuple(self.scorers))

    def registry_row(self) -> Benchmark | None:
        """The registry row this task's data names (by name, else by file name; None for a user's file),
        read from the registry once per task and kept."""
        if "_registry_row" not in self.__dict__:  # not a field: not compared, replaced or written
            object.__setattr__(self, "_registry_row", find_benchmark(self.data))
        return self.__dict__["_registry_row"]

    def data_file(self, data_dir: str | Path = DEFAULT_DATA_DIR) -> Path:
        """The file this task reads: the path as given, else a registered name's file under DATA_DIR."""
        path = Path(self.data)
        if path.exists():
            return path
        row = self.registry_row()
        return row.local_path(data_dir) if row is not None and row.name == self.data else path

    def to_dict(self) -> dict[str, Any]:
        """Its fields as JSON values (a sweep keeps its tasks so); ``from_dict`` reads them back."""
        doc = dataclasses.asdict(self)
        doc["scorers"] = list(self.scorers) if self.scorers is not None else None
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> "Task":
        unknown = sorted(set(doc) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise TaskError(f"unknown task field {', '.join(unknown)}")
        return cls(**doc)

    def with_data(self, data: str, name: str = "") -> "Task":
        """The same task over other data (its name from DATA unless NAME is given)."""
        return replace(self, data=str(data), name=name)


def from_benchmark(row: "Benchmark | str", **settings: Any) -> Task:
    """The task of a registry ROW (a ``registry.Benchmark`` or its name), with SETTINGS (Task fields).
    Its adapter is the registry's, applied when the file is read."""
    if not isinstance(row, Benchmark):
        try:
            row = get_benchmark(row)
        except KeyError as exc:
            raise TaskError(exc.args[0]) from None
    task = Task(data=row.name, name=row.name, **settings)
    object.__setattr__(task, "_registry_row", row)  # the row in hand: resolving the task reads no other
    return task


def from_suite(suite: "Suite | str", extra_data: Iterable[str] = ()) -> list[Task]:
    """A suite's tasks, one per benchmark in column order, with the suite's prompt, generation settings
    and scorers (a benchmark's row may name its own scorers and add scorer options); EXTRA_DATA (files
    or registered names) become tasks with the suite's settings."""
    from evalkit.data.suites import load_suite

    suite = load_suite(suite) if isinstance(suite, str) else suite

    def options(*layers: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for layer in layers:
            for scorer, opts in layer.items():
                out.setdefault(scorer, {}).update(opts)
        return out

    tasks = [Task(data=b.name, name=b.name, prompt=suite.prompt, prompt_variant=b.prompt_variant,
                  generation=suite.generation, scorers=b.scorers if b.scorers is not None else suite.scorers,
                  scorer_options=options(suite.scorer_options, b.scorer_options)) for b in suite.benchmarks]
    shared = Task(data=suite.benchmarks[0].name, prompt=suite.prompt, generation=suite.generation,
                  scorers=suite.scorers, scorer_options=options(suite.scorer_options)) if tasks else None
    return tasks + [shared.with_data(d) if shared else Task(data=d) for d in extra_data]
