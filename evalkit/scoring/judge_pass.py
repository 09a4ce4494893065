"""Judging saved answers: read them, score them with a judge (journaled, resumable), agree with humans.

What ``evalkit judge`` calls. The inputs are a run directory (its samples) or a
JSONL of graded answers shaped like liveqa_med_nist_judged_692.jsonl (``qid``,
``answer``, optional human ``grade``; the questions come from a long-form file
by ``qid``). Each sample's scores are appended to a journal as they arrive, under
the judge's scoring fingerprint (the scoring stage, evalkit.scoring.stage): a killed pass
restarted with the same judge asks for nothing already journaled, and a changed rubric (a new fingerprint) judges
again without touching the answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from evalkit.config import JudgeSettings, RunConfig, field_default
from evalkit.scoring.agreement import Agreement, agreement
from evalkit.data.datasets import DatasetError, LoadedDataset, load_dataset
from evalkit.core.journal import Journal, JournalKind
from evalkit.scoring.pairwise import PairwiseSummary, combine, summarize
from evalkit.core.records import GradedAnswer, Item, SampleRecord, TargetError, target_to_json
from evalkit.data.registry import match_file
from evalkit.scoring.base import check_requirements
from evalkit.scoring.rubric_judge import RubricJudgeScorer
from evalkit.scoring.stage import SCORES_JOURNAL, ScoringPlan, load_journal, score_samples
from evalkit.core.store import iter_numbered, read_samples
from evalkit.core.errors import InputError

JOURNAL = SCORES_JOURNAL


def _pair_key(line: Mapping[str, Any]) -> tuple[str, str | None]:
    return (str(line["key"]), line.get("fingerprint"))


def _pair_ok(line: Mapping[str, Any]) -> bool:
    return not line.get("retryable")  # a judge that could not be reached: asked again


# The pairwise journal (``pairwise.jsonl``): one line per pair of answers compared, keyed by
# "dataset/id/hash of both answers" and the judge's pairwise fingerprint (the journal convention of
# evalkit.core.journal with its own key: a pair is two runs' samples, not one sample).
PAIRWISE = JournalKind("pairwise.jsonl", _pair_key, _pair_ok, sync_every_s=1.0)


class JudgeInputError(InputError):
    """Answers to judge that cannot be read or matched to their questions (names the file and line)."""


@dataclass
class JudgeInput:
    """What to judge: (item, sample) pairs, with a human grade per sample when the source has them."""

    pairs: list[tuple[Item, SampleRecord]]
    human: list[int | None] | None
    source: Path
    kind: str  # "graded" or "run"


def sample_key(sample: SampleRecord) -> str:
    """How the journal names a sample: dataset, id and sample index."""
    return f"{sample.dataset}/{sample.id}/{sample.index}"


# --------------------------------------------------------------------------- inputs


def is_graded_file(path: Path) -> bool:
    """True when PATH is a JSONL whose first record has ``qid`` and ``answer`` (a graded-answers file)."""
    if not path.is_file():
        return False
    for _, record in iter_numbered(path):
        return isinstance(record, dict) and "qid" in record and "answer" in record
    return False


def read_graded(path: Path, questions: Path, *, limit: int | None = None) -> JudgeInput:
    """Graded answers of PATH joined to the questions of QUESTIONS by ``qid``."""
    try:
        answers = load_dataset(path, adapter="nist_graded")
        by_id = {item.id: item for item in _load_questions(questions).items}
    except DatasetError as exc:
        raise JudgeInputError(str(exc)) from None
    missing = [f"{path}:{line}: qid {a.meta['qid']!r} is not a question in {questions}"
               for a, line in zip(answers.items, answers.lines) if a.meta["qid"] not in by_id]
    if missing:
        raise JudgeInputError("\n".join(missing[:20]) + (f"\n... and {len(missing) - 20} more" if len(missing) > 20
                                                          else ""))
    graded = answers.items if limit is None else answers.items[:limit]
    dataset = path.stem
    pairs = []
    human: list[int | None] = []
    for a in graded:
        assert isinstance(a.target, GradedAnswer)
        item = by_id[a.meta["qid"]]
        sample = SampleRecord(id=a.id, dataset=dataset, question=item.question, options={}, answer_idx=None,
                              prompt="", output=a.target.answer, finish_reason=None, meta={"qid": a.meta["qid"]},
                              target=target_to_json(item.target))
        pairs.append((item, sample))
        human.append(a.target.grade)
    return JudgeInput(pairs, human, path, "graded")


def _load_questions(path: Path) -> LoadedDataset:
    """The questions of a long-form file: a registered one through its registry adapter, any other as LiveQA's."""
    return load_dataset(path, adapter=None if match_file(path) is not None else "liveqa")


