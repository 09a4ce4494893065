"""The request stage: send chat-completion requests to OpenAI-compatible servers.

A thin asyncio client on aiohttp. The ``openai`` SDK's async client tops out at a
few hundred requests/s on a small machine; a direct aiohttp session keeps the
client far from being the bottleneck of a GPU server (see bench/bench_client.py).

* ``ChatClient`` talks to one endpoint.
* ``EndpointPool`` spreads requests over one or more endpoints, fewest in flight
  first, takes an endpoint that stops answering out for a while and probes it
  again later, enforces an optional requests-per-second limit, and retries.

Retries use full-jitter exponential backoff and cover connection errors,
timeouts, 429 and 5xx; any other 4xx fails at once with the server's message.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Awaitable, Callable, Sequence, TypeVar

import aiohttp
from asyncio_throttle import Throttler

from evalkit.config import RunConfig, field_default
from evalkit.data.prompts import as_messages
from evalkit.core.records import Generation, GenerationParams
from evalkit.core.errors import EvalkitError

T = TypeVar("T")

# An endpoint that fails this many requests in a row without answering (connection
# refused or reset, timeout) is taken out of rotation for a cool-down.
UNREACHABLE_AFTER = 3
DEFAULT_MAX_RESPONSE_BYTES = 16 << 20  # a larger completion body is an error on its sample
COOL_DOWN_S = (2.0, 60.0)  # first and longest cool-down; doubles with each outage
# Doubling stops here: 2 ** this is far past any cap, and a float of 2 ** 1024 would overflow
# (an endpoint marked down a thousand times in a long outage, or --max-attempts in the thousands).
MAX_DOUBLINGS = 30


def doubled(first: float, times: int, cap: float) -> float:
    """FIRST doubled TIMES times (none when TIMES < 1), at most CAP; never overflows however large TIMES is."""
    return min(cap, first * 2.0 ** min(max(times, 0), MAX_DOUBLINGS))


class RequestError(EvalkitError, RuntimeError):
    """A request failed. ``retryable`` tells whether trying again (or a later resume) may succeed.

    ``unreachable`` marks failures where the server did not answer at all
    (connection refused or reset, timeout), as opposed to an HTTP error status.
    """

    def __init__(self, message: str, *, endpoint: str, status: int | None = None, retryable: bool = True,
                 unreachable: bool = False, retry_after: float | None = None):
        super().__init__(f"{endpoint}: {message}")
        self.endpoint = endpoint
        self.status = status
        self.retryable = retryable
        self.unreachable = unreachable
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a failed request is tried again."""

    max_attempts: int = field_default(RunConfig, "max_attempts")
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Full-jitter exponential backoff for the given (1-based) failed attempt.

        A server's Retry-After (on 429/503) is honoured as a floor, within max_delay_s.
        """
        cap = doubled(self.base_delay_s, attempt - 1, self.max_delay_s)
        wait = random.uniform(0, cap)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_delay_s))
        return wait


async def call_with_retries(attempt: Callable[[], Awaitable[T]], policy: RetryPolicy, *,
                            on_retry: Callable[[RequestError], None] | None = None) -> T:
    """Await ATTEMPT() until it succeeds, a non-retryable RequestError, or the policy's last attempt."""
    n = 0
    while True:
        n += 1
        try:
            return await attempt()
        except RequestError as err:
            if not err.retryable or n >= policy.max_attempts:
                raise
            if on_retry is not None:
                on_retry(err)
            await asyncio.sleep(policy.delay(n, err.retry_after))


def build_payload(model: str, prompt: str | list[dict[str, str]], params: GenerationParams, *, n: int = 1,
                  seed: int | None = None) -> dict[str, Any]:
    """The JSON body of one chat-completions request (SEED overrides params.seed).

    PROMPT is one user message, or a whole conversation (a list of {role, content}); its
    messages are ``prompts.as_messages`` (``system_prompt`` first, replacing a conversation's
    own leading system message). Optional controls are sent only when set. ``chat_template_kwargs``
    sits at the top level of the body, where SGLang and vLLM read it (the ``openai``
    SDK's ``extra_body`` puts it there too); ``extra_body`` is merged in last.
    """
    body: dict[str, Any] = {
        "model": model,
        "messages": as_messages(prompt, params.system_prompt),
        "max_tokens": params.max_new_tokens,
        "temperature": params.temperature if params.temperature is not None else 0.0,
        "top_p": params.top_p,
    }
    seed = params.seed if seed is None else seed
    if seed is not None:
        body["seed"] = seed
    if n > 1:
        body["n"] = n
    for name in ("top_k", "min_p", "presence_penalty", "frequency_penalty"):
        value = getattr(params, name)
        if value is not None:
            body[name] = value
    if params.stop:
        body["stop"] = list(params.stop)
    if params.chat_template_kwargs:
        body["chat_template_kwargs"] = dict(params.chat_template_kwargs)
    if params.extra_body:
        body.update(params.extra_body)
    return body


