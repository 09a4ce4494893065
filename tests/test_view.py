"""evalkit view, through Starlette's test client: what each page and API returns, path escapes, the token,
hostile text, and that the view writes nothing into a run directory. The browser tests are in
tests/test_view_browser.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from evalkit.config import ViewSettings
from evalkit.web.view.app import build_app
from evalkit.web.view.items import browse
from evalkit.web.view.live import LiveRun
from tests.runfactory import make_sample, verdict_samples, write_run


@pytest.fixture
def results(tmp_path) -> Path:
    root = tmp_path / "results"
    write_run(root, "run-a", verdict_samples("medqa", [True, True, False, None]), model="model-a")
    write_run(root, "run-b", verdict_samples("medqa", [True, False, False, True]), model="model-b",
              started_at="2025-02-01T00:00:00Z")
    hostile = make_sample("x-1", "medqa", question="<script>window.pwned=1</script>What?",
                          output="<img src=x onerror=alert(1)>The answer is A.")
    write_run(root, "hostile", [hostile], task="other", model="<b>bold-model</b>")
    return root


def _client(root: Path, **kw) -> TestClient:
    return TestClient(build_app(root, ViewSettings(), **kw))


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")
            if p.is_file() and ".evalkit-index" not in p.name}


def test_home_lists_every_run_with_its_model_and_score(results):
    page = _client(results).get("/")
    assert page.status_code == 200
    for key in ("medqa/run-a", "medqa/run-b", "other/hostile"):
        assert f'data-key="{key}"' in page.text
    assert "model-a" in page.text and "50.0%" in page.text  # run-b: 2 of 4
    runs = {r["key"]: r for r in _client(results).get("/api/runs").json()}
    assert runs["medqa/run-a"]["model"] == "model-a" and runs["medqa/run-a"]["status"] != "running"
    assert list(runs)[0] == "medqa/run-b"  # newest first


def test_run_pages_report_and_items(results):
    client = _client(results)
    assert client.get("/run/medqa/run-a").status_code == 200
    report = client.get("/run/medqa/run-a/report")
    assert report.status_code == 200 and "<html" in report.text.lower()
    assert report.headers["x-frame-options"] == "SAMEORIGIN"  # shown framed in the run page
    progress = client.get("/api/run/medqa/run-a/progress").json()
    assert progress["done"] == 4 and progress["live"] is False
    row = progress["rows"][0]
    assert row["dataset"] == "medqa" and row["correct"] == 2
    page = client.get("/api/run/medqa/run-a/items", params={"verdict": "wrong"}).json()
    assert page["matching"] == 1 and page["items"][0]["id"] == "medqa-2"
    assert client.get("/api/run/medqa/run-a/items", params={"verdict": "nonsense"}).status_code == 400


def test_items_search_and_pages():
    samples = verdict_samples("medqa", [True] * 250)
    first = browse(samples, offset=0, limit=100)
    assert first["total"] == 250 and len(first["items"]) == 100 and first["items"][0]["id"] == "medqa-0"
    last = browse(samples, offset=200, limit=100)
    assert [i["id"] for i in last["items"]][-1] == "medqa-249" and len(last["items"]) == 50
    found = browse(samples, query="MEDQA-17", limit=100)
    assert {i["id"] for i in found["items"]} == {"medqa-17", *(f"medqa-{n}" for n in range(170, 180))}
    assert browse(samples, which="correct")["counts"] == {"correct": 250}


def test_compare_of_two_runs_and_refusals(results):
    client = _client(results)
    page = client.get("/compare", params=[("run", "medqa/run-a"), ("run", "medqa/run-b")])
    assert page.status_code == 200 and "run-a" in page.text and "run-b" in page.text
    assert client.get("/compare", params=[("run", "medqa/run-a")]).status_code == 404
    assert client.get("/compare", params=[("run", "medqa/run-a"), ("run", "../../etc")]).status_code == 404


@pytest.mark.parametrize("path", [
    "/run/../../etc/passwd", "/run/%2e%2e/%2e%2e/etc/passwd", "/run/medqa/..%2f..%2fetc",
    "/run/medqa/run-a/../../../secret", "/api/run/%2E%2E%2Fsecret/progress", "/run//etc/passwd/report",
    "/static/../view/app.py", "/static/%2e%2e/%2e%2e/config.py", "/sweep/..%2f..%2fetc", "/api/sweep/%2e%2e",
    "/run/outside-link", "/run/outside-link/report", "/api/run/outside-link/items",
])
def test_nothing_outside_the_results_folder_is_served(results, tmp_path, path):
    outside = tmp_path / "secret"
    write_run(outside.parent / "secret-root", "outside", verdict_samples("medqa", [True]), task="x")
    (results / "outside-link").symlink_to(outside.parent / "secret-root" / "x" / "outside")
    response = _client(results).get(path)
    assert response.status_code == 404, (path, response.status_code)


def test_hostile_text_is_escaped(results):
    client = _client(results)
    home = client.get("/").text
    assert "<b>bold-model</b>" not in home and "&lt;b&gt;bold-model&lt;/b&gt;" in home
    items = client.get("/api/run/other/hostile/items").json()["items"]
    assert items[0]["question"].startswith("<script>")  # JSON text, written with textContent by the page
    assert "script-src 'self';" in client.get("/").headers["content-security-policy"]


def test_a_token_guards_every_request(results):
    client = _client(results, token="s3cret-token-value")
    for path in ("/", "/api/runs", "/run/medqa/run-a", "/static/view.js", "/leaderboard"):
        assert client.get(path).status_code == 401, path
    assert client.get("/?token=s3cret-token-value").status_code == 200
    assert client.get("/api/runs").status_code == 200  # the cookie of the first visit


def test_the_view_writes_nothing_into_run_directories(results):
    before = _tree(results)
    client = _client(results)
    for path in ("/", "/leaderboard", "/run/medqa/run-a", "/run/medqa/run-a/report", "/api/run/medqa/run-a/items",
                 "/api/run/medqa/run-a/progress", "/compare?run=medqa/run-a&run=medqa/run-b"):
        assert client.get(path).status_code == 200, path
    assert _tree(results) == before


def test_a_live_run_is_read_as_it_grows_and_a_torn_line_waits(tmp_path):
    run_dir = write_run(tmp_path, "live", verdict_samples("medqa", [True, False]))
    live = LiveRun(run_dir)
    assert live.figures()["done"] == 2
    with open(run_dir / "samples.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(make_sample("medqa-2", "medqa", correct=True)) + "\n")
        fh.write(json.dumps(make_sample("medqa-3", "medqa", correct=True))[:40])  # still being written
    figures = live.figures()
    assert figures["done"] == 3 and figures["rows"][0]["correct"] == 2
    with open(run_dir / "samples.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(make_sample("medqa-3", "medqa", correct=True))[40:] + "\n")
    assert live.figures()["done"] == 4 and live.figures()["rows"][0]["correct"] == 3


def test_sweeps_are_listed_from_the_results_folder(results):
    sweep_dir = results / "sweeps" / "ft"
    sweep_dir.mkdir(parents=True)
    settings = {"name": "ft", "sweep_dir": str(sweep_dir), "results_dir": str(results), "eval_files": []}
    (sweep_dir / "sweep.json").write_text(json.dumps({"format": 1, "settings": settings, "checkpoints": {}}))
    client = _client(results)
    assert 'href="sweep/ft"' in client.get("/").text
    assert client.get("/sweep/ft").status_code == 200
    snapshot = client.get("/api/sweep/ft").json()
    assert snapshot["name"] == "ft" and snapshot["jobs"] == [] and snapshot["trend_svg"] == ""
    assert client.get("/sweep/nope").status_code == 404


def test_cli_refuses_a_busy_port_by_name(results):
    from tests.conftest import run_evalkit
    from evalkit.web.server import bind

    sock = bind("127.0.0.1", 0)
    try:
        port = sock.getsockname()[1]
        done = run_evalkit("view", str(results), "--port", str(port), env={**os.environ}, timeout=60)
    finally:
        sock.close()
    assert done.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in done.stderr


def test_home_lists_rating_studies_and_their_progress_without_writing(results, tmp_path):
    from evalkit.web.study.create import create_study
    from evalkit.web.security import hash_token, new_token
    from tests.study_helpers import write_run as write_answers

    def token():
        t = new_token()
        return t, hash_token(t)

    run = write_answers(tmp_path / "runs", "model-x", {f"q{i}": f"Answer {i}" for i in range(4)})
    studies = tmp_path / "studies"
    made = create_study("pilot", [run], new_token=token, studies_dir=str(studies), design="independent", items=4,
                        physicians=2, lay=0, raters_per_answer=2, seed=1)
    before = {p.name: p.stat().st_mtime_ns for p in made.path.parent.iterdir()}
    client = TestClient(build_app(results, ViewSettings(studies_dir=str(studies))))
    home = client.get("/").text
    assert 'data-study="pilot"' in home and "0 of 8" in home  # 4 answers x 2 raters, none rated yet
    assert {p.name: p.stat().st_mtime_ns for p in made.path.parent.iterdir() if p.name in before} == before
    assert "No rating study" in TestClient(build_app(results, ViewSettings(studies_dir=str(tmp_path / "none")))).get("/").text


def test_a_sweeps_trend_is_made_again_only_when_the_sweep_changes(results, monkeypatch):
    import evalkit.web.view.app as view_app

    sweep_dir = results / "sweeps" / "ft"
    sweep_dir.mkdir(parents=True)
    settings = {"name": "ft", "sweep_dir": str(sweep_dir), "results_dir": str(results), "eval_files": []}
    doc = {"format": 1, "settings": settings, "checkpoints": {}}
    (sweep_dir / "sweep.json").write_text(json.dumps(doc))
    made = []
    real = view_app.sweep_trend_plot
    monkeypatch.setattr(view_app, "sweep_trend_plot", lambda *a: made.append(1) or real(*a))
    client = _client(results)
    for _ in range(3):
        assert client.get("/api/sweep/ft").status_code == 200
    assert len(made) == 1  # three looks, nothing changed: one trend
    doc["checkpoints"]["ck-100"] = {"path": str(results / "ck-100"), "step": 100, "jobs": []}
    (sweep_dir / "sweep.json").write_text(json.dumps(doc))
    assert [j["step"] for j in client.get("/api/sweep/ft").json()["jobs"]] == [100]
    assert len(made) == 2  # a new checkpoint: the trend is made again
