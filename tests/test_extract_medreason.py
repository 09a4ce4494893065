"""The MedReason/HuatuoGPT-o1 compatibility extractor and its reporting rule."""

from __future__ import annotations

import pytest

from evalkit.benchmarks.medreason.extract import (
    CompatSummary,
    MedReasonMatch,
    extract_medreason,
    final_part,
    is_empty_generation,
    match_choice,
    medreason_report,
)
from evalkit.core.records import Extraction

MQ = {"A": "aspirin", "B": "clopidogrel", "C": "warfarin", "D": "heparin"}


def test_final_response_then_final_answer_then_think_split():
    assert final_part("x ## Final Response\n\nA ## Final Response\n\nB") == "B"
    assert final_part("x ## Final Answer\n\nC") == "C"
    assert final_part("## Final Response\n\nR ## Final Answer\n\nF") == "R ## Final Answer\n\nF"
    assert final_part("reasoning</think>D") == "D"
    assert final_part("## Final Response\nno blank line") == "## Final Response\nno blank line"


def test_strict_answer_is_first_and_last():
    m = match_choice("the answer is A, no wait, the answer is C", MQ)
    assert m == MedReasonMatch("A", "C", 1, "answer_is")


def test_strict_pattern_is_case_sensitive_and_takes_any_letter_a_to_n():
    assert match_choice("the answer is K", MQ)[:3] == ("K", "K", 1)
    assert match_choice("The answer isB", MQ)[:2] == ("B", "B")
    # "Answer is" is not the strict pattern; the loose one still finds "is B".
    assert match_choice("Answer is B", MQ) == MedReasonMatch("B", "B", 1, "letter")


def test_loose_letter_pattern():
    assert match_choice("A patient with chest pain. Treat with (C).", MQ)[:2] == ("C", "C")
    assert match_choice("选D。", MQ)[:2] == ("D", "D")
    # Letters beyond the number of options are not loose matches.
    assert match_choice("go with E.", MQ).kind != 1
    # Each match consumes the character after it, so "A,B" yields only A.
    assert match_choice("A,B", MQ)[:2] == ("A", "A")
    # "this C" counts: "is " inside a word is a valid prefix.
    assert match_choice("this C", MQ)[:2] == ("C", "C")


def test_option_text_position_rule_with_its_first_match_quirk():
    # last: the option whose last occurrence is latest (aspirin).
    # first: the option whose FIRST occurrence is latest (clopidogrel), as the original computes it.
    m = match_choice("aspirin first, then clopidogrel, then aspirin again", MQ)
    assert m == MedReasonMatch("B", "A", 2, "option_text")


def test_similarity_fallback_always_answers():
    m = match_choice("i really cannot say", MQ)
    assert m.kind == 3 and m.first == m.last and m.first in MQ
    # Ties go to the later option.
    assert match_choice("qqq", {"A": "zzz", "B": "zzz"})[:2] == ("B", "B")
    # It prefers the textually closest option.
    assert match_choice("warfarn", MQ).last == "C"


def test_extract_medreason_returns_the_last_match():
    assert extract_medreason("the answer is A ... the answer is D", MQ) == Extraction("D", "medreason_answer_is")
    assert extract_medreason("", MQ) == Extraction(None, None)
    assert extract_medreason(" ", MQ) == Extraction(None, None)
    assert extract_medreason("I refuse.", MQ).letter in MQ  # the guess evalkit's default never makes


def test_empty_generation_matches_the_original_post_processing():
    assert is_empty_generation("")
    assert is_empty_generation(" ")
    assert is_empty_generation("</s>")
    assert not is_empty_generation("  ")
    assert not is_empty_generation("\n")


def _sample(dataset, output, gold):
    return {"dataset": dataset, "output": output, "options": MQ, "answer_idx": gold}


def test_report_takes_the_higher_of_first_and_last_and_drops_empty():
    samples = [
        _sample("medqa", "the answer is A ... the answer is B", "A"),  # first right
        _sample("medqa", "the answer is A ... the answer is B", "A"),  # first right
        _sample("medqa", "the answer is C ... the answer is D", "D"),  # last right
        _sample("medqa", "", "A"),  # dropped
        _sample("pubmedqa", "the answer is B", "B"),
        {**_sample("pubmedqa", "", "B"), "error": "timeout"},  # dropped
    ]
    report = medreason_report(samples)
    assert list(report) == ["medqa", "pubmedqa"]
    medqa = report["medqa"]
    assert (medqa.n, medqa.first_correct, medqa.last_correct, medqa.dropped_empty) == (3, 2, 1, 1)
    assert medqa.accuracy == pytest.approx(2 / 3)
    assert report["pubmedqa"].n == 1 and report["pubmedqa"].accuracy == 1.0
    assert report["pubmedqa"].dropped_empty == 1


def test_compat_summary_dict():
    d = CompatSummary(n=4, first_correct=1, last_correct=3).to_dict()
    assert d["accuracy"] == 0.75 and d["first_accuracy"] == 0.25
    assert CompatSummary().accuracy == 0.0
