"""Dispatch: keep ``concurrency`` requests in flight and hand each finished item to the scoring sink.

``Dispatcher`` takes items one at a time (prompts are rendered as items are dispatched), sends
each through its strategy's stages and journals every generation of a multi-sample strategy;
``ScoringSink`` applies the synchronous scorers and appends the sample to samples.jsonl.
``sample_of`` / ``error_record`` build the record of a finished or failed item.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from evalkit.serving.client import EndpointPool, RequestError
from evalkit.config import RunConfig
from evalkit.data.prompts import PromptTemplate, item_prompt
from evalkit.core.records import Item, SampleRecord, target_to_json
from evalkit.run.resume import Key, SampleIndex, journal_line
from evalkit.run.sampling import Stage
from evalkit.scoring.plan import ScoringPlan
from evalkit.scoring.stage import apply_scores
from evalkit.core.store import SampleWriter


# After this many requests in a row failed for good on retryable errors, the
# endpoints are taken to be down and the run stops (saving what it has) instead
# of burning retries on every remaining item.
ENDPOINT_DOWN_AFTER = 8
START_WAVE = 32  # workers started together at the beginning of a run


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


class ScoringSink:
    """Where finished samples go: the synchronous scorers, then samples.jsonl, the index and progress.

    A sample that needs a model judge is saved unscored (``scored_with`` None) and scored in
    the scoring pass after generation (``scoring.stage.score_run_dir``).
    """

    def __init__(self, plan: ScoringPlan, writer: SampleWriter, index: SampleIndex, progress: RunProgress,
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


class Dispatcher:
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
                self.journal.write(journal_line(task.item, req.stage, out))
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
