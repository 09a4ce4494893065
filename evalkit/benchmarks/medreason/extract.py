"""Compatibility extractor: the MedReason / HuatuoGPT-o1 ``match_choice`` scorer, reproduced.

Published MedReason and HuatuoGPT-o1 tables were scored this way, so evalkit
offers it (``--extractor medreason``) to make numbers comparable. It is NOT
evalkit's default, because:

* it always returns a letter: when nothing matches it takes the option whose
  text is most similar (difflib ratio) to the whole generation, so a refusal
  or a truncated reasoning still scores as some letter;
* its reporting takes, per source, the higher of first-match and last-match
  accuracy, a choice made after seeing the labels.

Behaviour reproduced, step by step (``match_choice``):

1. Keep the text after the last ``"## Final Response\\n\\n"``; else after the
   last ``"## Final Answer\\n\\n"``; else after the last ``"</think>"``.
2. ``answer is`` (case-sensitive) followed lazily by whitespace and a capital
   A-N (any of A-N, whatever the number of options): first and last match.
3. Non-strict: a capital among the first len(options) letters of A-N, preceded
   by a CJK character, ``"is "``, a non-word character or the start of the
   text, not ``"A "``, and followed by a non-word character, a CJK character
   or the end. Matches do not overlap (each consumes its neighbours).
4. Option text in the lowercased text: "last" is the option whose last
   occurrence is latest; "first" (as the original computes it) is the option
   whose first occurrence is latest. Ties go to the earlier option.
5. Otherwise the option most similar to the lowercased text
   (``difflib.SequenceMatcher(None, option, text).ratio()``; ties go to the
   later option), for both first and last.

Reporting (``medreason_report``): per source, max(first-match accuracy,
last-match accuracy); generations that are empty after the original's
post-processing (``"</s>"`` removed, one leading space dropped) are left out
of the denominator, as the original never saved them.
"""

from __future__ import annotations

import difflib
import re
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Mapping, NamedTuple

from evalkit.core.records import Extraction, ReportTable
from evalkit.results.report import pct

_STRICT = re.compile(r"answer is\s*?([A-N])", re.S)
_CJK = "\u4e00-\u9fff"
_LETTER_POOL = "ABCDEFGHIJKLMN"
_NON_STRICT: dict[int, re.Pattern[str]] = {}


def _non_strict(n_options: int) -> re.Pattern[str]:
    """The non-strict letter pattern for an item with N_OPTIONS options (cached)."""
    pattern = _NON_STRICT.get(n_options)
    if pattern is None:
        letters = _LETTER_POOL[:n_options]
        # Single characters such as 是 项 为 * ( ' " # and space in the original
        # prefix list are already covered by the CJK range or by \W, which are
        # tried before them and consume the same single character.
        pattern = re.compile(
            rf"(?:[{_CJK}]|is |\W|^)(?![aA] )([{letters}])(?:\W|[{_CJK}]|$)" if letters else r"(?!)",
            re.S,
        )
        _NON_STRICT[n_options] = pattern
    return pattern


class MedReasonMatch(NamedTuple):
    """What ``match_choice`` returns: the first and last letter and the rule type.

    ``kind`` is 1 for a letter pattern, 2 for an option-text match, 3 for the
    most-similar-option fallback. ``rule`` names the step more finely.
    """

    first: str
    last: str
    kind: int
    rule: str


def final_part(text: str) -> str:
    """Step 1: the part after the last Final Response / Final Answer heading or </think>."""
    for marker in ("## Final Response\n\n", "## Final Answer\n\n", "</think>"):
        if marker in text:
            return text.rsplit(marker, 1)[-1]
    return text


def _most_similar(option_texts: list[str], text: str) -> int:
    best_index, best_ratio = 0, 0.0
    for index, option in enumerate(option_texts):
        ratio = difflib.SequenceMatcher(None, option, text).ratio()
        if ratio >= best_ratio:  # '>=': the later option wins a tie
            best_index, best_ratio = index, ratio
    return best_index


