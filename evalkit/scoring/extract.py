"""Answer extraction: which option did a generation commit to?

Pure functions. ``extract_choice`` returns an Extraction (letter, method);
the letter is None when the text commits to no option: never a guess.

The cascade is fixed before any label is seen; each step names itself in
``method``:

1. Strip reasoning: drop everything up to the last ``</think>`` (an unclosed
   ``<think>`` means there is no final answer yet), and keep only the section
   after a ``## Final Response`` / ``## Final Answer`` heading when present.
2. Explicit answer statements; the last one in the text wins
   (``answer_is``, ``answer_label``, ``final_answer``, ``json``, ``boxed``,
   ``answer_tag``, ``choose``, ``option_correct``, ``option_ref``, ``zh_answer``,
   ``conclusion_letter`` "Hence (B)" / "Final: E" / "⇒ D" in the last 240 characters, ``option_label``
   "Correct option — C", ``ja_answer`` 答え: c / 正解は c / よって c).
   If the last answer head ("the answer is", "answer:", ``"answer_choice":``) at or
   after that statement gives a verdict that commits to no single option (several
   letters, a letter that is no option, "None of the above", "Unable to determine"),
   that is the model's last word: unparsed, and no later step runs.
3. A reply (or its first or last line) that is just an option: ``bare_option``.
4. The text of exactly one option stated as the conclusion: ``option_text``;
   the last sentence commits to one option named by its text (``option_named``:
   "Start metoprolol.", "This presentation is most consistent with sarcoidosis.")
   or restates a long option whole or nearly so (``option_restated``), with no
   hedge, negation or other option in it;
   for yes/no/maybe items a leading or concluding yes/no/maybe: ``yes_no_maybe``.
5. Otherwise unparsed: ``Extraction(None, None)``.

Letters are only those of the item's options, and the article "a" is never an
answer. Statements are found by scanning keyword anchors backwards with
``str.rfind`` and matching a small pattern at each anchor, looking at the tail
of a long text first: the last explicit statement wins, so a statement found
near the end settles the matter without reading the rest.
"""

from __future__ import annotations

import functools
import re
import string
from typing import Any, Callable, Iterator, Mapping

from evalkit.core.records import Extraction

Extractor = Callable[[str, Mapping[str, str]], Extraction]

#: Every method name the default extractor can return, in cascade order.
METHODS: tuple[str, ...] = (
    "answer_is",
    "answer_label",
    "final_answer",
    "json",
    "boxed",
    "answer_tag",
    "choose",
    "option_correct",
    "option_ref",
    "zh_answer",
    "conclusion_letter",
    "option_label",
    "ja_answer",
    "bare_option",
    "option_text",
    "option_named",
    "option_restated",
    "yes_no_maybe",
)

# How much of the end of an answer region is searched first; each further window is four
# times the last. The last statement wins, so one found near the end ends the search.
_TAIL_WINDOW = 512

# ---------------------------------------------------------------------------
# Step 1: the region that may hold the final answer
# ---------------------------------------------------------------------------

# The start of a heading line before "final response"/"final answer", and what
# may follow those words on the heading line before the section proper.
_HEADING_PREFIX = re.compile(r"[ \t>]*#{1,6}[ \t]*[*_]*[ \t]*")
_HEADING_REST = re.compile(r"[ \t]*[*_]*[ \t]*[:：]?[ \t]*[*_]*")


def strip_reasoning(text: str) -> str | None:
    """The part of TEXT that may state the final answer, or None if it cannot.

    Everything up to the last ``</think>`` is reasoning. A ``<think>`` left
    open means the model never reached its answer (often a truncated
    generation), so there is nothing to extract.
    """
    if "hink>" in text or "THINK>" in text:
        low = text.lower()
        close = low.rfind("</think>")
        if close >= 0:
            text = text[close + len("</think>"):]
            low = low[close + len("</think>"):]
        if "<think>" in low:
            return None
    return text


def final_section(text: str) -> str:
    """The text after the last ``## Final Response`` / ``## Final Answer`` heading, else TEXT.

    A heading line that carries the answer itself ("## Final Answer: C")
    keeps that answer: only the heading words are dropped.
    """
    if "inal" not in text and "INAL" not in text:
        return text
    low = _ascii_lower(text)
    best_end = -1
    for word in ("final response", "final answer"):
        for p in _reverse_anchors(low, word, 0, len(low)):
            line_start = low.rfind("\n", 0, p) + 1
            if _HEADING_PREFIX.fullmatch(text, line_start, p):
                best_end = max(best_end, p + len(word))
                break
    if best_end < 0:
        return text
    return text[_HEADING_REST.match(text, best_end).end():]


def answer_region(text: str) -> str | None:
    """Steps 1 of the cascade: the stripped text to search, or None when there is no answer yet."""
    body = strip_reasoning(text or "")
    if body is None:
        return None
    body = final_section(body).strip()
    return body or None


# ---------------------------------------------------------------------------
# Step 2: explicit answer statements
# ---------------------------------------------------------------------------

# A letter token as written after "the answer is": markdown, quotes, an
# optional "option"/"choice"/"letter" label and brackets around one letter
# that stands alone ("B", "(B)", "**B.**", "B) text", "B: text").
_LETTER_TOKEN = (
    r"[\s*_`\"'“”‘’]*"
    r"(?:(?i:option|choice|letter)\s*[:#]?\s*)?"
    r"[*_`\"'“‘(\[{【（]*"
    r"(?P<L>[A-Za-z])"
    r"(?=[.)\]}:,;!?）】]?(?:[\s*_`\"'”’)\]}.,;:!?<）】]|$)|\s*(?:--|[–—]))"
)
_ADVERB = r"(?:\s+(?i:clearly|likely|most\s+likely|probably|definitely|therefore|thus|then|indeed|actually|still|now))?"

