"""A stand-in with SGLang's process tree, for testing that `evalkit stop` leaves nothing behind.

Like ``sglang_router.launch_server`` / ``sglang.launch_server``: a launcher starts one child
per dp rank with multiprocessing's spawn; each child makes its own process group (as
SGLang's dp workers do with ``os.setpgrp()``) and ignores SIGTERM for a while (a scheduler
busy finishing a batch); one rank also double-forks a grandchild into a new session, so
that it is re-parented away from the launcher's tree. The launcher then serves the
loopback test double on --port. Each process writes its pid to --pid-dir.

Run: python tests/sglang_tree_standin.py --port N --pid-dir DIR [--dp 2] [--ignore-term-s 3]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import runpy
import signal
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _stubborn(ignore_s: float) -> None:
    """Ignore SIGTERM for IGNORE_S seconds after it arrives, then exit."""
    def on_term(signum, frame):  # noqa: ARG001
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(ignore_s)
        os._exit(0)
    signal.signal(signal.SIGTERM, on_term)


def rank_main(rank: int, pid_dir: str, ignore_s: float, detach: bool) -> None:
    os.setpgrp()
    _stubborn(ignore_s)
    Path(pid_dir, f"rank{rank}.pid").write_text(str(os.getpid()))
    if detach and os.fork() == 0:
        os.setsid()
        if os.fork() == 0:  # the grandchild: its parent exits, so it is re-parented
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            Path(pid_dir, f"rank{rank}.detached.pid").write_text(str(os.getpid()))
            while True:
                time.sleep(1)
        os._exit(0)
    while True:
        time.sleep(1)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pid-dir", required=True)
    p.add_argument("--dp", type=int, default=2)
    p.add_argument("--ignore-term-s", type=float, default=3.0)
    args = p.parse_args()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=rank_main, args=(r, args.pid_dir, args.ignore_term_s, r == 0)) for r in range(args.dp)]
    for proc in procs:
        proc.start()
    Path(args.pid_dir, "launcher.pid").write_text(str(os.getpid()))
    sys.argv = ["loopback_server.py", "--port", str(args.port)]
    runpy.run_path(str(HERE / "loopback_server.py"), run_name="__main__")


if __name__ == "__main__":
    main()
