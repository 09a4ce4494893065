"""``evalkit study create``: a study's file made from long-form runs (and optionally the reference
answers their items carry, as one more "system"), with its raters, their tokens and assignments.

Refused at creation, each named by run and item: an empty answer, a failed generation, an answer
that would not display (control characters, broken Unicode, or longer than a page holds)."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from evalkit.config import StudySettings, field_default
from evalkit.run.rundir import check_path_component, load_run
from evalkit.web.study.db import STUDY_DB, StudyDB, StudyError
from evalkit.web.study.design import Unit, assign
from evalkit.web.study.rubric import DESIGNS, STUDY_RUBRICS, load_study_rubric

REFERENCE_SYSTEM = "reference"  # the name the items' own reference answers go by
ORGANISER = "organiser"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


@dataclass(frozen=True)
class Invitation:
    """A rater's (or the organiser's) label, pool and secret token (printed once, stored only hashed)."""

    label: str
    pool: str
    token: str


@dataclass
class CreatedStudy:
    """What ``create_study`` made: the study file, its systems, items, tasks, invitations."""

    path: Path
    systems: list[str]
    items: int
    tasks: int
    invitations: list[Invitation] = field(default_factory=list)
    organiser: Invitation | None = None


def study_path(name: str, studies_dir: str | Path = field_default(StudySettings, "studies_dir")) -> Path:
    """The SQLite file of study NAME."""
    return Path(studies_dir) / check_path_component(name, "study name") / STUDY_DB


def unratable(text: Any, max_chars: int) -> str | None:
    """Why an answer cannot be put before raters (None: it can)."""
    if not isinstance(text, str) or not text.strip():
        return "empty answer"
    if _CONTROL.search(text):
        return "would not display: control characters or broken Unicode in the text"
    if len(text) > max_chars:
        return f"would not display: {len(text)} characters (more than {max_chars})"
    return None


def reference_text(target: Any) -> str | None:
    """The reference answer an item's stored target carries: LiveQA's first reference answer, a statements
    target's physician answer (None: none)."""
    if isinstance(target, list) and target and isinstance(target[0], str):
        return target[0]
    if isinstance(target, Mapping) and isinstance(target.get("reference"), str):
        return target["reference"]
    return None


def collect_answers(runs: Sequence[str | Path], *, reference: bool, items: int, seed: int,
                    max_chars: int) -> tuple[dict[str, str], dict[str, dict[str, str]], list[str]]:
    """The questions (id -> text) chosen (ITEMS of those every system answered, drawn with SEED) and
    each system's answers (system -> id -> text). Raises StudyError listing every unratable answer."""
    systems: dict[str, dict[str, Any]] = {}
    questions: dict[str, str] = {}
    for path in runs:
        run = load_run(path)
        # the served model's name (from the manifest), else the run's; a repeated one gets the run's too
        name = run.model if run.model not in systems else f"{run.model} ({run.name})"
        samples = {key[1] if isinstance(key, tuple) else str(key): s for key, s in run.items().items()}
        systems[name] = {qid: s for qid, s in samples.items()}
        for qid, s in samples.items():
            questions.setdefault(qid, s.get("question") or "")
        if reference:
            refs = {qid: reference_text(s.get("target")) for qid, s in samples.items()}
            systems.setdefault(REFERENCE_SYSTEM, {}).update({q: {"output": t} for q, t in refs.items() if t})
    if not systems:
        raise StudyError("a study needs at least one run")
    common = sorted(set.intersection(*(set(v) for v in systems.values())))
    if len(common) < items:
        counts = ", ".join(f"{name}: {len(answers)}" for name, answers in systems.items())
        raise StudyError(f"{items} items asked for, but only {len(common)} were answered by every system "
                         f"(items answered: {counts})")
    chosen = sorted(random.Random(seed).sample(common, items))
    problems = []
    for sysname, answers in systems.items():
        for qid in chosen:
            s = answers[qid]
            why = f"failed generation: {s['error']}" if s.get("error") else unratable(s.get("output"), max_chars)
            if why is None and not questions[qid].strip():
                why = "the question is empty"
            if why:
                problems.append(f"{sysname}: item {qid}: {why}")
    if problems:
        raise StudyError("answers that cannot be rated (fix the runs, or choose other items with --seed):\n  "
                         + "\n  ".join(problems))
    return ({q: questions[q] for q in chosen},
            {sysname: {q: answers[q]["output"] for q in chosen} for sysname, answers in systems.items()},
            [str(p) for p in runs])


