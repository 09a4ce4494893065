"""``evalkit judge`` as the library runs it: a model judge made from ``JudgeSettings``, one pass over
saved answers (a run, graded answers, a file kind a benchmark registers) or a pairwise ranking of two
runs, its files written, and a result object the command line only prints (``api.judge``).

Every default is ``config.JudgeSettings``'; the passes themselves are ``judge_pass`` (the rubric
judge, journaled; agreement; pairwise) and the file passes benchmarks register (``register_file_pass``:
a file of their own, such as human labels the judge is checked against, judged their way).
"""

from __future__ import annotations

import os
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from evalkit.serving.backends import served_models
from evalkit.config import JudgeSettings
from evalkit.run.dispatch import RunProgress
from evalkit.scoring.judge_pass import (JudgeInputError, JudgeResult, agreement_json, default_work_dir, judge_answers, pairwise,
                                read_input)
from evalkit.core.lock import try_lock_run_dir
from evalkit.core.plugins import load_plugins
from evalkit.run.rundir import live_writer, snapshot_note
from evalkit.scoring.plan import retryable_scores
from evalkit.scoring.rubric_judge import JUDGE_API_KEY_ENV, RubricJudgeScorer
from evalkit.serving.errors import ServerError
from evalkit.serving.probe import PROBE_ERRORS, key_refused_message, refuses_key
from evalkit.serving.state import resolve_endpoint
from evalkit.core.store import SAMPLES, samples_path, write_json, write_jsonl
from evalkit.core.errors import UnreachableError

PAIRWISE, ANSWERS = "pairwise", "answers"  # what a judge pass judged (else a file pass's kind)


@dataclass(frozen=True)
class FilePass:
    """A judge pass over a file kind of a benchmark's own (registered by the benchmark's folder).

    ``claims(path)`` says whether PATH is such a file (it may claim a near miss, to say what is wrong
    with it: ``judge`` raises the JudgeInputError). ``judge(path, scorer, settings, work_dir, progress)``
    judges it, journaled in WORK_DIR under ``journal``, calling ``progress.start`` / ``progress.judged``,
    and returns (report, pairs, resumed): REPORT has ``to_dict()`` (the --json figures). JudgeInputError
    when the file cannot be read (nothing sent). ``show(judgement, path, out)`` prints the report
    (OUT: a rich console) for the command line."""

    kind: str
    claims: Callable[[Path], bool]
    judge: Callable[..., tuple[Any, list, int]]
    journal: str
    show: Callable[..., None]


FILE_PASSES: dict[str, FilePass] = {}


def register_file_pass(file_pass: FilePass) -> FilePass:
    """Register FILE_PASS under its kind (a benchmark's folder does, when it is imported)."""
    FILE_PASSES[file_pass.kind] = file_pass
    return file_pass


def file_pass_for(path: Path) -> FilePass | None:
    """The registered file pass that claims PATH, if any (the plugins are loaded first: they register)."""
    load_plugins()
    return next((fp for fp in FILE_PASSES.values() if fp.claims(path)), None)


class JudgeStopped(KeyboardInterrupt):
    """A judge pass interrupted (Ctrl-C); what was judged is journaled in ``work_dir``."""

    def __init__(self, work_dir: Path):
        super().__init__(str(work_dir))
        self.work_dir = work_dir


class JudgeDown(UnreachableError):
    """The judge could not be used (it stopped answering, or refuses the key): the pass stopped asking;
    what was judged is journaled in ``work_dir``, and the same command resumes."""

    def __init__(self, reason: str, work_dir: Path, judged: int, total: int):
        super().__init__(f"{reason}; {judged} of {total} judged so far are journaled in {work_dir}: start the judge "
                         "(or give it its key) and run the same command to resume")
        self.reason = reason
        self.work_dir = work_dir
        self.judged = judged
        self.total = total


@dataclass
class JudgeProgress:
    """Counts of a judge pass as it goes, kept in a ``RunProgress`` (``progress.ProgressLines`` prints it):
    ``start`` when the pass knows its size, ``judged`` after each answer or pair; ``unjudged`` counts those
    whose judge request failed (asked again by the next run)."""

    progress: RunProgress
    scorer: Any
    on_start: Callable[[int, int], None] | None = None
    unjudged: int = 0

    def start(self, total: int, resumed: int) -> None:
        self.progress.total, self.progress.resumed = total, resumed
        self.progress.started = time.perf_counter()
        if self.on_start is not None:
            self.on_start(total, resumed)

    def judged(self, ok: bool, retryable: bool = False) -> None:
        p, usage = self.progress, self.scorer.usage
        p.done += not retryable  # one whose request failed is asked again: not done
        p.errors += not ok
        self.unjudged += retryable
        p.requests, p.completion_tokens = usage.requests, usage.completion_tokens

    def scored(self, record: Any) -> None:
        """``judged`` for a sample the rubric judge scored (its scores: None values are judge errors)."""
        scores = record.scores or {}
        self.judged(all(v.get("value") is not None for v in scores.values()), retryable_scores(scores))


