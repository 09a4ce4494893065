"""evalkit view in real headless Chromium, against a real `evalkit view` process: a run watched from start to
end, a local sweep of three checkpoints filling its trend, two runs compared from the home page, path
escapes on the wire, and the token on a non-loopback bind."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_evalkit, wait_for, write_items
from tests.test_compare import _check_stats_equal_gate, _shown_stats, browser_page, needs_browser  # noqa: F401

pytestmark = needs_browser


class ViewProcess:
    """`evalkit view RESULTS --port 0 ...` in its own process group; its URL read from its first line."""

    def __init__(self, results: Path, *args: str, env: dict | None = None):
        self.proc = subprocess.Popen([sys.executable, "-m", "evalkit", "view", str(results), "--port", "0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=env or _env(), start_new_session=True)
        line = self.proc.stdout.readline()
        match = re.search(r"open (http://\S+)", line)
        assert match, f"no URL in {line!r}; stderr: {self.proc.stderr.read() if self.proc.poll() is not None else ''}"
        self.url = match.group(1)
        self.base = re.sub(r"/\?token=.*$", "", self.url).rstrip("/")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}


@pytest.fixture
def view_of():
    started: list[ViewProcess] = []

    def start(results: Path, *args: str) -> ViewProcess:
        started.append(ViewProcess(results, *args))
        return started[-1]

    yield start
    for v in started:
        v.stop()


def test_a_run_is_watched_from_start_to_end(tmp_path, loopback, view_of, browser_page):
    srv = loopback("--delay-s", "0.25", "--seed", "3")
    items = write_items(tmp_path / "watch.jsonl", 40)
    results = tmp_path / "results"
    results.mkdir()
    run = subprocess.Popen([sys.executable, "-m", "evalkit", "run", "--eval-file", str(items), "--endpoint", srv.url,
                            "--results-dir", str(results), "--concurrency", "2", "--quiet"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), start_new_session=True)
    try:
        view = view_of(results)
        page = browser_page
        run_dir = wait_for(lambda: next((p.parent for p in results.rglob("samples.jsonl")), None), 60, "the run to start")
        key = run_dir.relative_to(results).as_posix()
        page.goto(f"{view.base}/run/{key}")
        seen: list[tuple[str, int]] = []
        while run.poll() is None:
            state = page.text_content("#run-state") or ""
            done = page.eval_on_selector("#progress-line", "e => parseInt(e.textContent, 10)")
            if isinstance(done, int):
                seen.append((state, done))
            time.sleep(0.3)
        assert run.returncode == 0, run.stderr.read()
        wait_for(lambda: page.text_content("#run-state") == "complete", 15, "the page to show the run complete")
        final = page.eval_on_selector_all("#figures tbody tr", "trs => trs.map(tr => [tr.dataset.dataset, "
                                          "Number(tr.dataset.n), Number(tr.dataset.accuracy)])")
        # The item list reloads when the figures change: the last reload lands a moment after them.
        shown_items = wait_for(lambda: page.get_attribute("#items", "data-total") == "40" and 40, 10, "all 40 items listed")
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGTERM)
    running = [d for s, d in seen if s == "running"]
    assert running and min(running) < 40, f"the page never showed the run going: {seen[:5]}"
    assert running == sorted(running), "progress went backwards"
    report = run_evalkit("report", str(run_dir), "--format", "json", env=_env())
    assert report.returncode == 0, report.stderr
    rows = [r for r in json.loads(report.stdout)["rows"] if r.get("group") is None]
    assert final == [[r["dataset"], r["n"], r["accuracy"]] for r in rows]
    assert shown_items == 40


def test_a_local_sweep_fills_its_trend_while_the_page_is_open(tmp_path, isolated_state, view_of, browser_page):
    from tests.test_sweep_e2e import _sweep_args, _sweep_env

    root, env = _sweep_env("standin", tmp_path, isolated_state)
    results = root / "results"
    (results / "sweeps").mkdir(parents=True)
    args = [a if a != str(root / "sweep-local") else str(results / "sweeps" / "ft") for a in _sweep_args(root, "local")]
    # The sweep's state must exist for its page: the first job is slowed by the pacing (--rps 2).
    sweep = subprocess.Popen([sys.executable, "-m", "evalkit", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env, start_new_session=True)
    try:
        view = view_of(results)
        wait_for(lambda: (results / "sweeps" / "ft" / "sweep.json").exists(), 60, "the sweep's state file")
        page = browser_page
        page.goto(f"{view.base}/sweep/ft")
        page.wait_for_selector("#jobs tbody tr", timeout=15000)
        first_points = page.eval_on_selector_all("#trend circle", "cs => cs.length")
        assert first_points < 6, "the page opened after the sweep had finished: nothing was watched"
        # The page's CSP forbids eval, so the waits poll from here (page.wait_for_function evaluates a string).
        wait_for(lambda: len(page.query_selector_all("#jobs tbody tr[data-state=done]")) == 3, 180, "three done jobs")
        wait_for(lambda: len(set(page.eval_on_selector_all("#trend circle", "cs => cs.map(c => c.dataset.step)"))) == 3,
              30, "three steps on the trend")
        steps = page.eval_on_selector_all("#trend circle", "cs => cs.map(c => c.dataset.step)")
        assert sorted(set(steps), key=float) == ["100", "200", "300"]
        circles = page.query_selector_all("#trend circle[data-step='100']")
        circles[0].click()
        page.query_selector_all("#trend circle[data-step='300']")[0].click()
        page.wait_for_selector("#pair-stats tr", timeout=30000)
        assert "/compare?run=" in page.url
    finally:
        if sweep.poll() is None:
            os.killpg(sweep.pid, signal.SIGTERM)
            sweep.wait(timeout=30)


def test_two_runs_compared_from_the_home_page_show_the_gates_counts(tmp_path, view_of, browser_page):
    from tests.test_compare import _gate_json, _runs

    base, cand = _runs(tmp_path)
    results = Path(os.path.commonpath([base, cand]))
    view = view_of(results)
    page = browser_page
    page.goto(view.base + "/")
    for run in (base, cand):
        page.check(f"input.pick[value='{run.relative_to(results).as_posix()}']")
    page.click("#compare-button")
    page.wait_for_selector("#pair-stats tr", timeout=30000)
    shown = _shown_stats(page)
    gate = _gate_json(base, cand, tmp_path, "--allow-mismatch")
    _check_stats_equal_gate(shown, gate)  # the run ticked first is the baseline, as gate's --baseline


def _raw_get(base: str, path: str, headers: dict | None = None) -> int:
    host, port = base.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.putrequest("GET", path, skip_accept_encoding=True)  # the path sent as written: no normalising
    for k, v in (headers or {}).items():
        conn.putheader(k, v)
    conn.endheaders()
    status = conn.getresponse().status
    conn.close()
    return status


def test_path_escapes_get_404_on_the_wire(tmp_path, view_of):
    from tests.runfactory import verdict_samples, write_run

    results = tmp_path / "results"
    write_run(results, "run-a", verdict_samples("medqa", [True, False]))
    write_run(tmp_path / "elsewhere", "secret", verdict_samples("medqa", [True]))
    (results / "link").symlink_to(tmp_path / "elsewhere" / "medqa" / "secret")
    view = view_of(results)
    assert _raw_get(view.base, "/run/medqa/run-a") == 200
    for path in ("/run/../../../etc/passwd", "/run/%2e%2e/%2e%2e/etc/passwd", "/run/medqa/..%2F..%2F..%2Fetc",
                 "/static/../../evalkit/config.py", "/static/%2e%2e/%2e%2e/config.py", "/run/link",
                 "/run/link/report", "/api/run/link/items", "/api/run/%2e%2e%2f%2e%2e%2fsecret/progress"):
        assert _raw_get(view.base, path) == 404, path


def test_off_loopback_every_request_needs_the_printed_token(tmp_path, view_of, browser_page):
    from tests.runfactory import verdict_samples, write_run

    results = tmp_path / "results"
    write_run(results, "run-a", verdict_samples("medqa", [True, False]))
    view = view_of(results, "--host", "0.0.0.0")
    assert "?token=" in view.url
    local = view.base.replace("0.0.0.0", "127.0.0.1")
    for path in ("/", "/api/runs", "/run/medqa/run-a", "/static/view.js", "/leaderboard"):
        assert _raw_get(local, path) == 401, path
    token = view.url.split("token=")[1]
    assert _raw_get(local, "/api/runs", {"Authorization": f"Bearer {token}"}) == 200
    page = browser_page
    page.goto(view.url.replace("0.0.0.0", "127.0.0.1"))
    assert page.query_selector("tr[data-key='medqa/run-a']") is not None
    page.click("a[href='run/medqa/run-a']")  # the cookie of the first visit carries on
    page.wait_for_selector("#figures tbody tr", timeout=15000)
