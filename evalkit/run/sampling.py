"""Sampling strategies: one sample, and Med-PaLM 2's majority vote and ensemble refinement.

A strategy is a list of ``Stage``s: each stage asks for SIZE generations of a
prompt built from the item and the outputs of the stages before it. The runner
runs any list the same way; the scorer decides what the generations mean (the
choice scorer takes the majority vote over the last stage). Pure functions; the
runner does the requests.

* single (the default): one generation per item.
* self-consistency (``--samples K``): K generations per item, the answer is the
  majority vote over the letters extracted from them.
* ensemble refinement: K chain-of-thought generations, then R refinement
  generations whose prompt holds the question plus those K reasonings; the
  answer is the majority vote over the R refinements.

Votes (``evalkit.scoring.choice.majority_vote``): unparsed generations (no letter)
cast no vote; a tie goes to the tied letter whose first vote came earliest in
generation order, which is deterministic and, unlike "first in the alphabet",
not biased toward option A.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

from evalkit.config import RunConfig, field_default
from evalkit.core.plugins import load_attr
from evalkit.data.prompts import PromptTemplate, TemplateError, load_template, render_prompt
from evalkit.core.records import Item

from evalkit.config import ENSEMBLE_REFINEMENT, SELF_CONSISTENCY, SINGLE, STRATEGIES  # noqa: F401,E402 (their home)

# Builds a stage's prompt from the item, the item's own prompt and the earlier stages' output texts.
PromptBuilder = Callable[[Item, str, Sequence[Sequence[str]]], str]


@dataclass(frozen=True)
class Stage:
    """One round of a strategy: SIZE generations of the prompt BUILD makes (None: the item's own prompt)."""

    name: str
    size: int
    build: PromptBuilder | None = None

    def prompt(self, item: Item, base_prompt: str, earlier: Sequence[Sequence[str]]) -> str:
        return base_prompt if self.build is None else self.build(item, base_prompt, earlier)


# What makes a strategy's stages: (samples, refine template or None, refine_samples) -> stages.
StrategyFactory = Callable[[int, "RefineTemplate | None", int], "list[Stage]"]

STRATEGY_REGISTRY: dict[str, StrategyFactory] = {}  # name -> factory, filled by @register_strategy


def register_strategy(name: str) -> Callable[[StrategyFactory], StrategyFactory]:
    """Register the decorated factory as strategy NAME (like ``register_scorer`` for scorers)."""
    def register(factory: StrategyFactory) -> StrategyFactory:
        STRATEGY_REGISTRY[name] = factory
        return factory
    return register


@register_strategy(SINGLE)
def single_stages(samples: int, refine: "RefineTemplate | None", refine_samples: int) -> list[Stage]:
    """One generation per item."""
    return [Stage("sample", 1)]


@register_strategy(SELF_CONSISTENCY)
def self_consistency_stages(samples: int, refine: "RefineTemplate | None", refine_samples: int) -> list[Stage]:
    """SAMPLES generations per item (one when SAMPLES <= 1), voted on by the scorer."""
    return [Stage("sample", max(samples, 1))]


@register_strategy(ENSEMBLE_REFINEMENT)
def ensemble_refinement_stages(samples: int, refine: "RefineTemplate | None", refine_samples: int) -> list[Stage]:
    """SAMPLES generations, then REFINE_SAMPLES refinements whose prompt holds them."""
    if refine is None:
        raise ValueError("ensemble refinement needs a refinement template")
    return [Stage("sample", samples),
            Stage("refine", refine_samples, lambda item, _base, earlier: refine.render(item, earlier[0]))]


def get_strategy(name: str) -> StrategyFactory:
    """The stage factory of strategy NAME: a registered name, or ``module:attr`` naming a factory
    outside evalkit (called as ``factory(samples, refine, refine_samples)``, giving a list of ``Stage``)."""
    if ":" in name:
        obj = load_attr(name, "strategy")
        if not callable(obj):
            raise ValueError(f"strategy {name!r} is not callable: it must make a list of Stage")
        return obj
    try:
        return STRATEGY_REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}: choose one of {', '.join(STRATEGIES)}, "
                         "or give one as module:attr") from None


def strategy_stages(strategy: str, samples: int, *, refine: "RefineTemplate | None" = None,
                    refine_samples: int = field_default(RunConfig, "refine_samples")) -> list[Stage]:
    """The stages of STRATEGY (``get_strategy``): one generation (single), SAMPLES generations
    (self-consistency), or SAMPLES generations then REFINE_SAMPLES refinements of them (ensemble
    refinement)."""
    stages = list(get_strategy(strategy)(samples, refine, refine_samples))
    if not stages or not all(isinstance(s, Stage) and s.size >= 1 for s in stages):
        raise ValueError(f"strategy {strategy!r} must make a non-empty list of Stage, each of size >= 1")
    return stages


def final_answer_text(text: str) -> str:
    """The part of a generation shown to the refinement stage: what follows a closed <think> block."""
    head, sep, tail = text.rpartition("</think>")
    return tail.strip() if sep else text.strip()


def format_reasonings(texts: Sequence[str]) -> str:
    """The K first-stage generations as one numbered block for the refinement prompt."""
    return "\n\n".join(f"Response {i}:\n{final_answer_text(t)}" for i, t in enumerate(texts, start=1))


@dataclass(frozen=True)
class RefineTemplate:
    """A refinement prompt template: the item's fields plus ``{reasonings}``.

    The reasonings are filled by the same one-pass renderer as the item's fields,
    so braces inside model outputs are never read as fields.
    """

    template: PromptTemplate

    @property
    def name(self) -> str:
        return self.template.name

    @property
    def sha256(self) -> str:
        return self.template.sha256

    @property
    def text(self) -> str:
        return self.template.text

    def render(self, item: Item, reasonings: Sequence[str]) -> str:
        return render_prompt(self.template, item, reasonings=format_reasonings(reasonings))


def load_refine_template(name_or_path: str) -> RefineTemplate:
    """Load a refinement template (a name under prompts/ or a file path); it must use {reasonings}."""
    template = load_template(name_or_path)
    if "reasonings" not in template.fields:
        where = template.path or name_or_path
        raise TemplateError(f"{where}: a refinement template needs a {{reasonings}} field")
    return RefineTemplate(template)
