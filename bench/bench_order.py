"""Length-aware dispatch (--order-from): makespan / ideal in file order and longest-predicted first.

The server is bench/sim_server.py --mode sim in its own process: 64 slots, a fixed
time per output token, output lengths fixed per prompt (log-normal, 50 to 2,000
tokens) and reported in ``usage``. The workload is MedQA's 1,273 test items (or
as many synthetic ones when shared/ is absent). Four live runs of run_eval:

  file order         the first run, as evalkit dispatches without --order-from
  --order-from auto  the second run (another run name, same items and prompt): auto picks the
                     first run and takes its completion tokens as predictions
  noisy predictor    predictions = the first run's lengths times a factor drawn log-uniformly
                     in [0.5, 2] per item (a different checkpoint's lengths, roughly)
  20% unpredicted    the first run's lengths with a random 20% of items missing, placed by the
                     default rule (first)

Makespan is the run's wall time (run_eval's wall_s, loading and saving included)
and the server's busy span (first arrival to last answer); ideal is total work /
slots. Before the live runs the same schedules are computed offline (list
scheduling with the true lengths, no client), with more noise seeds and both
rules for unpredicted items, plus "last" for contrast.

Last, the client's CPU time per sample on a zero-time server (5,000 synthetic
items, a fresh process per run, orders rotated): file order, --order-from a run
whose lengths give file order again (the mechanism alone), and longest first.

Run: python -m bench.bench_order [--slots 64] [--token-s 0.001] [--concurrency 512]
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ServerProcess, medqa_or_synthetic, write_synthetic_items

from evalkit.data.datasets import load_dataset
from evalkit.run.order import (AUTO, UNKNOWN_FIRST, UNKNOWN_MEDIAN, dispatch_order, find_auto_source, item_key,
                           predicted_lengths)
from evalkit.data.prompts import load_template, render_prompt
from evalkit.core.records import GenerationParams, Item
from evalkit.run.runner import RunConfig, run_eval
from evalkit.core.store import read_json
from bench.sim_server import output_tokens

PARAMS = GenerationParams(max_new_tokens=2048, temperature=0.0)


def list_schedule(work: list[float], slots: int) -> float:
    """Makespan of jobs taken in the given order by the first free slot."""
    free = [0.0] * slots
    for w in work:
        heapq.heappush(free, heapq.heappop(free) + w)
    return max(free)


def noisy(lengths: dict, seed: int, uniform: bool = False) -> dict:
    """LENGTHS each times a random factor in [0.5, 2]: log-uniform (default) or uniform."""
    rng = random.Random(seed)
    return {k: v * (rng.uniform(0.5, 2.0) if uniform else 2 ** rng.uniform(-1.0, 1.0)) for k, v in lengths.items()}


def without(lengths: dict, share: float, seed: int) -> dict:
    """LENGTHS with a random SHARE of the keys dropped."""
    rng = random.Random(seed)
    return {k: v for k, v in lengths.items() if rng.random() >= share}


def write_predictions(run_dir: Path, items: list[Item], lengths: dict) -> Path:
    """A stand-in earlier run: one samples.jsonl line per predicted item, usage only."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "samples.jsonl", "w", encoding="utf-8") as fh:
        for it in items:
            tokens = lengths.get(item_key(it))
            if tokens is not None:
                fh.write(json.dumps({"dataset": it.dataset, "id": it.id, "index": 0,
                                     "usage": {"completion_tokens": round(tokens)}}) + "\n")
    return run_dir


def offline(items: list[Item], truth: dict, slots: int, token_s: float, ideal: float) -> None:
    def ratio(order: list[Item]) -> float:
        return list_schedule([truth[item_key(it)] * token_s for it in order], slots) / ideal

    print("\noffline list scheduling (true lengths, no client), makespan / ideal:")
    print(f"  {'file order':<44}{ratio(items):.3f}")
    print(f"  {'longest first, exact lengths':<44}{ratio(dispatch_order(items, truth)):.3f}")
    for uniform in (False, True):
        rs = [ratio(dispatch_order(items, noisy(truth, s, uniform))) for s in range(10)]
        name = f"noisy x[0.5, 2] {'uniform' if uniform else 'log-uniform'} (10 seeds)"
        print(f"  {name:<44}{statistics.mean(rs):.3f} (range {min(rs):.3f}-{max(rs):.3f})")
    for rule in (UNKNOWN_FIRST, UNKNOWN_MEDIAN, "last"):
        rs = []
        for s in range(10):
            known = without(truth, 0.2, s)
            if rule == "last":  # not a rule evalkit offers: what placing them silently last costs
                order = dispatch_order([it for it in items if item_key(it) in known], known) + \
                    [it for it in items if item_key(it) not in known]
            else:
                order = dispatch_order(items, known, rule)
            rs.append(ratio(order))
        name = f"20% unpredicted, placed {rule} (10 seeds)"
        print(f"  {name:<44}{statistics.mean(rs):.3f} (range {min(rs):.3f}-{max(rs):.3f})")


