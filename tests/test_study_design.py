"""Study assignment: K distinct raters per unit, balanced loads, shuffled order, randomised sides."""

from collections import Counter

import pytest

from evalkit.web.study.design import DesignError, Unit, assign


def _units(n, pool="physician", pair=False):
    return [Unit(answers=(2 * i, 2 * i + 1) if pair else (i,), pool=pool, rubric="r") for i in range(n)]


def test_each_unit_gets_k_distinct_raters_and_loads_balance():
    units = _units(20)
    tasks = assign(units, {"physician": [1, 2, 3, 4, 5, 6, 7]}, k=3, seed=1)
    per_unit = {}
    for t in tasks:
        per_unit.setdefault(t.unit, []).append(t.rater)
    assert set(per_unit) == set(units)
    assert all(len(rs) == 3 and len(set(rs)) == 3 for rs in per_unit.values())
    loads = Counter(t.rater for t in tasks)
    assert sum(loads.values()) == 60 and max(loads.values()) - min(loads.values()) <= 1
    # positions 0..n-1 per rater, each once
    for r, n in loads.items():
        assert sorted(t.position for t in tasks if t.rater == r) == list(range(n))


def test_deterministic_for_a_seed_and_orders_differ_between_raters():
    units = _units(30)
    a = assign(units, {"physician": [1, 2, 3]}, k=3, seed=5)
    assert a == assign(units, {"physician": [1, 2, 3]}, k=3, seed=5)
    assert a != assign(units, {"physician": [1, 2, 3]}, k=3, seed=6)
    orders = [[t.unit for t in a if t.rater == r] for r in (1, 2, 3)]
    assert orders[0] != orders[1] and orders[1] != orders[2]


def test_pair_sides_are_randomised():
    tasks = assign(_units(200, pair=True), {"physician": [1]}, k=1, seed=0)
    swapped = sum(t.answers != t.unit.answers for t in tasks)
    assert 70 < swapped < 130
    assert all(sorted(t.answers) == sorted(t.unit.answers) for t in tasks)


def test_pools_stay_apart_and_small_pool_refused():
    units = _units(4) + _units(4, pool="lay")
    tasks = assign(units, {"physician": [1, 2], "lay": [3, 4]}, k=2, seed=0)
    assert all((t.rater in (1, 2)) == (t.unit.pool == "physician") for t in tasks)
    with pytest.raises(DesignError, match="lay pool has 1"):
        assign(units, {"physician": [1, 2], "lay": [3]}, k=2, seed=0)
