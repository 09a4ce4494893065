"""The runner: send every item to the server, then score each answer, saving each sample at once.

Two stages, each resumable. Generation: every item goes through its strategy's
stages (evalkit.sampling) and the finished sample is handed to the scoring stage
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
strategies (evalkit.sampling) also journal each generation to
``generations.jsonl`` as it arrives, so a resume re-requests only the
generations that are missing, not whole items.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from evalkit import __version__
# The config types live in evalkit.config; imported here so old imports (runner.RunConfig) keep working.
from evalkit.config import (DEFAULT_CONCURRENCY, DEFAULT_PROMPT, ER_SAMPLES, MULTI_SAMPLE_TEMPERATURE,  # noqa: F401
                            RunConfig, backend_concurrency)
from evalkit.client import EndpointPool, RequestError, RetryPolicy, redact
from evalkit.datasets import LoadedDataset, load_datasets
from evalkit.limits import MB
from evalkit.lock import lock_run_dir, took_over_message
from evalkit.order import plan_dispatch
from evalkit.prompts import (PromptTemplate, draw_exemplars, item_prompt, load_exemplars, load_template,
                             template_summary)
from evalkit.records import GenerationParams, Item, SampleRecord, target_to_json
from evalkit.runs import read_manifest, run_dir_inside, run_invocations
from evalkit.sampling import ENSEMBLE_REFINEMENT, RefineTemplate, Stage, load_refine_template, strategy_stages
from evalkit.score import DatasetSummary, SampleKey, sample_key, summarize
from evalkit.scoring.base import check_requirements
from evalkit.scoring.metrics import Metric
from evalkit.scoring.plan import ScoringPlan, plan_scoring, record_default_metrics, retryable_scores
from evalkit.scoring.stage import apply_scores, score_run_dir
from evalkit.store import (MANIFEST, SAMPLES, SUMMARY, SampleWriter, iter_numbered, paused_gc,
                           write_json)

# After this many requests in a row failed for good on retryable errors, the
# endpoints are taken to be down and the run stops (saving what it has) instead
# of burning retries on every remaining item.
ENDPOINT_DOWN_AFTER = 8
START_WAVE = 32  # workers started together at the beginning of a run
GENERATIONS = "generations.jsonl"  # the per-generation journal of multi-sample runs

Key = SampleKey


class EndpointDown(RuntimeError):
    """The server stopped answering mid-run; what was collected is saved."""


@dataclass
class RunProgress:
    """Live counters of a run, updated in place as it goes (for a progress display)."""

    total: int = 0
    resumed: int = 0
    done: int = 0
    errors: int = 0
    retries: int = 0
    requests: int = 0
    sent: int = 0  # items a request was sent for (resumed items and fully journaled ones are not)
    completion_tokens: int = 0
    run_dir: Path | None = None
    skipped: list = field(default_factory=list)  # the datasets.Problem of each record --skip-invalid left out
    order: str | None = None  # which run the dispatch order comes from (with --order-from)
    unwritten: list[str] = field(default_factory=list)  # end files (summary, manifest) a failed run could not update
    started: float = field(default_factory=time.perf_counter)


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


def slug(text: str) -> str:
    """A file-name-safe form of TEXT (model ids often hold slashes)."""
    # No leading dots: a model id such as ".." must not become a path part that climbs out.
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-").lstrip(".")[:80] or "model"


def run_fingerprint(
    *, model: str, prompt: PromptTemplate, data: list[LoadedDataset], params: GenerationParams,
    strategy: dict[str, Any] | None = None, exemplars: list[Item] | None = None,
) -> str:
    """The generation fingerprint: a hash of everything that changes what the server is asked and
    answers. Equal fingerprints share a run directory; how samples are scored is not part of it
    (see evalkit.scoring.stage), so a new scorer rescores saved generations."""
    doc: dict[str, Any] = {
        "model": model,
        "prompt_sha256": prompt.sha256,
        "data_sha256": sorted(d.sha256 for d in data),
        "params": params.fingerprint_doc(),
    }
    # Optional parts are absent when unused, so the other fingerprints stay as they were.
    if prompt.context_variant is not None:
        doc["prompt_variant_sha256"] = prompt.context_variant.sha256
    if exemplars:
        doc["exemplars"] = [(e.id, e.question) for e in exemplars]
    if strategy:
        doc["strategy"] = strategy
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def scoring_plan(config: RunConfig, loaded: list[LoadedDataset]) -> ScoringPlan:
    """The run's scorers (``plan_scoring``): those named in the config, else ``choice`` when the
    items are multiple choice, else none. Each is checked against the first item of every file,
    so a scorer that cannot work on these items fails before any request."""
    names = config.scorers
    if names is None:
        first = next((ds.items[0] for ds in loaded if ds.items), None)
        names = ["choice"] if first is None or first.is_choice else []
    plan = plan_scoring(names, extractor=config.extractor, scorer_options=config.scorer_options)
    for ds in loaded:
        if ds.items:
            check_requirements(plan.scorers, ds.items[0], str(ds.path))
    return plan


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _count_lines(path: Path) -> int:
    n = 0
    if path.exists():
        with open(path, "rb") as fh:
            for _ in fh:
                n += 1
    return n


class _SampleIndex:
    """Which line of samples.jsonl holds the sample that counts for each key.

    One small int per key (line number, ok and selected bits), never the samples
    themselves: about 0.2 kB per item, so memory stays flat in the size of outputs.
    """

    _OK, _SELECTED = 2, 1

    def __init__(self) -> None:
        self.best: dict[Key, int] = {}  # key -> lineno << 2 | ok << 1 | selected
        self.lines = 0
        self.stale = 0  # lines read at load whose scores another scoring fingerprint made (or a judge left to retry)
        self.scores_to_retry = 0  # counting samples with a retryable judge error, as of the last summary()

    def load(self, path: Path, is_current: Callable[[dict[str, Any]], bool] | None = None) -> None:
        """Index the lines of PATH; with IS_CURRENT, also note the lines whose scores are stale."""
        for lineno, s in iter_numbered(path):
            self.add(sample_key(s), not s.get("error"), lineno)
            if is_current is not None and not is_current(s):
                self.stale += 1
        self.lines = _count_lines(path)

    def add(self, key: Key, ok: bool, lineno: int | None = None, selected: bool = False) -> None:
        if lineno is None:
            self.lines += 1
            lineno = self.lines
        old = self.best.get(key)
        if old is None:
            self.best[key] = lineno << 2 | ok * self._OK | selected * self._SELECTED
        elif ok or not old & self._OK:  # a success beats an error, later beats earlier
            self.best[key] = lineno << 2 | ok * self._OK | (selected or old & self._SELECTED)

    def done(self, key: Key) -> bool:
        return bool(self.best.get(key, 0) & self._OK)

    def select(self, key: Key) -> None:
        if key in self.best:
            self.best[key] |= self._SELECTED

    def counting(self, lineno: int, sample: dict[str, Any]) -> bool:
        """True when line LINENO holds the sample that counts for its key (selected or not)."""
        v = self.best.get(sample_key(sample))
        return v is not None and v >> 2 == lineno

    def summary(self, path: Path, metrics: Mapping[str, Metric] | None = None
                ) -> tuple[dict[str, DatasetSummary], int]:
        """The summary of the selected keys as PATH (the file this index describes) holds them,
        and how many have a sample that counts. Both are read from the file, not from the
        writing process's memory, so what summary.json says (and whether the run is complete)
        is what is on disk; this index only says which line counts, so the file is parsed once
        and memory holds no samples. A sample whose judge could not be reached (a retryable
        judge error) does not count until it is scored: ``scores_to_retry`` says how many."""
        on_disk = [0]
        self.scores_to_retry = 0

        def counted() -> Iterator[dict[str, Any]]:
            for s in self.selected_samples(path):
                if not s.get("error"):
                    retry = retryable_scores(s.get("scores"))
                    self.scores_to_retry += retry
                    on_disk[0] += not retry
                yield s

        with paused_gc():
            summary = summarize(counted(), metrics)
        return summary, on_disk[0]

    def selected_samples(self, path: Path) -> Iterator[dict[str, Any]]:
        """Stream the samples that count, for the selected keys."""
        for lineno, s in iter_numbered(path):
            v = self.best.get(sample_key(s))
            if v is not None and v & self._SELECTED and v >> 2 == lineno:
                yield s


def summary_on_disk(samples_file: Path, items: Iterable[Item]) -> tuple[dict[str, DatasetSummary], int]:
    """The summary of ITEMS as samples.jsonl holds them now, and how many have a sample that counts
    (the file indexed first; a run uses its own live index: ``_SampleIndex.summary``)."""
    return _index_on_disk(samples_file, items).summary(samples_file)


def _index_on_disk(samples_file: Path, items: Iterable[Item]) -> _SampleIndex:
    """A fresh index of SAMPLES_FILE with ITEMS selected."""
    index = _SampleIndex()
    with paused_gc():
        index.load(samples_file)
    for item in items:
        index.select((item.dataset, item.id, 0))
    return index


def _notice(on_notice: Callable[[str], None] | None, message: str | None) -> None:
    if message is None:
        return
    if on_notice is not None:
        on_notice(message)
    else:
        logging.getLogger("evalkit").warning("%s", message)


def load_inputs(
    config: RunConfig, on_notice: Callable[[str], None] | None = None,
) -> tuple[list[LoadedDataset], PromptTemplate, RefineTemplate | None, list[Item] | None]:
    """Load and validate every file and template (and few-shot exemplars) before any request is sent.

    A file given twice is read once (ON_NOTICE hears of it); different files that would make one
    dataset are refused (``datasets.load_datasets``).
    """
    loaded, notices = load_datasets(config.eval_files, skip_invalid=config.skip_invalid, adapter=config.adapter,
                                    max_line_bytes=int(config.max_record_mb * MB))
    for message in notices:
        _notice(on_notice, message)
    template = load_template(config.prompt or DEFAULT_PROMPT)
    refine = load_refine_template(config.refine_prompt) if config.strategy == ENSEMBLE_REFINEMENT else None
    return loaded, template, refine, draw_run_exemplars(config, template, loaded)


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


def _strategy_doc(config: RunConfig, refine: RefineTemplate | None) -> dict[str, Any] | None:
    if not config.multi_sample:
        return None
    doc: dict[str, Any] = {"name": config.strategy, "samples": config.samples}
    if refine is not None:
        doc.update(refine_samples=config.refine_samples, refine_prompt=refine.name,
                   refine_prompt_sha256=refine.sha256)
    return doc


async def _resolve_model(pool: EndpointPool, requested: str | None, api_key: str | None) -> str:
    """The model id the run requests; every endpoint must serve it."""
    from evalkit.backends import served_models

    async def models_of(url: str) -> list[str]:
        try:
            return await asyncio.to_thread(served_models, url, api_key=api_key, timeout=10.0)
        except (OSError, ValueError) as exc:
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
    """Run (or resume) an evaluation and write its samples, summary and manifest.

    ON_START(total, already_done) is called once dispatch begins; ON_SAMPLE(record)
    after each sample is saved; PROGRESS, if given, is kept up to date in place
    (for progress display); ON_NOTICE(message) hears about the run-directory lock
    (waiting for another run, taking over a dead one's lock; default: logged). Ctrl-C stops cleanly: samples finished so far are
    saved, summary and manifest are written, and KeyboardInterrupt propagates.
    """
    config = config.resolved()
    config.validate()
    return asyncio.run(_run_eval(config, on_sample=on_sample, on_start=on_start, on_notice=on_notice,
                                 progress=progress if progress is not None else RunProgress()))


async def _run_eval(config: RunConfig, *, on_sample, on_start, progress: RunProgress, on_notice=None) -> RunResult:
    loaded, template, refine, exemplars = load_inputs(config, on_notice)
    progress.skipped = [p for d in loaded for p in d.skipped]
    plan = scoring_plan(config, loaded)
    stages = strategy_stages(config.strategy_name(), config.samples or 1, refine=refine,
                             refine_samples=config.refine_samples)
    retry = RetryPolicy(max_attempts=config.max_attempts, base_delay_s=config.retry_base_delay_s)
    t_start = time.perf_counter()
    started_at = _now()

    def count_retry(_: RequestError) -> None:
        progress.retries += 1

    async with EndpointPool(config.all_endpoints(), config.model or "", api_key=config.api_key,
                            timeout_s=config.timeout_s, retry=retry, max_connections=config.concurrency or 1,
                            rps=config.rps, on_retry=count_retry,
                            max_response_bytes=int(config.max_response_mb * MB)) as pool:
        pool.set_model(await _resolve_model(pool, config.model, config.api_key))
        strategy = _strategy_doc(config, refine)
        fp = run_fingerprint(model=pool.model, prompt=template, data=loaded, params=config.params,
                             strategy=strategy, exemplars=exemplars)
        run_dir = run_dir_inside(config.results_dir, config.task_folder or slug(pool.model),
                                 config.run_name or _run_name(template, config, fp))
        order_plan = plan_dispatch(config.order_from, config.order_unknown, results_dir=config.results_dir,
                                   data_sha256=[d.sha256 for d in loaded], prompt_sha256=template.sha256,
                                   limit=config.limit, exclude=run_dir)
        ordered = order_plan.order(selected_items(loaded, config.limit))  # changes timing only, never a sample
        progress.order = order_plan.describe() if config.order_from else None
        run_dir.mkdir(parents=True, exist_ok=True)
        samples_file = run_dir / SAMPLES
        progress.run_dir = run_dir
        lock = await lock_run_dir(run_dir, wait=config.wait_for_lock, on_wait=lambda e: _notice(on_notice, str(e)))
        _notice(on_notice, took_over_message(lock))

        with lock, SampleWriter(samples_file) as writer:  # opening cuts a torn last line first
            earlier = _check_fingerprint(run_dir, fp)
            index = _SampleIndex()
            index.load(samples_file, plan.is_current)
            total = resumed = 0
            for item in selected_items(loaded, config.limit):
                key = (item.dataset, item.id, 0)
                total += 1
                index.select(key)
                resumed += index.done(key)
            progress.total, progress.resumed = total, resumed
            manifest = _manifest(config, pool, template, refine, loaded, fp, started_at, total, exemplars, plan)
            manifest["order"] = order_plan.to_dict()
            # One entry per `evalkit run` of this directory; this one's counts are filled in at its end.
            invocation: dict[str, Any] = {"started_at": started_at, "status": "running"}
            manifest["invocations"] = [*run_invocations(earlier), invocation]
            write_json(run_dir / MANIFEST, _masked(manifest, config.secrets()))
            if on_start:
                on_start(total, resumed)

            journal = None
            partial: dict[Key, list[dict[int, dict[str, Any]]]] = {}
            if len(stages) > 1 or stages[0].size > 1:
                journal_file = run_dir / GENERATIONS
                journal = SampleWriter(journal_file)
                for _, g in iter_numbered(journal_file):
                    key = sample_key(g)
                    if not index.done(key):
                        outs = partial.setdefault(key, [{} for _ in stages])
                        if g["stage"] < len(outs):
                            outs[g["stage"]][g["k"]] = {k: v for k, v in g.items()
                                                        if k not in ("dataset", "id", "index", "stage", "pred",
                                                                     "method")}

            sink = _ScoringSink(plan, writer, index, progress, on_sample)
            dispatcher = _Dispatcher(
                config=config, pool=pool, template=template, stages=stages, exemplars=exemplars,
                journal=journal, partial=partial, sink=sink, progress=progress,
                items=(it for it in ordered if not index.done((it.dataset, it.id, 0))),
            )
            status = "incomplete"
            try:
                await dispatcher.run()
            except asyncio.CancelledError:
                status = "interrupted"
                raise
            except OSError:
                status = "write-failed"  # a full disk or read-only results: no scoring pass on top of it
                raise
            finally:
                if journal is not None:
                    journal.close()
                replaced = writer.moved_away()
                writer.close()
                if replaced:  # another process replaced samples.jsonl: the index no longer describes it
                    _notice(on_notice, f"{samples_file} was replaced by another process while this run wrote it; "
                                       "samples saved after that are not in it (run the same command again to "
                                       "redo them)")
                    index = _index_on_disk(samples_file, selected_items(loaded, config.limit))
                rescored = 0
                if not replaced and not dispatcher.down and status == "incomplete" and \
                        (plan.has_async or index.stale):
                    # The scoring pass: samples saved without this plan's scores (a model judge's, or
                    # those of a scorer that changed since they were saved) are scored now.
                    rescored = await score_run_dir(run_dir, plan, counting=index.counting,
                                                   concurrency=config.scoring_concurrency)
                wall_s = time.perf_counter() - t_start
                # The run's index was loaded from samples.jsonl and kept up to date line by line.
                summary, n_ok = index.summary(samples_file, plan.metrics)
                record_default_metrics(manifest["scoring"], summary)
                complete = n_ok == total
                if complete:
                    status = "complete"
                    if journal is not None:
                        (run_dir / GENERATIONS).unlink(missing_ok=True)  # all in samples.jsonl now
                elif dispatcher.down:
                    status = "endpoint-down"
                invocation.update(finished_at=_now(), wall_s=round(wall_s, 3), sent=progress.sent,
                                  requests=pool.requests, retries=pool.retries, errors=sink.errors, resumed=resumed,
                                  rescored=rescored, status=status)
                # The top-level counts are this invocation's ("requested": the items it sent a request for).
                manifest.update(finished_at=invocation["finished_at"], wall_s=invocation["wall_s"],
                                retries=pool.retries, requests=pool.requests, requested=progress.sent,
                                resumed=resumed, errors=sink.errors, rescored=rescored,
                                endpoint_stats=[ep.to_dict() for ep in pool.endpoints])
                _write_end_files(run_dir, progress, status, {
                    "run": str(run_dir),
                    "complete": complete,
                    "scores_to_retry": index.scores_to_retry,
                    "datasets": {name: d.to_dict() for name, d in summary.items()},
                }, _masked(manifest, config.secrets()))

    if dispatcher.down:
        raise EndpointDown(
            f"{', '.join(pool.base_urls)} stopped answering ({dispatcher.down[0]}); {n_ok} of {total} samples "
            f"are saved in {samples_file}. Restart the server and run the same command again to resume."
        )
    return RunResult(run_dir=run_dir, summary=summary, total=total, resumed=resumed, requested=progress.sent,
                     errors=sink.errors, retries=pool.retries, wall_s=wall_s, complete=complete,
                     endpoints=[ep.to_dict() for ep in pool.endpoints], scores_to_retry=index.scores_to_retry,
                     datasets={str(d.path): list(d.datasets()) for d in loaded})


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


def _run_name(template: PromptTemplate, config: RunConfig, fp: str) -> str:
    if config.strategy == ENSEMBLE_REFINEMENT:
        return f"{template.name}-er{config.samples}x{config.refine_samples}-{fp[:10]}"
    if (config.samples or 1) > 1:
        return f"{template.name}-sc{config.samples}-{fp[:10]}"
    return f"{template.name}-{fp[:10]}"


class _ScoringSink:
    """Where finished samples go: the synchronous scorers, then samples.jsonl, the index and progress.

    A sample that needs a model judge is saved unscored (``scored_with`` None) and scored in
    the scoring pass after generation (``scoring.stage.score_run_dir``).
    """

    def __init__(self, plan: ScoringPlan, writer: SampleWriter, index: "_SampleIndex", progress: RunProgress,
                 on_sample: Callable[[SampleRecord], None] | None):
        self.scorers = plan.sync_scorers
        self.fingerprint = None if plan.has_async else plan.fingerprint
        self.writer = writer
        self.index = index
        self.progress = progress
        self.on_sample = on_sample
        self.errors = 0

    def __call__(self, item: Item, record: SampleRecord) -> None:
        apply_scores(record, item, self.scorers, self.fingerprint)
        self.writer.write(record.to_dict())
        self.index.add((record.dataset, record.id, record.index), not record.error, selected=True)
        self.progress.done += 1
        self.progress.errors += bool(record.error)
        self.progress.completion_tokens += record.usage.get("completion_tokens", 0)
        if record.error:
            self.errors += 1
        if self.on_sample:
            self.on_sample(record)


def sample_of(item: Item, prompt: Any, stages: list[Stage], outputs: list[dict[int, dict[str, Any]]],
              prompts: list[Any], *, strategy: str, latency_s: float) -> SampleRecord:
    """The SampleRecord of a finished item: one generation as it is, or every stage's generations
    (with usage summed over all of them) for a multi-sample strategy."""
    base = dict(id=item.id, dataset=item.dataset, question=item.question, options=dict(item.options),
                answer_idx=item.answer_idx, prompt=prompt, meta=dict(item.meta), target=target_to_json(item.target),
                context=item.context)
    if len(stages) == 1 and stages[0].size == 1:
        g = outputs[0][0]
        return SampleRecord(**base, output=g["output"], finish_reason=g["finish_reason"], usage=g["usage"],
                            latency_s=g["latency_s"], truncated=g["finish_reason"] == "length")
    usage: dict[str, int] = {}
    recorded = []
    for stage, stage_prompt, outs in zip(stages, prompts, outputs):
        gens = [outs[k] for k in sorted(outs)]
        for g in gens:
            for name, v in g["usage"].items():
                usage[name] = usage.get(name, 0) + v
        recorded.append({"name": stage.name, "prompt": stage_prompt, "outputs": gens})
    shown = recorded[-1]["outputs"][0] if recorded[-1]["outputs"] else {}
    return SampleRecord(**base, output=shown.get("output", ""), finish_reason=shown.get("finish_reason"),
                        usage=usage, latency_s=latency_s, truncated=shown.get("finish_reason") == "length",
                        strategy=strategy, stages=recorded)


def error_record(item: Item, prompt: Any, error: str, *, latency_s: float = 0.0) -> SampleRecord:
    """The sample of an item whose request failed for good: an error, neither right nor wrong."""
    return SampleRecord(id=item.id, dataset=item.dataset, question=item.question, options=dict(item.options),
                        answer_idx=item.answer_idx, prompt=prompt, meta=dict(item.meta),
                        target=target_to_json(item.target), context=item.context, output="", finish_reason=None,
                        latency_s=latency_s, error=error)


@dataclass(eq=False)
class _Task:
    """One item in progress: its prompts, the generations so far per stage, requests pending."""

    item: Item
    prompt: Any
    outputs: list[dict[int, dict[str, Any]]]  # per stage: generation number -> generation
    t0: float
    stage: int = 0
    prompts: list[Any] = field(default_factory=list)  # the prompt of each stage reached
    pending: int = 0
    error: str | None = None
    sent: bool = False  # a request of this item has gone out

    @property
    def key(self) -> Key:
        return (self.item.dataset, self.item.id, 0)


@dataclass(eq=False)
class _Request:
    task: _Task
    stage: int
    ks: tuple[int, ...]  # the generation numbers this request fills


class _Dispatcher:
    """Keeps ``concurrency`` requests in flight until every item is done or the endpoints are down.

    Each item goes through the strategy's stages in order; requests that belong to items
    already started (further samples, a later stage) go before new items, so few items are
    open at a time. Finished items go to the sink (the scoring stage); the dispatcher
    itself never looks at what a generation says.
    """

    def __init__(self, *, config: RunConfig, pool: EndpointPool, template: PromptTemplate, stages: list[Stage],
                 journal: SampleWriter | None, partial: dict, sink: Callable[[Item, SampleRecord], None],
                 progress: RunProgress, items: Iterator[Item], exemplars: list[Item] | None = None):
        self.config = config
        self.progress = progress
        self.pool = pool
        self.template = template
        self.exemplars = exemplars
        self.stages = stages
        self.journal = journal
        self.partial = partial
        self.sink = sink
        self.items = items
        self.ready: deque[_Request] = deque()
        self.exhausted = False
        self.active = 0
        self.consecutive_failures = 0
        self.down: list[RequestError] = []
        self.use_n = config.n_per_request
        self.n_confirmed = False
        self._wake = asyncio.Event()

    async def run(self) -> None:
        workers: list[asyncio.Task] = []
        try:
            # Start workers in waves: opening hundreds of connections at once would hold
            # back the first requests (about 0.25 s for 512 here) while the server idles.
            for i in range(self.config.concurrency or 1):
                if i and i % START_WAVE == 0:
                    await asyncio.sleep(0.002)
                    if self.exhausted or self.down:
                        break  # fewer items than workers: the rest would have nothing to do
                workers.append(asyncio.create_task(self._worker()))
            await asyncio.gather(*workers)
        finally:
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    def _notify(self) -> None:
        self._wake.set()
        self._wake = asyncio.Event()

    async def _worker(self) -> None:
        while not self.down:
            req = self._next()
            if req is None:
                if self.exhausted and self.active == 0:
                    self._notify()
                    return
                await self._wake.wait()
                continue
            await self._send(req)

    def _next(self) -> _Request | None:
        while True:
            while self.ready:
                req = self.ready.popleft()
                if req.task.error is None:
                    return req
                self._settle(req.task)  # its item already failed: drop the request
            if self.exhausted:
                return None
            item = next(self.items, None)
            if item is None:
                self.exhausted = True
                continue
            self._start(item)

    def _start(self, item: Item) -> None:
        prompt = item_prompt(item, self.template, exemplars=self.exemplars)
        task = _Task(item, prompt, [{} for _ in self.stages], time.perf_counter(), prompts=[prompt])
        self.active += 1
        saved = self.partial.pop(task.key, None)
        if saved is not None:
            task.outputs = saved
        self._advance(task)

    def _advance(self, task: _Task) -> None:
        """Queue the missing generations of the task's stage, or move on to the next stage or the end."""
        while True:
            missing = [k for k in range(self.stages[task.stage].size) if k not in task.outputs[task.stage]]
            if missing:
                self._queue(task, missing)
                return
            if task.stage + 1 < len(self.stages):
                earlier = [[g["output"] for _, g in sorted(outs.items())] for outs in task.outputs[:task.stage + 1]]
                task.stage += 1
                task.prompts.append(self.stages[task.stage].prompt(task.item, task.prompt, earlier))
                continue
            self._finish(task)
            return

    def _queue(self, task: _Task, ks: list[int]) -> None:
        if self.use_n and len(ks) > 1:
            reqs = [_Request(task, task.stage, tuple(ks))]
        else:
            reqs = [_Request(task, task.stage, (k,)) for k in ks]
        task.pending += len(reqs)
        self.ready.extend(reqs)
        if self.exhausted:
            self._notify()  # workers may be idle, waiting for work like this

    def _seed(self, req: _Request) -> int | None:
        seed = self.config.params.seed
        if seed is None or not self.config.multi_sample:
            return None  # the request carries params.seed as it is
        # Distinct seeds, or K separate requests would return K copies of one sample.
        return seed + req.ks[0] + sum(stage.size for stage in self.stages[:req.stage])

    async def _send(self, req: _Request) -> None:
        task = req.task
        prompt = task.prompts[req.stage]
        n = len(req.ks)
        self.progress.requests += 1
        if not task.sent:
            task.sent = True
            self.progress.sent += 1
        try:
            gens = await self.pool.complete(prompt, self.config.params, n=n, seed=self._seed(req))
        except RequestError as exc:
            if n > 1 and not self.n_confirmed and exc.status is not None and 400 <= exc.status < 500 \
                    and exc.status != 429:
                # The server refuses n > 1: ask for each generation on its own from now on.
                self.use_n = False
                task.pending -= 1
                self._queue(task, list(req.ks))
                return
            if exc.retryable:
                self.consecutive_failures += 1
                if self.consecutive_failures >= ENDPOINT_DOWN_AFTER and not self.down:
                    self.down.append(exc)
                    self._notify()
            if task.error is None:
                task.error = str(exc)
            self._settle(task)
            return
        self.consecutive_failures = 0
        if n > 1:
            if len(gens) >= n:
                self.n_confirmed = True
            elif not self.n_confirmed:
                self.use_n = False  # the server ignores n: one request per generation from now on
        for k, gen in zip(req.ks, gens):
            out = {"k": k, "output": gen.text, "finish_reason": gen.finish_reason, "usage": dict(gen.usage),
                   "latency_s": round(gen.latency_s, 4)}
            task.outputs[req.stage][k] = out
            if self.journal is not None:
                self.journal.write({"dataset": task.item.dataset, "id": task.item.id, "index": 0, "stage": req.stage,
                                    **out})
        if task.error is not None:
            self._settle(task)
            return
        task.pending -= 1
        if task.pending == 0:
            self._advance(task)  # missing ks (a server that ignored n) are queued again here

    def _settle(self, task: _Task) -> None:
        """Count one request of a failed item as over; record the item's error after the last."""
        task.pending -= 1
        if task.pending == 0:
            self.sink(task.item, error_record(task.item, task.prompt, task.error or "failed",
                                              latency_s=time.perf_counter() - task.t0))
            self._close()

    def _close(self) -> None:
        """One item is over (written); wake the idle workers when it was the last."""
        self.active -= 1
        if self.exhausted and self.active == 0:
            self._notify()

    def _finish(self, task: _Task) -> None:
        self.sink(task.item, sample_of(task.item, task.prompt, self.stages, task.outputs, task.prompts,
                                       strategy=self.config.strategy, latency_s=time.perf_counter() - task.t0))
        self._close()


def _check_fingerprint(run_dir: Path, fp: str) -> dict[str, Any] | None:
    """The manifest an earlier invocation left in RUN_DIR (None if none); a ValueError when it
    was made with other settings (another fingerprint)."""
    path = run_dir / MANIFEST
    if not path.exists():
        return None
    manifest = read_manifest(path)
    old = manifest.get("fingerprint")
    if old and old != fp:
        raise ValueError(
            f"{run_dir} holds a run with other settings (fingerprint {old[:10]} != {fp[:10]}); "
            "choose another --run-name, or drop --run-name to get a fresh directory"
        )
    return manifest


def _masked(doc: dict[str, Any], secrets: list[str]) -> dict[str, Any]:
    """DOC with every occurrence of SECRETS masked ("***"), wherever a scorer's spec or a server put one."""
    if not secrets:
        return doc
    text = json.dumps(doc, ensure_ascii=False)
    return json.loads(redact(text, [json.dumps(s, ensure_ascii=False)[1:-1] for s in secrets]))


def _manifest(config: RunConfig, pool: EndpointPool, template: PromptTemplate, refine: RefineTemplate | None,
              loaded: list[LoadedDataset], fp: str, started_at: str, total: int,
              exemplars: list[Item] | None = None, plan: ScoringPlan | None = None) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "evalkit_version": __version__,
        "fingerprint": fp,
        "scoring": plan.manifest() if plan is not None else None,
        "model": pool.model,
        "endpoint": pool.base_urls[0],
        "endpoints": list(pool.base_urls),
        "backend": config.backend,
        "prompt": template.name,
        "prompt_template": template.text,
        "prompt_sha256": template.sha256,
        "prompt_detail": template_summary(template),
        "exemplars": [e.id for e in exemplars] if exemplars else None,
        # What extracted the choice scores, whichever flag chose it (--extractor or --scorer-arg).
        "extractor": plan.extractor if plan is not None else config.extractor,
        "data": [
            {"path": str(d.path), "sha256": d.sha256, "items": len(d.items),
             "skipped": [str(p) for p in d.skipped]}
            for d in loaded
        ],
        "limit": config.limit,
        "generation": config.params.to_dict(),
        "strategy": config.strategy_name(),
        "samples": config.samples,
        "concurrency": config.concurrency,
        "rps": config.rps,
        "timeout_s": config.timeout_s,
        "max_attempts": config.max_attempts,
        "total": total,
        "started_at": started_at,
        "status": "running",
    }
    from evalkit.serving.plan import endpoint_identity  # what served the run: checkpoint hash, engine version

    manifest["server"] = endpoint_identity(pool.base_urls[0], api_key=config.api_key)
    if config.suite:
        manifest["suite"] = config.suite
    if config.checkpoint:
        manifest["checkpoint"] = config.checkpoint
    if refine is not None:
        manifest.update(refine_samples=config.refine_samples, refine_prompt=refine.name,
                        refine_prompt_template=refine.text,
                        refine_prompt_sha256=refine.sha256)
    return manifest
