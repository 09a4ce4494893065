"""Client and runner throughput of this checkout against an earlier commit, in the same run.

Exports BASELINE (default 86f1853, main before this round's scoring redesign) with
``git archive`` into a temporary folder, starts one zero-latency loopback server
(bench/sim_server.py --mode zero), and measures both versions in turns, each in a
fresh process (bench/version_probe.py with PYTHONPATH set to its tree):

  client  EndpointPool.complete requests/s with 256 in flight (the runner's request path)
  runner  samples/s of a whole run_eval over ITEMS synthetic MedQA-shaped items
          (load, prompt, request, extract and score, save), 256 in flight

Each figure is the best of ROUNDS turns; the ratio new / baseline is printed
(the bar: not lower than the baseline, i.e. a ratio of at least 1.0 within noise).

Run: python bench/bench_versions.py [--baseline 86f1853] [--rounds 3] [--seconds 3] [--items 3000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

from common import ROOT, ServerProcess, write_synthetic_items

PROBE = Path(__file__).resolve().parent / "version_probe.py"


def export_tree(rev: str, dest: Path) -> Path:
    """The files of REV (git archive) under DEST."""
    data = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(dest)
    return dest


def probe(tree: Path, *args: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, str(PROBE), *args], cwd=tree, env=env, capture_output=True, text=True,
                         timeout=600)
    if out.returncode != 0:
        raise SystemExit(f"probe failed in {tree}:\n{out.stderr[-2000:]}")
    line = json.loads(out.stdout.strip().splitlines()[-1])
    if not line["evalkit"].startswith(str(tree)):
        raise SystemExit(f"probe in {tree} imported {line['evalkit']}, not that tree's evalkit")
    return line["rate"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="86f1853")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--items", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=256)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        trees = {"baseline": export_tree(args.baseline, tmp / "baseline"), "this checkout": ROOT}
        items = write_synthetic_items(tmp / "items.jsonl", args.items)
        best: dict[tuple[str, str], float] = {}
        with ServerProcess("--mode", "zero") as server:
            print(f"baseline {args.baseline} vs this checkout; zero-latency server; {args.concurrency} in flight; "
                  f"best of {args.rounds} turns")
            for turn in range(args.rounds):
                order = list(trees.items()) if turn % 2 == 0 else list(trees.items())[::-1]
                for name, tree in order:
                    rate = probe(tree, "client", server.url, "--seconds", str(args.seconds),
                                 "--concurrency", str(args.concurrency))
                    best[(name, "client")] = max(best.get((name, "client"), 0.0), rate)
                    results = tmp / f"results-{name.replace(' ', '-')}-{turn}"
                    rate = probe(tree, "runner", server.url, "--items", str(items), "--results", str(results),
                                 "--concurrency", str(args.concurrency))
                    best[(name, "runner")] = max(best.get((name, "runner"), 0.0), rate)
        for what, unit in (("client", "req/s"), ("runner", "samples/s")):
            base, new = best[("baseline", what)], best[("this checkout", what)]
            print(f"  {what:<7} baseline {base:>8,.0f} {unit:<10} this checkout {new:>8,.0f} {unit:<10} "
                  f"ratio {new / base:.2f}")


if __name__ == "__main__":
    main()
