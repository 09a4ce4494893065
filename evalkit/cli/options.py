"""Options shared by several commands, and options whose default is a config field.

Every option default of the command line is a field (or constant) of evalkit.config, read
through ``config_option`` (``ConfigOption`` records where its default comes from, so
tests/test_architecture.py can check that no command restates one); ``--help`` shows it.
An option group several commands take (``--overlap``/``--overlap-rule``, ``--ci``,
``--seed``, ``--resamples``, ``--format``, the gate's ``--max-drop``/``--alpha``/``--score``)
is declared once here.
"""

from __future__ import annotations

import typing
from dataclasses import MISSING, Field, fields
from pathlib import Path
from typing import Any, Callable

import click

from evalkit import config
from evalkit.config import (CI_METHODS, OVERLAP_RULES, OVERLAP_STALE, GateSettings, IntervalSettings,
                            OverlapSettings, ReportSettings, field_default)

def config_value(source: Any) -> Any:
    """The default SOURCE names: field NAME of a config type, or a constant of evalkit.config."""
    if isinstance(source, str):
        return getattr(config, source)
    cls, name = source
    return field_default(cls, name)


class ConfigOption(click.Option):
    """A click option whose default (shown by --help) is a config field; ``config_source`` says which."""

    def __init__(self, *args: Any, config: Any, **kwargs: Any) -> None:
        self.config_source = config
        kwargs["default"] = config_value(config)
        kwargs.setdefault("show_default", True)
        super().__init__(*args, **kwargs)


class ConfigArgument(click.Argument):
    """A click argument whose default is a config field; ``config_source`` says which."""

    def __init__(self, *args: Any, config: Any, **kwargs: Any) -> None:
        self.config_source = config
        kwargs["default"] = config_value(config)
        super().__init__(*args, **kwargs)


def config_option(*decls: str, source: Any, **kwargs: Any) -> Callable:
    """``click.option(*DECLS, **KWARGS)`` with SOURCE's default (see ``config_value``), shown by --help."""
    return click.option(*decls, cls=ConfigOption, config=source, **kwargs)


def config_argument(*decls: str, source: Any, **kwargs: Any) -> Callable:
    """``click.argument(*DECLS, **KWARGS)`` with SOURCE's default."""
    return click.argument(*decls, cls=ConfigArgument, config=source, **kwargs)


def stack(*decorators: Callable) -> Callable:
    """One decorator applying DECORATORS in the order written (the first is the first option in --help)."""
    def apply(command: Callable) -> Callable:
        for decorate in reversed(decorators):
            command = decorate(command)
        return command
    return apply


# ---------------------------------------------------------------- options built from a config type's fields

def _value_type(hint: Any) -> Any:
    """The click type of a field annotated HINT (``int | None`` -> int, ``list[str]`` -> str)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is list:
        return args[0] if args else str
    return args[0] if args else hint


def field_param(cls: type, f: Field, hint: Any, extra_help: str = "") -> Callable:
    """The click option (or, for ``argument=True``, argument) of field F of config type CLS, from its
    metadata (``config._setting``): ``help`` (with EXTRA_HELP), ``flag``, ``envvar``, ``metavar``,
    ``hidden``, ``choices``, ``folder``; a list is repeatable, a bool a flag, a default not None is
    the field's (``ConfigOption``, shown by --help)."""
    meta = f.metadata
    if meta.get("argument"):
        return click.argument(f.name, nargs=-1, type=click.UNPROCESSED)
    kind = _value_type(hint)
    kwargs: dict[str, Any] = dict(help=(meta.get("help", "") + extra_help) or None, envvar=meta.get("envvar"))
    kwargs.update({k: meta[k] for k in ("metavar", "hidden") if k in meta})
    if kind is bool:
        kwargs.update(is_flag=True, show_default=False)
    elif typing.get_origin(hint) is list:
        kwargs.update(multiple=True, type=kind)
    else:  # a field's own default replaces None below
        kind = click.Choice(meta["choices"]) if "choices" in meta else kind
        kwargs.update(type=click.Path(file_okay=False) if meta.get("folder") else kind, default=None)
    if f.default is not MISSING and f.default is not None:
        kwargs.update(cls=ConfigOption, config=(cls, f.name))
    flag = meta.get("flag") or "--" + f.name.replace("_", "-")
    return click.option(flag, f.name, **kwargs)


def field_options(cls: type, extra_help: dict[str, str] | None = None) -> Callable:
    """Decorator: one click parameter per field of config type CLS, in field order (``field_param``;
    EXTRA_HELP: text added to a field's help, by name)."""
    hints = typing.get_type_hints(cls)

    def apply(command: Callable) -> Callable:
        for f in reversed(fields(cls)):
            command = field_param(cls, f, hints[f.name], (extra_help or {}).get(f.name, ""))(command)
        return command
    return apply


