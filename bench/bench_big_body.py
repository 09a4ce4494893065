"""Oversized response bodies: a run's peak RSS and samples.jsonl size when every answer is huge.

A loopback double (tests/loopback_server.py --malformed huge) pads every
completion to --body-mb MB; `evalkit run` (a fresh process) evaluates --items
items with its response cap (--max-response-mb, default 16). Printed: the
runner's peak RSS (from the kernel's wait4 accounting), the samples file size,
and the exit status. Over the cap, each such sample is an error and nothing of
the body is kept; under it, the bodies are written as answers.

Run: python -m bench.bench_big_body [--items 4] [--body-mb 50] [--cap-mb 16] [--chunked]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import ROOT

from tests.conftest import Loopback, write_items


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=4)
    ap.add_argument("--body-mb", type=float, default=50.0)
    ap.add_argument("--cap-mb", type=float, default=16.0)
    ap.add_argument("--chunked", action="store_true", help="bodies without Content-Length")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = write_items(work / "d.jsonl", args.items)
        server = Loopback("--malformed", "huge", "--malformed-every", "1", "--huge-mb", str(args.body_mb),
                          *(["--chunked"] if args.chunked else []))
        try:
            proc = subprocess.Popen([sys.executable, "-m", "evalkit", "run", "--eval-file", str(data),
                                     "--endpoint", server.url, "--results-dir", str(work / "r"), "--run-name", "r",
                                     "--quiet", "--concurrency", str(args.items),
                                     "--max-response-mb", str(args.cap_mb)],
                                    cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
        finally:
            server.stop()
        size = sum(p.stat().st_size for p in (work / "r").rglob("samples.jsonl"))
    print(f"{args.items} answers of {args.body_mb:g} MB each ({'chunked' if args.chunked else 'Content-Length'}), "
          f"cap {args.cap_mb:g} MB: exit {proc.returncode}, runner peak RSS {usage.ru_maxrss / 1024:.0f} MB, "
          f"samples.jsonl {size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
