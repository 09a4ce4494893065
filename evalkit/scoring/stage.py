"""The scoring stage: apply a run's scorers to its samples.

Synchronous scorers (pure functions such as the choice scorer) run as each sample
is saved (``apply_scores``). Asynchronous ones (a model judge) run in a pass over
saved samples (``score_samples``) that journals each sample's scores as they
arrive, so a pass that is killed and started again asks for no score twice.

A sample's ``scored_with`` is the scoring fingerprint of the scores it holds;
a sample whose ``scored_with`` differs from the run's is scored again (that is
how changing only the scorer rescores a finished run without new requests).
A failed request (``error`` set) is not scored: it is neither right nor wrong.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable, Mapping, Sequence

from evalkit.core.records import Item, SampleRecord, Score, Target, target_from_json
from evalkit.scoring.base import Scorer
from evalkit.scoring.plan import FINGERPRINT_CHARS, ScoringPlan, retryable_scores  # noqa: F401 (re-exported)
from evalkit.core.journal import Journal, JournalKind, TornLine, sample_key
from evalkit.core.store import SAMPLES, check_writes, encode_line, iter_numbered
from evalkit.core.store import SCORES as SCORES_FILE


def _scores_ok(line: Mapping[str, Any]) -> bool:
    # A failed judge request (a retryable score) is not done: it is asked again on resume.
    return not retryable_scores(line.get("scores"))


def _scores_key(line: Mapping[str, Any]) -> tuple[str, str, int, str | None]:
    return (*sample_key(line), line.get("scored_with"))


# The judge-score journal: one line per sample scored, {dataset, id, index (the envelope),
# scored_with (the scoring fingerprint), scores, fields (the top-level fields scorers set)}.
SCORES = JournalKind(SCORES_FILE, _scores_key, _scores_ok, sync_every_s=1.0)  # each line cost a judge request
SCORES_JOURNAL = SCORES.file


def _record_defaults() -> dict[str, Any]:
    # Item's fields too: the view stands for the item as well (scorers read item.options etc.).
    out: dict[str, Any] = {"messages": None, "context": None, "target": None}
    for f in fields(SampleRecord):
        if f.default is not MISSING:
            out[f.name] = f.default
        elif f.default_factory is not MISSING:  # type: ignore[misc]
            out[f.name] = None  # read-only view: an absent dict field reads as None, like an unset optional
    return out


class StoredSample:
    """A stored sample line (a dict) read and written like a SampleRecord, without building one.

    Scorers see it as they see a record, and as the item it answers (a line carries the item's
    fields); what the scoring stage sets goes into the dict. Rescoring a saved run goes through
    this view because building a SampleRecord and an Item per line cost more than the extraction.
    The dict itself is the instance's ``__dict__``, so reading and setting a field is a plain
    attribute access; a field the line lacks reads as the record's default (a class attribute).
    """

    def __init__(self, data: dict[str, Any]):
        self.__dict__ = data

    @property
    def is_choice(self) -> bool:
        return bool(self.__dict__.get("options")) and self.__dict__.get("answer_idx") is not None

    @property
    def target(self) -> Target | None:
        """The item's target, typed, as a scorer reads it (the line keeps its JSON form as it is)."""
        return target_from_json(self.__dict__.get("target"))


for _name, _default in _record_defaults().items():
    if _name != "target":
        setattr(StoredSample, _name, _default)


def _merge(record: SampleRecord, scorer: Scorer, scores: Mapping[str, Score], into: dict[str, dict[str, Any]],
           fields_set: dict[str, Any] | None = None) -> None:
    """Store SCORES in INTO and let SCORER set the record's top-level fields (the choice scorer's
    pred / method / correct); the fields it set are noted in FIELDS_SET."""
    sample_fields = getattr(scorer, "sample_fields", None)
    if sample_fields is not None:
        values = sample_fields(scores)
        for name, value in values.items():
            setattr(record, name, value)
        if fields_set is not None:
            fields_set.update(values)
    for name, s in scores.items():
        into[name] = s.to_dict()


