"""docs/view.md's examples run: `evalkit view` serves the folder the page names, and prints the URL it says."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import urllib.request

from tests.conftest import ROOT
from tests.runfactory import verdict_samples, write_run

PAGE = ROOT / "docs" / "view.md"


def _blocks() -> list[tuple[str, bool]]:
    """Each ```sh block of the page and whether it is marked not run."""
    text = PAGE.read_text(encoding="utf-8")
    out = []
    for match in re.finditer(r"(<!-- not run:[^\n]*-->\n)?```sh\n(.*?)```", text, re.S):
        out.append((match.group(2).strip(), match.group(1) is not None))
    return out


def test_every_example_of_the_page_is_run_here_or_marked():
    blocks = _blocks()
    assert [b for b, skipped in blocks if not skipped] == ["evalkit view results --port 8800"]
    assert all(b.startswith("python -m bench.") for b, skipped in blocks if skipped)


def test_the_view_example_serves_the_folder(tmp_path):
    write_run(tmp_path / "results", "run-a", verdict_samples("medqa", [True, False]))
    (command, _), = [b for b in _blocks() if not b[1]]
    args = shlex.split(command)
    assert args[0] == "evalkit"
    args[args.index("--port") + 1] = "0"  # any free port: 8800 may be taken on a test machine
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "evalkit", *args[1:]], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        line = proc.stdout.readline()
        url = re.fullmatch(r"evalkit view of results: open (http://127\.0\.0\.1:\d+/)\n", line).group(1)
        with urllib.request.urlopen(url + "api/runs", timeout=30) as response:
            assert b"medqa/run-a" in response.read()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
