"""The model judge: a scorer that asks a served model to grade an answer on a rubric's axes.

``RubricJudgeScorer(rubric, endpoint, model)`` sends one request per sample for an axis
rubric (the reply is one JSON object mapping each axis to a value of its scale)
and one request per rubric item for a ``rubric_items`` rubric (the
reply says whether the item is met). A reply that does not parse, or names a
value off the scale, is asked again (up to ``max_attempts`` in all, each retry
telling the judge what was wrong, so a greedy judge can change its reply) and then
recorded as a judge error: ``Score(value=None, error=...)``, never a default rating.

Requests go through their own ``EndpointPool`` (transport retries, rate limit) with
their own concurrency; tokens and time are counted on the scorer (``usage``),
apart from the answering model's. Prompt rendering and reply parsing are pure
functions, tested without a server.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from evalkit.config import JudgeSettings, RunConfig, field_default
from evalkit.serving.client import EndpointPool, RequestError, RetryPolicy, call_with_retries
from evalkit.core.records import Item, References, RubricItem, RubricItems, SampleRecord, Score
from evalkit.scoring.rubrics import Axis, Rubric, RubricError, load_rubric
from evalkit.scoring.base import ScorerError, register_scorer
from evalkit.scoring.metrics import ClippedMean, Mean, Metric, MetricError, Proportion, get_metric
from evalkit.serving.probe import KEY_REFUSED, key_refused_message

JUDGE_DEFAULTS = JudgeSettings()  # the judge's defaults: their one home is evalkit.config
DEFAULT_MAX_ATTEMPTS = field_default(JudgeSettings, "max_attempts")
DEFAULT_MAX_TOKENS = field_default(JudgeSettings, "max_tokens")
DEFAULT_CONCURRENCY = field_default(JudgeSettings, "concurrency")
REFERENCE_CHARS = 1500  # each reference answer is cut to this many characters in the judge prompt
# After this many judge requests in a row found no judge (each after its own retries), the judge is taken
# to be down, as a run takes its endpoints (dispatch.ENDPOINT_DOWN_AFTER): later asks fail at once, saved
# as to be asked again, instead of each going through its retries for minutes.
JUDGE_DOWN_AFTER = 8
TIE = "tie"

_THINK = re.compile(r"^\s*<think>.*?</think>", re.S)
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S | re.I)


# --------------------------------------------------------------------------- prompts (pure)


def answer_text(output: str | None) -> str:
    """The answer a judge grades: the output without a leading ``<think>...</think>`` block."""
    return _THINK.sub("", output or "").strip()


def reference_block(target: Any) -> str:
    """The reference answers of an item (a ``References`` target) as a prompt block, or '' (any other target)."""
    if not isinstance(target, References):
        return ""
    texts = [t.strip()[:REFERENCE_CHARS] for t in target.answers if t and t.strip()]
    if not texts:
        return ""
    lines = "\n".join(f"[{i}] {t}" for i, t in enumerate(texts, 1))
    return f"\nReference answer(s) from trusted sources:\n{lines}\n"


def scale_text(axis: Axis) -> str:
    return ", ".join(str(v) if axis.is_numeric else json.dumps(v) for v in axis.scale)


def example_reply(axes: Sequence[Axis]) -> str:
    """A well-formed reply (each axis at its last value), shown to the judge as the format."""
    return json.dumps({a.name: a.scale[-1] for a in axes})


def render_axes_prompt(rubric: Rubric, question: str, answer: str, *, reference: str = "") -> str:
    """The judge prompt for one answer on an axis rubric."""
    axes = "\n".join(f"- {a.name}: {a.question} One of: {scale_text(a)}." for a in rubric.axes)
    return rubric.template.format(question=question, answer=answer, reference=reference, axes=axes,
                                  example=example_reply(rubric.axes))


def conversation_text(messages: Sequence[dict[str, str]], answer: str) -> str:
    """The conversation with the graded answer as its last assistant turn, as a rubric-item grader shows it."""
    turns = [*messages, {"role": "assistant", "content": answer}]
    return "\n\n".join(f"{m.get('role', 'user')}: {m.get('content', '')}" for m in turns)


def render_item_prompt(rubric: Rubric, conversation: str, criterion: str, points: float) -> str:
    """The judge prompt for one rubric item of a ``rubric_items`` rubric."""
    pts = int(points) if float(points).is_integer() else points
    return rubric.template.format(conversation=conversation, criterion=criterion, points=pts,
                                  question=rubric.question)


PAIRWISE_TEMPLATE = """You are a careful medical expert comparing two answers to the same consumer health question.

