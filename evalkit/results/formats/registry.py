"""The renderer registry: the formats there are, and the renderer that lays out each kind of document
(``report``, ``leaderboard``, ``gate``, ``compare``; ``trend`` and ``study`` register from their own
layers) in each of them.

A format is one module of this package (``text``, ``markdown``, ``csv``, ``json``, ``html``, ``junit``)
that declares its ``Format`` and registers a renderer per kind it lays out; a kind above this layer
registers its own renderers into the same formats (a sweep's trend in ``evalkit.sweep.report``). The
choices a command offers are ``format_names(kind)``: there is no other list of formats.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, TypeVar

Renderer = TypeVar("Renderer", bound=Callable[..., Any])


@dataclass(frozen=True)
class Format:
    """One output format. ``aliases`` are the other names a kind may offer it under (the terminal's
    format is ``rich`` for a report and ``table`` for a sweep's trend); a ``terminal`` format's renderers
    return rich renderables to print, the others text; a ``page`` goes to a file (a default one) rather
    than to the terminal."""

    name: str
    description: str
    aliases: tuple[str, ...] = ()
    terminal: bool = False
    page: bool = False


_FORMATS: dict[str, Format] = {}  # every name and alias -> its format
_RENDERERS: dict[str, dict[str, Callable[..., Any]]] = {}  # kind -> name offered -> renderer


def register_format(fmt: Format) -> Format:
    """Declare FMT (a format module does, once); ValueError when one of its names is another format's."""
    for name in (fmt.name, *fmt.aliases):
        if _FORMATS.get(name, fmt) != fmt:
            raise ValueError(f"format name {name!r} is already {_FORMATS[name].name!r}'s")
        _FORMATS[name] = fmt
    return fmt


def register(kind: str, name: str) -> Callable[[Renderer], Renderer]:
    """Decorator: the renderer of KIND's documents in format NAME (a format's name or alias, which is what
    the kind's commands offer). The renderer takes the document and keyword options it may ignore."""
    format_of(name)

    def add(renderer: Renderer) -> Renderer:
        _RENDERERS.setdefault(kind, {})[name] = renderer
        return renderer
    return add


def format_of(name: str) -> Format:
    """The format named (or aliased) NAME; ValueError for an unknown one."""
    try:
        return _FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown format {name!r} (choose from {', '.join(sorted(_FORMATS))})") from None


def format_names(kind: str, *, terminal: bool = True) -> tuple[str, ...]:
    """The formats KIND's documents are rendered in, in the order registered (without TERMINAL: only
    those that render text)."""
    return tuple(n for n in _RENDERERS.get(kind, {}) if terminal or not _FORMATS[n].terminal)


def render(kind: str, doc: Any, name: str, /, *, terminal: bool = True, **options: Any) -> Any:
    """DOC (a KIND document) in format NAME: text, or for a terminal format a list of rich renderables.
    OPTIONS go to the renderer. ValueError for a format KIND has no renderer in (or, without TERMINAL,
    a terminal format)."""
    renderer = _RENDERERS.get(kind, {}).get(name)
    if renderer is None or (not terminal and _FORMATS[name].terminal):
        raise ValueError(f"unknown format {name!r} for a {kind} (choose from "
                         f"{', '.join(format_names(kind, terminal=terminal))})")
    return renderer(doc, **options)
