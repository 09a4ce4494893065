"""Running one of evalkit's web applications: bind, say where, serve until stopped.

The socket is bound here, before uvicorn starts, so that port 0 gives a free port whose URL
is known and printed before the first request (tests and users read it from stdout).
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any, Callable

import uvicorn

GRACEFUL_STOP_S = 5  # Ctrl-C waits this long for requests in flight (a big leaderboard), then stops

PUBLIC_ADDRESS_NOTE = ("evalkit serves plain HTTP: on an address other people can reach, put a reverse "
                       "proxy with TLS in front of it (nginx, Caddy) so tokens do not cross the network in clear")


def is_loopback(host: str) -> bool:
    """Whether HOST is this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on HOST:PORT (port 0: a free one); OSError names the address."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def base_url(sock: socket.socket, host: str) -> str:
    """The http:// URL a browser opens for SOCK bound on HOST."""
    port = sock.getsockname()[1]
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    return f"http://{shown}:{port}"


def serve(app: Any, sock: socket.socket, *, announce: Callable[[], None] | None = None) -> None:
    """Serve APP on the bound SOCK until SIGINT/SIGTERM; ANNOUNCE runs once the server is listening."""
    config = uvicorn.Config(app, log_level="warning", server_header=False, date_header=False,
                            proxy_headers=False, access_log=False, lifespan="off",
                            timeout_graceful_shutdown=GRACEFUL_STOP_S)
    server = uvicorn.Server(config)
    if announce is not None:
        original = server.startup

        async def startup(sockets: Any = None) -> None:
            await original(sockets=sockets)
            announce()

        server.startup = startup  # type: ignore[method-assign]
    server.run(sockets=[sock])
