"""The multiple-choice scorer: which option a generation chose, and whether it is the gold one.

Wraps the extractors (evalkit.scoring.extract: the ordered cascade ``evalkit``, and any
a benchmark registers, such as one reproducing another harness's scorer). One score, ``correct`` (a bool), whose answer
is the extracted letter and whose meta names the rule that matched. It also sets
the sample's compat fields ``pred``, ``method`` and ``correct``. A multi-sample
record (``stages``, made by evalkit.run.sampling's strategies) is decided by majority vote over its
last stage, each generation re-extracted (``majority_vote``, ``stage_summary``: pure functions the
results' k-sample metrics use too).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable, Iterable, Mapping

from evalkit.scoring.extract import DEFAULT_EXTRACTOR, EXTRACTORS, get_extractor
from evalkit.core.records import Item, SampleRecord, Score
from evalkit.scoring.base import register_scorer
from evalkit.scoring.metrics import Metric, Proportion

SCORE_NAME = "correct"


def is_correct(pred: str | None, answer_idx: str | None) -> bool:
    """The verdict rule: an unparsed answer is wrong; letters compare case-insensitively."""
    return pred is not None and answer_idx is not None and pred.upper() == str(answer_idx).strip().upper()


# ---------------------------------------------------------------- the vote of a multi-sample record


def majority_vote(letters: Iterable[str | None]) -> tuple[str | None, dict[str, int]]:
    """The winning letter and the vote counts (in first-vote order) over LETTERS.

    None entries (unparsed generations) are ignored; with no vote at all the
    winner is None. Ties go to the letter voted for first.
    """
    counts: Counter[str] = Counter()
    for letter in letters:
        if letter is not None:
            counts[letter] += 1  # Counter keeps first-insertion order
    if not counts:
        return None, {}
    top = max(counts.values())
    winner = next(letter for letter, c in counts.items() if c == top)
    return winner, dict(counts)


def stage_summary(name: str, prompt: str, outputs: list[dict[str, Any]]) -> dict[str, Any]:
    """One stage of a multi-sample record: its prompt, votes, unparsed count, and generations in order."""
    outputs = sorted(outputs, key=lambda g: g["k"])
    winner, votes = majority_vote(g["pred"] for g in outputs)
    return {
        "name": name,
        "prompt": prompt,
        "pred": winner,
        "votes": votes,
        "unparsed": sum(g["pred"] is None for g in outputs),
        "outputs": outputs,
    }


def shown_generation(stage: dict[str, Any]) -> dict[str, Any]:
    """The generation a multi-sample record shows as its ``output``: the first that voted for the winner."""
    return next((g for g in stage["outputs"] if g["pred"] == stage["pred"]), stage["outputs"][0])


@register_scorer("choice")
class ChoiceScorer:
    """Extract the chosen option with EXTRACTOR and mark it right or wrong."""

    name = "choice"
    requires = ("options", "answer_idx")
    metrics: Mapping[str, Metric] = {SCORE_NAME: Proportion()}

    def __init__(self, extractor: "str | Callable" = DEFAULT_EXTRACTOR):
        if callable(extractor):  # an extractor function itself (library use)
            self.extract = extractor
            self.extractor_name = next((n for n, f in EXTRACTORS.items() if f is extractor),
                                       f"{extractor.__module__}:{extractor.__qualname__}")
        else:
            self.extractor_name = extractor
            self.extract = get_extractor(extractor)

    def spec(self) -> dict[str, Any]:
        return {"extractor": self.extractor_name}

    @staticmethod
    def metrics_for_spec(spec: Mapping[str, Any]) -> Mapping[str, Metric]:
        """The metrics of a choice scorer recorded with SPEC (the same whatever the extractor)."""
        return ChoiceScorer.metrics

    def score(self, item: Item, sample: SampleRecord) -> dict[str, Score]:
        if sample.stages:
            return {SCORE_NAME: self._vote(item, sample)}
        pred, method = self.extract(sample.output or "", item.options)
        return {SCORE_NAME: Score(is_correct(pred, item.answer_idx), answer=pred, meta={"method": method})}

    def _vote(self, item: Item, sample: SampleRecord) -> Score:
        stages = []
        for stage in sample.stages or []:
            outputs = []
            for g in stage["outputs"]:
                pred, method = self.extract(g.get("output") or "", item.options)
                outputs.append({**g, "pred": pred, "method": method})
            stages.append(stage_summary(stage["name"], stage["prompt"], outputs))
        pred = stages[-1]["pred"] if stages else None
        return Score(is_correct(pred, item.answer_idx), answer=pred, meta={"method": "majority_vote", "stages": stages})

    @staticmethod
    def sample_fields(scores: Mapping[str, Score]) -> dict[str, Any]:
        """The top-level fields earlier versions wrote (pred, method, correct; votes for a vote)."""
        s = scores[SCORE_NAME]
        fields: dict[str, Any] = {"pred": s.answer, "method": s.meta.get("method"), "correct": bool(s.value)}
        stages = s.meta.pop("stages", None)  # stored once, in the record's own ``stages``
        if stages is not None:
            shown = shown_generation(stages[-1]) if stages and stages[-1]["outputs"] else {}
            fields.update(stages=stages, votes=stages[-1]["votes"] if stages else {},
                          output=shown.get("output", ""), finish_reason=shown.get("finish_reason"),
                          truncated=shown.get("finish_reason") == "length")
        return fields
