"""A study's SQLite file (the standard library's, WAL mode): what is rated, who rates what, the ratings.

Every write is its own transaction, committed before the caller is told it is saved, so the server
may be killed at any moment. A rating is keyed by its task (one rating per task; a later submit
changes it) and carries the submit key the page sent: the same submit twice saves one rating.
Tokens are never stored, only their hashes. The systems' names live here and are never sent to raters.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence
from evalkit.core.errors import InputError

STUDY_DB = "study.sqlite"  # the file of a study, inside its folder

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS systems (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, source TEXT NOT NULL,
    reference INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, qid TEXT NOT NULL UNIQUE, question TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS answers (id INTEGER PRIMARY KEY, item_id INTEGER NOT NULL REFERENCES items(id),
    system_id INTEGER NOT NULL REFERENCES systems(id), text TEXT NOT NULL, UNIQUE (item_id, system_id));
CREATE TABLE IF NOT EXISTS raters (id INTEGER PRIMARY KEY, label TEXT NOT NULL UNIQUE, pool TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE, organiser INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS tasks (id INTEGER PRIMARY KEY, rater_id INTEGER NOT NULL REFERENCES raters(id),
    position INTEGER NOT NULL, rubric TEXT NOT NULL, answer_a INTEGER NOT NULL REFERENCES answers(id),
    answer_b INTEGER REFERENCES answers(id), UNIQUE (rater_id, position));
CREATE TABLE IF NOT EXISTS ratings (task_id INTEGER PRIMARY KEY REFERENCES tasks(id), submit_key TEXT NOT NULL UNIQUE,
    choices TEXT NOT NULL, comment TEXT NOT NULL DEFAULT '', cannot_rate TEXT, opened_at REAL,
    saved_at REAL NOT NULL, revisions INTEGER NOT NULL DEFAULT 1);
CREATE TABLE IF NOT EXISTS judged (answer_a INTEGER NOT NULL, answer_b INTEGER, rubric TEXT NOT NULL,
    choices TEXT NOT NULL, UNIQUE (answer_a, answer_b, rubric));
"""


class StudyError(InputError):
    """A study that does not exist, already exists, or cannot be used as asked (the message says which)."""


@dataclass(frozen=True)
class TaskView:
    """One task as its rater's page needs it: nothing here names a system."""

    id: int
    position: int
    rubric: str
    question: str
    answers: tuple[str, ...]
    rating: dict[str, Any] | None


def connect(path: str | Path, *, fsync: bool = False) -> sqlite3.Connection:
    """An open connection to the study file PATH, WAL mode, foreign keys on, waiting on a busy lock.

    A commit is in the file (the WAL) before it returns, so a killed server loses nothing it replied
    about. FSYNC also waits for the disk at each commit (synchronous=FULL), which survives a power cut
    too, at about 8 ms a save on this machine's disk."""
    conn = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.row_factory = sqlite3.Row
    return conn


