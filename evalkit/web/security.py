"""Tokens, cross-site request checks and response headers for evalkit's web applications.

Tokens are 192-bit random strings, so a plain SHA-256 is enough to store them: nobody can
guess one from its hash, and no slow key derivation is needed. Pages put tokens in URLs (a
rater's personal link), so every response says ``Referrer-Policy: no-referrer`` and the
token never leaves in a Referer header.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any, Awaitable, Callable, Mapping
from urllib.parse import urlsplit

TOKEN_BYTES = 24

# script-src 'self' keeps an injected inline <script> inert even if escaping ever failed;
# pages that need inline script (the static report pages) pass INLINE_SCRIPT_POLICY instead.
STRICT_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                 "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
INLINE_SCRIPT_POLICY = STRICT_POLICY.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'")
# A document shown inside one of the application's own pages (an iframe of the same origin).
FRAMED_DOCUMENT_HEADERS = {
    "content-security-policy": INLINE_SCRIPT_POLICY.replace("frame-ancestors 'none'", "frame-ancestors 'self'"),
    "x-frame-options": "SAMEORIGIN",
}

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def new_token() -> str:
    """A fresh secret token, URL-safe."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    """What is stored in place of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_matches(given: str | None, stored_hash: str) -> bool:
    """Whether GIVEN is the token whose hash is STORED_HASH, in constant time."""
    if not given:
        return False
    return hmac.compare_digest(hash_token(given), stored_hash)


def csrf_token(secret: str, session: str) -> str:
    """The form token bound to one session (a rater's or organiser's token) by the server's SECRET."""
    return hmac.new(secret.encode(), ("csrf:" + session).encode(), hashlib.sha256).hexdigest()


def csrf_matches(secret: str, session: str, given: str | None) -> bool:
    """Whether GIVEN is the form token of SESSION."""
    return bool(given) and hmac.compare_digest(csrf_token(secret, session), given or "")


def same_origin(headers: Mapping[str, str]) -> bool:
    """Whether a state-changing request comes from a page of this server.

    Browsers send ``Origin`` on cross-site posts (and ``Sec-Fetch-Site``); a request with
    neither (curl, a test client) is judged by its form token alone.
    """
    site = headers.get("sec-fetch-site")
    if site and site not in ("same-origin", "none"):
        return False
    origin = headers.get("origin")
    if not origin or origin == "null":
        return origin != "null"
    return urlsplit(origin).netloc == headers.get("host", "")


class SecurityHeaders:
    """ASGI middleware: the same protective headers on every response, whatever made it."""

    def __init__(self, app: ASGIApp, *, policy: str = STRICT_POLICY) -> None:
        self.app = app
        self.headers = [
            (b"content-security-policy", policy.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"cache-control", b"no-store"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                # A route may set its own (a framed document's policy); the rest get the defaults.
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                message = {**message, "headers": headers + [h for h in self.headers if h[0] not in present]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


TOKEN_COOKIE = "evalkit_token"


def _request_token(scope: Scope) -> str | None:
    """The token a request carries: ``?token=``, the cookie a first visit set, or a Bearer header."""
    from urllib.parse import parse_qs

    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if query.get("token"):
        return query["token"][0]
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    for part in headers.get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == TOKEN_COOKIE:
            return value
    return None


class TokenGate:
    """ASGI middleware: every request must carry the token whose hash is TOKEN_HASH, else 401.

    A first visit through the printed URL (``?token=``) gets an HttpOnly, same-site cookie, so
    the pages' own links and requests need not repeat the token.
    """

    def __init__(self, app: ASGIApp, *, token_hash: str) -> None:
        self.app = app
        self.token_hash = token_hash

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _request_token(scope)
        if not token_matches(given, self.token_hash):
            await send({"type": "http.response.start", "status": 401,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
            await send({"type": "http.response.body", "body": b"401: this server needs its token "
                        b"(open the URL it printed at start, or send Authorization: Bearer TOKEN)\n"})
            return
        cookie = f"{TOKEN_COOKIE}={given}; HttpOnly; SameSite=Strict; Path=/".encode()

        async def send_with_cookie(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": list(message.get("headers", [])) + [(b"set-cookie", cookie)]}
            await send(message)

        await self.app(scope, receive, send_with_cookie)
