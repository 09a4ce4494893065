"""``evalkit view``: the web application over one results folder (read only).

Pages are made by the same renderers as the files evalkit writes: a run's report is
``render_report(..., "html")``, the leaderboard ``render_leaderboard``, a comparison
``render_compare_html``; the view adds a home page, a run page that follows a live run and
browses its items, and a sweep page whose jobs and trend grow as checkpoints finish. The
handlers are plain functions (Starlette runs them in its thread pool); they never write into a
run directory (the run index's cache file aside, as ``evalkit leaderboard`` does).
"""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route

from evalkit.results.compare import build_comparison
from evalkit.results.pages.compare import render_compare_html
from evalkit.config import ViewSettings
from evalkit.results.run_index import staleness_key
from evalkit.results.report_document import leaderboard_document, render_leaderboard, render_report, report_document
from evalkit.core.store import SAMPLES
from evalkit.sweep.state import SweepState, log_tail
from evalkit.sweep.jobs import current_views
from evalkit.sweep.report import sweep_trend, trend_points
from evalkit.results.pages.trend import sweep_runs, trend_plot_svg
from evalkit.web.view.catalog import Catalog
from evalkit.web.view.items import VERDICTS, browse
from evalkit.web.view.live import LiveRuns
from evalkit.web import pages
from evalkit.web.security import FRAMED_DOCUMENT_HEADERS, SecurityHeaders, TokenGate, hash_token

ENV = pages.environment(__package__)


class View:
    """The handlers of one view, over one results folder."""

    def __init__(self, results_dir: str | Path, settings: ViewSettings) -> None:
        self.catalog = Catalog(results_dir)
        self.settings = settings
        self.live = LiveRuns()
        self.trends: TrendCache = {}  # each sweep's trend plot, made again when one of its runs changes
        self.lock = threading.Lock()  # the caches are shared by the pool's threads

    def _run_dir(self, request: Request) -> Path:
        run_dir = self.catalog.run_dir(request.path_params["key"])
        if run_dir is None:
            raise HTTPException(404, "no such run in this results folder")
        return run_dir

    def home(self, request: Request) -> Response:
        runs = [r.to_dict() for r in self.catalog.runs()]
        return pages.render(ENV, "home.html", root=str(self.catalog.root), runs=runs,
                            sweeps=sorted(self.catalog.sweep_dirs()), studies=self.catalog.studies(self.settings.studies_dir),
                            studies_dir=self.settings.studies_dir)

    def runs_json(self, request: Request) -> Response:
        return JSONResponse([r.to_dict() for r in self.catalog.runs()])

    def leaderboard(self, request: Request) -> Response:
        # A child process builds it: over hundreds of runs the leaderboard holds millions of score
        # dicts, and the memory a Python process took is not given back; the child's goes when it exits.
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            page = pool.submit(leaderboard_page, str(self.catalog.root)).result()
        return HTMLResponse(page, headers=FRAMED_DOCUMENT_HEADERS)

    def run_page(self, request: Request) -> Response:
        run_dir = self._run_dir(request)
        key = run_dir.relative_to(self.catalog.root).as_posix()
        return pages.render(ENV, "run.html", key=key, verdicts=VERDICTS, poll_ms=int(self.settings.refresh_s * 1000),
                            per_page=self.settings.items_per_page)

    def report(self, request: Request) -> Response:
        doc = report_document([self._run_dir(request)])
        return HTMLResponse(render_report(doc, "html"), headers=FRAMED_DOCUMENT_HEADERS)

    def progress(self, request: Request) -> Response:
        run_dir = self._run_dir(request)
        with self.lock:
            return JSONResponse(self.live.get(run_dir).figures())

    def items(self, request: Request) -> Response:
        run_dir = self._run_dir(request)
        q = request.query_params
        try:
            offset = int(q.get("offset", "0"))
            with self.lock:
                live = self.live.get(run_dir)
                live.refresh()
                page = browse(live.samples, query=q.get("q", ""), which=q.get("verdict", "all"), offset=offset,
                              limit=self.settings.items_per_page)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        return JSONResponse(page)

    def compare(self, request: Request) -> Response:
        keys = request.query_params.getlist("run")
        dirs = [self.catalog.run_dir(k) for k in keys]
        if len(dirs) < 2 or any(d is None for d in dirs):
            raise HTTPException(404, "choose two or more runs of this results folder (?run=KEY&run=KEY)")
        page = render_compare_html(build_comparison(dirs), title="evalkit compare")
        return HTMLResponse(page, headers=FRAMED_DOCUMENT_HEADERS)

    def sweep_page(self, request: Request) -> Response:
        name = request.path_params["name"]
        if self.catalog.sweep_dir(name) is None:
            raise HTTPException(404, "no such sweep in this results folder")
        return pages.render(ENV, "sweep.html", name=name, poll_ms=int(self.settings.refresh_s * 1000) * 2)

    def sweep_json(self, request: Request) -> Response:
        folder = self.catalog.sweep_dir(request.path_params["name"])
        if folder is None:
            raise HTTPException(404, "no such sweep in this results folder")
        with self.lock:
            return JSONResponse(sweep_snapshot(self.catalog, folder, self.trends))


