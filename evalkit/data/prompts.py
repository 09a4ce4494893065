"""Prompt templates: plain text files with named fields, rendered without evaluating data.

A template is a text file (``prompts/<name>.txt``, or any path) in which
``{question}``, ``{options}``, ``{context}`` and ``{exemplars}`` are replaced
by the item's text; ``{{`` and ``}}`` stand for literal braces and any other
brace is literal too. Substitution is a single pass over the template, so
text coming from the data is inserted verbatim and never re-read as a field
(no ``str.format``, no attribute access). An unknown field is an error naming
it, raised when the template is loaded, before any request is sent.

One trailing newline of the file is dropped: editors add one, and the prompt
must end where the text ends.

Items with a context (an abstract a question is about): when a template has no
``{context}`` field, ``render_prompt`` uses its context variant instead,
``<name>_context.txt`` in the same folder (loaded with the template as
``context_variant``), so ``--prompt strict`` still shows the passage. A
template with no such sibling is rendered as it is (without the context).
A benchmark may register another spelling of the suffix (``register_context_suffix``),
so that its users' own templates named the older way keep their variant.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from evalkit.config import RunConfig, field_default
from evalkit.core.plugins import load_plugins
from evalkit.config import EXEMPLARS_FILE  # noqa: F401 (its home is evalkit.config)
from evalkit.core.records import Item
from evalkit.data.registry import bundled_dir
from evalkit.core.errors import InputError

FIELDS = ("question", "options", "context", "exemplars", "reasonings")
CONTEXT_SUFFIX = "_context"
# Spellings of a context variant's suffix, CONTEXT_SUFFIX first; a benchmark may register an older one.
CONTEXT_SUFFIXES: list[str] = [CONTEXT_SUFFIX]
_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


class TemplateError(InputError):
    """A template that cannot be used, or an item it cannot be rendered for."""


def prompts_dir() -> Path:
    """The folder of built-in templates."""
    return bundled_dir("prompts")


def list_templates() -> list[str]:
    """Names of the built-in templates."""
    return sorted(p.stem for p in prompts_dir().glob("*.txt"))


def format_options(options: dict[str, str]) -> str:
    """The option block: one ``A. text`` line per option."""
    return "\n".join(f"{letter}. {text}" for letter, text in options.items())


def _parse(text: str, where: str) -> tuple[tuple[str, bool], ...]:
    """Split TEXT into (literal, False) and (field, True) segments."""
    segments: list[tuple[str, bool]] = []
    literal: list[str] = []
    pos = 0
    for m in _TOKEN.finditer(text):
        literal.append(text[pos:m.start()])
        pos = m.end()
        name = m.group(1)
        if name is None:
            literal.append(m.group(0)[0])  # {{ -> {, }} -> }
            continue
        if name not in FIELDS:
            raise TemplateError(f"{where}: unknown field {{{name}}} (known fields: "
                                + ", ".join("{" + f + "}" for f in FIELDS) + ")")
        segments.append(("".join(literal), False))
        literal = []
        segments.append((name, True))
    literal.append(text[pos:])
    segments.append(("".join(literal), False))
    return tuple((s, is_field) for s, is_field in segments if is_field or s)


@dataclass(frozen=True)
class PromptTemplate:
    """A loaded template: its name, text, the text's sha256 and where it came from."""

    name: str
    text: str
    sha256: str
    path: Path | None
    segments: tuple[tuple[str, bool], ...] = ()
    context_variant: "PromptTemplate | None" = None

    @property
    def fields(self) -> frozenset[str]:
        """The fields the template uses."""
        return frozenset(s for s, is_field in self.segments if is_field)

    @classmethod
    def from_text(cls, text: str, *, name: str = "inline", path: Path | None = None,
                  context_variant: "PromptTemplate | None" = None) -> "PromptTemplate":
        """A template from TEXT; TemplateError on an unknown field or no {question}."""
        where = str(path) if path else f"template {name!r}"
        segments = _parse(text, where)
        if not any(is_field and s == "question" for s, is_field in segments):
            raise TemplateError(f"{where}: the template has no {{question}} field")
        sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
        return cls(name, text, sha, path, segments, context_variant)

    def for_item(self, item: Item) -> "PromptTemplate":
        """The template to use for ITEM: the context variant when the item has a
        context this template would leave out."""
        if item.context and "context" not in self.fields and self.context_variant is not None:
            return self.context_variant
        return self

    def render(self, item: Item, *, exemplars: Sequence[Item] | None = None,
               reasonings: str | None = None) -> str:
        """The prompt for ITEM (see ``render_prompt``)."""
        template = self.for_item(item)
        out = []
        for text, is_field in template.segments:
            if not is_field:
                out.append(text)
            elif text == "question":
                out.append(item.question)
            elif text == "options":
                out.append(format_options(item.options))
            elif text == "context":
                if item.context is None:
                    raise TemplateError(f"template {template.name!r} uses {{context}} "
                                        f"but item {item.id!r} has no context")
                out.append(item.context)
            elif text == "reasonings":
                if reasonings is None:
                    raise TemplateError(f"template {template.name!r} uses {{reasonings}} "
                                        "but no reasonings were given (it is an ensemble-refinement template)")
                out.append(reasonings)
            else:  # exemplars
                if not exemplars:
                    raise TemplateError(f"template {template.name!r} uses {{exemplars}} "
                                        "but no exemplars were given")
                out.append(format_exemplars(exemplars))
        return "".join(out)


