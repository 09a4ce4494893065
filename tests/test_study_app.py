"""The study's pages through an HTTP client: rating, going back, double submit, access, blinding, CSRF."""

import re

import pytest
from starlette.testclient import TestClient

from evalkit.web.study.app import build_app
from evalkit.web.study.create import create_study
from evalkit.web.study.db import StudyDB
from tests.study_helpers import write_run
from evalkit.web.security import hash_token, new_token

HOSTILE = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2">'


def _token():
    t = new_token()
    return t, hash_token(t)


@pytest.fixture()
def study(tmp_path):
    a = write_run(tmp_path / "runs", "SmolLM2-135M-ckpt-1200", {f"q{i}": f"Answer {i} {HOSTILE}" for i in range(6)},
                  refs={f"q{i}": f"Reference answer {i}" for i in range(6)})
    made = create_study("web", [a], new_token=_token, reference=True, studies_dir=str(tmp_path / "st"),
                        design="both", items=6, physicians=3, lay=2, raters_per_answer=2, seed=1)
    client = TestClient(build_app(made.path), base_url="http://127.0.0.1:8801")
    return made, client


def _form(page):
    return {"csrf": re.search(r'name="csrf" value="([^"]+)"', page).group(1),
            "submit_key": re.search(r'name="submit_key" value="([^"]+)"', page).group(1),
            "opened_at": re.search(r'name="opened_at" value="([^"]+)"', page).group(1)}


def _axes(page):
    return sorted({int(m) for m in re.findall(r'name="axis(\d+)"', page)})


def test_rate_go_back_and_double_submit(study):
    made, client = study
    inv = made.invitations[0]
    home = client.get(f"/r/{inv.token}")
    assert home.status_code == 200 and "Instructions" in home.text and "Consensus is what" in home.text
    page = client.get(f"/r/{inv.token}/item/1").text
    assert "Item 1 of" in page
    form = _form(page) | {f"axis{i}": "0" for i in _axes(page)}
    r = client.post(f"/r/{inv.token}/item/1", data=form, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("/item/2?saved=1")
    again = client.post(f"/r/{inv.token}/item/1", data=form, headers={"accept": "application/json"})
    assert again.json() == {"saved": True, "duplicate": True, "item": 1, "of": again.json()["of"]}
    db = StudyDB(made.path)
    assert len(db.rating_rows()) == 1
    # back to item 1: the saved choice is checked; changing it replaces the rating
    page = client.get(f"/r/{inv.token}/item/1").text
    assert 'value="0" checked' in page
    form = _form(page) | {f"axis{i}": "1" for i in _axes(page)}
    assert client.post(f"/r/{inv.token}/item/1", data=form, headers={"accept": "application/json"}).json()["saved"]
    rows = db.rating_rows()
    assert len(rows) == 1 and rows[0]["revisions"] == 2
    # an incomplete rating is refused and says what is missing
    page = client.get(f"/r/{inv.token}/item/2").text
    bad = client.post(f"/r/{inv.token}/item/2", data=_form(page))
    assert bad.status_code == 422 and "cannot rate" in bad.text
    ok = client.post(f"/r/{inv.token}/item/2", data=_form(page) | {"cannot_rate": "1", "reason": "not my field"},
                     headers={"accept": "application/json"})
    assert ok.json()["saved"] and StudyDB(made.path).rating_rows()[1]["cannot_rate"] == "not my field"


def test_access_csrf_and_blinding(study):
    made, client = study
    a, b = made.invitations[0], made.invitations[1]
    page_a = client.get(f"/r/{a.token}/item/1").text
    # B posting with A's form token is refused; a made-up token is no one
    form = _form(page_a) | {f"axis{i}": "0" for i in _axes(page_a)}
    assert client.post(f"/r/{b.token}/item/1", data=form).status_code == 403
    assert client.get("/r/not-a-token/item/1").status_code == 404
    n_b = StudyDB(made.path).task_count(StudyDB(made.path).raters()[1]["id"])
    assert client.get(f"/r/{b.token}/item/{n_b + 1}").status_code == 404
    # a cross-site post is refused even with the right form token
    assert client.post(f"/r/{a.token}/item/1", data=form, headers={"origin": "http://evil.example"}).status_code == 403
    # nothing served to a rater names the run, model or system; hostile text is escaped
    for k in range(1, 4):
        r = client.get(f"/r/{a.token}/item/{k}")
        blob = r.text + str(r.headers)
        for name in ("SmolLM2", "ckpt", "1200", "runs", "reference", "system"):
            assert name not in blob, name
        assert "<script>window.pwned" not in r.text and "<img src=x" not in r.text
        if "Answer " in r.text:
            assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in r.text
        assert r.headers["referrer-policy"] == "no-referrer" and "script-src 'self'" in r.headers["content-security-policy"]
    assert "SmolLM2" not in client.get(f"/r/{a.token}").text


def test_organiser_page_export_and_close(study):
    made, client = study
    org = made.organiser.token
    inv = made.invitations[0]
    page = client.get(f"/r/{inv.token}/item/1").text
    client.post(f"/r/{inv.token}/item/1", data=_form(page) | {f"axis{i}": "2" if i == 0 else "0" for i in _axes(page)})
    home = client.get(f"/o/{org}")
    assert home.status_code == 200 and "physician-1" in home.text and "1 of" in home.text
    assert client.get(f"/o/{inv.token}").status_code == 404  # a rater's token is not the organiser's
    csv_text = client.get(f"/o/{org}/export.csv").text
    assert csv_text.startswith("rater,") and ("SmolLM2-135M-ckpt-1200" in csv_text or "reference" in csv_text)
    assert client.get(f"/o/{org}/export.jsonl").text.count("\n") == 1
    csrf = re.search(r'name="csrf" value="([^"]+)"', home.text).group(1)
    assert client.post(f"/o/{org}/close", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    page = client.get(f"/r/{inv.token}/item/2").text
    refused = client.post(f"/r/{inv.token}/item/2", data=_form(page) | {f"axis{i}": "0" for i in _axes(page)})
    assert refused.status_code == 409
    # a new invitation: the old link stops working, the new one works
    rater_id = StudyDB(made.path).raters()[0]["id"]
    new = client.post(f"/o/{org}/invite/{rater_id}", data={"csrf": csrf})
    link = re.search(r"<code>(http[^<]+)</code>", new.text).group(1)
    assert client.get(f"/r/{inv.token}").status_code == 404
    assert client.get(link.replace("http://127.0.0.1:8801", "")).status_code == 200
