"""The ``healthbench`` adapter: a HealthBench record (Arora et al., 2025) -> an Item whose conversation
is in ``Item.messages`` (the question is its last user turn) and whose rubric items (``criterion``,
``points``, ``tags``) are its ``RubricItems`` target, graded by the ``healthbench`` rubric (a
``rubric_items`` rubric: ``healthbench.json`` beside this module)."""

from __future__ import annotations

from evalkit.core.records import Item, RubricItem, RubricItems
from evalkit.data.adapters import AdapterError, register_adapter
from evalkit.data.longform import need_object, rest_meta


@register_adapter("healthbench")
def healthbench(record: dict, *, dataset: str, key: str | None = None, allow: frozenset[str] = frozenset()) -> Item:
    """A HealthBench record: conversation -> ``messages``, rubric items -> a ``RubricItems`` target."""
    need_object(record)
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
    items: list[RubricItem] = []
    if not isinstance(rubrics, list) or not rubrics:
        errors.append("'rubrics' must be a non-empty list of {criterion, points}")
    else:
        for i, r in enumerate(rubrics):
            points = r.get("points") if isinstance(r, dict) else None
            if (not isinstance(r, dict) or not isinstance(r.get("criterion"), str)
                    or not isinstance(points, (int, float)) or isinstance(points, bool)):
                errors.append(f"rubrics[{i}] must be {{criterion: text, points: number}}")
            else:
                items.append(RubricItem(r["criterion"], points, tuple(r.get("tags") or ())))
        if items and not any(i.points > 0 for i in items):
            errors.append("no rubric item has positive points (the score would be undefined)")
    if errors:
        raise AdapterError(errors)
    meta = rest_meta(record, ("prompt_id", "prompt", "rubrics"))
    return Item(id=str(item_id), dataset=dataset, question=messages[-1]["content"], target=RubricItems(tuple(items)),
                messages=messages, meta=meta)
