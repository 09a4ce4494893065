"""Commands that read or rewrite a run directory while `evalkit run` is writing it (real processes).

A live run holds the run-directory lock: an in-place rewrite of its samples.jsonl refuses,
naming the run; read-only commands say that what they read is a partial snapshot; and a run
whose samples.jsonl was replaced under it is never reported complete.
"""

import os
import shutil

from evalkit.core.store import iter_samples, read_json
from tests.conftest import run_evalkit, write_items
from tests.test_faults import final_ok, finish, run_to_end, runner_cmd, start_runner, wait_for_lines

N = 240  # at 0.3 s a request and 2 in flight: a run of about 36 s, long enough for three CLI calls on a loaded machine


def _slow_run(tmp_path, loopback, *, lines: int):
    data = write_items(tmp_path / "d.jsonl", N)
    srv = loopback("--delay-s", "0.3")
    cmd = runner_cmd(tmp_path, srv.url, data, "--concurrency", "2")
    proc = start_runner(cmd)
    samples = tmp_path / "results" / "loopback-model" / "r" / "samples.jsonl"
    wait_for_lines(samples, lines, proc)
    return cmd, proc, samples


def test_score_in_place_on_a_live_run_refuses_naming_it_and_readers_say_partial(tmp_path, loopback):
    cmd, proc, samples = _slow_run(tmp_path, loopback, lines=10)
    run_dir = samples.parent
    before = os.stat(samples).st_ino

    rewrite = run_evalkit("score", str(run_dir), "-o", str(samples), timeout=60)
    assert rewrite.returncode == 4, rewrite.stderr
    assert f"pid {proc.pid}" in rewrite.stderr and "being written by a running evalkit run" in rewrite.stderr
    assert os.stat(samples).st_ino == before  # the file the run appends to is still the run's file

    rescored = run_evalkit("score", str(run_dir), timeout=60)  # to its own file beside the run: allowed
    assert rescored.returncode == 0, rescored.stderr
    assert "partial snapshot" in rescored.stderr and f"pid {proc.pid}" in rescored.stderr

    report = run_evalkit("report", str(run_dir), timeout=60)
    assert report.returncode == 0, report.stderr
    assert "partial snapshot" in report.stderr and f"pid {proc.pid}" in report.stderr
    assert proc.poll() is None, "the run ended before the readers ran: the test proves nothing"

    rc, _, err = finish(proc, timeout=120)
    assert rc == 0, err
    assert len(final_ok(run_dir)) == N
    summary = read_json(run_dir / "summary.json")
    assert summary["complete"] is True and summary["datasets"]["d"]["n"] == N

    after = run_evalkit("report", str(run_dir), timeout=60)  # the run is over: no note
    assert after.returncode == 0 and "partial" not in after.stderr
    in_place = run_evalkit("score", str(run_dir), "-o", str(samples), timeout=60)  # and the lock is free
    assert in_place.returncode == 0, in_place.stderr
    assert len(list(iter_samples(samples))) == N


def test_a_samples_file_replaced_under_a_live_run_is_never_reported_complete(tmp_path, loopback):
    cmd, proc, samples = _slow_run(tmp_path, loopback, lines=20)
    # What `evalkit score RUN -o RUN/samples.jsonl` used to do: write a copy, rename it over the file.
    head = b"".join(samples.read_bytes().splitlines(keepends=True)[:10])
    copy = samples.with_name("copy.tmp")
    copy.write_bytes(head)
    os.replace(copy, samples)
    rc, _, err = finish(proc, timeout=120)
    assert rc == 0, err
    on_disk = [s for s in iter_samples(samples) if not s.get("error")]
    assert len(on_disk) < N
    summary = read_json(samples.parent / "summary.json")
    manifest = read_json(samples.parent / "manifest.json")
    assert summary["complete"] is False and summary["datasets"]["d"]["n"] == len(on_disk)
    assert manifest["status"] != "complete"
    assert f"{samples} was replaced by another process" in err

    rc, _, err = run_to_end(cmd, timeout=120)  # the same command redoes what the replacement lost
    assert rc == 0, err
    assert len(final_ok(samples.parent)) == N
    assert read_json(samples.parent / "summary.json")["complete"] is True
    shutil.rmtree(samples.parent)


def test_judge_into_a_locked_run_directory_refuses_and_gate_warns_of_a_partial_snapshot(tmp_path):
    from click.testing import CliRunner

    from evalkit.cli import main
    from evalkit.results.gate import compare_runs
    from evalkit.core.lock import try_lock_run_dir
    from tests.runfactory import verdict_samples, write_run

    run_dir = write_run(tmp_path, "live", verdict_samples("d", [True, False, True]))
    other = write_run(tmp_path, "done", verdict_samples("d", [True, True, True]))
    with try_lock_run_dir(run_dir):  # this process stands for the running `evalkit run`
        judged = CliRunner().invoke(main, ["judge", str(run_dir), "--judge-endpoint", "http://127.0.0.1:9/v1",
                                           "--judge-model", "m"])
        assert judged.exit_code == 4, judged.output
        assert f"pid {os.getpid()}" in judged.output and "being written" in judged.output
        assert not (run_dir / "scores.jsonl").exists()
        ranked = CliRunner().invoke(main, ["judge", "--pairwise", str(run_dir), str(other), "--judge-endpoint",
                                           "http://127.0.0.1:9/v1", "--judge-model", "m"])
        assert ranked.exit_code == 4 and f"pid {os.getpid()}" in ranked.output
        assert not (run_dir / "pairwise.jsonl").exists()
        warned = compare_runs(other, run_dir)
        assert any("partial snapshot" in w and f"pid {os.getpid()}" in w for w in warned.warnings)
    assert not any("partial" in w for w in compare_runs(other, run_dir).warnings)
