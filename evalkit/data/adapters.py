"""Adapters: one source record -> one ``Item``.

A benchmark names its adapter in the registry (``"adapter"`` in
eval_data/registry.json); a user file can name one with ``--adapter NAME`` or
``--adapter module:attr``. An adapter is a plain function

    adapter(record: dict, *, dataset: str, key: str | None = None, allow: frozenset[str] = frozenset()) -> Item

that raises ``AdapterError`` listing everything wrong with the record. The item's
``target`` is None or one of evalkit.core.records' target types (``References``,
``RubricItems``, ``GradedAnswer``, or a kind a benchmark registers). KEY is the
record's key in a keyed layout; ALLOW lists validation rules relaxed for an exact
published file. Adapters are pure: no I/O.

Built in:
- ``mcq``: multiple choice in every layout the public files use: options as a dict,
  a list, or embedded in the question as ``Answer Choices: (A) ... (B) ...``; the gold
  letter from ``answer_idx``, ``label``, ``answer`` (a letter or an option's text);
  a ``final_decision`` field (yes/no/maybe: the options are ``DECISION_OPTIONS``) too.

Benchmarks with code of their own register theirs from their folder (evalkit.benchmarks), found
through ``core.plugins.load_plugins`` when a name is not registered yet.
"""

from __future__ import annotations

import hashlib
import importlib
from typing import Any, Callable, Protocol

from evalkit.core.plugins import load_attr, load_plugins
from evalkit.core.records import Item, target_types

DECISION_OPTIONS = {"A": "yes", "B": "no", "C": "maybe"}  # the options of a record with a final_decision
_DECISION_LETTER = {text: letter for letter, text in DECISION_OPTIONS.items()}
_ID_KEYS = ("id", "idx", "pmid", "qid")
_CONTEXT_KEYS = ("context", "contexts", "CONTEXTS")
_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_CHOICES_MARK = "Answer Choices:"
_JSON_TYPE = {list: "array", str: "string", int: "number", float: "number", bool: "boolean",
              type(None): "null"}
DEFAULT_ADAPTER = "mcq"


class AdapterError(ValueError):
    """A record an adapter cannot turn into an item; ``messages`` says everything wrong with it."""

    def __init__(self, messages: list[str]):
        super().__init__("; ".join(messages))
        self.messages = list(messages)


class Adapter(Protocol):
    def __call__(self, record: Any, *, dataset: str, key: str | None = None,
                 allow: frozenset[str] = frozenset()) -> Item: ...


ADAPTERS: dict[str, Adapter] = {}


def register_adapter(name: str) -> Callable[[Adapter], Adapter]:
    """Function decorator: make an adapter available by NAME (registry rows and ``--adapter``)."""
    def add(fn: Adapter) -> Adapter:
        ADAPTERS[name] = fn
        return fn
    return add



def get_adapter(name: str | None) -> Adapter:
    """The adapter called NAME (None: the default ``mcq``), or one given as ``module:attr``."""
    name = name or DEFAULT_ADAPTER
    if ":" in name:
        fn = load_attr(name, "adapter")
        if not callable(fn):
            raise ValueError(f"adapter {name!r} is not callable")
        return fn
    if name not in ADAPTERS:
        load_plugins()
    try:
        return ADAPTERS[name]
    except KeyError:
        raise ValueError(f"unknown adapter {name!r}; known: {', '.join(sorted(ADAPTERS))}, or module:attr") from None


def adapt(adapter: Adapter, record: Any, dataset: str, key: str | None,
          allow: frozenset[str]) -> tuple[Item | None, list[str], bool]:
    """Run ADAPTER on RECORD: (item, [], id_is_content_hash) or (None, messages, False)."""
    try:
        item = adapter(record, dataset=dataset, key=key, allow=allow)
    except AdapterError as exc:
        return None, exc.messages, False
    if item.target is not None and not isinstance(item.target, target_types()):
        return None, [f"the adapter gave a target of type {type(item.target).__name__}; a target is one of "
                      f"{', '.join(t.__name__ for t in target_types())} (evalkit.core.records, or registered), "
                      "or None"], False
    # Only an id of content_id's shape can be one; the hash is not worth computing for others.
    could_be_hash = isinstance(item.id, str) and len(item.id) == _CONTENT_ID_CHARS \
        and not item.id.strip(_HEX_DIGITS)
    return item, [], could_be_hash and item.id == content_id(item.question, item.options)


