"""Client and runner throughput of this checkout against an earlier commit, in the same run.

Exports BASELINE (default 86f1853, main before this round's scoring redesign) with
``git archive`` into a temporary folder, starts one zero-latency loopback server
(bench/sim_server.py --mode zero), and measures both versions in turns, each in a
fresh process (bench/version_probe.py with PYTHONPATH set to its tree):

  client  EndpointPool.complete requests/s with 256 in flight (the runner's request path)
  runner  samples/s of a whole run_eval over ITEMS synthetic MedQA-shaped items
          (load, prompt, request, extract and score, save), 256 in flight

Each figure is the best of ROUNDS turns, and the client process's CPU time per request
or sample (the least of the turns: the cost that a zero-latency server exposes); printed are the ratio new / baseline of the
bests and the range and median of the per-turn ratios (a turn measures both versions
back to back, so a slow moment of a shared machine hits both). The bar: not lower than
the baseline, a ratio of at least 1.0 within that noise.

Run: python -m bench.bench_versions [--baseline 86f1853] [--rounds 3] [--seconds 3] [--items 3000]
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

from bench.common import ROOT, ServerProcess, write_synthetic_items

PROBE = Path(__file__).resolve().parent / "version_probe.py"


def export_tree(rev: str, dest: Path) -> Path:
    """The files of REV (git archive) under DEST."""
    data = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(dest)
    return dest


def probe(tree: Path, *args: str) -> tuple[float, float]:
    """(rate, client CPU microseconds per request or sample) of one probe run in TREE."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, str(PROBE), *args], cwd=tree, env=env, capture_output=True, text=True,
                         timeout=600)
    if out.returncode != 0:
        raise SystemExit(f"probe failed in {tree}:\n{out.stderr[-2000:]}")
    line = json.loads(out.stdout.strip().splitlines()[-1])
    if not line["evalkit"].startswith(str(tree)):
        raise SystemExit(f"probe in {tree} imported {line['evalkit']}, not that tree's evalkit")
    return line["rate"], line["cpu_us"]


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
        rates: dict[tuple[str, str], list[float]] = {}
        cpus: dict[tuple[str, str], list[float]] = {}
        with ServerProcess("--mode", "zero") as server:
            print(f"baseline {args.baseline} vs this checkout; zero-latency server; {args.concurrency} in flight; "
                  f"best of {args.rounds} turns")
            for turn in range(args.rounds):
                order = list(trees.items()) if turn % 2 == 0 else list(trees.items())[::-1]
                for name, tree in order:
                    rate, cpu = probe(tree, "client", server.url, "--seconds", str(args.seconds),
                                      "--concurrency", str(args.concurrency))
                    rates.setdefault((name, "client"), []).append(rate)
                    cpus.setdefault((name, "client"), []).append(cpu)
                    results = tmp / f"results-{name.replace(' ', '-')}-{turn}"
                    rate, cpu = probe(tree, "runner", server.url, "--items", str(items), "--results", str(results),
                                      "--concurrency", str(args.concurrency))
                    rates.setdefault((name, "runner"), []).append(rate)
                    cpus.setdefault((name, "runner"), []).append(cpu)
        best = {key: max(values) for key, values in rates.items()}
        least_cpu = {key: min(values) for key, values in cpus.items()}
        for what, unit in (("client", "req/s"), ("runner", "samples/s")):
            base, new = best[("baseline", what)], best[("this checkout", what)]
            turns = sorted(n / b for b, n in zip(rates[("baseline", what)], rates[("this checkout", what)]))
            print(f"  {what:<7} baseline {base:>8,.0f} {unit:<10} this checkout {new:>8,.0f} {unit:<10} "
                  f"ratio of the bests {new / base:.2f}; per turn {turns[0]:.2f}-{turns[-1]:.2f}, "
                  f"median {turns[len(turns) // 2]:.2f}")
            base_cpu, new_cpu = least_cpu[("baseline", what)], least_cpu[("this checkout", what)]
            print(f"  {'':<7} client CPU per {'request' if what == 'client' else 'sample'}: "
                  f"baseline {base_cpu:.0f} us, this checkout {new_cpu:.0f} us (least of the turns)")


if __name__ == "__main__":
    main()
