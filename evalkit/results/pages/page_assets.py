"""The pages' CSS and JavaScript: files in ``assets/`` (this package's data), read once and inlined
into each page, which stays one self-contained file. The web applications serve the same folder at
``/static`` (``evalkit.web.pages.static_files``): every stylesheet and script of evalkit is there."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

ASSETS = "assets"  # the folder, beside this module


@lru_cache(maxsize=None)
def asset(name: str) -> str:
    """The text of the asset file NAME (e.g. ``page.css``), read once per process."""
    return resources.files(__package__).joinpath(ASSETS, name).read_text(encoding="utf-8")


def style(name: str) -> str:
    """The stylesheet NAME as an inline ``<style>`` element."""
    return f"<style>\n{asset(name)}</style>"


def script(*names: str) -> str:
    """The scripts NAMES, in that order, as one inline ``<script>`` element."""
    return "<script>\n" + "".join(asset(n) for n in names) + "</script>"
