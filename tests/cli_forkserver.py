"""A fork server for the documentation's examples: evalkit's CLI imported once, each command a fork.

Starting ``python -m evalkit`` spends about a second importing (aiohttp, numpy, pandas, rich...);
the docs test runs some eighty commands. ``serve`` imports ``evalkit.cli`` once and listens on a
Unix socket; each ``evalkit ARGS`` of a page is this file's ``client`` mode, which passes its
arguments, folder, environment and its stdin/stdout/stderr (as file descriptors) and exits with the
command's status. The forked child runs the same ``main`` as ``python -m evalkit``, in the
caller's folder, with its environment and on its streams. Only the docs test uses it.

Run: python tests/cli_forkserver.py serve SOCKET   (prints "ready" once listening)
     python -S tests/cli_forkserver.py client ARGS...   ($EVALKIT_DOCS_FORKSERVER names the socket)
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys

HEADER = 8  # bytes of the request's length, sent with the three file descriptors


def serve(path: str) -> None:
    """Import the CLI, then fork a child per connection until killed."""
    from evalkit.cli import main  # the import this server exists to pay once

    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(16)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the children
    print("ready", flush=True)
    while True:
        conn, _ = srv.accept()
        if os.fork() == 0:
            srv.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the command waits for its own children
            run_one(conn, main)
        conn.close()


def _read_exactly(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError("the client went away")
        data += chunk
    return data


def run_one(conn: socket.socket, main) -> None:
    """In the forked child: take the caller's streams, folder and environment, run the command,
    send its exit status back, and end."""
    import atexit
    import traceback

    head, fds, _, _ = socket.recv_fds(conn, HEADER, 3)
    head += _read_exactly(conn, HEADER - len(head))
    request = json.loads(_read_exactly(conn, int.from_bytes(head, "big")))
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = ["evalkit", *request["args"]]
    code = 0
    try:
        main.main(args=request["args"], prog_name="evalkit")
    except SystemExit as exc:
        if isinstance(exc.code, int) or exc.code is None:
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:  # noqa: BLE001 (shown as `python -m evalkit` would show it)
        traceback.print_exc()
        code = 1
    try:
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 (a closed pipe: nothing more to say)
                pass
        conn.sendall(code.to_bytes(4, "big", signed=True))
        os._exit(code)


def client(args: list[str]) -> int:
    """Run ``evalkit ARGS`` in the fork server named by $EVALKIT_DOCS_FORKSERVER; its exit status."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(os.environ["EVALKIT_DOCS_FORKSERVER"])
    payload = json.dumps({"args": args, "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
    socket.send_fds(conn, [len(payload).to_bytes(HEADER, "big")], [0, 1, 2])
    conn.sendall(payload)
    try:
        return int.from_bytes(_read_exactly(conn, 4), "big", signed=True)
    except EOFError:
        print("evalkit (docs fork server): the command ended without a status", file=sys.stderr)
        return 255


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(sys.argv[2])
    else:
        sys.exit(client(sys.argv[2:]))