@dataclass
class Judgement:
    """What ``judge`` did. ``kind`` says which pass: ``answers`` (``result``: the judged samples and
    agreement, written to ``judged_file``), ``pairwise`` (``summary`` per axis over ``shared`` items)
    or a registered file pass's kind (``file_pass``: its registration; ``report``: its figures, its
    ``pairs`` and ``resumed`` count). ``json_out`` is where the figures were written, if asked;
    ``wall_s`` the pass's wall time."""

    kind: str
    judge: RubricJudgeScorer
    work_dir: Path
    wall_s: float = 0.0
    json_out: Path | None = None
    result: JudgeResult | None = None
    judged_file: Path | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    shared: int = 0
    report: Any = None
    pairs: list = field(default_factory=list)
    resumed: int = 0
    per: str | None = None  # a file pass: one judge request per statement, or per answer
    file_pass: "FilePass | None" = None
    unjudged: int = 0  # answers or pairs whose judge request failed: asked again when the command is run again

    @property
    def journal(self) -> Path | None:
        """The journal of a file pass (what it judged, read back when the pass is run again)."""
        return self.work_dir / self.file_pass.journal if self.file_pass is not None else None

    @property
    def errors(self) -> int:
        """Scores the judge could not give (no valid reply); they count in no figure."""
        samples = self.result.samples if self.result is not None else []
        return sum(1 for s in samples for v in (s.scores or {}).values() if v.get("value") is None)


def make_judge(settings: JudgeSettings = JudgeSettings(), *, endpoints: Sequence[str] = (), server: str | None = None,
               model: str | None = None, api_key: str | None = None) -> RubricJudgeScorer:
    """The rubric judge of SETTINGS at ENDPOINTS, else at the recorded server SERVER (None: the only one);
    MODEL defaults to the server's (the one it lists). ServerError when none can be found."""
    endpoints = list(endpoints)
    if not endpoints:
        handle = resolve_endpoint(server)
        endpoints = [handle.base_url]
        model = model or handle.model
    if not model:
        key = api_key or os.environ.get(JUDGE_API_KEY_ENV)
        try:
            listed = served_models(endpoints[0], api_key=key)
        except PROBE_ERRORS as exc:
            if refuses_key(exc):
                where = f"--judge-api-key or ${JUDGE_API_KEY_ENV}"
                message = key_refused_message(exc.code, given=bool(key), where=where, who="the judge")
                raise ServerError(f"{endpoints[0]}: {message}") from None
            raise ServerError(f"cannot reach the judge at {endpoints[0]} ({exc}); is it running?") from None
        if not listed:
            raise ServerError(f"{endpoints[0]} lists no model: pass --judge-model NAME")
        model = listed[0]
    s = settings
    return RubricJudgeScorer(s.rubric, endpoints, model, concurrency=s.concurrency, rps=s.rps,
                             temperature=s.temperature, max_tokens=s.max_tokens, max_attempts=s.max_attempts,
                             reference=s.reference, json_schema=s.json_schema, api_key=api_key)


def judge(path: "str | Path | None" = None, *, pair: "tuple[str | Path, str | Path] | None" = None,
          scorer: RubricJudgeScorer | None = None, settings: JudgeSettings = JudgeSettings(),
          questions: "str | Path | None" = None, work_dir: "str | Path | None" = None,
          json_out: "str | Path | None" = None, on_note: Callable[[str], None] = lambda _m: None,
          progress: RunProgress | None = None, on_start: Callable[[int, int], None] | None = None,
          **where: Any) -> Judgement:
    """Judge the saved answers in PATH (a run directory or samples file; graded answers with QUESTIONS;
    a file kind a registered file pass claims), or rank the answers of the two runs PAIR. The journal (and the judged
    samples) go to WORK_DIR (default: the run directory, or results/judge/...): rerunning resumes.

    SCORER is a ready judge; else one is made from SETTINGS and WHERE (``make_judge``'s endpoints,
    server, model, api_key). With JSON_OUT the figures are written there too. ON_NOTE hears about
    a run still being written. PROGRESS (a RunProgress) is kept up to date as answers are judged;
    ON_START(total, resumed) is told once the pass knows its size. Raises RunLocked when a running
    evalkit run holds the directory written, JudgeInputError when the answers cannot be read (nothing
    is sent), JudgeDown when the judge stopped answering or refuses the key (what was judged is
    journaled; nothing else is written), JudgeStopped on Ctrl-C."""
    if (path is None) == (pair is None):
        raise ValueError("give PATH to judge, or a pair of runs")
    scorer = scorer or make_judge(settings, **where)
    count = JudgeProgress(progress if progress is not None else RunProgress(), scorer, on_start)
    t0 = time.perf_counter()
    if pair is not None:
        out = _pairwise(Path(pair[0]), Path(pair[1]), scorer, settings, work_dir, count)
    elif (claimed := file_pass_for(Path(path))) is not None:
        out = _file_pass(claimed, Path(path), scorer, settings, work_dir, count)
    else:
        out = _answers(Path(path), scorer, settings, questions, work_dir, on_note, count)
    out.wall_s = time.perf_counter() - t0
    out.unjudged = count.unjudged
    if json_out is not None:  # its folder made as needed: the pass is done, its figures must not be lost
        out.json_out = Path(json_out)
        out.json_out.parent.mkdir(parents=True, exist_ok=True)
        write_json(out.json_out, _figures(out))
    return out


