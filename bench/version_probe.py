"""One measurement of the evalkit found on PYTHONPATH, for bench/bench_versions.py.

Self-contained on purpose (imports nothing from bench/, whose helpers put this
checkout first on sys.path): the version under test is whichever evalkit
PYTHONPATH points at. Prints one JSON line.

    PYTHONPATH=TREE python bench/version_probe.py client URL --seconds 3 --concurrency 256
    PYTHONPATH=TREE python bench/version_probe.py runner URL --items FILE --results DIR
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import evalkit

try:
    from evalkit.core.records import GenerationParams
    from evalkit.run.runner import RunConfig, run_eval
    from evalkit.serving.client import EndpointPool
except ImportError:  # a tree from before issue 30's stage packages (a baseline such as 82bbcec)
    from evalkit.client import EndpointPool  # type: ignore[no-redef]
    from evalkit.records import GenerationParams  # type: ignore[no-redef]
    from evalkit.runner import RunConfig, run_eval  # type: ignore[no-redef]

PROMPT = ("A 45-year-old man presents with three days of fever, productive cough and pleuritic chest pain. " * 8
          + "\nA. Option one\nB. Option two\nC. Option three\nD. Option four")


async def client_rate(url: str, concurrency: int, seconds: float) -> tuple[float, float]:
    """Requests/s of EndpointPool.complete (the runner's path) with CONCURRENCY in flight, and
    this process's CPU microseconds per request."""
    params = GenerationParams(max_new_tokens=16, temperature=0.0)
    done, counting, stop = 0, False, False
    async with EndpointPool([url], "sim-model", max_connections=concurrency) as pool:
        async def worker() -> None:
            nonlocal done
            while not stop:
                await pool.complete(PROMPT, params)
                if counting:
                    done += 1

        tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
        await asyncio.sleep(0.5)  # warm-up: connections opened
        counting, start, cpu = True, time.perf_counter(), time.process_time()
        await asyncio.sleep(seconds)
        counting, elapsed, cpu = False, time.perf_counter() - start, time.process_time() - cpu
        stop = True
        await asyncio.gather(*tasks)
    return done / elapsed, 1e6 * cpu / done


def runner_rate(url: str, items: str, results: str, concurrency: int) -> tuple[float, float]:
    """Samples/s of a whole run_eval (load, prompt, request, score, save) over ITEMS, after an
    untimed run of 100 of them (first-use imports and connection set-up are not throughput)."""
    params = GenerationParams(max_new_tokens=16, temperature=0.0)
    run_eval(RunConfig(eval_files=[items], endpoint=url, model="sim-model", concurrency=concurrency, limit=100,
                       results_dir=results + "-warm-up", params=params))
    config = RunConfig(eval_files=[items], endpoint=url, model="sim-model", concurrency=concurrency,
                       results_dir=results, params=params)
    start, cpu = time.perf_counter(), time.process_time()
    result = run_eval(config)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    return result.total / elapsed, 1e6 * cpu / result.total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["client", "runner"])
    ap.add_argument("url")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--concurrency", type=int, default=256)
    ap.add_argument("--items")
    ap.add_argument("--results")
    args = ap.parse_args()
    if args.what == "client":
        rate, cpu_us = asyncio.run(client_rate(args.url, args.concurrency, args.seconds))
    else:
        rate, cpu_us = runner_rate(args.url, args.items, args.results, args.concurrency)
    print(json.dumps({"rate": rate, "cpu_us": cpu_us, "evalkit": evalkit.__file__}))


if __name__ == "__main__":
    main()
