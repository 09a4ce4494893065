"""A study's figures (pure): from the saved ratings, per pool and axis each system's share of each
choice (clustered bootstrap intervals), pairwise preference rates with a permutation test, and
agreement between raters (Randolph's kappa, Krippendorff's alpha); physicians and lay raters apart.
A rating marked "cannot rate" is counted, never used as a choice."""

from __future__ import annotations

from itertools import combinations
from typing import Any, Mapping, Sequence

from evalkit.config import DEFAULT_SEED
from evalkit.web.study.rubric import StudyAxis, StudyRubric
from evalkit.web.study.stats import DEFAULT_RESAMPLES, group, krippendorff_alpha, preference, randolph_kappa, shares

X, Y, TIE = "x", "y", "tie"  # a pairwise rating in a fixed order of the two systems (not the sides shown)


def pair_outcome(axis: StudyAxis, choice: str, left: str, right: str, x: str) -> str:
    """Which of the pair's systems a rating prefers, as X (the system named X), Y or TIE: the side chosen,
    turned round on an axis whose pick is the worse answer."""
    if choice == "tie":
        return TIE
    picked = left if choice == "A" else right
    preferred_is_picked = axis.picks == "better"
    return X if (picked == x) == preferred_is_picked else Y


def agreement(units: Sequence[Sequence[str]], n_categories: int) -> dict[str, Any]:
    """Randolph's kappa and Krippendorff's alpha of UNITS (each the values its raters gave)."""
    return {"randolph_kappa": randolph_kappa(units, n_categories), "krippendorff_alpha": krippendorff_alpha(units),
            "units": sum(1 for u in units if len(u) >= 2)}


def independent_section(rows: Sequence[Mapping[str, Any]], rubric: StudyRubric, systems: Sequence[str], *,
                        n_resamples: int, seed: int) -> list[dict[str, Any]]:
    """Per axis of RUBRIC: each system's shares of each choice and the raters' agreement."""
    by_answer = group(rows, "answer_a")
    out = []
    for axis in rubric.axes:
        per_system: dict[str, list[list[str]]] = {}
        units = []
        for answer_rows in by_answer.values():
            values = [r["choices"][axis.name] for r in answer_rows if axis.name in r["choices"]]
            per_system.setdefault(answer_rows[0]["system_a"], []).append(values)
            units.append(values)
        out.append({"axis": axis.name, "question": axis.question, "choices": list(axis.choices),
                    "systems": {s: cells for s in systems if (cells := [
                        x.to_dict() for x in shares(per_system.get(s, []), axis.choices, n_resamples=n_resamples,
                                                    seed=seed)])},
                    "agreement": agreement(units, len(axis.choices))})
    return out


def pairwise_section(rows: Sequence[Mapping[str, Any]], rubric: StudyRubric, systems: Sequence[str], *,
                     n_resamples: int, seed: int) -> list[dict[str, Any]]:
    """Per axis of RUBRIC and pair of systems (in the study's order): preference rates, intervals, p."""
    order = {s: i for i, s in enumerate(systems)}
    by_pair = group([dict(r, pair=tuple(sorted((r["answer_a"], r["answer_b"])))) for r in rows], "pair")
    out = []
    for axis in rubric.axes:
        clusters: dict[tuple[str, str], list[list[int]]] = {}
        units = []
        for pair_rows in by_pair.values():
            first = pair_rows[0]
            x, y = sorted((first["system_a"], first["system_b"]), key=lambda s: order.get(s, len(order)))
            outcomes = [pair_outcome(axis, r["choices"][axis.name], r["system_a"], r["system_b"], x)
                        for r in pair_rows if axis.name in r["choices"]]
            clusters.setdefault((x, y), []).append([{X: 1, Y: -1, TIE: 0}[o] for o in outcomes])
            units.append(outcomes)
        pairs = []
        for x, y in combinations(systems, 2):
            pref = preference(clusters.get((x, y), []), n_resamples=n_resamples, seed=seed)
            if pref is not None:
                pairs.append({"system_x": x, "system_y": y, **pref.to_dict()})
        out.append({"axis": axis.name, "question": axis.question, "picks": axis.picks, "pairs": pairs,
                    "agreement": agreement(units, 3)})
    return out


def build_report(name: str, rows: Sequence[Mapping[str, Any]], rubrics: Mapping[str, StudyRubric],
                 systems: Sequence[str], *, judge: Mapping[str, Any] | None = None,
                 n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """The study report as data (what every format renders). ROWS: the saved ratings (``StudyDB.rating_rows``);
    RUBRICS: role -> rubric; SYSTEMS: in the study's order."""
    usable = [r for r in rows if not r.get("cannot_rate")]
    sections = []
    for role, pool in (("physician", "physician"), ("lay", "lay")):
        rubric = rubrics.get(role)
        mine = [r for r in usable if r["rubric"] == getattr(rubric, "name", None) and r["pool"] == pool]
        if rubric is not None and mine:
            sections.append({"pool": pool, "rubric": rubric.name, "ratings": len(mine),
                             "axes": independent_section(mine, rubric, systems, n_resamples=n_resamples, seed=seed)})
    pair_rubric = rubrics.get("pairwise")
    pair_rows = [r for r in usable if pair_rubric is not None and r["rubric"] == pair_rubric.name]
    return {"study": name, "systems": list(systems),
            "counts": {"ratings": len(rows), "cannot_rate": len(rows) - len(usable),
                       "raters": len({r["rater"] for r in rows})},
            "independent": sections,
            "pairwise": {"rubric": pair_rubric.name, "ratings": len(pair_rows),
                         "axes": pairwise_section(pair_rows, pair_rubric, systems, n_resamples=n_resamples,
                                                  seed=seed)} if pair_rows else None,
            "judge": dict(judge) if judge else None,
            "settings": {"n_resamples": n_resamples, "seed": seed}}