_ANSWER_IS = re.compile(
    r"(?i:answer)(?:\s+(?i:choice))?(?:\s+(?i:to|for|of)\s+(?i:this|the)\s+(?i:question|item|problem))?"
    r"(?:\s*\([^()\n]{0,40}\))?"
    r"\s+(?i:is|would\s+be|will\s+be|should\s+be|must\s+be|=)" + _ADVERB + r"(?:\s+(?i:to\s+be))?\s*[:：]?"
    + _LETTER_TOKEN
)
_ANSWER_LABEL = re.compile(r"(?i:answer)[*_]*\s*[:：][*_]*" + _LETTER_TOKEN)
_JSON_ANSWER = re.compile(
    r"(?i:answer(?:_?choice|_?letter|_?option)?)[\"']\s*:\s*[\"']\s*[(\[]?\s*(?P<L>[A-Za-z])(?![A-Za-z0-9])"
)
_JSON_KEY_BEFORE = re.compile(r"[\"'](?:[A-Za-z]+_)?$")
_ANSWER_TAG = re.compile(r"(?i:answer)\s*>" + _LETTER_TOKEN)
_BOXED = re.compile(
    r"(?i:boxed)\s*\{\s*(?:\\text(?:bf)?\s*\{\s*|\\mathrm\s*\{\s*)?[(\[]?\s*(?P<L>[A-Za-z])(?=\s*[.):}\]]|\s+\S|$)"
)
_CHOOSE = re.compile(r"(?i:choose|pick|select|go\s+with|opt\s+for)\s*[:]?" + _LETTER_TOKEN)
_CHOOSE_SUBJECT = re.compile(r"(?i:\bI(?:'ll|’ll|\s+will|\s+would|'d|’d|\s+shall)?)\s+(?:(?i:would|will)\s+)?$")
# "the correct option is B", "the best choice is (C)", "my choice is D"
_OPTION_IS = re.compile(r"(?i:option|choice|response)\s+(?i:is|would\s+be|will\s+be)" + _ADVERB + r"\s*[:：]?" + _LETTER_TOKEN)
_OPTION_QUALIFIER = re.compile(
    r"(?i:\b(?:correct|right|best|final|most\s+(?:appropriate|likely|accurate|plausible)|my|only\s+correct))\s+$"
)
# "which corresponds to option B", "i.e. option C"
_OPTION_REF = re.compile(r"(?i:option|choice)\s*[(\[]?(?P<L>[A-Z])(?![A-Za-z0-9])")
_OPTION_REF_BEFORE = re.compile(r"(?i:\b(?:corresponds?\s+to|correspond\s+to|which\s+is|i\.e\.,?|namely|consistent\s+with))\s+$")
# "option B is correct", "(C) is the correct answer", "**D** is right"
_CORRECT_BEFORE = re.compile(
    r"(?:(?i:option|choice|answer)\s*[(\[]?(?P<L1>[A-Za-z])[)\]]?|\((?P<L2>[A-Za-z])\)|\*\*(?P<L3>[A-Za-z])[.)]?\*\*)"
    r"\s+(?i:is|seems\s+to\s+be|appears\s+to\s+be|would\s+be)\s+(?i:the\s+)?(?i:(?:most|only)\s+)?$"
)
_CORRECT_AFTER = re.compile(r"(?i:correct|right)(?:\s+(?i:answer|option|choice|one))?(?![A-Za-z])")
_ZH_ANSWER = re.compile(r"答案\s*(?:应该是|应为|是|为|选)?\s*[:：]?\s*[（(【\[]?\s*(?P<L>[A-Za-z])(?![A-Za-z0-9])")
_ZH_CHOOSE = re.compile(r"选(?:择)?\s*[（(【\[]?\s*(?P<L>[A-Z])(?![A-Za-z0-9])")
_MULTI_FOLLOWS = re.compile(r"[)\].*]*\s*(?:,|/|&|\band\b|\bor\b)\s*[(\[]?(?P<L2>[A-Z])(?![A-Za-z0-9])")

# A letter written after a conclusion word or a label: markdown, quotes, an optional
# "option"/"choice"/"answer" label and an opening bracket, then one letter.
_LETTER_AFTER_CUE = (
    r"[*_`\"'“‘]*\s*(?:(?i:the\s+)?(?i:option|choice|answer)\s*[:#]?\s*)?"
    r"[*_`\"'“‘(\[{【（]*(?P<L>[A-Za-z])"
)
# "Hence (B)", "Thus, B.", "So: C"; "Final: E"; "⇒ D". The letter must stand alone (see _stands_alone).
_CONCLUSION = re.compile(r"(?i:hence|thus|therefore|so|ergo)[*_]*\s*[,:：]?\s*" + _LETTER_AFTER_CUE)
_FINAL_COLON = re.compile(r"(?i:final)[*_]*\s*[:：]\s*" + _LETTER_AFTER_CUE)
_ARROW = re.compile(r"(?:=>|->|⇒|→|⟹|⟶|∴)\s*" + _LETTER_AFTER_CUE)
# "Correct option — C", "Best choice: (C)", "Answer - C": a label, then a dash, colon or arrow.
_LABEL_SEP = re.compile(
    r"(?i:option|choice|answer|pick)[*_]*\s*(?:[:：=]|--|[-–—]|->|→|⇒)\s*[*_`\"'“‘(\[{【（]*(?P<L>[A-Za-z])"
)
_LABEL_SEP_CHARS = frozenset(":：=-–—→⇒")
# What may close a letter that stands alone: brackets, markdown, a full stop, then the end of the line.
_ALONE_END = re.compile(r"[*_`\"'”’)\]}】）]*[.!]?[*_`\"'”’]*[ \t]*(?:\n|$)")
_ALONE_SENTENCE = re.compile(r"[*_`\"'”’)\]}】）]*[.!][*_`\"'”’]*\s+(?=[A-Z(*#\[])")
_OPTION_TEXT_AFTER = re.compile(r"[*_`\"'”’)\]}】）]*\s*[.:)\-–—]?\s*")
# How far from the end of a reply a conclusion word is looked for: it ends the reply.
_CONCLUSION_REACH = 240
_CONCLUSION_ANCHORS = ("hence", "thus", "therefore", "So", "ergo", "final", "=>", "->")
_ARROWS_WIDE = ("⇒", "→", "⟹", "⟶", "∴")
# Japanese (a licensing exam's answers): 答え: c, 答えは c, 解答：c, 正解は c です, よって c.
_FULL_WIDTH = str.maketrans({chr(0xFF21 + i): chr(0x41 + i) for i in range(26)}
                            | {chr(0xFF41 + i): chr(0x61 + i) for i in range(26)})
_JA_LETTER = r"[（(「【\[]?\s*(?P<L>[A-Za-zＡ-Ｚａ-ｚ])(?![A-Za-zＡ-Ｚａ-ｚ0-9０-９])"
_JA_ANSWER = re.compile(r"(?:解答|答え|正解)\s*(?:は|[:：])\s*[:：]?\s*(?:選択肢\s*)?" + _JA_LETTER)
_JA_HENCE = re.compile(r"よって\s*[、，,]?\s*(?:(?:答え|正解|解答)\s*は\s*)?" + _JA_LETTER
                       + r"(?=\s*(?:[)）」】。.]|です|$|\n))")
_JA_MULTI = re.compile(r"\s*[)）」】]?\s*(?:[,、，/・&]|と|または|又は|か|及び|および|\band\b|\bor\b)\s*[（(「【\[]?\s*"
                       r"[A-Za-zＡ-Ｚａ-ｚ](?![A-Za-zＡ-Ｚａ-ｚ])")


def _letter_ok(text: str, m: re.Match, group: str, letters: frozenset[str]) -> str | None:
    """The option letter of match M, or None when it is no commitment to an option.

    Rejected: letters outside the item's options; the article "a" ("the answer
    is a bacterial infection") and the pronoun "I" ("Answer: I think ...");
    hedges naming two letters ("A or C", "B and D").
    """
    raw = m.group(group)
    letter = raw.upper()
    if letter not in letters:
        return None
    end = m.end(group)
    nxt = text[end:end + 3]
    if raw == "a" or raw == "I":
        # A word follows after a space: an article or a pronoun, not a letter.
        if len(nxt) >= 2 and nxt[0] in " \t" and nxt[1].isalpha() and nxt[1].islower():
            return None
    multi = _MULTI_FOLLOWS.match(text, end)
    if multi and multi.group("L2") in letters:
        return None
    return letter


_JSON_VALUE_LETTERS = re.compile(r"(?:^|[,;/&]\s*|\s(?:and|or)\s+)[(\[]?([A-Z])(?:[.):\]]|(?=[,;/&\s]|$))")


def _json_letter(text: str, m: re.Match, letters: frozenset[str], options: Mapping[str, str] | None) -> str | None:
    """The letter of a JSON answer value, or None if it names several options ("A/B", "A. x, B. y")."""
    letter = m.group("L").upper()
    if letter not in letters:
        return None
    start = m.start("L")
    quote = '"' if text.rfind('"', m.start(), start) >= text.rfind("'", m.start(), start) else "'"
    close = text.find(quote, start)
    value = text[start:close if close >= 0 else start + 200]
    if options is not None and _norm(value[1:]) == _norm(options[_key(options, letter)]):
        return letter  # "A. Vitamin A and D" where that is option A's own text
    named = {x for x in _JSON_VALUE_LETTERS.findall(value) if x in letters}
    return letter if len(named) <= 1 else None