def live_run(sim: tuple, data: Path, results: Path, run_name: str, order_from: str | None,
             concurrency: int, prompt: str, n: int) -> tuple[float, float, dict]:
    with ServerProcess(*sim) as srv:
        config = RunConfig(eval_files=[str(data)], endpoint=srv.url, prompt=prompt, params=PARAMS,
                           concurrency=concurrency, results_dir=str(results), run_name=run_name,
                           order_from=order_from)
        result = run_eval(config)
        assert result.errors == 0 and result.requested == n, f"the {run_name} run was not clean"
        stats = srv.stats()
        assert stats["requests"] == n
    manifest = read_json(result.run_dir / "manifest.json")
    return result.wall_s, stats["last_end"] - stats["first_arrival"], manifest


def overhead_child(data: str, results: str, name: str, source: str, n: int, prompt: str) -> None:
    """One zero-time run in this (fresh) process; prints the client's CPU time per sample in us."""
    with ServerProcess("--mode", "sim", "--slots", "100000", "--token-s", "0") as srv:
        c0 = time.process_time()
        result = run_eval(RunConfig(eval_files=[data], endpoint=srv.url, prompt=prompt, params=PARAMS,
                                    concurrency=512, results_dir=results, run_name=name,
                                    order_from=None if source == "-" else source))
        cpu = time.process_time() - c0
    assert result.errors == 0 and result.requested == n
    print(cpu / n * 1e6)


def overhead(tmp: Path, n: int, prompt: str, rounds: int = 3) -> dict[str, list[float]]:
    """The client's CPU time per sample over N synthetic items on a zero-time server, each run in a
    fresh process (the server is another), the orders rotated from round to round so neither the
    machine's load nor a run's place in the round favours one. Three orders: file order (no
    --order-from); --order-from a run whose lengths fall in file order, so the order is file order
    and only the mechanism differs (planning included); and longest first by the true lengths."""
    data = write_synthetic_items(tmp / "overhead.jsonl", n)
    items = load_dataset(data).items
    template = load_template(prompt)
    truth = {item_key(it): output_tokens(render_prompt(template, it), median=300, sigma=1.0, lo=50, hi=2000)
             for it in items}
    same = write_predictions(tmp / "same-order", items, {item_key(it): n - i for i, it in enumerate(items)})
    lpt = write_predictions(tmp / "lpt", items, truth)
    orders = [("file order", "-"), ("--order-from, same order", str(same)), ("--order-from, longest first", str(lpt))]
    cpu_us: dict[str, list[float]] = {name: [] for name, _ in orders}
    for r in range(rounds):
        for k in [(r + j) % len(orders) for j in range(len(orders))]:
            name, source = orders[k]
            out = subprocess.run([sys.executable, "-m", "bench.bench_order", "--overhead-child", str(data),
                                  str(tmp / "ovh"),
                                  f"round{r}-order{k}", source, str(n), prompt], capture_output=True, text=True,
                                 check=True)
            cpu_us[name].append(float(out.stdout.strip().splitlines()[-1]))
    return cpu_us


