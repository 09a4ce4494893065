"""Prompt templates: exact MedReason texts, safe substitution, variants, few-shot."""

from __future__ import annotations

import hashlib

import pytest

from evalkit.data.datasets import load_dataset
from evalkit.data.prompts import (
    PromptTemplate,
    TemplateError,
    draw_exemplars,
    exemplars_path,
    format_options,
    list_templates,
    load_exemplars,
    load_template,
    render_prompt,
    template_summary,
)
from evalkit.core.records import Item
from evalkit.data.registry import bundled_dir

ITEM = Item("q1", "demo", "What is 2 + 2?", {"A": "3", "B": "4", "C": "5"}, "B")
PUBMED = Item("123", "pubmedqa", "Does it work?", {"A": "yes", "B": "no", "C": "maybe"}, "A",
              context="Background text.\nResults text.")


def test_strict_is_the_medreason_strict_prompt():
    assert render_prompt(load_template("strict"), ITEM) == (
        "Please answer the following multiple-choice questions. Please answer the following "
        "multiple-choice questions, ensuring your response concludes with the correct option in "
        "the format: 'The answer is A.'.\nWhat is 2 + 2?\nA. 3\nB. 4\nC. 5")


def test_free_is_the_medreason_free_prompt():
    assert render_prompt(load_template("free"), ITEM) == (
        "Please answer the following multiple-choice question:\nWhat is 2 + 2?\nA. 3\nB. 4\nC. 5")


def test_cot_ends_in_a_fixed_answer_line_instruction():
    text = render_prompt(load_template("cot"), ITEM)
    assert "step by step" in text and "'The answer is X.'" in text
    assert text.endswith("What is 2 + 2?\nA. 3\nB. 4\nC. 5")


def test_builtin_templates_are_all_there():
    names = set(list_templates())
    for base in ("free", "strict", "cot", "fewshot"):
        assert {base, f"{base}_context"} <= names
        assert load_template(base).context_variant.name == f"{base}_context"
        # the older name of a context variant (PubMedQA's, registered by its folder) still loads it
        assert load_template(f"{base}_pubmedqa").name == f"{base}_context"


def test_template_records_text_and_hash():
    template = load_template("strict")
    file_text = (bundled_dir("prompts") / "strict.txt").read_text(encoding="utf-8")
    assert template.text == file_text[:-1]  # one trailing newline dropped
    assert template.sha256 == hashlib.sha256(template.text.encode()).hexdigest()
    summary = template_summary(template)
    assert summary["text"] == template.text and summary["sha256"] == template.sha256
    assert summary["context_variant"]["name"] == "strict_context"


def test_data_is_inserted_verbatim_never_evaluated():
    tricky = Item("x", "d", "Why {options} and {0.__class__} and {{x}}?", {"A": "{question}", "B": "}{"}, "A")
    assert render_prompt(load_template("free"), tricky) == (
        "Please answer the following multiple-choice question:\n"
        "Why {options} and {0.__class__} and {{x}}?\nA. {question}\nB. }{")


