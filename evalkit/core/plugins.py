"""Loading a unit (scorer, metric, extractor, adapter, strategy, backend) from outside evalkit,
given as ``module:attr`` (``attr`` may be dotted). Knows no unit: each registry names what it loads."""

from __future__ import annotations

import importlib
from typing import Any


def load_attr(ref: str, what: str, error: type[Exception] = ValueError) -> Any:
    """The object REF (``module:attr``) names; ERROR, naming WHAT was being loaded, when it cannot be found."""
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise error(f"{what} {ref!r}: give it as module:attr")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise error(f"cannot import {module_name!r} for {what} {ref!r}: {exc}") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise error(f"{module_name!r} has no attribute {attr!r} ({what} {ref!r})") from None
    return obj


PLUGIN_GROUP = "evalkit.plugins"
OWN_PLUGINS = ("longform", "benchmarks")  # evalkit's own entries in the group (pyproject.toml)
_plugins_loaded = False


def load_plugins() -> None:
    """Import, once, every package registered under the ``evalkit.plugins`` entry-point group:
    evalkit's own benchmarks (``evalkit.benchmarks``) and any installed package that adds units.

    A registry calls this when a name it is asked for is not registered yet, so a lower layer finds
    what a higher one registers without importing it (issue 30: imports point one way). An install
    whose metadata predates the group (an editable install made before it) lacks evalkit's own
    entries: a warning says to reinstall (``evalkit.api`` imports them itself, so the CLI works)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    from importlib.metadata import entry_points

    found = list(entry_points(group=PLUGIN_GROUP))
    for entry in found:
        entry.load()
    missing = [name for name in OWN_PLUGINS if name not in {e.name for e in found}]
    if missing:
        import logging

        logging.getLogger("evalkit").warning(
            "evalkit's install does not declare its %s entry points (group %s): its install metadata is older "
            "than this code; reinstall it (pip install -e .) so the registries find every benchmark",
            ", ".join(missing), PLUGIN_GROUP)
