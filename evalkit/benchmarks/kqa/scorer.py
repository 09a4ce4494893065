"""The K-QA scorer: a model judge labels each gold statement against the answer (evalkit.benchmarks.kqa.statements).

Two scores per answer, from one set of judge requests:
- ``comprehensiveness``: the share of the question's Must_have statements the answer entails
  (metric ``mean``: K-QA's Comp_norm); its meta holds each statement's label, the judge's prompt
  and reply (stored once, here only) and the judge's requests, tokens and seconds;
- ``hallucination``: how many statements (Must_have and Nice_to_have) the answer contradicts
  (metric ``mean``: Hall_norm, contradicted statements per answered question).
The scorer's report section (``report_extra`` / ``report_tables``) gives Comp and Hall over all
questions asked, as K-QA's script does, and the judge's cost.

Requests go through a ``RubricJudgeScorer`` used as the client (its pool, retries with the reason,
concurrency and usage counters); its rubric plays no part.
"""

from __future__ import annotations

from typing import Any, Sequence

from evalkit.config import RunConfig, field_default
from evalkit.benchmarks.kqa.statements import PER_MODES, answer_figures, judge_spec, judge_statements, report_extra, report_tables, statements
from evalkit.benchmarks.kqa.targets import Statements
from evalkit.core.records import Item, SampleRecord, Score
from evalkit.scoring.base import ScorerError, register_scorer
from evalkit.scoring.metrics import Mean
from evalkit.scoring.rubric_judge import (DEFAULT_CONCURRENCY, DEFAULT_MAX_ATTEMPTS, JUDGE_DEFAULTS, RubricJudgeScorer,
                                          answer_text)

DEFAULT_MAX_TOKENS = 512


@register_scorer("kqa")
class KQAScorer:
    """Label K-QA statements with a served judge, one request per statement (``per="statement"``) or
    one per answer (``per="answer"``)."""

    name = "kqa"
    requires = ("target",)
    # The report section: one dataset's Comp / Hall and judge cost on its report row, and the table.
    report_extra = staticmethod(report_extra)
    report_tables = staticmethod(report_tables)

    def __init__(self, endpoint: str | Sequence[str] = "", model: str = "", *, per: str = JUDGE_DEFAULTS.request_per,
                 concurrency: int | str = DEFAULT_CONCURRENCY, rps: float | str | None = JUDGE_DEFAULTS.rps,
                 temperature: float | str = JUDGE_DEFAULTS.temperature, max_tokens: int | str = DEFAULT_MAX_TOKENS,
                 max_attempts: int | str = DEFAULT_MAX_ATTEMPTS, json_schema: bool | str = JUDGE_DEFAULTS.json_schema,
                 api_key: str | None = None, timeout_s: float | str = field_default(RunConfig, "timeout_s")):
        if per not in PER_MODES:
            raise ScorerError(f"kqa: per must be one of {', '.join(PER_MODES)}, not {per!r}")
        self.per = per
        self.client = RubricJudgeScorer("grade4", endpoint, model, concurrency=concurrency, rps=rps,
                                  temperature=temperature, max_tokens=max_tokens, max_attempts=max_attempts,
                                  reference=False, json_schema=json_schema, api_key=api_key, timeout_s=timeout_s)
        self.metrics = {"comprehensiveness": Mean(), "hallucination": Mean()}

    @property
    def usage(self) -> Any:
        """The judge's request totals (reported apart from the answering model's)."""
        return self.client.usage

    def spec(self) -> dict[str, Any]:
        c = self.client
        return {"kqa": judge_spec(c.model, self.per, c.temperature, c.max_tokens, c.max_attempts, c.json_schema)}

    async def score(self, item: Item, sample: SampleRecord) -> dict[str, Score]:
        target = item.target if isinstance(item.target, Statements) else Statements(())
        pairs = statements(target)
        if not target.must_have:
            error = f"item {item.id!r} has no Must_have statements in its target (use the kqa adapter)"
            return {"comprehensiveness": Score(None, error=error), "hallucination": Score(None, error=error)}
        labels, replies = await judge_statements(self.client.ask, item.question, answer_text(sample.output),
                                                 [s for s, _ in pairs], self.per,
                                                 json_schema=self.client.json_schema)
        tokens: dict[str, int] = {}
        for r in replies:
            for k, v in r.usage.items():
                tokens[k] = tokens.get(k, 0) + int(v)
        meta: dict[str, Any] = {
            "kqa": True, "per": self.per, "judge_requests": sum(r.attempts for r in replies), "judge_tokens": tokens,
            "latency_s": round(sum(r.latency_s for r in replies), 4), "attempts": sum(r.attempts for r in replies),
            "statements": [{"kind": kind, "text": text, "label": label,
                            **({"judge_reply": r.reply} if self.per == "statement" else {})}
                           for (text, kind), label, r in zip(pairs, labels, replies * len(pairs)
                                                             if self.per == "answer" else replies)]}
        if self.per == "answer":
            meta.update(judge_prompt=replies[0].prompt, judge_reply=replies[0].reply)
        failed = [r for r in replies if r.error]
        if failed:
            if any(r.retryable for r in failed):
                meta["retryable"] = True
            error = f"{len(failed)} of {len(replies)} judge requests got no valid reply ({failed[0].error})"
            return {"comprehensiveness": Score(None, meta=meta, error=error),
                    "hallucination": Score(None, error=error)}
        comp, contradicted, texts = answer_figures(target, labels)
        must = len(target.must_have)
        return {"comprehensiveness": Score(comp, answer=f"{round(comp * must)}/{must} Must_have entailed",
                                           meta=meta),
                "hallucination": Score(contradicted, answer=f"{contradicted} contradicted",
                                       meta={"contradicted": texts})}

    def down_reason(self) -> str | None:
        """Why the judge is taken to be down (it refuses the key, or stopped answering), else None."""
        return self.client.down_reason()

    async def aclose(self) -> None:
        """Close the judge's HTTP session."""
        await self.client.aclose()
