"""Run planning: a run's settings resolved and checked, and tasks resolved once into what the runner executes.

``evalkit.config`` holds the settings types and their defaults as data; what needs the rest of
evalkit to fill or check them is here: the defaults that depend on other settings
(``resolve_config``: prompt, samples, temperature, the backend's concurrency), the checks
(``validate_config``), the keys a config carries (``config_secrets``) and a config for a
recorded server (``config_on_server``).

A ``Task`` says what to evaluate; ``resolve_task`` makes it a ``ResolvedTask`` once: its file and
registry row (the row read once), its adapter and its run settings. ``plan_runs`` groups resolved
tasks that differ only in their data into one run (one run directory, one fingerprint over their
files), and ``prepare_run`` turns a planned run into the ``RunPlan`` the runner executes: settings
resolved and validated, the prompt template loaded and checked once, the refinement template.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from evalkit.config import (API_KEY_ENV, DEFAULT_CONCURRENCY, DEFAULT_DATA_DIR, DEFAULT_PROMPT, ENSEMBLE_REFINEMENT,
                            ER_PROMPT, ER_SAMPLES, MULTI_SAMPLE_TEMPERATURE, SINGLE, STRATEGIES, UNKNOWN_RULES,
                            RunConfig)
from evalkit.core.limits import check_run_numbers
from evalkit.data.adapters import get_adapter
from evalkit.data.datasets import DataSource
from evalkit.data.prompts import PromptTemplate, load_template
from evalkit.run.rundir import check_path_component
from evalkit.scoring.base import secret_option_values
from evalkit.run.sampling import STRATEGY_REGISTRY, RefineTemplate, load_refine_template
from evalkit.run.tasks import GENERATION_FIELDS, Task, TaskError

if TYPE_CHECKING:
    from evalkit.data.registry import Benchmark
    from evalkit.serving.state import ServerHandle

RUN_FIELDS = frozenset(f.name for f in dataclasses.fields(RunConfig))
# The RunConfig fields a task decides; the others (endpoint, limits, folders...) belong to the run.
TASK_RUN_FIELDS = ("adapter", "prompt", "strategy", "samples", "scorers", "extractor")


# ---------------------------------------------------------------- a run's settings


def backend_concurrency(backend: str | None) -> int:
    """Requests in flight by default against BACKEND (a registry name or ``module:attr``):
    its declared default concurrency, else DEFAULT_CONCURRENCY."""
    from evalkit.serving.backends import default_concurrency

    return default_concurrency(backend) or DEFAULT_CONCURRENCY


def config_on_server(server: "ServerHandle | str | None" = None, **settings: Any) -> RunConfig:
    """A config that talks to a server ``evalkit serve`` (or ``api.serve``) started.

    SERVER is its handle, its recorded name, or None for the only server recorded. The
    endpoint, the backend (for its defaults) and, unless SETTINGS name one, the model come
    from it; the API key is never recorded, so it comes from SETTINGS or $EVALKIT_API_KEY.
    """
    from evalkit.serving.state import ServerHandle, resolve_endpoint

    handle = server if isinstance(server, ServerHandle) else resolve_endpoint(server)
    settings.setdefault("eval_files", [])
    settings.setdefault("model", handle.model)
    settings.setdefault("api_key", os.environ.get(API_KEY_ENV))
    return RunConfig(endpoint=handle.base_url, backend=handle.backend, **settings)


def resolve_config(config: RunConfig) -> RunConfig:
    """A copy of CONFIG with every default that depends on other settings filled in: the samples (1, 11
    for ensemble refinement), the temperature (0, 0.7 with several samples), the concurrency (the
    backend's, else 512) and the prompt (``strict``, ``er_sample`` for ensemble refinement)."""
    er = config.strategy == ENSEMBLE_REFINEMENT
    # "is None", not "or": an out-of-range 0 must reach validate_config, not become the default.
    samples = config.samples if config.samples is not None else (ER_SAMPLES if er else 1)
    params = config.params
    if params.temperature is None:
        params = replace(params, temperature=MULTI_SAMPLE_TEMPERATURE if samples > 1 or er else 0.0)
    concurrency = config.concurrency if config.concurrency is not None else backend_concurrency(config.backend)
    return replace(config, samples=samples, params=params, concurrency=concurrency,
                   prompt=config.prompt or (ER_PROMPT if er else DEFAULT_PROMPT))


def registered_strategy(name: str) -> bool:
    """True when NAME is a strategy a user registered (``sampling.register_strategy``); the built-in
    ``single`` is not picked by name (it is what one sample per item means)."""
    return name != SINGLE and name in STRATEGY_REGISTRY


def validate_config(config: RunConfig) -> None:
    """Raise ValueError on settings that cannot make a sensible run (call on ``resolve_config``'s copy)."""
    if not config.all_endpoints():
        raise ValueError("no endpoint given")
    strategy = config.strategy
    if strategy not in STRATEGIES and ":" not in strategy and not registered_strategy(strategy):
        raise ValueError(f"unknown strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}, "
                         "or give one as module:attr")
    check_run_numbers(config)
    if config.multi_sample and (config.params.temperature or 0) <= 0:
        raise ValueError(f"{strategy} with {config.samples} samples needs a temperature > 0 "
                         "(greedy samples would all be the same)")
    for name, what in ((config.task_folder, "task_folder (--task-folder)"), (config.run_name, "run_name (--run-name)")):
        if name is not None:
            check_path_component(name, what)
    if config.order_unknown not in UNKNOWN_RULES:
        raise ValueError(f"order_unknown must be one of {', '.join(UNKNOWN_RULES)}")


def config_secrets(config: RunConfig) -> list[str]:
    """Every key CONFIG carries (the model's, scorer options such as judge.api_key): never written."""
    return [s for s in (config.api_key, *secret_option_values(config.scorer_options)) if s]


# ---------------------------------------------------------------- tasks, resolved once


@dataclass(frozen=True)
class ResolvedTask:
    """A task as the runner executes it: the TASK as given, its SOURCE (the file, with the registry row
    read once and the adapter that reads it) and its CONFIG (the run settings the task, the run and the
    overrides make; ``eval_files`` is its one file)."""

    task: Task
    source: DataSource
    config: RunConfig

    @property
    def name(self) -> str:
        return self.task.name

    @property
    def path(self) -> Path:
        return self.source.path

    @property
    def benchmark(self) -> "Benchmark | None":
        return self.source.benchmark


def default_prompt(row: "Benchmark | None", adapter: str | None) -> str | None:
    """The prompt of a task whose run names none: its registry ROW's ``prompt`` when read with the row's
    adapter, else the ``default_prompt`` its ADAPTER (or the row's) declares (a benchmark's own), else None
    (the run's default, ``strict``)."""
    if row is not None and row.prompt and adapter in (None, row.adapter):
        return row.prompt
    name = adapter or (row.adapter if row is not None else None)
    if name is None or ":" in name:
        return None  # a plain file (mcq) or an outside adapter: the run's default
    try:
        return getattr(get_adapter(name), "default_prompt", None)
    except ValueError:
        return None  # an unknown adapter is reported where the data is read


def _is_multi_sample(settings: Mapping[str, Any]) -> bool:
    return (settings.get("samples") or 1) > 1 or settings.get("strategy") == ENSEMBLE_REFINEMENT


def task_config(task: Task, row: "Benchmark | None", base: RunConfig, overrides: Mapping[str, Any]) -> RunConfig:
    """TASK's RunConfig (without its file): BASE (the run's settings), then what the task sets, then
    OVERRIDES (RunConfig fields and single GenerationParams fields, which win over the task's). ROW is
    the task's registry row, for the prompt it names.

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
        prompt = default_prompt(row, settings.get("adapter", base.adapter))
        if prompt is not None:
            settings["prompt"] = prompt
    generation = dict(task.generation)
    if _is_multi_sample(merged):
        generation.pop("temperature", None)
    generation.update({k: v for k, v in overrides.items() if k in GENERATION_FIELDS})
    params = replace(settings.pop("params", base.params), **generation)
    return replace(base, **settings, scorer_options=options, params=params)


def resolve_task(task: Task, base: RunConfig, overrides: Mapping[str, Any] | None = None,
                 data_dir: str | Path = DEFAULT_DATA_DIR) -> ResolvedTask:
    """TASK resolved once: its file under DATA_DIR with its registry row (read once, by the task), the
    adapter that reads it, and its settings (``task_config``)."""
    row = task.registry_row()
    path = task.data_file(data_dir)
    config = task_config(task, row, base, dict(overrides or {}))
    # The row the loader verifies the file against is the one its file name matches (a registered
    # name stands for its file, so they agree; a file merely named like a benchmark has none).
    loader_row = row if row is not None and row.file_name == path.name else None
    source = DataSource(path, loader_row, config.adapter)
    return ResolvedTask(task, source, replace(config, eval_files=[str(path)]))


def config_tasks(config: RunConfig) -> list[ResolvedTask]:
    """The files of a RunConfig as resolved tasks (``runner.run_eval``): each file as given, a task of
    its own named by its registry row or its stem, with CONFIG's settings."""
    out = []
    for file in config.eval_files:
        source = DataSource.of(file, config.adapter)
        name = source.benchmark.name if source.benchmark is not None else Path(file).stem
        out.append(ResolvedTask(Task(data=str(file), name=name), source, replace(config, eval_files=[str(file)])))
    return out


@dataclass
class PlannedRun:
    """One run of ``plan_runs``: its config (every task's file in ``eval_files``) and the tasks it runs."""

    config: RunConfig
    tasks: list[ResolvedTask]


def plan_runs(tasks: Sequence[Task], base: RunConfig, overrides: Mapping[str, Any] | None = None,
              data_dir: str | Path = DEFAULT_DATA_DIR) -> list[PlannedRun]:
    """The runs that evaluate TASKS, each task resolved once (``resolve_task``): tasks whose configs
    differ only in their data share one run, in the order of their first task. Raises TaskError on an
    unknown override.

    The same file given twice stays twice in its run's files: the runner reads it once, with a note."""
    overrides = dict(overrides or {})
    if "eval_files" in overrides:
        raise TaskError("tasks name their data: give each file as a task (Task(data=FILE)), not eval_files")
    unknown = sorted(set(overrides) - RUN_FIELDS - GENERATION_FIELDS)
    if unknown:
        raise TaskError(f"unknown setting {', '.join(unknown)}: give RunConfig or GenerationParams fields")
    runs: list[PlannedRun] = []
    for task in tasks:
        resolved = resolve_task(task, base, overrides, data_dir)
        config = resolved.config
        for run in runs:
            if replace(run.config, eval_files=[]) == replace(config, eval_files=[]):
                run.config.eval_files.extend(config.eval_files)
                run.tasks.append(resolved)
                break
        else:
            runs.append(PlannedRun(replace(config, eval_files=list(config.eval_files)), [resolved]))
    return runs


def check_prompt_shows(task: Task, template: PromptTemplate) -> None:
    """TaskError when TASK needs its items' context in the prompt and TEMPLATE cannot show it."""
    if task.prompt_variant != "context":
        return
    shows = "context" in template.fields or (template.context_variant is not None
                                             and "context" in template.context_variant.fields)
    if not shows:
        raise TaskError(f"{task.name} needs a prompt that shows the abstract, and template {template.name!r} "
                        "has neither a {context} field nor a _context variant")


@dataclass(frozen=True)
class RunPlan:
    """What the runner executes: the run's settings resolved and validated (CONFIG), its TASKS, the
    prompt TEMPLATE loaded and checked once, and the REFINE template of ensemble refinement."""

    config: RunConfig
    tasks: tuple[ResolvedTask, ...]
    template: PromptTemplate
    refine: RefineTemplate | None = None


def prepare_run(run: PlannedRun) -> RunPlan:
    """RUN ready to execute: its settings resolved (``resolve_config``) and checked (``validate_config``),
    its template loaded once and checked against every task (ValueError, TemplateError, TaskError)."""
    config = resolve_config(run.config)
    validate_config(config)
    template = load_template(config.prompt or DEFAULT_PROMPT)
    for task in run.tasks:
        check_prompt_shows(task.task, template)
    refine = load_refine_template(config.refine_prompt) if config.strategy == ENSEMBLE_REFINEMENT else None
    return RunPlan(config, tuple(run.tasks), template, refine)


def plan_config(config: RunConfig) -> RunPlan:
    """A RunConfig as one run (``prepare_run`` of its files as tasks: ``config_tasks``)."""
    return prepare_run(PlannedRun(config, config_tasks(config)))
