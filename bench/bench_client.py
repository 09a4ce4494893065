"""Raw client throughput against a zero-latency loopback server: evalkit vs the openai SDK vs bare aiohttp.

The server (bench/sim_server.py --mode zero) runs in its own process(es) on a
bare asyncio protocol and answers at once, so the figures measure the clients.
A raw socket client measures the server's own ceiling first, to show the server
is not what limits the others. Every client sends the same MedQA-sized request
with the same number in flight, for a fixed time; the clients take turns over
a few rounds and each one's best round is printed.

Run: python -m bench.bench_client [--seconds 4] [--rounds 2] [--concurrency 256] [--server-procs 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Awaitable, Callable

import aiohttp
from bench.common import ServerProcess

from evalkit.serving.client import ChatClient, EndpointPool
from evalkit.core.records import GenerationParams

PROMPT = ("A 45-year-old man presents with three days of fever, productive cough and pleuritic chest pain. " * 8
          + "\nA. Option one\nB. Option two\nC. Option three\nD. Option four")
PARAMS = GenerationParams(max_new_tokens=16)
BODY = {"model": "sim-model", "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 16,
        "temperature": 0.0, "top_p": 1.0}


async def measure(send: Callable[[], Awaitable[object]], concurrency: int, seconds: float) -> float:
    """Requests per second over SECONDS with CONCURRENCY workers calling SEND (after a short warm-up)."""
    done = 0
    counting = False
    stop = False

    async def worker() -> None:
        nonlocal done
        while not stop:
            await send()
            if counting:
                done += 1

    tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
    await asyncio.sleep(min(1.0, seconds / 4))  # connections opened, caches warm
    counting = True
    t0 = time.perf_counter()
    await asyncio.sleep(seconds)
    counting = False
    elapsed = time.perf_counter() - t0
    stop = True
    await asyncio.gather(*tasks)
    return done / elapsed


async def raw_socket(url: str, concurrency: int, seconds: float) -> float:
    """A minimal keep-alive HTTP client on asyncio streams: the server's ceiling, not a usable client."""
    host, port = url.split("//")[1].split("/")[0].split(":")
    payload = json.dumps(BODY).encode()
    request = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(payload)}\r\n\r\n").encode() + payload
    conns = [await asyncio.open_connection(host, int(port)) for _ in range(concurrency)]
    free = asyncio.Queue()
    for c in conns:
        free.put_nowait(c)

    async def send() -> None:
        reader, writer = await free.get()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        free.put_nowait((reader, writer))

    try:
        return await measure(send, concurrency, seconds)
    finally:
        for _, w in conns:
            w.close()


async def bare_aiohttp(url: str, concurrency: int, seconds: float) -> float:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        async def send() -> None:
            async with session.post(url + "/chat/completions", json=BODY) as resp:
                json.loads(await resp.read())

        return await measure(send, concurrency, seconds)


async def evalkit_client(url: str, concurrency: int, seconds: float) -> float:
    async with ChatClient(url, "sim-model", max_connections=concurrency) as client:
        return await measure(lambda: client.complete(PROMPT, PARAMS), concurrency, seconds)


async def evalkit_pool(url: str, concurrency: int, seconds: float) -> float:
    async with EndpointPool([url], "sim-model", max_connections=concurrency) as pool:
        return await measure(lambda: pool.complete(PROMPT, PARAMS), concurrency, seconds)


async def openai_client(url: str, concurrency: int, seconds: float, *, aiohttp_transport: bool = False) -> float:
    import openai

    http_client = openai.DefaultAioHttpClient() if aiohttp_transport else None
    client = openai.AsyncOpenAI(base_url=url, api_key="bench", max_retries=0, http_client=http_client)
    try:
        async def send() -> None:
            await client.chat.completions.create(model="sim-model", messages=BODY["messages"], max_tokens=16,
                                                 temperature=0.0, top_p=1.0)

        return await measure(send, concurrency, seconds)
    finally:
        await client.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=4.0, help="measuring time per client and round")
    ap.add_argument("--rounds", type=int, default=2, help="each client's best round is reported")
    ap.add_argument("--concurrency", type=int, default=256)
    ap.add_argument("--server-procs", type=int, default=1, help="server processes sharing the port")
    args = ap.parse_args()
    clients = [
        ("server ceiling (raw socket client)", raw_socket),
        ("evalkit EndpointPool (runner path)", evalkit_pool),
        ("evalkit ChatClient", evalkit_client),
        ("bare aiohttp", bare_aiohttp),
        ("openai AsyncOpenAI (default httpx)", openai_client),
        ("openai AsyncOpenAI + DefaultAioHttpClient",
         lambda u, c, s: openai_client(u, c, s, aiohttp_transport=True)),
    ]
    rates: dict[str, float] = {}
    with ServerProcess("--mode", "zero", "--procs", str(args.server_procs)) as srv:
        print(f"zero-latency server: {args.server_procs} process(es); {args.concurrency} in flight; "
              f"best of {args.rounds} rounds of {args.seconds:g}s per client")
        # Rounds interleave the clients, so a slow moment of the machine does not hit one client only.
        for _ in range(args.rounds):
            for name, fn in clients:
                rate = asyncio.run(fn(srv.url, args.concurrency, args.seconds))
                rates[name] = max(rates.get(name, 0.0), rate)
        for name, _ in clients:
            print(f"  {name:<44}{rates[name]:>9.0f} req/s")
    ours = rates["evalkit EndpointPool (runner path)"]
    default = rates["openai AsyncOpenAI (default httpx)"]
    print(f"\nevalkit = {ours:.0f} req/s (target >= 2000); {ours / default:.1f}x openai default client (target >= 5x); "
          f"{ours / rates['openai AsyncOpenAI + DefaultAioHttpClient']:.1f}x openai with aiohttp; "
          f"server ceiling {rates['server ceiling (raw socket client)'] / ours:.1f}x evalkit")


if __name__ == "__main__":
    main()
