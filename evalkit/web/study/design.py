"""Who rates what (pure): each unit (an answer, or a pair of answers to one question) goes to K
distinct raters of its pool, drawn at random with balanced loads; each rater's order is shuffled,
and each pair's left/right is drawn at random."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Mapping, Sequence
from evalkit.core.errors import InputError


@dataclass(frozen=True)
class Unit:
    """What one rating is of: ``answers`` (one answer id, or two for a pair), the rater ``pool``
    that rates it and the ``rubric`` it is rated with."""

    answers: tuple[int, ...]
    pool: str
    rubric: str

    @property
    def pairwise(self) -> bool:
        return len(self.answers) == 2


@dataclass(frozen=True)
class Task:
    """One unit on one rater's list: ``answers`` as shown (left first for a pair), at ``position``."""

    rater: int
    position: int
    unit: Unit
    answers: tuple[int, ...]


class DesignError(InputError):
    """The study cannot be assigned as asked (the message says why)."""


def assign(units: Sequence[Unit], raters: Mapping[str, Sequence[int]], k: int, seed: int) -> list[Task]:
    """Each unit to K distinct raters of its pool: units in a random order, each to the K raters of its
    pool with the fewest tasks so far (ties drawn at random), so loads differ by at most one within a
    pool; then each rater's tasks shuffled and each pair's sides drawn. Deterministic for a SEED."""
    if k < 1:
        raise DesignError(f"raters per answer must be at least 1, got {k}")
    rng = random.Random(seed)
    load: dict[int, int] = {}
    for pool in sorted({u.pool for u in units}):
        members = list(raters.get(pool, ()))
        if len(members) < k:
            raise DesignError(f"the {pool} pool has {len(members)} rater(s); each answer needs {k} distinct raters")
        load.update({r: 0 for r in members})
    order = list(units)
    rng.shuffle(order)
    lists: dict[int, list[Unit]] = {r: [] for r in load}
    for unit in order:
        members = list(raters[unit.pool])
        rng.shuffle(members)
        chosen = sorted(members, key=lambda r: load[r])[:k]  # stable sort: ties keep the random order
        for r in chosen:
            load[r] += 1
            lists[r].append(unit)
    tasks = []
    for r in sorted(lists):
        mine = lists[r]
        rng.shuffle(mine)
        for pos, unit in enumerate(mine):
            shown = tuple(reversed(unit.answers)) if unit.pairwise and rng.random() < 0.5 else unit.answers
            tasks.append(Task(rater=r, position=pos, unit=unit, answers=shown))
    return tasks