def _reverse_anchors(low: str, word: str, start: int, end: int) -> Iterator[int]:
    """Positions of WORD in low[start:end], last first."""
    while True:
        pos = low.rfind(word, start, end)
        if pos < 0:
            return
        yield pos
        end = pos + len(word) - 1


def _after_word(low: str, p: int, words: tuple[str, ...]) -> bool:
    """Whether LOW[:P] ends in spaces that follow one of WORDS.

    A cheap necessary test, on ASCII text, for the patterns that must end at P with
    "<word>\\s+" (``_OPTION_REF_BEFORE``, ``_CORRECT_BEFORE``): those searches cost
    microseconds at each keyword, and most keywords fail this test.
    """
    q = p
    while q > 0 and low[q - 1].isspace():
        q -= 1
    return q < p and low.endswith(words, 0, q)


# The words that end _OPTION_REF_BEFORE and _CORRECT_BEFORE, before their final spaces.
_REF_BEFORE_ENDS = ("to", "is", "i.e.", "i.e.,", "namely", "with")
_CORRECT_BEFORE_ENDS = ("is", "be", "the", "most", "only")


Statement = tuple[int, str, str]  # (position, letter, method)


def _last_statement(
    body: str, low: str, letters: frozenset[str], start: int, end: int, options: Mapping[str, str] | None = None
) -> Statement | None:
    """The last explicit answer statement whose keyword lies in low[start:end]: (position, letter, method).

    Each keyword family is scanned backwards from END with ``str.rfind`` (written out as
    loops: this is the extractor's hot path) and stops at its first statement; a later
    family only looks after the best statement found so far.
    """
    # Case-insensitive patterns match a few non-ASCII letters too ("ſ" for "s"): the cheap
    # word tests are used on ASCII text only.
    ascii_text = low.isascii()
    best = _answer_statement(body, low, letters, start, end, options)
    # Only a statement after the best one so far can replace it.
    for word in ("option", "choice", "response"):
        best = _later(best, _option_statement(body, low, word, letters, _after(start, best), end, ascii_text, options))
    best = _later(best, _correct_statement(body, low, letters, _after(start, best), end, ascii_text))
    best = _later(best, _boxed_statement(body, low, letters, _after(start, best), end))
    for word in ("choose", "pick", "select", "go with", "opt for"):
        best = _later(best, _choose_statement(body, low, word, letters, _after(start, best), end))
    if not ascii_text:
        for word, pattern in (("答案", _ZH_ANSWER), ("选", _ZH_CHOOSE)):
            best = _later(best, _zh_statement(body, low, word, pattern, letters, _after(start, best), end))
        best = _later(best, _ja_statement(body, letters, _after(start, best), end))
    if end >= len(body):
        # Conclusion words end a reply: read in the last window only ("So" and "therefore" are
        # common words; a long reasoning is not scanned for them).
        best = _later(best, _conclusion_statement(body, low, letters, _after(start, best), end, ascii_text, options))
    return best


def _after(start: int, best: Statement | None) -> int:
    """Where a later keyword family starts looking: after the best statement so far."""
    return start if best is None else max(start, best[0])


def _later(best: Statement | None, found: Statement | None) -> Statement | None:
    """FOUND when it lies after BEST (or there is no BEST), else BEST."""
    if found is not None and (best is None or found[0] > best[0]):
        return found
    return best


def _answer_statement(body: str, low: str, letters: frozenset[str], start: int, end: int,
                      options: Mapping[str, str] | None) -> Statement | None:
    """The last "answer" anchor in low[start:end] that names a letter: answer is / answer: /
    "answer": / <answer> / final answer:."""
    right = end
    while (p := low.rfind("answer", start, right)) >= 0:
        right = p + 5
        prev = body[p - 1] if p else "\n"
        if prev in "\"'_":
            m = _JSON_ANSWER.match(body, p)
            if m and _JSON_KEY_BEFORE.search(body, max(0, p - 12), p):
                letter = _json_letter(body, m, letters, options)
                if letter is not None:
                    return p, letter, "json"
            continue
        if prev == "<":
            m = _ANSWER_TAG.match(body, p)
            if m and (letter := _letter_ok(body, m, "L", letters)) is not None:
                return p, letter, "answer_tag"
            continue
        if p and low[p - 1].isalpha():
            continue  # inside another word
        m = _ANSWER_IS.match(body, p)
        if m and (letter := _letter_ok(body, m, "L", letters)) is not None:
            return p, letter, "answer_is"
        m = _ANSWER_LABEL.match(body, p)
        if m and (letter := _letter_ok(body, m, "L", letters)) is not None:
            final = low.endswith("final ", max(0, p - 8), p) or low.endswith("final", max(0, p - 8), p)
            return p, letter, "final_answer" if final else "answer_label"
        if not _LABEL_SEP_CHARS.isdisjoint(body[p + 6:p + 9]) and \
                (label := _label_at(body, low, p, "answer", letters, options)) is not None:
            return label
    return None


def _option_statement(body: str, low: str, word: str, letters: frozenset[str], lo: int, end: int,
                      ascii_text: bool, options: Mapping[str, str] | None = None) -> Statement | None:
    """The last statement in low[lo:end] around WORD (option / choice / response): "the correct
    option is B" (answer_is), a reference such as "option B is correct" (option_ref), or a label
    "Correct option — C" (option_label)."""
    right = end
    while (p := low.rfind(word, lo, right)) >= 0:
        right = p + len(word) - 1
        if p and low[p - 1].isalpha():
            continue
        m = _OPTION_IS.match(body, p)
        if m and _OPTION_QUALIFIER.search(body, max(0, p - 40), p):
            if (letter := _letter_ok(body, m, "L", letters)) is not None:
                return p, letter, "answer_is"
        if word != "response":
            m = _OPTION_REF.match(body, p)
            if m and (not ascii_text or _after_word(low, p, _REF_BEFORE_ENDS)) \
                    and _OPTION_REF_BEFORE.search(body, max(0, p - 40), p):
                if (letter := _letter_ok(body, m, "L", letters)) is not None:
                    return p, letter, "option_ref"
            if not _LABEL_SEP_CHARS.isdisjoint(body[p + len(word):p + len(word) + 3]) and \
                    (label := _label_at(body, low, p, word, letters, options)) is not None:
                return label
    return None


def _correct_statement(body: str, low: str, letters: frozenset[str], lo: int, end: int,
                       ascii_text: bool) -> Statement | None:
    """The last "B is correct" in low[lo:end] (option_correct; its position is the letter's)."""
    right = end
    while (p := low.rfind("correct", lo, right)) >= 0:
        right = p + 6
        if p and low[p - 1].isalpha():
            continue
        if not _CORRECT_AFTER.match(body, p):
            continue
        if ascii_text and not _after_word(low, p, _CORRECT_BEFORE_ENDS):
            continue
        m = _CORRECT_BEFORE.search(body, max(0, p - 48), p)
        if m:
            group = "L1" if m.group("L1") else "L2" if m.group("L2") else "L3"
            if (letter := _letter_ok(body, m, group, letters)) is not None:
                return m.start(group), letter, "option_correct"
    return None


def _boxed_statement(body: str, low: str, letters: frozenset[str], lo: int, end: int) -> Statement | None:
    """The last \\boxed{B} in low[lo:end] whose letter is an option."""
    right = end
    while (p := low.rfind("boxed", lo, right)) >= 0:
        right = p + 4
        m = _BOXED.match(body, p)
        if m:
            letter = m.group("L").upper()
            if letter in letters:
                return p, letter, "boxed"
    return None