class MalformedResponse(ValueError):
    """A 200 response whose body is not a usable chat completion; the message says why."""


def safe_text(text: str) -> str:
    """TEXT with lone surrogates (from a JSON "\\ud800" escape) written out as visible escapes,
    so it can be written as UTF-8; any other text comes back unchanged."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _content_text(content: Any, where: str) -> str:
    """The text of a message's content: a string, or the newer list of parts (text parts joined)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict):
                if part.get("type", "text") in ("text", "output_text") and isinstance(part.get("text"), str):
                    texts.append(part["text"])
                # other parts (images, audio, refusals as objects) carry no answer text
            else:
                raise MalformedResponse(f"{where} has a part of type {type(part).__name__}, not an object")
        return "".join(texts)
    raise MalformedResponse(f"{where} is a {_json_type(content)}, not text")


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {dict: "object", list: "array", str: "string", type(None): "null"}.get(type(value), type(value).__name__)


def _usage(value: Any) -> dict[str, int]:
    """The token counts of a response's usage; anything that is not a count is left out."""
    if not isinstance(value, dict):
        return {}  # a usage that is not an object: the answer still counts, its token counts are unknown
    return {str(k): int(v) for k, v in value.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def read_usage(raw: Any) -> dict[str, int]:
    """A response's usage as flat token counts (``_usage``), plus
    ``completion_tokens_details.reasoning_tokens`` (reported by reasoning servers) as ``reasoning_tokens``."""
    usage = _usage(raw)
    details = raw.get("completion_tokens_details") if isinstance(raw, dict) else None
    if isinstance(details, dict):
        value = details.get("reasoning_tokens")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            usage["reasoning_tokens"] = int(value)
    return usage


def parse_completion(data: Any, latency_s: float) -> list[Generation]:
    """One Generation per choice of a chat-completions response.

    The response's usage covers the whole request; it is attached to the first
    choice only, so that summing usage over generations counts each token once.
    Content may be a string or a list of parts (text parts are joined). A body
    that is not a usable completion raises MalformedResponse saying why; a usage
    that is not an object is dropped (the answer is kept). Text is made safe to
    write (see safe_text).
    """
    if not isinstance(data, dict):
        raise MalformedResponse(f"the body is a JSON {_json_type(data)}, not an object")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise MalformedResponse("no choices" if not choices else f"choices is a {_json_type(choices)}, not a list")
    usage = read_usage(data.get("usage"))
    out = []
    for i, ch in enumerate(choices):
        if not isinstance(ch, dict):
            raise MalformedResponse(f"choice {i} is a {_json_type(ch)}, not an object")
        msg = ch.get("message")
        if msg is None:
            msg = {}
        if not isinstance(msg, dict):
            raise MalformedResponse(f"choice {i}'s message is a {_json_type(msg)}, not an object")
        text = _content_text(msg.get("content"), f"choice {i}'s content")
        # Reasoning servers may return the thinking separately; keep it with the answer.
        reasoning = msg.get("reasoning_content")
        if isinstance(reasoning, str) and reasoning:
            text = f"<think>{reasoning}</think>{text}"
        finish = ch.get("finish_reason")
        out.append(Generation(text=safe_text(text), finish_reason=safe_text(finish) if isinstance(finish, str) else None,
                              usage=usage if i == 0 else {}, latency_s=latency_s))
    return out


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare from inference servers; fall back to backoff


class ChatClient:
    """Async chat-completions client for one endpoint (base URL ending in /v1).

    Use as ``async with ChatClient(url, model) as client: await client.complete(prompt, params)``.
    Several clients may share one aiohttp ``session`` (then the caller closes it).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout_s: float = field_default(RunConfig, "timeout_s"),
        retry: RetryPolicy = RetryPolicy(),
        max_connections: int = 1024,
        session: aiohttp.ClientSession | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ):
        self.base_url = base_url.rstrip("/")
        self.url = self.base_url + "/chat/completions"
        self.model = model
        self.timeout_s = timeout_s
        self.retry = retry
        self.max_response_bytes = max_response_bytes
        self._headers = {"Content-Type": "application/json"}
        self._secrets = (api_key,) if api_key else ()
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._max_connections = max_connections
        self._session = session
        self._owns_session = session is None
        self.retries = 0  # retries made by complete(), for progress and the manifest

    async def __aenter__(self) -> "ChatClient":
        if self._session is None:
            self._session = new_session(self._max_connections, self.timeout_s)
            self._owns_session = True
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None and self._owns_session:
            await self._session.close()
            self._session = None

    def _error(self, message: str, **kw: Any) -> RequestError:
        """A RequestError whose message never shows the API key (a server may echo it back)."""
        return RequestError(redact(message, self._secrets), endpoint=self.base_url, **kw)

    async def send(self, payload: bytes) -> list[Generation]:
        """POST one serialized request body once; raise RequestError on any failure.

        A body over ``max_response_bytes``, or a 200 whose body is not a usable
        completion, is a non-retryable error ("response too large", "malformed
        response: ..."): the server answered, so it says nothing about the endpoint
        being down, and the sample is tried again on the next run.
        """
        assert self._session is not None, "use ChatClient inside 'async with'"
        t0 = time.perf_counter()
        try:
            async with self._session.post(self.url, data=payload, headers=self._headers) as resp:
                status = resp.status
                raw = await read_capped(resp, self.max_response_bytes)
                retry_after = _retry_after(resp.headers) if status in (429, 503) else None
        except ResponseTooLarge as exc:
            raise self._error(f"response too large: {exc} (see --max-response-mb)", status=exc.status,
                              retryable=False) from None
        except asyncio.TimeoutError:
            raise self._error(f"no answer within {self.timeout_s:g}s", unreachable=True) from None
        except aiohttp.ClientConnectionError as exc:
            raise self._error(f"{type(exc).__name__}: {exc}", unreachable=True) from None
        except aiohttp.ClientError as exc:
            raise self._error(f"{type(exc).__name__}: {exc}") from None
        latency = time.perf_counter() - t0
        parse_error = None
        try:
            data = json.loads(raw) if raw else {}
        except (ValueError, RecursionError) as exc:
            parse_error = f"the body is not JSON ({type(exc).__name__}: {str(exc)[:120]})"
            data = {"_raw": raw[:500].decode("utf-8", "replace")}
        if status == 200:
            try:
                if parse_error:
                    raise MalformedResponse(parse_error)
                return parse_completion(data, latency)
            except MalformedResponse as exc:
                raise self._error(f"malformed response: {exc}", status=status, retryable=False) from None
        transient = status == 429 or status >= 500
        raise self._error(f"HTTP {status}: {safe_text(_error_message(data))}", status=status,
                          retryable=transient, retry_after=retry_after)

    async def complete(self, prompt: str | list[dict[str, str]], params: GenerationParams, *, n: int = 1,
                       seed: int | None = None) -> list[Generation]:
        """Generate N completions for PROMPT, retrying transient failures."""
        payload = json.dumps(build_payload(self.model, prompt, params, n=n, seed=seed)).encode()

        def count(_: RequestError) -> None:
            self.retries += 1

        return await call_with_retries(lambda: self.send(payload), self.retry, on_retry=count)


class ResponseTooLarge(Exception):
    """A response body over the cap; the message gives the sizes."""

    def __init__(self, message: str, status: int | None):
        super().__init__(message)
        self.status = status


async def read_capped(resp: aiohttp.ClientResponse, cap: int) -> bytes:
    """The body of RESP, or ResponseTooLarge once it passes CAP bytes (never more than CAP kept)."""
    declared = resp.content_length
    if declared is not None:
        if declared > cap:
            raise ResponseTooLarge(f"the server announced {declared} bytes, over the {_mb(cap)} cap", resp.status)
        return await resp.read()  # aiohttp reads exactly the announced length: the fast common case
    body = bytearray()
    async for chunk in resp.content.iter_chunked(1 << 16):
        body += chunk
        if len(body) > cap:
            raise ResponseTooLarge(f"the body passed the {_mb(cap)} cap", resp.status)
    return bytes(body)


def _mb(n: int) -> str:
    return f"{n / (1 << 20):g} MB"


def redact(text: str, secrets: Sequence[str | None]) -> str:
    """TEXT with every occurrence of each (non-empty) secret replaced by "***"."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def new_session(max_connections: int, timeout_s: float) -> aiohttp.ClientSession:
    """An aiohttp session sized for MAX_CONNECTIONS requests in flight, with a per-request timeout."""
    connector = aiohttp.TCPConnector(limit=max_connections, ttl_dns_cache=300)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout_s))


