"""A disk that fills up during a run: the message names the first file that could not be written.

The failure is injected where the store opens files (``evalkit.core.store.open``), so the real runner,
client and loopback server run as they do; only the disk is a stand-in.
"""

import builtins
import errno
import os

from click.testing import CliRunner

import evalkit.core.store as store
from evalkit.cli import main
from evalkit.core.store import iter_samples
from tests.conftest import write_items


class FullDisk:
    """``open`` as it behaves on a disk with BUDGET bytes left: a write past it fails with ENOSPC
    (and so does every write after), naming no file, as a write on an open file does."""

    def __init__(self, budget: int, *, fills_at: str | None = None):
        self.left = budget
        self.fills_at = fills_at  # with a file name: the budget applies from the first write to that file
        self.failed: list[str] = []

    def open(self, path, mode="r", *args, **kwargs):
        fh = builtins.open(path, mode, *args, **kwargs)
        if os.path.basename(str(path)) == self.fills_at:
            self.fills_at = None
        return fh if set(mode) <= {"r", "b", "t"} or self.fills_at else _Filling(fh, self, str(path))


class _Filling:
    def __init__(self, fh, disk: FullDisk, path: str):
        self._fh, self._disk, self._path = fh, disk, path

    def write(self, data):
        if len(data) > self._disk.left:
            self._disk.left = 0
            self._disk.failed.append(os.path.basename(self._path))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._disk.left -= len(data)
        return self._fh.write(data)

    def __getattr__(self, name):
        return getattr(self._fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._fh.close()


def test_a_full_disk_names_the_first_file_that_failed_and_what_was_kept(tmp_path, loopback, monkeypatch):
    data = write_items(tmp_path / "d.jsonl", 200)
    srv = loopback()
    args = ["run", "--eval-file", str(data), "--endpoint", srv.url, "--results-dir", str(tmp_path / "results"),
            "--run-name", "r", "--quiet", "--concurrency", "4"]
    disk = FullDisk(40_000)
    monkeypatch.setattr(store, "open", disk.open, raising=False)
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 1, res.output
    samples = tmp_path / "results" / "loopback-model" / "r" / "samples.jsonl"
    kept = len(list(iter_samples(samples)))
    assert 0 < kept < 200
    assert f"{samples}: No space left on device; kept {kept} of 200 answered samples" in res.output
    assert "summary.json and manifest.json could not be updated either" in res.output
    assert "results: No space" not in res.output and "Traceback" not in res.output
    assert not list(samples.parent.glob("*.tmp"))
    # samples.jsonl failed first; the summary and manifest written after it failed too.
    assert disk.failed[0] == "samples.jsonl" and disk.failed[-2:] == ["summary.json.tmp", "manifest.json.tmp"]

    monkeypatch.undo()  # space is freed: the same command resumes and completes
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    ids = [s["id"] for s in iter_samples(samples)]
    assert len(ids) == 200 == len(set(ids))


def test_a_disk_full_at_the_summary_names_the_summary_not_results(tmp_path, loopback, monkeypatch):
    data = write_items(tmp_path / "d.jsonl", 5)
    srv = loopback()
    monkeypatch.setattr(store, "open", FullDisk(0, fills_at="summary.json.tmp").open, raising=False)
    res = CliRunner().invoke(main, ["run", "--eval-file", str(data), "--endpoint", srv.url, "--quiet",
                                    "--results-dir", str(tmp_path / "results"), "--run-name", "r"])
    assert res.exit_code == 1, res.output
    run_dir = tmp_path / "results" / "loopback-model" / "r"
    assert f"{run_dir / 'summary.json'}: No space left on device; kept 5 of 5" in res.output
    assert "results: No space" not in res.output and not list(run_dir.glob("*.tmp"))
