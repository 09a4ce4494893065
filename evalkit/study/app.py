"""``evalkit study serve``: the rating pages and the organiser's page (Starlette, Jinja2 templates).

A rater's link is ``/r/TOKEN``; everything they reach is under it and names only positions on their own
list (``/r/TOKEN/item/K``), never an answer, run, model or system. The organiser's link is ``/o/TOKEN``.
Every form carries a CSRF token; every rating is committed to the study file before the reply says saved
(a JSON reply when asked with ``Accept: application/json``, else a redirect to the next item).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import statistics
import time
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from evalkit.study.db import StudyDB
from evalkit.study.render import render_html
from evalkit.study.service import export_rows, rubrics_of, system_names
from evalkit.study.report import build_report

RATE_JS = """(function(){
  var sets=[].slice.call(document.querySelectorAll("fieldset.axis")), cur=0;
  function mark(i){sets.forEach(function(s,j){s.classList.toggle("current",j===i)});cur=i;}
  if(sets.length){var open=sets.findIndex(function(s){return !s.querySelector("input:checked")});mark(open<0?0:open);}
  sets.forEach(function(s,j){s.addEventListener("focusin",function(){mark(j)})});
  document.addEventListener("keydown",function(e){
    var t=e.target.tagName; if(t==="TEXTAREA"||(t==="INPUT"&&e.target.type==="text"))return;
    if(e.key==="Enter"){e.preventDefault();document.getElementById("rating").requestSubmit();return;}
    var d=parseInt(e.key,10); if(isNaN(d)||!sets.length)return;
    var radios=sets[cur].querySelectorAll("input[type=radio]"); if(d<1||d>radios.length)return;
    e.preventDefault(); radios[d-1].checked=true; radios[d-1].focus(); if(cur<sets.length-1)mark(cur+1);
  });
})();
"""
MAX_FIELD = 5000  # characters kept of a comment or a reason


# ---------------------------------------------------------------- web foundation pieces
def hash_token(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> tuple[str, str]:
    """A fresh secret token and its stored hash."""
    token = secrets.token_urlsafe(24)
    return token, hash_token(token)


def security_headers(response: Response) -> Response:
    """Headers every reply carries: no caching, no referrer (links hold tokens), no framing, scripts from here only."""
    response.headers.update({"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
                             "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
                             "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' "
                                                        "'unsafe-inline'; frame-ancestors 'none'; form-action 'self'"})
    return response
# ----------------------------------------------------------------


class StudyApp:
    """The study's pages over one open study file."""

    def __init__(self, db: StudyDB) -> None:
        self.db = db
        self.env = Environment(loader=PackageLoader("evalkit.study", "templates"),
                               autoescape=select_autoescape(["html"]))
        self.secret = secrets.token_bytes(32)  # signs CSRF tokens; a restart asks pages to be reloaded
        self.rubrics = {r.name: r for r in rubrics_of(db).values()}
        self._raters: dict[str, Any] = {}

    # ---------------------------------------------------------------- helpers
    def page(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        return security_headers(HTMLResponse(self.env.get_template(template).render(**context), status_code=status))

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
        return hmac.new(self.secret, f"csrf:{rater_id}".encode(), "sha256").hexdigest()

    def csrf_ok(self, rater_id: int, form: Any) -> bool:
        return hmac.compare_digest(str(form.get("csrf", "")), self.csrf(rater_id))

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
        if not self.csrf_ok(rater["id"], form):
            return self.refuse(403, "Form expired", "Reload the page and submit again.")
        if self.closed():
            return self.refuse(409, "Study closed", "This study is closed; nothing was saved.")
        parsed = self.parse(task, form)
        if isinstance(parsed, str):
            if wants_json:
                return security_headers(JSONResponse({"saved": False, "error": parsed}, status_code=422))
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
            return security_headers(JSONResponse({"saved": True, "duplicate": not wrote, "item": k, "of": n}))
        token = request.path_params["token"]
        target = f"/r/{token}/item/{k + 1}?saved={k}" if k < n else f"/r/{token}/done?saved={k}"
        return security_headers(RedirectResponse(target, status_code=303))

    async def done(self, request: Request) -> Response:
        token = request.path_params["token"]
        rater = self.who(token)
        if rater is None:
            return self.refuse(404, "Link not recognised", "This link is not valid.")
        saved = request.query_params.get("saved")
        return self.page("done.html", base=f"/r/{token}", n=self.db.task_count(rater["id"]),
                         done=self.db.done_count(rater["id"]), saved=int(saved) if saved and saved.isdigit() else None)

    async def script(self, request: Request) -> Response:
        return security_headers(Response(RATE_JS, media_type="text/javascript"))

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
        if not self.csrf_ok(org["id"], form):
            return self.refuse(403, "Form expired", "Reload the page and submit again.")
        action = request.path_params.get("action", "invite")
        if action in ("close", "reopen"):
            with self.db.transaction():
                self.db.set_meta("closed", action == "close")
            return security_headers(RedirectResponse(f"/o/{request.path_params['token']}", status_code=303))
        if action != "invite":
            return self.refuse(404, "No such action", "")
        rater_id = request.path_params.get("rater")
        rater = next((r for r in self.db.raters() if r["id"] == rater_id), None)
        if rater is None:
            return self.refuse(404, "No such rater", "")
        token, hashed = new_token()
        self.db.set_token_hash(rater["id"], hashed)
        self._raters = {}
        return await self.organiser(request, {"label": rater["label"], "url": f"{request.base_url}r/{token}"})

    async def export(self, request: Request) -> Response:
        if self._organiser(request) is None:
            return self.refuse(404, "Link not recognised", "This is not the organiser's link.")
        fmt = request.path_params["fmt"]
        if fmt == "html":
            return security_headers(HTMLResponse(render_html(self.report())))
        media = {"csv": "text/csv", "jsonl": "application/x-ndjson"}.get(fmt)
        if media is None:
            return self.refuse(404, "No such export", "Export as csv or jsonl.")
        name = self.db.meta("name", "study")
        return security_headers(PlainTextResponse(export_rows(self.db.rating_rows(), fmt), media_type=media, headers={
            "Content-Disposition": f'attachment; filename="{name}-ratings.{fmt}"'}))


def _fmt(x: Any) -> str:
    return "-" if x is None else f"{x:.2f}"


def build_app(path: str | Path) -> Starlette:
    """The ASGI app of the study file PATH."""
    pages = StudyApp(StudyDB(path))
    routes = [
        Route("/static/rate.js", pages.script),
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
    app = Starlette(routes=routes)
    app.state.pages = pages
    return app
