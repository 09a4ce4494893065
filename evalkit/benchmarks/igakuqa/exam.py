"""IgakuQA, Japan's national medical licensing exams 2018-2022 (exams 112-116): pure parts.

- ``igakuqa`` / ``igakuqa_en`` adapters: a record of ``YEAR/EXAM-SECTION.jsonl`` (``problem_id``,
  ``problem_text``, ``choices`` a-e (a few a-h), ``answer`` a list, ``points``, ``text_only``) joined with
  its line of ``EXAM-SECTION_metadata.jsonl`` (``kinki``, ``human_accuracy``, ``breakdown``,
  ``category``) and of ``EXAM-SECTION_translate.jsonl`` (``problem_text_en``, ``choices_en``) by
  ``problem_id``. The loader reads the two companion files beside the exam file (``COMPANIONS``);
  ``igakuqa_en`` puts the English translation in the question and options, as dataset ``NAME_en``.
- The gold (``Item.target``): ``ChoiceSets`` (the letter sets accepted: a set is right only
  when exactly right; ``"a or d"`` gives two accepted sets) or ``NumericAnswer`` (value ``"2.1"``,
  answer ``"21"``, template ``"①.②"``); stored as ``{"kind": "choices", "accept": [[letters], ...]}``
  and ``{"kind": "number", "value", "answer", "template"}``.
- Extraction of one or several choices (or a number) from free text in Japanese or English.
- ``grade``: right or wrong, and the contraindicated (kinki) choices picked.
- ``exam_summary``: the model beside the examinees per exam and section, and the pass/fail rule.

Numbers are compared as the exam's digit boxes compare them: the question states how to round,
and the number the model gives must equal the official answer exactly (``2.10`` equals ``2.1``;
``2.14`` does not, and no rounding is done for the model). The official answer is read digit by
digit into the boxes of the question's answer line (``解答：①.②`` with answer ``21`` is 2.1, and
``解答：1, ①②③ kcal`` with answer ``130`` is 1130); a reply that gives the boxes' digits themselves
(``21``, ``130``) counts too, as the answer sheet holds only the boxes.
"""

from __future__ import annotations

import json
import re
import unicodedata
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable, Mapping, Sequence

from evalkit.data.adapters import AdapterError, register_adapter
from evalkit.benchmarks.igakuqa.targets import ChoiceSets, NumericAnswer
from evalkit.core.records import Item, ReportTable

COMPANIONS = ("_metadata", "_translate")  # files read beside EXAM-SECTION.jsonl, joined by JOIN_KEY
JOIN_KEY = "problem_id"
LETTERS = "abcdefghij"
REQUIRED_SECTIONS = frozenset("BE")  # 必修 (the required part) in exams 112-116
HARD_BELOW = 50.0  # examinees' accuracy (%) under which a question counts as one they found hard
_BOXES = "①②③④⑤⑥⑦⑧⑨"
_ID = re.compile(r"^(\d{3})([A-F])(\d+)$")


# --------------------------------------------------------------------------- the gold


def exam_parts(problem_id: str) -> tuple[str, str, int]:
    """``("112", "A", 1)`` for ``112A1``; AdapterError for another shape."""
    m = _ID.match(problem_id)
    if not m:
        raise AdapterError([f"problem_id {problem_id!r} is not EXAM SECTION NUMBER (e.g. 112A1)"])
    return m.group(1), m.group(2), int(m.group(3))


def answer_template(problem_text: str) -> str:
    """The question's answer line after ``解答：`` (the digit boxes), or ''."""
    i = max(problem_text.rfind("解答："), problem_text.rfind("解答:"))  # not NFKC: it turns ① into 1
    return problem_text[i + 3:].strip() if i >= 0 else ""


def numeric_value(answer: str, template: str) -> Decimal:
    """The official numeric answer read into the template's boxes (see the module docstring)."""
    first = min((template.find(b) for b in _BOXES if b in template), default=-1)
    if first < 0:
        return Decimal(answer)
    prefix = re.sub(r"\D", "", template[:first])
    boxes = re.sub(f"[^{_BOXES}.]", "", template[first:])
    whole, _, frac = boxes.partition(".")
    digits = re.sub(r"\D", "", answer)
    if len(digits) != len(whole) + len(frac):
        return Decimal(answer)  # the answer is already written out (e.g. "7.20")
    return Decimal(prefix + digits[:len(whole)] + ("." + digits[len(whole):] if frac else ""))