def match_choice(text: str, options: Mapping[str, str]) -> MedReasonMatch:
    """The MedReason/HuatuoGPT-o1 choice matcher: always a letter, with first and last match."""
    text = final_part(text)
    strict = _STRICT.findall(text)
    if strict:
        return MedReasonMatch(strict[0], strict[-1], 1, "answer_is")
    loose = _non_strict(len(options)).findall(text)
    if loose:
        return MedReasonMatch(loose[0], loose[-1], 1, "letter")
    low = text.lower()
    labels = list(options)
    lowered = {label: str(options[label]).lower() for label in labels}
    present = [label for label in labels if lowered[label] in low]
    if present:
        # max() keeps the first of equal keys, as the original's stable descending sort does.
        last = max(present, key=lambda label: low.rindex(lowered[label]))
        first = max(present, key=lambda label: low.index(lowered[label]))
        return MedReasonMatch(first, last, 2, "option_text")
    index = _most_similar([lowered[label] for label in labels], low)
    return MedReasonMatch(labels[index], labels[index], 3, "similarity")


def is_empty_generation(text: str | None) -> bool:
    """True for a generation the original pipeline never saved (empty after its post-processing)."""
    if not text:
        return True
    text = text.replace("</s>", "")
    if text.startswith(" "):
        text = text[1:]
    return not text


def extract_medreason(text: str, options: Mapping[str, str]) -> Extraction:
    """``--extractor medreason``: the last match of ``match_choice``; None only for an empty generation.

    The method is ``medreason_<rule>`` (``answer_is``, ``letter``,
    ``option_text``, ``similarity``). The letter may lie outside the item's
    options (the original's "answer is" pattern accepts any of A-N).
    """
    if is_empty_generation(text) or not options:
        return Extraction(None, None)
    m = match_choice(text, options)
    return Extraction(m.last, f"medreason_{m.rule}")


@dataclass
class CompatSummary:
    """MedReason-style numbers for one source: compat numbers, not evalkit's accuracy."""

    n: int = 0
    first_correct: int = 0
    last_correct: int = 0
    dropped_empty: int = 0

    @property
    def first_accuracy(self) -> float:
        return self.first_correct / self.n if self.n else 0.0

    @property
    def last_accuracy(self) -> float:
        return self.last_correct / self.n if self.n else 0.0

    @property
    def accuracy(self) -> float:
        """The reported number: the higher of first-match and last-match accuracy."""
        return max(self.first_accuracy, self.last_accuracy)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(first_accuracy=self.first_accuracy, last_accuracy=self.last_accuracy, accuracy=self.accuracy)
        return d


def medreason_report(samples: Iterable[Mapping[str, Any]]) -> "OrderedDict[str, CompatSummary]":
    """Per-source MedReason compat numbers over sample dicts (``dataset``, ``output``, ``options``, ``answer_idx``).

    Failed requests (``error`` set) and empty generations are left out of n;
    the letters are matched case-insensitively against ``answer_idx``, as the
    original does.
    """
    out: OrderedDict[str, CompatSummary] = OrderedDict()
    for s in samples:
        summary = out.setdefault(s.get("dataset") or "unknown", CompatSummary())
        output = s.get("output")
        if s.get("error") or is_empty_generation(output):
            summary.dropped_empty += 1
            continue
        m = match_choice(output, s["options"])
        gold = str(s["answer_idx"]).lower()
        summary.n += 1
        summary.first_correct += m.first.lower() == gold
        summary.last_correct += m.last.lower() == gold
    return out


def compat_table(samples: Iterable[Mapping[str, Any]]) -> ReportTable:
    """``medreason_report`` as a table (``evalkit score --extractor medreason`` prints it under the
    accuracy): per source, first-match, last-match and compat accuracy, and the empty generations dropped."""
    rows = [(source, str(s.n), pct(s.first_accuracy), pct(s.last_accuracy), pct(s.accuracy), str(s.dropped_empty))
            for source, s in medreason_report(samples).items()]
    return ReportTable("MedReason compat numbers (max of first/last match; empty generations dropped) — not evalkit "
                       "accuracy", ("source", "n", "first-match acc %", "last-match acc %", "compat acc %",
                                    "dropped empty"), tuple(rows), label_columns=1)