class CheckedValue(click.ParamType):
    """A value checked when parsed by CHECK (which returns it, normalised, or raises one of ERRORS), so
    a bad one is a usage error before any work starts."""

    def __init__(self, name: str, check: Callable[[str], str], errors: tuple[type[Exception], ...]) -> None:
        self.name = name
        self.check = check
        self.errors = errors

    def convert(self, value: Any, param: Any, ctx: Any) -> str:
        try:
            return self.check(value)
        except self.errors as exc:
            self.fail(str(exc), param, ctx)


def StrategyName() -> CheckedValue:
    """A strategy: a built-in or registered name, or ``module:attr`` (checked, and loaded, when parsed)."""
    from evalkit import api

    return CheckedValue("NAME|module:attr", api.settings.strategy, (ValueError,))


# ---------------------------------------------------------------- the tables' statistics and format

def ci_option(help: str = "How each accuracy's confidence interval is computed.") -> Callable:
    return config_option("--ci", "ci", type=click.Choice(CI_METHODS), source=(IntervalSettings, "ci"), help=help)


def seed_option(help: str = "Seed of the bootstrap.") -> Callable:
    return config_option("--seed", type=int, source=(IntervalSettings, "seed"), help=help)


def resamples_option(help: str = "Bootstrap resamples.") -> Callable:
    return config_option("--resamples", type=click.IntRange(100), source=(IntervalSettings, "n_resamples"), help=help)


def format_option(kind: str = "report", source: Any = (ReportSettings, "format"),
                  help: str = "rich: tables in the terminal; the others print (or write with -o) text.") -> Callable:
    """--format: the formats KIND's documents are rendered in (the renderer registry's, through the API)."""
    from evalkit import api

    return config_option("--format", "fmt", type=click.Choice(api.settings.formats(kind)), source=source, help=help)


def interval_options(*, ci: bool = True) -> Callable:
    """--ci (unless CI is False), --seed and --resamples: how the intervals are computed."""
    return stack(*([ci_option()] if ci else []), seed_option(), resamples_option())


# ---------------------------------------------------------------- the gate's thresholds

def score_option(help: str = "The named score (e.g. a judge's axis); numeric scores use a paired bootstrap.",
                 source: Any = (GateSettings, "score")) -> Callable:
    return config_option("--score", source=source, help=help)


def max_drop_option(help: str = "Largest tolerated drop in accuracy points.") -> Callable:
    return config_option("--max-drop", type=click.FloatRange(0), source=(GateSettings, "max_drop"), help=help)


def alpha_option(help: str = "Significance level (Holm-corrected over datasets).") -> Callable:
    return config_option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True),
                         source=(GateSettings, "alpha"), help=help)


# ---------------------------------------------------------------- training-data overlap

def overlap_options(help: str) -> Callable:
    """--overlap FILE (an overlap.jsonl of `evalkit overlap`; HELP says what the command does with it),
    --overlap-rule (which of its rules marks an item as overlapping) and --overlap-stale (what to do
    with an item whose text is not the one the file flagged)."""
    return stack(
        click.option("--overlap", "overlap_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help=help),
        config_option("--overlap-rule", type=click.Choice(OVERLAP_RULES), source=(OverlapSettings, "rule"),
                      help="Which rule of the overlap file marks an item as overlapping."),
        config_option("--overlap-stale", type=click.Choice(OVERLAP_STALE), source=(OverlapSettings, "stale"),
                      help="An item whose question or context is not the text the overlap file flagged (the "
                           "benchmark changed since): refuse (stop, naming the items), or ignore (leave it out "
                           "as not covered, with a warning)."))


# ---------------------------------------------------------------- trackers (MLflow, W&B)

def TrackerSpec() -> CheckedValue:
    """``mlflow[:EXPERIMENT]`` or ``wandb[:PROJECT]``, checked when parsed: a known tracker whose extra is
    installed (so an evaluation does not run for an hour and then find nowhere to send its figures)."""
    from evalkit import api

    return CheckedValue("mlflow[:EXPERIMENT]|wandb[:PROJECT]", api.settings.tracker, (api.InputError,))


def tracker_options(flag: str = "--log-to") -> Callable:
    """FLAG (the trackers the figures go to, repeatable), --tracker-run-id and --log-samples."""
    return stack(
        click.option(flag, "trackers", multiple=True, type=TrackerSpec(), metavar="TRACKER[:NAME]",
                     help="Send the figures to MLflow or W&B (repeatable): each dataset's scores with their CIs and "
                          "n, a sweep's at each checkpoint's training step; the identity as parameters, the "
                          "manifest, summary and report as files. The server and credentials are the tracker's own "
                          "environment variables."),
        click.option("--tracker-run-id", "tracker_run_ids", multiple=True, metavar="[TRACKER=]ID",
                     help="Add to this existing tracker run (e.g. the training run) instead of one of evalkit's own."),
        click.option("--log-samples", is_flag=True, help="Also send each run's samples as a table."))
