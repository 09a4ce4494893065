"""Re-extract and re-score saved generations, with no server.

Reads an evalkit run (a run directory or its ``samples.jsonl``) or another
harness's log of generations that a benchmark's folder registers a reader for
(``register_log_reader``), and returns sample dicts in evalkit's
``samples.jsonl`` form scored again: by default with the scorers the items
declare, as a run picks them (the choice scorer for multiple choice: ``pred``,
``method`` and ``correct`` redone; a target type's registered ones), or with
any scorers (named, or ``module:attr``). Scoring goes through the same stage as ``evalkit run``
(evalkit.scoring.stage); a model judge's scores are journaled as they arrive.
"""

from __future__ import annotations

import ast
import json
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import asyncio

from evalkit.scoring.extract import DEFAULT_EXTRACTOR
from evalkit.core.lock import try_lock_run_dir
from evalkit.core.plugins import load_plugins
from evalkit.core.records import SampleRecord
from evalkit.run.rundir import counting_samples, live_writer, snapshot_note
from evalkit.scoring.plan import ScoringPlan, plan_scoring
from evalkit.scoring.stage import rescore_line, score_samples
from evalkit.core.store import SAMPLES, iter_numbered, parse_json, paused_gc, read_samples, samples_path, write_jsonl

def read_options(value: Any, where: str) -> dict[str, str]:
    """Options as an ordered letter -> text dict; a Python/JSON dict literal string is accepted."""
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise ValueError(f"{where}: 'options' is a string that is not a dict literal") from None
    if not isinstance(value, Mapping) or not value:
        raise ValueError(f"{where}: 'options' must be a non-empty mapping of letter to text")
    return {str(k): str(v) for k, v in value.items()}


@dataclass(frozen=True)
class LogReader:
    """A reader of another harness's log of generations (a benchmark's folder registers one):
    ``claims(path)`` says whether PATH is such a log, ``read(path)`` gives its items as evalkit sample
    dicts (ValueError naming the bad item). A log names no scorers: rescoring it uses the choice scorer
    unless told otherwise."""

    name: str
    claims: Callable[[Path], bool]
    read: Callable[[Path], list[dict[str, Any]]]


LOG_READERS: dict[str, LogReader] = {}


def register_log_reader(reader: LogReader) -> LogReader:
    """Register READER under its name (a benchmark's folder does, when it is imported)."""
    LOG_READERS[reader.name] = reader
    return reader


def log_reader_for(path: str | Path) -> LogReader | None:
    """The registered reader that claims PATH, if any (the plugins are loaded first: they register);
    evalkit's own runs are directories or ``.jsonl`` files, which no reader should claim."""
    load_plugins()
    return next((r for r in LOG_READERS.values() if r.claims(Path(path))), None)


def read_generations(path: str | Path, *, require_choice: bool = True) -> list[dict[str, Any]]:
    """Saved generations from an evalkit run or a registered harness's log, as sample dicts."""
    reader = log_reader_for(path)
    if reader is not None:
        return reader.read(Path(path))
    spath = samples_path(path)
    if not spath.exists():
        raise ValueError(f"{spath}: no such samples file")
    samples = read_samples(spath)
    for lineno, s in enumerate(samples, start=1):
        where = f"{spath}: sample {lineno}"
        for key in ("dataset", "id") if require_choice is False else ("dataset", "options", "answer_idx"):
            if key not in s:
                raise ValueError(f"{where}: missing {key!r}")
        if "options" in s and (s["options"] or require_choice):  # a question with no choices (a number) has none
            s["options"] = read_options(s["options"], where)
    # A sample that failed and was retried on resume has two lines; only the one that counts is rescored.
    return counting_samples(samples)


def default_scorers(path: str | Path) -> list[str] | None:
    """The scorers the first saved sample's item declares (``Item.default_scorers``), or None (the
    choice scorer) when it declares none or the file holds no sample."""
    try:
        for _, record in iter_numbered(samples_path(path)):
            return list(SampleRecord.from_dict(record).item().default_scorers) or None
    except (ValueError, TypeError):
        return None  # read_generations names the bad line
    return None