def register_context_suffix(suffix: str) -> str:
    """Accept SUFFIX as another spelling of a context variant's (``<name>SUFFIX.txt``) after CONTEXT_SUFFIX."""
    if suffix not in CONTEXT_SUFFIXES:
        CONTEXT_SUFFIXES.append(suffix)
    return suffix


def context_suffixes() -> list[str]:
    """The spellings of a context variant's suffix, CONTEXT_SUFFIX first (the plugins loaded: they register)."""
    load_plugins()
    return list(CONTEXT_SUFFIXES)


def _read_template(path: Path, name: str) -> PromptTemplate:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TemplateError(f"{path}: not valid UTF-8 ({exc.reason})") from None
    if text.endswith("\n"):
        text = text[:-1]
    variant = None
    suffixes = context_suffixes()
    if not path.stem.endswith(tuple(suffixes)):
        siblings = (path.with_name(path.stem + suffix + path.suffix) for suffix in suffixes)
        sibling = next((s for s in siblings if s.is_file()), None)
        if sibling is not None:
            variant = _read_template(sibling, sibling.stem)
    return PromptTemplate.from_text(text, name=name, path=path, context_variant=variant)


def load_template(name_or_path: str | Path) -> PromptTemplate:
    """A built-in template by name (``free``, ``strict``, ``cot``, ``fewshot``, or a
    ``*_context`` variant, also by a registered older suffix) or a user's template file by path.

    A name is looked up in the built-in ``prompts/`` folder; anything naming
    an existing file, or containing a path separator or ``.txt``, is a path.
    """
    raw = str(name_or_path)
    path = Path(raw)
    if path.is_file() or "/" in raw or "\\" in raw or raw.endswith(".txt"):
        if not path.is_file():
            raise TemplateError(f"no template file {path}")
        return _read_template(path, path.stem)
    builtin = prompts_dir() / f"{raw}.txt"
    older = [s for s in context_suffixes()[1:] if raw.endswith(s)] if not builtin.is_file() else []
    if older:  # a context variant named with an older suffix: the built-in one is <name>_context
        builtin = prompts_dir() / f"{raw[:-len(older[0])]}{CONTEXT_SUFFIX}.txt"
    if not builtin.is_file():
        raise TemplateError(f"unknown prompt {raw!r}: built-in prompts are "
                            + ", ".join(list_templates()) + "; or give a path to a template file")
    return _read_template(builtin, builtin.stem)


def render_prompt(template: PromptTemplate, item: Item, *, exemplars: Sequence[Item] | None = None,
                  reasonings: str | None = None) -> str:
    """The prompt text for ITEM under TEMPLATE.

    Fields: ``{question}``, ``{options}`` (``A. text`` lines), ``{context}``
    (an error if the item has none), ``{exemplars}`` (worked examples,
    required when the template uses it) and ``{reasonings}`` (the first-stage
    generations of ensemble refinement, required when the template uses it). An item with a context uses the
    template's ``_context`` variant when the template has no ``{context}``.
    """
    return template.render(item, exemplars=exemplars, reasonings=reasonings)


# --------------------------------------------------------------------------- item -> messages
# The one place a request's messages are built. What a sample records as its prompt is
# ``item_prompt`` (text, or the item's own conversation); what a request carries is
# ``as_messages`` of that prompt (the run's system prompt put first). A refinement stage's
# prompt is ``render_prompt`` with the earlier stages' reasonings, carried the same way.

