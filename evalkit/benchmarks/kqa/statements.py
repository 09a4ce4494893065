"""K-QA (Manes et al. 2024, arXiv:2401.14493): statement-level grading of long answers.

- ``kqa`` adapter: a record of ``questions_w_answers.jsonl`` (``Question``, ``Free_form_answer``,
  ``Must_have``, ``Nice_to_have``) -> an Item whose target is ``Statements``
  (must_have, nice_to_have, reference: the free-form answer; stored as ``{"must_have": [...],
  "nice_to_have": [...], "reference": answer}``; empty statements left out: the published file has 3
  empty Must_have strings).
- The judge's task (prompts and reply parsing, pure): for each gold statement, does the answer
  entail it, contradict it, or neither (``neutral``). One request per statement
  (``per="statement"``) or one per answer listing all its statements (``per="answer"``).
- K-QA's figures, as its evaluation script defines them (Itaymanes/K-QA @ ef403d01,
  evaluation/metrics.py): an answer's comprehensiveness is the share of its question's Must_have
  statements it entails; its hallucination count the statements of either list it contradicts.
  Comp = the sum of comprehensiveness over the answers / the number of questions (an unanswered
  question counts 0), Comp_norm = its mean over answered questions; Hall = contradicted statements /
  questions, Hall_norm = / answered questions.
- The physicians' file ``NLI_medical_annotator.csv`` (answer, statement, three labels and their
  majority): reading it, and judging its pairs (journaled, resumable) for ``evalkit judge``.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from evalkit.data.adapters import AdapterError, content_id, register_adapter
from evalkit.config import DEFAULT_SEED, JudgeSettings, field_default
from evalkit.benchmarks.kqa.targets import Statements
from evalkit.core.records import Item, ReportTable

JUDGE_RESAMPLES = field_default(JudgeSettings, "n_resamples")  # bootstrap resamples of the agreement figures
NLI_JOURNAL = "kqa-nli-journal.jsonl"  # the judged pairs of a physicians' file, in the work folder (resumes)

LABELS = ("entailment", "neutral", "contradiction")
PHYSICIAN_LABELS = ("Entailment", "Neutral", "Contradiction")  # as the physicians' file writes them
PER_MODES = ("statement", "answer")

STATEMENT_TEMPLATE = """You check a medical answer against one statement written by a physician.

Question:
{question}

Answer:
{answer}

Statement:
{statement}

Does the answer entail the statement (it says it or clearly implies it), contradict it (it says something that cannot be true together with it), or neither (it does not settle it: neutral)?
Reply with one JSON object and nothing else: {{"label": "entailment"}}, {{"label": "neutral"}} or {{"label": "contradiction"}}."""

ANSWER_TEMPLATE = """You check a medical answer against statements written by a physician, one by one.

Question:
{question}

Answer:
{answer}

Statements:
{statements}

For each statement, say whether the answer entails it (says it or clearly implies it), contradicts it (says something that cannot be true together with it), or neither (neutral).
Reply with one JSON object and nothing else, with one label per statement in their order, for example:
{example}"""


# --------------------------------------------------------------------------- adapter


def _strings(record: Mapping[str, Any], name: str, errors: list[str]) -> list[str]:
    value = record.get(name)
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        errors.append(f"{name} must be a list of statements (strings)")
        return []
    return [x.strip() for x in value if x.strip()]


@register_adapter("kqa")
def kqa(record: Any, *, dataset: str, key: str | None = None, allow: frozenset[str] = frozenset()) -> Item:
    """A K-QA question with its physician's statements as the typed target."""
    if not isinstance(record, dict):
        raise AdapterError([f"expected a JSON object, got {type(record).__name__}"])
    errors: list[str] = []
    question = record.get("Question")
    if not isinstance(question, str) or not question.strip():
        errors.append("missing Question")
    must = _strings(record, "Must_have", errors)
    nice = _strings(record, "Nice_to_have", errors) if record.get("Nice_to_have") is not None else []
    if not must and not errors:
        errors.append("Must_have is empty: comprehensiveness needs at least one statement")
    reference = record.get("Free_form_answer")
    if reference is not None and not isinstance(reference, str):
        errors.append(f"Free_form_answer must be text, got {type(reference).__name__}")
    if errors:
        raise AdapterError(errors)
    meta = {k: record[k] for k in ("Sources", "ICD_10_diag") if k in record}
    target = Statements(tuple(must), tuple(nice), reference)
    return Item(id=key or content_id(question, {}), dataset=dataset, question=question.strip(), target=target,
                meta=meta)


# --------------------------------------------------------------------------- prompts and replies (pure)