def _choose_statement(body: str, low: str, word: str, letters: frozenset[str], lo: int, end: int
                      ) -> Statement | None:
    """The last "I would choose B" (choose / pick / select / go with / opt for) in low[lo:end]."""
    right = end
    while (p := low.rfind(word, lo, right)) >= 0:
        right = p + len(word) - 1
        if not _CHOOSE_SUBJECT.search(body, max(0, p - 16), p):
            continue
        m = _CHOOSE.match(body, p)
        if m and (letter := _letter_ok(body, m, "L", letters)) is not None:
            return p, letter, "choose"
    return None


def _zh_statement(body: str, low: str, word: str, pattern: Any, letters: frozenset[str], lo: int, end: int
                  ) -> Statement | None:
    """The last Chinese answer statement (答案 / 选) in low[lo:end] whose letter is an option."""
    right = end
    while (p := low.rfind(word, lo, right)) >= 0:
        right = p + len(word) - 1
        m = pattern.match(body, p)
        if m:
            letter = m.group("L").upper()
            if letter in letters:
                return p, letter, "zh_answer"
    return None


def _stands_alone(body: str, m: re.Match, options: Mapping[str, str] | None) -> bool:
    """Whether the letter of M ends its line ("Hence (B)", "Final: E."), ends a sentence when it
    is bracketed ("Hence (B). The ..."), or is followed by its own option's text alone
    ("Hence B. Metoprolol"): not "So A is unlikely", "Thus B. pertussis ...", "Hence A and C"."""
    end = m.end("L")
    if _ALONE_END.match(body, end):
        return True
    if body[m.start("L") - 1] in "([{【（*" and _ALONE_SENTENCE.match(body, end):
        return True
    if options is None:
        return False
    text = _norm(options[_key(options, m.group("L").upper())])
    if not text:
        return False
    start = _OPTION_TEXT_AFTER.match(body, end).end()
    line_end = body.find("\n", start)
    line = body[start:line_end if line_end >= 0 else len(body)]
    stop = _SENTENCE_END.search(line)
    return _norm(line) == text or (stop is not None and _norm(line[:stop.start()]) == text)


def _conclusion_statement(body: str, low: str, letters: frozenset[str], lo: int, end: int, ascii_text: bool,
                          options: Mapping[str, str] | None) -> Statement | None:
    """The last conclusion word or arrow followed by a letter that stands alone in low[lo:end]:
    "Hence (B)", "Thus, C.", "Final: E", "⇒ D" (conclusion_letter). "So" counts capitalised
    only (it opens the sentence): lowercase "so" is mostly inside words ("also", "reason")."""
    best: Statement | None = None
    lo = max(lo, len(body) - _CONCLUSION_REACH)
    anchors = _CONCLUSION_ANCHORS if ascii_text else _CONCLUSION_ANCHORS + _ARROWS_WIDE
    region = low[lo:end]  # at most _CONCLUSION_REACH characters: one look for any anchor first
    if not ("hence" in region or "thus" in region or "therefore" in region or "final" in region
            or "ergo" in region or "So" in body[lo:end] or "=>" in region or "->" in region
            or (not ascii_text and any(w in region for w in _ARROWS_WIDE))):
        return None
    for word in anchors:
        text = body if word == "So" else low
        right, first = end, lo if best is None else best[0] + 1
        while (p := text.rfind(word, first, right)) >= 0:
            right = p + len(word) - 1
            if word[0].isalpha():
                q = p + len(word)
                if (p and low[p - 1].isalpha()) or low[q:q + 1].isalpha():
                    continue
                while q < end and low[q] in " ,:*_\t\"'(":
                    q += 1
                if len(low[q:q + 2]) == 2 and low[q:q + 2].isalpha() and not low.startswith(("opt", "cho", "ans", "the"), q):
                    continue  # a word follows ("therefore less likely"), not a letter
                pattern = _FINAL_COLON if word == "final" else _CONCLUSION
            else:
                pattern = _ARROW
            m = pattern.match(body, p)
            if m and (letter := _letter_ok(body, m, "L", letters)) is not None and _stands_alone(body, m, options):
                best = p, letter, "conclusion_letter"
                break
    return best


def _label_at(body: str, low: str, p: int, word: str, letters: frozenset[str],
              options: Mapping[str, str] | None) -> Statement | None:
    """"Correct option — C", "Best choice: C", "Answer - C" at the anchor P (option_label): a label
    and a dash, colon or arrow, then a letter that stands alone. "option" and "choice" need a
    qualifier before them ("correct", "best", "final", "my" ...)."""
    q = p + len(word)
    while q < len(body) and body[q] in " \t*_":
        q += 1
    if body[q:q + 1] not in _LABEL_SEP_CHARS:
        return None  # no dash, colon or arrow after the label: the common case, decided cheaply
    m = _LABEL_SEP.match(body, p)
    if not m or (word != "answer" and not _OPTION_QUALIFIER.search(body, max(0, p - 40), p)):
        return None
    if (letter := _letter_ok(body, m, "L", letters)) is not None and _stands_alone(body, m, options):
        return p, letter, "option_label"
    return None


def _ja_statement(body: str, letters: frozenset[str], lo: int, end: int) -> Statement | None:
    """The last Japanese answer statement in body[lo:end] (ja_answer): 答え: c, 正解は c, 解答：c, よって c.
    Several letters ("a と c", "a, c") are no commitment to one option."""
    best: Statement | None = None
    for word, pattern in (("答", _JA_ANSWER), ("正解", _JA_ANSWER), ("よって", _JA_HENCE)):
        right = end
        while (p := body.rfind(word, max(lo, best[0] + 1 if best else lo), right)) >= 0:
            right = p + len(word) - 1
            start = p - 1 if word == "答" and p and body[p - 1] == "解" else p
            m = pattern.match(body, start)
            if not m or _JA_MULTI.match(body, m.end("L")):
                continue
            letter = m.group("L").translate(_FULL_WIDTH).upper()
            if letter in letters:
                best = p, letter, "ja_answer"
                break
    return best


def _ascii_lower(text: str) -> str:
    """Lowercase without changing the length (str.lower can lengthen a few non-ASCII letters)."""
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


def last_statement(body: str, low: str, letters: frozenset[str], options: Mapping[str, str] | None = None
                   ) -> Statement | None:
    """The last explicit answer statement in BODY (LOW its lowercase): (position, letter, method)."""
    n = len(body)
    end, window = n, _TAIL_WINDOW
    while True:
        # A window of the text before END, starting at a space so no anchor is cut in half;
        # the next window reaches a little past this one's start for a keyword cut at the edge.
        start = body.rfind(" ", 0, end - window) + 1 if end > window else 0
        found = _last_statement(body, low, letters, start, min(n, end + 64) if end < n else n, options)
        if found is not None or start == 0:
            return found
        end, window = start, window * 4


# ---------------------------------------------------------------------------
# Step 2b: a last verdict that commits to no single option voids what came before
# ---------------------------------------------------------------------------

