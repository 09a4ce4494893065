"""The rules of issue 34: conclusion words, options named by their text, Japanese answer words,
and a last verdict that commits to no single option; each with the look-alikes it must leave.

Also the hand-labelled set of real generations (tests/data/extraction_real_labelled.jsonl,
made with scripts/label_extraction_cases.py): no letter is ever given where the output commits
to no option, and recall stays at least the measured figure.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.scoring.extract import METHODS, extract_choice
from evalkit.core.records import Extraction
from evalkit.run.summary import rescore_sample

REAL_FILE = Path(__file__).parent / "data" / "extraction_real_labelled.jsonl"
REAL = [json.loads(line) for line in REAL_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
# Measured on the set (scripts/extraction_agreement.py): 178 of 182 committed cases.
RECALL_MEASURED = 178 / 182

DX = {"A": "Metoprolol", "B": "Sarcoidosis", "C": "Lymphoma", "D": "Amlodipine", "E": "Tuberculosis"}
LONG = {
    "A": "Tell the patient that the information is confidential and cannot be shared",
    "B": "Inform the patient's employer about the diagnosis",
    "C": "Notify the local health department within 24 hours",
    "D": "Ask the patient to inform the employer himself",
}
JA = {"a": "糖尿病", "b": "Fabry病", "c": "Sjögren症候群", "d": "甲状腺機能低下症", "e": "自家感作性皮膚炎"}
NEW_METHODS = ("conclusion_letter", "option_label", "ja_answer", "option_named", "option_restated")
WALK = "A is unlikely given the normal heart rate. B could fit the hilar nodes, but the ACE level is normal. "


def test_new_rules_are_named_methods():
    assert set(NEW_METHODS) <= set(METHODS)


@pytest.mark.parametrize("text, letter", [
    ("Hence (B)", "B"),
    ("Thus, B.", "B"),
    ("Final: E", "E"),
    ("⇒ D", "D"),
    ("Weighing the findings => C", "C"),
    ("So: C", "C"),
    ("Hence B. Sarcoidosis", "B"),
    ("Hence (B). The hilar nodes and the rash point there.", "B"),
    ("Therefore, **C**", "C"),
    (WALK + "Hence (B)", "B"),
    ("At first the answer is A. On reflection:\nThus, C.", "C"),  # the last statement wins
])
def test_conclusion_letter(text, letter):
    assert extract_choice(text, DX) == Extraction(letter, "conclusion_letter")


@pytest.mark.parametrize("text", [
    "So A is unlikely.",                       # an option named to reject it
    "Hence A and C.",                          # several options
    "Thus, A or C.",                           # a hedge
    "Hence not B.",
    "Thus B. pertussis causes the cough.",     # a letter that starts a word, not an answer
    "So, A, B and C are all possible.",
    "So B. Sarcoidosis and lymphoma both fit.",
    "I cannot decide between the options. Hence no answer.",  # a refusal
    WALK + "So the choice remains open.",      # a walk-through that stops
])
def test_conclusion_letter_look_alikes_stay_unparsed(text):
    assert extract_choice(text, DX) == Extraction(None, None)


@pytest.mark.parametrize("text, letter", [
    ("Correct option — C", "C"),
    ("Correct option: C", "C"),
    ("Best choice: (C)", "C"),
    ("Correct answer – D.", "D"),
    ("Answer - C", "C"),
    ("Final choice — E) Tuberculosis", "E"),
])
def test_option_label(text, letter):
    assert extract_choice(text, DX) == Extraction(letter, "option_label")


@pytest.mark.parametrize("text", [
    "Correct option — C or D",
    "Correct option: C is unlikely here.",
    "Option — C was considered and rejected.",   # no qualifier: a heading, not a verdict
    "Best choice: A, C",
])
def test_option_label_look_alikes_stay_unparsed(text):
    assert extract_choice(text, DX).letter is None


@pytest.mark.parametrize("text, letter", [
    ("以上より、答え: b", "B"),
    ("正解は c です。", "C"),
    ("解答：ｃ", "C"),
    ("よって、d", "D"),
    ("よって答えは e。", "E"),
    ("答えはaです", "A"),
])
def test_ja_answer(text, letter):
    assert extract_choice(text, JA) == Extraction(letter, "ja_answer")


@pytest.mark.parametrize("text", [
    "答えは a と c です。",      # two choices
    "正解は a, c",
    "よって a または b",         # a hedge
    "答えは分からない。",         # a refusal
    "よって糖尿病は否定的である。",  # no letter
])
def test_ja_answer_look_alikes_stay_unparsed(text):
    assert extract_choice(text, JA).letter is None


@pytest.mark.parametrize("text, letter", [
    ("Start metoprolol.", "A"),
    ("This presentation is most consistent with sarcoidosis.", "B"),
    ("The most likely diagnosis is sarcoidosis.", "B"),
    (WALK + "This presentation is most consistent with sarcoidosis.", "B"),
    ("Lymphoma is less likely. The most likely diagnosis is sarcoidosis.", "B"),
    ("Given the bilateral hilar adenopathy, tuberculosis is the best explanation here.", "E"),
])
def test_option_named(text, letter):
    assert extract_choice(text, DX) == Extraction(letter, "option_named")


@pytest.mark.parametrize("text", [
    WALK + "C could also fit.",                                             # walks through options and stops
    "This presentation is most consistent with sarcoidosis or lymphoma.",    # a hedge between two
    "The most likely diagnosis is sarcoidosis, but lymphoma cannot be excluded.",
    "This is not consistent with sarcoidosis.",                              # rejected
    "Sarcoidosis is unlikely given the normal ACE level.",
    "The most likely diagnosis is sarcoidosis. Lymphoma remains possible.",   # weighed again after
    "Which finding is most consistent with sarcoidosis?",                     # the question restated
    "I cannot determine the most likely diagnosis from the information given.",  # a refusal
    "The findings could be consistent with sarcoidosis.",
    "The most likely diagnosis is sarcoidosis and lymphoma.",                # several options
    "The answer is thus sarcoidosis and lymphoma.\n\nTherefore, among A through E, the answer is B and C.",
    "Start metoprolol or amlodipine.",
])
def test_option_named_look_alikes_stay_unparsed(text):
    assert extract_choice(text, DX) == Extraction(None, None)


def test_option_text_inside_a_sentence_needs_a_nameable_option():
    # Options whose text is a bare letter are not found by their text: "a" is an article.
    letters = {"A": "A", "B": "B", "C": "C", "D": "D"}
    assert extract_choice("Therefore, it's impossible to give a definite answer.", letters).letter is None


@pytest.mark.parametrize("text, letter", [
    ("The physician should tell the patient that the information is confidential and cannot be shared.", "A"),
    ("The best response is to notify the health department within 24 hours.", "C"),
    ("Notify local health department within 24 hours", "C"),
])
def test_option_restated(text, letter):
    assert extract_choice(text, LONG) == Extraction(letter, "option_restated")


@pytest.mark.parametrize("text", [
    "Do not notify the local health department within 24 hours.",
    "Either notify the local health department within 24 hours or ask the patient to inform the employer himself.",
    "The best response may be to notify the health department within 24 hours.",
    "B. Inform the patient's employer about the diagnosis: this breaks confidentiality.\n"
    "C. Notify the local health department within 24 hours",   # the last line of a walk-through
])
def test_option_restated_look_alikes_stay_unparsed(text):
    assert extract_choice(text, LONG).letter is None


@pytest.mark.parametrize("text", [
    'Option B is correct. {"answer_choice": "A, B"}',                    # a JSON verdict naming two
    "So option D is also correct.\n\nTherefore, among A through E, the answer is both A and D.",
    "The answer is B. On reflection, the answer is A or C.",
    "Clearly the answer is C. ... Final answer: None of the above",
    "The answer should be A. i) B. ii). {\"answer_choice\": \"Need the graph to decide\"}",
    "The answer is B. Therefore, among A through E, the answer is F.",  # a letter that is no option
    "Therefore, among A through E, the answer is Sarcoidosis and lymphoma.",
    "Therefore, among A through E, the answer is Sarcoidosis (C).",     # text and letter disagree
])
def test_a_last_verdict_naming_no_single_option_voids_earlier_statements(text):
    assert extract_choice(text, DX) == Extraction(None, None)


def test_a_verdict_with_its_reasons_or_a_combined_option_is_still_one_answer():
    assert extract_choice("The answer is B, because A and C are wrong.", DX) == Extraction("B", "answer_is")
    combined = {"A": "Upper buccal", "B": "Lower buccal", "C": "Upper lingual", "D": "Both AB"}
    assert extract_choice("among A through D, the answer is D, both A and B.", combined).letter == "D"
    with_none = dict(DX, E="None of the above")
    assert extract_choice("Therefore, the answer is None of the above.", with_none).letter == "E"
    assert extract_choice("The answer choice is: C. Lymphoma", DX) == Extraction("C", "answer_is")
    assert extract_choice("Therefore, the answer is most likely to be D.", DX) == Extraction("D", "answer_is")


@pytest.mark.parametrize("text, method", [
    ("Hence (B)", "conclusion_letter"), ("Correct option — B", "option_label"),
    ("This presentation is most consistent with sarcoidosis.", "option_named"),
])
def test_samples_record_the_new_rule(text, method):
    sample = {"id": "1", "dataset": "x", "options": DX, "answer_idx": "B", "output": text}
    scored = rescore_sample(sample)
    assert (scored["pred"], scored["method"], scored["correct"]) == ("B", method, True)


# --------------------------------------------------------------------------- the labelled set


def test_labelled_real_set_is_large_and_says_how_it_was_labelled():
    assert len(REAL) >= 300
    assert sum(c["expected"] is None for c in REAL) >= 60
    assert all(c["label_how"] and c["source"] in ("mirage", "lievin") for c in REAL)
    assert all(c["expected"] is None or c["expected"] in c["options"] for c in REAL)


def test_labelled_real_set_never_a_letter_where_nothing_is_committed():
    guesses = [(c["id"], extract_choice(c["text"], c["options"])) for c in REAL if c["expected"] is None]
    guesses = [g for g in guesses if g[1].letter is not None]
    assert not guesses, f"letters given where the output commits to no option: {guesses}"


def test_labelled_real_set_recall_and_precision():
    committed = [c for c in REAL if c["expected"] is not None]
    got = [extract_choice(c["text"], c["options"]) for c in committed]
    right = sum(g.letter == c["expected"] for g, c in zip(got, committed))
    wrong = [(c["id"], c["expected"], g) for g, c in zip(got, committed) if g.letter not in (None, c["expected"])]
    assert not wrong, f"wrong letters: {wrong}"
    assert right / len(committed) >= RECALL_MEASURED - 1e-9, f"recall {right}/{len(committed)}"