def test_unknown_field_is_an_error_naming_it(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text("Q: {question}\n{answer_key}\n")
    with pytest.raises(TemplateError, match=r"mine.txt: unknown field \{answer_key\}"):
        load_template(str(path))


def test_attribute_access_is_not_a_field():
    # "{question.__class__}" is not a field name, so it stays literal text
    template = PromptTemplate.from_text("{question.__class__} {question}")
    assert render_prompt(template, ITEM) == "{question.__class__} What is 2 + 2?"


def test_braces_escape_and_stray_braces_are_literal():
    template = PromptTemplate.from_text('Reply as JSON {{"answer": "X"}} {not a field} {question}')
    assert render_prompt(template, ITEM) == 'Reply as JSON {"answer": "X"} {not a field} What is 2 + 2?'


def test_template_needs_a_question_field():
    with pytest.raises(TemplateError, match=r"no \{question\} field"):
        PromptTemplate.from_text("{options}")


def test_user_template_file_by_path(tmp_path):
    path = tmp_path / "terse.txt"
    path.write_text("Q: {question}\n{options}\nAnswer:\n")
    template = load_template(str(path))
    assert template.name == "terse" and template.path == path
    assert render_prompt(template, ITEM) == "Q: What is 2 + 2?\nA. 3\nB. 4\nC. 5\nAnswer:"


def test_unknown_template_name_lists_the_builtins():
    with pytest.raises(TemplateError, match=r"unknown prompt 'nope': built-in prompts are cot, "):
        load_template("nope")
    with pytest.raises(TemplateError, match="no template file"):
        load_template("missing/dir/x.txt")


def test_context_item_gets_the_pubmedqa_variant_automatically():
    text = render_prompt(load_template("strict"), PUBMED)
    assert text.endswith("'The answer is A.'.\nContext: Background text.\nResults text.\n"
                         "Question: Does it work?\nA. yes\nB. no\nC. maybe")
    # an item without context keeps the base template
    assert "Context:" not in render_prompt(load_template("strict"), ITEM)


def test_user_template_sibling_variant_and_no_variant(tmp_path):
    (tmp_path / "mine.txt").write_text("{question}\n{options}")
    assert render_prompt(load_template(str(tmp_path / "mine.txt")), PUBMED).startswith("Does it work?")
    (tmp_path / "mine_pubmedqa.txt").write_text("{context}\n{question}\n{options}")
    assert render_prompt(load_template(str(tmp_path / "mine.txt")), PUBMED).startswith("Background text.")


def test_context_field_on_an_item_without_context_is_an_error():
    with pytest.raises(TemplateError, match="item 'q1' has no context"):
        render_prompt(load_template("strict_pubmedqa"), ITEM)


def test_format_options():
    assert format_options({"A": "x", "P": "y"}) == "A. x\nP. y"


# --------------------------------------------------------------------------- few-shot


def test_exemplar_file_is_valid_and_separate_from_the_sample_set():
    pool = load_exemplars()
    assert len(pool) >= 6 and all(item.meta.get("explanation") for item in pool)
    sample = load_dataset(bundled_dir("eval_data") / "sample_medqa.jsonl").items
    assert not {i.question for i in pool} & {i.question for i in sample}
    assert exemplars_path().name == "fewshot_exemplars.jsonl"


def test_draw_is_seeded_and_deterministic():
    pool = load_exemplars()
    first = [e.id for e in draw_exemplars(pool, 3, seed=1)]
    assert first == [e.id for e in draw_exemplars(pool, 3, seed=1)]
    assert len(set(first)) == 3
    draws = {tuple(e.id for e in draw_exemplars(pool, 3, seed=s)) for s in range(10)}
    assert len(draws) > 1


def test_draw_never_uses_an_evaluated_question():
    pool = load_exemplars()
    evaluated = [pool[0], pool[1]]
    for seed in range(20):
        drawn = draw_exemplars(pool, len(pool) - 2, seed=seed, exclude=evaluated)
        assert pool[0] not in drawn and pool[1] not in drawn
    with pytest.raises(ValueError, match="only"):
        draw_exemplars(pool, len(pool) - 1, exclude=evaluated)


def test_fewshot_prompt_layout():
    pool = load_exemplars()
    shots = draw_exemplars(pool, 2, seed=0)
    text = render_prompt(load_template("fewshot"), ITEM, exemplars=shots)
    blocks = text.split("\n\n")
    assert blocks[0].startswith("The following are multiple-choice questions about medicine")
    for shot, block in zip(shots, blocks[1:3]):
        assert block.startswith(f"Question: {shot.question}\n{format_options(shot.options)}\nAnswer: ")
        assert block.endswith(f"The answer is {shot.answer_idx}.")
    assert blocks[3] == "Question: What is 2 + 2?\nA. 3\nB. 4\nC. 5\nAnswer:"


def test_fewshot_without_exemplars_is_an_error():
    with pytest.raises(TemplateError, match="no exemplars were given"):
        render_prompt(load_template("fewshot"), ITEM)
