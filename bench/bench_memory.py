"""Peak memory of a run against the number of items: 10,000 vs 100,000 (target: 100,000 under 300 MB RSS).

Each run is a fresh process evaluating N synthetic MedQA-sized items against the
simulator (its own process) in zero-time mode with reasoning-length outputs
(log-normal, median 300 tokens, about 2 kB of text each), so the samples
file grows by about 4.5 kB a sample. Printed: the runner's peak RSS
(ru_maxrss), the RSS after imports, the peak reached while loading and
validating the data (evalkit.data.datasets), and the RSS at the start and the
highest during dispatch, to separate what the items cost from what the run adds.

Run: python -m bench.bench_memory [--items 10000 100000] [--concurrency 512]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ServerProcess, write_synthetic_items


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args: argparse.Namespace) -> None:
    from evalkit.core.records import GenerationParams
    from evalkit.run.runner import RunConfig, run_eval

    marks = {"after_import": rss_mb(), "dispatch_max": 0.0}
    count = 0

    def on_start(total: int, already: int) -> None:
        # Data loaded and validated, resume index built: nothing requested yet.
        marks.update(load_peak=peak_mb(), dispatch_start=rss_mb())

    def on_sample(_record) -> None:
        nonlocal count
        count += 1
        if count % 1000 == 0:
            marks["dispatch_max"] = max(marks["dispatch_max"], rss_mb())

    config = RunConfig(eval_files=[args.data], endpoint=args.url, concurrency=args.concurrency,
                       params=GenerationParams(max_new_tokens=2048), results_dir=args.results)
    t0 = time.perf_counter()
    result = run_eval(config, on_start=on_start, on_sample=on_sample)
    wall = time.perf_counter() - t0
    assert result.errors == 0 and result.requested == result.total, "the run was not clean"
    samples = Path(result.run_dir) / "samples.jsonl"
    print(json.dumps({"items": result.total, "wall_s": wall, "rate": result.total / wall, "peak_rss_mb": peak_mb(),
                      "samples_mb": samples.stat().st_size / 2**20, **marks}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--concurrency", type=int, default=512)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--results", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp, \
            ServerProcess("--mode", "sim", "--slots", "100000", "--token-s", "0") as srv:
        for n in args.items:
            data = write_synthetic_items(Path(tmp) / f"items-{n}.jsonl", n)
            out = subprocess.run([sys.executable, "-m", "bench.bench_memory", "--child", "--data", str(data),
                                  "--url", srv.url,
                                  "--results", str(Path(tmp) / f"results-{n}"), "--concurrency",
                                  str(args.concurrency)], capture_output=True, text=True, timeout=600)
            if out.returncode != 0:
                sys.exit(f"run of {n} items failed:\n{out.stderr}")
            row = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"{n:>8} items: peak RSS {row['peak_rss_mb']:4.0f} MB | imports {row['after_import']:.0f} MB, "
                  f"peak while loading data {row['load_peak']:.0f} MB, dispatch {row['dispatch_start']:.0f} -> "
                  f"{row['dispatch_max']:.0f} MB | samples.jsonl {row['samples_mb']:.0f} MB | "
                  f"{row['wall_s']:.1f}s ({row['rate']:.0f} samples/s)", flush=True)
    if len(rows) > 1:
        a, b = rows[0], rows[-1]
        per_item = lambda key: (b[key] - a[key]) / (b["items"] - a["items"]) * 1024  # noqa: E731
        grow_a, grow_b = (r["dispatch_max"] - r["dispatch_start"] for r in (a, b))
        print(f"\nper item: samples file {per_item('samples_mb'):.2f} kB, peak RSS {per_item('peak_rss_mb'):.2f} kB, "
              f"of which loading the data {per_item('load_peak'):.2f} kB; growth during dispatch "
              f"{grow_a:.0f} MB -> {grow_b:.0f} MB ({(grow_b - grow_a) / (b['items'] - a['items']) * 1024:.2f} kB "
              f"per item)\n{b['items']} items: peak {b['peak_rss_mb']:.0f} MB (target < 300 MB)")


if __name__ == "__main__":
    main()
