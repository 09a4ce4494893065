"""A rating study driven in real headless Chromium (Playwright on Debian's chromium).

Three raters in three browser contexts rate a 20-item study by keyboard alone, taking turns item by item;
the server is SIGKILLed mid-way and restarted on the same port; every item a page reported saved is in
the study file exactly once, with the choices typed. Along the way: rater B cannot change A's items,
nothing served to a rater names the run or a system, and a planted <script> answer stays inert."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from evalkit.web.study.db import StudyDB
from evalkit.web.study.rubric import load_study_rubric
from tests.conftest import ROOT, free_port
from tests.study_helpers import write_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REQUIRED = os.environ.get("EVALKIT_REQUIRE_CHROMIUM") == "1"
try:
    from playwright.sync_api import sync_playwright
except ImportError:  # the test extra is not installed
    sync_playwright = None

pytestmark = pytest.mark.skipif((CHROMIUM is None or sync_playwright is None) and not REQUIRED,
                                reason="needs Debian's chromium (apt-get install -y chromium) and playwright")

RUN = "SmolLM2-135M-Instruct-ckpt-600"
PLANTED = "<script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\">"
NAMES = (RUN, "SmolLM2", "ckpt-600", "reference", "runs/")


def _evalkit(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "evalkit", "study", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def _create(tmp_path: Path) -> tuple[dict[str, str], str]:
    answers = {f"q{i:02d}": f"Answer number {i}: rest, fluids, and see a doctor if it lasts." for i in range(20)}
    answers["q07"] = f"Planted answer {PLANTED} end."
    write_run(tmp_path / "runs", RUN, answers)
    proc = _evalkit("create", "s20", "--run", str(tmp_path / "runs" / RUN), "--items", "20", "--physicians", "3",
                    "-k", "3", "--studies-dir", str(tmp_path / "st"))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    links = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and "/r/" in parts[1] or len(parts) == 2 and "/o/" in parts[1]:
            links[parts[0]] = parts[1].split("://", 1)[1].split("/", 1)[1]  # path only: the port is ours
    return links, str(tmp_path / "st")


def _serve(studies: str, port: int) -> subprocess.Popen:
    proc = _evalkit("serve", "s20", "--port", str(port), "--studies-dir", studies, start_new_session=True)
    line = proc.stdout.readline()
    assert "served at" in line, proc.stderr.read() if proc.poll() is not None else line
    return proc


def _rate_one(page, base: str, key: str, saved: dict) -> bool:
    """Rate the item the page shows with the keyboard alone; True when the next page reports it saved."""
    assert page.locator("#progress").count(), f"{page.url}: {page.content()[:1500]}"
    progress = page.locator("#progress").inner_text()
    k = int(progress.split()[1])
    page.locator("body").click(position={"x": 1, "y": 1})  # focus the page, not a field
    for _ in range(page.locator("fieldset.axis").count()):
        page.keyboard.press(key)
    try:
        with page.expect_navigation(timeout=15_000):
            page.keyboard.press("Enter")
    except Exception:  # the server was gone: nothing was reported saved
        return False
    note = page.locator("#saved")
    if note.count() and note.inner_text() == f"Item {k} saved.":
        saved.setdefault(k, key)
        return True
    return False


def test_three_raters_keyboard_kill_and_restart(tmp_path):
    assert CHROMIUM and sync_playwright, "chromium and playwright are required here (EVALKIT_REQUIRE_CHROMIUM=1)"
    links, studies = _create(tmp_path)
    raters = ["physician-1", "physician-2", "physician-3"]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = _serve(studies, port)
    served: list[str] = []
    saved: dict[str, dict[int, str]] = {r: {} for r in raters}
    keys = {"physician-1": "1", "physician-2": "2", "physician-3": "3"}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            pages = {}
            for r in raters:
                ctx = browser.new_context()
                page = ctx.new_page()
                page.on("response", lambda resp: served.append(
                    resp.url + str(resp.headers) + (resp.text() if resp.ok and "text" in
                                                    resp.headers.get("content-type", "") else "")))
                page.goto(base + "/" + links[r])
                page.locator("#start").press("Enter")  # the instructions come first; Enter starts
                page.wait_for_url("**/item/1")
                pages[r] = page
            keys["physician-3"] = "1"  # some axes have two choices only
            for step in range(20):
                if step == 9:  # mid-way: the server dies without warning, and comes back
                    os.killpg(server.pid, signal.SIGKILL)
                    server.wait()
                    server = _serve(studies, port)
                    for r, page in pages.items():  # each rater resumes from their own link
                        page.goto(base + "/" + links[r])
                        page.locator("#start").click()
                        page.wait_for_load_state()
                for r, page in pages.items():
                    if "/item/" in page.url:
                        _rate_one(page, base, keys[r], saved[r])
            # B cannot change A's items: A's item URL with B's form token is refused
            a_page, b_page = pages["physician-1"], pages["physician-2"]
            b_page.goto(base + "/" + links["physician-2"] + "/item/1")
            csrf = b_page.locator("input[name=csrf]").get_attribute("value")
            resp = b_page.request.post(base + "/" + links["physician-1"] + "/item/1",
                                       form={"csrf": csrf, "submit_key": "x", "axis0": "0", "axis1": "0"})
            assert resp.status == 403
            # the planted answer is shown as text and its script never ran
            for page in pages.values():
                for k in range(1, 21):
                    page.goto(base + "/" + links[[r for r in pages if pages[r] is page][0]] + f"/item/{k}")
                    if "Planted answer" in page.content():
                        assert PLANTED in page.locator(".answer").nth(1).inner_text()
                        assert page.evaluate("window.__pwned") is None
                        break
                else:
                    pytest.fail("the planted answer was never shown")
            browser.close()
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    db = StudyDB(Path(studies) / "s20" / "study.sqlite")
    rows = db.rating_rows()
    by_rater = {}
    for row in rows:
        by_rater.setdefault(row["rater"], []).append(row)
    rubric = load_study_rubric("medpalm2_physician")
    for r in raters:
        positions = [row["position"] + 1 for row in by_rater.get(r, [])]
        assert len(positions) == len(set(positions))  # once each
        assert set(saved[r]) <= set(positions), f"{r}: reported saved but missing: {set(saved[r]) - set(positions)}"
        assert len(saved[r]) >= 18  # at most the item in flight at the kill needed doing again
        for row in by_rater[r]:
            idx = int(keys[r]) - 1
            assert row["choices"] == {a.name: a.choices[idx] for a in rubric.axes}
    blob = "\n".join(served)
    assert len(served) > 60 and "Planted answer" in blob  # every page, script and style the raters got
    for name in NAMES:
        assert name not in blob, f"{name!r} was served to a rater"
