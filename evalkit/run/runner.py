"""The runner: send every item to the server, then score each answer, saving each sample at once.

Two stages, each resumable. Generation: every item goes through its strategy's
stages (evalkit.run.sampling) and the finished sample is handed to the scoring stage
(evalkit.scoring.stage), which applies the synchronous scorers at once and saves
it. Scoring pass: after generation, samples whose scores are missing or were
computed under another scoring fingerprint (a changed scorer, a model judge) are
scored from what is saved, requesting nothing from the answering server.

Dispatch is continuous: ``concurrency`` workers each take the next request as soon
as their last one returns, so the server always has that many requests in flight
(no batch barrier waiting on the slowest generation). Prompts are rendered as
items are dispatched, and the summary is computed by streaming the samples file,
so memory does not grow with the size of a run's outputs.

Every finished sample is appended to ``samples.jsonl`` and flushed before the
next is taken, so a run stopped at any moment (SIGKILL included) keeps all it
has; running the same command again resumes where it stopped. Multi-sample
strategies (evalkit.run.sampling) also journal each generation to
``generations.jsonl`` as it arrives, so a resume re-requests only the
generations that are missing, not whole items.

The parts live beside it: evalkit.run.plan (tasks resolved once, settings resolved and
checked: the ``RunPlan`` this module executes), evalkit.run.dispatch (the dispatcher and the
scoring sink), evalkit.run.resume (the resume index and the generation journal),
evalkit.run.manifest (the fingerprint and the manifest); this module orchestrates them.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence

# The config types live in evalkit.config; imported here so old imports (runner.RunConfig) keep working.
from evalkit.config import (API_KEY_ENV, DEFAULT_CONCURRENCY, DEFAULT_DATA_DIR, DEFAULT_PROMPT,  # noqa: F401
                            ER_SAMPLES, MULTI_SAMPLE_TEMPERATURE, RunConfig)
from evalkit.serving.client import EndpointPool, RequestError, RetryPolicy
from evalkit.data.datasets import LoadedDataset, RunData, load_datasets
from evalkit.run.dispatch import RunProgress, Dispatcher, ScoringSink
from evalkit.core.limits import MB
from evalkit.core.lock import LockLost, lock_run_dir, took_over_message
from evalkit.run.manifest import (check_fingerprint, default_run_name, masked, run_fingerprint, start_manifest,
                              strategy_doc, utc_now)
from evalkit.run.order import plan_dispatch
from evalkit.data.prompts import PromptTemplate, draw_exemplars, load_exemplars
from evalkit.core.records import Item, SampleRecord
from evalkit.core.journal import GENERATIONS, SAMPLES as SAMPLES_JOURNAL, Journal
from evalkit.run.plan import (PlannedRun, RunPlan, backend_concurrency, config_secrets,  # noqa: F401
                              plan_config, plan_runs, prepare_run)
from evalkit.run.resume import SampleIndex, index_on_disk, open_generations
from evalkit.run.rundir import run_dir_inside
from evalkit.run.sampling import Stage, strategy_stages
from evalkit.run.tasks import Task, TaskError
from evalkit.run.summary import DatasetSummary
from evalkit.scoring.base import check_requirements
from evalkit.scoring.plan import ScoringPlan, plan_scoring, record_default_metrics
from evalkit.scoring.stage import score_run_dir
from evalkit.core.store import MANIFEST, SAMPLES, SUMMARY, SampleWriter, write_json
from evalkit.core.errors import UnreachableError

if TYPE_CHECKING:
    from evalkit.data.suites import Suite


class EndpointDown(UnreachableError):
    """The server stopped answering mid-run; what was collected is saved."""


@dataclass
class RunResult:
    """What a finished (or stopped) run produced."""

    run_dir: Path
    summary: dict[str, DatasetSummary]
    total: int
    resumed: int
    requested: int
    errors: int
    retries: int
    wall_s: float
    complete: bool = True
    endpoints: list[dict[str, Any]] = field(default_factory=list)
    scores_to_retry: int = 0  # samples whose judge was unreachable: scored by the next run of the command
    datasets: dict[str, list[str]] = field(default_factory=dict)  # each input file (as given): its datasets' names
    task_datasets: list[list[str]] = field(default_factory=list)  # each task of the run, in order: its datasets


def slug(text: str) -> str:
    """A file-name-safe form of TEXT (model ids often hold slashes)."""
    # No leading dots: a model id such as ".." must not become a path part that climbs out.
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-").lstrip(".")[:80] or "model"

def scoring_plan(config: RunConfig, loaded: list[LoadedDataset]) -> ScoringPlan:
    """The run's scorers (``plan_scoring``): those named in the config, else those the first item
    declares (``Item.default_scorers``: ``choice`` for multiple choice, a target type's own, or none).
    Each is checked against the first item of every file, so a scorer that cannot work on these
    items fails before any request."""
    names = config.scorers
    if names is None:
        first = next((ds.items[0] for ds in loaded if ds.items), None)
        names = ["choice"] if first is None else list(first.default_scorers)
    plan = plan_scoring(names, extractor=config.extractor, scorer_options=config.scorer_options)
    for ds in loaded:
        if ds.items:
            check_requirements(plan.scorers, ds.items[0], str(ds.path))
    return plan


def _notice(on_notice: Callable[[str], None] | None, message: str | None) -> None:
    if message is None:
        return
    if on_notice is not None:
        on_notice(message)
    else:
        logging.getLogger("evalkit").warning("%s", message)


def load_inputs(plan: RunPlan, on_notice: Callable[[str], None] | None = None) -> tuple[RunData, list[Item] | None]:
    """Load and validate every task's file (and few-shot exemplars) before any request is sent; the
    templates were loaded and checked when the run was planned (``plan.prepare_run``).

    A file given twice is read once (ON_NOTICE hears of it); different files that would make one
    dataset are refused (``datasets.load_datasets``).
    """
    config = plan.config
    data = load_datasets([task.source for task in plan.tasks], skip_invalid=config.skip_invalid,
                         max_line_bytes=int(config.max_record_mb * MB))
    for message in data.notices:
        _notice(on_notice, message)
    return data, draw_run_exemplars(config, plan.template, data.loaded)


def draw_run_exemplars(config: RunConfig, template: PromptTemplate, loaded: list[LoadedDataset]) -> list[Item] | None:
    """The few-shot exemplars of a run: drawn once, seeded, never from the evaluated items."""
    variant = template.context_variant
    if "exemplars" not in template.fields and (variant is None or "exemplars" not in variant.fields):
        return None
    pool = load_exemplars(config.exemplars_file)
    evaluated = [item for ds in loaded for item in ds.items]
    return draw_exemplars(pool, config.fewshot_k, seed=config.fewshot_seed, exclude=evaluated)


def selected_items(loaded: list[LoadedDataset], limit: int | None) -> Iterator[Item]:
    """The items a run covers, in file order: the first LIMIT of each file."""
    for ds in loaded:
        yield from (ds.items[:limit] if limit else ds.items)


async def _resolve_model(pool: EndpointPool, requested: str | None, api_key: str | None) -> str:
    """The model id the run requests; every endpoint must serve it."""
    from evalkit.serving.backends import served_models
    from evalkit.serving.probe import key_refused_message, refuses_key

    async def models_of(url: str) -> list[str]:
        try:
            return await asyncio.to_thread(served_models, url, api_key=api_key, timeout=10.0)
        except (OSError, ValueError) as exc:
            if refuses_key(exc):  # it answers: it wants a key (or another one), which no retry brings
                message = key_refused_message(exc.code, given=bool(api_key), where=f"--api-key or ${API_KEY_ENV}")
                raise RequestError(message, endpoint=url, retryable=False) from None
            raise RequestError(f"cannot reach the server ({exc}); is it running? (`evalkit status`)",
                               endpoint=url) from None

    listed = await asyncio.gather(*(models_of(u) for u in pool.base_urls))
    if requested:
        for url, models in zip(pool.base_urls, listed):
            if models and requested not in models:
                raise RequestError(f"model {requested!r} is not served here; it lists {models}", endpoint=url,
                                   retryable=False)
        return requested
    firsts = {}
    for url, models in zip(pool.base_urls, listed):
        if not models:
            raise RequestError("the server lists no model; pass --model", endpoint=url, retryable=False)
        firsts[url] = models[0]
    if len(set(firsts.values())) > 1:
        raise RequestError("the endpoints serve different models: " +
                           ", ".join(f"{u} serves {m!r}" for u, m in firsts.items()) +
                           "; one run must use one model (pass --model if they all serve it)",
                           endpoint=pool.base_urls[0], retryable=False)
    return next(iter(firsts.values()))


def run_eval(config: RunConfig, *, on_sample: Callable[[SampleRecord], None] | None = None,
             on_start: Callable[[int, int], None] | None = None,
             progress: RunProgress | None = None, on_notice: Callable[[str], None] | None = None) -> RunResult:
    """Run (or resume) an evaluation of CONFIG's files and write its samples, summary and manifest:
    ``execute`` of ``plan.plan_config(CONFIG)`` (each file a task; settings resolved and checked first)."""
    return execute(plan_config(config), on_sample=on_sample, on_start=on_start, progress=progress,
                   on_notice=on_notice)


def execute(plan: RunPlan, *, on_sample: Callable[[SampleRecord], None] | None = None,
            on_start: Callable[[int, int], None] | None = None,
            progress: RunProgress | None = None, on_notice: Callable[[str], None] | None = None) -> RunResult:
    """Run (or resume) the run PLAN describes (its resolved tasks, settings and template) and write its
    samples, summary and manifest; ``RunResult.task_datasets`` says which datasets each task's file held.

    ON_START(total, already_done) is called once dispatch begins; ON_SAMPLE(record)
    after each sample is saved; PROGRESS, if given, is kept up to date in place
    (for progress display); ON_NOTICE(message) hears about the run-directory lock
    (waiting for another run, taking over a dead one's lock; default: logged). Ctrl-C stops cleanly: samples finished so far are
    saved, summary and manifest are written, and KeyboardInterrupt propagates.
    """
    return asyncio.run(_run_eval(plan, on_sample=on_sample, on_start=on_start, on_notice=on_notice,
                                 progress=progress if progress is not None else RunProgress()))


@dataclass
class _Invocation:
    """One `evalkit run` of a run directory while it goes: its inputs, its place, what it counted."""

    config: RunConfig
    loaded: list[LoadedDataset]
    plan: ScoringPlan
    stages: list[Stage]
    pool: EndpointPool
    run_dir: Path
    progress: RunProgress
    on_notice: Callable[[str], None] | None
    t_start: float
    index: SampleIndex = field(default_factory=SampleIndex)
    total: int = 0
    resumed: int = 0
    manifest: dict[str, Any] = field(default_factory=dict)
    invocation: dict[str, Any] = field(default_factory=dict)  # this invocation's entry in manifest["invocations"]
    summary: dict[str, DatasetSummary] = field(default_factory=dict)
    n_ok: int = 0  # selected items with a sample that counts, as summary.json says
    complete: bool = False
    wall_s: float = 0.0

    @property
    def samples_file(self) -> Path:
        return self.run_dir / SAMPLES

    def items(self) -> Iterator[Item]:
        return selected_items(self.loaded, self.config.limit)

    def notice(self, message: object) -> None:
        """Tell the user (a torn journal line, say) through ON_NOTICE."""
        _notice(self.on_notice, str(message))


def _endpoint_pool(config: RunConfig, progress: RunProgress) -> EndpointPool:
    """The run's endpoint pool (not yet opened), counting retries into PROGRESS."""
    def count_retry(_: RequestError) -> None:
        progress.retries += 1

    retry = RetryPolicy(max_attempts=config.max_attempts, base_delay_s=config.retry_base_delay_s)
    return EndpointPool(config.all_endpoints(), config.model or "", api_key=config.api_key,
                        timeout_s=config.timeout_s, retry=retry, max_connections=config.concurrency or 1,
                        rps=config.rps, on_retry=count_retry, max_response_bytes=int(config.max_response_mb * MB))


async def _run_eval(run_plan: RunPlan, *, on_sample, on_start, progress: RunProgress, on_notice=None) -> RunResult:
    config, template, refine = run_plan.config, run_plan.template, run_plan.refine
    data, exemplars = load_inputs(run_plan, on_notice)
    loaded = data.loaded
    progress.skipped = [p for d in loaded for p in d.skipped]
    plan = scoring_plan(config, loaded)
    stages = strategy_stages(config.strategy_name(), config.samples or 1, refine=refine,
                             refine_samples=config.refine_samples)
    t_start = time.perf_counter()
    started_at = utc_now()

    async with _endpoint_pool(config, progress) as pool:
        pool.set_model(await _resolve_model(pool, config.model, config.api_key))
        fp = run_fingerprint(model=pool.model, prompt=template, data=loaded, params=config.params,
                             strategy=strategy_doc(config, refine), exemplars=exemplars)
        run_dir = run_dir_inside(config.results_dir, config.task_folder or slug(pool.model),
                                 config.run_name or default_run_name(template, config, fp))
        order_plan = plan_dispatch(config.order_from, config.order_unknown, results_dir=config.results_dir,
                                   data_sha256=[d.sha256 for d in loaded], prompt_sha256=template.sha256,
                                   limit=config.limit, exclude=run_dir)
        ordered = order_plan.order(selected_items(loaded, config.limit))  # changes timing only, never a sample
        progress.order = order_plan.describe() if config.order_from else None
        run_dir.mkdir(parents=True, exist_ok=True)
        progress.run_dir = run_dir
        run = _Invocation(config, loaded, plan, stages, pool, run_dir, progress, on_notice, t_start)
        lock = await lock_run_dir(run_dir, wait=config.wait_for_lock, on_wait=lambda e: _notice(on_notice, str(e)))
        _notice(on_notice, took_over_message(lock))

        samples = Journal(run.samples_file, SAMPLES_JOURNAL, on_torn=run.notice)
        with lock, samples.writer() as writer:  # opening cuts a torn last line first
            earlier = check_fingerprint(run_dir, fp)
            _index_items(run)
            run.manifest, run.invocation = start_manifest(
                config, pool, template, refine, loaded, fp, started_at, run.total, exemplars=exemplars, plan=plan,
                order=order_plan.to_dict(), earlier=earlier)
            write_json(run_dir / MANIFEST, masked(run.manifest, config_secrets(config)))
            if on_start:
                on_start(run.total, run.resumed)
            journal, partial = open_generations(run_dir, stages, run.index, run.notice)
            sink = ScoringSink(plan, writer, run.index, progress, on_sample)
            index = run.index
            dispatcher = Dispatcher(
                config=config, pool=pool, template=template, stages=stages, exemplars=exemplars,
                journal=journal, partial=partial, sink=sink, progress=progress,
                items=(it for it in ordered if not index.done((it.dataset, it.id, 0))),
            )
            await _generate(run, writer, journal, dispatcher, sink)

    if dispatcher.down:
        raise EndpointDown(
            f"{', '.join(pool.base_urls)} stopped answering ({dispatcher.down[0]}); {run.n_ok} of {run.total} "
            f"samples are saved in {run.samples_file}. Restart the server and run the same command again to resume."
        )
    return RunResult(run_dir=run_dir, summary=run.summary, total=run.total, resumed=run.resumed,
                     requested=progress.sent, errors=sink.errors, retries=pool.retries, wall_s=run.wall_s,
                     complete=run.complete, endpoints=[ep.to_dict() for ep in pool.endpoints],
                     scores_to_retry=run.index.scores_to_retry,
                     datasets={str(d.path): list(d.datasets()) for d in loaded},
                     task_datasets=[list(d.datasets()) for d in data.of_source])


def _index_items(run: _Invocation) -> None:
    """Index samples.jsonl (noting stale scores) and select the run's items; count them and those done."""
    index = run.index
    index.load(run.samples_file, run.plan.is_current)
    total = resumed = 0
    for item in run.items():
        key = (item.dataset, item.id, 0)
        total += 1
        index.select(key)
        resumed += index.done(key)
    run.total, run.resumed = total, resumed
    run.progress.total, run.progress.resumed = total, resumed


async def _generate(run: _Invocation, writer: SampleWriter, journal: SampleWriter | None,
                    dispatcher: Dispatcher, sink: ScoringSink) -> None:
    """Dispatch every item not done, then (when nothing went wrong) the scoring pass; the end files
    (summary, manifest) are written however it stops."""
    status = "incomplete"
    try:
        await dispatcher.run()
    except asyncio.CancelledError:
        status = "interrupted"
        raise
    except OSError:
        status = "write-failed"  # a full disk or read-only results: no scoring pass on top of it
        raise
    except LockLost:
        status = "lock-lost"  # another run holds the directory now: nothing more is written
        raise
    finally:
        if status == "lock-lost":
            _close_quietly(writer, journal)  # what was written stays; no scoring pass, no end files
        else:
            await _end_generation(run, status, writer, journal, dispatcher, sink)


async def _end_generation(run: _Invocation, status: str, writer: SampleWriter, journal: SampleWriter | None,
                          dispatcher: Dispatcher, sink: ScoringSink) -> None:
    """Close the journals, run the scoring pass when generation went well, write the end files."""
    replaced = _close_files(run, writer, journal)
    rescored = 0
    if not replaced and not dispatcher.down and status == "incomplete" and \
            (run.plan.has_async or run.index.stale):
        # The scoring pass: samples saved without this plan's scores (a model judge's, or
        # those of a scorer that changed since they were saved) are scored now.
        rescored = await score_run_dir(run.run_dir, run.plan, counting=run.index.counting,
                                       concurrency=run.config.scoring_concurrency, on_torn=run.notice)
        _judges_down(run)
    _end_run(run, status, journal is not None, dispatcher, sink, rescored)


def _judges_down(run: _Invocation) -> None:
    """Say which model judge the scoring pass found down (it refuses the key, or stopped answering):
    the samples it did not score count as missing, and the same command scores them."""
    for scorer in run.plan.scorers:
        down_reason = getattr(scorer, "down_reason", None)  # a model judge tells; other scorers need no server
        reason = down_reason() if callable(down_reason) else None
        if reason:
            _notice(run.on_notice, f"scorer {scorer.name!r} stopped asking: {reason}; the samples it did not "
                                   "score count as missing until the same command is run again")


def _close_quietly(writer: SampleWriter, journal: SampleWriter | None) -> None:
    """Close WRITER and JOURNAL, their own failures left unsaid (a run that lost its lock stops for that)."""
    for w in (journal, writer):
        try:
            if w is not None:
                w.close()
        except OSError:
            pass


def _close_files(run: _Invocation, writer: SampleWriter, journal: SampleWriter | None) -> bool:
    """Close samples.jsonl and the journal; True (and a fresh index) when another process replaced
    samples.jsonl while this run wrote it."""
    if journal is not None:
        journal.close()
    replaced = writer.moved_away()
    writer.close()
    if replaced:  # another process replaced samples.jsonl: the index no longer describes it
        _notice(run.on_notice, f"{run.samples_file} was replaced by another process while this run wrote it; "
                               "samples saved after that are not in it (run the same command again to "
                               "redo them)")
        run.index = index_on_disk(run.samples_file, run.items())
    return replaced


def _end_run(run: _Invocation, status: str, journaled: bool, dispatcher: Dispatcher, sink: ScoringSink,
             rescored: int) -> None:
    """Summarize what samples.jsonl holds, settle the invocation's status and counts, write the end files."""
    run.wall_s = time.perf_counter() - run.t_start
    # The run's index was loaded from samples.jsonl and kept up to date line by line.
    run.summary, run.n_ok = run.index.summary(run.samples_file, run.plan.metrics)
    record_default_metrics(run.manifest["scoring"], run.summary)
    run.complete = run.n_ok == run.total
    if run.complete:
        status = "complete"
        if journaled:
            Journal.in_run(run.run_dir, GENERATIONS).remove()  # all in samples.jsonl now
    elif dispatcher.down:
        status = "endpoint-down"
    pool, progress, manifest = run.pool, run.progress, run.manifest
    run.invocation.update(finished_at=utc_now(), wall_s=round(run.wall_s, 3), sent=progress.sent,
                          requests=pool.requests, retries=pool.retries, errors=sink.errors, resumed=run.resumed,
                          rescored=rescored, status=status)
    # The top-level counts are this invocation's ("requested": the items it sent a request for).
    manifest.update(finished_at=run.invocation["finished_at"], wall_s=run.invocation["wall_s"],
                    retries=pool.retries, requests=pool.requests, requested=progress.sent,
                    resumed=run.resumed, errors=sink.errors, rescored=rescored,
                    endpoint_stats=[ep.to_dict() for ep in pool.endpoints])
    _write_end_files(run.run_dir, progress, status, {
        "run": str(run.run_dir),
        "complete": run.complete,
        "scores_to_retry": run.index.scores_to_retry,
        "datasets": {name: d.to_dict() for name, d in run.summary.items()},
    }, masked(manifest, config_secrets(run.config)))


def _write_end_files(run_dir: Path, progress: RunProgress, status: str, summary: dict[str, Any],
                     manifest: dict[str, Any]) -> None:
    """Write summary.json and the manifest (with STATUS) at the end of a run.

    After a failed write (STATUS "write-failed": a full disk, say) they are tried too, but
    their own failures only go into ``progress.unwritten``: the error that stopped the run,
    which names the first file that could not be written, is the one reported.
    """
    manifest["status"] = status
    for name, doc in ((SUMMARY, summary), (MANIFEST, manifest)):
        try:
            write_json(run_dir / name, doc)
        except OSError:
            if status != "write-failed":
                raise
            progress.unwritten.append(name)


# ---------------------------------------------------------------- tasks: planned once, executed run by run


@dataclass
class TaskResult:
    """What one task produced: the run it was part of, and its rows of that run's summary (one per dataset)."""

    task: Task
    run: RunResult
    summary: dict[str, DatasetSummary]

    @property
    def run_dir(self) -> Path:
        return self.run.run_dir


@dataclass
class Evaluation:
    """Results per task (``evaluation["medqa"]``), and the runs that made them."""

    tasks: list[TaskResult]
    runs: list[RunResult]
    suite: "Suite | None" = None
    configs: list[RunConfig] = field(default_factory=list)  # each run's config, as planned (before resolution)

    def __getitem__(self, name: str) -> TaskResult:
        for result in self.tasks:
            if result.task.name == name:
                return result
        raise KeyError(f"no task named {name!r} (tasks: {', '.join(r.task.name for r in self.tasks)})")

    def __iter__(self):
        return iter(self.tasks)

    def __len__(self) -> int:
        return len(self.tasks)


def task_results(plan: RunPlan, result: RunResult) -> list[TaskResult]:
    """Each task of PLAN with its rows of RESULT's summary: the datasets its file held, by the task's
    place in the run (``RunResult.task_datasets``), not by its path."""
    return [TaskResult(task.task, result, {n: result.summary[n] for n in names if n in result.summary})
            for task, names in zip(plan.tasks, result.task_datasets)]


def evaluate_tasks(tasks: Sequence[Task], base: RunConfig, overrides: Mapping[str, Any] | None = None, *,
                   data_dir: str | Path = DEFAULT_DATA_DIR, suite: "Suite | None" = None,
                   **callbacks: Any) -> Evaluation:
    """Run TASKS on BASE's server: each task resolved once and grouped into runs (``plan.plan_runs``),
    every run prepared (settings checked, template loaded) before the first request, then executed.

    CALLBACKS (on_sample, on_start, progress, on_notice) go to each run (``execute``).
    A SUITE is recorded in each run's manifest, so the report lays it out as the suite's table.
    """
    overrides = dict(overrides or {})
    if suite is not None:
        overrides.setdefault("suite", suite.to_manifest())
    runs = plan_runs(tasks, base, overrides, data_dir)
    try:
        plans = [prepare_run(run) for run in runs]
    except TaskError:
        raise
    except ValueError as exc:  # a setting out of range, an unknown template: before any request
        raise TaskError(str(exc)) from None
    results: list[TaskResult] = []
    finished: list[RunResult] = []
    for plan in plans:
        result = execute(plan, **callbacks)
        finished.append(result)
        results += task_results(plan, result)
    return Evaluation(results, finished, suite, [run.config for run in runs])