def leaderboard_page(root: str) -> str:
    """The page ``evalkit leaderboard ROOT --format html`` writes."""
    return render_leaderboard(leaderboard_document(root), "html")


def _run_key(catalog: Catalog, run: Any) -> str | None:
    path = Path(getattr(run, "path", run)).resolve()
    return path.relative_to(catalog.root).as_posix() if path.is_relative_to(catalog.root) else None


TrendCache = dict[Path, tuple[tuple[Any, ...], dict[str, Any]]]


def sweep_trend_plot(catalog: Catalog, state: SweepState) -> dict[str, Any]:
    """The sweep's trend plot (SVG), the catalog key of each run it plots, and its notes."""
    svg, run_keys = "", []
    points, notes = trend_points(sweep_trend(state))
    if points:
        runs, index = sweep_runs(points)
        svg = trend_plot_svg(points, index, title=f"sweep {state.settings.name}")
        run_keys = [_run_key(catalog, r) for r in runs]
    return {"trend_svg": svg, "run_keys": run_keys, "notes": notes}


def sweep_snapshot(catalog: Catalog, folder: Path, trends: TrendCache | None = None) -> dict[str, Any]:
    """A sweep's jobs (state, detail, last log lines, its run's key) and its trend plot so far.

    The trend reads every checkpoint's run; with TRENDS it is made again only when one of those runs
    changed (their staleness keys), not on every look of a page that asks every few seconds."""
    state = SweepState.load(folder)
    jobs = []
    for view in current_views(state):
        row = view.to_dict()
        run_dir = Path(row["run_dir"])
        row["run"] = _run_key(catalog, run_dir) if (run_dir / SAMPLES).exists() else None
        row["log_tail"] = log_tail(row.get("log"))
        jobs.append({k: row.get(k) for k in ("key", "step", "state", "detail", "run", "run_status", "log_tail")})
    stamp = tuple((job.checkpoint.key, staleness_key(job.run_dir)) for job in state.jobs())
    cached = trends.get(folder) if trends is not None else None
    if cached is None or cached[0] != stamp:
        cached = (stamp, sweep_trend_plot(catalog, state))
        if trends is not None:
            trends[folder] = cached
    return {"name": state.settings.name, "jobs": jobs, **cached[1]}


def not_found(request: Request, exc: Exception) -> Response:
    detail = getattr(exc, "detail", "not found")
    code = getattr(exc, "status_code", 404)
    return pages.render(ENV, "error.html", status_code=code, code=code, detail=detail)


def build_app(results_dir: str | Path, settings: ViewSettings, *, token: str | None = None) -> Any:
    """The view's ASGI application over RESULTS_DIR; with TOKEN, every request must carry it."""
    view = View(results_dir, settings)
    routes = [
        Route("/", view.home), Route("/api/runs", view.runs_json), Route("/leaderboard", view.leaderboard),
        Route("/compare", view.compare),
        Route("/run/{key:path}/report", view.report), Route("/api/run/{key:path}/progress", view.progress),
        Route("/api/run/{key:path}/items", view.items), Route("/run/{key:path}", view.run_page),
        Route("/sweep/{name}", view.sweep_page), Route("/api/sweep/{name}", view.sweep_json),
        Mount(pages.STATIC_PATH, app=pages.static_files(), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: not_found, 404: not_found})
    guarded = SecurityHeaders(app)
    return TokenGate(guarded, token_hash=hash_token(token)) if token else guarded
