"""The leaderboard at sweep scale: ~2,000,000 samples through the run index, cold and warm, beside the plain read.

Writes CONFIGS configurations (default 85: models x 2 prompts x 2 max-new-tokens settings), each a
run per dataset on 5 datasets of ITEMS items (default 5,000), so 401 run directories and 2,005,000
samples, with ``bench.bench_leaderboard``'s generator (a tenth of the configurations cover 2 datasets,
one run is partial). Times ``build_leaderboard`` three ways: with the index cold (no
``.evalkit-index.sqlite``: every run is read and the index written), warm (the index is fresh), and
today's path (``index=False``: every samples.jsonl parsed); checks the three give the same JSON and
prints seconds and the warm figure against the 3 s target. The runs are written to a temporary
folder and deleted after. Run from the repository root: ``python -m bench.bench_leaderboard_index``
(BENCH_CONFIGS, BENCH_ITEMS change sizes; BENCH_SKIP_PLAIN=1 leaves out today's path).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import bench.bench_leaderboard as generator
from evalkit.results.leaderboard import build_leaderboard, leaderboard_json
from evalkit.results.run_index import INDEX_FILE

CONFIGS = int(os.environ.get("BENCH_CONFIGS", "85"))
ITEMS = int(os.environ.get("BENCH_ITEMS", "5000"))
TARGET_S = 3.0


def write_results(root: Path) -> tuple[int, int]:
    """The runs of CONFIGS configurations under ROOT; returns (runs, samples)."""
    generator.ITEMS = ITEMS
    n_runs = n_samples = 0
    for c in range(CONFIGS):
        model, prompt, tokens = f"model-{c // 4}", ("strict", "cot")[c % 2], (256, 1024)[c // 2 % 2]
        for d in generator.DATASETS[:2] if c % 10 == 9 else generator.DATASETS:
            status = "interrupted" if c == 0 and d == "medqa" else "complete"
            generator._write_run(root / model / f"{prompt}-{tokens}-{d}", d, model, prompt, tokens, c, status)
            n_runs, n_samples = n_runs + 1, n_samples + ITEMS
    return n_runs, n_samples


def timed(root: Path, **kw: object) -> tuple[float, str]:
    t0 = time.perf_counter()
    lb = build_leaderboard(root, n_resamples=10_000, **kw)  # type: ignore[arg-type]
    wall = time.perf_counter() - t0
    return wall, leaderboard_json(lb)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "results"
        t0 = time.perf_counter()
        n_runs, n_samples = write_results(root)
        print(f"wrote {n_runs} runs, {n_samples:,} samples in {time.perf_counter() - t0:.0f} s")
        cold, cold_json = timed(root)
        size = (root / INDEX_FILE).stat().st_size
        warm, warm_json = timed(root)
        print(f"index cold (read every run, write the index, {size / 1e6:.0f} MB): {cold:.2f} s")
        print(f"index warm (index fresh): {warm:.2f} s ({n_samples / warm:,.0f} samples/s; "
              f"target < {TARGET_S:g} s: {'met' if warm < TARGET_S else 'MISSED'})")
        assert warm_json == cold_json, "the warm index changed the figures"
        if os.environ.get("BENCH_SKIP_PLAIN") not in (None, "", "0"):
            return
        plain, plain_json = timed(root, index=False)
        print(f"today's path (--no-index, every samples.jsonl parsed): {plain:.2f} s; "
              f"warm index {plain / warm:.0f}x faster")
        assert plain_json == warm_json, "the index changed the figures"


if __name__ == "__main__":
    main()
