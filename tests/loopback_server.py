"""A loopback OpenAI-compatible test double that misbehaves on purpose.

For fault injection and client benchmarks only, never as a model a user runs.
It answers chat completions with "The answer is X." where X is chosen from the
prompt's option letters by a hash of the prompt (deterministic), after an optional
delay; a seeded fraction of requests get a 500, a 429, a 400, a stall past the
client's timeout, or a dropped connection.

With temperature > 0 the answer varies like a sampled one: a hash of (prompt,
seed, choice index) picks the usual letter 60% of the time, no letter 10%, and
any letter otherwise (with no seed in the request, a random draw replaces the hash).
``--ignore-n`` answers one choice whatever ``n`` asks (like llama.cpp);
``--reject-n`` answers 400 to ``n`` > 1. ``/stats`` counts requests, faults, and
requests per prompt (by hash) and keeps their arrival times.

``--malformed SHAPE`` (repeatable) answers 200 with an odd body for 1 item in
``--malformed-every`` (20) per shape, the same items every time (by a hash of the
prompt, see ``malformed_shape``): ``parts`` (content as a list of text parts,
usable), ``number`` (content 42), ``null-choice`` (choices [null]),
``string-choice`` (choices ["hello"]), ``usage-string`` (usage "lots", answer
usable), ``surrogate`` (a lone \\ud800 in the text, answer usable), ``not-json``
(an HTML page), ``huge`` (a valid completion padded to ``--huge-mb`` MB).
``--chunked`` streams those bodies without a Content-Length. ``--require-key K`` answers 401 echoing the key it got when it is not K;
with ``--key-on-models``, /v1/models wants the key too (a server started with an API key).

Run: python tests/loopback_server.py --port N [--fail-500 0.1] [--fail-429 0.1] [--fail-400 0.1]
     [--stall 0.05 --stall-s 30] [--drop 0.05] [--delay-s 0] [--seed 0]
     [--model ID] [--ignore-n | --reject-n] [--malformed SHAPE ... --malformed-every 20 --huge-mb 20]
     [--require-key K [--key-on-models]] [--record BODIES.jsonl]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import re
import time

from aiohttp import web

MODEL = "loopback-model"
_LETTERS = re.compile(r"^([A-J])\. ", re.M)


def choose_letter(prompt: str) -> str:
    """The letter this double answers for PROMPT: stable across runs and processes."""
    letters = _LETTERS.findall(prompt) or ["A"]
    h = int(hashlib.sha256(prompt.encode()).hexdigest(), 16)
    return letters[h % len(letters)]


MALFORMED_SHAPES = ("parts", "number", "null-choice", "string-choice", "usage-string", "surrogate", "not-json",
                    "huge")
USABLE_SHAPES = frozenset({"parts", "usage-string", "surrogate"})  # the answer can still be read


def malformed_shape(prompt: str, shapes: list[str], every: int = 20) -> str | None:
    """Which malformed shape (if any) this double sends for PROMPT: shape i for the items whose
    hash falls in bucket i of EVERY, so each shape hits 1 item in EVERY, the same ones every run."""
    bucket = int(hashlib.sha256(b"malformed:" + prompt.encode()).hexdigest(), 16) % every
    return shapes[bucket] if bucket < len(shapes) else None


def malformed_body(shape: str, text: str, model: str, huge_mb: float) -> bytes:
    """The 200 body of SHAPE for an answer TEXT."""
    choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
    usage: object = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    choices: list = [choice]
    if shape == "parts":
        half = len(text) // 2
        choice["message"]["content"] = [{"type": "text", "text": text[:half]},
                                        {"type": "image_url", "image_url": {"url": "data:,"}},
                                        {"type": "text", "text": text[half:]}]
    elif shape == "number":
        choice["message"]["content"] = 42
    elif shape == "null-choice":
        choices = [None]
    elif shape == "string-choice":
        choices = ["hello"]
    elif shape == "usage-string":
        usage = "lots"
    elif shape == "surrogate":
        choice["message"]["content"] = text + " \ud800"
    elif shape == "not-json":
        return b"<html><body>502 upstream went away</body></html>"
    elif shape == "huge":
        choice["message"]["content"] = text + " " + "x" * int(huge_mb * (1 << 20))
    body = {"id": "cmpl", "object": "chat.completion", "model": model, "choices": choices, "usage": usage}
    return json.dumps(body).encode()  # ensure_ascii: a lone surrogate goes out as the escape \ud800


def prompt_key(prompt: str) -> str:
    """How /stats names a prompt: a short hash."""
    return hashlib.sha256(prompt.encode()).hexdigest()[:16]


def sampled_text(prompt: str, seed: int | None, choice: int, rng: random.Random) -> str:
    """A sampled answer: usually the prompt's letter, sometimes another or none."""
    if seed is None:
        u, v = rng.random(), rng.randrange(1 << 30)
    else:
        h = hashlib.sha256(f"{seed}:{choice}:{prompt}".encode()).digest()
        u, v = int.from_bytes(h[:4], "big") / 2**32, int.from_bytes(h[4:8], "big")
    if u < 0.6:
        return f"The answer is {choose_letter(prompt)}."
    if u < 0.7:
        return "I cannot decide between these."
    letters = _LETTERS.findall(prompt) or ["A"]
    return f"Reasoning at random. The answer is {letters[v % len(letters)]}."


