"""A tiny OpenAI-compatible server on the standard library alone, for the backend-from-outside test.

It answers ``/health`` ({"status": "ok", "engine": "toy", "version": ..., "in_flight": n}),
``/v1/models`` (one model) and ``/v1/chat/completions`` with "The answer is X.", X picked
from the prompt's option letters by a hash of the prompt (deterministic). It is no model.

Run: python tests/toy_server.py --port N [--host 127.0.0.1] [--model toy-model]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = "0.1-toy"
_LETTERS = re.compile(r"^([A-J])\. ", re.M)


def answer_for(prompt: str) -> str:
    """The toy's answer to PROMPT: one of its option letters, the same every time."""
    letters = _LETTERS.findall(prompt) or ["A"]
    return f"The answer is {letters[int(hashlib.sha256(prompt.encode()).hexdigest(), 16) % len(letters)]}."


def make_handler(model: str) -> type[BaseHTTPRequestHandler]:
    in_flight = [0]
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/health":
                self._send(200, {"status": "ok", "engine": "toy", "version": VERSION, "in_flight": in_flight[0]})
            elif self.path == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": model, "object": "model", "owned_by": "toy"}]})
            else:
                self._send(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self) -> None:  # noqa: N802
            if self.path != "/v1/chat/completions":
                self._send(404, {"error": {"message": f"no route {self.path}"}})
                return
            with lock:
                in_flight[0] += 1
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                prompt = body["messages"][-1]["content"]
                text = answer_for(prompt if isinstance(prompt, str) else json.dumps(prompt))
                self._send(200, {"id": "toy", "object": "chat.completion", "model": body.get("model", model),
                                 "choices": [{"index": 0, "finish_reason": "stop",
                                              "message": {"role": "assistant", "content": text}}],
                                 "usage": {"prompt_tokens": len(prompt) // 4, "completion_tokens": 5,
                                           "total_tokens": len(prompt) // 4 + 5}})
            except (ValueError, KeyError, TypeError) as exc:
                self._send(400, {"error": {"message": f"bad request: {exc}"}})
            finally:
                with lock:
                    in_flight[0] -= 1

        def log_message(self, *args: object) -> None:
            pass

    return Handler


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--model", default="toy-model")
    args = p.parse_args()
    ThreadingHTTPServer((args.host, args.port), make_handler(args.model)).serve_forever()


if __name__ == "__main__":
    main()