def render_statement_prompt(question: str, answer: str, statement: str) -> str:
    """The judge prompt for one (answer, statement) pair."""
    return STATEMENT_TEMPLATE.format(question=question, answer=answer, statement=statement)


def render_answer_prompt(question: str, answer: str, statements: Sequence[str]) -> str:
    """The judge prompt for all of an answer's statements at once."""
    lines = "\n".join(f"{i}. {s}" for i, s in enumerate(statements, 1))
    example = json.dumps({"labels": [LABELS[i % 3] for i in range(len(statements))]})
    return ANSWER_TEMPLATE.format(question=question, answer=answer, statements=lines, example=example)


def _label(raw: Any) -> str | None:
    if not isinstance(raw, str):
        return None
    word = raw.strip().lower()
    aliases = {"entails": "entailment", "entailed": "entailment", "contradicts": "contradiction",
               "contradicted": "contradiction", "neither": "neutral"}
    word = aliases.get(word, word)
    return word if word in LABELS else None


def parse_label_reply(text: str) -> tuple[str | None, str | None]:
    """The label of a one-statement reply (``{"label": ...}``), or None and what is wrong."""
    from evalkit.scoring.rubric_judge import reply_object

    obj, error = reply_object(text)
    if obj is None:
        return None, error
    lowered = {str(k).strip().lower(): v for k, v in obj.items()}
    if "label" not in lowered:
        return None, "key 'label' is missing"
    label = _label(lowered["label"])
    if label is None:
        return None, f"label must be one of {', '.join(LABELS)}, got {json.dumps(lowered['label'])}"
    return label, None


def parse_labels_reply(text: str, count: int) -> tuple[list[str] | None, str | None]:
    """COUNT labels, in order, from a per-answer reply (``{"labels": [...]}``), or None and what is wrong."""
    from evalkit.scoring.rubric_judge import reply_object

    obj, error = reply_object(text)
    if obj is None:
        return None, error
    lowered = {str(k).strip().lower(): v for k, v in obj.items()}
    raw = lowered.get("labels")
    if not isinstance(raw, list):
        return None, "key 'labels' (a list) is missing"
    if len(raw) != count:
        return None, f"expected {count} labels, one per statement, got {len(raw)}"
    labels = [_label(x) for x in raw]
    bad = [i + 1 for i, x in enumerate(labels) if x is None]
    if bad:
        return None, f"labels {bad} are not one of {', '.join(LABELS)}"
    return labels, None  # type: ignore[return-value]


# --------------------------------------------------------------------------- K-QA's figures (pure)


def answer_figures(target: Statements, labels: Sequence[str]) -> tuple[float, int, list[str]]:
    """(comprehensiveness, contradicted count, contradicted statements) of one answer, from LABELS in the
    order of ``statements(target)`` (Must_have first, then Nice_to_have)."""
    must = target.must_have
    every = statements(target)
    entailed = sum(1 for label in labels[:len(must)] if label == "entailment")
    contradicted = [s for (s, _), label in zip(every, labels) if label == "contradiction"]
    return entailed / len(must), len(contradicted), contradicted


def statements(target: Statements) -> list[tuple[str, str]]:
    """(statement, "Must_have" or "Nice_to_have") in the order the judge sees them."""
    return [(s, "Must_have") for s in target.must_have] + [(s, "Nice_to_have") for s in target.nice_to_have]


def kqa_figures(comprehensiveness: Sequence[float | None], hallucinations: Sequence[int | None],
                n_questions: int | None = None) -> dict[str, Any]:
    """Comp, Comp_norm, Hall, Hall_norm, N_contra and the answered count, as K-QA's script reports them.

    The lists hold one value per question asked (None: not answered or not graded); N_QUESTIONS
    defaults to their length (K-QA divides by its 201 questions)."""
    answered = [(c, h) for c, h in zip(comprehensiveness, hallucinations, strict=True)
                if c is not None and h is not None]
    total = n_questions if n_questions is not None else len(comprehensiveness)
    comp_sum = sum(c for c, _ in answered)
    contra = sum(h for _, h in answered)
    return {"Comp": comp_sum / total if total else None,
            "Comp_norm": comp_sum / len(answered) if answered else None,
            "Hall": contra / total if total else None,
            "Hall_norm": contra / len(answered) if answered else None,
            "N_contra": int(contra), "N_answered_questions": len(answered), "N_questions": total}


# --------------------------------------------------------------------------- asking a judge


