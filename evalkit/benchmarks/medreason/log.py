"""MedReason / HuatuoGPT-o1 evaluation logs, read for ``evalkit score`` (a registered log reader of
``evalkit.run.rescore``): a JSON list of items with ``output``, ``options`` and ``answer_idx``,
optionally ``source``; or a JSON object mapping each source to such a list. Each item becomes an
evalkit sample dict (``source`` becomes ``dataset``), scored again as a run's samples are."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evalkit.core.store import parse_json
from evalkit.run.rescore import LogReader, read_options, register_log_reader

REQUIRED = ("output", "options", "answer_idx")


def is_medreason_log(path: str | Path) -> bool:
    """True for a ``.json`` file (a MedReason log); evalkit runs are directories or ``.jsonl`` files."""
    path = Path(path)
    return path.is_file() and path.suffix.lower() == ".json"


def read_medreason_log(path: str | Path) -> list[dict[str, Any]]:
    """The items of a MedReason/HuatuoGPT-o1 log as evalkit sample dicts (``source`` becomes ``dataset``)."""
    path = Path(path)
    try:
        data = parse_json(path.read_bytes())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if isinstance(data, dict):  # {source: [items]}, the form the MedReason eval script reads
        items = [dict(item, source=item.get("source", src)) for src, group in data.items() for item in group]
    elif isinstance(data, list):
        items = data
    else:
        raise ValueError(f"{path}: expected a JSON list of items (or an object of lists), got {type(data).__name__}")
    samples = []
    for i, item in enumerate(items):
        where = f"{path}: item {i}"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: expected an object, got {type(item).__name__}")
        missing = [k for k in REQUIRED if k not in item]
        if missing:
            raise ValueError(f"{where}: missing {', '.join(repr(k) for k in missing)}")
        output = item["output"]
        samples.append({
            "id": str(item.get("id", i)),
            "dataset": str(item.get("source") or "unknown"),
            "question": str(item.get("question", "")),
            "options": read_options(item["options"], where),
            "answer_idx": str(item["answer_idx"]),
            "prompt": str(item.get("input_str", "")),
            "output": output if isinstance(output, str) else json.dumps(output),
            "finish_reason": None,
            "pred": None,
            "method": None,
            "correct": False,
            "usage": {},
            "latency_s": 0.0,
            "truncated": False,
            "error": None,
            "index": 0,
            "meta": {"medreason_item": i},
        })
    return samples


READER = register_log_reader(LogReader("medreason", is_medreason_log, read_medreason_log))
