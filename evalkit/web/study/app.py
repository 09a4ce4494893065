"""``evalkit study serve``: the rating pages and the organiser's page (Starlette, Jinja2 templates).

A rater's link is ``/r/TOKEN``; everything they reach is under it and names only positions on their own
list (``/r/TOKEN/item/K``), never an answer, run, model or system. The organiser's link is ``/o/TOKEN``.
Every form carries a CSRF token; every rating is committed to the study file before the reply says saved
(a JSON reply when asked with ``Accept: application/json``, else a redirect to the next item).
"""

from __future__ import annotations

import secrets
import statistics
import time
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route

from evalkit.web.study.db import StudyDB
from evalkit.web.study.render import render_html
from evalkit.web.study.service import export_rows, rubrics_of, system_names
from evalkit.web.study.report import build_report
from evalkit.web.pages import STATIC_PATH, environment, render, static_files
from evalkit.web.security import SecurityHeaders, csrf_matches, csrf_token, hash_token, new_token, same_origin

MAX_FIELD = 5000  # characters kept of a comment or a reason


class StudyApp:
    """The study's pages over one open study file."""

    def __init__(self, db: StudyDB) -> None:
        self.db = db
        self.env = environment("evalkit.web.study")
        # Signs the form tokens. Kept in the study file, so a page opened before a restart still saves.
        self.secret = db.meta("form_secret") or self._new_secret()
        self.rubrics = {r.name: r for r in rubrics_of(db).values()}
        self._raters: dict[str, Any] = {}

    def _new_secret(self) -> str:
        secret = secrets.token_hex(32)
        with self.db.transaction():
            self.db.set_meta("form_secret", secret)
        return secret

    # ---------------------------------------------------------------- helpers
    def page(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        return render(self.env, template, status_code=status, **context)

    def refuse(self, status: int, title: str, message: str) -> HTMLResponse:
        return self.page("message.html", status, title=title, message=message)

    def who(self, token: str, *, organiser: bool = False) -> Any:
        """The rater (or organiser) row of TOKEN, None when it is no one's."""
        hashed = hash_token(token)
        row = self._raters.get(hashed)
        if row is None:
            row = self.db.rater_by_hash(hashed)
            if row is None:
                return None
            self._raters[hashed] = row
        return row if bool(row["organiser"]) == organiser else None

    def csrf(self, rater_id: int) -> str:
        return csrf_token(self.secret, f"rater:{rater_id}")

    def csrf_ok(self, rater_id: int, request: Request, form: Any) -> bool:
        """The form's token is this rater's, and the post comes from a page of this server."""
        return same_origin(request.headers) and csrf_matches(self.secret, f"rater:{rater_id}",
                                                             str(form.get("csrf", "")))

    def closed(self) -> bool:
        return bool(self.db.meta("closed", False))

    # ---------------------------------------------------------------- rater pages
    async def welcome(self, request: Request) -> Response:
        token = request.path_params["token"]
        rater = self.who(token)
        if rater is None:
            return self.refuse(404, "Link not recognised", "This link is not valid. Ask the organiser for a new one.")
        n, done = self.db.task_count(rater["id"]), self.db.done_count(rater["id"])
        names = sorted({r[0] for r in self.db.conn.execute("SELECT DISTINCT rubric FROM tasks WHERE rater_id = ?",
                                                           (rater["id"],))})
        rubrics = [{"title": "Comparing two answers" if self.rubrics[m].pairwise else "Rating one answer",
                    "axes": self.rubrics[m].axes} for m in names]
        return self.page("welcome.html", base=f"/r/{token}", total=n, done=done,
                         next=min(self.db.first_open(rater["id"]), n - 1) + 1 if n else 1, rubrics=rubrics,
                         pairwise=any(self.rubrics[m].pairwise for m in names), closed=self.closed())

    def _task(self, request: Request) -> tuple[Any, Any, int] | Response:
        token = request.path_params["token"]
        rater = self.who(token)
        if rater is None:
            return self.refuse(404, "Link not recognised", "This link is not valid.")
        k = request.path_params["k"]
        task = self.db.task_at(rater["id"], k - 1)
        if task is None:
            return self.refuse(404, "No such item", f"Your list has {self.db.task_count(rater['id'])} items.")
        return rater, task, k

    def item_page(self, token: str, rater: Any, task: Any, k: int, *, saved: int | None = None,
                  error: str = "", form: Any = None, status: int = 200) -> Response:
        rubric = self.rubrics[task.rubric]
        rating = task.rating or {}
        chosen = dict(rating.get("choices") or {})
        if form is not None:  # a refused submit shows what was typed, not the saved rating
            chosen = {a.name: a.choices[int(form[f"axis{i}"])] for i, a in enumerate(rubric.axes)
                      if str(form.get(f"axis{i}", "")).isdigit() and int(form[f"axis{i}"]) < len(a.choices)}
        return self.page("item.html", status, base=f"/r/{token}", k=k, n=self.db.task_count(rater["id"]),
                         done=self.db.done_count(rater["id"]), saved=saved, error=error, question=task.question,
                         answers=task.answers, axes=rubric.axes, chosen=chosen, csrf=self.csrf(rater["id"]),
                         submit_key=secrets.token_urlsafe(16), opened_at=f"{time.time():.3f}",
                         cannot_rate=(form.get("reason") if form is not None and form.get("cannot_rate")
                                      else rating.get("cannot_rate")),
                         comment=(form.get("comment", "") if form is not None else rating.get("comment", "")))

    async def item(self, request: Request) -> Response:
        got = self._task(request)
        if isinstance(got, Response):
            return got
        rater, task, k = got
        saved = request.query_params.get("saved")
        return self.item_page(request.path_params["token"], rater, task, k,
                              saved=int(saved) if saved and saved.isdigit() else None)

    def parse(self, task: Any, form: Any) -> tuple[dict[str, str], str | None, str] | str:
        """The choices, the cannot-rate reason and the comment of FORM; or what is wrong with it."""
        rubric = self.rubrics[task.rubric]
        cannot = str(form.get("reason", "")).strip()[:MAX_FIELD] if form.get("cannot_rate") else None
        if form.get("cannot_rate") and not cannot:
            return "Say why you cannot rate this item."
        choices, missing = {}, []
        for i, axis in enumerate(rubric.axes):
            raw = str(form.get(f"axis{i}", ""))
            if raw.isdigit() and int(raw) < len(axis.choices):
                choices[axis.name] = axis.choices[int(raw)]
            elif raw:
                return f"Question {i + 1}: not one of its choices."
            else:
                missing.append(str(i + 1))
        if missing and cannot is None:
            return f"Answer question(s) {', '.join(missing)}, or tick \"I cannot rate this item\"."
        return choices, cannot, str(form.get("comment", ""))[:MAX_FIELD]

    async def submit(self, request: Request) -> Response:
        got = self._task(request)
        if isinstance(got, Response):
            return got
        rater, task, k = got
        form = await request.form()
        wants_json = "application/json" in request.headers.get("accept", "")
        if not self.csrf_ok(rater["id"], request, form):
            return self.refuse(403, "Form expired", "Reload the page and submit again.")
        if self.closed():
            return self.refuse(409, "Study closed", "This study is closed; nothing was saved.")
        parsed = self.parse(task, form)
        if isinstance(parsed, str):
            if wants_json:
                return JSONResponse({"saved": False, "error": parsed}, status_code=422)
            return self.item_page(request.path_params["token"], rater, task, k, error=parsed, form=form, status=422)
        choices, cannot, comment = parsed
        key = str(form.get("submit_key", "")) or secrets.token_urlsafe(16)
        try:
            opened = float(form.get("opened_at", ""))
        except ValueError:
            opened = None
        wrote = self.db.save_rating(task.id, key, choices, comment=comment, cannot_rate=cannot, opened_at=opened)
        n = self.db.task_count(rater["id"])
        if wants_json:
            return JSONResponse({"saved": True, "duplicate": not wrote, "item": k, "of": n})
        token = request.path_params["token"]
        target = f"/r/{token}/item/{k + 1}?saved={k}" if k < n else f"/r/{token}/done?saved={k}"
        return RedirectResponse(target, status_code=303)

    async def done(self, request: Request) -> Response:
        token = request.path_params["token"]
        rater = self.who(token)
        if rater is None:
            return self.refuse(404, "Link not recognised", "This link is not valid.")
        saved = request.query_params.get("saved")
        return self.page("done.html", base=f"/r/{token}", n=self.db.task_count(rater["id"]),
                         done=self.db.done_count(rater["id"]), saved=int(saved) if saved and saved.isdigit() else None)

    # ---------------------------------------------------------------- organiser
    def _organiser(self, request: Request) -> Any:
        return self.who(request.path_params["token"], organiser=True)

    def report(self) -> dict[str, Any]:
        """The report so far (few resamples: the organiser's page wants it quickly)."""
        return build_report(self.db.meta("name", ""), self.db.rating_rows(), rubrics_of(self.db),
                            system_names(self.db), n_resamples=200)

    async def organiser(self, request: Request, invitation: dict[str, str] | None = None) -> Response:
        org = self._organiser(request)
        if org is None:
            return self.refuse(404, "Link not recognised", "This is not the organiser's link.")
        rows = self.db.rating_rows()
        raters = []
        for r in self.db.raters():
            times = [x["saved_at"] - x["opened_at"] for x in rows
                     if x["rater_id"] == r["id"] and x["opened_at"] and x["revisions"] == 1]
            raters.append({"id": r["id"], "label": r["label"], "pool": r["pool"], "done": self.db.done_count(r["id"]),
                           "total": self.db.task_count(r["id"]),
                           "median_s": f"{statistics.median(times):.0f}" if times else "-"})
        report = self.report()
        agreement = [{"where": f"{sec['pool']} / {sec['rubric']}", "axis": a["axis"], "units": a["agreement"]["units"],
                      "kappa": _fmt(a["agreement"]["randolph_kappa"]), "alpha": _fmt(a["agreement"]["krippendorff_alpha"])}
                     for sec in report["independent"] for a in sec["axes"]]
        if report["pairwise"]:
            agreement += [{"where": f"pairwise / {report['pairwise']['rubric']}", "axis": a["axis"],
                           "units": a["agreement"]["units"], "kappa": _fmt(a["agreement"]["randolph_kappa"]),
                           "alpha": _fmt(a["agreement"]["krippendorff_alpha"])} for a in report["pairwise"]["axes"]]
        return self.page("organiser.html", base=f"/o/{request.path_params['token']}", name=self.db.meta("name"),
                         closed=self.closed(), ratings=len(rows), systems=system_names(self.db), raters=raters,
                         agreement=agreement, csrf=self.csrf(org["id"]), invitation=invitation)

    async def organiser_post(self, request: Request) -> Response:
        org = self._organiser(request)
        if org is None:
            return self.refuse(404, "Link not recognised", "This is not the organiser's link.")
        form = await request.form()
        if not self.csrf_ok(org["id"], request, form):
            return self.refuse(403, "Form expired", "Reload the page and submit again.")
        action = request.path_params.get("action", "invite")
        if action in ("close", "reopen"):
            with self.db.transaction():
                self.db.set_meta("closed", action == "close")
            return RedirectResponse(f"/o/{request.path_params['token']}", status_code=303)
        if action != "invite":
            return self.refuse(404, "No such action", "")
        rater_id = request.path_params.get("rater")
        rater = next((r for r in self.db.raters() if r["id"] == rater_id), None)
        if rater is None:
            return self.refuse(404, "No such rater", "")
        token = new_token()
        self.db.set_token_hash(rater["id"], hash_token(token))
        self._raters = {}
        return await self.organiser(request, {"label": rater["label"], "url": f"{request.base_url}r/{token}"})

    async def export(self, request: Request) -> Response:
        if self._organiser(request) is None:
            return self.refuse(404, "Link not recognised", "This is not the organiser's link.")
        fmt = request.path_params["fmt"]
        if fmt == "html":
            return HTMLResponse(render_html(self.report()))
        media = {"csv": "text/csv", "jsonl": "application/x-ndjson"}.get(fmt)
        if media is None:
            return self.refuse(404, "No such export", "Export as csv or jsonl.")
        name = self.db.meta("name", "study")
        return PlainTextResponse(export_rows(self.db.rating_rows(), fmt), media_type=media, headers={
            "Content-Disposition": f'attachment; filename="{name}-ratings.{fmt}"'})


def _fmt(x: Any) -> str:
    return "-" if x is None else f"{x:.2f}"


def build_app(path: str | Path, *, fsync: bool = False) -> Starlette:
    """The ASGI app of the study file PATH (FSYNC: each save waits for the disk, see ``db.connect``)."""
    pages = StudyApp(StudyDB(path, fsync=fsync))
    routes = [
        Mount(STATIC_PATH, static_files()),
        Route("/r/{token}", pages.welcome),
        Route("/r/{token}/done", pages.done),
        Route("/r/{token}/item/{k:int}", pages.item, methods=["GET"]),
        Route("/r/{token}/item/{k:int}", pages.submit, methods=["POST"]),
        Route("/o/{token}", pages.organiser),
        Route("/o/{token}/invite/{rater:int}", pages.organiser_post, methods=["POST"]),
        Route("/o/{token}/{action:str}", pages.organiser_post, methods=["POST"]),
        Route("/o/{token}/export.{fmt:str}", pages.export),
        Route("/o/{token}/report.{fmt:str}", pages.export),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)])
    app.state.pages = pages
    return app


def serve_study(path: str | Path, *, host: str, port: int, fsync: bool = False, announce: Any = None) -> None:
    """Serve the study file PATH on HOST:PORT until stopped; ANNOUNCE(base_url) once it listens."""
    from evalkit.web.server import base_url, bind, serve

    app = build_app(path, fsync=fsync)
    sock = bind(host, port)
    url = base_url(sock, host)
    serve(app, sock, announce=(lambda: announce(url)) if announce else None)
