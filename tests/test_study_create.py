"""evalkit study create: the study file, refusals, assignments; the store's save semantics."""

import sqlite3

import pytest

from evalkit.web.study.create import create_study, unratable
from evalkit.web.study.db import StudyDB, StudyError
from tests.study_helpers import plain_token, write_run


def _runs(tmp_path, n=6, **kw):
    a = write_run(tmp_path / "runs", "smollm2-135m-run", {f"q{i}": f"Answer A{i}" for i in range(n)},
                  refs={f"q{i}": f"Reference {i}" for i in range(n)}, **kw)
    b = write_run(tmp_path / "runs", "qwen-ckpt-900", {f"q{i}": f"Answer B{i}" for i in range(n)})
    return a, b


def test_create_both_designs_with_reference(tmp_path):
    a, b = _runs(tmp_path)
    made = create_study("s1", [a, b], new_token=plain_token, reference=True, studies_dir=str(tmp_path / "st"),
                        design="both", items=4, physicians=4, lay=2, raters_per_answer=2, seed=3)
    assert made.systems == ["smollm2-135m-run", "reference", "qwen-ckpt-900"]
    # independent: 4 items x 3 systems x K=2; pairwise: 4 items x 3 pairs x 2; lay: 4 x 3 x 2
    assert made.tasks == 24 + 24 + 24
    db = StudyDB(made.path)
    tokens = [i.token for i in made.invitations] + [made.organiser.token]
    stored = [r[0] for r in db.conn.execute("SELECT token_hash FROM raters")]
    assert not set(tokens) & set(stored)  # only hashes are stored
    assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    lay = [r["id"] for r in db.raters() if r["pool"] == "lay"]
    assert {db.task_at(r, 0).rubric for r in lay} == {"medpalm2_lay"}
    with pytest.raises(StudyError, match="exists already"):
        create_study("s1", [a, b], new_token=plain_token, studies_dir=str(tmp_path / "st"), items=4)


def test_refused_answers_are_all_named(tmp_path):
    a = write_run(tmp_path / "runs", "r1", {"q0": "fine", "q1": "   ", "q2": "bad\x00byte", "q3": "ok"},
                  errors={"q3": "HTTP 500"})
    with pytest.raises(StudyError) as err:
        create_study("s", [a], new_token=plain_token, studies_dir=str(tmp_path / "st"), items=4, physicians=3)
    msg = str(err.value)
    assert "r1: item q1: empty answer" in msg and "item q2: would not display" in msg
    assert "item q3: failed generation: HTTP 500" in msg
    assert not (tmp_path / "st" / "s" / "study.sqlite").exists()
    assert unratable("x" * 50, 10).startswith("would not display")


def test_save_rating_once_per_submit_and_changes_replace(tmp_path):
    a, b = _runs(tmp_path)
    made = create_study("s2", [a], new_token=plain_token, studies_dir=str(tmp_path / "st"), items=3,
                        physicians=3, raters_per_answer=3)
    db = StudyDB(made.path)
    rater = db.raters()[0]["id"]
    task = db.task_at(rater, 0)
    assert db.save_rating(task.id, "k1", {"consensus": "aligned with consensus"}) is True
    assert db.save_rating(task.id, "k1", {"consensus": "opposed to consensus"}) is False  # double submit
    assert db.rating(task.id)["choices"] == {"consensus": "aligned with consensus"}
    assert db.save_rating(task.id, "k2", {"consensus": "no consensus exists"}) is True  # went back, changed
    rows = db.rating_rows()
    assert len(rows) == 1 and rows[0]["revisions"] == 2 and rows[0]["choices"]["consensus"] == "no consensus exists"
    assert db.first_open(rater) == 1
    other = StudyDB(made.path)  # another connection sees the committed rating at once
    assert other.rating(task.id) is not None
    with pytest.raises(sqlite3.IntegrityError):
        db.conn.execute("INSERT INTO ratings (task_id, submit_key, choices, saved_at) VALUES (?, 'k9', '{}', 0)",
                        (task.id,))