def reply_schema(per: str, count: int) -> dict[str, Any]:
    """The JSON schema of a well-formed reply (for ``response_format``, which a small judge needs)."""
    if per == "statement":
        return {"type": "object", "properties": {"label": {"enum": list(LABELS)}}, "required": ["label"]}
    return {"type": "object", "required": ["labels"],
            "properties": {"labels": {"type": "array", "items": {"enum": list(LABELS)}, "minItems": count,
                                      "maxItems": count}}}


async def judge_statements(ask: Any, question: str, answer: str, items: Sequence[str], per: str, *,
                           json_schema: bool = False) -> tuple[list[str | None], list[Any]]:
    """Labels for ITEMS (statements) of ANSWER, asking with ASK (``RubricJudgeScorer.ask``): one request per
    statement, or one for them all; (labels, the JudgeReply of each request). A statement whose
    request got no valid reply has label None. JSON_SCHEMA constrains the replies (``reply_schema``)."""
    if per not in PER_MODES:
        raise ValueError(f"per must be one of {', '.join(PER_MODES)}, not {per!r}")
    if not items:
        return [], []
    schema = reply_schema(per, len(items)) if json_schema else None
    if per == "statement":
        replies = await asyncio.gather(*(ask(render_statement_prompt(question, answer, s), parse_label_reply,
                                             schema=schema) for s in items))
        return [r.parsed for r in replies], list(replies)
    reply = await ask(render_answer_prompt(question, answer, items),
                      lambda text: parse_labels_reply(text, len(items)), schema=schema)
    return (list(reply.parsed) if reply.parsed is not None else [None] * len(items)), [reply]


def judge_spec(model: str, per: str, temperature: float, max_tokens: int, max_attempts: int,
               json_schema: bool = False) -> dict[str, Any]:
    """What changes the statement labels: the judge model, the mode and template, the sampling."""
    template = STATEMENT_TEMPLATE if per == "statement" else ANSWER_TEMPLATE
    return {"model": model, "per": per, "template_sha256": hashlib.sha256(template.encode()).hexdigest(),
            "temperature": temperature, "max_tokens": max_tokens, "max_attempts": max_attempts,
            "json_schema": json_schema}


# --------------------------------------------------------------------------- the physicians' file


@dataclass(frozen=True)
class NliPair:
    """One row of NLI_medical_annotator.csv: an LLM's answer, a gold statement and the physicians' labels."""

    row: int  # the file's line of the record's start
    question: str
    llm: str
    answer: str
    statement: str
    kind: str
    labels: tuple[str, str, str]
    majority: str


NLI_COLUMNS = ("answer", "claim", "majority_label", "label_0", "label_1", "label_2")  # what the judge reads


class NliFileError(ValueError):
    """A physicians' CSV that cannot be read: each problem as ``file:line: what is wrong``."""


def is_nli_file(path: Path) -> bool:
    """True when PATH is a CSV with K-QA's physician-label columns (a file that is not text is not one)."""
    if path.suffix.lower() != ".csv" or not path.is_file():
        return False
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            header = next(csv.reader(fh), [])
    except (UnicodeDecodeError, csv.Error):
        return False
    return set(NLI_COLUMNS) <= set(header)


def _nli_text(path: Path) -> str:
    """PATH's text; NliFileError naming the line of the first byte that is not UTF-8 (a binary file)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise NliFileError(f"{path}: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise NliFileError(f"{path}:{line}: not UTF-8 text (byte {exc.start + 1}): not K-QA's physicians' CSV "
                           "(NLI_medical_annotator.csv)") from None


def _nli_row_problem(rec: Mapping[Any, Any]) -> str | None:
    """What is wrong with one row of the physicians' CSV (as csv.DictReader gives it), or None."""
    if None in rec:  # DictReader keeps fields past the header under the key None
        return f"{len(rec[None])} fields more than the header"
    if any(v is None for v in rec.values()):  # ... and gives None for those a short row lacks
        return "fewer fields than the header"
    bad = [rec[c] for c in ("label_0", "label_1", "label_2", "majority_label") if rec[c] not in PHYSICIAN_LABELS]
    if bad:
        return repr(bad)
    return None if rec["answer"] and rec["claim"] else "an empty answer or claim"