def read_run(path: Path, *, limit: int | None = None, questions: Path | None = None) -> JudgeInput:
    """The samples of a run directory (or samples file) that have an answer; the item is rebuilt from each line.

    With QUESTIONS (a long-form file), items are taken from it by id, so a run
    saved without targets or conversations is judged with them.
    """
    try:
        rows = read_samples(path)
    except ValueError as exc:
        raise JudgeInputError(str(exc)) from None
    if not rows:
        raise JudgeInputError(f"{path}: no samples to judge")
    by_id: dict[str, Item] = {}
    if questions is not None:
        try:
            by_id = {i.id: i for i in _load_questions(questions).items}
        except DatasetError as exc:
            raise JudgeInputError(str(exc)) from None
    pairs = []
    for row in rows:
        sample = SampleRecord.from_dict(row)
        if sample.error or not (sample.output or "").strip():
            continue
        try:
            pairs.append((by_id.get(sample.id) or sample.item(), sample))
        except TargetError as exc:
            raise JudgeInputError(f"{path}: {exc}") from None
    if limit is not None:
        pairs = pairs[:limit]
    return JudgeInput(pairs, None, path, "run")


def read_input(path: Path, *, questions: Path | None = None, limit: int | None = None) -> JudgeInput:
    """A run directory, a samples file, or a graded-answers JSONL (then QUESTIONS is required)."""
    if not path.exists():
        raise JudgeInputError(f"{path}: no such file or directory")
    try:
        graded = is_graded_file(path)
    except ValueError as exc:  # a file that is not JSON lines (names its file and line)
        raise JudgeInputError(f"{exc}: not a run, a samples file or graded answers (JSON lines)") from None
    if graded:
        if questions is None:
            raise JudgeInputError(f"{path} holds graded answers (qid, answer): pass --questions FILE with their "
                                  "questions (e.g. liveqa_med_test.jsonl)")
        return read_graded(path, questions, limit=limit)
    return read_run(path, limit=limit, questions=questions)


# --------------------------------------------------------------------------- the journaled pass


@dataclass
class JudgeResult:
    """A finished judge pass: the scored samples, agreement per axis (when humans graded), the judge's usage."""

    samples: list[SampleRecord]
    resumed: int
    agreement: dict[str, Agreement]
    usage: dict[str, Any]
    journal: Path
    fingerprint: str


def judge_answers(data: JudgeInput, scorer: RubricJudgeScorer, *, work_dir: Path,
                  n_resamples: int = field_default(JudgeSettings, "n_resamples"),
                  on_scored: Callable[[SampleRecord], None] | None = None,
                  on_start: Callable[[int, int], None] | None = None) -> JudgeResult:
    """Judge DATA with SCORER, journaled under WORK_DIR; agreement with the human grades when DATA has them.
    ON_START(total, resumed from the journal) is told before the first request, ON_SCORED(sample) after each."""
    plan = ScoringPlan([scorer])
    fingerprint = plan.fingerprint
    journal = work_dir / JOURNAL
    for item, sample in data.pairs:
        check_requirements([scorer], item, f"sample {sample_key(sample)}")
    keys = {(s.dataset, s.id, s.index) for _, s in data.pairs}
    resumed = len(set(load_journal(journal, fingerprint)) & keys)
    work_dir.mkdir(parents=True, exist_ok=True)
    if on_start is not None:
        on_start(len(data.pairs), resumed)

    async def go() -> list[SampleRecord]:
        async with scorer:
            # The judge bounds its own requests in flight; the stage need not hold samples back.
            return await score_samples(data.pairs, plan, journal=journal, concurrency=max(16, scorer.concurrency),
                                       on_scored=on_scored)

    samples = asyncio.run(go())
    result = JudgeResult(samples, resumed, {}, scorer.usage.to_dict(), journal, fingerprint)
    if data.human is not None and scorer.rubric.kind == "axes":
        lengths = [len(s.output or "") for s in samples]
        for axis in scorer.rubric.axes:
            judged = [(s.scores or {}).get(axis.name, {}).get("value") for s in samples]
            result.agreement[axis.name] = agreement(data.human, judged, axis.categories(), lengths=lengths,
                                                    n_resamples=n_resamples)
    return result


