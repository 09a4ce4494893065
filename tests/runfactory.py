"""Build fixture runs on disk (samples.jsonl + manifest.json) for report/gate tests.

No server involved: every sample is written as the runner would have written it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Sequence

from evalkit.core.records import SampleRecord

LETTERS = "ABCDE"


def make_sample(
    item_id: str,
    dataset: str = "medqa",
    *,
    correct: bool | None = True,
    gold: str = "A",
    truncated: bool = False,
    error: str | None = None,
    index: int = 0,
    meta: dict[str, Any] | None = None,
    latency_s: float = 1.0,
    completion_tokens: int = 100,
    question: str | None = None,
    options: dict[str, str] | None = None,
    output: str | None = None,
    method: str | None = None,
    prompt: str | None = None,
) -> dict[str, Any]:
    """One samples.jsonl line. ``correct=None`` means unparsed (pred None, wrong)."""
    options = options or {k: f"option {k} of {item_id}" for k in LETTERS[:4]}
    if error:
        pred, ok, text, fin, used = None, False, "", None, {}
    else:
        if correct is None:
            pred = None
        elif correct:
            pred = gold
        else:
            pred = next(k for k in options if k != gold)
        ok = bool(correct)
        text = output if output is not None else (
            f"Reasoning about {item_id}. The answer is {pred}." if pred else "I am not sure."
        )
        fin = "length" if truncated else "stop"
        used = {"prompt_tokens": 50, "completion_tokens": completion_tokens, "total_tokens": 50 + completion_tokens}
    rec = SampleRecord(
        id=item_id,
        dataset=dataset,
        question=question or f"Question {item_id}?",
        options=options,
        answer_idx=gold,
        prompt=prompt if prompt is not None else f"Answer the question.\nQuestion {item_id}?",
        output=text,
        finish_reason=fin,
        pred=pred,
        method=method if method is not None else ("answer_is" if pred else None),
        correct=ok,
        usage=used,
        latency_s=latency_s,
        truncated=truncated,
        error=error,
        index=index,
        meta=dict(meta or {}),
    )
    return rec.to_dict()


def verdict_samples(dataset: str, verdicts: Sequence[bool | None], *, prefix: str | None = None, **kw: Any) -> list[dict]:
    """Samples for items ``<prefix>-0``, ``<prefix>-1``... with the given verdicts."""
    prefix = prefix or dataset
    return [make_sample(f"{prefix}-{i}", dataset, correct=v, **kw) for i, v in enumerate(verdicts)]


def write_samples(path: Path, samples: Iterable[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for s in samples:
            fh.write(json.dumps(s, ensure_ascii=False) + "\n")
    return path


def write_run(
    root: Path,
    name: str,
    samples: Iterable[dict],
    *,
    task: str = "medqa",
    model: str | None = "test-model",
    prompt: str = "cot",
    extractor: str = "evalkit",
    wall_s: float | None = 10.0,
    started_at: str = "2025-01-01T00:00:00Z",
    finished_at: str = "2025-01-01T00:00:10Z",
    manifest: bool = True,
    extra_manifest: dict[str, Any] | None = None,
) -> Path:
    """Write ``root/<task>/<name>/`` with samples.jsonl, summary.json and (optionally) manifest.json."""
    run_dir = root / task / name
    samples = list(samples)
    write_samples(run_dir / "samples.jsonl", samples)
    from evalkit.run.summary import summarize

    summary = {"datasets": {k: v.to_dict() for k, v in summarize(samples).items()}}
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    if manifest:
        data: dict[str, Any] = {
            "prompt": prompt,
            "extractor": extractor,
            "started_at": started_at,
            "finished_at": finished_at,
            "wall_s": wall_s,
        }
        if model is not None:
            data["model"] = model
        data.update(extra_manifest or {})
        (run_dir / "manifest.json").write_text(json.dumps(data, indent=2))
    return run_dir
