"""Progress where stdout is a log file (nohup, Slurm, CI): plain lines at a steady interval, flushed."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import time

from evalkit.cli.progress import ProgressLines, progress_line
from evalkit.run.runner import RunProgress
from tests.conftest import ROOT, write_items

LINE = re.compile(r"^progress (\d+)/(\d+) \(([\d.]+)%\) \| ([\d.]+) req/s \| (\d+) tok/s \| errors (\d+) \| "
                  r"retries (\d+) \| elapsed \d+:\d\d:\d\d \| eta (\S+)$")


def test_progress_line_counts_rates_and_eta():
    p = RunProgress(total=100, resumed=20, done=30, errors=2, retries=3, requests=40, completion_tokens=6000,
                    started=0.0)
    line = progress_line(p, 10.0)
    m = LINE.match(line)
    assert m, line
    assert m.groups() == ("50", "100", "50.0", "4.0", "600", "2", "3", "0:00:17")  # 50 left at 3 items/s
    assert progress_line(RunProgress(total=5, started=0.0), 1.0).endswith("eta ?")  # nothing done yet
    assert progress_line(RunProgress(total=5, done=5, started=0.0), 2.0, final=True).startswith("done 5/5 (100.0%)")
    assert progress_line(RunProgress(total=5, done=2, started=0.0), 2.0, final=True).startswith("stopped 2/5")


def test_progress_lines_come_at_the_interval_and_end_with_a_final_line():
    p = RunProgress(total=10)
    out = io.StringIO()
    lines = ProgressLines(p, out, interval_s=0.05)
    lines.begin()
    p.done = 4
    deadline = time.monotonic() + 10
    while out.getvalue().count("progress 4/10") < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    p.done = 10
    lines.close()
    text = out.getvalue().splitlines()
    assert text[0].startswith("progress 0/10") and text[-1].startswith("done 10/10")
    assert sum(ln.startswith("progress 4/10") for ln in text) >= 2  # steady lines while nothing changes


def test_a_run_with_stdout_in_a_file_writes_progress_lines_while_it_runs(tmp_path, loopback):
    srv = loopback("--delay-s", "0.25")
    items = write_items(tmp_path / "items.jsonl", 24)
    log = tmp_path / "run.log"
    cmd = [sys.executable, "-m", "evalkit", "run", "--eval-file", str(items), "--endpoint", srv.url,
           "--concurrency", "2", "--progress-interval", "0.3", "--results-dir", str(tmp_path / "results")]
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.DEVNULL, cwd=ROOT)
    seen_while_running: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            seen_while_running = [ln for ln in log.read_text().splitlines() if LINE.match(ln)]
            if any(0 < int(LINE.match(ln).group(1)) < 24 for ln in seen_while_running):
                break
            time.sleep(0.05)
        still_running = proc.poll() is None
    finally:
        rc = proc.wait(timeout=120)
    assert still_running, "the run ended before a progress line with some items done appeared"
    assert any(0 < int(LINE.match(ln).group(1)) < 24 for ln in seen_while_running), seen_while_running
    assert rc == 0
    text = log.read_text()
    assert "done 24/24 (100.0%)" in text
    assert text.index("done 24/24") < text.index("accuracy")  # then the end-of-run table