# An answer head: "the answer is", "answer:", "answer choice is", "answer_choice": "...".
_VERDICT_HEAD = re.compile(
    r"answer(?:\s+choice|_?choice)?(?:\s+(?:to|for)\s+(?:this|the)\s+question)?[*_]*"
    r"(?:[\"']?\s*[:：]\s*[\"']?|\s+(?:is|would\s+be|should\s+be|will\s+be|must\s+be)\s*[:：]?)"
)
_VERDICT_SKIP = re.compile(r"[\s*_`\"'“”:]*(?:(?:most\s+likely|likely|probably|clearly|therefore|thus)\s+)?(?:(?:to\s+)?be\s+)?")
# A verdict that names no option: none / all of the above, unknown, cannot be determined, N/A ...
_NO_ANSWER = re.compile(
    r"(?:none\b|neither\b|all\s+of\s+the|not\s+(?:known|clear|certain|sure|found|provided|listed|mentioned"
    r"|available|applicable|determinable|possible|enough|specified|given|in\s+the|among|one\s+of|determined)"
    r"|unknown|unclear|uncertain|undetermined|indeterminate|unable|cannot|can't|insufficient|inconclusive"
    r"|(?:information|data|answer)\s+not|n/?a\b|no\s+(?:answer|definite|definitive|correct|clear|single|option)"
    r"|(?:that\s+)?there\s+is\s+no|error|invalid|need|more\s+information|depends|it\s+depends)\b"
)
# A letter that stands alone at the start of a verdict: "E", "(E)", "E)", "**E**".
_VERDICT_LETTER = re.compile(r"(?:either|both)?\s*[(\[*]*([A-Z])(?![A-Za-z0-9'’-])[)\]*]*\.?")
_WORD_AFTER_LETTER = re.compile(r"\.?[ \t]+(?!(?:and|or|nor|and/or|&)\b)[a-z]")
_VERDICT_JOIN = re.compile(r"\s*(?:,|/|&|\band/or\b|\band\b|\bor\b)\s*(?:(?:and|or)\s+)?(?:either\s+|both\s+)?"
                           r"[(\[*]*([A-Z])(?![A-Za-z0-9'’-])")


def _void_value(value: str, letters: frozenset[str], options: Mapping[str, str] | None) -> bool:
    """Whether VALUE, what follows an answer head, commits to no single option: several letters
    ("A, B", "A/D", "both A and D", "A. MMR and D. Influenza"), a letter that is no option
    ("E"), an option's text with another option ("D-2 and D-3"), or no answer at all ("None of
    the above", "Unable to determine", "N/A") unless that is an option's own text."""
    value = value[_VERDICT_SKIP.match(value).end():]
    m = _VERDICT_LETTER.match(value)
    if m and not _WORD_AFTER_LETTER.match(value, m.end(1)):  # "T cells", "E. coli", "I think": words
        first = m.group(1)
        if first not in letters:
            return True
        end = m.end()
        if not _VERDICT_JOIN_ALL.search(value, end):
            return False  # one letter, with its text or its reasons: the common case, decided here
        if options is not None:
            own_text = options[_key(options, first)]
            own_letters = set("".join(_LETTER_RUN.findall(own_text)))
            joined = set(_VERDICT_JOIN_ALL.findall(value, end))
            if joined and own_letters and joined <= own_letters | {first}:
                return False  # "D, both A and B" where D is "Both AB": that one option restated
            own = _norm(own_text)
            after = value[end:end + len(own) + 40]
            if own and _norm(after).startswith(own):
                end += len(_first_words(after, own))
        join = _VERDICT_JOIN.match(value, end)
        return bool(join and join.group(1) in letters and join.group(1) != first)
    if options is not None:
        normed = [(k.upper(), _norm(v)) for k, v in options.items()]
        letter = _option_at_start(value, normed)
        if letter is not None:
            return _names_another(value[len(_first_words(value, dict(normed)[letter])):], letter, normed)
    return bool(_NO_ANSWER.match(value.lower()))


# Letters an option's own text names ("Both AB", "A and B", "ABC"), and the letters joined after a verdict's first.
_LETTER_RUN = re.compile(r"\b([A-J]{1,5})\b")
_VERDICT_JOIN_ALL = re.compile(r"(?:,|/|&|\band\b|\bor\b)\s*(?:(?:and|or|both|either)\s+)?[(\[*]*([A-Z])(?![A-Za-z0-9'’-])")
_BRACKETED_LETTER = re.compile(r"[(\[]([A-Z])[)\]]")


def _names_another(rest: str, letter: str, normed: list[tuple[str, str]]) -> bool:
    """Whether REST, the sentence after option LETTER's text, names another option: by its text
    ("D-2 and D-3") or by a bracketed letter ("Dentinogenesis imperfecta (D)" for option B)."""
    stop = _SENTENCE_END.search(rest)
    rest = rest[:stop.start()] if stop else rest
    others = [(k, t) for k, t in normed if k != letter]
    if _options_within(rest, others):
        return True
    return any(b != letter and b in dict(normed) for b in _BRACKETED_LETTER.findall(rest))


def _first_words(text: str, normed: str) -> str:
    """The shortest start of TEXT whose _norm form is NORMED (or all of TEXT)."""
    count = len(normed.split())
    seen = 0
    for m in _WORDS.finditer(text):
        seen += 1
        if seen == count:
            return text[:m.end()]
    return text


def void_verdict(body: str, low: str, letters: frozenset[str], options: Mapping[str, str] | None, start: int,
                 checked: bool = False) -> bool:
    """Whether the last answer head at or after START gives a verdict that commits to no single
    option (see _void_value). Such a verdict is the model's last word: no earlier statement and
    no option text counts then (unparsed). CHECKED: a statement at START already gave one valid
    letter there, so its own head can only be void by a second letter joined after it."""
    if checked and low.find("answer", start + 1) < 0:
        # No head after the statement; its own head (if it is one) is void only with a second
        # letter joined to its first, which needs one of the joiners: the common case, decided here.
        line_end = low.find("\n", start)
        seg = low[start:line_end if 0 <= line_end < start + 200 else start + 200]
        if not any(j in seg for j in _JOINERS):
            return False
    right = len(low)
    while (p := low.rfind("answer", start, right)) >= 0:
        right = p + 5
        if p and low[p - 1].isalpha():
            continue
        m = _VERDICT_HEAD.match(low, p)
        if m is None:
            continue
        line_end = body.find("\n", m.end())
        value = body[m.end():line_end if 0 <= line_end < m.end() + 300 else m.end() + 300]
        quote = value.find('"') if low[p + 6:p + 14].startswith(("_choice", "choice\"", '"')) else -1
        if quote >= 0:
            value = value[:quote]  # a JSON value ends at its closing quote
        if not value.strip(" \t*_\"'"):
            return quote >= 0  # an empty JSON answer; an empty "Answer:" line is a template
        if checked and p == start and not any(j in value.lower() for j in _JOINERS):
            return False  # the statement's own head, one letter and nothing joined: the common case
        return _void_value(value, letters, options)
    return False


_JOINERS = (",", "/", "&", " and ", " or ")


# ---------------------------------------------------------------------------
# Step 3: a reply that is just an option
# ---------------------------------------------------------------------------

_BARE = re.compile(
    r"[\s*_`#>\-]*"
    r"(?:(?i:(?:the\s+)?(?:final\s+|correct\s+)?(?:answer|option|choice))(?:\s+(?i:is))?\s*[:：\-]?\s*)?"
    r"[*_`\"'(\[{]*(?P<L>[A-Za-z])[*_`\"')\]}]*"
    r"(?:(?:\s*[.:)\-–—]\s*|\s+)(?P<rest>.*?))?"
    r"[\s*_`\"'.!]*"
)


def _norm(text: str) -> str:
    """Lowercase words only: the form option texts are compared in."""
    return " ".join(_WORDS.findall(text.lower()))


_WORDS = re.compile(r"[^\W_]+")


