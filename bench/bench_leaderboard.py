"""How long does the leaderboard take over a results folder of realistic size?

Writes RUNS configurations (default 40: 10 models x 2 prompts x 2 max-new-tokens
settings), each a run per dataset on 5 datasets of ITEMS items (default 1,000), so
200 run directories and 1,000,000 samples; a tenth of the configurations cover
only 2 datasets and one run is partial. Times ``build_leaderboard`` (reading every
run, grouping, choosing the ranked datasets, CIs and macro bootstrap) and prints
seconds, samples/s and the rows ranked and listed apart. Run from the repository
root: ``python -m bench.bench_leaderboard`` (BENCH_RUNS, BENCH_ITEMS change sizes).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from evalkit.results.leaderboard import build_leaderboard

RUNS = int(os.environ.get("BENCH_RUNS", "40"))
ITEMS = int(os.environ.get("BENCH_ITEMS", "1000"))
DATASETS = ("medqa", "pubmedqa", "medbullets", "mmlu", "medmcqa")


def _write_run(run_dir: Path, dataset: str, model: str, prompt: str, tokens: int, seed: int,
               status: str = "complete") -> None:
    run_dir.mkdir(parents=True)
    with open(run_dir / "samples.jsonl", "w", encoding="utf-8") as fh:
        for i in range(ITEMS):
            correct = (i * 7 + seed) % 10 < 6
            fh.write(json.dumps({
                "id": f"{dataset}-{i}", "dataset": dataset, "question": f"Question {i}?",
                "options": {"A": "a", "B": "b", "C": "c", "D": "d"}, "answer_idx": "A",
                "prompt": f"Question {i}?", "output": "The answer is A." if correct else "The answer is B.",
                "finish_reason": "stop", "pred": "A" if correct else "B", "method": "answer_is",
                "correct": correct, "usage": {"completion_tokens": 40}, "latency_s": 0.5, "truncated": False,
                "error": None, "index": 0, "meta": {}}) + "\n")
    manifest = {"model": model, "prompt": prompt, "prompt_sha256": prompt * 8, "extractor": "evalkit",
                "generation": {"max_new_tokens": tokens, "temperature": 0.0, "top_p": 1.0, "seed": None},
                "strategy": "single", "samples": 1, "evalkit_version": "0.1.0", "status": status,
                "finished_at": "2026-01-01T00:00:00+00:00", "wall_s": 100.0}
    (run_dir / "manifest.json").write_text(json.dumps(manifest))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "results"
        n_samples = 0
        for c in range(RUNS):
            model, prompt, tokens = f"model-{c // 4}", ("strict", "cot")[c % 2], (256, 1024)[c // 2 % 2]
            datasets = DATASETS[:2] if c % 10 == 9 else DATASETS
            for d in datasets:
                status = "interrupted" if c == 0 and d == "medqa" else "complete"
                _write_run(root / model / f"{prompt}-{tokens}-{d}", d, model, prompt, tokens, c, status)
                n_samples += ITEMS
        t0 = time.perf_counter()
        lb = build_leaderboard(root, n_resamples=10_000, index=False)  # the index: bench_leaderboard_index
        wall = time.perf_counter() - t0
        print(f"leaderboard over {RUNS} configurations, {n_samples:,} samples: {wall:.2f} s "
              f"({n_samples / wall:,.0f} samples/s); {len(lb.ranked_rows)} ranked on "
              f"{len(lb.ranked_datasets)} datasets, {len(lb.apart_rows)} listed apart")


if __name__ == "__main__":
    main()