Question:
{question}

Answer 1:
{first}

Answer 2:
{second}

For each axis below, say which answer is better on it: 1, 2, or "tie".
{axes}

Reply with one JSON object and nothing else, mapping each axis name to 1, 2 or "tie", for example:
{example}"""


def render_pairwise_prompt(axes: Sequence[Axis], question: str, first: str, second: str) -> str:
    """The judge prompt comparing two answers on AXES (which is better on each)."""
    lines = "\n".join(f"- {a.name}: {a.question}" for a in axes)
    example = json.dumps({a.name: (1, 2, TIE)[i % 3] for i, a in enumerate(axes)})
    return PAIRWISE_TEMPLATE.format(question=question, first=first, second=second, axes=lines, example=example)


# --------------------------------------------------------------------------- replies (pure)


def reply_object(text: str) -> tuple[dict | None, str | None]:
    """The JSON object in a judge reply (bare, in a code fence, or the first {...} in prose), or an error."""
    text = answer_text(text)
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    start = text.find("{")
    if start >= 0:
        candidates.append(text[start:])
    decoder = json.JSONDecoder()
    for cand in candidates:
        cand = cand.strip()
        i = cand.find("{")
        if i < 0:
            continue
        try:
            obj, _ = decoder.raw_decode(cand[i:])
        except (ValueError, RecursionError):  # a reply nested too deep holds no usable object either
            continue
        if isinstance(obj, dict):
            return obj, None
    if not text:
        return None, "the reply is empty"
    return None, "the reply holds no JSON object"


def _on_scale(axis: Axis, raw: Any) -> int | str | None:
    """RAW as a value of AXIS's scale (ints also as digit strings; labels case-insensitively), or None."""
    if axis.is_numeric:
        if isinstance(raw, bool):
            return None
        if isinstance(raw, float) and raw.is_integer():
            raw = int(raw)
        if isinstance(raw, str) and re.fullmatch(r"\s*-?\d+\s*", raw):
            raw = int(raw)
        return raw if isinstance(raw, int) and raw in axis.scale else None
    if not isinstance(raw, str):
        return None
    wanted = raw.strip().lower()
    for label in axis.scale:
        if str(label).strip().lower() == wanted:
            return label
    return None


def parse_axes_reply(text: str, axes: Sequence[Axis]) -> tuple[dict[str, int | str] | None, str | None]:
    """Each axis's rating in a judge reply, or None and what is wrong (missing axis, value off the scale)."""
    obj, error = reply_object(text)
    if obj is None:
        return None, error
    ratings: dict[str, int | str] = {}
    problems = []
    lowered = {str(k).strip().lower(): v for k, v in obj.items()}
    for axis in axes:
        if axis.name.lower() not in lowered:
            problems.append(f"axis {axis.name!r} is missing")
            continue
        raw = lowered[axis.name.lower()]
        value = _on_scale(axis, raw)
        if value is None:
            problems.append(f"{axis.name}: {json.dumps(raw)} is not on its scale ({scale_text(axis)})")
        else:
            ratings[axis.name] = value
    if problems:
        return None, "; ".join(problems)
    return ratings, None


def parse_met_reply(text: str) -> tuple[bool | None, str | None]:
    """Whether a rubric-item reply says the item is met (``{"criteria_met": true|false}``), or an error."""
    obj, error = reply_object(text)
    if obj is None:
        return None, error
    if "criteria_met" not in obj:
        return None, "key 'criteria_met' is missing"
    raw = obj["criteria_met"]
    if isinstance(raw, bool):
        return raw, None
    if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
        return raw.strip().lower() == "true", None
    return None, f"criteria_met must be true or false, got {json.dumps(raw)}"


