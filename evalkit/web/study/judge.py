"""The model judge against the study's raters.

``judge_study`` asks evalkit's rubric judge the raters' own rubrics about the study's units (each
answer on the physician axes; each pair, in the order raters' first copy saw it, on the pairwise axes)
and stores its choices in the study file. ``judge_agreement`` (pure) sets, per axis, the judge's
agreement with the raters' majority (accuracy, Cohen's kappa) beside a ceiling (each rater against the
majority of the unit's other raters) and two floors (always the most common majority label; a rule that
sees only the answers' lengths)."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from evalkit.scoring.nli_stats import label_agreement
from evalkit.scoring.rubrics import Axis, Rubric, parse_rubric
from evalkit.scoring.rubric_judge import (TIE, RubricJudgeScorer, parse_axes_reply, parse_pairwise_reply,
                                          render_axes_prompt, render_pairwise_prompt)
from evalkit.web.study.db import StudyDB
from evalkit.web.study.report import TIE as PAIR_TIE
from evalkit.web.study.report import X, Y, pair_outcome
from evalkit.web.study.rubric import StudyAxis, StudyRubric
from evalkit.web.study.stats import DEFAULT_RESAMPLES, majority


def _figures(gold: Sequence[str], pred: Sequence[str | None], labels: Sequence[str], n_resamples: int) -> dict:
    if not gold:
        return {"accuracy": None, "kappa": None, "n": 0}
    a = label_agreement(list(gold), list(pred), list(labels), n_resamples=n_resamples)
    return {"accuracy": a.accuracy, "kappa": a.kappa, "n": a.n, "accuracy_ci": a.accuracy_ci, "kappa_ci": a.kappa_ci}


def _unit_labels(rows: Sequence[Mapping[str, Any]], axis: StudyAxis, pairwise: bool,
                 order: Mapping[str, int]) -> dict[tuple, list[str]]:
    """Each unit's rater labels on AXIS (a pair's in the fixed X / Y order)."""
    units: dict[tuple, list[str]] = {}
    for r in rows:
        if axis.name not in r["choices"]:
            continue
        if pairwise:
            x = min((r["system_a"], r["system_b"]), key=lambda s: order.get(s, len(order)))
            label = pair_outcome(axis, r["choices"][axis.name], r["system_a"], r["system_b"], x)
            key = tuple(sorted((r["answer_a"], r["answer_b"])))
        else:
            label, key = r["choices"][axis.name], (r["answer_a"],)
        units.setdefault(key, []).append(label)
    return units


def _length_rule(keys: Sequence[tuple], gold: Sequence[str], lengths: Mapping[int, int], axis: StudyAxis,
                 pairwise: bool, x_first: Mapping[tuple, bool]) -> list[str]:
    """The length-only floor: for a pair, the longer answer preferred; for one answer, the most common
    majority label among answers on the same side of the median length."""
    if pairwise:
        out = []
        for k in keys:
            la, lb = lengths[k[0]], lengths[k[1]]
            x_len, y_len = (la, lb) if x_first[k] else (lb, la)
            out.append(X if (x_len >= y_len) == (axis.picks == "better") else Y)
        return out
    lens = np.array([lengths[k[0]] for k in keys])
    median = float(np.median(lens)) if len(lens) else 0.0
    side = [lengths[k[0]] > median for k in keys]
    best = {s: Counter(g for g, sd in zip(gold, side) if sd == s).most_common(1) for s in (True, False)}
    return [best[s][0][0] for s in side]


def judge_agreement(rows: Sequence[Mapping[str, Any]], judged: Sequence[Mapping[str, Any]], rubric: StudyRubric,
                    systems: Sequence[str], answers: Sequence[Mapping[str, Any]], *,
                    n_resamples: int = DEFAULT_RESAMPLES) -> list[dict[str, Any]]:
    """Per axis of RUBRIC (ratings ROWS of that rubric, the judge's JUDGED rows): the judge, the ceiling,
    the floors, on the units whose raters have a majority."""
    order = {s: i for i, s in enumerate(systems)}
    system_of = {a["id"]: a["system"] for a in answers}
    lengths = {a["id"]: len(a["text"]) for a in answers}
    judge_of = {(j["answer_a"],) if j["answer_b"] is None else tuple(sorted((j["answer_a"], j["answer_b"]))): j
                for j in judged if j["rubric"] == rubric.name}
    out = []
    for axis in rubric.axes:
        labels = [X, Y, PAIR_TIE] if rubric.pairwise else list(axis.choices)
        units = _unit_labels(rows, axis, rubric.pairwise, order)
        keys = [k for k, v in units.items() if majority(v) is not None]
        gold = [majority(units[k]) for k in keys]
        x_first = {k: order.get(system_of[k[0]], 0) <= order.get(system_of[k[-1]], 0) for k in keys}
        pred: list[str | None] = []
        for k in keys:
            j = judge_of.get(k)
            choice = None if j is None else j["choices"].get(axis.name)
            if choice is not None and rubric.pairwise:
                a, b = system_of[j["answer_a"]], system_of[j["answer_b"]]
                x = min((a, b), key=lambda s: order.get(s, len(order)))
                choice = pair_outcome(axis, choice, a, b, x)
            pred.append(choice)
        ceiling_gold, ceiling_pred = [], []
        for v in units.values():
            for i, own in enumerate(v):
                others = majority(v[:i] + v[i + 1:])
                if others is not None:
                    ceiling_gold.append(others)
                    ceiling_pred.append(own)
        common = Counter(gold).most_common(1)[0][0] if gold else None
        out.append({"axis": axis.name, "n": len(keys),
                    "judge": _figures(gold, pred, labels, n_resamples),
                    "ceiling": _figures(ceiling_gold, ceiling_pred, labels, n_resamples),
                    "majority_floor": _figures(gold, [common] * len(gold), labels, 0),
                    "length_floor": _figures(gold, _length_rule(keys, gold, lengths, axis, rubric.pairwise, x_first),
                                             labels, 0)})
    return out


def _axes(rubric: StudyRubric) -> list[Axis]:
    return [Axis(a.name, a.question, tuple(a.choices)) for a in rubric.axes]


@dataclass(frozen=True)
class JudgePass:
    """One judge pass over a study: units asked, units with a valid reply, the others' errors."""

    asked: int
    answered: int
    errors: list[str] = field(default_factory=list)


async def _judge_units(db: StudyDB, scorer: RubricJudgeScorer, rubrics: Mapping[str, StudyRubric]) -> JudgePass:
    answers = {a["id"]: a for a in db.answer_rows()}
    units = {(r["answer_a"], r["answer_b"], r["rubric"])
             for r in db.conn.execute("SELECT answer_a, answer_b, rubric FROM tasks")}
    by_name = {r.name: r for r in rubrics.values()}
    done = {_unit_key(j["answer_a"], j["answer_b"], j["rubric"]) for j in db.judged()}
    # lay raters' units are left to them: the judge answers the physicians' rubrics
    todo = sorted((u for u in units if u[2] in by_name and _unit_key(*u) not in done), key=str)
    seen_pairs: set = set()
    answered: list[int] = []
    errors: list[str] = []

    async def one(a: int, b: int | None, rubric_name: str) -> None:
        rubric = by_name[rubric_name]
        axes = _axes(rubric)
        question = answers[a]["question"]
        if b is None:
            prompt = render_axes_prompt(judge_rubric(rubric), question, answers[a]["text"])
            got = await scorer.ask(prompt, lambda t: parse_axes_reply(t, axes))
            choices = {k: str(v) for k, v in (got.parsed or {}).items()}
        else:
            prompt = render_pairwise_prompt(axes, question, answers[a]["text"], answers[b]["text"])
            got = await scorer.ask(prompt, lambda t: parse_pairwise_reply(t, axes))
            choices = {k: {"1": "A", "2": "B", TIE: "tie"}[v] for k, v in (got.parsed or {}).items()}
        if choices:
            db.save_judged((a, b) if b is not None else (a,), rubric_name, choices)
            answered.append(1)
        else:
            errors.append(got.error or "no valid reply")

    jobs = []
    for a, b, name in todo:
        key = _unit_key(a, b, name)
        if key in seen_pairs:
            continue  # a pair shown to two raters in both orders is judged once
        seen_pairs.add(key)
        jobs.append(one(a, b, name))
    async with scorer:
        await asyncio.gather(*jobs)
    return JudgePass(asked=len(jobs), answered=len(answered), errors=errors)


def _unit_key(a: int, b: int | None, rubric: str) -> tuple:
    """A unit whatever the order its answers were shown in."""
    return (tuple(sorted((a, b))) if b is not None else (a,), rubric)


def judge_rubric(rubric: StudyRubric) -> Rubric:
    """The judge's rubric with the study's axes (questions and choices as the raters saw them)."""
    return parse_rubric({"name": rubric.name, "axes": [{"name": a.name, "question": a.question,
                                                        "scale": list(a.choices)} for a in rubric.axes]})


def judge_study(db: StudyDB, scorer: RubricJudgeScorer, rubrics: Mapping[str, StudyRubric]) -> JudgePass:
    """Judge every unit of the study not judged yet (physician and pairwise rubrics): how many were asked,
    how many got a valid reply (the others are asked again by the next call), and why the others did not."""
    return asyncio.run(_judge_units(db, scorer, rubrics))
