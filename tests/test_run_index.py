"""The leaderboard's index of finished runs: the same figures with it as without, whatever its state."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from evalkit.cli import main
from evalkit.results.leaderboard import build_leaderboard, find_runs, leaderboard_json
from evalkit.results.run_index import INDEX_FILE, IndexedRun, load_runs_indexed
from tests.runfactory import make_sample, verdict_samples, write_run, write_samples

DATASETS = ("medqa", "pubmedqa")


def _manifest(tokens=256, status="complete", **extra):
    return {"generation": {"max_new_tokens": tokens, "temperature": 0.0, "top_p": 1.0, "seed": None},
            "strategy": "single", "samples": 1, "evalkit_version": "0.1.0", "prompt_sha256": "p" * 64,
            "status": status, "scoring": {"metrics": {"judge": {"name": "mean"}}}, **extra}


def _scored(dataset, verdicts, judge, *, stamp="fp-1"):
    """Lines with named scores: the choice verdict and a numeric judge axis (None: not scored)."""
    out = []
    for i, (v, j) in enumerate(zip(verdicts, judge)):
        s = make_sample(f"{dataset}-{i}", dataset, correct=v)
        s["scores"] = {"correct": {"value": v, "answer": "A", "meta": {"method": "answer_is"}},
                       "judge": {"value": j, "meta": {"weight": 1 + i % 2}}}
        s["scored_with"] = stamp
        out.append(s)
    return out


@pytest.fixture
def results(tmp_path):
    root = tmp_path / "results"
    for d in DATASETS:
        write_run(root, f"a-{d}", verdict_samples(d, [True] * 7 + [False] * 3), task="a", model="a",
                  extra_manifest=_manifest())
        # retried failures (an error line then a success), an index-1 sample, a failure left in place
        samples = verdict_samples(d, [True] * 5 + [False] * 5)
        samples += [make_sample(f"{d}-3", d, error="timeout"), make_sample(f"{d}-9", d, correct=True, index=1),
                    make_sample(f"{d}-10", d, error="HTTP 500")]
        samples.insert(0, make_sample(f"{d}-0", d, error="first try failed"))
        write_run(root, f"b-{d}", samples, task="b", model="b", extra_manifest=_manifest())
        write_run(root, f"c-{d}", _scored(d, [True, False, True, True], [0.5, 1.0, None, 0.25]), task="c",
                  model="c", extra_manifest=_manifest(tokens=96))
    write_run(root, "legacy", verdict_samples("medqa", [True, False, True]), task="old", model="old", manifest=False)
    write_run(root, "killed", verdict_samples("medqa", [True] * 2), task="k", model="k",
              extra_manifest=_manifest(status="interrupted"))
    write_samples(root / "e" / "empty" / "samples.jsonl", [])
    return root


def _json(root, **kw):
    return leaderboard_json(build_leaderboard(root, n_resamples=200, **kw))


def _both(root, score="correct"):
    plain = _json(root, score=score, index=False)
    return plain, _json(root, score=score)


@pytest.mark.parametrize("score", ["correct", "judge"])
def test_cold_and_warm_index_give_the_figures_of_the_plain_read(results, score):
    plain = _json(results, score=score, index=False)
    assert not (results / INDEX_FILE).exists()  # --no-index leaves no index behind
    assert _json(results, score=score) == plain  # cold: builds the index
    assert (results / INDEX_FILE).exists()
    runs, _ = load_runs_indexed(results, find_runs(results))
    indexed = {r.name for r in runs if isinstance(r, IndexedRun)}
    assert "a-medqa" in indexed and "c-pubmedqa" in indexed and "legacy" in indexed
    assert "killed" not in indexed and "empty" not in indexed  # partial and empty runs are read from disk
    assert _json(results, score=score) == plain  # warm


def test_a_changed_run_is_read_again(results):
    _json(results)
    run_dir = write_run(results, "a-medqa", verdict_samples("medqa", [False] * 10), task="a", model="a",
                        extra_manifest=_manifest())
    st = (run_dir / "samples.jsonl").stat()
    os.utime(run_dir / "samples.jsonl", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    plain, indexed = _both(results)
    assert indexed == plain
    row_a = next(r for r in json.loads(indexed)["rows"] if r["model"] == "a")
    assert row_a["cells"]["medqa"]["accuracy"] == 0.0  # the new samples, not the cached 70%


def test_a_run_that_becomes_partial_and_a_deleted_run_drop_out(results):
    _json(results)
    manifest = results / "b" / "b-pubmedqa" / "manifest.json"
    manifest.write_text(json.dumps(_manifest(status="running")))
    for f in (results / "a" / "a-pubmedqa").iterdir():
        f.unlink()
    (results / "a" / "a-pubmedqa").rmdir()
    plain, indexed = _both(results)
    assert indexed == plain
    assert "a-pubmedqa" not in indexed
    db = sqlite3.connect(results / INDEX_FILE)
    keys = {k for (k,) in db.execute("SELECT key FROM runs")}
    assert "a/a-pubmedqa" not in keys and "a/a-medqa" in keys


@pytest.mark.parametrize("damage", [b"not a database at all" * 100, b""])
def test_a_corrupt_index_file_is_rebuilt(results, damage):
    plain = _json(results, index=False)
    _json(results)
    (results / INDEX_FILE).write_bytes(damage)
    assert _json(results) == plain
    assert _json(results) == plain
    db = sqlite3.connect(results / INDEX_FILE)
    assert db.execute("SELECT count(*) FROM runs").fetchone()[0] > 0


def test_a_damaged_manifest_is_skipped_the_same_way(results):
    _json(results)
    (results / "c" / "c-medqa" / "manifest.json").write_text("{torn")
    plain, indexed = _both(results)
    assert indexed == plain and "c-medqa" in json.dumps(json.loads(plain)["notes"])


def test_no_index_flag_and_env_bypass_the_index(results, monkeypatch):
    out = CliRunner().invoke(main, ["leaderboard", str(results), "--format", "json", "--no-index",
                                    "--resamples", "200"])
    assert out.exit_code == 0, out.output
    assert not (results / INDEX_FILE).exists()
    monkeypatch.setenv("EVALKIT_NO_INDEX", "1")
    assert _json(results) == out.output
    assert not (results / INDEX_FILE).exists()
    monkeypatch.delenv("EVALKIT_NO_INDEX")
    warm = CliRunner().invoke(main, ["leaderboard", str(results), "--format", "json", "--resamples", "200"])
    assert warm.exit_code == 0 and warm.output == out.output
    assert (results / INDEX_FILE).exists()


def test_a_read_only_results_folder_reads_without_an_index(results):
    plain = _json(results, index=False)
    if os.geteuid() == 0:
        pytest.skip("root writes to read-only folders")
    results.chmod(0o555)
    try:
        assert _json(results) == plain
        assert not (results / INDEX_FILE).exists()
    finally:
        results.chmod(0o755)


def test_index_keys_are_relative_so_a_moved_folder_stays_warm(results, tmp_path):
    _json(results)
    moved = tmp_path / "moved"
    results.rename(moved)
    runs, _ = load_runs_indexed(moved, find_runs(moved))
    assert any(isinstance(r, IndexedRun) for r in runs)
    assert all(Path(r.path).is_relative_to(moved) for r in runs)


def test_concurrent_leaderboards_on_a_cold_index_agree_and_leave_it_whole(results):
    from concurrent.futures import ThreadPoolExecutor

    plain = _json(results, index=False)
    with ThreadPoolExecutor(4) as pool:
        outputs = list(pool.map(lambda _: _json(results), range(8)))
    assert outputs == [plain] * 8
    db = sqlite3.connect(results / INDEX_FILE)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert _json(results) == plain


def test_a_run_directory_given_as_the_folder_gets_no_index_file(results):
    run_dir = results / "a" / "a-medqa"
    assert _json(run_dir) == _json(run_dir, index=False)
    assert not (run_dir / INDEX_FILE).exists()


def test_an_index_that_cannot_be_opened_or_removed_means_reading_from_disk(results):
    plain = _json(results, index=False)
    (results / INDEX_FILE).mkdir()  # neither a database nor a file that can be replaced
    assert _json(results) == plain
    assert (results / INDEX_FILE).is_dir()
