"""Jinja2 pages and the static assets (``evalkit/results/pages/assets``) evalkit's web applications serve.

Every application's templates extend ``base.html`` from this package; autoescaping is on for
every template, so questions, answers and generations are shown as text, whatever they hold.
"""

from __future__ import annotations

from typing import Any

import jinja2
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

from evalkit.results.pages.page_assets import ASSETS

STATIC_PATH = "/static"
ASSETS_PACKAGE = "evalkit.results.pages"  # the package whose ASSETS folder STATIC_PATH serves


def environment(package: str) -> jinja2.Environment:
    """Templates of PACKAGE (its ``templates/`` folder) over the shared ones of evalkit.web."""
    loaders = [jinja2.PackageLoader(package, "templates")] if package != __package__ else []
    loaders.append(jinja2.PackageLoader(__package__, "templates"))
    env = jinja2.Environment(loader=jinja2.ChoiceLoader(loaders), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.globals["static"] = STATIC_PATH
    return env


def render(env: jinja2.Environment, template: str, /, status_code: int = 200, **context: Any) -> HTMLResponse:
    """TEMPLATE rendered with CONTEXT as an HTML response (any context name is free, ``name`` too)."""
    return HTMLResponse(env.get_template(template).render(**context), status_code=status_code)


def static_files() -> StaticFiles:
    """Every stylesheet and script of evalkit (the folder the static pages inline theirs from,
    ``evalkit.results.pages.page_assets``), mounted at STATIC_PATH by each application."""
    return StaticFiles(packages=[(ASSETS_PACKAGE, ASSETS)])