def _clear_error_fields(record: SampleRecord) -> None:
    # A failed request keeps the fields earlier versions gave it: no prediction, not correct.
    if record.options:
        record.pred, record.method, record.correct = None, None, False
    record.scores, record.scored_with = None, None


def apply_scores(record: SampleRecord, item: Item, scorers: Sequence[Scorer], fingerprint: str | None) -> SampleRecord:
    """Score RECORD with the synchronous SCORERS, in place; ``scored_with`` becomes FINGERPRINT
    (None when asynchronous scorers are still to run). Returns RECORD."""
    if record.error:
        _clear_error_fields(record)
        return record
    scores: dict[str, dict[str, Any]] = {}
    for scorer in scorers:
        _merge(record, scorer, scorer.score(item, record), scores)
    record.scores, record.scored_with = scores or None, fingerprint
    return record


async def _score_one(record: SampleRecord, item: Item, plan: ScoringPlan,
                     fields_set: dict[str, Any]) -> dict[str, dict[str, Any]]:
    scores: dict[str, dict[str, Any]] = {}
    for scorer in plan.scorers:
        try:
            result = scorer.score(item, record)
            if asyncio.iscoroutine(result) or isinstance(result, Awaitable):
                result = await result
        except Exception as exc:  # noqa: BLE001 - one scorer's failure is that sample's error, not the run's
            result = {scorer.name: Score(None, error=f"{type(exc).__name__}: {exc}")}
        _merge(record, scorer, result, scores, fields_set)
    return scores


def load_journal(path: Path | Journal, fingerprint: str, on_torn: Callable[[TornLine], None] | None = None,
                 ) -> dict[tuple[str, str, int], dict[str, Any]]:
    """Scores already journaled in PATH (a judge-score journal) under FINGERPRINT, keyed (dataset, id, index)."""
    journal = path if isinstance(path, Journal) else Journal(path, SCORES, on_torn=on_torn)
    done = journal.done(lambda line: line.get("scored_with") == fingerprint)
    return {key[:3]: line for key, line in done.items()}  # type: ignore[index]


async def score_samples(
    pairs: Iterable[tuple[Item, SampleRecord]],
    plan: ScoringPlan,
    *,
    journal: Path | None = None,
    concurrency: int = 16,
    on_scored: Callable[[SampleRecord], None] | None = None,
    on_torn: Callable[[TornLine], None] | None = None,
) -> list[SampleRecord]:
    """Score every (item, record) pair with PLAN's scorers, in place; the records, in order.

    Records already ``scored_with`` the plan's fingerprint are left as they are. With a
    JOURNAL, each record's scores are appended to it as they arrive, and records whose
    scores it already holds are filled from it instead of being scored again. ON_TORN hears of a
    torn last line the writer cuts from the journal (without it, a warning of the ``evalkit`` logger).
    """
    pairs = list(pairs)
    scores_journal = Journal(journal, SCORES, on_torn=on_torn) if journal is not None else None
    # The writer settles a torn last line (and reports it) before the journal is read.
    writer = scores_journal.writer() if scores_journal is not None else None
    try:
        done = load_journal(scores_journal, plan.fingerprint) if scores_journal is not None else {}
    except BaseException:  # a malformed line mid-file (named file:line): nothing is appended
        if writer is not None:
            writer.close()
        raise
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(item: Item, record: SampleRecord) -> None:
        if record.error:
            _clear_error_fields(record)
            return
        if record.scored_with == plan.fingerprint and not retryable_scores(record.scores):
            return
        saved = done.get((record.dataset, record.id, record.index))
        if saved is not None:
            for name, value in saved["fields"].items():
                setattr(record, name, value)
            record.scores, record.scored_with = saved["scores"] or None, plan.fingerprint
            return
        fields_set: dict[str, Any] = {}
        async with gate:
            scores = await _score_one(record, item, plan, fields_set)
        record.scores, record.scored_with = scores or None, plan.fingerprint
        if writer is not None:
            writer.write({"dataset": record.dataset, "id": record.id, "index": record.index,
                          "scored_with": plan.fingerprint, "scores": scores, "fields": fields_set})
        if on_scored is not None:
            on_scored(record)

    try:
        await asyncio.gather(*(one(item, record) for item, record in pairs))
    finally:
        if writer is not None:
            writer.close()
        for scorer in plan.scorers:  # a judge holds an HTTP session in this event loop
            close = getattr(scorer, "aclose", None)
            if close is not None:
                await close()
    return [record for _, record in pairs]