def completion_body(texts: list[str], model: str, prompt_tokens: int, tokens_each: int) -> dict:
    """A chat-completions response: one choice per text, stopped normally."""
    completion_tokens = tokens_each * len(texts)
    return {
        "id": "cmpl", "object": "chat.completion", "model": model,
        "choices": [{"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                    for i, text in enumerate(texts)],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


def double_app(model: str, chat, stats: dict, *, models_key: str | None = None) -> web.Application:
    """The routes every double serves: /v1/models naming MODEL, CHAT at /v1/chat/completions, STATS at /stats.
    With MODELS_KEY, /v1/models answers 401 to a request without that key (as llama-server --api-key does)."""
    async def models(request: web.Request) -> web.Response:
        if models_key is not None and request.headers.get("Authorization", "") != f"Bearer {models_key}":
            return web.json_response({"error": {"message": "Invalid API Key", "type": "authentication_error"}},
                                     status=401)
        return web.json_response({"object": "list", "data": [{"id": model, "object": "model"}]})

    async def get_stats(_: web.Request) -> web.Response:
        return web.json_response(stats)

    app = web.Application()
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/stats", get_stats)
    return app


def make_app(args: argparse.Namespace) -> web.Application:
    rng = random.Random(args.seed)
    stats = {"requests": 0, "ok": 0, "500": 0, "429": 0, "400": 0, "stall": 0, "drop": 0, "prompts": {}, "times": [],
             "n": [], "malformed": {}, "401": 0}
    model = args.model

    async def chat(request: web.Request) -> web.StreamResponse:
        stats["requests"] += 1
        stats["times"].append(time.monotonic())
        if args.require_key is not None:
            given = request.headers.get("Authorization", "").removeprefix("Bearer ")
            if given != args.require_key:
                stats["401"] += 1
                return web.json_response({"error": {"message": f"invalid api key {given!r}"}}, status=401)
        body = await request.json()
        if args.record:
            with open(args.record, "a", encoding="utf-8") as fh:  # each request body, one JSON line
                fh.write(json.dumps(body) + "\n")
        prompt = body["messages"][-1]["content"]
        key = prompt_key(prompt)
        stats["prompts"][key] = stats["prompts"].get(key, 0) + 1
        n = int(body.get("n", 1))
        stats["n"].append(n)
        if n > 1 and args.reject_n:
            return web.json_response({"error": {"message": "n > 1 is not supported"}}, status=400)
        r = rng.random()
        edge = 0.0
        for kind in ("500", "429", "400", "stall", "drop"):
            edge += getattr(args, "fail_" + kind if kind in ("500", "429", "400") else kind)
            if r < edge:
                stats[kind] += 1
                if kind == "400":
                    return web.json_response({"error": {"message": "injected bad request"}}, status=400)
                if kind == "500":
                    return web.json_response({"error": {"message": "injected failure"}}, status=500)
                if kind == "429":
                    return web.json_response({"error": {"message": "slow down"}}, status=429)
                if kind == "stall":
                    await asyncio.sleep(args.stall_s)
                    break
                if kind == "drop":
                    request.transport.close()
                    return web.Response()
        if args.delay_s:
            await asyncio.sleep(args.delay_s)
        if args.ignore_n:
            n = 1
        if float(body.get("temperature", 0)) > 0:
            texts = [sampled_text(prompt, body.get("seed"), i, rng) for i in range(n)]
        else:
            texts = [f"The answer is {choose_letter(prompt)}."] * n
        shape = malformed_shape(prompt, args.malformed, args.malformed_every) if args.malformed else None
        if shape is not None:
            stats["malformed"][shape] = stats["malformed"].get(shape, 0) + 1
            payload = malformed_body(shape, texts[0], body.get("model", model), args.huge_mb)
            ctype = "text/html" if shape == "not-json" else "application/json"
            if not args.chunked:
                return web.Response(body=payload, content_type=ctype)
            # No Content-Length: the client only learns the size as the chunks arrive.
            stream = web.StreamResponse(headers={"Content-Type": ctype})
            stream.enable_chunked_encoding()
            await stream.prepare(request)
            try:
                for start in range(0, len(payload), 1 << 16):
                    await stream.write(payload[start:start + (1 << 16)])
                await stream.write_eof()
            except (ConnectionError, RuntimeError):
                pass  # the client hung up (over its cap): nothing more to send
            return stream
        stats["ok"] += 1
        return web.json_response(completion_body(texts, body.get("model", model), len(prompt) // 4, 5))

    return double_app(model, chat, stats, models_key=args.require_key if args.key_on_models else None)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--fail-500", type=float, default=0.0)
    p.add_argument("--fail-429", type=float, default=0.0)
    p.add_argument("--fail-400", type=float, default=0.0)
    p.add_argument("--stall", type=float, default=0.0)
    p.add_argument("--stall-s", type=float, default=30.0)
    p.add_argument("--drop", type=float, default=0.0)
    p.add_argument("--delay-s", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default=MODEL)
    p.add_argument("--ignore-n", action="store_true")
    p.add_argument("--reject-n", action="store_true")
    p.add_argument("--malformed", action="append", default=[], choices=MALFORMED_SHAPES)
    p.add_argument("--malformed-every", type=int, default=20)
    p.add_argument("--huge-mb", type=float, default=20.0)
    p.add_argument("--require-key", default=None)
    p.add_argument("--key-on-models", action="store_true", help="/v1/models wants --require-key's key too")
    p.add_argument("--chunked", action="store_true", help="send malformed bodies chunked, without Content-Length")
    p.add_argument("--record", default=None, help="Append every request body to this JSONL file.")
    args = p.parse_args()
    web.run_app(make_app(args), host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