def gold_target(record: Mapping[str, Any]) -> ChoiceSets | NumericAnswer:
    """The typed gold of a record (see the module docstring); AdapterError when it cannot be read."""
    answer = record.get("answer")
    if not isinstance(answer, list) or not answer or not all(isinstance(a, str) for a in answer):
        raise AdapterError([f"answer must be a non-empty list of strings, got {answer!r}"])
    choices = record.get("choices") or []
    if not choices:
        try:
            value = numeric_value(answer[0], answer_template(str(record.get("problem_text", ""))))
        except InvalidOperation:
            raise AdapterError([f"a question without choices needs a numeric answer, got {answer!r}"]) from None
        return NumericAnswer(str(value), answer[0], answer_template(str(record.get("problem_text", ""))))
    letters = LETTERS[:len(choices)]
    if len(answer) == 1 and " or " in answer[0]:
        accept = [[a.strip()] for a in answer[0].split(" or ")]
    else:
        accept = [sorted(a.strip() for a in answer)]
    bad = sorted({x for a in accept for x in a if x not in letters})
    if bad:
        raise AdapterError([f"answer {answer!r} names {', '.join(bad)}, not among the choices {letters}"])
    return ChoiceSets(tuple(tuple(a) for a in accept))


def _float_or_none(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _item(record: Any, dataset: str, english: bool) -> Item:
    if not isinstance(record, dict):
        raise AdapterError([f"expected a JSON object, got {type(record).__name__}"])
    pid = record.get(JOIN_KEY)
    if not isinstance(pid, str):
        raise AdapterError([f"missing {JOIN_KEY}"])
    exam, section, number = exam_parts(pid)
    joined = record.get("_companions") or {}
    meta_rec = joined.get("_metadata") or {}
    tr_rec = joined.get("_translate") or {}
    if english and not tr_rec:
        raise AdapterError([f"{pid}: no English translation (the _translate.jsonl file beside it has no such id)"])
    try:
        points = int(record.get("points"))
    except (TypeError, ValueError):
        raise AdapterError([f"{pid}: points must be 0, 1 or 3, got {record.get('points')!r}"]) from None
    target = gold_target(record)
    choices = tr_rec.get("choices_en") if english else record.get("choices")
    choices = list(choices or [])
    if len(choices) != len(record.get("choices") or []):
        raise AdapterError([f"{pid}: the translation has {len(choices)} choices, the question "
                            f"{len(record.get('choices') or [])}"])
    question = str(tr_rec.get("problem_text_en") if english else record.get("problem_text", ""))
    meta = {"exam": exam, "section": section, "number": number, "points": points,
            "required": section in REQUIRED_SECTIONS, "text_only": bool(record.get("text_only", True)),
            "kinki": list(meta_rec.get("kinki") or []), "category": meta_rec.get("category"),
            "human_accuracy": _float_or_none(meta_rec.get("human_accuracy")),
            "breakdown": [_float_or_none(b) for b in meta_rec.get("breakdown") or []],
            "language": "en" if english else "ja"}
    # The English items are a dataset of their own (NAME_en): a run's resume keys are (dataset, id), and the
    # generation fingerprint does not name the adapter, so the two languages must never share a key.
    return Item(id=pid, dataset=f"{dataset}_en" if english else dataset, question=question,
                options={LETTERS[i]: str(c) for i, c in enumerate(choices)}, answer_idx=None, meta=meta,
                target=target)


@register_adapter("igakuqa")
def igakuqa(record: Any, *, dataset: str, key: str | None = None, allow: frozenset[str] = frozenset()) -> Item:
    """An IgakuQA question in Japanese, with its metadata (see the module docstring)."""
    return _item(record, dataset, english=False)


@register_adapter("igakuqa_en")
def igakuqa_en(record: Any, *, dataset: str, key: str | None = None, allow: frozenset[str] = frozenset()) -> Item:
    """The same question in the English translation of ``_translate.jsonl``."""
    return _item(record, dataset, english=True)


igakuqa.companions = igakuqa_en.companions = COMPANIONS  # type: ignore[attr-defined]
igakuqa.join_key = igakuqa_en.join_key = JOIN_KEY  # type: ignore[attr-defined]
# The prompt a run reading these items uses when it names none (run.plan.default_prompt): answers are
# sets of letters and numbers, which MedReason's one-letter "strict" prompt does not ask for.
igakuqa.default_prompt = "igakuqa_strict"  # type: ignore[attr-defined]
igakuqa_en.default_prompt = "igakuqa_en"  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- extraction (pure)

_THINK = re.compile(r"^\s*<think>.*?</think>", re.S)
_SEP = r"(?:[ \t]*(?:,|、|，|;|and|と|および|及び|&|/|・)[ \t]*|[ \t]+)"  # within one line
_LETTER = r"(?<![A-Za-z])[A-Ja-j](?![A-Za-z])"
_LIST = rf"\(?{_LETTER}\)?(?:{_SEP}\(?{_LETTER}\)?)*"
_CUE = r"(?:答え|解答|正解|回答|the\s+(?:correct\s+|final\s+)?answers?|answers?)"
_ANSWER_LINE = re.compile(rf"{_CUE}[ \t]*(?:is|are|は|:)?[ \t]*:?[ \t]*(?:options?[ \t]*|choices?[ \t]*)?({_LIST})"
                          r"[ \t]*(?=$|[.。、,;:()\[\]]|です|と|で|because\b|since\b|-|—)", re.I | re.M)
_PARENS = re.compile(r"\(([A-Ja-j])\)")
_BARE = re.compile(rf"^\s*({_LIST})\s*[.。]?\s*$", re.I)
_NUMBER = r"(-?\d+(?:,\d{3})*(?:\.\d+)?)"
_NUMBER_LINE = re.compile(rf"{_CUE}[ \t]*(?:is|are|は|:)?[ \t]*:?[ \t]*(?:約[ \t]*)?{_NUMBER}", re.I | re.M)
_BARE_NUMBER = re.compile(rf"^\s*{_NUMBER}\s*[^\d\s]{{0,12}}\s*[.。]?\s*$")


def normalized(text: str | None) -> str:
    """TEXT without a leading ``<think>`` block, full-width letters and digits folded (NFKC)."""
    return unicodedata.normalize("NFKC", _THINK.sub("", text or ""))


def _letters_in(span: str, allowed: str) -> list[str] | None:
    found = sorted({c.lower() for c in re.findall(_LETTER, span)})
    return found if found and all(c in allowed for c in found) else None


def extract_choices(text: str | None, letters: str) -> tuple[list[str] | None, str | None]:
    """The choices a free-text answer commits to, sorted, and the rule that found them.

    Rules, first that applies: the last answer line (「答え: a, c」, "The answers are A and C"; the
    letters on the cue's own line);
    the last line with letters in brackets ("(a)(d)"); a last line of letters alone. Letters
    outside LETTERS (the item's choices) make the match void. (None, None) when nothing applies:
    an honest unparsed, never a guess.
    """
    body = normalized(text)
    for m in reversed(list(_ANSWER_LINE.finditer(body))):
        got = _letters_in(m.group(1), letters)
        if got:
            return got, "answer_line"
    for line in reversed(body.splitlines()):
        marks = _PARENS.findall(line)
        if marks:
            got = _letters_in(" ".join(marks), letters)
            return (got, "bracketed") if got else (None, None)
    lines = [ln for ln in body.splitlines() if ln.strip()]
    if lines and _BARE.match(lines[-1]):
        got = _letters_in(lines[-1], letters)
        if got:
            return got, "bare_letters"
    return None, None


def extract_number(text: str | None) -> tuple[str | None, str | None]:
    """The number a free-text answer gives (commas dropped) and the rule: the last answer line, else
    a last line that is a number with at most a unit. (None, None) when neither applies."""
    body = normalized(text)
    found = list(_NUMBER_LINE.finditer(body))
    if found:
        return found[-1].group(1).replace(",", ""), "answer_line"
    lines = [ln for ln in body.splitlines() if ln.strip()]
    if lines:
        m = _BARE_NUMBER.match(lines[-1])
        if m:
            return m.group(1).replace(",", ""), "bare_number"
    return None, None


# --------------------------------------------------------------------------- grading (pure)


def number_matches(raw: str | None, target: NumericAnswer) -> bool:
    """Whether the number RAW answers a numeric question: it equals the official value, or it is the
    digits of the answer boxes in order (``21`` for ``①.②`` = 2.1), as the answer sheet reads them."""
    if raw is None:
        return False
    try:
        if Decimal(raw) == Decimal(target.value):
            return True
    except InvalidOperation:
        return False
    boxes = target.answer
    return raw.isdigit() and "." not in boxes and raw == boxes


def grade(target: ChoiceSets | NumericAnswer | None, options: Mapping[str, str], output: str | None,
          kinki: Sequence[str] = ()) -> dict[str, Any]:
    """Right or wrong for one answer: ``{"correct", "answer", "method", "kinki_picked"}``.

    A set is right only when it equals an accepted set exactly; a number only when it equals the
    official value (see the module docstring). ``answer`` is None when unparsed (wrong); so is any answer
    to an item without a gold (TARGET None).
    """
    if isinstance(target, NumericAnswer):
        raw, method = extract_number(output)
        return {"correct": number_matches(raw, target), "answer": raw, "method": method, "kinki_picked": []}
    letters = "".join(options) or LETTERS
    picked, method = extract_choices(output, letters)
    accepted = target.accept if isinstance(target, ChoiceSets) else ()
    right = picked is not None and any(picked == sorted(a) for a in accepted)
    contraindicated = sorted(set(picked or ()) & set(kinki))
    return {"correct": right, "answer": ",".join(picked) if picked else None, "method": method,
            "kinki_picked": contraindicated}


def same_choice_share(answer: str | None, meta: Mapping[str, Any]) -> float | None:
    """The share (0-1) of examinees who chose ANSWER, when it is one letter and the question's per-choice
    ``breakdown`` (in % per choice, a-e) has it; else None."""
    breakdown = meta.get("breakdown") or []
    if not answer or len(answer) != 1 or answer not in LETTERS:
        return None
    i = LETTERS.index(answer)
    return breakdown[i] / 100 if i < len(breakdown) and breakdown[i] is not None else None


# --------------------------------------------------------------------------- the exam beside the examinees

GROUPS = ("all", "hard", "text_only", "with_image")
_COUNTERS = ("n", "right", "points", "points_total", "human_sum", "human_n", "right_on_human", "excluded",
             "unscored", "kinki", "required_points", "required_total", "general_right", "general_n", "same_sum",
             "same_n")


def _add(counter: dict[str, float], score: Mapping[str, Any]) -> None:
    m = score.get("meta") or {}
    weight = m.get("weight", 1)
    if not weight:
        counter["excluded"] += 1
        return
    if score.get("value") is None:
        counter["unscored"] += 1
        return
    right = 1 if score["value"] else 0
    counter["n"] += 1
    counter["right"] += right
    counter["points"] += weight * right
    counter["points_total"] += weight
    if m.get("human_accuracy") is not None:
        counter["human_sum"] += m["human_accuracy"] / 100
        counter["human_n"] += 1
        counter["right_on_human"] += right
    counter["kinki"] += 1 if m.get("kinki_picked") else 0
    if m.get("examinees_same") is not None:
        counter["same_sum"] += m["examinees_same"]
        counter["same_n"] += 1
    if m.get("section") in REQUIRED_SECTIONS:
        counter["required_points"] += weight * right
        counter["required_total"] += weight
    else:
        counter["general_right"] += right
        counter["general_n"] += 1


def tally(scores: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Additive counts of the stored ``igakuqa`` scores, per ``EXAM-SECTION`` and group (all, hard for
    the examinees, text_only, with_image): what the report keeps per dataset and sums per exam."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for s in scores:
        m = (s.get("meta") or {}) if isinstance(s, Mapping) else {}
        if not m.get("exam"):
            continue
        groups = out.setdefault(f"{m['exam']}-{m['section']}", {g: dict.fromkeys(_COUNTERS, 0) for g in GROUPS})
        human = m.get("human_accuracy")
        names = ["all", "text_only" if m.get("text_only") else "with_image"]
        if human is not None and human < HARD_BELOW:
            names.append("hard")
        for g in names:
            _add(groups[g], s)
    return out


def merge(counters: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """The sum of several counters of one group."""
    total = dict.fromkeys(_COUNTERS, 0)
    for c in counters:
        for k in _COUNTERS:
            total[k] += c.get(k, 0)
    return total


def _share(num: float, den: float) -> float | None:
    return num / den if den else None


def view(c: Mapping[str, float]) -> dict[str, Any]:
    """The figures of one counter: the model's accuracy and the examinees' mean accuracy on the
    same questions (and the model's on the questions that have examinee figures), the exam score
    (points earned over points), excluded questions and questions with a contraindicated pick."""
    return {"n": int(c["n"]), "model_accuracy": _share(c["right"], c["n"]),
            "examinee_accuracy": _share(c["human_sum"], c["human_n"]),
            "model_on_examinee_items": _share(c["right_on_human"], c["human_n"]),
            "points": c["points"], "points_total": c["points_total"],
            "exam_score": _share(c["points"], c["points_total"]), "excluded": int(c["excluded"]),
            "unscored": int(c["unscored"]), "kinki_questions": int(c["kinki"]),
            "examinees_same_choice": _share(c.get("same_sum", 0), c.get("same_n", 0))}


def passes(c: Mapping[str, float], rule: Mapping[str, Any]) -> dict[str, Any]:
    """Whether one exam's counter (group ``all``) meets its published criteria RULE.

    Required part (sections B and E, points 1 or 3): points >= X/Y of the points counted. Other
    sections (each question 1 point): right answers >= X/Y of the questions counted. Questions with
    a contraindicated choice picked <= kinki_max. Shares are compared, so a run whose counted totals
    differ from the published Y still gets the same rule; both are reported. No verdict
    (``passed`` None) unless every counted question of the exam was answered and scored.
    """
    rx, ry = rule["required"]
    gx, gy = rule["general"]
    ok_req = c["required_total"] > 0 and c["required_points"] * ry >= rx * c["required_total"]
    ok_gen = c["general_n"] > 0 and c["general_right"] * gy >= gx * c["general_n"]
    ok_kinki = c["kinki"] <= int(rule["kinki_max"])
    complete = c["unscored"] == 0 and c["n"] == int(rule.get("questions_counted", c["n"]))
    return {"required": [c["required_points"], c["required_total"]], "required_threshold": [rx, ry],
            "general": [c["general_right"], c["general_n"]], "general_threshold": [gx, gy],
            "kinki": int(c["kinki"]), "kinki_max": int(rule["kinki_max"]), "complete": complete,
            "passed": (ok_req and ok_gen and ok_kinki) if complete else None}


def summarize(tallies: Mapping[str, Mapping[str, Mapping[str, float]]],
              criteria: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Per exam, per exam and section, on the questions examinees found hard (under HARD_BELOW %),
    on the text-only subset and on the questions with an image (not in the data), from TALLIES
    (``tally``'s output, possibly summed over datasets); pass/fail per exam where CRITERIA
    (``{exam: {"required": [X, Y], "general": [X, Y], "kinki_max": K, "questions_counted": N}}``)
    has the exam. Excluded questions (weight 0) count in no figure."""
    exams: dict[str, list] = {}
    for key, groups in tallies.items():
        exams.setdefault(key.split("-")[0], []).append(groups)
    out: dict[str, Any] = {
        "exams": {e: view(merge(g["all"] for g in gs)) for e, gs in sorted(exams.items())},
        "sections": {k: view(g["all"]) for k, g in sorted(tallies.items())},
        "pass": {},
    }
    for group in GROUPS[1:]:
        out[group] = view(merge(g[group] for g in tallies.values()))
    for exam, gs in sorted(exams.items()):
        rule = (criteria or {}).get(exam)
        if isinstance(rule, Mapping):
            out["pass"][exam] = passes(merge(g["all"] for g in gs), rule)
    return out


def exam_summary(scores: Iterable[Mapping[str, Any]], criteria: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``summarize`` of the stored ``igakuqa`` score dicts SCORES (value, meta with exam, section,
    weight, text_only, human_accuracy, kinki_picked)."""
    return summarize(tally(scores), criteria)


def passing_criteria() -> dict[str, Any]:
    """The published passing criteria per exam, from the bundled ``igakuqa`` suite (data, with sources)."""
    from evalkit.data.suites import suite_path  # imported here: only the report needs it

    path = suite_path("igakuqa")
    doc = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return {k: v for k, v in (doc.get("passing_criteria") or {}).items() if isinstance(v, Mapping)}


@register_adapter("igakuqa_companion")
def igakuqa_companion(record: Any, *, dataset: str, key: str | None = None,
                      allow: frozenset[str] = frozenset()) -> Item:
    """The registry's adapter for the ``_metadata`` / ``_translate`` files: they are read beside
    their exam file, never alone, so loading one is an error saying which file to load."""
    raise AdapterError(["this IgakuQA companion file is read beside its exam file (EXAM-SECTION.jsonl) "
                        "by the igakuqa adapters; load that file instead"])


# --------------------------------------------------------------------------- report section (the scorer's)


def report_extra(samples: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """One dataset's tally for the report (``{"igakuqa": tally}``), or {} when no sample has the score."""
    scores = [(s.get("scores") or {}).get("igakuqa") for s in samples]
    scores = [x for x in scores if isinstance(x, Mapping)]
    return {"igakuqa": tally(scores)} if scores else {}


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _verdict(p: Mapping[str, Any] | None) -> str:
    if not p:
        return "-"
    if p["passed"] is None:
        return "no verdict (incomplete)"
    req, gen = p["required"], p["general"]
    return (f"{'PASS' if p['passed'] else 'FAIL'} (required {req[0]:g}/{req[1]:g} vs {p['required_threshold'][0]}/"
            f"{p['required_threshold'][1]}; other {gen[0]:g}/{gen[1]:g} vs {p['general_threshold'][0]}/"
            f"{p['general_threshold'][1]}; kinki {p['kinki']} <= {p['kinki_max']})")


def report_tables(rows: Sequence[Any]) -> list[ReportTable]:
    """The IgakuQA table for report rows whose ``extra`` holds a tally (the scorer's report section):
    one line per run and exam (with pass/fail), per section, then the hard, text-only and with-image
    subsets."""
    per_run: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r.group is None and isinstance(r.extra.get("igakuqa"), Mapping):
            per_run.setdefault(r.run, {}).update(r.extra["igakuqa"])
    if not per_run:
        return []
    criteria = passing_criteria()
    header = ("run", "exam / subset", "n", "model acc %", "examinees acc %", "model on same %", "exam score %",
              "excluded", "kinki picks", "examinees with the model's choice %", "pass (published criteria)")
    lines = []
    for run, tallies in per_run.items():
        summary = summarize(tallies, criteria)
        named = [(e, v, summary["pass"].get(e)) for e, v in summary["exams"].items()]
        named += [(k, v, None) for k, v in summary["sections"].items()]
        named += [(f"{g} (examinees < {HARD_BELOW:g}%)" if g == "hard" else g, summary[g], None)
                  for g in GROUPS[1:]]
        for name, v, verdict in named:
            lines.append((run, name, str(v["n"]), _pct(v["model_accuracy"]), _pct(v["examinee_accuracy"]),
                          _pct(v["model_on_examinee_items"]), _pct(v["exam_score"]), str(v["excluded"]),
                          str(v["kinki_questions"]), _pct(v["examinees_same_choice"]),
                          _verdict(verdict) if verdict or name in summary["exams"] else ""))
    notes = ("examinees acc: the examinees' mean accuracy on the same questions; model on same: the model's "
             "accuracy on the questions that have examinee figures",
             "exam score: points earned over points (1 or 3 a question); questions the ministry excluded "
             "(points 0) are left out of every figure and counted under excluded",
             "kinki picks: questions where the answer picked a contraindicated (禁忌) choice",
             f"hard: questions fewer than {HARD_BELOW:g}% of the examinees answered right; text_only / "
             "with_image: questions without / with an image (the images are not in the data)",
             "pass: the ministry's published criteria (required part, other sections, contraindicated picks); "
             "no verdict unless every counted question of the exam was answered")
    return [ReportTable("IgakuQA beside the examinees", header, tuple(lines), notes)]