def rescore_line(sample: Mapping[str, Any], plan: ScoringPlan) -> dict[str, Any]:
    """A copy of a stored sample line scored again with PLAN's synchronous scorers.

    A failed request (``error`` set) stays an error: no prediction, not correct.
    ``truncated`` is recomputed from ``finish_reason`` when the line has one. A multi-sample
    line (with ``stages``) is re-voted by the choice scorer.
    """
    out = dict(sample)
    view = StoredSample(out)
    apply_scores(view, view, plan.scorers, plan.fingerprint)  # type: ignore[arg-type]  # the line is the item too
    for name in ("scores", "scored_with"):  # set by apply_scores; a failed request keeps neither
        if out[name] is None:
            del out[name]
    if not out.get("error") and not out.get("stages"):
        if out.get("finish_reason") is not None:
            out["truncated"] = out["finish_reason"] == "length"
        else:
            out.setdefault("truncated", False)
    return out


async def score_run_dir(run_dir: Path, plan: ScoringPlan, *, counting: Callable[[int, dict[str, Any]], bool],
                        concurrency: int = 16, on_torn: Callable[[TornLine], None] | None = None) -> int:
    """The scoring pass of a run directory: score the lines of its samples.jsonl that COUNTING selects
    and that lack PLAN's scores, in place; returns how many.

    Synchronous scorers rescore while samples.jsonl is streamed once into its atomic rewrite.
    Model-judge scores are journaled to scores.jsonl as they arrive (a killed pass asks no judge
    twice when run again), then the file is rewritten. Lines keep their numbers (the runner's
    index stays valid); memory holds only the samples being judged. ON_TORN hears of a torn last
    line cut from scores.jsonl (the run reports it among its notices, as for its other journals).
    """
    samples_file = run_dir / SAMPLES
    judged: dict[int, SampleRecord] = {}
    if plan.has_async:
        # A model judge is asked first (concurrently, journaled); the lines are rewritten after.
        for lineno, s in iter_numbered(samples_file):
            if counting(lineno, s) and not plan.is_current(s):
                judged[lineno] = SampleRecord.from_dict(s)
        if not judged:
            return 0
        await score_samples([(r.item(), r) for r in judged.values()], plan, journal=run_dir / SCORES_JOURNAL,
                            concurrency=concurrency, on_torn=on_torn)
    tmp = samples_file.with_name(samples_file.name + ".tmp")
    try:
        rescored = _rewrite_scored(samples_file, tmp, plan, judged, counting)
    except OSError as exc:  # a full disk, say: samples.jsonl is left as it was
        tmp.unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror, str(samples_file)) from None
    if rescored:
        try:
            check_writes(samples_file)  # a run whose lock was taken over meanwhile replaces nothing
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, samples_file)
    else:
        tmp.unlink()
    Journal.in_run(run_dir, SCORES).remove()
    return rescored


def _rewrite_scored(samples_file: Path, tmp: Path, plan: ScoringPlan, judged: dict[int, SampleRecord],
                    counting: Callable[[int, dict[str, Any]], bool]) -> int:
    """Copy SAMPLES_FILE to TMP line by line, with the JUDGED records (by line number) and, for
    synchronous scorers, the counting lines that lack PLAN's scores written scored; how many were."""
    rescored = 0
    with open(samples_file, "rb") as src, open(tmp, "wb") as dst:
        for lineno, raw in enumerate(src, start=1):
            record = judged.get(lineno)
            if record is not None:
                dst.write(encode_line(record.to_dict()))
                rescored += 1
                continue
            if not plan.has_async and raw.strip():
                # Synchronous scorers: one streaming pass, each line parsed once.
                s = json.loads(raw)
                if counting(lineno, s) and not plan.is_current(s):
                    dst.write(encode_line(rescore_line(s, plan)))
                    rescored += 1
                    continue
            dst.write(raw)  # byte for byte: lines not rescored are not touched
    return rescored
