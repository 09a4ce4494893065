"""Rating-study save latency: simulated raters submitting at once to `evalkit study serve`.

A study of --items synthetic answers (Med-PaLM 2's 12 physician axes, K = 3) is created for --raters
physician raters; the server runs in its own process; every rater is a client that, for --seconds,
opens its next item (the page gives the form token and a fresh submit key), picks random choices,
submits (asking for the JSON reply) and waits --think seconds on average (0: not at all), going round
its list again when done (a later submit changes the rating). Raters start at random moments within
--spread seconds (0: all in the same instant). Each save's latency is timed from the POST to the reply
saying saved. At the end the study file is read: every rating reported saved must be there, once, and
be the latest one its rater submitted.

Run from the repository root: python -m bench.bench_study [--raters 50] [--seconds 60] [--items 500] [--think 1] [--spread S]
(--quick: 10 s)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT

import aiohttp
import numpy as np

from evalkit import api
from evalkit.web.study.db import StudyDB

_FIELD = re.compile(r'name="(csrf|submit_key|opened_at)" value="([^"]+)"')
_AXIS = re.compile(r'name="axis(\d+)" value="(\d+)"')


def make_study(tmp: Path, raters: int, items: int) -> tuple[list[str], Path]:
    run = tmp / "runs" / "bench-run"
    run.mkdir(parents=True)
    with open(run / "samples.jsonl", "w") as f:
        for i in range(items):
            f.write(json.dumps({"id": f"q{i}", "dataset": "bench", "question": f"Question {i}?", "index": 0,
                                "output": f"Answer {i}: " + "rest and fluids; see a doctor if it lasts. " * 8}) + "\n")
    made = api.study.create("bench", [run], studies_dir=str(tmp / "st"), physicians=raters, items=items,
                            raters_per_answer=3, seed=0)
    return [inv.token for inv in made.invitations], made.path


async def rater(session: aiohttp.ClientSession, base: str, token: str, n_tasks: int, until: float,
                rng: random.Random, latencies: list[float], reported: dict, failures: list[str],
                think: float, spread: float) -> None:
    k = 1
    await asyncio.sleep(rng.uniform(0, spread))  # raters do not click in lockstep
    while time.monotonic() < until:
        async with session.get(f"{base}/r/{token}/item/{k}") as r:
            page = await r.text()
        form = dict(_FIELD.findall(page))
        choices: dict[str, list[str]] = {}
        for axis, value in _AXIS.findall(page):
            choices.setdefault(f"axis{axis}", []).append(value)
        form.update({a: rng.choice(v) for a, v in choices.items()})
        t0 = time.perf_counter()
        try:
            async with session.post(f"{base}/r/{token}/item/{k}", data=form,
                                    headers={"accept": "application/json"}) as r:
                reply = await r.json()
        except aiohttp.ClientError as exc:
            failures.append(str(exc))
            continue
        if reply.get("saved"):
            latencies.append(time.perf_counter() - t0)
            reported[(token, k)] = form["submit_key"]
        else:
            failures.append(json.dumps(reply))
        k = k % n_tasks + 1
        if think:
            await asyncio.sleep(rng.uniform(0.5, 1.5) * think)


async def drive(base: str, tokens: list[str], tasks: dict[str, int], seconds: float,
                think: float, spread: float) -> tuple[list, dict, list]:
    latencies: list[float] = []
    reported: dict = {}
    failures: list[str] = []
    until = time.monotonic() + seconds
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn) as session:
        await asyncio.gather(*(rater(session, base, t, tasks[t], until, random.Random(i), latencies, reported,
                                     failures, think, spread) for i, t in enumerate(tokens)))
    return latencies, reported, failures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--raters", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--items", type=int, default=500)
    ap.add_argument("--think", type=float, default=1.0,
                    help="mean seconds a rater waits between submits (0: submit again at once, the server saturated)")
    ap.add_argument("--spread", type=float, default=None,
                    help="each rater starts at a random moment within this many seconds (default: --think; 0: all at once)")
    ap.add_argument("--quick", action="store_true", help="10 seconds")
    args = ap.parse_args()
    seconds = 10.0 if args.quick else args.seconds
    with tempfile.TemporaryDirectory() as tmp:
        tokens, path = make_study(Path(tmp), args.raters, args.items)
        db = StudyDB(path)
        hashes = {r["token_hash"]: r["id"] for r in db.raters()}
        from evalkit.web.security import hash_token
        tasks = {t: db.task_count(hashes[hash_token(t)]) for t in tokens}
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        server = subprocess.Popen([sys.executable, "-m", "evalkit", "study", "serve", "bench", "--port", "0",
                                   "--studies-dir", str(Path(tmp) / "st")], env=env, text=True,
                                  stdout=subprocess.PIPE, start_new_session=True)
        try:
            line = server.stdout.readline()
            base = line.split(" served at ")[1].split()[0]
            latencies, reported, failures = asyncio.run(drive(base, tokens, tasks, seconds, args.think,
                                                              args.think if args.spread is None else args.spread))
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait()
        ids = {t: hashes[hash_token(t)] for t in tokens}
        lost = [key for key, submit in reported.items()
                if (db.rating(db.task_at(ids[key[0]], key[1] - 1).id) or {}).get("submit_key") != submit]
        rows = db.rating_rows()
        per_task = len({(r["rater_id"], r["position"]) for r in rows})
        lat = np.array(latencies) * 1000
        spread = args.think if args.spread is None else args.spread
        print(f"{args.raters} raters (think {args.think:g} s, start spread {spread:g} s), {seconds:.0f} s, {len(latencies)} saves ({len(latencies) / seconds:.0f}/s), "
              f"{len(failures)} refused or failed")
        print(f"save latency: p50 {np.percentile(lat, 50):.1f} ms, p99 {np.percentile(lat, 99):.1f} ms, "
              f"max {lat.max():.1f} ms (target p99 < 100 ms)")
        print(f"ratings in the study file: {len(rows)} (one per task: {per_task}); reported saved and not the "
              f"latest there: {len(lost)}")
        if lost or failures or len(rows) != per_task:
            sys.exit(1)


if __name__ == "__main__":
    main()
