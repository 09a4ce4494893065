"""Makespan of one workload on a simulated continuous-batching server: evalkit vs a batch barrier vs ideal.

The server (bench/sim_server.py --mode sim, its own process) has a fixed number
of generation slots and a fixed time per output token; each request's output
length is drawn from a long-tailed distribution (log-normal, 50 to 2,000 tokens,
like a reasoning model's) seeded by its prompt, so every dispatcher below gets
exactly the same work. The workload is MedQA's 1,273 test items (or as many
synthetic ones when shared/ is absent).

Figures printed:
  ideal           total work / slots: no slot ever idle (a lower bound no dispatcher reaches,
                  because the last long generations leave slots idle at the end)
  ideal in order  the same requests list-scheduled in file order with their lengths known:
                  the best any dispatcher can do that sends requests in file order
  evalkit         run_eval (continuous dispatch), wall time including loading and saving
  batch barrier   batches of 200 sent at once, each waiting for its slowest request
                  (how the MedReason harness dispatches)

Run: python -m bench.bench_runner [--slots 16] [--token-s 0.00025] [--batch 200]
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import tempfile
import time
from pathlib import Path

from bench.common import ServerProcess, medqa_or_synthetic

from evalkit.serving.client import ChatClient
from evalkit.data.datasets import load_dataset
from evalkit.data.prompts import load_template, render_prompt
from evalkit.core.records import GenerationParams
from evalkit.run.runner import RunConfig, run_eval
from bench.sim_server import output_tokens

PARAMS = GenerationParams(max_new_tokens=2048, temperature=0.0)


def list_schedule(lengths: list[float], slots: int) -> float:
    """Makespan of jobs taken in order by the first free slot."""
    free = [0.0] * slots
    for length in lengths:
        heapq.heappush(free, heapq.heappop(free) + length)
    return max(free)


async def barrier_run(url: str, prompts: list[str], batch: int) -> float:
    t0 = time.perf_counter()
    async with ChatClient(url, "sim-model", max_connections=batch) as client:
        for i in range(0, len(prompts), batch):
            await asyncio.gather(*(client.complete(p, PARAMS) for p in prompts[i:i + batch]))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--slots", type=int, default=16)
    ap.add_argument("--token-s", type=float, default=0.00025, help="seconds per output token per slot")
    ap.add_argument("--median-tokens", type=float, default=300)
    ap.add_argument("--sigma", type=float, default=1.0)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=512, help="evalkit's requests in flight (its CLI default)")
    ap.add_argument("--prompt", default="strict")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data, what = medqa_or_synthetic(Path(tmp))
        items = load_dataset(data).items
        template = load_template(args.prompt)
        prompts = [render_prompt(template, it) for it in items]
        tokens = [output_tokens(p, median=args.median_tokens, sigma=args.sigma, lo=50, hi=2000) for p in prompts]
        work = [t * args.token_s for t in tokens]
        ideal = sum(work) / args.slots
        in_order = list_schedule(work, args.slots)
        print(f"workload: {len(items)} requests from {what}")
        print(f"server: {args.slots} slots, {args.token_s * 1e3:g} ms/token; output tokens mean "
              f"{sum(tokens) / len(tokens):.0f}, median {sorted(tokens)[len(tokens) // 2]}, max {max(tokens)}")
        sim = ("--mode", "sim", "--slots", str(args.slots), "--token-s", str(args.token_s),
               "--median-tokens", str(args.median_tokens), "--sigma", str(args.sigma))

        with ServerProcess(*sim) as srv:
            config = RunConfig(eval_files=[str(data)], endpoint=srv.url, prompt=args.prompt, params=PARAMS,
                               concurrency=args.concurrency, results_dir=str(Path(tmp) / "results"))
            result = run_eval(config)
            evalkit_s = result.wall_s
            assert result.errors == 0 and result.requested == len(items), "the evalkit run was not clean"
            stats = srv.stats()
            assert stats["requests"] == len(items)
            served_s = stats["last_end"] - stats["first_arrival"]
        with ServerProcess(*sim) as srv:
            barrier_s = asyncio.run(barrier_run(srv.url, prompts, args.batch))

    rows = [("ideal (work / slots)", ideal), ("ideal in file order", in_order),
            ("evalkit: server busy span", served_s), ("evalkit run_eval", evalkit_s), (f"batch barrier ({args.batch})", barrier_s)]
    print(f"\n{'dispatch':<26}{'makespan s':>12}{'x ideal':>10}")
    for name, s in rows:
        print(f"{name:<26}{s:>12.2f}{s / ideal:>10.3f}")
    print(f"\nevalkit / ideal = {evalkit_s / ideal:.3f} (target <= 1.05); "
          f"evalkit / ideal-in-order = {evalkit_s / in_order:.3f}; "
          f"barrier / evalkit = {barrier_s / evalkit_s:.2f}x slower")


if __name__ == "__main__":
    main()