def rescore(path: str | Path, extractor: str | None = None, *, scorers: Sequence[str] | None = None,
            scorer_options: Mapping[str, Mapping[str, Any]] | None = None, plan: ScoringPlan | None = None,
            journal: Path | None = None) -> list[dict[str, Any]]:
    """Score the generations saved at PATH again, requesting nothing from the answering server:
    the one rescoring entry point (``evalkit score``, ``api.rescore``).

    PATH is a run directory, a samples file or a log a registered reader claims (``register_log_reader``). The scorers are PLAN's, else
    ``plan_scoring(SCORERS, extractor=EXTRACTOR, scorer_options=SCORER_OPTIONS)``; with none named,
    those the first sample's item declares, as a run picks them (``Item.default_scorers``: the
    choice scorer for multiple choice, a target type's registered ones for its items). A model judge among them
    is called as the run's scoring pass is (its scores journaled to JOURNAL when given).
    """
    if plan is None and scorers is None and log_reader_for(path) is None:
        scorers = default_scorers(path)
    plan = plan or plan_scoring(scorers, extractor=extractor, scorer_options=scorer_options)
    choice_only = all(s.name == "choice" for s in plan.scorers)
    samples = read_generations(path, require_choice=choice_only)
    if not samples:
        raise ValueError(f"{path}: holds no samples to score")
    if not plan.has_async:
        with paused_gc():
            return [rescore_line(s, plan) for s in samples]
    records = []
    for s in samples:
        s = {**s, "scored_with": None}
        records.append(SampleRecord.from_dict({"question": "", "options": {}, "answer_idx": None, "prompt": "",
                                               "output": "", "finish_reason": None, **s}))
    asyncio.run(score_samples([(r.item(), r) for r in records], plan, journal=journal))
    return [r.to_dict() for r in records]


def default_output(path: str | Path, extractor_name: str) -> Path:
    # EXTRACTOR_NAME: the extractor, or a name for the scorers used (``evalkit score --scorer``).
    """Where ``evalkit score`` writes by default: beside the input, never over it."""
    path = Path(path)
    if path.is_dir():
        return path / f"samples.rescored-{extractor_name}.jsonl"
    return path.with_name(f"{path.stem}.rescored-{extractor_name}.jsonl")


@dataclass
class Rescored:
    """What ``rescore_to_file`` did: the rescored SAMPLES written to OUTPUT, the scoring PLAN, the
    EXTRACTOR the choice scorer used (whichever option named it), and a NOTE when a running
    evalkit run was writing the input (the read was a partial snapshot)."""

    samples: list[dict[str, Any]]
    output: Path
    plan: ScoringPlan
    extractor: str
    note: str | None = None
    extractor_table: Any = None  # the extractor's own table (a ReportTable; api.rescore fills it in)

    @property
    def summary(self) -> dict[str, Any]:
        """Per dataset, the counts and each score by its metric (``score.summarize``)."""
        from evalkit.run.summary import summarize

        return summarize(self.samples, self.plan.metrics)


def rescore_to_file(path: str | Path, output: str | Path | None = None, *, extractor: str | None = None,
                    scorers: Sequence[str] | None = None,
                    scorer_options: Mapping[str, Mapping[str, Any]] | None = None) -> Rescored:
    """``evalkit score``: ``rescore`` PATH and write the samples (JSON lines) to OUTPUT (default: beside
    PATH, ``default_output``). A model judge's scores are journaled beside OUTPUT until it is written,
    so an interrupted pass resumes. OUTPUT may be a run's own samples.jsonl (rewritten in place):
    then the run directory is locked first (RunLocked when a running evalkit run holds it)."""
    names = list(scorers) if scorers else None if log_reader_for(path) is not None else default_scorers(path)
    label = extractor or DEFAULT_EXTRACTOR
    if names and names != ["choice"]:
        label = "+".join(n.rpartition(":")[2] or n for n in names)
    output = Path(output) if output is not None else default_output(path, label)
    journal = output.with_name(output.name + ".journal")
    run_samples = None if log_reader_for(path) is not None else samples_path(path)
    writer = live_writer(run_samples) if run_samples else None  # looked at before and after reading
    with _output_lock(output):  # a run's samples.jsonl is rewritten only by the lock's holder
        plan = plan_scoring(names, extractor=extractor, scorer_options=scorer_options)
        samples = rescore(path, plan=plan, journal=journal)
        write_jsonl(output, samples)
        journal.unlink(missing_ok=True)
    writer = writer or (live_writer(run_samples) if run_samples else None)
    note = snapshot_note(run_samples, writer, len(samples)) if writer is not None else None
    return Rescored(samples, output, plan, plan.extractor or extractor or DEFAULT_EXTRACTOR, note)


def _output_lock(output: Path):
    """The run-directory lock when OUTPUT is a run's samples.jsonl (an in-place rewrite), else nothing:
    a running evalkit run appends to that file, and replacing it under the run would lose every sample
    it saves after."""
    if output.name != SAMPLES or not output.parent.is_dir():
        return nullcontext()
    return try_lock_run_dir(output.parent)