def main() -> None:
    if sys.argv[1:2] == ["--overhead-child"]:
        data, results, name, source, n, prompt = sys.argv[2:8]
        overhead_child(data, results, name, source, int(n), prompt)
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--slots", type=int, default=64)
    ap.add_argument("--token-s", type=float, default=0.001, help="seconds per output token per slot")
    ap.add_argument("--median-tokens", type=float, default=300)
    ap.add_argument("--sigma", type=float, default=1.0)
    ap.add_argument("--concurrency", type=int, default=512, help="evalkit's requests in flight (its CLI default)")
    ap.add_argument("--prompt", default="strict")
    ap.add_argument("--noise-seed", type=int, default=0)
    ap.add_argument("--offline-only", action="store_true", help="skip the live runs")
    ap.add_argument("--overhead-items", type=int, default=5_000,
                    help="items of the zero-time runs that compare the client's CPU per sample (0: skip)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data, what = medqa_or_synthetic(Path(tmp))
        items = load_dataset(data).items
        template = load_template(args.prompt)
        truth = {item_key(it): output_tokens(render_prompt(template, it), median=args.median_tokens,
                                             sigma=args.sigma, lo=50, hi=2000) for it in items}
        ideal = sum(truth.values()) * args.token_s / args.slots
        print(f"workload: {len(items)} requests from {what}")
        print(f"server: {args.slots} slots, {args.token_s * 1e3:g} ms/token; output tokens mean "
              f"{statistics.mean(truth.values()):.0f}, median {statistics.median(truth.values()):.0f}, "
              f"max {max(truth.values())}; ideal (work / slots) {ideal:.2f} s")
        offline(items, truth, args.slots, args.token_s, ideal)

        # The cost of planning: reading the lengths and sorting, once per run, before the first request.
        big = [Item(id=f"x{i}", dataset="big", question="", options={}, answer_idx="A") for i in range(100_000)]
        big_pred = {item_key(it): random.Random(i).randint(50, 2000) for i, it in enumerate(big)}
        t0 = time.perf_counter()
        dispatch_order(big, big_pred)
        sort_s = time.perf_counter() - t0
        print(f"\nplanning cost: dispatch_order over 100,000 items {sort_s * 1e3:.0f} ms (once per run)")
        if args.offline_only:
            return

        results = Path(tmp) / "results"
        sim = ("--mode", "sim", "--slots", str(args.slots), "--token-s", str(args.token_s),
               "--median-tokens", str(args.median_tokens), "--sigma", str(args.sigma))
        rows = []
        wall, span, first = live_run(sim, data, results, "first", None, args.concurrency, args.prompt, len(items))
        rows.append(("file order (first run)", wall, span))
        first_dir = results / first["model"] / "first"
        t0 = time.perf_counter()
        measured = predicted_lengths(first_dir)
        read_s = time.perf_counter() - t0
        print(f"planning cost: predicted_lengths of the first run {read_s * 1e3:.0f} ms "
              f"({read_s / len(measured) * 1e6:.0f} us a sample, once per run)")
        assert measured == truth, "the server's usage should report the simulated lengths"
        chosen = find_auto_source(results, data_sha256=[d["sha256"] for d in first["data"]],
                                  prompt_sha256=first["prompt_sha256"], limit=None)
        assert chosen == first_dir, f"auto should choose the first run, chose {chosen}"

        wall, span, m = live_run(sim, data, results, "auto", AUTO, args.concurrency, args.prompt, len(items))
        assert m["order"]["source"] == str(first_dir) and m["fingerprint"] == first["fingerprint"]
        rows.append(("--order-from auto (the first run)", wall, span))

        noisy_dir = write_predictions(Path(tmp) / "noisy", items, noisy(measured, args.noise_seed))
        wall, span, _ = live_run(sim, data, results, "noisy", str(noisy_dir), args.concurrency, args.prompt,
                                 len(items))
        rows.append(("noisy predictor x[0.5, 2]", wall, span))

        part_dir = write_predictions(Path(tmp) / "part", items, without(measured, 0.2, args.noise_seed))
        wall, span, m = live_run(sim, data, results, "part", str(part_dir), args.concurrency, args.prompt,
                                 len(items))
        rows.append(("20% unpredicted, placed first", wall, span))
        rates = overhead(Path(tmp), args.overhead_items, args.prompt) if args.overhead_items else None

    print(f"\n{'live run_eval, ' + str(args.concurrency) + ' in flight':<36}{'wall s':>8}{'x ideal':>9}"
          f"{'server span s':>15}{'x ideal':>9}")
    for name, wall, span in rows:
        print(f"{name:<36}{wall:>8.2f}{wall / ideal:>9.3f}{span:>15.2f}{span / ideal:>9.3f}")
    print(f"\n--order-from / ideal = {rows[1][1] / ideal:.3f} (target <= 1.05); "
          f"file order / ideal = {rows[0][1] / ideal:.3f}")
    if rates:
        print(f"\nclient CPU time per sample on a zero-time server, {args.overhead_items:,} items, "
              "a fresh process per run, orders rotated (planning, loading and saving included):")
        for name, values in rates.items():
            print(f"  {name:<30}" + "  ".join(f"{v:>5.0f} us" for v in values) +
                  f"   median {statistics.median(values):.0f} us")

if __name__ == "__main__":
    main()
