"""How fast does load_dataset read a large benchmark file?

Writes a synthetic 100,000-item MedQA-shaped JSONL (5 options, ~1 KB a
record, no ids so every id is a content hash) to a temporary folder and
times load_dataset on it, plus the real shared files when they are present.
Prints items, seconds and items per second, and the ratio of the time to
the target (100,000 items in 5 s, since the runner loads at startup; a
ratio below 1 meets it). Run from the repository root:
``python -m bench.bench_load`` (BENCH_ITEMS=n changes the size).
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import time
from pathlib import Path

from evalkit.data.datasets import load_dataset

N = int(os.environ.get("BENCH_ITEMS", "100000"))
SHARED = Path(os.environ.get("EVALKIT_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")


def synthetic(path: Path, n: int) -> None:
    rng = random.Random(0)
    words = "patient presents with fever cough pain history examination shows laboratory".split()
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            question = " ".join(rng.choice(words) for _ in range(120)) + f" case {i}?"
            options = {letter: " ".join(rng.choice(words) for _ in range(4)) for letter in "ABCDE"}
            record = {"question": question, "options": options, "answer": options["C"],
                      "answer_idx": "C", "meta_info": "step1"}
            fh.write(json.dumps(record) + "\n")


TARGET_S_PER_100K = 5.0


def timed(path: Path) -> float:
    start = time.perf_counter()
    loaded = load_dataset(path)
    seconds = time.perf_counter() - start
    size_mb = path.stat().st_size / 1e6
    print(f"{path.name:32s} {len(loaded.items):7d} items {size_mb:7.1f} MB {seconds:6.2f} s "
          f"{len(loaded.items) / seconds:9.0f} items/s")
    return seconds


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "synthetic_medqa.jsonl"
        synthetic(path, N)
        seconds = timed(path)
    ratio = seconds / (TARGET_S_PER_100K * N / 100_000)
    print(f"time / target ({TARGET_S_PER_100K:.0f} s per 100,000 items): {ratio:.2f}")
    for name in ("medqa_test.jsonl", "medxpertqa_text_2450.jsonl", "mirage_benchmark.json"):
        if (SHARED / "eval_data" / name).is_file():
            timed(SHARED / "eval_data" / name)


if __name__ == "__main__":
    main()
