"""How the run directories beside this file were made: with evalkit at main 3620882, before issue 21.

Run from a checkout of that commit (``git archive 3620882 | tar -x -C DIR``)::

    PYTHONPATH=DIR python DIR/../generate.py OUT   # OUT: this folder

It serves the loopback double (answers "The answer is X.") and a judge double, runs ``evalkit run``
five times and stores, with the runs, the figures that code gave: report, gate, leaderboard, and the
verdicts of ``evalkit score``. tests/test_legacy_runs.py checks today's code against them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from evalkit.cli import main
from tests.conftest import write_items
from tests.serverproc import ServerProcess

ROOT = Path(os.environ.get("PYTHONPATH", ".")).resolve()

# HealthBench-shaped records: per record, points met / positive points = -1.5, 0.5, -1.0 (mean -2/3).
HEALTHBENCH = [
    {"prompt_id": "hb1", "prompt": [{"role": "user", "content": "I have a migraine, what should I take?"}],
     "rubrics": [{"criterion": "C1 recommends a dangerous dose", "points": -6},
                 {"criterion": "C2 asks about blood pressure", "points": 4}]},
    {"prompt_id": "hb2", "prompt": [{"role": "user", "content": "Is a fever of 38C in an adult serious?"}],
     "rubrics": [{"criterion": "C3 explains when to seek care", "points": 2},
                 {"criterion": "C4 mentions hydration", "points": 2}]},
    {"prompt_id": "hb3", "prompt": [{"role": "user", "content": "Can I stop my antibiotics early?"}],
     "rubrics": [{"criterion": "C5 advises finishing the course", "points": 3},
                 {"criterion": "C6 says stopping is always fine", "points": -3}]},
]
MET = ["C1", "C4", "C6"]  # the judge double says these are met


def evalkit(*args: str) -> None:
    res = CliRunner().invoke(main, list(args), catch_exceptions=False)
    if res.exit_code not in (0, 1):
        raise SystemExit(f"evalkit {' '.join(args)} failed ({res.exit_code}):\n{res.output}")


def main_(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    items = write_items(out / "v2_items.jsonl", 16)
    hb = out / "v2_healthbench.jsonl"
    hb.write_text("".join(json.dumps(r) + "\n" for r in HEALTHBENCH))
    rules = out.parent / "judge_rules.json"
    rules.write_text(json.dumps([{"contains": c, "replies": ['{"criteria_met": true}']} for c in MET]))
    answerer = ServerProcess(ROOT / "tests" / "loopback_server.py")
    judge = ServerProcess(ROOT / "tests" / "judge_server.py", "--rules", str(rules),
                          "--default", '{"criteria_met": false}')
    res = str(out / "results")
    common = ["--endpoint", answerer.url, "--results-dir", res, "--task-folder", "loopback",
              "--max-new-tokens", "16", "--quiet"]
    try:
        evalkit("run", "--eval-file", str(items), *common, "--run-name", "mcq_evalkit",
                "--scorer", "choice", "--scorer", "tests.toy_scorers:ToyScorer")
        evalkit("run", "--eval-file", str(items), *common, "--run-name", "mcq_scorer_arg",
                "--scorer", "choice", "--scorer-arg", "choice.extractor=medreason")
        evalkit("run", "--eval-file", str(items), *common, "--run-name", "mcq_extractor", "--extractor", "medreason")
        evalkit("run", "--eval-file", str(items), *common, "--run-name", "mcq_t07", "--temperature", "0.7",
                "--seed", "1", "--scorer", "choice", "--scorer", "tests.toy_scorers:ToyScorer")
        evalkit("run", "--eval-file", str(hb), "--adapter", "healthbench", *common, "--run-name", "healthbench",
                "--scorer", "judge", "--scorer-arg", "judge.rubric=healthbench",
                "--scorer-arg", f"judge.endpoint={judge.url}", "--scorer-arg", "judge.model=judge-double")
    finally:
        answerer.stop()
        judge.stop()
    rules.unlink()
    runs = Path(res) / "loopback"
    names = ["mcq_evalkit", "mcq_scorer_arg", "mcq_extractor", "mcq_t07", "healthbench"]
    evalkit("report", *(str(runs / n) for n in names), "--format", "json", "-o", str(out / "expected_report.json"))
    evalkit("gate", "--baseline", str(runs / "mcq_evalkit"), "--candidate", str(runs / "mcq_t07"),
            "--json", str(out / "expected_gate.json"))
    evalkit("gate", "--baseline", str(runs / "mcq_evalkit"), "--candidate", str(runs / "mcq_t07"),
            "--score", "letters_named", "--json", str(out / "expected_gate_numeric.json"))
    evalkit("leaderboard", str(runs), "--format", "json", "-o", str(out / "expected_leaderboard.json"))
    evalkit("score", str(runs / "mcq_evalkit"), "-o", str(out / "rescored.jsonl"))


if __name__ == "__main__":
    main_(Path(sys.argv[1]))