def default_work_dir(path: Path, results_dir: Path = Path(field_default(RunConfig, "results_dir"))) -> Path:
    """Where a judge pass of PATH keeps its journal: inside a run directory, else under results/judge/."""
    if path.is_dir():
        return path
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]
    return results_dir / "judge" / f"{path.stem}-{digest}"


def agreement_json(result: JudgeResult) -> dict[str, Any]:
    """The --json OUT document: per axis, n, spearman, kendall, qwk, judge_errors (CIs under their own keys)."""
    return {axis: a.to_dict() for axis, a in result.agreement.items()}


# --------------------------------------------------------------------------- pairwise


def answers_by_item(path: Path) -> dict[tuple[str, str], SampleRecord]:
    """The answer of each item in a run (the last sample with an answer), keyed by (dataset, id)."""
    out: dict[tuple[str, str], SampleRecord] = {}
    for row in read_samples(path):
        s = SampleRecord.from_dict(row)
        if s.error or not (s.output or "").strip():
            continue
        out[(s.dataset, s.id)] = s
    return out


def pairwise(run_a: Path, run_b: Path, scorer: RubricJudgeScorer, *, work_dir: Path,
             limit: int | None = None, on_start: Callable[[int, int], None] | None = None,
             on_judged: Callable[[bool, bool], None] | None = None) -> tuple[dict[str, PairwiseSummary], int]:
    """Rank the answers of RUN_A against RUN_B on the judge's axes, both orders per pair, journaled.

    Returns the per-axis summary and how many items the two runs share. ON_START(total, resumed)
    is told before the first request, ON_JUDGED(ok, request failed) after each pair judged.
    """
    a, b = answers_by_item(run_a), answers_by_item(run_b)
    shared = [k for k in a if k in b]
    if not shared:
        raise JudgeInputError(f"{run_a} and {run_b} share no answered item (matched by dataset and id)")
    if limit is not None:
        shared = shared[:limit]
    spec = json.dumps({"pairwise": scorer.spec()}, sort_keys=True)
    fingerprint = hashlib.sha256(spec.encode()).hexdigest()
    journal = work_dir / PAIRWISE.file
    axes = [x.name for x in scorer.rubric.axes]

    def key(k: tuple[str, str]) -> str:
        h = hashlib.sha256((a[k].output + "\0" + b[k].output).encode()).hexdigest()[:16]
        return f"{k[0]}/{k[1]}/{h}"

    pairs = Journal(journal, PAIRWISE)

    async def go() -> list[dict]:
        async with scorer:
            with pairs.writer() as writer:  # a torn last line is settled (and reported) before reading
                done = {k: line for (k, _), line in  # type: ignore[misc]
                        pairs.done(lambda line: line.get("fingerprint") == fingerprint).items()}
                if on_start is not None:
                    on_start(len(shared), sum(key(k) in done for k in shared))

                async def one(k: tuple[str, str]) -> dict:
                    if key(k) in done:
                        return done[key(k)]
                    item = a[k].item()
                    first, second = await scorer.compare(item, a[k].output, b[k].output)
                    line = {"key": key(k), "fingerprint": fingerprint,
                            "a_first": first.parsed, "b_first": second.parsed,
                            "errors": [r.error for r in (first, second) if r.error],
                            "retryable": first.retryable or second.retryable,
                            "a_first_reply": first.reply, "b_first_reply": second.reply}
                    writer.write(line)
                    if on_judged is not None:
                        on_judged(not line["errors"], line["retryable"])
                    return line
                return await asyncio.gather(*(one(k) for k in shared))

    lines = asyncio.run(go())
    outcomes = []
    for line in lines:
        for axis in axes:
            if line["errors"]:
                outcomes.append((axis, None, False))
            else:
                outcome, disagreed = combine(line["a_first"][axis], line["b_first"][axis])
                outcomes.append((axis, outcome, disagreed))
    return summarize(outcomes, axes), len(shared)
