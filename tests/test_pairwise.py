"""Pairwise ranking: combining the two orders, and the per-axis rates."""

from __future__ import annotations

import pytest

from evalkit.scoring.pairwise import combine, in_terms_of_a, summarize


def test_verdicts_read_back_in_terms_of_a():
    assert in_terms_of_a("1", a_first=True) == "A" and in_terms_of_a("2", a_first=True) == "B"
    assert in_terms_of_a("1", a_first=False) == "B" and in_terms_of_a("2", a_first=False) == "A"
    assert in_terms_of_a("tie", a_first=False) == "tie"


def test_both_orders_agreeing_decide_and_disagreement_is_a_tie():
    assert combine("1", "2") == ("A", False)  # A first won, then B first lost: A both times
    assert combine("2", "1") == ("B", False)
    assert combine("tie", "tie") == ("tie", False)
    assert combine("1", "1") == ("tie", True)  # position bias: the first answer always wins
    assert combine("1", "tie") == ("tie", True)


def test_summary_rates_and_intervals():
    outcomes = [("x", "A", False)] * 6 + [("x", "tie", True)] * 2 + [("x", "B", False)] * 2 + [("x", None, False)]
    s = summarize(outcomes, ["x"])["x"]
    assert (s.n, s.wins, s.ties, s.losses, s.disagreements, s.errors) == (10, 6, 2, 2, 2, 1)
    d = s.to_dict()
    assert d["win"] == pytest.approx(0.6) and d["tie"] == pytest.approx(0.2) and d["loss"] == pytest.approx(0.2)
    assert d["win_ci"][0] < 0.6 < d["win_ci"][1] and d["disagreement_rate"] == pytest.approx(0.2)
