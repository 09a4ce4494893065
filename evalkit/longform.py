"""Long-form (free-text answer) benchmarks: one adapter per source shape, record -> Item.

An adapter is ``fn(record, *, dataset, key) -> Item`` and raises ``AdapterError``
listing what is wrong with the record. A long-form Item has no options; its
``target`` is what a judge grades against:

- ``liveqa``: TREC 2017 LiveQA-Med, ``target`` = the reference answer texts (None when it has
  none: in the shared copy only 1 of the 104 records carries reference answers);
- ``medicationqa`` / ``healthsearchqa``: questions only (``target`` None);
- ``healthbench``: the conversation in ``Item.messages`` (the question is its last
  user turn), the rubric items (``criterion``, ``points``, ``tags``) in ``target``;
- ``nist_graded``: one graded answer of liveqa_med_nist_judged_692.jsonl (``qid``,
  ``answer``, optional ``grade``), read by ``load_graded_answers``.

``load_longform(path, adapter)`` reads a JSONL file through an adapter and
reports every bad line as ``file:line: message``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from evalkit.adapters import AdapterError, register_adapter
from evalkit.records import Item
from evalkit.registry import match_file
from evalkit.store import MAX_JSON_DEPTH, iter_numbered

Adapter = Callable[..., Item]
NO_ALLOW: frozenset[str] = frozenset()


def _need_object(record: Any) -> None:
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


def _rest(record: dict, used: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in used}


@register_adapter("liveqa")
def liveqa(record: dict, *, dataset: str, key: str | None = None, allow: frozenset[str] = NO_ALLOW) -> Item:
    """A LiveQA-Med test question; the texts of its reference answers (possibly none) become ``target``.

    Three published records have no NIST paraphrase (empty ``question``): the
    consumer's own subject and message stand in for it (``meta.question_from``).
    """
    _need_object(record)
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
    meta = _rest(record, ("id", "question", "reference_answers"))
    meta["reference_urls"] = [r.get("url") for r in refs if isinstance(r, dict)]
    if question_from != "question":
        meta["question_from"] = question_from
    return Item(id=item_id, dataset=dataset, question=question.strip(), target=texts or None, meta=meta)


@register_adapter("question_only")
def question_only(record: dict, *, dataset: str, key: str | None = None, allow: frozenset[str] = NO_ALLOW) -> Item:
    """A consumer question with no reference answer (MedicationQA, HealthSearchQA)."""
    _need_object(record)
    errors: list[str] = []
    item_id = _id(record, key, errors)
    question = _text(record, "question", errors)
    if errors:
        raise AdapterError(errors)
    return Item(id=item_id, dataset=dataset, question=question, meta=_rest(record, ("id", "question")))


medicationqa = register_adapter("medicationqa")(question_only)
healthsearchqa = register_adapter("healthsearchqa")(question_only)


@register_adapter("healthbench")
def healthbench(record: dict, *, dataset: str, key: str | None = None, allow: frozenset[str] = NO_ALLOW) -> Item:
    """A HealthBench record: conversation -> ``messages``, rubric items -> ``target``."""
    _need_object(record)
    errors: list[str] = []
    item_id = record.get("prompt_id", key)
    if not isinstance(item_id, str) or not item_id:
        errors.append("record has no 'prompt_id'")
    prompt = record.get("prompt")
    messages: list[dict[str, str]] = []
    if not isinstance(prompt, list) or not prompt:
        errors.append("'prompt' must be a non-empty list of {role, content}")
    else:
        for i, turn in enumerate(prompt):
            if (not isinstance(turn, dict) or turn.get("role") not in ("system", "user", "assistant")
                    or not isinstance(turn.get("content"), str)):
                errors.append(f"prompt[{i}] must be {{role: system|user|assistant, content: text}}")
            else:
                messages.append({"role": turn["role"], "content": turn["content"]})
        if messages and messages[-1]["role"] != "user":
            errors.append("the conversation must end with a user turn (the one to answer)")
    rubrics = record.get("rubrics")
    items: list[dict[str, Any]] = []
    if not isinstance(rubrics, list) or not rubrics:
        errors.append("'rubrics' must be a non-empty list of {criterion, points}")
    else:
        for i, r in enumerate(rubrics):
            points = r.get("points") if isinstance(r, dict) else None
            if (not isinstance(r, dict) or not isinstance(r.get("criterion"), str)
                    or not isinstance(points, (int, float)) or isinstance(points, bool)):
                errors.append(f"rubrics[{i}] must be {{criterion: text, points: number}}")
            else:
                items.append({"criterion": r["criterion"], "points": points, "tags": list(r.get("tags") or [])})
        if items and not any(i["points"] > 0 for i in items):
            errors.append("no rubric item has positive points (the score would be undefined)")
    if errors:
        raise AdapterError(errors)
    meta = _rest(record, ("prompt_id", "prompt", "rubrics"))
    return Item(id=str(item_id), dataset=dataset, question=messages[-1]["content"], target=items,
                messages=messages, meta=meta)


@dataclass(frozen=True)
class GradedAnswer:
    """One answer with an optional human grade (liveqa_med_nist_judged_692.jsonl's shape)."""

    id: str
    qid: str
    answer: str
    grade: int | None
    line: int


def nist_graded(record: dict, *, line: int = 0) -> GradedAnswer:
    """A graded answer: ``qid``, ``answer``, optional int ``grade`` (kept as given, even off the scale)."""
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
    return GradedAnswer(id=str(record.get("id", f"line{line}")), qid=str(qid), answer=answer or "", grade=grade,
                        line=line)


@register_adapter("nist_graded")
def nist_graded_item(record: dict, *, dataset: str, key: str | None = None, allow: frozenset[str] = NO_ALLOW) -> Item:
    """A graded answer as an Item (for `evalkit data check`): its question is the qid it answers,
    its target the answer and the human grade. Judging reads these files with ``load_graded_answers``."""
    _need_object(record)
    a = nist_graded(record)
    return Item(id=a.id, dataset=dataset, question=a.qid, target={"answer": a.answer, "grade": a.grade},
                meta={"qid": a.qid})


LONGFORM_ADAPTERS: dict[str, Adapter] = {
    "liveqa": liveqa, "medicationqa": medicationqa, "healthsearchqa": healthsearchqa, "healthbench": healthbench,
}


class LongformError(ValueError):
    """A long-form file with bad records; the message lists them as ``file:line: message``."""


@dataclass
class LoadedLongform:
    """The items of a long-form file, its sha256, and whether it matches its registry entry."""

    items: list[Item]
    sha256: str
    benchmark: str | None
    verified: bool | None


def load_longform(path: str | Path, adapter: str | Adapter | None = None, *,
                  dataset: str | None = None) -> LoadedLongform:
    """Read the JSONL file PATH through ADAPTER (a LONGFORM_ADAPTERS name; default: its registry row's).

    Every bad line is collected and reported at once; ids must be unique.
    """
    path = Path(path)
    bench = match_file(path)
    name = adapter if adapter is not None else getattr(bench, "adapter", None)
    if name is None:
        raise LongformError(f"{path}: no adapter given and the file is not a registered long-form benchmark "
                            f"(adapters: {', '.join(sorted(LONGFORM_ADAPTERS))})")
    if isinstance(name, str):
        if name not in LONGFORM_ADAPTERS:
            known = ", ".join(sorted(LONGFORM_ADAPTERS))
            raise LongformError(f"{path}: unknown long-form adapter {name!r} ({known})")
        fn = LONGFORM_ADAPTERS[name]
    else:
        fn = name
    dataset = dataset or (bench.name if bench else path.stem)
    if not path.is_file():
        raise LongformError(f"{path}: cannot read file: no such file")
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise LongformError(f"{path}: cannot read file: {exc.strerror or exc}") from None
    items: list[Item] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    try:
        for line, record in iter_numbered(path, max_depth=MAX_JSON_DEPTH):
            if not isinstance(record, dict):
                problems.append(f"{path}:{line}: a record is a JSON object")
                continue
            try:
                item = fn(record, dataset=dataset, key=None)
            except AdapterError as exc:
                problems.extend(f"{path}:{line}: {m}" for m in exc.messages)
                continue
            if item.id in seen:
                problems.append(f"{path}:{line}: duplicate id {item.id!r} (first at line {seen[item.id]})")
                continue
            seen[item.id] = line
            items.append(item)
    except ValueError as exc:
        raise LongformError(str(exc)) from None
    if problems:
        raise LongformError("\n".join(problems))
    if not items:
        raise LongformError(f"{path}: no records")
    return LoadedLongform(items, digest, bench.name if bench else None,
                          None if bench is None else bench.sha256 == digest)


def load_graded_answers(path: str | Path) -> list[GradedAnswer]:
    """The graded answers of PATH (``qid``, ``answer``, optional ``grade``), every bad line reported at once."""
    path = Path(path)
    if not path.is_file():
        raise LongformError(f"{path}: cannot read file: no such file")
    out: list[GradedAnswer] = []
    problems: list[str] = []
    try:
        for line, record in iter_numbered(path, max_depth=MAX_JSON_DEPTH):
            if not isinstance(record, dict):
                problems.append(f"{path}:{line}: a record is a JSON object")
                continue
            try:
                out.append(nist_graded(record, line=line))
            except AdapterError as exc:
                problems.extend(f"{path}:{line}: {m}" for m in exc.messages)
    except OSError as exc:
        raise LongformError(f"{path}: cannot read file: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise LongformError(str(exc)) from None
    if problems:
        raise LongformError("\n".join(problems))
    if not out:
        raise LongformError(f"{path}: no records")
    return out
