"""A run's items as the view's item browser shows them: searched, filtered by verdict, a page at a time.

Pure: samples in, JSON-ready rows out. The browser writes every field with ``textContent``, so
a question or generation holding markup is shown as text.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from evalkit.run.rundir import choice_verdict, item_samples, sample_score_dicts

VERDICTS = ("all", "correct", "wrong", "unparsed", "error")


def verdict(sample: Mapping[str, Any]) -> str:
    """correct, wrong, unparsed (no answer read), error (the request failed) or scored (no verdict)."""
    if sample.get("error"):
        return "error"
    right = choice_verdict(sample)
    if right is True:
        return "correct"
    if right is False:
        return "unparsed" if not sample.get("pred") and sample.get("options") else "wrong"
    return "scored"


def _target_text(sample: Mapping[str, Any]) -> str:
    if sample.get("answer_idx"):
        return str(sample["answer_idx"])
    target = sample.get("target")
    return "" if target is None else str(target)[:2000]


def item_row(sample: Mapping[str, Any]) -> dict[str, Any]:
    """One item's fields for the browser: question, options, output, extraction and scores."""
    scores = {name: {"value": s.get("value"), "answer": s.get("answer"), "explanation": s.get("explanation"),
                     "error": s.get("error")} for name, s in sample_score_dicts(sample).items()}
    return {"dataset": sample.get("dataset"), "id": sample.get("id"), "question": sample.get("question") or "",
            "options": sample.get("options") or {}, "gold": _target_text(sample), "output": sample.get("output") or "",
            "pred": sample.get("pred"), "rule": sample.get("method"), "verdict": verdict(sample),
            "finish_reason": sample.get("finish_reason"), "error": sample.get("error"), "scores": scores}


def _matches(sample: Mapping[str, Any], needle: str) -> bool:
    hay = " ".join(str(sample.get(k) or "") for k in ("id", "question", "output", "pred"))
    return needle in hay.lower()


def browse(samples: Sequence[Mapping[str, Any]], *, query: str = "", which: str = "all", offset: int = 0,
           limit: int = 100) -> dict[str, Any]:
    """The items of SAMPLES matching QUERY (in id, question, output or answer) and verdict WHICH, from
    OFFSET, at most LIMIT; with the number that match and the count of each verdict."""
    if which not in VERDICTS:
        raise ValueError(f"verdict {which!r}: choose from {', '.join(VERDICTS)}")
    items = list(item_samples(samples).values())
    counts: dict[str, int] = {}
    verdicts: dict[int, str] = {}  # each item's verdict, made once
    for s in items:
        v = verdicts[id(s)] = verdict(s)
        counts[v] = counts.get(v, 0) + 1
    needle = query.strip().lower()
    chosen = [s for s in items if (which == "all" or verdicts[id(s)] == which) and (not needle or _matches(s, needle))]
    offset = max(0, offset)
    return {"total": len(items), "matching": len(chosen), "offset": offset, "counts": counts,
            "items": [item_row(s) for s in chosen[offset:offset + max(1, limit)]]}