def _bare_line(line: str, options: Mapping[str, str], letters: frozenset[str]) -> str | None:
    m = _BARE.fullmatch(line)
    if not m:
        return None
    letter = m.group("L").upper()
    if letter not in letters:
        return None
    rest = m.group("rest")
    if rest:
        # Trailing words must be that option's own text, else it is a sentence.
        if _norm(rest) != _norm(options[_key(options, letter)]):
            return None
    return letter


# A line that starts like an option of a listed set: "B. ...", "(C) ...", "**D)** ...".
_OPTION_LINE = re.compile(r"^[ \t*_>\-]*[(\[]?([A-Z])[.)\]:][ \t*_]", re.M)


def _lists_options(body: str) -> bool:
    """True when BODY lays out several options line by line (an analysis, not an answer)."""
    return len(set(_OPTION_LINE.findall(body))) > 1


def find_bare(body: str, options: Mapping[str, str], letters: frozenset[str]) -> Extraction | None:
    """Step 3: BODY, or its last or first line, is just an option ("C", "(C)", "C. Clopidogrel").

    The first or last line counts only when the reply does not walk through
    several options line by line, where such a line is a heading, not a verdict.
    """
    if len(body) <= 300 and "\n" not in body:
        letter = _bare_line(body, options, letters)
        return Extraction(letter, "bare_option") if letter else None
    last_line = body[body.rfind("\n") + 1:]
    first_line = body[:body.find("\n")]
    candidates = [line for line in (last_line, first_line) if len(line) <= 300]
    for line in candidates:
        letter = _bare_line(line, options, letters)
        if letter:
            if _lists_options(body):
                return None
            return Extraction(letter, "bare_option")
    return None


# ---------------------------------------------------------------------------
# Step 4: an option's text stated as the conclusion
# ---------------------------------------------------------------------------

# Statement heads after which an option's text may stand, matched on lowercased
# text at keyword anchors: "answer is", "answer:", "answer_choice": ; "the
# correct option is"; 答案是.
_TEXT_HEAD_ANSWER = re.compile(
    r"answer(?:\s+(?:to|for)\s+(?:this|the)\s+question)?\s*(?:is|would\s+be|will\s+be|should\s+be|[:：])"
    r"|answer(?:_?choice)?[\"']\s*:"
)
_TEXT_HEAD_OPTION = re.compile(r"(?:option|choice|response|answer)\s+is")
_TEXT_HEAD_ZH = re.compile(r"答案(?:是|为|[:：])")
_TEXT_ADVERB = re.compile(r"(?:clearly|likely|most\s+likely|probably|definitely|therefore|thus|then|indeed)\s+")
_CUE_WORDS = r"[\s*_]*(?:therefore|thus|hence|so|in\s+conclusion|in\s+summary|overall|consequently|to\s+conclude|conclusion)\b[,:]?"
# A cue opens a sentence: at the start of the text, or after a sentence's end. The second
# pattern starts with that end character, which lets the regex engine skip ahead to it.
_CUE_AT_START = re.compile(_CUE_WORDS)
_CUE_AFTER_END = re.compile(r"[.!?\n]" + _CUE_WORDS)
_NEGATION = re.compile(r"\b(?:not|no\s+longer|unlikely|less\s+likely|rule[sd]?\s+out|excluded?|rather\s+than|instead\s+of"
                       r"|except|other\s+than|all\s+of|none\s+of|neither|impossible)\b|n't\b")
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)")
_YNM = frozenset({"yes", "no", "maybe"})
# "Yes, ...", "**No.**", "Answer: maybe" at the start of a reply or as its last line.
_YNM_WORD = re.compile(
    r"[\s*_`\"'#>]*(?:answer\s*[:：]\s*)?[*_\"']*(?P<w>yes|no|maybe)[*_\"']*(?=\s*(?:[,.;:!\n]|$))"
)
_YNM_CONCLUSION = re.compile(
    r"(?:therefore|thus|hence|so|in\s+conclusion|in\s+summary|overall|to\s+conclude|conclusion)\b[,:]?\s*"
    r"(?:the\s+answer\s+is\s*:?\s*)?[*_\"']*(?P<w>yes|no|maybe)\b[*_\"']*\s*[.!]?\s*$"
)


def _last_cue_end(low: str) -> int | None:
    """Where the last conclusion cue ("Therefore,", "In conclusion:") opening a sentence of LOW ends."""
    last = None
    for last in _CUE_AFTER_END.finditer(low):
        pass
    if last is not None:
        return last.end()
    first = _CUE_AT_START.match(low)
    return first.end() if first else None


def _ends_with_ynm(low: str) -> bool:
    """Whether LOW ends in yes/no/maybe once trailing spaces, one "." or "!" and markdown are
    dropped: a cheap test that _YNM_CONCLUSION, which must match at the end, can match at all."""
    s = low.rstrip()
    if s[-1:] in (".", "!"):
        s = s[:-1].rstrip()
    return s.rstrip("*_\"'").endswith(("yes", "no", "maybe"))


def _key(options: Mapping[str, str], letter: str) -> str:
    return letter if letter in options else letter.lower()


def _option_at_start(tail: str, normed: list[tuple[str, str]]) -> str | None:
    """The letter of the one option whose text TAIL starts with (the longest one wins)."""
    t = _norm(tail[:400]) + " "
    best_letter, best_len, tie = None, 0, False
    for letter, text in normed:
        if text and t.startswith(text + " "):
            if len(text) > best_len:
                best_letter, best_len, tie = letter, len(text), False
            elif len(text) == best_len:
                tie = True
    return None if tie else best_letter


def _stated_option(body: str, low: str, end: int, normed: list[tuple[str, str]]) -> str | None:
    """The option whose text follows a statement head ending at END.

    Either the tail starts with one option's full text, or the stated phrase
    (up to the end of its sentence) is the opening words of exactly one option
    ("the answer is Ghee." for "Ghee (unsaturated)").
    """
    while end < len(body) and body[end] in " \t\n*_\"'(:":
        end += 1
    adverb = _TEXT_ADVERB.match(low, end)
    if adverb:
        end = adverb.end()
    tail = body[end:end + 400]
    letter = _option_at_start(tail, normed)
    if letter:
        return None if _names_another(tail[len(_first_words(tail, dict(normed)[letter])):], letter, normed) else letter
    stop = _SENTENCE_END.search(tail)
    phrase = _norm(tail[:stop.start()] if stop else tail)
    if len(phrase) < 4:
        return None
    starts = [k for k, t in normed if t.startswith(phrase + " ")]
    return starts[0] if len(starts) == 1 else None


def _last_text_statement(body: str, low: str, normed: list[tuple[str, str]]) -> str | None:
    """The option named by the last statement head followed by an option's text."""
    best_pos, best_letter = -1, None
    families = [("answer", _TEXT_HEAD_ANSWER, False), ("option", _TEXT_HEAD_OPTION, True),
                ("choice", _TEXT_HEAD_OPTION, True)]
    if not low.isascii():
        families.append(("答案", _TEXT_HEAD_ZH, False))
    for word, head, qualified in families:
        right = len(low)
        # Only a head after the best one so far can replace it.
        while (p := low.rfind(word, best_pos + 1, right)) >= 0:
            right = p + len(word) - 1
            if p and low[p - 1].isalpha() and word != "答案":
                continue
            m = head.match(low, p)
            if not m or (qualified and not _OPTION_QUALIFIER.search(body, max(0, p - 40), p)):
                continue
            letter = _stated_option(body, low, m.end(), normed)
            if letter:
                best_pos, best_letter = p, letter
                break
    return best_letter


