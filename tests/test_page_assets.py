"""Every page's CSS and JavaScript is a file in evalkit/results/pages/assets: inlined into the static
pages (which stay self-contained), served at /static by the web applications."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from evalkit import api
from evalkit.results.pages.page_assets import asset
from evalkit.web.pages import STATIC_PATH, static_files
from tests.runfactory import verdict_samples, write_run

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "evalkit" / "results" / "pages" / "assets"


def test_the_page_modules_hold_no_css_or_javascript():
    for path in [*(ROOT / "evalkit" / "results" / "pages").glob("*.py"), *(ROOT / "evalkit" / "web").rglob("*.py")]:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"addEventListener|function \(|\{\s*[a-z-]+\s*:\s*[^;{}]+;", text), path


def test_the_assets_are_package_data():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert data["evalkit.results.pages"] == ["assets/*"]
    assert {p.name for p in ASSETS.iterdir()} >= {"page.css", "pager.js", "report.js", "compare.css", "compare.js",
                                                   "trend.css", "trend.js", "base.css", "view.js", "study.css",
                                                   "study.js", "study-report.css"}


def test_pages_inline_their_assets_and_link_none(tmp_path):
    runs = [write_run(tmp_path, n, verdict_samples("medqa", [True, False, True])) for n in ("a", "b")]
    report = api.render(api.report(runs), "html")
    compare = api.render(api.compare(runs), "html")
    for page, names in ((report, ("page.css", "pager.js", "report.js")),
                        (compare, ("page.css", "compare.css", "pager.js", "compare.js"))):
        for name in names:
            assert asset(name) in page, name
        assert not re.search(r"<script[^>]+src=|<link[^>]+stylesheet", page)
    assert report.count(asset("pager.js")) == compare.count(asset("pager.js")) == 1  # one pager, shared


def test_the_web_applications_serve_the_same_files():
    client = TestClient(Starlette(routes=[Mount(STATIC_PATH, static_files())]))
    for name in ("base.css", "view.js", "study.js", "pager.js"):
        response = client.get(f"{STATIC_PATH}/{name}")
        assert response.status_code == 200 and response.text == asset(name), name