def parse_pairwise_reply(text: str, axes: Sequence[Axis]) -> tuple[dict[str, str] | None, str | None]:
    """Per axis, ``"1"``, ``"2"`` or ``"tie"`` from a pairwise reply, or None and what is wrong."""
    obj, error = reply_object(text)
    if obj is None:
        return None, error
    lowered = {str(k).strip().lower(): v for k, v in obj.items()}
    out: dict[str, str] = {}
    problems = []
    for axis in axes:
        raw = lowered.get(axis.name.lower())
        value = str(raw).strip().lower() if isinstance(raw, (int, str)) and not isinstance(raw, bool) else None
        if value not in ("1", "2", TIE):
            problems.append(f"{axis.name}: {json.dumps(raw)} is not 1, 2 or \"tie\"")
        else:
            out[axis.name] = value
    if problems:
        return None, "; ".join(problems)
    return out, None


def rubric_items_score(items: Sequence[RubricItem], met: Sequence[bool]) -> float | None:
    """A record's rubric-item score: points of the items met (negative ones subtract) over the positive points.

    None when no item has positive points. Not clipped here: the rubric-item rule clips the
    mean over records to [0, 1], the metric the rubric declares (``rubric_metrics``).
    """
    possible = sum(float(i.points) for i in items if float(i.points) > 0)
    if possible == 0:
        return None
    achieved = sum(float(i.points) for i, m in zip(items, met, strict=True) if m)
    return achieved / possible


def rubric_metrics(rubric: Rubric) -> dict[str, Metric]:
    """How each score of RUBRIC aggregates: rubric items by their overall rule (the mean
    of per-record scores clipped to [0, 1]); an axis by the metric it names (``Axis.metric``), else
    on a two-value scale (0/1) as a proportion and any other as a mean. A metric that does not exist
    or does not take the parameters given is a RubricError naming the rubric and the axis."""
    if rubric.kind == "rubric_items":
        return {rubric.score_name: ClippedMean(0.0, 1.0)}
    return {a.name: _axis_metric(rubric, a) for a in rubric.axes}


def _axis_metric(rubric: Rubric, axis: Axis) -> Metric:
    if axis.metric is None:
        return Proportion() if axis.categories() == [0, 1] else Mean()
    try:
        return get_metric(axis.metric_spec)  # type: ignore[arg-type]
    except MetricError as exc:
        raise RubricError(f"{rubric.source}: axis {axis.name!r}: metric: {exc}") from None


# --------------------------------------------------------------------------- asking the judge


@dataclass
class JudgeReply:
    """The outcome of asking the judge one thing, after its attempts."""

    parsed: Any
    prompt: str
    reply: str
    usage: dict[str, int]
    latency_s: float
    attempts: int
    error: str | None = None
    retryable: bool = False  # the request failed (not the reply): a later resume may succeed

    def meta(self) -> dict[str, Any]:
        return {"judge_prompt": self.prompt, "judge_reply": self.reply, "judge_tokens": self.usage,
                "latency_s": round(self.latency_s, 4), "attempts": self.attempts}