@register_adapter("mcq")
def mcq(record: Any, *, dataset: str, key: str | None = None, allow: frozenset[str] = frozenset()) -> Item:
    """A multiple-choice record in any of the public layouts (see the module docstring)."""
    item, errors, _ = _normalize(record, dataset, key, allow)
    if errors:
        raise AdapterError(errors)
    assert item is not None
    return item


def split_embedded_choices(question: str) -> tuple[str, dict[str, str]] | None:
    """Split ``stem\\nAnswer Choices: (A) x (B) y`` into the stem and {letter: text}.

    Letters are taken in sequence (A, then B, ...), so a later letter quoted
    inside an option ("Both (A) & (C)") does not start a new option.
    None when the question carries no such block.
    """
    mark = question.rfind(_CHOICES_MARK)
    if mark < 0:
        return None
    block = question[mark + len(_CHOICES_MARK):]
    starts: list[tuple[str, int, int]] = []
    pos = 0
    for code in range(ord("A"), ord("Z") + 1):
        tag = f"({chr(code)}) "
        found = block.find(tag, pos) if starts else block.find(tag)
        if starts and found >= 0 and not block[found - 1].isspace():
            # "Rh(D) immunoglobulin": a letter in brackets inside a word is text.
            found = _next_spaced(block, tag, found + 1)
        if found < 0:
            break
        starts.append((chr(code), found, found + len(tag)))
        pos = found + len(tag)
    if len(starts) < 2:
        return None
    options = {}
    for i, (letter, _, text_start) in enumerate(starts):
        text_end = starts[i + 1][1] if i + 1 < len(starts) else len(block)
        options[letter] = block[text_start:text_end].strip()
    return question[:mark].rstrip(), options


def _next_spaced(block: str, tag: str, pos: int) -> int:
    while True:
        found = block.find(tag, pos)
        if found < 0 or block[found - 1].isspace():
            return found
        pos = found + 1


_CONTENT_ID_CHARS = 12
_HEX_DIGITS = "0123456789abcdef"


def content_id(question: str, options: dict[str, str] | None = None) -> str:
    """A short stable id from the question and options (used when a record has none)."""
    parts = [question]
    parts.extend(f"{letter}\x1f{text}" for letter, text in (options or {}).items())
    return hashlib.sha256("\x1e".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:_CONTENT_ID_CHARS]


def normalize_record(
    record: Any,
    *,
    dataset: str,
    key: str | None = None,
    allow: frozenset[str] = frozenset(),
) -> tuple[Item | None, list[str]]:
    """Normalize one raw record into an Item, or say everything wrong with it.

    KEY is the record's key in a keyed layout (used as its id when the record
    has none); with neither, the id is ``content_id`` of question and options.
    Returns (item, []) or (None, messages).
    """
    item, errors, _ = _normalize(record, dataset, key, allow)
    return item, errors


def _normalize(
    record: Any, dataset: str, key: str | None, allow: frozenset[str]
) -> tuple[Item | None, list[str], bool]:
    """``normalize_record``, also saying whether the id is a content hash."""
    if not isinstance(record, dict):
        return None, [f"record is a JSON {_JSON_TYPE.get(type(record), 'value')}, expected an object"], False
    errors: list[str] = []
    used: set[str] = set()
    question = _question_of(record, used, errors)
    question, options = _options_of(record, question, used, errors)
    _check_options(options, allow, errors)
    gold, gold_error = _gold(record, options, used)
    if gold_error:
        errors.append(gold_error)
    context = _context_of(record, used, errors)
    item_id = _id_of(record, used, errors) or key or ""
    if errors:
        return None, errors, False
    hashed = not item_id
    if hashed:
        item_id = content_id(question, options)
    meta = {k: v for k, v in record.items() if k not in used}
    return Item(item_id, dataset, question, options, gold, context or None, meta), [], hashed


def _question_of(record: dict, used: set[str], errors: list[str]) -> str:
    """The question text (``question``, or ``QUESTION``); "" with an error when missing, not text or empty."""
    question = record.get("question")
    if question is None and "QUESTION" in record:
        question = record["QUESTION"]
        used.add("QUESTION")
    else:
        used.add("question")
    if not isinstance(question, str) or not question.strip():
        errors.append("missing question" if question is None
                      else "question is not text" if not isinstance(question, str) else "question is empty")
        return ""
    return question