@dataclass
class EndpointState:
    """One endpoint of a pool, with its live counters."""

    client: ChatClient
    in_flight: int = 0
    requests: int = 0
    failures: int = 0  # consecutive unanswered requests
    outages: int = 0  # times taken out since it last answered
    down_until: float = 0.0
    probing: bool = False

    @property
    def url(self) -> str:
        return self.client.base_url

    def to_dict(self) -> dict[str, Any]:
        return {"endpoint": self.url, "requests": self.requests, "outages": self.outages,
                "down": self.down_until > time.monotonic()}


def throttler_for(rps: float) -> Throttler:
    """An asyncio-throttle Throttler allowing RPS requests per second (fractions allowed, e.g. 0.5)."""
    if rps <= 0:
        raise ValueError(f"--rps must be positive, got {rps}")
    frac = Fraction(rps).limit_denominator(100)
    # A short poll interval keeps high limits accurate; one waiter polls at a time (see EndpointPool).
    return Throttler(rate_limit=frac.numerator, period=float(frac.denominator),
                     retry_interval=min(0.01, 0.5 / float(rps)))


@dataclass
class EndpointPool:
    """Balances requests over endpoints that serve the same model.

    Each request goes to the endpoint with the fewest requests in flight. An
    endpoint that fails ``UNREACHABLE_AFTER`` requests in a row without
    answering is taken out for a cool-down (2 s, doubling to 60 s); after it, a
    single probe request decides whether it is back. When every endpoint is out,
    requests go to the one due back first, paced by the retry backoff.
    """

    base_urls: Sequence[str]
    model: str = ""
    api_key: str | None = None
    timeout_s: float = field_default(RunConfig, "timeout_s")
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_connections: int = 1024
    rps: float | None = None
    on_retry: Callable[[RequestError], None] | None = None
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    endpoints: list[EndpointState] = field(default_factory=list, init=False)
    retries: int = field(default=0, init=False)
    requests: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if not self.base_urls:
            raise ValueError("no endpoint given")
        urls = list(dict.fromkeys(u.rstrip("/") for u in self.base_urls))
        self.base_urls = urls
        self._session: aiohttp.ClientSession | None = None
        self._throttler = throttler_for(self.rps) if self.rps else None
        self._throttle_lock = asyncio.Lock() if self.rps else None

    async def __aenter__(self) -> "EndpointPool":
        self._session = new_session(self.max_connections, self.timeout_s)
        self.endpoints = [
            EndpointState(ChatClient(u, self.model, api_key=self.api_key, timeout_s=self.timeout_s,
                                     retry=self.retry, session=self._session,
                                     max_response_bytes=self.max_response_bytes))
            for u in self.base_urls
        ]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def set_model(self, model: str) -> None:
        self.model = model
        for ep in self.endpoints:
            ep.client.model = model

    def _pick(self) -> tuple[EndpointState, bool]:
        now = time.monotonic()
        best: EndpointState | None = None
        for ep in self.endpoints:
            if ep.down_until > now or (ep.outages and ep.probing):
                continue
            if best is None or ep.in_flight < best.in_flight:
                best = ep
        if best is None:
            return min(self.endpoints, key=lambda e: e.down_until), False
        probe = best.outages > 0
        if probe:
            best.probing = True
        return best, probe

    def _answered(self, ep: EndpointState, probe: bool) -> None:
        ep.failures = 0
        ep.outages = 0
        if probe:
            ep.probing = False

    def _unanswered(self, ep: EndpointState, probe: bool) -> None:
        ep.failures += 1
        if probe:
            ep.probing = False
        if ep.failures >= UNREACHABLE_AFTER or ep.outages:
            ep.outages += 1
            ep.failures = 0
            first, longest = COOL_DOWN_S
            ep.down_until = time.monotonic() + doubled(first, ep.outages - 1, longest)

    async def _throttle(self) -> None:
        assert self._throttler is not None and self._throttle_lock is not None
        # The lock queues waiters, so one polls the throttler instead of hundreds.
        async with self._throttle_lock:
            await self._throttler.acquire()

    async def send(self, payload: bytes) -> list[Generation]:
        """One attempt of one serialized request on the best endpoint now."""
        if self._throttler is not None:
            await self._throttle()
        ep, probe = self._pick()
        ep.in_flight += 1
        ep.requests += 1
        self.requests += 1
        try:
            gens = await ep.client.send(payload)
        except RequestError as err:
            if err.unreachable:
                self._unanswered(ep, probe)
            else:
                self._answered(ep, probe)
            raise
        finally:
            ep.in_flight -= 1
        self._answered(ep, probe)
        return gens

    async def complete(self, prompt: str | list[dict[str, str]], params: GenerationParams, *, n: int = 1,
                       seed: int | None = None) -> list[Generation]:
        """Generate N completions for PROMPT on the pool, retrying transient failures (on any endpoint)."""
        payload = json.dumps(build_payload(self.model, prompt, params, n=n, seed=seed)).encode()
        return await call_with_retries(lambda: self.send(payload), self.retry, on_retry=self._count_retry)

    def _count_retry(self, err: RequestError) -> None:
        self.retries += 1
        if self.on_retry is not None:
            self.on_retry(err)


def _error_message(data: Any) -> str:
    if isinstance(data, dict):
        e = data.get("error")
        if isinstance(e, dict) and e.get("message"):
            return str(e["message"])
        if isinstance(e, str):
            return e
        if data.get("detail"):
            return str(data["detail"])
        if data.get("_raw"):
            return str(data["_raw"])
    return json.dumps(data)[:500]
