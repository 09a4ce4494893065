"""``evalkit judge`` as the library runs it: a model judge made from ``JudgeSettings``, one pass over
saved answers (a run, graded answers, K-QA's physicians' file) or a pairwise ranking of two runs,
its files written, and a result object the command line only prints (``api.judge``).

Every default is ``config.JudgeSettings``'; the passes themselves are ``judge_pass`` (the rubric
judge, journaled; agreement; pairwise) and ``kqa`` (the physicians' file).
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from evalkit.backends import served_models
from evalkit.config import JudgeSettings
from evalkit.judge_pass import JudgeResult, agreement_json, default_work_dir, judge_answers, pairwise, read_input
from evalkit.kqa import NLI_JOURNAL, evaluate_nli_file, is_nli_file
from evalkit.lock import try_lock_run_dir
from evalkit.runs import live_writer, snapshot_note
from evalkit.scoring.rubric_judge import RubricJudgeScorer
from evalkit.serving.errors import ServerError
from evalkit.serving.state import resolve_endpoint
from evalkit.store import SAMPLES, samples_path, write_json, write_jsonl

PAIRWISE, ANSWERS, KQA = "pairwise", "answers", "kqa"  # what a judge pass judged


class JudgeStopped(KeyboardInterrupt):
    """A judge pass interrupted (Ctrl-C); what was judged is journaled in ``work_dir``."""

    def __init__(self, work_dir: Path):
        super().__init__(str(work_dir))
        self.work_dir = work_dir


@dataclass
class Judgement:
    """What ``judge`` did. ``kind`` says which pass: ``answers`` (``result``: the judged samples and
    agreement, written to ``judged_file``), ``pairwise`` (``summary`` per axis over ``shared`` items)
    or ``kqa`` (``kqa``: the physicians' report, its ``pairs`` and ``resumed`` count). ``json_out``
    is where the figures were written, if asked; ``wall_s`` the pass's wall time."""

    kind: str
    judge: RubricJudgeScorer
    work_dir: Path
    wall_s: float = 0.0
    json_out: Path | None = None
    result: JudgeResult | None = None
    judged_file: Path | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    shared: int = 0
    kqa: Any = None
    pairs: list = field(default_factory=list)
    resumed: int = 0
    per: str | None = None  # kqa: one judge request per statement, or per answer

    @property
    def journal(self) -> Path | None:
        """The journal of a K-QA pass (the judged pairs, read back when the pass is run again)."""
        return self.work_dir / NLI_JOURNAL if self.kind == KQA else None

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
        listed = served_models(endpoints[0], api_key=api_key)
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
          **where: Any) -> Judgement:
    """Judge the saved answers in PATH (a run directory or samples file; graded answers with QUESTIONS;
    K-QA's physicians' CSV), or rank the answers of the two runs PAIR. The journal (and the judged
    samples) go to WORK_DIR (default: the run directory, or results/judge/...): rerunning resumes.

    SCORER is a ready judge; else one is made from SETTINGS and WHERE (``make_judge``'s endpoints,
    server, model, api_key). With JSON_OUT the figures are written there too. ON_NOTE hears about
    a run still being written. Raises RunLocked when a running evalkit run holds the directory written,
    JudgeInputError when the answers cannot be read (nothing is sent), JudgeStopped on Ctrl-C."""
    if (path is None) == (pair is None):
        raise ValueError("give PATH to judge, or a pair of runs")
    scorer = scorer or make_judge(settings, **where)
    t0 = time.perf_counter()
    if pair is not None:
        out = _pairwise(Path(pair[0]), Path(pair[1]), scorer, settings, work_dir)
    elif is_nli_file(Path(path)):
        out = _kqa(Path(path), scorer, settings, work_dir)
    else:
        out = _answers(Path(path), scorer, settings, questions, work_dir, on_note)
    out.wall_s = time.perf_counter() - t0
    if json_out is not None:  # its folder made as needed: the pass is done, its figures must not be lost
        out.json_out = Path(json_out)
        out.json_out.parent.mkdir(parents=True, exist_ok=True)
        write_json(out.json_out, _figures(out))
    return out


def _pairwise(run_a: Path, run_b: Path, scorer: RubricJudgeScorer, settings: JudgeSettings,
              work_dir: "str | Path | None") -> Judgement:
    work = Path(work_dir) if work_dir is not None else default_work_dir(run_a)
    with run_dir_lock(work):  # its journal goes into RUN_A's directory by default
        try:
            summary, shared = pairwise(run_a, run_b, scorer, work_dir=work, limit=settings.limit)
        except KeyboardInterrupt:
            raise JudgeStopped(work) from None
    return Judgement(PAIRWISE, scorer, work, summary=summary, shared=shared)


def _kqa(path: Path, scorer: RubricJudgeScorer, settings: JudgeSettings, work_dir: "str | Path | None") -> Judgement:
    work = Path(work_dir) if work_dir is not None else default_work_dir(path)
    try:
        report, pairs, _labels, resumed = evaluate_nli_file(path, scorer, per=settings.kqa_per, work_dir=work,
                                                            limit=settings.limit, n_resamples=settings.n_resamples)
    except KeyboardInterrupt:
        raise JudgeStopped(work) from None
    return Judgement(KQA, scorer, work, kqa=report, pairs=pairs, resumed=resumed, per=settings.kqa_per)


def _answers(path: Path, scorer: RubricJudgeScorer, settings: JudgeSettings, questions: "str | Path | None",
             work_dir: "str | Path | None", on_note: Callable[[str], None]) -> Judgement:
    work = Path(work_dir) if work_dir is not None else default_work_dir(path)
    writer = live_writer(samples_path(path)) if path.exists() else None  # a run still writing PATH
    with run_dir_lock(work):  # judging into a run directory writes it: one writer at a time
        data = read_input(path, questions=Path(questions) if questions is not None else None, limit=settings.limit)
        if writer is not None:
            on_note(snapshot_note(samples_path(path), writer, len(data.pairs)))
        try:
            result = judge_answers(data, scorer, work_dir=work, n_resamples=settings.n_resamples)
        except KeyboardInterrupt:
            raise JudgeStopped(work) from None
        judged_file = work / f"judged-{scorer.rubric.name}.jsonl"
        write_jsonl(judged_file, [s.to_dict() for s in result.samples])
    return Judgement(ANSWERS, scorer, work, result=result, judged_file=judged_file)


def _figures(out: Judgement) -> dict[str, Any]:
    """The --json document of a pass: per axis the pairwise shares, the agreement, or K-QA's report."""
    if out.kind == PAIRWISE:
        return {axis: s.to_dict() for axis, s in out.summary.items()}
    if out.kind == KQA:
        return {**out.kqa.to_dict(), "per": out.per, "model": out.judge.model, "pairs": len(out.pairs)}
    return agreement_json(out.result)


def run_dir_lock(work: Path):
    """The run-directory lock of WORK when it is a run directory (the journal and judged samples go
    there), else nothing; RunLocked when a running evalkit run holds it."""
    if not (work / SAMPLES).is_file():
        return nullcontext()
    return try_lock_run_dir(work)
