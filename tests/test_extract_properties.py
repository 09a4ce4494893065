"""Property tests: extraction never raises and only ever returns an option's letter (or None)."""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from evalkit.scoring.extract import METHODS, extract_choice
from evalkit.benchmarks.medreason.extract import extract_medreason, match_choice

# Fragments that steer random text into every step of the cascade.
FRAGMENTS = [
    "the answer is ", "Answer: ", "Final answer: ", "**", "(", ")", ".", ", ", " or ", " and ", "\n",
    '{"answer": "', '"answer_choice": "', '"}', "\\boxed{", "}", "<answer>", "</answer>", "<think>", "</think>",
    "## Final Response\n\n", "## Final Answer\n\n", "I choose option ", "Option ", " is correct", "答案是", "选",
    "Therefore, ", "yes", "no", "maybe", "Yes, ", "a ", "A", "B", "C", "D", "E", "J", "K", "b", "i ", "I ",
    "Clopidogrel", "B cells", "--", "–", "é", "İ", "ß", "\u00a0", "\t",
]
text_st = st.one_of(
    st.text(max_size=300),
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=8)), max_size=40).map("".join),
)
option_text_st = st.one_of(
    st.sampled_from(["yes", "no", "maybe", "Clopidogrel", "B cells", "Vitamin A", "All of the above", ""]),
    st.text(alphabet=string.ascii_letters + " .-", max_size=20),
)


@st.composite
def options_st(draw):
    n = draw(st.integers(min_value=1, max_value=10))
    return {letter: draw(option_text_st) for letter in "ABCDEFGHIJ"[:n]}


@settings(max_examples=400, deadline=None)
@given(text=text_st, options=options_st())
def test_default_extractor_never_raises_and_returns_an_option_or_none(text, options):
    letter, method = extract_choice(text, options)
    if letter is None:
        assert method is None
    else:
        assert letter in options
        assert method in METHODS


@settings(max_examples=300, deadline=None)
@given(text=text_st, options=options_st())
def test_compat_extractor_never_raises_and_always_answers_nonempty_text(text, options):
    letter, method = extract_medreason(text, options)
    if text.replace("</s>", "").removeprefix(" "):
        # The original always produces a letter: an option key or one of A-N.
        assert letter is not None and (letter in options or letter in "ABCDEFGHIJKLMN")
        assert method.startswith("medreason_")
    m = match_choice(text, options)
    assert m.kind in (1, 2, 3)
