"""Thinking in generations: the pre-filled <think> shape, truncation inside thinking, reasoning tokens."""

from __future__ import annotations

import json

import pytest

from evalkit.scoring.extract import extract_choice
from evalkit.benchmarks.medreason.extract import extract_medreason
from evalkit.results.reasoning import (reasoning_stats, shows_prefilled_shape, split_thinking, token_split,
                               truncated_in_thinking)
from evalkit.results.report import build_report, report_json
from tests.runfactory import make_sample, write_run

OPTIONS = {"A": "aspirin", "B": "heparin", "C": "warfarin", "D": "alteplase"}


# --- the pre-filled shape: "...</think>answer" with no opening tag -------------------------------

def test_split_reads_the_answer_after_a_lone_closing_tag():
    text = "The patient has AF, so the answer is B at first glance. But wait.</think>The answer is C."
    assert split_thinking(text) == ("The patient has AF, so the answer is B at first glance. But wait.",
                                    "The answer is C.")


def test_extraction_ignores_answers_stated_inside_prefilled_thinking():
    text = "Maybe the answer is B. Hmm, no: INR monitoring points elsewhere.</think>\n\nThe answer is C."
    assert extract_choice(text, OPTIONS).letter == "C"
    assert extract_medreason(text, OPTIONS).letter == "C"


def test_split_of_the_other_shapes():
    assert split_thinking("<think>hmm</think> B") == ("hmm", " B")
    assert split_thinking("<think>still thinking") == ("still thinking", None)
    assert split_thinking("The answer is A.") == ("", "The answer is A.")
    # Under a pre-filling template an untagged generation is all thinking.
    assert split_thinking("still thinking", prefilled=True) == ("still thinking", None)


def test_prefilled_shape_is_seen_only_when_a_block_closes_unopened():
    assert shows_prefilled_shape(["The answer is A.", "hmm</think>B"])
    assert not shows_prefilled_shape(["<think>hmm</think>B", "The answer is A.", ""])


@pytest.mark.parametrize("text, finish, prefilled, expected", [
    ("<think>a long chain that never", "length", False, True),          # opened, cut off
    ("a long chain that never", "length", True, True),                  # pre-filled template, cut off
    ("<think>all of it went to reasoning</think>", "length", False, True),  # reasoning parser, no content
    ("<think>done</think>The answer is", "length", False, False),       # cut off in the answer
    ("a long answer without any thinking", "length", False, False),     # an ordinary truncation
    ("<think>a long chain", "stop", False, False),                      # not cut off by the limit
])
def test_truncated_inside_thinking(text, finish, prefilled, expected):
    assert truncated_in_thinking(text, finish, prefilled=prefilled) is expected


# --- tokens -----------------------------------------------------------------------------------------

def test_token_split_prefers_the_servers_count():
    assert token_split("<think>abc</think>x", {"completion_tokens": 100, "reasoning_tokens": 70}) == (70, 30, "server")


def test_token_split_estimates_from_characters_without_one():
    # 30 characters of thinking, 10 of answer: three quarters of 40 tokens.
    text = "<think>" + "t" * 30 + "</think>" + "a" * 10
    assert token_split(text, {"completion_tokens": 40}) == (30, 10, "estimated")
    assert token_split("plain", {"completion_tokens": 7}) == (0, 7, "none")
    assert token_split("plain", {}) is None


def thinking_sample(item_id: str, reasoning: int, answer: int, *, correct=True, truncated=False, output=None):
    s = make_sample(item_id, correct=correct, truncated=truncated,
                    output=output if output is not None else "<think>why</think>The answer is A.")
    s["usage"] = {"completion_tokens": reasoning + answer, "reasoning_tokens": reasoning}
    return s


def test_reasoning_stats_per_dataset():
    samples = [thinking_sample("a", 100, 10), thinking_sample("b", 200, 20), thinking_sample("c", 300, 30),
               thinking_sample("d", 400, 40),
               thinking_sample("cut", 1000, 0, correct=None, truncated=True, output="<think>and then"),
               make_sample("plain", correct=None), make_sample("err", error="HTTP 500")]
    st = reasoning_stats(samples)
    assert st["reasoning_tokens_source"] == "server"  # "plain" has no thinking: 0, which needs no estimate
    assert st["truncated_in_thinking"] == 1
    assert st["unparsed_other"] == 1  # "plain": unparsed, but not cut off inside its thinking
    reasoning = [100, 200, 300, 400, 1000, 0]
    assert st["reasoning_tokens_mean"] == pytest.approx(sum(reasoning) / 6)
    assert st["reasoning_tokens_p50"] == pytest.approx(250)
    assert st["reasoning_tokens_p95"] == pytest.approx(850)  # numpy's linear interpolation: 400 + 0.75 * 600
    assert st["answer_tokens_mean"] == pytest.approx((10 + 20 + 30 + 40 + 0 + 100) / 6)
    assert st["thinking"] == pytest.approx(5 / 6)


def test_prefilled_run_counts_untagged_truncations_as_inside_thinking(tmp_path):
    samples = [make_sample("ok", correct=True, output="Hmm, B? No.</think>The answer is A."),
               make_sample("cut", correct=None, truncated=True, output="Let me weigh each option in turn and"),
               make_sample("lost", correct=None, output="I cannot tell.</think>No idea.")]
    run = write_run(tmp_path, "r1", samples)
    row = json.loads(report_json(build_report([run])))["rows"][0]
    assert row["prefilled_think"] is True
    assert row["truncated_in_thinking"] == 1 and row["unparsed_other"] == 1 and row["unparsed"] == 2
    assert row["reasoning_tokens_source"] == "estimated"
    assert row["reasoning_tokens_p50"] is not None and row["answer_tokens_p95"] is not None
