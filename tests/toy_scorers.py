"""Scorers defined outside evalkit, loaded by ``--scorer tests.toy_scorers:NAME`` (no edit to evalkit)."""

from __future__ import annotations

import asyncio
import os

from evalkit.core.records import Score


class ToyScorer:
    """A continuous score: the share of the item's option letters the output names (0..1)."""

    name = "toy"
    requires = ("question",)

    def __init__(self, weight: float = 1.0):
        self.weight = weight

    def spec(self) -> dict:
        return {"weight": self.weight, "version": 1}

    def score(self, item, sample):
        text = sample.output or ""
        letters = list(item.options) or ["A"]
        named = sum(1 for letter in letters if f"{letter}." in text or f" {letter}" in text)
        return {"letters_named": Score(self.weight * named / len(letters), answer=str(named))}


class CountingAsyncScorer:
    """An asynchronous scorer (like a model judge) that counts its calls in $TOY_CALLS_FILE and can
    be told to fail after N calls ($TOY_FAIL_AFTER), to test that a pass resumes."""

    name = "counting"
    requires = ("question",)

    def spec(self) -> dict:
        return {"v": 1}

    async def score(self, item, sample):
        path = os.environ["TOY_CALLS_FILE"]
        with open(path, "a") as fh:
            fh.write(f"{item.id}\n")
        with open(path) as fh:
            calls = sum(1 for _ in fh)
        fail_after = int(os.environ.get("TOY_FAIL_AFTER", "0"))
        if fail_after and calls > fail_after:
            raise KeyboardInterrupt  # a pass killed mid-way
        await asyncio.sleep(0)
        return {"length_ok": Score(len(sample.output or "") > 5)}


TOY_INSTANCE = ToyScorer(weight=0.5)


class _Median:
    """A metric defined outside evalkit (``get_metric("tests.toy_scorers:MedianMetric")``)."""

    name = "median"

    def spec(self) -> dict:
        return {"name": "tests.toy_scorers:MedianMetric"}

    def aggregate(self, scores):
        from evalkit.scoring.metrics import MetricValue

        values = sorted(s["value"] for s in scores if s.get("value") is not None)
        mid = values[len(values) // 2] if values else None
        return MetricValue(mid, None, len(values), {})


MedianMetric = _Median()


def first_letter_extractor(text, options):
    """An extractor defined outside evalkit (``choice.extractor=tests.toy_scorers:first_letter_extractor``)."""
    for ch in text:
        if ch in options:
            return ch, "first_letter"
    return None, None


class SectionScorer:
    """A scorer with its own report section (declared on the class, as evalkit.scoring.base says): per
    dataset, how many answers name option A. No evalkit code knows it."""

    name = "sectioned"
    requires = ("question",)

    def spec(self) -> dict:
        return {"v": 1}

    def score(self, item, sample):
        return {"names_a": Score("answer is A" in (sample.output or ""))}

    @staticmethod
    def report_extra(samples):
        values = [s["scores"]["names_a"]["value"] for s in samples if "names_a" in (s.get("scores") or {})]
        return {"sectioned": {"n": len(values), "a": sum(values)}} if values else {}

    @staticmethod
    def report_tables(rows):
        from evalkit.core.records import ReportTable

        lines = [(r.run, r.dataset, str(r.extra["sectioned"]["n"]), str(r.extra["sectioned"]["a"]))
                 for r in rows if r.group is None and "sectioned" in r.extra]
        if not lines:
            return []
        return [ReportTable("Answers naming A", ("run", "dataset", "n", "named A"), tuple(lines),
                            ("named A: the reply says 'answer is A' <b>",))]


class SlowAsyncScorer:
    """An asynchronous scorer that takes $TOY_DELAY_S seconds a sample and notes each call in
    $TOY_CALLS_FILE (a judge pass to kill mid-way)."""

    name = "slow"
    requires = ("question",)

    def spec(self) -> dict:
        return {"v": 1}

    async def score(self, item, sample):
        with open(os.environ["TOY_CALLS_FILE"], "a") as fh:
            fh.write(f"{item.id}\n")
        await asyncio.sleep(float(os.environ.get("TOY_DELAY_S", "0")))
        return {"length_ok": Score(len(sample.output or "") > 5)}
