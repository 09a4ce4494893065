"""A loopback server script run in its own process group, for tests and benchmarks."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """SCRIPT --port N ARGS... started in its own process group; ready once /v1/models answers."""

    def __init__(self, script: Path, *args: str, port: int | None = None, start_timeout_s: float = 20.0):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.proc = subprocess.Popen([sys.executable, str(script), "--port", str(self.port), *args],
                                     start_new_session=True)
        deadline = time.monotonic() + start_timeout_s
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url + "/models", timeout=1).read()
                return
            except urllib.error.HTTPError:
                return  # it answers (a double that wants a key answers 401)
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{script.name} did not start on port {self.port}")

    def stats(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats", timeout=5) as r:
            return json.loads(r.read())

    def stop(self, *, grace_s: float = 0.0) -> None:
        """End the process group: TERM then KILL after GRACE_S, or KILL at once."""
        if self.proc.poll() is not None:
            return
        if grace_s > 0:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace_s)
                return
            except subprocess.TimeoutExpired:
                pass
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(grace_s=5.0)
