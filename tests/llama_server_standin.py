#!/usr/bin/env python3
"""A stand-in for llama.cpp's ``llama-server`` (point $EVALKIT_LLAMA_SERVER at it): it takes
llama-server's flags and serves the loopback double (tests/loopback_server.py) under the
``--alias`` model name, each answer after $STANDIN_DELAY_S seconds. It lets the sweep tests run
their jobs, cancellations and resumes in seconds; the real llama-server runs in the tests
marked ``server``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import loopback_server  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("-m", "--model", required=True)
    p.add_argument("--alias", default=None)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    args, _ = p.parse_known_args()
    if not os.path.isfile(args.model):
        sys.exit(f"llama-server stand-in: no model file {args.model}")
    sys.argv = [sys.argv[0], "--host", args.host, "--port", str(args.port), "--model",
                args.alias or Path(args.model).stem, "--delay-s", os.environ.get("STANDIN_DELAY_S", "0")]
    loopback_server.main()


if __name__ == "__main__":
    main()
