"""Long-form (free-text answer) adapters: one per source shape, record -> Item.

Ordinary adapters (evalkit.data.adapters): registered by name with ``register_adapter``,
read through ``evalkit.data.datasets.load_dataset`` like every other benchmark file, and
raising ``AdapterError`` listing what is wrong with a record (the loader reports it
as ``file:line: message``). A long-form Item has no options; its ``target`` (one of
evalkit.core.records' target types) is what a judge grades against:

- ``liveqa``: TREC 2017 LiveQA-Med, ``target`` = ``References`` (None when it has
  none: in the shared copy only 1 of the 104 records carries reference answers);
- ``medicationqa`` / ``healthsearchqa`` (``question_only``): questions only (``target`` None);
- ``nist_graded``: one graded answer of liveqa_med_nist_judged_692.jsonl (``qid``,
  ``answer``, optional ``grade``): question = the qid, ``target`` = ``GradedAnswer``.

A benchmark with an adapter of its own keeps it in its folder (evalkit.benchmarks), using the helpers
here (``need_object``, ``rest_meta``: the record's other fields as ``meta``).
"""

from __future__ import annotations

from typing import Any

from evalkit.data.adapters import AdapterError, register_adapter
from evalkit.core.records import GradedAnswer, Item, References

NO_ALLOW: frozenset[str] = frozenset()


def need_object(record: Any) -> None:
    """AdapterError unless RECORD is a JSON object."""
    if not isinstance(record, dict):
        raise AdapterError([f"a record is a JSON object, got {type(record).__name__}"])


def _text(record: dict, name: str, errors: list[str]) -> str:
    value = record.get(name)
    if not isinstance(value, str) or not value.strip():
        errors.append(f"{name!r} must be a non-empty string")
        return ""
    return value.strip()


def _id(record: dict, key: str | None, errors: list[str]) -> str:
    value = record.get("id", key)
    if value is None or str(value).strip() == "":
        errors.append("record has no 'id'")
        return ""
    return str(value)


def rest_meta(record: dict, used: tuple[str, ...]) -> dict[str, Any]:
    """RECORD's fields other than USED (an item's ``meta``)."""
    return {k: v for k, v in record.items() if k not in used}


@register_adapter("liveqa")
def liveqa(record: dict, *, dataset: str, key: str | None = None, allow: frozenset[str] = NO_ALLOW) -> Item:
    """A LiveQA-Med test question; the texts of its reference answers (possibly none) become a ``References`` target.

    Three published records have no NIST paraphrase (empty ``question``): the
    consumer's own subject and message stand in for it (``meta.question_from``).
    """
    need_object(record)
    errors: list[str] = []
    item_id = _id(record, key, errors)
    question = record.get("question")
    question_from = "question"
    if not isinstance(question, str) or not question.strip():
        parts = [record.get(k) for k in ("original_subject", "original_message")]
        parts = [p.strip() for p in parts if isinstance(p, str) and p.strip()]
        question = "\n".join(parts)
        question_from = "original_message"
        if not question:
            errors.append("'question' is empty and there is no original_subject or original_message")
    refs = record.get("reference_answers", [])
    texts: list[str] = []
    if not isinstance(refs, list):
        errors.append("'reference_answers' must be a list")
        refs = []
    for i, ref in enumerate(refs):
        text = ref.get("text") if isinstance(ref, dict) else None
        if not isinstance(text, str) or not text.strip():
            errors.append(f"reference_answers[{i}] has no 'text'")
        else:
            texts.append(text.strip())
    if errors:
        raise AdapterError(errors)
    meta = rest_meta(record, ("id", "question", "reference_answers"))
    meta["reference_urls"] = [r.get("url") for r in refs if isinstance(r, dict)]
    if question_from != "question":
        meta["question_from"] = question_from
    return Item(id=item_id, dataset=dataset, question=question.strip(),
                target=References(tuple(texts)) if texts else None, meta=meta)


@register_adapter("question_only")
@register_adapter("medicationqa")
@register_adapter("healthsearchqa")
def question_only(record: dict, *, dataset: str, key: str | None = None, allow: frozenset[str] = NO_ALLOW) -> Item:
    """A consumer question with no reference answer (MedicationQA, HealthSearchQA)."""
    need_object(record)
    errors: list[str] = []
    item_id = _id(record, key, errors)
    question = _text(record, "question", errors)
    if errors:
        raise AdapterError(errors)
    return Item(id=item_id, dataset=dataset, question=question, meta=rest_meta(record, ("id", "question")))


@register_adapter("nist_graded")
def nist_graded(record: dict, *, dataset: str, key: str | None = None, allow: frozenset[str] = NO_ALLOW) -> Item:
    """A graded answer (``qid``, ``answer``, optional int ``grade``, kept as given even off the scale) as an Item:
    its question is the qid it answers, its target a ``GradedAnswer``. A record without ``id`` gets none here
    (the loader names it ``line<N>``)."""
    need_object(record)
    errors: list[str] = []
    qid = record.get("qid")
    if not isinstance(qid, (str, int)) or str(qid) == "":
        errors.append("'qid' is missing")
    answer = record.get("answer")
    if not isinstance(answer, str):
        errors.append("'answer' must be a string")
    grade = record.get("grade")
    if grade is not None and (not isinstance(grade, int) or isinstance(grade, bool)):
        errors.append(f"'grade' must be an integer, got {grade!r}")
    if errors:
        raise AdapterError(errors)
    own_id = record.get("id", key)
    return Item(id="" if own_id is None else str(own_id), dataset=dataset, question=str(qid),
                target=GradedAnswer(answer, grade), meta={"qid": str(qid)})