class StudyDB:
    """The study file's reads and writes. One instance per process; each call is a short transaction."""

    def __init__(self, path: str | Path, *, create: bool = False, fsync: bool = False) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise StudyError(f"{self.path}: no study here (create it with evalkit study create)")
        self.conn = connect(self.path, fsync=fsync)
        if create:
            self.conn.executescript(SCHEMA)

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def transaction(self) -> "_Tx":
        """``with db.transaction():`` one IMMEDIATE transaction, committed at the end, rolled back on error."""
        return _Tx(self.conn)

    # ------------------------------------------------------------ creation
    def set_meta(self, key: str, value: Any) -> None:
        """Store VALUE (JSON) under KEY."""
        self.conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def meta(self, key: str, default: Any = None) -> Any:
        """The value stored under KEY, else DEFAULT."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def add_system(self, name: str, source: str, *, reference: bool = False) -> int:
        """A system (a run, or the reference answers); its id."""
        return self.conn.execute("INSERT INTO systems (name, source, reference) VALUES (?, ?, ?)",
                                 (name, source, int(reference))).lastrowid

    def add_item(self, qid: str, question: str) -> int:
        """A question; its id."""
        return self.conn.execute("INSERT INTO items (qid, question) VALUES (?, ?)", (qid, question)).lastrowid

    def add_answer(self, item_id: int, system_id: int, text: str) -> int:
        """One system's answer to one item; its id."""
        return self.conn.execute("INSERT INTO answers (item_id, system_id, text) VALUES (?, ?, ?)",
                                 (item_id, system_id, text)).lastrowid

    def add_rater(self, label: str, pool: str, token_hash: str, *, organiser: bool = False) -> int:
        """A rater (or the organiser) known by the hash of their token; their id."""
        return self.conn.execute("INSERT INTO raters (label, pool, token_hash, organiser) VALUES (?, ?, ?, ?)",
                                 (label, pool, token_hash, int(organiser))).lastrowid

    def add_task(self, rater_id: int, position: int, rubric: str, answers: Sequence[int]) -> int:
        """One unit on a rater's list (answers as shown, left first)."""
        b = answers[1] if len(answers) > 1 else None
        return self.conn.execute("INSERT INTO tasks (rater_id, position, rubric, answer_a, answer_b) "
                                 "VALUES (?, ?, ?, ?, ?)", (rater_id, position, rubric, answers[0], b)).lastrowid

    # ------------------------------------------------------------ raters
    def rater_by_hash(self, token_hash: str) -> sqlite3.Row | None:
        """The rater row whose token hashes to TOKEN_HASH (None: no such rater)."""
        return self.conn.execute("SELECT * FROM raters WHERE token_hash = ?", (token_hash,)).fetchone()

    def raters(self) -> list[sqlite3.Row]:
        """Every rater (organiser excluded), in creation order."""
        return self.conn.execute("SELECT * FROM raters WHERE organiser = 0 ORDER BY id").fetchall()

    def set_token_hash(self, rater_id: int, token_hash: str) -> None:
        """Replace a rater's token (a new invitation; the old link stops working)."""
        with self.transaction():
            self.conn.execute("UPDATE raters SET token_hash = ? WHERE id = ?", (token_hash, rater_id))

    def task_count(self, rater_id: int) -> int:
        """How many tasks RATER_ID has."""
        return self.conn.execute("SELECT COUNT(*) FROM tasks WHERE rater_id = ?", (rater_id,)).fetchone()[0]

    def done_count(self, rater_id: int) -> int:
        """How many of RATER_ID's tasks have a rating."""
        return self.conn.execute("SELECT COUNT(*) FROM ratings JOIN tasks ON tasks.id = ratings.task_id "
                                 "WHERE rater_id = ?", (rater_id,)).fetchone()[0]

    def first_open(self, rater_id: int) -> int:
        """The position of RATER_ID's first task without a rating (= the task count when all are done)."""
        row = self.conn.execute("SELECT MIN(position) FROM tasks LEFT JOIN ratings ON ratings.task_id = tasks.id "
                                "WHERE rater_id = ? AND ratings.task_id IS NULL", (rater_id,)).fetchone()
        return self.task_count(rater_id) if row[0] is None else int(row[0])

    def task_at(self, rater_id: int, position: int) -> TaskView | None:
        """RATER_ID's task at POSITION (None when they have none there): only their own tasks are reachable."""
        row = self.conn.execute(
            "SELECT tasks.id, tasks.position, tasks.rubric, tasks.answer_a, tasks.answer_b, items.question "
            "FROM tasks JOIN answers ON answers.id = tasks.answer_a JOIN items ON items.id = answers.item_id "
            "WHERE tasks.rater_id = ? AND tasks.position = ?", (rater_id, position)).fetchone()
        if row is None:
            return None
        ids = [row["answer_a"]] + ([row["answer_b"]] if row["answer_b"] is not None else [])
        texts = tuple(self.conn.execute("SELECT text FROM answers WHERE id = ?", (i,)).fetchone()[0] for i in ids)
        return TaskView(id=row["id"], position=row["position"], rubric=row["rubric"], question=row["question"],
                        answers=texts, rating=self.rating(row["id"]))

    def rating(self, task_id: int) -> dict[str, Any] | None:
        """The saved rating of TASK_ID: choices, comment, cannot_rate, submit_key (None: not rated)."""
        row = self.conn.execute("SELECT * FROM ratings WHERE task_id = ?", (task_id,)).fetchone()
        if row is None:
            return None
        return {"choices": json.loads(row["choices"]), "comment": row["comment"], "cannot_rate": row["cannot_rate"],
                "submit_key": row["submit_key"], "saved_at": row["saved_at"], "revisions": row["revisions"]}

    def save_rating(self, task_id: int, submit_key: str, choices: dict[str, str], *, comment: str = "",
                    cannot_rate: str | None = None, opened_at: float | None = None) -> bool:
        """Save (or change) the rating of TASK_ID, committed before returning. A SUBMIT_KEY already saved
        is the same submit again: nothing changes, and the answer is False (True: this call wrote)."""
        with self.transaction():
            if self.conn.execute("SELECT 1 FROM ratings WHERE submit_key = ?", (submit_key,)).fetchone():
                return False
            self.conn.execute(
                "INSERT INTO ratings (task_id, submit_key, choices, comment, cannot_rate, opened_at, saved_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (task_id) DO UPDATE SET submit_key = excluded.submit_key, "
                "choices = excluded.choices, comment = excluded.comment, cannot_rate = excluded.cannot_rate, "
                "saved_at = excluded.saved_at, revisions = ratings.revisions + 1",
                (task_id, submit_key, json.dumps(choices, sort_keys=True), comment, cannot_rate, opened_at,
                 time.time()))
        return True

    # ------------------------------------------------------------ what the report and export read
    def rating_rows(self) -> list[dict[str, Any]]:
        """Every saved rating with what it is of (systems named: for the organiser and the report only)."""
        rows = self.conn.execute(
            "SELECT ratings.*, tasks.rater_id, tasks.position, tasks.rubric, raters.label AS rater, raters.pool, "
            "tasks.answer_a, tasks.answer_b, items.qid, sa.name AS system_a, sb.name AS system_b "
            "FROM ratings JOIN tasks ON tasks.id = ratings.task_id JOIN raters ON raters.id = tasks.rater_id "
            "JOIN answers aa ON aa.id = tasks.answer_a JOIN items ON items.id = aa.item_id "
            "JOIN systems sa ON sa.id = aa.system_id LEFT JOIN answers ab ON ab.id = tasks.answer_b "
            "LEFT JOIN systems sb ON sb.id = ab.system_id ORDER BY ratings.task_id").fetchall()
        out = []
        for r in rows:
            d = dict(r)
            d["choices"] = json.loads(d["choices"])
            out.append(d)
        return out

    def answer_rows(self) -> list[dict[str, Any]]:
        """Every answer with its item and system."""
        return [dict(r) for r in self.conn.execute(
            "SELECT answers.id, answers.text, items.qid, items.question, systems.name AS system, systems.reference "
            "FROM answers JOIN items ON items.id = answers.item_id JOIN systems ON systems.id = answers.system_id "
            "ORDER BY answers.id")]

    def systems(self) -> list[dict[str, Any]]:
        """Every system, in creation order."""
        return [dict(r) for r in self.conn.execute("SELECT * FROM systems ORDER BY id")]

    def save_judged(self, answers: Sequence[int], rubric: str, choices: dict[str, str]) -> None:
        """The model judge's choices for one unit (replacing an earlier judgement)."""
        b = answers[1] if len(answers) > 1 else None
        with self.transaction():
            self.conn.execute("DELETE FROM judged WHERE answer_a = ? AND answer_b IS ? AND rubric = ?",
                              (answers[0], b, rubric))
            self.conn.execute("INSERT INTO judged VALUES (?, ?, ?, ?)", (answers[0], b, rubric, json.dumps(choices)))

    def judged(self) -> list[dict[str, Any]]:
        """The model judge's choices, one row per unit."""
        return [dict(r) | {"choices": json.loads(r["choices"])} for r in self.conn.execute("SELECT * FROM judged")]


class _Tx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")


def iter_ratings(path: str | Path) -> Iterator[dict[str, Any]]:
    """The saved ratings of the study file PATH (opened and closed here)."""
    db = StudyDB(path)
    with closing(db.conn):
        yield from db.rating_rows()


def study_progress(path: str | Path) -> dict[str, Any]:
    """A study's items, raters, tasks, ratings made and whether it is closed, read without writing
    (``evalkit view`` lists studies this way while their servers write)."""
    conn = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True, timeout=5)
    try:
        def count(sql: str) -> int:
            return int(conn.execute(sql).fetchone()[0])

        closed = conn.execute("SELECT value FROM meta WHERE key = 'closed'").fetchone()
        return {"items": count("SELECT COUNT(*) FROM items"),
                "raters": count("SELECT COUNT(*) FROM raters WHERE organiser = 0"),
                "tasks": count("SELECT COUNT(*) FROM tasks"), "ratings": count("SELECT COUNT(*) FROM ratings"),
                "closed": bool(json.loads(closed[0])) if closed else False}
    finally:
        conn.close()
