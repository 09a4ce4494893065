"""A study's operations on its file: open it, its rubrics and systems, its report, its export,
its judge pass, closing it. (The web pages are in ``app``; the pure parts in ``report``, ``stats``.)"""

from __future__ import annotations

import csv
import io
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from evalkit.config import DEFAULT_SEED, StudySettings, field_default
from evalkit.web.study.create import study_path
from evalkit.web.study.db import StudyDB
from evalkit.web.study.judge import judge_agreement, judge_study
from evalkit.web.study.report import build_report
from evalkit.web.study.rubric import StudyRubric
from evalkit.web.study.stats import DEFAULT_RESAMPLES

EXPORT_FORMATS = ("csv", "jsonl")
_STUDIES_DIR = field_default(StudySettings, "studies_dir")


@contextmanager
def opened(name: str, studies_dir: str | Path = _STUDIES_DIR) -> Iterator[StudyDB]:
    """``with opened(NAME) as db:`` the study's file, closed at the end (StudyError when there is none)."""
    db = StudyDB(study_path(name, studies_dir))
    try:
        yield db
    finally:
        db.close()


def rubrics_of(db: StudyDB) -> dict[str, StudyRubric]:
    """Role (physician, pairwise, lay) -> the rubric as the study stored it (the wording raters saw)."""
    return {role: StudyRubric.from_dict(d) for role, d in db.meta("rubrics", {}).items()}


def system_names(db: StudyDB) -> list[str]:
    """The systems in the study's order (the reference answers where creation put them)."""
    return [s["name"] for s in db.systems()]


def study_report(name: str, *, studies_dir: str | Path = _STUDIES_DIR, n_resamples: int = DEFAULT_RESAMPLES,
                 seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """The report of study NAME as data (``render.render`` lays it out)."""
    with opened(name, studies_dir) as db:
        rows, rubrics, systems = db.rating_rows(), rubrics_of(db), system_names(db)
        judged, answers, judge_model = db.judged(), db.answer_rows(), db.meta("judge_model")
    judge = None
    if judged or judge_model:  # a judge that was asked and never gave a valid reply shows as such
        usable = [r for r in rows if not r.get("cannot_rate")]
        axes = []
        for role in ("physician", "pairwise"):
            rubric = rubrics.get(role)
            mine = [r for r in usable if rubric is not None and r["rubric"] == rubric.name]
            if mine:  # a rubric no one rated with (a design without pairs) has nothing to set the judge against
                axes += [dict(a, rubric=rubric.name) for a in judge_agreement(mine, judged, rubric, systems, answers,
                                                                              n_resamples=n_resamples)]
        judge = {"model": judge_model, "axes": axes}
    return build_report(name, rows, rubrics, systems, judge=judge, n_resamples=n_resamples, seed=seed)


def export_ratings(name: str, fmt: str, *, studies_dir: str | Path = _STUDIES_DIR) -> str:
    """Every saved rating as CSV (one column per axis) or JSONL, with the systems named (the organiser's file)."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"export format {fmt!r} is not one of {', '.join(EXPORT_FORMATS)}")
    with opened(name, studies_dir) as db:
        return export_rows(db.rating_rows(), fmt)


def export_rows(rows: list[dict[str, Any]], fmt: str) -> str:
    """ROWS (``StudyDB.rating_rows``) as CSV or JSONL text."""
    keep = ("rater", "pool", "rubric", "position", "qid", "system_a", "system_b", "answer_a", "answer_b",
            "comment", "cannot_rate", "opened_at", "saved_at", "revisions")
    if fmt == "jsonl":
        return "".join(json.dumps({**{k: r[k] for k in keep}, "choices": r["choices"]}, ensure_ascii=False) + "\n"
                       for r in rows)
    axes = sorted({a for r in rows for a in r["choices"]})
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(list(keep) + axes)
    for r in rows:
        writer.writerow([r[k] for k in keep] + [r["choices"].get(a, "") for a in axes])
    return buf.getvalue()


def run_judge(name: str, scorer: Any, *, studies_dir: str | Path = _STUDIES_DIR) -> Any:
    """Ask SCORER (a ``RubricJudgeScorer``) about every unit of study NAME not judged yet; a
    ``judge.JudgePass`` (asked, answered, the errors of the others)."""
    with opened(name, studies_dir) as db:
        rubrics = {role: r for role, r in rubrics_of(db).items() if role != "lay"}
        db.set_meta("judge_model", getattr(scorer, "model", None))
        return judge_study(db, scorer, rubrics)


def set_closed(name: str, closed: bool = True, *, studies_dir: str | Path = _STUDIES_DIR) -> None:
    """Close study NAME to new ratings (or open it again)."""
    with opened(name, studies_dir) as db:
        db.set_meta("closed", closed)
