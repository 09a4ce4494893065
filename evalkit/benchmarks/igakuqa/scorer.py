"""The IgakuQA scorer: sets of choices, alternatives and numbers, weighted by the exam's points.

Two scores per answer:
- ``igakuqa``: right or wrong (evalkit.benchmarks.igakuqa.exam.grade), with ``meta["weight"]`` = the question's
  points (1 or 3; 0 for a question the ministry excluded, which the metric leaves out and counts
  as excluded). Its metric is ``weighted_proportion``: the exam score (points earned / points).
  The meta also carries what the report beside the examinees needs (exam, section, text_only,
  human_accuracy, kinki_picked, and examinees_same: the share of examinees who chose the model's
  single choice, from the per-choice breakdown).
- ``kinki_picked``: True when the answer picked a contraindicated (禁忌) choice; its metric
  ``count`` is the number of such questions (the exam fails a candidate above a limit).

Its report section (``report_extra`` / ``report_tables``, see ``evalkit.scoring.base``): the model
beside the examinees per exam and section, on the hard, text-only and with-image subsets, the
contraindicated picks and pass/fail against the published criteria (``evalkit.benchmarks.igakuqa.exam``).

The compat fields ``pred`` (the choices read, "a,c", or the number), ``method`` and ``correct``
(unweighted) are set on the sample as the choice scorer sets them, so tables that read them work.
"""

from __future__ import annotations

from typing import Any, Mapping

from evalkit.benchmarks.igakuqa.exam import grade, report_extra, report_tables, same_choice_share
from evalkit.core.records import Item, SampleRecord, Score
from evalkit.scoring.base import register_scorer
from evalkit.scoring.count import Count
from evalkit.scoring.metrics import WeightedProportion

SCORE_NAME = "igakuqa"
KINKI_SCORE = "kinki_picked"
# Questions every examinee was credited with (the ministry's 採点除外等の取扱い, kept with their
# points in the data); the same list as the IgakuQA authors' scripts/evaluate_main.py @ 2bc4c3d1.
CREDITED_TO_ALL = ("116A71",)


@register_scorer("igakuqa")
class IgakuQAScorer:
    """Grade IgakuQA answers (see the module docstring)."""

    name = "igakuqa"
    requires = ("target",)
    # The report section: one dataset's tally kept on its report row, and the table made of the rows.
    report_extra = staticmethod(report_extra)
    report_tables = staticmethod(report_tables)

    def __init__(self, credited_to_all: tuple[str, ...] | str = CREDITED_TO_ALL):
        if isinstance(credited_to_all, str):
            credited_to_all = tuple(x.strip() for x in credited_to_all.split(",") if x.strip())
        self.credited_to_all = tuple(credited_to_all)
        self.metrics = {SCORE_NAME: WeightedProportion(), KINKI_SCORE: Count()}

    def spec(self) -> dict[str, Any]:
        return {"rules": "igakuqa-2", "credited_to_all": list(self.credited_to_all)}

    def score(self, item: Item, sample: SampleRecord) -> dict[str, Score]:
        meta = item.meta or {}
        got = grade(item.target, item.options or {}, sample.output, meta.get("kinki") or ())
        right = got["correct"] or item.id in self.credited_to_all
        common = {k: meta.get(k) for k in ("exam", "section", "text_only", "human_accuracy", "required")}
        exam_meta = {**common, "weight": int(meta.get("points", 1)), "method": got["method"],
                     "kinki_picked": got["kinki_picked"], "examinees_same": same_choice_share(got["answer"], meta)}
        if item.id in self.credited_to_all:
            exam_meta["credited_to_all"] = True
        return {SCORE_NAME: Score(bool(right), answer=got["answer"], meta=exam_meta),
                KINKI_SCORE: Score(bool(got["kinki_picked"]), answer=",".join(got["kinki_picked"]) or None,
                                   meta={"weight": int(meta.get("points", 1))})}

    @staticmethod
    def sample_fields(scores: Mapping[str, Score]) -> dict[str, Any]:
        """The top-level fields the choice scorer writes (unweighted ``correct``)."""
        s = scores[SCORE_NAME]
        return {"pred": s.answer, "method": s.meta.get("method"), "correct": bool(s.value)}