def _check_judge(scorer: RubricJudgeScorer, work: Path, count: JudgeProgress) -> None:
    """JudgeDown when the pass found the judge down: its figures would count nothing it was asked."""
    down_reason = getattr(scorer, "down_reason", None)  # a judge of another kind may not tell
    reason = down_reason() if down_reason is not None else None
    if reason is not None:
        p = count.progress
        raise JudgeDown(reason, work, p.resumed + p.done, p.total)


def _pairwise(run_a: Path, run_b: Path, scorer: RubricJudgeScorer, settings: JudgeSettings,
              work_dir: "str | Path | None", count: JudgeProgress) -> Judgement:
    work = Path(work_dir) if work_dir is not None else default_work_dir(run_a)
    with run_dir_lock(work):  # its journal goes into RUN_A's directory by default
        try:
            summary, shared = pairwise(run_a, run_b, scorer, work_dir=work, limit=settings.limit,
                                       on_start=count.start, on_judged=count.judged)
        except KeyboardInterrupt:
            raise JudgeStopped(work) from None
    _check_judge(scorer, work, count)
    return Judgement(PAIRWISE, scorer, work, summary=summary, shared=shared)


def _file_pass(file_pass: "FilePass", path: Path, scorer: RubricJudgeScorer, settings: JudgeSettings,
               work_dir: "str | Path | None", count: JudgeProgress) -> Judgement:
    work = Path(work_dir) if work_dir is not None else default_work_dir(path)
    try:
        report, pairs, resumed = file_pass.judge(path, scorer, settings, work, count)
    except KeyboardInterrupt:
        raise JudgeStopped(work) from None
    _check_judge(scorer, work, count)
    return Judgement(file_pass.kind, scorer, work, report=report, pairs=pairs, resumed=resumed,
                     per=settings.request_per, file_pass=file_pass)


def _answers(path: Path, scorer: RubricJudgeScorer, settings: JudgeSettings, questions: "str | Path | None",
             work_dir: "str | Path | None", on_note: Callable[[str], None], count: JudgeProgress) -> Judgement:
    work = Path(work_dir) if work_dir is not None else default_work_dir(path)
    writer = live_writer(samples_path(path)) if path.exists() else None  # a run still writing PATH
    with run_dir_lock(work):  # judging into a run directory writes it: one writer at a time
        data = read_input(path, questions=Path(questions) if questions is not None else None, limit=settings.limit)
        if writer is not None:
            on_note(snapshot_note(samples_path(path), writer, len(data.pairs)))
        try:
            result = judge_answers(data, scorer, work_dir=work, n_resamples=settings.n_resamples,
                                   on_scored=count.scored, on_start=count.start)
        except KeyboardInterrupt:
            raise JudgeStopped(work) from None
        _check_judge(scorer, work, count)
        judged_file = work / f"judged-{scorer.rubric.name}.jsonl"
        write_jsonl(judged_file, [s.to_dict() for s in result.samples])
    return Judgement(ANSWERS, scorer, work, result=result, judged_file=judged_file)


def _figures(out: Judgement) -> dict[str, Any]:
    """The --json document of a pass: per axis the pairwise shares, the agreement, or a file pass's report."""
    if out.kind == PAIRWISE:
        return {axis: s.to_dict() for axis, s in out.summary.items()}
    if out.file_pass is not None:
        return {**out.report.to_dict(), "per": out.per, "model": out.judge.model, "pairs": len(out.pairs)}
    return agreement_json(out.result)


def run_dir_lock(work: Path):
    """The run-directory lock of WORK when it is a run directory (the journal and judged samples go
    there), else nothing; RunLocked when a running evalkit run holds it."""
    if not (work / SAMPLES).is_file():
        return nullcontext()
    return try_lock_run_dir(work)
