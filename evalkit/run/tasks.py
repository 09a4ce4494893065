"""Tasks: the unit of an evaluation.

A ``Task`` says what to evaluate and how: its data (a registered benchmark's name,
or a file with the adapter that reads it), its prompt, its strategy, its scorers
with their options, and the generation settings it needs. Registry rows and suite
files make tasks (``from_benchmark``, ``from_suite``); ``evalkit.api.evaluate``
runs one, several, or a suite's, on a server.

A task sets only what it cares about: every field left None (or empty) takes the
run's value, whose defaults live in ``evalkit.config``. ``plan_runs`` turns tasks
into ``RunConfig``s; tasks that differ only in their data share one run (one run
directory, one fingerprint over their files), as a suite's benchmarks always have,
so a suite still reports as one table and resumes as one run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from evalkit.config import DEFAULT_DATA_DIR, ENSEMBLE_REFINEMENT, GenerationParams, RunConfig
from evalkit.core.errors import InputError

if TYPE_CHECKING:
    from evalkit.data.registry import Benchmark
    from evalkit.run.runner import RunResult
    from evalkit.run.summary import DatasetSummary
    from evalkit.data.suites import Suite

GENERATION_FIELDS = frozenset(f.name for f in dataclasses.fields(GenerationParams))
RUN_FIELDS = frozenset(f.name for f in dataclasses.fields(RunConfig))
# The RunConfig fields a task decides; the others (endpoint, limits, folders...) belong to the run.
TASK_RUN_FIELDS = ("adapter", "prompt", "strategy", "samples", "scorers", "extractor")


class TaskError(InputError):
    """A task that cannot be run as given (an unknown setting, a prompt that cannot show what it needs)."""


@dataclass(frozen=True)
class Task:
    """One evaluation: DATA read by ADAPTER, asked with PROMPT, answered by STRATEGY, scored by SCORERS.

    ``data`` is a registered benchmark's name (``"medqa"``, its file under the data folder) or a
    file path. ``name`` defaults to the benchmark's name or the file's stem. ``generation``
    holds the ``GenerationParams`` fields this task sets (``{"max_new_tokens": 2000}``).
    ``prompt_variant="context"`` says the prompt must show the item's context (PubMedQA's
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
            object.__setattr__(self, "name", _default_name(self.data))
        unknown = sorted(set(self.generation) - GENERATION_FIELDS)
        if unknown:
            raise TaskError(f"task {self.name!r}: unknown generation setting {', '.join(unknown)} "
                            f"(known: {', '.join(sorted(GENERATION_FIELDS))})")
        object.__setattr__(self, "generation", dict(self.generation))
        object.__setattr__(self, "scorer_options", {k: dict(v) for k, v in self.scorer_options.items()})
        if self.scorers is not None:
            object.__setattr__(self, "scorers", tuple(self.scorers))

    def data_file(self, data_dir: str | Path = DEFAULT_DATA_DIR) -> Path:
        """The file this task reads: the path as given, else a registered name's file under DATA_DIR."""
        from evalkit.data.registry import resolve_benchmark_file

        return resolve_benchmark_file(self.data, data_dir)

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


def _default_name(data: str) -> str:
    """A registered benchmark's name as it is; a file's stem."""
    from evalkit.data.registry import get_benchmark, match_file

    try:
        return get_benchmark(data).name
    except KeyError:
        bench = match_file(data)
        return bench.name if bench is not None else Path(data).stem


def from_benchmark(row: "Benchmark | str", **settings: Any) -> Task:
    """The task of a registry ROW (a ``registry.Benchmark`` or its name), with SETTINGS (Task fields).
    Its adapter is the registry's, applied when the file is read."""
    from evalkit.data.registry import Benchmark, get_benchmark

    if not isinstance(row, Benchmark):
        try:
            row = get_benchmark(row)
        except KeyError as exc:
            raise TaskError(exc.args[0]) from None
    return Task(data=row.name, name=row.name, **settings)


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


def check_prompt_shows(task: Task, template: Any) -> None:
    """TaskError when TASK needs its items' context in the prompt and TEMPLATE (a PromptTemplate) cannot show it."""
    if task.prompt_variant != "context":
        return
    shows = "context" in template.fields or (template.context_variant is not None
                                             and "context" in template.context_variant.fields)
    if not shows:
        raise TaskError(f"{task.name} needs a prompt that shows the abstract, and template {template.name!r} "
                        "has neither a {context} field nor a _pubmedqa variant")


def _is_multi_sample(settings: Mapping[str, Any]) -> bool:
    return (settings.get("samples") or 1) > 1 or settings.get("strategy") == ENSEMBLE_REFINEMENT


def default_prompt(data: str, adapter: str | None) -> str | None:
    """The prompt of DATA when a run names none: its registry row's ``prompt`` (the row found by name or
    file name) when read with the row's adapter, else the ``default_prompt`` its adapter declares
    (IgakuQA's), else None (the run's default, ``strict``)."""
    from evalkit.data.adapters import get_adapter
    from evalkit.data.registry import get_benchmark, match_file

    try:
        row = get_benchmark(data)
    except KeyError:
        row = match_file(data)
    if row is not None and row.prompt and adapter in (None, row.adapter):
        return row.prompt
    name = adapter or (row.adapter if row is not None else None)
    if name is None or ":" in name:
        return None  # a plain file (mcq) or an outside adapter: the run's default
    try:
        return getattr(get_adapter(name), "default_prompt", None)
    except ValueError:
        return None  # an unknown adapter is reported where the data is read


