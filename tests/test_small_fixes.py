"""Issue 29, item 18: the small ones. `evalkit overlap --train A B`, serve's ready line and the version of
a llama-server built without git, the truncation hint for models that do not think."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from types import SimpleNamespace

from click.testing import CliRunner

from evalkit.cli import main
from tests.test_overlap import LONG_Q, SECOND_Q


def test_overlap_takes_several_training_paths_after_one_train(tmp_path):
    bench = tmp_path / "bench.jsonl"
    bench.write_text("".join(json.dumps({"id": i, "question": q, "options": {"A": "a", "B": "b"}, "answer_idx": "A"})
                             + "\n" for i, q in (("1", LONG_Q), ("2", SECOND_Q))))
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("intro\n" + LONG_Q + "\n")
    second.write_text("more\n" + SECOND_Q + "\n")
    out = tmp_path / "overlap.jsonl"
    res = CliRunner().invoke(main, ["overlap", "--train", str(first), str(second), "--eval-file", str(bench),
                                    "-o", str(out)])
    assert res.exit_code == 0, res.output  # was: "Got unexpected extra argument"
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines[0]["overlap_header"]["train"]) == 2
    assert [x["medpalm_overlap"] for x in lines[1:]] == [True, True]  # one item found in each file


def _handle(**kw):
    return SimpleNamespace(base_url="http://127.0.0.1:8080/v1", model="m", pid=42, server_version="7.0",
                           records=lambda: [1], **kw)


def test_serve_prints_the_url_alone_only_for_a_script(capsys):
    from evalkit.cli.serve import print_ready

    print_ready(_handle(), stdout_is_terminal=True)
    out = capsys.readouterr()
    assert out.out == "" and "ready" in out.err and "http://127.0.0.1:8080/v1" in out.err
    print_ready(_handle(), stdout_is_terminal=False)  # URL=$(evalkit serve ...)
    assert capsys.readouterr().out == "http://127.0.0.1:8080/v1\n"


def _fake_server(tmp_path: Path, version_line: str) -> str:
    path = tmp_path / "llama-server"
    path.write_text(f"#!/bin/sh\necho '{version_line}' >&2\necho 'built with GNU 12.2.0 for Linux x86_64' >&2\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_a_llama_server_without_git_is_asked_its_version(tmp_path):
    from evalkit.serving.backends.llamacpp import LlamaCppBackend, binary_version

    plain = _fake_server(tmp_path, "version: 0.6.0-dev (build 0, commit unknown)")
    assert binary_version(plain) == "0.6.0-dev"
    backend = LlamaCppBackend()
    assert backend.local_version([plain, "-m", "x.gguf"], "b0-unknown") == "0.6.0-dev"  # /props told nothing
    assert backend.local_version([plain], "b6795-abc1234") is None  # /props told it: kept
    (tmp_path / "git").mkdir()
    built = _fake_server(tmp_path / "git", "version: 6795 (build 6795, commit abc1234)")
    assert binary_version(built) == "6795, build 6795, commit abc1234"
    assert binary_version(str(tmp_path / "missing")) is None


def test_the_thinking_advice_is_for_models_that_think():
    from evalkit.results.report_extras import truncation_hints

    [plain] = truncation_hints([("medqa", 10, 5, 0)], 512)
    assert "Thinking models need room" not in plain and "show no thinking" in plain
    [thinker] = truncation_hints([("medqa", 10, 5, 8)], 512)
    assert "Thinking models need room" in thinker
    [unknown] = truncation_hints([("medqa", 10, 5)])
    assert "Thinking models need room" in unknown and "show no thinking" in unknown


def test_the_end_of_run_summary_counts_outputs_that_think():
    from evalkit.run.summary import summarize

    samples = [{"id": "1", "dataset": "d", "output": "<think>hm</think>The answer is A."},
               {"id": "2", "dataset": "d", "output": "The answer is B."}]
    assert summarize(samples)["d"].thinking == 1


def test_every_bench_runs_one_way_as_a_module_from_the_root():
    """`python -m bench.NAME` from the repository root, for every bench (some only ran from inside bench/)."""
    import re
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    names = sorted(p.stem for p in (root / "bench").glob("*.py"))
    code = "import importlib\nfor n in %r: importlib.import_module('bench.' + n)" % names
    res = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300,
                         env={"PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr
    for name in (n for n in names if n.startswith("bench_")):
        text = (root / "bench" / f"{name}.py").read_text()
        assert f"python -m bench.{name}" in text and not re.search(r"python bench/bench_", text), name
    assert "-m bench.bench_leaderboard_index" in (root / "bench" / "README.md").read_text()