def read_nli_pairs(path: Path, *, limit: int | None = None) -> list[NliPair]:
    """The pairs of a physician-label CSV; NliFileError naming the file and line of each bad record
    (a file that is not UTF-8 text, a header without the columns read, a row the CSV reader refuses)."""
    pairs, problems = [], []
    reader = csv.DictReader(io.StringIO(_nli_text(path), newline=""))
    try:
        missing = [c for c in NLI_COLUMNS if c not in (reader.fieldnames or [])]  # reads the header
        if missing:
            raise NliFileError(f"{path}:1: not K-QA's physicians' CSV (NLI_medical_annotator.csv): its header "
                               f"lacks {', '.join(missing)}")
        while True:
            line = reader.line_num + 1
            try:
                rec = next(reader)
            except StopIteration:
                break
            problem = _nli_row_problem(rec)
            if problem is not None:
                problems.append(f"{path}:{line}: needs answer, claim and labels among "
                                f"{', '.join(PHYSICIAN_LABELS)} (got {problem})")
                continue
            labels = tuple(rec[f"label_{i}"] for i in range(3))
            pairs.append(NliPair(line, rec.get("Question") or "", rec.get("llm_x") or "", rec["answer"], rec["claim"],
                                 rec.get("category_x") or "", labels, rec["majority_label"]))  # type: ignore[arg-type]
    except csv.Error as exc:
        problems.append(f"{path}:{reader.line_num}: {exc}")
    if problems:
        raise NliFileError("\n".join(problems[:20]) + (f"\n... and {len(problems) - 20} more" if len(problems) > 20
                                                        else ""))
    return pairs[:limit] if limit is not None else pairs


def to_physician_label(label: str | None) -> str | None:
    """``entailment`` -> ``Entailment`` (the file's spelling); None stays None."""
    return None if label is None else label.capitalize()


async def judge_nli_pairs(pairs: Sequence[NliPair], ask: Any, spec: Mapping[str, Any], per: str,
                          journal: Path, *, json_schema: bool = False,
                          on_start: Callable[[int, int], None] | None = None,
                          on_judged: Callable[[bool, bool], None] | None = None) -> tuple[list[str | None], int]:
    """The judge's label of each pair (None: no valid reply), asking only for those the JOURNAL (a
    JSONL under WORK_DIR) does not hold under the same SPEC; (labels in pair order, pairs resumed).
    Per answer, the pairs of one answer (same question, LLM and answer text) go in one request.
    ON_START(total, resumed) is told before the first request; ON_JUDGED(labelled, request failed)
    after each pair."""
    fingerprint = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    done: dict[int, str | None] = {}
    if journal.is_file():
        for line in journal.read_text(encoding="utf-8").splitlines():
            rec = json.loads(line) if line.strip() else {}
            if rec.get("fingerprint") == fingerprint and rec.get("label") is not None:
                done[int(rec["row"])] = rec["label"]
    groups: dict[tuple[str, str, str], list[NliPair]] = {}
    for p in pairs:
        if p.row not in done:
            key = (p.question, p.llm, p.answer) if per == "answer" else (str(p.row), "", "")
            groups.setdefault(key, []).append(p)
    journal.parent.mkdir(parents=True, exist_ok=True)
    resumed = len(pairs) - sum(len(g) for g in groups.values())  # the pairs the journal already answers
    if on_start is not None:
        on_start(len(pairs), resumed)
    with open(journal, "a", encoding="utf-8") as out:
        async def one(group: list[NliPair]) -> None:
            labels, replies = await judge_statements(ask, group[0].question, group[0].answer,
                                                     [p.statement for p in group], per, json_schema=json_schema)
            for p, label, reply in zip(group, labels, replies * len(group) if per == "answer" else replies):
                done[p.row] = label
                out.write(json.dumps({"row": p.row, "fingerprint": fingerprint, "label": label,
                                      "reply": reply.reply, "error": reply.error}) + "\n")
                if on_judged is not None:
                    on_judged(label is not None, bool(reply.retryable))
            out.flush()
        await asyncio.gather(*(one(g) for g in groups.values()))
    return [done.get(p.row) for p in pairs], resumed


# --------------------------------------------------------------------------- report section (the scorer's)