def _options_within(text: str, normed: list[tuple[str, str]]) -> set[str]:
    """Letters of the options whose text TEXT mentions, ignoring ones inside a longer mentioned option."""
    t = " " + _norm(text) + " "
    found = {letter: o for letter, o in normed if o and f" {o} " in t}
    return {a for a, oa in found.items() if not any(b != a and oa != ob and f" {oa} " in f" {ob} " for b, ob in found.items())}


# Step 4 (f): an option named in a sentence that commits to it. The sentence states a verdict
# ("most consistent with", "the most likely diagnosis is", "X is the best next step") or is a
# short order ("Start metoprolol."), and says nothing that hedges, negates or weighs another
# option; matched on the sentence in _norm form (lowercase words joined by spaces).
_COMMIT = re.compile(
    r"\b(?:most consistent with|consistent with (?:a )?diagnosis of|diagnosis of"
    r"|(?:the )?(?:most likely|likeliest|best|correct|right|final|most appropriate|preferred)"
    r"(?: \w+){0,4}? (?:is|would be|will be|should be)"
    r"|(?:diagnosis|answer|treatment|management|next step|drug of choice|investigation of choice"
    r"|treatment of choice|cause|organism|mechanism|explanation) (?:here |in this case )?(?:is|would be|should be)"
    r"|is (?:the )?(?:best|correct|right|most appropriate|most likely|most accurate|preferred"
    r"|recommended|treatment of choice|drug of choice|investigation of choice|answer)"
    r"|best (?:explained|described|treated|managed|characterized|classified) (?:by|with|as)"
    r"|(?:i would|i d|i'd|i’d|we should|i will|i ll|i'll|i’ll) (?:choose|pick|select|start|give|recommend|administer|begin))\b"
)
_ORDER = re.compile(r"(?:start|begin|initiate|give|administer|prescribe|order|perform|obtain|recommend"
                    r"|switch to|treat with|refer to|refer for|add)\b")
# Words that hedge, negate, weigh options or defer: any of them outside the option's own text
# means the sentence does not commit to it.
_HEDGE_WORDS = frozenset((
    "not no never none neither nor or either both also could may might possibly possible perhaps probably unless if"
    " whether cannot uncertain unclear unlikely less least difficult although though but however except versus vs"
    " rather instead exclude excluded excludes rule ruled rules doubt unsure maybe seems appears suggest suggests"
    " other than alternatively all any which what t"  # "t": what _norm leaves of "can't", "isn't"
).split())
# Words one of which a verdict (_COMMIT) needs: a cheap test on a sentence's words first.
_COMMIT_WORDS = frozenset((
    "consistent diagnosis most likeliest best correct right final preferred answer treatment management step"
    " choice cause organism mechanism explanation recommended explained described treated managed characterized"
    " classified"
).split())
_FIRST_PERSON = frozenset(("i", "we"))
# ... and one of these: every verdict form but "most consistent with" / "best explained by" has "is" or "be".
_VERDICT_VERBS = frozenset(("is", "be", "consistent", "explained", "described", "treated", "managed",
                            "characterized", "classified", "of"))


def _hedged(words: list[str] | str) -> bool:
    """Whether WORDS (a list, or a _norm string) hold a word that hedges, negates, defers or weighs options."""
    return not _HEDGE_WORDS.isdisjoint(words.split() if isinstance(words, str) else words)


_OPTION_LABEL_START = re.compile(r"\s*[*_#>\-]*\s*[(\[]?[A-Z][.):\]]\s")
_ORDER_MAX_WORDS = 8
_RESTATED_MIN_WORDS = 4
_RESTATED_SHARE = 0.85


@functools.lru_cache(maxsize=4096)
def _nameable(text: str) -> bool:
    """Whether an option's text (in _norm form) can be told apart when named inside a sentence:
    some word of three letters or more that is not a filler ("a", "10", "all of the above")."""
    return any(len(w) >= 3 and not w.isdigit() and w not in _FILLER for w in text.split())


_FILLER = frozenset({"the", "all", "none", "both", "above", "below", "any", "yes", "maybe", "and", "of"})


def _common_words(a: list[str], b: list[str]) -> int:
    """The length of the longest common subsequence of word lists A and B."""
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def _restated(words: list[str], prose: list[tuple[str, str]]) -> str | None:
    """The one long option (four words or more) that WORDS restate whole or nearly so: at least
    85 % of its words in order within a stretch a little longer than the option, and no other
    option as close."""
    found = []
    present = set(words)
    for letter, text in prose:
        opt = text.split()
        if len(opt) < _RESTATED_MIN_WORDS or sum(w in present for w in opt) < _RESTATED_SHARE * len(opt):
            continue
        span = len(opt) + 2
        best = max(_common_words(opt, words[i:i + span]) for i in range(max(1, len(words) - span + 1)))
        if best >= _RESTATED_SHARE * len(opt):
            found.append(letter)
    return found[0] if len(found) == 1 else None


def _raw_words(sentence: str) -> set[str]:
    """The lowercase words of SENTENCE, split at punctuation as _norm splits them: a cheap set for
    the first tests ("can't" gives "can" and "t", as in _norm)."""
    return set(sentence.lower().translate(_PUNCT_TO_SPACE).split())


_PUNCT_TO_SPACE = str.maketrans({c: " " for c in string.punctuation + "‘’“”–—…"})


def _committed_sentence(sentence: str, raw: set[str], prose: list[tuple[str, str]]) -> Extraction | None:
    """The option SENTENCE (RAW: its _raw_words) commits to by naming its text (option_named)
    or restating a long option nearly whole (option_restated), or None."""
    order = len(raw) <= _ORDER_MAX_WORDS and _ORDER.match(sentence.lstrip(" \t*_#>-").lower())
    if not order and (_COMMIT_WORDS.isdisjoint(raw) or _VERDICT_VERBS.isdisjoint(raw)) \
            and _FIRST_PERSON.isdisjoint(raw):
        return None  # no words a verdict needs: the common case, decided without the regex
    norm = _norm(sentence)
    words = norm.split()
    if not (order or _COMMIT.search(norm)) or _OPTION_LABEL_START.match(sentence):
        return None
    named = _options_within(sentence, [(k, t) for k, t in prose if _nameable(t)])
    if len(named) > 1:
        return None
    if named:
        letter = named.pop()
        method = "option_named"
    else:
        letter = _restated(words, prose)
        method = "option_restated"
        if letter is None:
            return None
    own = dict(prose)[letter]
    if method == "option_named":
        if f" and {own} " in f" {norm} " or f" {own} and " in f" {norm} " or f" plus {own} " in f" {norm} ":
            return None  # "magnesium sulfate and nifedipine": two things named together
        rest = f" {norm} ".replace(f" {own} ", " ", 1)
    else:
        own_words = set(own.split())
        rest = " ".join(w for w in words if w not in own_words)
    if _hedged(rest):
        return None
    return Extraction(letter, method)


# How far from the end of a reply the sentences read by option_named / option_restated reach.
_NAMED_REACH = 300


@functools.lru_cache(maxsize=1024)
def _opening_words(texts: tuple[str, ...]) -> tuple[str, ...]:
    """The first two words (of three letters or more) of each option text: one of them appears
    wherever an option is named or restated."""
    return tuple(w for t in texts for w in t.split()[:2] if len(w) >= 3)


def _sentence_start(text: str, end: int) -> int:
    """Where the sentence ending at END of TEXT starts: after the last ". ", "! ", "? " or newline."""
    cut = max(text.rfind(". ", 0, end), text.rfind("! ", 0, end), text.rfind("? ", 0, end), text.rfind("\n", 0, end))
    return cut + 1 if cut >= 0 else 0