@dataclass
class JudgeUsage:
    """Totals of the judge's requests (reported apart from the answering model's)."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    invalid_replies: int = 0

    def add(self, usage: dict[str, int], latency_s: float) -> None:
        self.requests += 1
        self.prompt_tokens += int(usage.get("prompt_tokens", 0))
        self.completion_tokens += int(usage.get("completion_tokens", 0))
        self.seconds += latency_s

    def to_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "seconds": round(self.seconds, 3),
                "invalid_replies": self.invalid_replies}


def _add_usage(total: dict[str, int], usage: dict[str, int]) -> None:
    for k, v in usage.items():
        total[k] = total.get(k, 0) + int(v)


from evalkit.config import JUDGE_API_KEY_ENV  # noqa: E402,F401 (where the judge's key comes from)


@register_scorer("judge")
class RubricJudgeScorer:
    """Grade answers with a served model on RUBRIC (a shipped name, a file path, or a Rubric).

    ``endpoint`` is one base URL (ending in /v1) or several (comma-separated or a
    list); ``model`` the model id to request. Greedy (``temperature`` 0) by default.
    ``reference`` puts an item's reference answers (a ``References`` target) in the prompt of
    an axis rubric. The judge's API key is read from ``$EVALKIT_JUDGE_API_KEY`` (or the variable
    ``api_key_env`` names); ``api_key`` still works but shows on a command line. Use ``async with``
    or call ``aclose()`` when done.
    """

    name = "judge"

    def __init__(self, rubric: str | Rubric = JUDGE_DEFAULTS.rubric, endpoint: str | Sequence[str] = "",
                 model: str = "", *, concurrency: int | str = DEFAULT_CONCURRENCY,
                 rps: float | str | None = JUDGE_DEFAULTS.rps, temperature: float | str = JUDGE_DEFAULTS.temperature,
                 max_tokens: int | str = DEFAULT_MAX_TOKENS, max_attempts: int | str = DEFAULT_MAX_ATTEMPTS,
                 reference: bool | str = JUDGE_DEFAULTS.reference, json_schema: bool | str = JUDGE_DEFAULTS.json_schema,
                 api_key: str | None = None, api_key_env: str = JUDGE_API_KEY_ENV,
                 timeout_s: float | str = field_default(RunConfig, "timeout_s"), retry: RetryPolicy | None = None):
        self.rubric = rubric if isinstance(rubric, Rubric) else load_rubric(rubric)
        rubric_metrics(self.rubric)  # an axis's metric that cannot be built fails here, before any request
        urls = endpoint.split(",") if isinstance(endpoint, str) else list(endpoint)
        self.endpoints = [u.strip() for u in urls if u and u.strip()]
        if not self.endpoints:
            raise ScorerError("the judge needs an endpoint (--judge-endpoint URL or --judge-server NAME)")
        if not model:
            raise ScorerError("the judge needs a model id (--judge-model NAME)")
        self.model = model
        self.concurrency = int(concurrency)
        self.rps = float(rps) if rps not in (None, "") else None
        self.temperature = float(temperature)
        self.max_tokens = int(max_tokens)
        self.max_attempts = int(max_attempts)
        if self.max_attempts < 1 or self.concurrency < 1:
            raise ScorerError("the judge needs max_attempts >= 1 and concurrency >= 1")
        self.reference = _as_bool(reference)
        self.json_schema = _as_bool(json_schema)
        # The key: API_KEY if given, else $API_KEY_ENV; never part of spec() (so never in a manifest).
        self.api_key = str(api_key) if api_key else (os.environ.get(str(api_key_env)) or None)
        self.api_key_env = str(api_key_env)  # named in the message when the judge refuses the key
        self.timeout_s = float(timeout_s)
        self.retry = retry or RetryPolicy()
        self.requires: tuple[str, ...] = ("question", "target") if self.rubric.kind == "rubric_items" else ("question",)
        self.usage = JudgeUsage()
        self.down: RequestError | None = None  # why the judge is taken to be down (see JUDGE_DOWN_AFTER)
        self._unanswered = 0  # judge requests in a row that failed on a retryable error
        self._pool: EndpointPool | None = None
        self._slots: asyncio.Semaphore | None = None
        self._opening: asyncio.Lock | None = None

    # ----- protocol

    @property
    def metrics(self) -> dict[str, Metric]:
        """Score name -> metric: see ``rubric_metrics``."""
        return rubric_metrics(self.rubric)

    @staticmethod
    def metrics_for_spec(spec: Mapping[str, Any]) -> dict[str, Metric]:
        """The metrics of a judge recorded with SPEC (a run written before metrics were recorded):
        its rubric by name, when that rubric is still the same file; none otherwise."""
        try:
            rubric = load_rubric(str(spec.get("rubric")))
        except (RubricError, OSError):
            return {}
        return rubric_metrics(rubric) if rubric.sha256 == spec.get("rubric_sha256") else {}

    def spec(self) -> dict[str, Any]:
        """Everything that changes the judge's scores: rubric content, judge model, template, sampling."""
        return {"rubric": self.rubric.name, "rubric_sha256": self.rubric.sha256, "model": self.model,
                "template_sha256": hashlib.sha256(self.rubric.template.encode()).hexdigest(),
                "temperature": self.temperature, "max_tokens": self.max_tokens, "max_attempts": self.max_attempts,
                "reference": self.reference, "json_schema": self.json_schema}

    async def score(self, item: Item, sample: SampleRecord) -> dict[str, Score]:
        """One Score per axis (or the rubric-item score) for SAMPLE's answer to ITEM."""
        answer = answer_text(sample.output)
        if self.rubric.kind == "rubric_items":
            return {self.rubric.score_name: await self._score_items(item, sample, answer)}
        reference = reference_block(item.target) if self.reference else ""
        prompt = render_axes_prompt(self.rubric, item.question, answer, reference=reference)
        got = await self.ask(prompt, lambda text: parse_axes_reply(text, self.rubric.axes),
                             schema=self._axes_schema() if self.json_schema else None)
        scores: dict[str, Score] = {}
        first = self.rubric.axes[0].name
        for axis in self.rubric.axes:
            # One request graded every axis: its prompt, reply, tokens and time are stored once, with the
            # first axis; the others name it (``judged_with``).
            meta = {**got.meta(), "axis": axis.name} if axis.name == first else {"axis": axis.name,
                                                                                  "judged_with": first}
            if got.error is not None:
                if got.retryable:
                    meta["retryable"] = True
                scores[axis.name] = Score(None, meta=meta, error=got.error)
            else:
                rating = got.parsed[axis.name]
                scores[axis.name] = Score(axis.value_of(rating), answer=str(rating), meta=meta)
        return scores

    async def _score_items(self, item: Item, sample: SampleRecord, answer: str) -> Score:
        items = item.target.items if isinstance(item.target, RubricItems) else ()
        if not items:
            return Score(None, error=f"item {item.id!r} has no rubric items ({{criterion, points}}) in its target")
        # The conversation answered: the item's, else the one the sample sent (a saved run's prompt).
        sent = sample.prompt if isinstance(sample.prompt, list) else None
        messages = item.messages or sent or [{"role": "user", "content": item.question}]
        conversation = conversation_text(messages, answer)
        schema = {"type": "object", "properties": {"criteria_met": {"type": "boolean"}},
                  "required": ["criteria_met"]} if self.json_schema else None
        replies = await asyncio.gather(*(
            self.ask(render_item_prompt(self.rubric, conversation, i.criterion, float(i.points)),
                     parse_met_reply, schema=schema) for i in items))
        graded = []
        usage: dict[str, int] = {}
        latency = 0.0
        attempts = 0
        errors = []
        for n, (rubric_item, got) in enumerate(zip(items, replies)):
            _add_usage(usage, got.usage)
            latency += got.latency_s
            attempts += got.attempts
            graded.append({"criterion": rubric_item.criterion, "points": rubric_item.points, "met": got.parsed,
                           "judge_prompt": got.prompt, "judge_reply": got.reply, "attempts": got.attempts,
                           **({"error": got.error} if got.error else {})})
            if got.error:
                errors.append((n, got))
        meta: dict[str, Any] = {"items": graded, "judge_tokens": usage, "latency_s": round(latency, 4),
                                "attempts": attempts}
        if errors:
            n, first = errors[0]
            if any(g.retryable for _, g in errors):
                meta["retryable"] = True
            return Score(None, meta=meta, error=f"{len(errors)} of {len(items)} rubric items not graded "
                                                f"(item {n + 1}: {first.error})")
        value = rubric_items_score(items, [g["met"] for g in graded])
        met = sum(1 for g in graded if g["met"])
        return Score(value, answer=f"{met}/{len(items)} met", meta=meta,
                     error=None if value is not None else "no rubric item has positive points")

    # ----- pairwise

    async def compare(self, item: Item, answer_a: str, answer_b: str) -> tuple[JudgeReply, JudgeReply]:
        """Ask which of two answers is better on each axis, in both orders: (A first, B first)."""
        if self.rubric.kind != "axes":
            raise ScorerError(f"pairwise ranking needs an axis rubric, not {self.rubric.name!r} ({self.rubric.kind})")
        a, b = answer_text(answer_a), answer_text(answer_b)
        schema = None
        if self.json_schema:
            schema = {"type": "object", "required": [x.name for x in self.rubric.axes],
                      "properties": {x.name: {"enum": [1, 2, TIE]} for x in self.rubric.axes}}

        def parse(text: str) -> tuple[Any, str | None]:
            return parse_pairwise_reply(text, self.rubric.axes)

        return await asyncio.gather(
            self.ask(render_pairwise_prompt(self.rubric.axes, item.question, a, b), parse, schema=schema),
            self.ask(render_pairwise_prompt(self.rubric.axes, item.question, b, a), parse, schema=schema))

    # ----- requests

    async def ask(self, prompt: str, parse: Callable[[str], tuple[Any, str | None]], *,
                  schema: dict | None = None) -> JudgeReply:
        """Send PROMPT; re-ask (telling the judge what was wrong) until PARSE accepts a reply or attempts run out."""
        if self.down is not None:
            return JudgeReply(None, prompt, "", {}, 0.0, 0, error=f"judge request not sent: {self.down_reason()}",
                              retryable=True)
        pool, slots = await self._open()
        messages: list[dict[str, str]] = [{"role": "user", "content": prompt}]
        usage: dict[str, int] = {}
        latency = 0.0
        reply = ""
        error = "no reply"
        for attempt in range(1, self.max_attempts + 1):
            body: dict[str, Any] = {"model": self.model, "messages": messages, "max_tokens": self.max_tokens,
                                    "temperature": self.temperature}
            if schema is not None:
                body["response_format"] = {"type": "json_object", "schema": schema}
            payload = json.dumps(body).encode()
            t0 = time.perf_counter()
            try:
                async with slots:
                    if self.down is not None:  # found down while this ask waited for a slot
                        raise self.down
                    gens = await call_with_retries(lambda: pool.send(payload), self.retry)
            except RequestError as exc:
                self._failed(exc)
                # A judge that refuses the key answers the next run that has it: asked again, like an outage.
                return JudgeReply(None, prompt, reply, usage, latency + time.perf_counter() - t0, attempt,
                                  error=f"judge request failed: {exc}",
                                  retryable=exc.retryable or exc.status in KEY_REFUSED)
            self._unanswered = 0
            gen = gens[0]
            latency += gen.latency_s
            _add_usage(usage, gen.usage)
            self.usage.add(gen.usage, gen.latency_s)
            reply = gen.text
            parsed, error = parse(reply)
            if error is None:
                return JudgeReply(parsed, prompt, reply, usage, latency, attempt)
            self.usage.invalid_replies += 1
            messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": reply},
                        {"role": "user", "content": f"That reply cannot be used: {error}. "
                                                    "Reply again with only the JSON object, in the format asked."}]
        return JudgeReply(None, prompt, reply, usage, latency, self.max_attempts,
                          error=f"no valid judge reply after {self.max_attempts} attempts: {error}")

    def _failed(self, exc: RequestError) -> None:
        """Count a failed judge request; the judge is down once it refuses the key, or after
        JUDGE_DOWN_AFTER retryable failures in a row."""
        if self.down is not None:
            return
        if exc.status in KEY_REFUSED:
            self.down = exc
        elif exc.retryable:
            self._unanswered += 1
            if self._unanswered >= JUDGE_DOWN_AFTER:
                self.down = exc

    def down_reason(self) -> str | None:
        """Why the judge is taken to be down, in words (None while it is not): it refuses the key, or
        its requests failed JUDGE_DOWN_AFTER times in a row."""
        exc = self.down
        if exc is None:
            return None
        if exc.status in KEY_REFUSED:
            where = f"${self.api_key_env} (or --judge-api-key, or judge.api_key in a run)"
            return f"{exc.endpoint}: " + key_refused_message(exc.status, given=bool(self.api_key), where=where,
                                                             who="the judge")
        return f"the judge stopped answering: {JUDGE_DOWN_AFTER} requests in a row failed (the last: {exc})"

    def _axes_schema(self) -> dict:
        return {"type": "object", "required": [a.name for a in self.rubric.axes],
                "properties": {a.name: {"enum": list(a.scale)} for a in self.rubric.axes}}

    async def _open(self) -> tuple[EndpointPool, asyncio.Semaphore]:
        # Opened on first use, inside the caller's event loop (aiohttp sessions belong to one loop).
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._pool is None:
                pool = EndpointPool(self.endpoints, model=self.model, api_key=self.api_key, timeout_s=self.timeout_s,
                                    retry=self.retry, max_connections=max(8, self.concurrency * 2), rps=self.rps)
                await pool.__aenter__()
                self._pool = pool
                self._slots = asyncio.Semaphore(self.concurrency)
        assert self._pool is not None and self._slots is not None
        return self._pool, self._slots

    async def aclose(self) -> None:
        """Close the judge's HTTP session (a later call opens a new one)."""
        if self._pool is not None:
            await self._pool.__aexit__(None, None, None)
        self._pool = None
        self._slots = None
        self._opening = None

    async def __aenter__(self) -> "RubricJudgeScorer":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _as_bool(value: bool | str) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")