def report_extra(samples: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """One dataset's K-QA figures and the judge's cost, or {} when no sample has the scores."""
    samples = list(samples)
    comp = [((s.get("scores") or {}).get("comprehensiveness") or {}) for s in samples]
    if not any(c.get("meta", {}).get("kqa") for c in comp):
        return {}
    hall = [((s.get("scores") or {}).get("hallucination") or {}) for s in samples]
    figures = kqa_figures([c.get("value") for c in comp], [h.get("value") for h in hall], len(samples))
    cost = {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0, "seconds": 0.0}
    for c in comp:
        m = c.get("meta") or {}
        cost["requests"] += int(m.get("judge_requests") or 0)
        tokens = m.get("judge_tokens") or {}
        cost["prompt_tokens"] += int(tokens.get("prompt_tokens") or 0)
        cost["completion_tokens"] += int(tokens.get("completion_tokens") or 0)
        cost["seconds"] += float(m.get("latency_s") or 0.0)
    return {"kqa": {**figures, "judge": cost}}


def _pct(x: Any) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _num(x: Any) -> str:
    return "-" if x is None else f"{x:.3f}"


def report_tables(rows: Sequence[Any]) -> list[ReportTable]:
    """The K-QA table (the scorer's report section): per run and dataset, Comp / Comp_norm (%),
    Hall / Hall_norm, and the judge's cost."""
    lines = []
    for r in rows:
        k = r.extra.get("kqa") if r.group is None else None
        if not isinstance(k, Mapping):
            continue
        j = k["judge"]
        lines.append((r.run, r.dataset, f"{k['N_answered_questions']}/{k['N_questions']}", _pct(k["Comp"]),
                      _pct(k["Comp_norm"]), _num(k["Hall"]), _num(k["Hall_norm"]), str(k["N_contra"]),
                      str(j["requests"]), f"{j['prompt_tokens']}+{j['completion_tokens']}", f"{j['seconds']:.1f}"))
    if not lines:
        return []
    header = ("run", "dataset", "answered", "Comp %", "Comp_norm %", "Hall", "Hall_norm", "contradicted",
              "judge requests", "judge tokens (prompt+completion)", "judge s")
    notes = ("Comp: the share of each question's Must_have statements the answer entails, summed over the "
             "questions asked and divided by their number (an unanswered question counts 0)",
             "Hall: statements (Must_have and Nice_to_have) the answers contradict, per question asked",
             "_norm: over the answered questions only; contradicted: statements contradicted in all")
    return [ReportTable("K-QA", header, tuple(lines), notes)]


# --------------------------------------------------------------------------- the judge against the physicians


def nli_report(pairs: Sequence[NliPair], judge_labels: Sequence[str | None], *, n_resamples: int = JUDGE_RESAMPLES,
               seed: int = DEFAULT_SEED) -> Any:
    """The judge's agreement with the physicians' majority, between its floor (always Neutral; word
    overlap) and its ceiling (each physician against the other two; Fleiss' kappa of the three)."""
    from evalkit.scoring.nli_stats import NliReport, fleiss_kappa, label_agreement, leave_one_out, word_overlap_labels

    gold = [p.majority for p in pairs]
    kw = {"n_resamples": n_resamples, "seed": seed}
    overlap = word_overlap_labels([p.answer for p in pairs], [p.statement for p in pairs])
    ratings = [list(p.labels) for p in pairs]
    return NliReport(
        judge=label_agreement(gold, [to_physician_label(x) for x in judge_labels], PHYSICIAN_LABELS, **kw),
        always_neutral=label_agreement(gold, ["Neutral"] * len(gold), PHYSICIAN_LABELS, **kw),
        word_overlap=label_agreement(gold, overlap, PHYSICIAN_LABELS, **kw),
        physicians=leave_one_out(ratings, PHYSICIAN_LABELS, **kw),
        fleiss_kappa=fleiss_kappa(ratings, PHYSICIAN_LABELS))


def evaluate_nli_file(path: Path, judge: Any, *, per: str, work_dir: Path, limit: int | None = None,
                      n_resamples: int = JUDGE_RESAMPLES, on_start: Callable[[int, int], None] | None = None,
                      on_judged: Callable[[bool, bool], None] | None = None,
                      ) -> tuple[Any, list[NliPair], list[str | None], int]:
    """Judge the pairs of a physicians' file with JUDGE (a RubricJudgeScorer used as the client), journaled in
    WORK_DIR; (NliReport, pairs, judge labels, pairs resumed from the journal). ON_START and ON_JUDGED
    follow the pass (``judge_nli_pairs``)."""
    pairs = read_nli_pairs(path, limit=limit)
    spec = judge_spec(judge.model, per, judge.temperature, judge.max_tokens, judge.max_attempts, judge.json_schema)

    async def go() -> tuple[list[str | None], int]:
        try:
            return await judge_nli_pairs(pairs, judge.ask, spec, per, work_dir / NLI_JOURNAL,
                                         json_schema=judge.json_schema, on_start=on_start, on_judged=on_judged)
        finally:
            await judge.aclose()

    labels, resumed = asyncio.run(go())
    return nli_report(pairs, labels, n_resamples=n_resamples), pairs, labels, resumed


@register_adapter("kqa_nli")
def kqa_nli(record: Any, *, dataset: str, key: str | None = None, allow: frozenset[str] = frozenset()) -> Item:
    """The registry's adapter for the physicians' CSV: it is read by ``evalkit judge``, never run."""
    raise AdapterError(["K-QA's NLI_medical_annotator.csv is read by `evalkit judge FILE` (the judge against "
                        "the physicians), not run as a benchmark"])