Message = dict[str, str]


def item_prompt(item: Item, template: PromptTemplate, *, exemplars: Sequence[Item] | None = None
                ) -> str | list[Message]:
    """What ITEM asks, as its sample records it: its own conversation as it is (multi-turn items),
    else TEMPLATE rendered for it (with EXEMPLARS for a few-shot template)."""
    if item.messages:
        return list(item.messages)
    return render_prompt(template, item, exemplars=exemplars)


def as_messages(prompt: str | Sequence[Message], system_prompt: str | None = None) -> list[Message]:
    """The chat messages that carry PROMPT: one user message for a text, a conversation as it is.

    SYSTEM_PROMPT, when set, becomes the first message, replacing a conversation's own leading
    system message (a run's --system-prompt wins over the data's)."""
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    if system_prompt:
        if messages and messages[0].get("role") == "system":
            messages = messages[1:]
        messages.insert(0, {"role": "system", "content": system_prompt})
    return messages


def build_messages(item: Item, template: PromptTemplate, *, exemplars: Sequence[Item] | None = None,
                   reasonings: str | None = None, system_prompt: str | None = None) -> list[Message]:
    """ITEM's request messages under TEMPLATE: its prompt (``item_prompt``; with REASONINGS, the
    refinement stage's ``render_prompt``) carried by ``as_messages`` with SYSTEM_PROMPT."""
    prompt = (render_prompt(template, item, reasonings=reasonings) if reasonings is not None
              else item_prompt(item, template, exemplars=exemplars))
    return as_messages(prompt, system_prompt)


# --------------------------------------------------------------------------- few-shot


def format_exemplar(item: Item) -> str:
    """One worked example: question, options, and an answer ending 'The answer is X.'."""
    explanation = str(item.meta.get("explanation", "")).strip()
    answer = f"{explanation} The answer is {item.answer_idx}." if explanation else \
        f"The answer is {item.answer_idx}."
    return f"Question: {item.question}\n{format_options(item.options)}\nAnswer: {answer}"


def format_exemplars(exemplars: Iterable[Item]) -> str:
    """Worked examples separated by a blank line."""
    return "\n\n".join(format_exemplar(item) for item in exemplars)


def exemplars_path() -> Path:
    """The bundled few-shot exemplar file."""
    return bundled_dir("eval_data") / EXEMPLARS_FILE


def load_exemplars(path: str | Path | None = None) -> list[Item]:
    """The exemplar pool: a benchmark-shaped file whose records carry an ``explanation``."""
    from evalkit.data.datasets import load_dataset  # late: datasets is the heavier import

    return load_dataset(path or exemplars_path(), dataset="fewshot_exemplars").items


def _question_key(text: str) -> str:
    return " ".join(text.split()).casefold()


def draw_exemplars(
    pool: Sequence[Item], k: int, *, seed: int = field_default(RunConfig, "fewshot_seed"), exclude: Iterable[Item] = ()
) -> list[Item]:
    """K exemplars drawn from POOL with a seeded generator: same seed, same draw.

    Any exemplar whose question also appears in EXCLUDE (the evaluated set)
    is left out first, so a worked answer never gives away an evaluated item.
    """
    if k < 0:
        raise ValueError("k must be at least 0")
    excluded = {_question_key(item.question) for item in exclude}
    candidates = [item for item in pool if _question_key(item.question) not in excluded]
    if k > len(candidates):
        raise ValueError(f"asked for {k} exemplars but only {len(candidates)} are available")
    return random.Random(seed).sample(candidates, k)


def template_summary(template: PromptTemplate) -> dict[str, object]:
    """What a run manifest records about its prompt: name, path, text and sha256,
    and the same for the context variant when there is one."""
    summary: dict[str, object] = {
        "name": template.name,
        "path": str(template.path) if template.path else None,
        "text": template.text,
        "sha256": template.sha256,
    }
    if template.context_variant is not None:
        summary["context_variant"] = template_summary(template.context_variant)
    return summary


__all__ = [
    "FIELDS", "PromptTemplate", "TemplateError", "draw_exemplars", "format_exemplar",
    "format_exemplars", "format_options", "list_templates", "load_exemplars", "load_template",
    "prompts_dir", "render_prompt", "template_summary",
]
