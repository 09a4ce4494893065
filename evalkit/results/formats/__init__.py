"""Output formats as a unit: the renderer registry (``registry``) and one module per format, each
declaring its ``Format`` and the renderers it has (report, leaderboard, gate, compare). Adding a format
is adding a module here and its name to this list; a kind above this layer (a sweep's trend, a rating
study's report) registers its renderers from its own module."""

# The built-in formats, in the order a command offers them (the order they register in).
from evalkit.results.formats import text  # noqa: F401, I001
from evalkit.results.formats import markdown  # noqa: F401
from evalkit.results.formats import csv  # noqa: F401
from evalkit.results.formats import json  # noqa: F401
from evalkit.results.formats import html  # noqa: F401
from evalkit.results.formats import junit  # noqa: F401
from evalkit.results.formats.registry import Format, format_names, format_of, register, register_format, render

__all__ = ["Format", "format_names", "format_of", "register", "register_format", "render"]
