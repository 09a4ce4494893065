"""Re-extract and re-score saved generations, with no server.

Reads an evalkit run (a run directory or its ``samples.jsonl``) or a
MedReason/HuatuoGPT-o1 evaluation log (a JSON list of items with ``output``,
``options`` and ``answer_idx``, optionally ``source``; or a JSON object
mapping each source to such a list), and returns sample dicts in evalkit's
``samples.jsonl`` form scored again: by default with the scorers the items
declare, as a run picks them (the choice scorer for multiple choice: ``pred``,
``method`` and ``correct`` redone; IgakuQA's for its sets and numbers), or with
any scorers (named, or ``module:attr``). Scoring goes through the same stage as ``evalkit run``
(evalkit.scoring.stage); a model judge's scores are journaled as they arrive.
"""

from __future__ import annotations

import ast
import json
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import asyncio

from evalkit.scoring.extract import DEFAULT_EXTRACTOR
from evalkit.core.lock import try_lock_run_dir
from evalkit.core.records import SampleRecord
from evalkit.run.rundir import counting_samples, live_writer, snapshot_note
from evalkit.scoring.plan import ScoringPlan, plan_scoring
from evalkit.scoring.stage import rescore_line, score_samples
from evalkit.core.store import SAMPLES, iter_numbered, parse_json, paused_gc, read_samples, samples_path, write_jsonl

_MEDREASON_REQUIRED = ("output", "options", "answer_idx")


def _options(value: Any, where: str) -> dict[str, str]:
    """Options as an ordered letter -> text dict; a Python/JSON dict literal string is accepted."""
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise ValueError(f"{where}: 'options' is a string that is not a dict literal") from None
    if not isinstance(value, Mapping) or not value:
        raise ValueError(f"{where}: 'options' must be a non-empty mapping of letter to text")
    return {str(k): str(v) for k, v in value.items()}


def is_medreason_log(path: str | Path) -> bool:
    """True for a ``.json`` file (a MedReason log); evalkit runs are directories or ``.jsonl`` files."""
    path = Path(path)
    return path.is_file() and path.suffix.lower() == ".json"


def read_medreason_log(path: str | Path) -> list[dict[str, Any]]:
    """The items of a MedReason/HuatuoGPT-o1 log as evalkit sample dicts (``source`` becomes ``dataset``)."""
    path = Path(path)
    try:
        data = parse_json(path.read_bytes())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if isinstance(data, dict):  # {source: [items]}, the form the MedReason eval script reads
        items = [dict(item, source=item.get("source", src)) for src, group in data.items() for item in group]
    elif isinstance(data, list):
        items = data
    else:
        raise ValueError(f"{path}: expected a JSON list of items (or an object of lists), got {type(data).__name__}")
    samples = []
    for i, item in enumerate(items):
        where = f"{path}: item {i}"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: expected an object, got {type(item).__name__}")
        missing = [k for k in _MEDREASON_REQUIRED if k not in item]
        if missing:
            raise ValueError(f"{where}: missing {', '.join(repr(k) for k in missing)}")
        output = item["output"]
        samples.append({
            "id": str(item.get("id", i)),
            "dataset": str(item.get("source") or "unknown"),
            "question": str(item.get("question", "")),
            "options": _options(item["options"], where),
            "answer_idx": str(item["answer_idx"]),
            "prompt": str(item.get("input_str", "")),
            "output": output if isinstance(output, str) else json.dumps(output),
            "finish_reason": None,
            "pred": None,
            "method": None,
            "correct": False,
            "usage": {},
            "latency_s": 0.0,
            "truncated": False,
            "error": None,
            "index": 0,
            "meta": {"medreason_item": i},
        })
    return samples


def read_generations(path: str | Path, *, require_choice: bool = True) -> list[dict[str, Any]]:
    """Saved generations from an evalkit run or a MedReason log, as sample dicts."""
    if is_medreason_log(path):
        return read_medreason_log(path)
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
            s["options"] = _options(s["options"], where)
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

    PATH is a run directory, a samples file or a MedReason log. The scorers are PLAN's, else
    ``plan_scoring(SCORERS, extractor=EXTRACTOR, scorer_options=SCORER_OPTIONS)``; with none named,
    those the first sample's item declares, as a run picks them (``Item.default_scorers``: the
    choice scorer for multiple choice, IgakuQA's for its sets and numbers). A model judge among them
    is called as the run's scoring pass is (its scores journaled to JOURNAL when given).
    """
    if plan is None and scorers is None and not is_medreason_log(path):
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
    compat: dict[str, Any] | None = None  # MedReason's own figures per source (api.rescore, medreason extractor)

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
    names = list(scorers) if scorers else None if is_medreason_log(path) else default_scorers(path)
    label = extractor or DEFAULT_EXTRACTOR
    if names and names != ["choice"]:
        label = "+".join(n.rpartition(":")[2] or n for n in names)
    output = Path(output) if output is not None else default_output(path, label)
    journal = output.with_name(output.name + ".journal")
    run_samples = None if is_medreason_log(path) else samples_path(path)
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
