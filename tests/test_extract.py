"""The default extractor: the labelled set, each cascade step, and the registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.scoring.extract import (
    EXTRACTORS,
    METHODS,
    answer_region,
    extract_choice,
    final_section,
    get_extractor,
    strip_reasoning,
)
from evalkit.benchmarks.medreason.extract import extract_medreason
from evalkit.core.records import Extraction

CASES_FILE = Path(__file__).parent / "data" / "extraction_cases.jsonl"
CASES = [json.loads(line) for line in CASES_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]

MQ = {"A": "Aspirin", "B": "Clopidogrel", "C": "Warfarin", "D": "Heparin"}
YNM = {"A": "yes", "B": "no", "C": "maybe"}
TEN = {letter: f"Option text {letter.lower()}{i}" for i, letter in enumerate("ABCDEFGHIJ")}


def test_labelled_set_is_large_and_varied():
    assert len(CASES) >= 150
    tags = {c["tag"] for c in CASES}
    for needed in ("refusal", "truncated", "discussion", "ten_options", "yes_no_maybe", "think", "final_response", "json", "boxed"):
        assert needed in tags
    assert sum(c["expected"] is None for c in CASES) >= 40


def test_labelled_set_agreement_at_least_98_percent_with_no_guesses():
    wrong, guesses = [], []
    for case in CASES:
        got = extract_choice(case["text"], case["options"])
        if got.letter != case["expected"]:
            wrong.append((case["tag"], case["text"][-80:], case["expected"], got))
            if case["expected"] is None:
                guesses.append(wrong[-1])
    agreement = 1 - len(wrong) / len(CASES)
    assert not guesses, f"letters given where a careful reader sees no answer: {guesses}"
    assert agreement >= 0.98, f"agreement {agreement:.3f}; disagreements: {wrong}"


@pytest.mark.parametrize("case", CASES, ids=[f"{i}-{c['tag']}" for i, c in enumerate(CASES)])
def test_labelled_case_letter_is_an_option_and_method_is_named(case):
    got = extract_choice(case["text"], case["options"])
    assert (got.letter is None) == (got.method is None)
    if got.letter is not None:
        assert got.letter in case["options"]
        assert got.method in METHODS


@pytest.mark.parametrize(
    "text, letter, method",
    [
        ("Therefore, among A through D, the answer is B.", "B", "answer_is"),
        ("The correct answer is **(C) Warfarin**.", "C", "answer_is"),
        ("Answer: d", "D", "answer_label"),
        ("Final answer: A", "A", "final_answer"),
        ('{"answer": "C"}', "C", "json"),
        ("$\\boxed{\\text{B}}$", "B", "boxed"),
        ("<answer>D</answer>", "D", "answer_tag"),
        ("I choose option A.", "A", "choose"),
        ("Option C is correct.", "C", "option_correct"),
        ("This matches the findings, which corresponds to option D.", "D", "option_ref"),
        ("答案是B", "B", "zh_answer"),
        ("(C)", "C", "bare_option"),
        ("B. Clopidogrel", "B", "bare_option"),
        ("Warfarin.", "C", "option_text"),
        ("The answer is heparin.", "D", "option_text"),
    ],
)
def test_each_step_names_itself(text, letter, method):
    assert extract_choice(text, MQ) == Extraction(letter, method)


def test_last_explicit_statement_wins():
    text = "At first the answer is A. Then I reconsidered: the answer is C."
    assert extract_choice(text, MQ).letter == "C"
    text = '{"thinking": "the answer is B", "answer_choice": "D"}'
    assert extract_choice(text, MQ) == Extraction("D", "json")


def test_statement_early_in_a_long_text_is_found():
    filler = "The platelet count is normal and the INR is 1.1. " * 400
    assert extract_choice("The answer is D.\n\n" + filler, MQ) == Extraction("D", "answer_is")
    assert extract_choice(filler + "The answer is B. " + filler[:4000], MQ).letter == "B"


@pytest.mark.parametrize("statement, expected", [
    ("I'll go with C", Extraction("C", "choose")),       # a keyword with a space in it
    ("the answer is B", Extraction("B", "answer_is")),
    ("$\\boxed{D}$", Extraction("D", "boxed")),
])
def test_statement_found_wherever_the_search_windows_cut(statement, expected):
    # The text is searched backwards in growing windows that start at a space; slide the
    # statement across the first windows' edges (512, 2,560 characters from the end) one
    # character at a time: it is found at every offset, and an earlier statement never wins.
    for tail in range(470, 530):
        text = "Earlier the answer is A. " + statement + ". " + "w" * (tail % 7) + " x" * (tail // 2)
        assert extract_choice(text, MQ) == expected, tail
    for tail in range(2500, 2600, 3):
        text = "Earlier the answer is A. " + statement + ". " + " y" * (tail // 2)
        assert extract_choice(text, MQ) == expected, tail


def test_explicit_letter_beats_a_trailing_bare_line():
    assert extract_choice("The answer is B.\n\nC", MQ).letter == "B"


def test_article_and_pronoun_are_not_answers():
    assert extract_choice("The answer is a drug that blocks P2Y12.", MQ).letter is None
    assert extract_choice("Answer: I think it is unclear.", TEN).letter is None
    assert extract_choice("The answer is a.", MQ).letter == "A"


def test_letters_outside_the_options_are_ignored():
    assert extract_choice("The answer is E.", MQ).letter is None
    assert extract_choice("The answer is J.", TEN) == Extraction("J", "answer_is")


def test_hedges_between_options_are_unparsed():
    for text in ("The answer is A or C.", "The answer is B and D.", "Answer: A/B", '{"answer_choice": "A, C"}'):
        assert extract_choice(text, MQ).letter is None, text


def test_json_value_with_its_own_option_text_is_one_answer():
    options = {"A": "Vitamin A and D", "B": "Vitamin C", "C": "Vitamin K", "D": "Vitamin E"}
    assert extract_choice('{"answer_choice": "A. Vitamin A and D"}', options) == Extraction("A", "json")
    assert extract_choice('{"answer_choice": "A. Vitamin A, D. Vitamin E"}', options).letter is None


def test_yes_no_maybe_leading_and_concluding():
    assert extract_choice("Yes, the trial met its endpoint.", YNM) == Extraction("A", "yes_no_maybe")
    assert extract_choice("No significant difference was seen.", YNM).letter is None
    assert extract_choice("The effect was small. Therefore, maybe.", YNM) == Extraction("C", "yes_no_maybe")
    assert extract_choice("Yes, at first. But after adjustment the answer is no.", YNM).letter == "B"


def test_no_similarity_guess():
    for text in ("I'm sorry, I cannot help with that.", "Clopidogrl", "Aspirn and warfrin", "The patient presents with"):
        assert extract_choice(text, MQ) == Extraction(None, None), text


def test_strip_reasoning():
    assert strip_reasoning("<think>a</think>B") == "B"
    assert strip_reasoning("reasoning</think>B") == "B"
    assert strip_reasoning("<think>still thinking") is None
    assert strip_reasoning("<think>x</think> y <think>z") is None
    assert strip_reasoning("no tags") == "no tags"


def test_final_section():
    text = "## Thinking\n\nthe answer is A\n\n## Final Response\n\nThe answer is B"
    assert final_section(text).strip() == "The answer is B"
    assert final_section("## Final Answer: C") == "C"
    assert final_section("**Final Answer:** C") == "**Final Answer:** C"  # not a heading
    assert answer_region("<think>x</think>\n\n## Final Answer\n\n") is None
    assert extract_choice(text, MQ).letter == "B"


def test_empty_and_missing_input():
    assert extract_choice("", MQ) == Extraction(None, None)
    assert extract_choice("The answer is A", {}) == Extraction(None, None)


def test_registry():
    assert get_extractor("evalkit") is extract_choice
    assert get_extractor("medreason") is extract_medreason
    assert set(EXTRACTORS) == {"evalkit", "medreason"}
    with pytest.raises(ValueError, match="unknown extractor 'nope'.*evalkit"):
        get_extractor("nope")
