"""A loopback judge double: an OpenAI-compatible server that replies with known ratings.

Rules (a JSON file, ``--rules FILE``) say what to reply: a list of
``{"contains": TEXT, "replies": [REPLY, ...]}`` matched in order against the first
user message of the request (the judge prompt); ``{"first_contains": TEXT, ...}``
matches only the text between "Answer 1:" and "Answer 2:" of a pairwise prompt.
The n-th reply is used on the n-th attempt (the number of user turns), the last one
repeating; ``--default REPLY`` answers a prompt no rule matches. ``/stats`` counts
requests and requests per prompt (by a hash of the first user message).

Run: python tests/judge_server.py --port N --rules rules.json [--default '{"grade": 1}'] [--delay-s 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from aiohttp import web

if __package__ in (None, ""):  # run as a script (a server process): make the tests package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.loopback_server import completion_body, double_app, prompt_key  # noqa: E402, F401 (prompt_key re-exported)


def pick_reply(rules: list[dict], default: str, messages: list[dict]) -> str:
    """The reply for MESSAGES: the first matching rule's reply for this attempt, else DEFAULT."""
    users = [m["content"] for m in messages if m.get("role") == "user"]
    prompt = users[0] if users else ""
    attempt = len(users)
    first = ""
    if "Answer 1:" in prompt and "Answer 2:" in prompt:
        first = prompt.split("Answer 1:", 1)[1].split("Answer 2:", 1)[0]
    for rule in rules:
        if "contains" in rule and rule["contains"] not in prompt:
            continue
        if "first_contains" in rule and rule["first_contains"] not in first:
            continue
        replies = rule["replies"]
        return replies[min(attempt, len(replies)) - 1]
    return default


def make_app(args: argparse.Namespace) -> web.Application:
    rules = json.loads(open(args.rules, encoding="utf-8").read()) if args.rules else []
    stats: dict = {"requests": 0, "prompts": {}, "response_formats": 0}

    async def chat(request: web.Request) -> web.Response:
        body = await request.json()
        stats["requests"] += 1
        messages = body["messages"]
        first = next((m["content"] for m in messages if m.get("role") == "user"), "")
        key = prompt_key(first)
        stats["prompts"][key] = stats["prompts"].get(key, 0) + 1
        if "response_format" in body:
            stats["response_formats"] += 1
        if args.delay_s:
            await asyncio.sleep(args.delay_s)
        text = pick_reply(rules, args.default, messages)
        return web.json_response(completion_body([text], body.get("model", args.model), len(first) // 4, 7))

    return double_app(args.model, chat, stats)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--rules", default=None)
    p.add_argument("--default", default='{"grade": 1}')
    p.add_argument("--delay-s", type=float, default=0.0)
    p.add_argument("--model", default="judge-double")
    args = p.parse_args()
    web.run_app(make_app(args), host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
