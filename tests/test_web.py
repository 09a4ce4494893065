"""The web stack the live view and the rating studies share: tokens, origin checks, headers, binding."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from evalkit.web import pages, security, server


def test_a_token_is_stored_hashed_and_matched_exactly():
    token = security.new_token()
    stored = security.hash_token(token)
    assert token not in stored and len(token) >= 32
    assert security.token_matches(token, stored)
    assert not security.token_matches(token[:-1] + ("A" if token[-1] != "A" else "B"), stored)
    assert not security.token_matches(None, stored) and not security.token_matches("", stored)
    assert security.new_token() != token


def test_a_form_token_belongs_to_its_session():
    form = security.csrf_token("server-secret", "rater-a")
    assert security.csrf_matches("server-secret", "rater-a", form)
    assert not security.csrf_matches("server-secret", "rater-b", form)
    assert not security.csrf_matches("other-secret", "rater-a", form)
    assert not security.csrf_matches("server-secret", "rater-a", None)


@pytest.mark.parametrize("headers, expected", [
    ({"host": "127.0.0.1:8800"}, True),  # no Origin: curl, judged by the form token alone
    ({"host": "127.0.0.1:8800", "origin": "http://127.0.0.1:8800"}, True),
    ({"host": "127.0.0.1:8800", "origin": "http://evil.example"}, False),
    ({"host": "127.0.0.1:8800", "origin": "null"}, False),
    ({"host": "127.0.0.1:8800", "sec-fetch-site": "cross-site"}, False),
    ({"host": "127.0.0.1:8800", "sec-fetch-site": "same-origin", "origin": "http://127.0.0.1:8800"}, True),
])
def test_same_origin(headers, expected):
    assert security.same_origin(headers) is expected


def _app(**gate) -> Starlette:
    app = Starlette(routes=[Route("/", lambda request: PlainTextResponse("hello"))])
    wrapped = security.SecurityHeaders(app)
    return security.TokenGate(wrapped, **gate) if gate else wrapped


def test_every_response_carries_the_protective_headers():
    response = TestClient(_app()).get("/")
    assert response.text == "hello"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "script-src 'self';" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


def test_the_token_gate_refuses_without_the_token_and_remembers_a_first_visit():
    token = security.new_token()
    client = TestClient(_app(token_hash=security.hash_token(token)))
    assert client.get("/").status_code == 401
    assert client.get("/?token=wrong").status_code == 401
    first = client.get(f"/?token={token}")
    assert first.status_code == 200 and "HttpOnly" in first.headers["set-cookie"]
    assert client.get("/").status_code == 200  # the cookie the first visit set
    assert TestClient(_app(token_hash=security.hash_token(token))).get(
        "/", headers={"Authorization": f"Bearer {token}"}).status_code == 200


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True),
                                            ("localhost", True), ("0.0.0.0", False), ("10.1.2.3", False),
                                            ("example.org", False)])
def test_is_loopback(host, loopback):
    assert server.is_loopback(host) is loopback


def test_bind_takes_a_free_port_and_names_a_busy_one():
    sock = server.bind("127.0.0.1", 0)
    try:
        port = sock.getsockname()[1]
        assert port > 0 and server.base_url(sock, "127.0.0.1") == f"http://127.0.0.1:{port}"
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
            server.bind("127.0.0.1", port)
    finally:
        sock.close()


def test_templates_escape_hostile_text():
    env = pages.environment("evalkit.web")
    html = env.from_string("<p>{{ text }}</p>").render(text="<script>alert(1)</script>")
    assert "<script>" not in html and "&lt;script&gt;" in html