def plan_units(answer_ids: Mapping[tuple[str, str], int], systems: Sequence[str], qids: Sequence[str],
               design: str, *, lay: bool, rubrics: Mapping[str, str]) -> list[Unit]:
    """The units to rate: each answer (independent), each pair of systems' answers to a question
    (pairwise), each answer again for lay raters when there are some."""
    units = []
    if design in ("independent", "both"):
        units += [Unit((answer_ids[s, q],), "physician", rubrics["physician"]) for q in qids for s in systems]
    if design in ("pairwise", "both"):
        if len(systems) < 2:
            raise StudyError("a pairwise design needs two systems (two runs, or a run and --reference)")
        units += [Unit((answer_ids[a, q], answer_ids[b, q]), "physician", rubrics["pairwise"])
                  for q in qids for a, b in combinations(systems, 2)]
    if lay:
        units += [Unit((answer_ids[s, q],), "lay", rubrics["lay"]) for q in qids for s in systems]
    return units


def create_study(name: str, runs: Sequence[str | Path], *, new_token: Callable[[], tuple[str, str]],
                 reference: bool = field_default(StudySettings, "reference"), rubrics: Mapping[str, str] | None = None, **options: Any) -> CreatedStudy:
    """Create study NAME (``StudySettings`` fields as OPTIONS) from RUNS. NEW_TOKEN gives a fresh
    (token, hash) pair; only the hash is stored. Refuses a study that exists."""
    st = StudySettings(**options, reference=reference)
    if st.design not in DESIGNS:
        raise StudyError(f"design {st.design!r} is not one of {', '.join(DESIGNS)}")
    chosen_rubrics = {"physician": STUDY_RUBRICS["independent", "physician"],
                      "pairwise": STUDY_RUBRICS["pairwise", "physician"], "lay": STUDY_RUBRICS["independent", "lay"]}
    unknown = sorted(set(rubrics or {}) - set(chosen_rubrics))
    if unknown:
        raise StudyError(f"rubric role(s) {', '.join(unknown)}: the roles are {', '.join(chosen_rubrics)}")
    chosen_rubrics.update(rubrics or {})
    loaded = {role: load_study_rubric(r) for role, r in chosen_rubrics.items()}
    if loaded["pairwise"].pairwise is False or loaded["physician"].pairwise or loaded["lay"].pairwise:
        raise StudyError("the pairwise rubric must have A / B / tie axes, the others must not")
    path = study_path(name, st.studies_dir)
    if path.exists():
        raise StudyError(f"{path}: study {name!r} exists already")
    questions, answers, sources = collect_answers(runs, reference=reference, items=st.items, seed=st.seed,
                                                  max_chars=st.max_answer_chars)
    path.parent.mkdir(parents=True, exist_ok=True)
    db = StudyDB(path, create=True)
    try:
        with db.transaction():
            return _fill(db, name, st, loaded, questions, answers, sources, new_token)
    except BaseException:
        db.close()
        path.unlink(missing_ok=True)
        raise
    finally:
        db.close()


def _fill(db: StudyDB, name: str, st: StudySettings, rubrics: Mapping[str, Any], questions: Mapping[str, str],
          answers: Mapping[str, Mapping[str, str]], sources: Sequence[str],
          new_token: Callable[[], tuple[str, str]]) -> CreatedStudy:
    db.set_meta("name", name)
    db.set_meta("settings", {k: getattr(st, k) for k in ("design", "raters_per_answer", "physicians", "lay",
                                                         "items", "seed")})
    db.set_meta("rubrics", {role: r.to_dict() for role, r in rubrics.items()})
    db.set_meta("closed", False)
    system_ids = {s: db.add_system(s, sources[i] if i < len(sources) else "items' reference answers",
                                   reference=(s == REFERENCE_SYSTEM)) for i, s in enumerate(answers)}
    item_ids = {q: db.add_item(q, text) for q, text in questions.items()}
    answer_ids = {(s, q): db.add_answer(item_ids[q], system_ids[s], answers[s][q]) for s in answers for q in questions}
    units = plan_units(answer_ids, list(answers), list(questions), st.design, lay=st.lay > 0,
                       rubrics={role: r.name for role, r in rubrics.items()})
    invitations, pools = [], {"physician": [], "lay": []}
    for pool, count in (("physician", st.physicians), ("lay", st.lay)):
        for i in range(1, count + 1):
            token, hashed = new_token()
            label = f"{pool}-{i}"
            pools[pool].append(db.add_rater(label, pool, hashed))
            invitations.append(Invitation(label, pool, token))
    tasks = assign(units, pools, st.raters_per_answer, st.seed)
    for t in tasks:
        db.add_task(t.rater, t.position, t.unit.rubric, t.answers)
    token, hashed = new_token()
    db.add_rater(ORGANISER, ORGANISER, hashed, organiser=True)
    return CreatedStudy(path=db.path, systems=list(answers), items=len(questions), tasks=len(tasks),
                        invitations=invitations, organiser=Invitation(ORGANISER, ORGANISER, token))
