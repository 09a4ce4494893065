"""Throughput over a run and its resume: the manifest keeps each invocation's counts (real processes)."""

import json
import signal

from evalkit.run.rundir import invocation_totals, run_invocations
from evalkit.core.store import iter_samples, read_json, write_json
from tests.conftest import run_evalkit, write_items
from tests.test_faults import finish, run_to_end, runner_cmd, start_runner, wait_for_lines

N, IN_FLIGHT = 300, 4


def report_json(run_dir) -> dict:
    res = run_evalkit("report", str(run_dir), "--format", "json", timeout=60)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)["runs"][0]


def test_a_stopped_run_and_its_resume_keep_each_invocations_counts_and_report_sums_them(tmp_path, loopback):
    data = write_items(tmp_path / "d.jsonl", N)
    srv = loopback("--delay-s", "0.05", "--fail-500", "0.05")
    cmd = runner_cmd(tmp_path, srv.url, data, "--concurrency", str(IN_FLIGHT), "--max-attempts", "10")
    proc = start_runner(cmd)
    samples = tmp_path / "results" / "loopback-model" / "r" / "samples.jsonl"
    run_dir = samples.parent
    wait_for_lines(samples, 15, proc)
    proc.send_signal(signal.SIGINT)  # stopped early: far fewer than N were sent
    rc, _, err = finish(proc, timeout=30)
    assert rc == 130, err
    kept = len(list(iter_samples(samples)))
    first = read_json(run_dir / "manifest.json")
    # "requested" is what was sent, not the N - 0 items the run had to do.
    assert kept <= first["requested"] <= kept + IN_FLIGHT
    [one] = first["invocations"]
    assert one["status"] == "interrupted" and one["sent"] == first["requested"]
    assert one["requests"] == first["requests"] >= one["sent"] and one["wall_s"] > 0

    rc, _, err = run_to_end(cmd, timeout=120)
    assert rc == 0, err
    manifest = read_json(run_dir / "manifest.json")
    earlier, last = manifest["invocations"]
    assert earlier == one  # the first invocation's record is carried over as it was
    assert last["status"] == "complete" and last["sent"] == manifest["requested"] == N - kept
    assert last["resumed"] == kept
    totals = invocation_totals(manifest)
    seen = srv.stats()
    # What the server saw is what the invocations say, over both (a Ctrl-C may cut a counted
    # request before it left: at most one per request in flight).
    assert 0 <= totals["requests"] - seen["requests"] <= IN_FLIGHT
    assert totals["retries"] > 0 and abs(totals["retries"] - seen["500"]) <= IN_FLIGHT
    assert totals["wall_s"] == one["wall_s"] + last["wall_s"]

    shown = report_json(run_dir)
    assert shown["invocations"] == 2 and shown["requests"] == totals["requests"]
    assert shown["retries"] == totals["retries"] and shown["wall_s"] == totals["wall_s"]
    assert shown["requests_per_s"] == totals["requests"] / totals["wall_s"]


def test_a_manifest_without_invocations_still_loads_and_counts_as_one_on_resume(tmp_path, loopback):
    data = write_items(tmp_path / "d.jsonl", 20)
    srv = loopback()
    cmd = runner_cmd(tmp_path, srv.url, data)
    rc, _, err = run_to_end(cmd)
    assert rc == 0, err
    run_dir = tmp_path / "results" / "loopback-model" / "r"
    old = read_json(run_dir / "manifest.json")
    del old["invocations"]  # as an earlier evalkit wrote it
    write_json(run_dir / "manifest.json", old)
    shown = report_json(run_dir)
    assert shown["invocations"] is None and shown["requests"] == 20 and shown["wall_s"] == old["wall_s"]

    rc, _, err = run_to_end(cmd)  # everything is done: nothing is sent
    assert rc == 0, err
    manifest = read_json(run_dir / "manifest.json")
    earlier, last = run_invocations(manifest)
    assert earlier["started_at"] == old["started_at"] and earlier["requests"] == old["requests"]
    assert "sent" not in earlier  # an earlier manifest's "requested" was not what it sent
    assert (last["sent"], last["requests"], manifest["requested"]) == (0, 0, 0)
    assert report_json(run_dir)["invocations"] == 2