def find_committed_option(body: str, prose: list[tuple[str, str]]) -> Extraction | None:
    """Step 4 (f): the last sentence of BODY (or the one before it, when the last names no
    option, hedges nothing and gives no verdict of its own) commits to one option by its text:
    "Start metoprolol.", "This presentation is most consistent with sarcoidosis.", or a long
    option restated whole or nearly so.

    A last line that restates one long option nearly whole counts on its own, unless the reply
    walks through the options line by line.
    """
    tail = body[-600:].rstrip(" \t\n*_\"'")
    near = tail[-_NAMED_REACH:].lower()
    if not any(w in near for w in _opening_words(tuple(t for _, t in prose))):
        return None  # no option's opening words near the end: the common case, decided cheaply
    last_line = tail[tail.rfind("\n") + 1:]
    # Only options the line is not much longer than: a line that restates one, not a sentence about it.
    spaces = last_line.count(" ")
    close = [(k, t) for k, t in prose if t.count(" ") >= _RESTATED_MIN_WORDS - 1 and spaces <= 1.5 * t.count(" ") + 4.5]
    if close and len(last_line) <= 400 and not _lists_options(body):
        words = _norm(last_line).split()
        letter = _restated(words, close)
        own_words = set(dict(prose)[letter].split()) if letter is not None else set()
        if letter is not None and not _hedged([w for w in words if w not in own_words]):
            return Extraction(letter, "option_restated")
    cut = len(tail) > _NAMED_REACH
    tail = tail[-_NAMED_REACH:]
    end = len(tail)
    for i in range(2):
        start = _sentence_start(tail, end - 1)
        sentence = tail[start:end]
        if (start == 0 and cut) or sentence.rstrip().endswith("?"):
            return None  # a sentence cut by the reach (its start unseen), or a question
        raw = _raw_words(sentence)
        found = _committed_sentence(sentence, raw, prose)
        if found is not None:
            return found
        if i or start == 0 or _hedged(list(raw)) or _VERDICT_WORDS.search(sentence) or _options_within(sentence, prose):
            return None  # the last sentence weighs an option or gives its own verdict
        end = start - 1
    return None


# A last sentence with one of these gives its own verdict (or names letters), so the one before is not it.
_VERDICT_WORDS = re.compile(r"(?i:answer|option|choice|correct|\b[A-J]\b)")


def _method_for(options: Mapping[str, str], letter: str) -> str:
    return "yes_no_maybe" if _norm(options[_key(options, letter)]) in _YNM else "option_text"


def find_option_text(body: str, options: Mapping[str, str], had_heading: bool, low: str | None = None) -> Extraction | None:
    """Step 4: the text of exactly one option stated as the conclusion.

    In order: the last "the answer is <option text>" statement; a reply that is
    one option's text; a concluding sentence ("Therefore, ...") naming exactly
    one option, with no negation; a Final Response section naming exactly one
    option; for yes/no/maybe items, a concluding or leading yes/no/maybe.
    """
    normed = [(k.upper(), _norm(v)) for k, v in options.items()]
    texts = [t for _, t in normed]
    if len(set(texts)) != len(texts):
        # Duplicate option texts cannot be told apart by their text.
        normed = [(k, t) for k, t in normed if texts.count(t) == 1]
    prose = [(k, t) for k, t in normed if t not in _YNM and _nameable(t)]
    if low is None:
        low = _ascii_lower(body)
    # (a) "the answer is <option text>", the last one
    letter = _last_text_statement(body, low, normed)
    if letter:
        return Extraction(letter, _method_for(options, letter))
    # (b) the whole reply is one option's text
    if len(body) <= 400:
        letter = _option_at_start(body, normed)
        if letter and _norm(body) == dict(normed)[letter]:
            return Extraction(letter, _method_for(options, letter))
    # (c) the concluding sentence names exactly one option
    tail = body[-600:]
    tail_low = low[-600:]
    cue_end = _last_cue_end(tail_low) if prose else None
    if cue_end is not None:
        sentence = tail[cue_end:]
        stop = _SENTENCE_END.search(sentence)
        if (stop is None or not sentence[stop.end():].strip()) and not _NEGATION.search(tail_low[cue_end:]):
            found = _options_within(sentence, prose)
            if len(found) == 1:
                letter = found.pop()
                return Extraction(letter, "option_text")
    # (d) a Final Response section that names exactly one option
    if had_heading and len(body) <= 2000 and prose:
        found = _options_within(body, prose)
        if len(found) == 1:
            return Extraction(found.pop(), "option_text")
    # (f) the last sentence commits to one option named by its text
    if prose and (found_named := find_committed_option(body, prose)) is not None:
        return found_named
    # (e) yes/no/maybe items: a concluding, last-line or leading yes/no/maybe
    yn = {t: k for k, t in normed if t in _YNM}
    if yn:
        last_line = low[low.rfind("\n") + 1:]
        m = _YNM_CONCLUSION.search(tail_low) if _ends_with_ynm(tail_low) else None
        if m is None and len(last_line) < 40:
            m = _YNM_WORD.fullmatch(last_line.rstrip(" .!*_\"'"))
        if m is None:
            m = _YNM_WORD.match(low)
        if m and m.group("w") in yn:
            return Extraction(yn[m.group("w")], "yes_no_maybe")
    return None


# ---------------------------------------------------------------------------
# The cascade
# ---------------------------------------------------------------------------


def extract_choice(text: str, options: Mapping[str, str]) -> Extraction:
    """Return the option letter TEXT commits to, and the rule that matched.

    OPTIONS maps letters ("A".."J") to option texts; only those letters can be
    returned. Returns ``Extraction(None, None)`` when no rule applies: the
    sample is unparsed, never guessed.
    """
    if not text or not options:
        return Extraction(None, None)
    stripped = strip_reasoning(text)
    if stripped is None:
        return Extraction(None, None)
    body = final_section(stripped)
    had_heading = body is not stripped
    body = body.strip()
    if not body:
        return Extraction(None, None)
    letters = frozenset(map(str.upper, options))
    low = _ascii_lower(body)
    statement = last_statement(body, low, letters, options)
    if void_verdict(body, low, letters, options, statement[0] if statement else 0, statement is not None):
        return Extraction(None, None)
    found = Extraction(statement[1], statement[2]) if statement else None
    if found is None:
        found = find_bare(body, options, letters)
    if found is None:
        found = find_option_text(body, options, had_heading, low)
    return found if found is not None else Extraction(None, None)


# ---------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------



#: Extractors by the name given to ``--extractor``.
EXTRACTORS: dict[str, Extractor] = {}

DEFAULT_EXTRACTOR = "evalkit"


def register_extractor(name: str) -> Callable[[Extractor], Extractor]:
    """Decorator: make an extractor available by NAME (``--extractor NAME``), as scorers and metrics are."""
    def add(fn: Extractor) -> Extractor:
        EXTRACTORS[name] = fn
        return fn
    return add


register_extractor("evalkit")(extract_choice)


def extractor_names() -> list[str]:
    """The names of every registered extractor, sorted, those the plugins register included."""
    from evalkit.core.plugins import load_plugins

    load_plugins()
    return sorted(EXTRACTORS)


def get_extractor(name: str) -> Extractor:
    """The extractor registered as NAME, or ``module:attr`` outside evalkit; a clear error otherwise."""
    if ":" in name:
        from evalkit.core.plugins import load_attr

        return load_attr(name, "extractor")
    if name not in EXTRACTORS:
        from evalkit.core.plugins import load_plugins

        load_plugins()
    try:
        return EXTRACTORS[name]
    except KeyError:
        raise ValueError(f"unknown extractor {name!r}; choose one of: {', '.join(EXTRACTORS)}, "
                         "or module:attr") from None