def task_config(task: Task, base: RunConfig, overrides: Mapping[str, Any], data_dir: str | Path) -> RunConfig:
    """TASK's RunConfig: BASE (the run's settings), then what the task sets, then OVERRIDES (RunConfig
    fields and single GenerationParams fields, which win over the task's).

    A task's temperature is left out of a multi-sample run (its greedy setting would make every
    sample the same); the run's default sampling temperature applies unless OVERRIDES set one.
    """
    settings: dict[str, Any] = {k: getattr(task, k) for k in TASK_RUN_FIELDS if getattr(task, k) is not None}
    if "scorers" in settings:
        settings["scorers"] = list(settings["scorers"])
    options = {k: dict(v) for k, v in base.scorer_options.items()}
    for scorer, opts in task.scorer_options.items():
        options.setdefault(scorer, {}).update(opts)
    run_overrides = {k: v for k, v in overrides.items() if k in RUN_FIELDS}
    for scorer, opts in (run_overrides.pop("scorer_options", None) or {}).items():
        options.setdefault(scorer, {}).update(opts)
    settings.update(run_overrides)
    merged = {**{k: getattr(base, k) for k in ("samples", "strategy")}, **settings}
    if "prompt" not in settings and base.prompt is None and merged["strategy"] != ENSEMBLE_REFINEMENT:
        prompt = default_prompt(task.data, settings.get("adapter", base.adapter))
        if prompt is not None:
            settings["prompt"] = prompt
    generation = dict(task.generation)
    if _is_multi_sample(merged):
        generation.pop("temperature", None)
    generation.update({k: v for k, v in overrides.items() if k in GENERATION_FIELDS})
    params = replace(settings.pop("params", base.params), **generation)
    return replace(base, **settings, scorer_options=options, params=params,
                   eval_files=[str(task.data_file(data_dir))])


@dataclass
class PlannedRun:
    """One run of ``plan_runs``: its config (every task's file in ``eval_files``) and the tasks it runs."""

    config: RunConfig
    tasks: list[Task]


def plan_runs(tasks: Sequence[Task], base: RunConfig, overrides: Mapping[str, Any] | None = None,
              data_dir: str | Path = DEFAULT_DATA_DIR) -> list[PlannedRun]:
    """The runs that evaluate TASKS: tasks whose configs differ only in their data share one run,
    in the order of their first task. Raises TaskError on an unknown override.

    The same file given twice stays twice in its run's files: the runner reads it once, with a note."""
    overrides = dict(overrides or {})
    if "eval_files" in overrides:
        raise TaskError("tasks name their data: give each file as a task (Task(data=FILE)), not eval_files")
    unknown = sorted(set(overrides) - RUN_FIELDS - GENERATION_FIELDS)
    if unknown:
        raise TaskError(f"unknown setting {', '.join(unknown)}: give RunConfig or GenerationParams fields")
    runs: list[PlannedRun] = []
    for task in tasks:
        config = task_config(task, base, overrides, data_dir)
        for run in runs:
            if replace(run.config, eval_files=[]) == replace(config, eval_files=[]):
                run.config.eval_files.extend(config.eval_files)
                run.tasks.append(task)
                break
        else:
            runs.append(PlannedRun(config, [task]))
    return runs


@dataclass
class TaskResult:
    """What one task produced: the run it was part of, and its rows of that run's summary (one per dataset)."""

    task: Task
    run: "RunResult"
    summary: dict[str, "DatasetSummary"]

    @property
    def run_dir(self) -> Path:
        return self.run.run_dir


@dataclass
class Evaluation:
    """Results per task (``evaluation["medqa"]``), and the runs that made them."""

    tasks: list[TaskResult]
    runs: list["RunResult"]
    suite: "Suite | None" = None
    configs: list[RunConfig] = field(default_factory=list)  # each run's config, as planned (before resolved())

    def __getitem__(self, name: str) -> TaskResult:
        for result in self.tasks:
            if result.task.name == name:
                return result
        raise KeyError(f"no task named {name!r} (tasks: {', '.join(r.task.name for r in self.tasks)})")

    def __iter__(self):
        return iter(self.tasks)

    def __len__(self) -> int:
        return len(self.tasks)


def task_results(run: PlannedRun, result: "RunResult", data_dir: str | Path) -> list[TaskResult]:
    """Each task of RUN with its rows of RESULT's summary (the datasets its file held)."""
    out = []
    for task in run.tasks:
        names = result.datasets.get(str(task.data_file(data_dir)), [])
        out.append(TaskResult(task, result, {n: result.summary[n] for n in names if n in result.summary}))
    return out


def evaluate_tasks(tasks: Sequence[Task], base: RunConfig, overrides: Mapping[str, Any] | None = None, *,
                   data_dir: str | Path = DEFAULT_DATA_DIR, suite: "Suite | None" = None,
                   **callbacks: Any) -> Evaluation:
    """Run TASKS on BASE's server (``plan_runs``), every run checked before the first request.

    CALLBACKS (on_sample, on_start, progress, on_notice) go to each run (``runner.run_eval``).
    A SUITE is recorded in each run's manifest, so the report lays it out as the suite's table.
    """
    from evalkit.data.prompts import load_template
    from evalkit.run.runner import run_eval

    overrides = dict(overrides or {})
    if suite is not None:
        overrides.setdefault("suite", suite.to_manifest())
    runs = plan_runs(tasks, base, overrides, data_dir)
    for run in runs:
        try:
            resolved = run.config.resolved()
            resolved.validate()
            template = load_template(resolved.prompt)
        except ValueError as exc:  # a setting out of range, an unknown template: before any request
            raise TaskError(str(exc)) from None
        for task in run.tasks:
            check_prompt_shows(task, template)
    results: list[TaskResult] = []
    finished: list["RunResult"] = []
    for run in runs:
        result = run_eval(run.config, **callbacks)
        finished.append(result)
        results += task_results(run, result, data_dir)
    return Evaluation(results, finished, suite, [run.config for run in runs])