def _options_of(record: dict, question: str, used: set[str], errors: list[str]) -> tuple[str, dict[str, str]]:
    """The options {letter: text}: given as an object or a list, embedded in the question (then taken
    out of it), or a decision field's yes/no/maybe; with the question as the prompt should show it."""
    options: dict[str, str] = {}
    raw_options = record.get("options")
    used.add("options")
    embedded = split_embedded_choices(question) if _CHOICES_MARK in question else None
    if raw_options is None:
        if embedded is not None:
            question, options = embedded
        elif "final_decision" in record:
            options = dict(DECISION_OPTIONS)
        else:
            errors.append("missing options")
    elif isinstance(raw_options, dict):
        options = raw_options
        if embedded is not None and list(embedded[1]) == list(options):
            # The options again inside the question would repeat them in the prompt.
            # The explicit options win (MedXpertQA's Text-2230 and Text-2270 differ).
            question = embedded[0]
    elif isinstance(raw_options, list):
        if len(raw_options) > 26:
            errors.append(f"{len(raw_options)} options, at most 26 can be lettered")
        options = {chr(ord("A") + i): v for i, v in enumerate(raw_options[:26])}
    else:
        errors.append("options must be an object {letter: text} or a list")
    return question, options


def _check_options(options: dict[str, Any], allow: frozenset[str], errors: list[str]) -> None:
    """At least two options, each keyed by a capital letter and holding text (empty only when ALLOW says so)."""
    if not options:
        return
    if len(options) < 2:
        errors.append(f"only {len(options)} option, at least 2 are needed")
    for letter, text in options.items():
        if letter not in _LETTERS:
            errors.append(f"option key {letter!r} is not a capital letter A-Z")
        elif not isinstance(text, str):
            errors.append(f"option {letter} is not text")
        elif not text.strip() and "empty_option" not in allow:
            errors.append(f"option {letter} is empty")


def _context_of(record: dict, used: set[str], errors: list[str]) -> str | None:
    """The context passage: the first context field present, a text or a list of texts joined by lines."""
    for ckey in _CONTEXT_KEYS:
        if ckey in record:
            used.add(ckey)
            value = record[ckey]
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return "\n".join(value)
            if isinstance(value, str) or value is None:
                return value
            errors.append(f"{ckey} must be text or a list of texts")
            return None
    return None


def _id_of(record: dict, used: set[str], errors: list[str]) -> str:
    """The item id: the first id field with a value ("" when none has one)."""
    for ikey in _ID_KEYS:
        value = record.get(ikey)
        if value is not None and value != "":
            if isinstance(value, (dict, list)):
                errors.append(f"{ikey} must be a string or number")
            used.add(ikey)
            return str(value)
    return ""


def _gold(record: dict, options: dict[str, Any], used: set[str]) -> tuple[str, str | None]:
    """The gold letter and the field it came from, or an error message."""
    letters = ", ".join(options) if options else "none"
    if "answer_idx" in record:
        used.add("answer_idx")
        gold = record["answer_idx"]
    elif "label" in record:
        used.add("label")
        gold = record["label"]
        if isinstance(gold, list):
            if len(gold) != 1:
                return "", f"label must hold exactly one letter, got {len(gold)}"
            gold = gold[0]
    elif "final_decision" in record:
        used.add("final_decision")
        decision = record["final_decision"]
        if decision not in _DECISION_LETTER or options != DECISION_OPTIONS:
            return "", f"final_decision {decision!r} is not yes, no or maybe"
        gold = _DECISION_LETTER[decision]
    elif "answer" in record:
        answer = record["answer"]
        if isinstance(answer, str) and answer.strip() in options:
            used.add("answer")
            gold = answer.strip()
        else:
            # A free-text answer: the gold is the option with that exact text.
            matches = [k for k, v in options.items() if isinstance(v, str) and isinstance(answer, str)
                       and v.strip() == answer.strip()]
            if len(matches) != 1:
                return "", f"answer {answer!r} is not among the options ({letters})"
            gold = matches[0]
    else:
        return "", "missing answer (answer_idx, label, final_decision or answer)"
    if not isinstance(gold, str):
        return "", f"answer key {gold!r} is not a letter"
    gold = gold.strip()
    if options and gold not in options:
        return "", f"answer {gold!r} is not among the options ({letters})"
    return gold, None

