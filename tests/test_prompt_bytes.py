"""The prompt is built in one place (prompts.build_messages), and the bytes sent did not change."""

from __future__ import annotations

import json

from evalkit.serving.client import build_payload
from evalkit.config import GenerationParams
from evalkit.data.prompts import PromptTemplate, as_messages, build_messages, item_prompt, load_template
from evalkit.core.records import Item
from tests.request_bodies import GOLDEN, record_bodies

ITEM = Item(id="q1", dataset="d", question="Which one?", options={"A": "this", "B": "that"}, answer_idx="A")
CONVO = Item(id="c1", dataset="d", question="Two days.", messages=[
    {"role": "system", "content": "Data's own system."}, {"role": "user", "content": "Two days."}])


def test_every_request_body_is_what_it_was_before_the_prompt_moved(tmp_path):
    """Eight runs (strict, request controls, an abstract, conversations with and without a system
    prompt, few-shot, self-consistency, ensemble refinement) send the bodies recorded before."""
    golden = [json.loads(line) for line in GOLDEN.read_text(encoding="utf-8").splitlines()]
    now = record_bodies(tmp_path)
    assert len(now) == len(golden) == 30
    for old, new in zip(golden, now):
        assert (new["case"], new["body"]) == (old["case"], old["body"])


def test_build_messages_is_what_the_client_sends():
    template = PromptTemplate.from_text("Q: {question}\n{options}", name="t")
    messages = build_messages(ITEM, template, system_prompt="Be brief.")
    assert messages == [{"role": "system", "content": "Be brief."},
                        {"role": "user", "content": "Q: Which one?\nA. this\nB. that"}]
    body = build_payload("m", item_prompt(ITEM, template), GenerationParams(system_prompt="Be brief."))
    assert body["messages"] == messages


def test_a_conversation_is_sent_as_it_is_and_the_run_system_prompt_replaces_its_own():
    template = load_template("strict")
    assert build_messages(CONVO, template) == CONVO.messages
    assert build_messages(CONVO, template, system_prompt="Run's.") == [
        {"role": "system", "content": "Run's."}, {"role": "user", "content": "Two days."}]
    assert CONVO.messages[0]["content"] == "Data's own system."  # the item is not changed
    assert as_messages("text") == [{"role": "user", "content": "text"}]


def test_a_refinement_stage_shows_the_reasonings():
    template = PromptTemplate.from_text("{question}\n{reasonings}", name="refine")
    (message,) = build_messages(ITEM, template, reasonings="1. A\n2. B")
    assert message == {"role": "user", "content": "Which one?\n1. A\n2. B"}
