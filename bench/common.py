"""Helpers shared by the benchmarks: a server in its own process, synthetic items."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SHARED = Path(os.environ.get("EVALKIT_SHARED", ROOT.parent / "shared"))
sys.path.insert(0, str(ROOT))  # run from a checkout without installing
# Children started as `python -m bench.NAME` find the bench package from any folder.
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)

from tests.serverproc import ServerProcess as _ServerProcess  # noqa: E402


def ServerProcess(*args: str) -> _ServerProcess:
    """bench/sim_server.py in its own process group (a context manager that stops it)."""
    return _ServerProcess(BENCH / "sim_server.py", *args)


def write_synthetic_items(path: Path, n: int, *, question_chars: int = 700) -> Path:
    """N MedQA-shaped items with distinct questions about as long as MedQA's."""
    filler = ("A patient presents with symptoms that have lasted several days; examination and laboratory "
              "findings are described here at some length. ")
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            q = f"Case {i}. " + (filler * (question_chars // len(filler) + 1))[:question_chars] + " What is next?"
            opts = {L: f"Option {L} for case {i}" for L in "ABCD"}
            fh.write(json.dumps({"question": q, "options": opts, "answer_idx": "ABCD"[i % 4]}) + "\n")
    return path


def medqa_or_synthetic(tmp: Path, n: int = 1273) -> tuple[Path, str]:
    """The public MedQA test file when shared/ is there, else N synthetic items."""
    real = SHARED / "eval_data" / "medqa_test.jsonl"
    if real.exists():
        return real, f"MedQA test ({real})"
    return write_synthetic_items(tmp / "synthetic.jsonl", n), f"{n} synthetic MedQA-shaped items"
