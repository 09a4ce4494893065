"""Reasoning ("thinking") in generations: its shape, its tokens, and truncation inside it.

Pure functions over stored samples. A generation may carry its thinking as

* ``<think>...</think>answer``: the model opened and closed the block (servers
  with a reasoning parser return ``reasoning_content``, which the client folds
  into this shape);
* ``...</think>answer`` with no opening tag: the chat template pre-fills
  ``<think>`` (DeepSeek-R1 distills, Qwen3 thinking templates), so the output
  starts inside the thinking;
* no tag at all: no thinking, or, under a pre-filling template, a generation
  cut off before it closed its thinking.

A generation is *truncated inside thinking* when it hit the token limit
(``finish_reason`` "length") before any answer: an unclosed ``<think>``; a
closed block with nothing after it; or, when the dataset shows the pre-filled
shape, no closing tag at all. Those are counted apart from other unparsed answers.

Reasoning tokens come from ``usage.reasoning_tokens`` (the client keeps
``completion_tokens_details.reasoning_tokens``) where the server reports them;
otherwise they are estimated from the thinking's share of the text's characters
(``reasoning_tokens_source`` says which).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np

from evalkit.run.rundir import choice_answer

OPEN, CLOSE = "<think>", "</think>"


def split_thinking(text: str, *, prefilled: bool = False) -> tuple[str, str | None]:
    """(thinking, answer) of TEXT; answer None when the generation never left its thinking.

    The answer is what follows the last ``</think>``. With no closing tag, an
    opened ``<think>`` (or a pre-filling template, PREFILLED) means all of it is
    thinking; otherwise it is all answer.
    """
    low = text.lower()
    close = low.rfind(CLOSE)
    if close >= 0:
        head = text[:close]
        start = head.lower().find(OPEN)
        thinking = head[start + len(OPEN):] if start >= 0 else head
        return thinking, text[close + len(CLOSE):]
    if OPEN in low or prefilled:
        start = low.find(OPEN)
        return (text[start + len(OPEN):] if start >= 0 else text), None
    return "", text


def shows_prefilled_shape(texts: Iterable[str]) -> bool:
    """Whether any generation closes a thinking block it never opened (the template pre-fills ``<think>``)."""
    for text in texts:
        low = (text or "").lower()
        close = low.rfind(CLOSE)
        if close >= 0 and OPEN not in low[:close]:
            return True
    return False


def truncated_in_thinking(text: str, finish_reason: str | None, *, prefilled: bool = False) -> bool:
    """Whether a generation hit the token limit before it gave any answer after its thinking."""
    if finish_reason != "length":
        return False
    thinking, answer = split_thinking(text or "", prefilled=prefilled)
    if answer is None:
        return True
    return bool(thinking) and not answer.strip()


def token_split(text: str, usage: Mapping[str, Any], *, prefilled: bool = False) -> tuple[int, int, str] | None:
    """(reasoning tokens, answer tokens, source) of one generation, or None without a completion count.

    SOURCE is "server" when usage carries ``reasoning_tokens``, "estimated" when
    they are the thinking's share of the characters, "none" when there is no thinking.
    """
    total = usage.get("completion_tokens")
    if not isinstance(total, (int, float)):
        return None
    total = int(total)
    reported = usage.get("reasoning_tokens")
    if isinstance(reported, (int, float)):
        reasoning = min(int(reported), total)
        return reasoning, total - reasoning, "server"
    thinking, answer = split_thinking(text or "", prefilled=prefilled)
    if not thinking:
        return 0, total, "none"
    chars = len(thinking) + len(answer or "")
    reasoning = round(total * len(thinking) / chars) if chars else 0
    return reasoning, total - reasoning, "estimated"


def generations(sample: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every generation of a stored sample: the sample itself, or each one of every stage of a multi-sample record."""
    if sample.get("error"):
        return []
    stages = sample.get("stages")
    if stages:
        return [g for st in stages for g in st.get("outputs") or []]
    return [{"output": sample.get("output") or "", "finish_reason": sample.get("finish_reason"),
             "usage": sample.get("usage") or {}}]


def _mean_p50_p95(values: list[int]) -> tuple[float, float, float]:
    arr = np.asarray(values, dtype=float)
    p50, p95 = np.percentile(arr, [50, 95])
    return float(arr.mean()), float(p50), float(p95)


def reasoning_stats(samples: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Per-dataset reasoning figures over SAMPLES (the samples that count, one dataset).

    Keys: ``thinking`` (share of generations with thinking), ``prefilled_think``
    (the pre-filled shape was seen), ``reasoning_tokens_{mean,p50,p95}`` and
    ``answer_tokens_{mean,p50,p95}`` over every generation with a completion
    count, ``reasoning_tokens_source`` ("server", "estimated", "mixed" or "none"),
    ``truncated_in_thinking`` (samples, by the shown generation) and
    ``unparsed_other`` (unparsed multiple-choice samples not truncated inside thinking).
    Empty when no sample was answered.
    """
    answered = [s for s in samples if not s.get("error")]
    if not answered:
        return {}
    gens = [g for s in answered for g in generations(s)]
    prefilled = shows_prefilled_shape(g.get("output") or "" for g in gens)
    reasoning, answer, sources, thinking = [], [], set(), 0
    for g in gens:
        text = g.get("output") or ""
        thinking += bool(split_thinking(text, prefilled=prefilled)[0])
        split = token_split(text, g.get("usage") or {}, prefilled=prefilled)
        if split is None:
            continue
        reasoning.append(split[0])
        answer.append(split[1])
        sources.add(split[2])
    in_thinking = [truncated_in_thinking(s.get("output") or "", s.get("finish_reason"), prefilled=prefilled)
                   for s in answered]
    out: dict[str, Any] = {
        "thinking": thinking / len(gens) if gens else 0.0,
        "prefilled_think": prefilled,
        "truncated_in_thinking": sum(in_thinking),
        "unparsed_other": sum(1 for s, t in zip(answered, in_thinking)
                              if s.get("options") and choice_answer(s)[0] is None and not t),
    }
    real = sources - {"none"}
    out["reasoning_tokens_source"] = ("none" if not real else real.pop() if len(real) == 1 else "mixed")
    for name, values in (("reasoning_tokens", reasoning), ("answer_tokens", answer)):
        if values:
            mean, p50, p95 = _mean_p50_p95(values)
            out.update({f"{name}_mean": mean, f"{name}_p50": p50, f"{name}_p95": p95})
        else:
            out.update({f"{name}_mean": None, f"{name}_p50": None, f"{name}_p95": None})
    return out
