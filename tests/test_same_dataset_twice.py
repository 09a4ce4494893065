"""One dataset per file: a file given twice is read once; different files that would make one dataset
(the same file name in two folders, shared item ids) are refused before any request (issue 20, item 2)."""

import json
import shutil

from evalkit.core.store import read_json
from tests.conftest import run_evalkit, write_items


def run_args(tmp_path, url, *files, extra=()):
    args = ["run", "--endpoint", url, "--results-dir", str(tmp_path / "results"), "--run-name", "r", "--quiet"]
    for f in files:
        args += ["--eval-file", str(f)]
    return [*args, *extra]


def run_dir(tmp_path):
    return tmp_path / "results" / "loopback-model" / "r"


def test_the_same_file_twice_is_one_dataset_answered_once_and_complete(tmp_path, loopback):
    srv = loopback()
    data = write_items(tmp_path / "a.jsonl", 40)
    res = run_evalkit(*run_args(tmp_path, srv.url, data, data))
    assert res.returncode == 0, res.stderr
    assert "given more than once" in res.stderr and "read once" in res.stderr
    assert srv.stats()["requests"] == 40  # not 80: no item answered twice
    summary = read_json(run_dir(tmp_path) / "summary.json")
    assert summary["complete"] is True and summary["datasets"]["a"]["n"] == 40
    manifest = read_json(run_dir(tmp_path) / "manifest.json")
    assert manifest["status"] == "complete" and manifest["total"] == 40 and len(manifest["data"]) == 1
    lines = (run_dir(tmp_path) / "samples.jsonl").read_text().splitlines()
    assert len(lines) == 40

    again = run_evalkit(*run_args(tmp_path, srv.url, data, tmp_path / "." / "a.jsonl"))  # another spelling
    assert again.returncode == 0, again.stderr
    assert "0 requested, 40 resumed" in again.stderr
    assert srv.stats()["requests"] == 40
    # The same file once is the same run (the same fingerprint): it resumes, it does not start over.
    once = run_evalkit(*run_args(tmp_path, srv.url, data))
    assert once.returncode == 0 and "0 requested, 40 resumed" in once.stderr


def test_a_copy_with_the_same_content_is_read_once(tmp_path, loopback):
    srv = loopback()
    data = write_items(tmp_path / "a.jsonl", 10)
    (tmp_path / "copy").mkdir()
    copy = shutil.copy(data, tmp_path / "copy" / "a.jsonl")
    res = run_evalkit(*run_args(tmp_path, srv.url, data, copy))
    assert res.returncode == 0, res.stderr
    assert f"{copy} has the same content as {data}" in res.stderr
    assert srv.stats()["requests"] == 10
    assert read_json(run_dir(tmp_path) / "summary.json")["complete"] is True


def test_the_same_file_name_in_two_folders_sharing_ids_is_refused_naming_both_and_an_id(tmp_path, loopback):
    srv = loopback()
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    first = write_items(tmp_path / "x" / "a.jsonl", 10)
    second = tmp_path / "y" / "a.jsonl"
    records = [json.loads(line) for line in first.read_text().splitlines()]
    for r in records:
        r["meta_info"] = "step2"  # other content, the same questions: the same (hashed) ids
    second.write_text("".join(json.dumps(r) + "\n" for r in records))
    res = run_evalkit(*run_args(tmp_path, srv.url, first, second))
    assert res.returncode == 2, res.stderr
    assert str(first) in res.stderr and str(second) in res.stderr
    assert "item id" in res.stderr and "and 9 more" in res.stderr and "nothing was sent" in res.stderr
    assert srv.stats()["requests"] == 0 and not (tmp_path / "results").exists()


def test_the_same_file_name_in_two_folders_with_other_items_is_refused(tmp_path, loopback):
    srv = loopback()
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    first = write_items(tmp_path / "x" / "a.jsonl", 5)
    second = write_items(tmp_path / "y" / "a.jsonl", 5, start=100)
    res = run_evalkit(*run_args(tmp_path, srv.url, first, second))
    assert res.returncode == 2, res.stderr
    assert str(first) in res.stderr and str(second) in res.stderr and "dataset 'a'" in res.stderr
    assert srv.stats()["requests"] == 0


def test_two_source_files_sharing_a_source_and_ids_are_refused(tmp_path, loopback):
    srv = loopback()
    record = {"id": "q1", "question": "Which?", "options": {"A": "a", "B": "b"}, "answer_idx": "A"}
    one = tmp_path / "one.json"
    two = tmp_path / "two.json"
    one.write_text(json.dumps({"medqa": [record]}))
    two.write_text(json.dumps({"medqa": [dict(record, answer_idx="B")]}))
    res = run_evalkit(*run_args(tmp_path, srv.url, one, two))
    assert res.returncode == 2, res.stderr
    assert str(one) in res.stderr and str(two) in res.stderr and "'q1'" in res.stderr
    assert srv.stats()["requests"] == 0
