"""Tasks: the unit of an evaluation, built from registry rows and suites, run by ``api.evaluate``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit import api
from evalkit.config import GenerationParams, RunConfig
from evalkit.run.plan import plan_runs
from evalkit.run.tasks import Task, TaskError, from_benchmark, from_suite
from tests.conftest import write_items

SUITE_FILES = {"medbullets_op4": "medbullets_op4.jsonl", "medbullets_op5": "medbullets_op5.jsonl",
               "medxpertqa": "MedXpertQA_test.jsonl", "medqa": "medqa_test.jsonl",
               "medmcqa": "medxpertqa_repo/medmcqa_input.jsonl"}


def small_suite_data(root: Path) -> Path:
    """A data folder holding the medreason suite's files, each a few items written here (not the real data)."""
    for i, (name, rel) in enumerate(SUITE_FILES.items()):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        write_items(path, 2 + i, start=10 * i)
    folder = root / "pubmedqa"
    folder.mkdir()
    pqal = {"101": {"QUESTION": "Does X help?", "CONTEXTS": ["Background.", "Results."], "final_decision": "yes"},
            "102": {"QUESTION": "Is Y safe?", "CONTEXTS": ["Only one part."], "final_decision": "maybe"}}
    (folder / "ori_pqal.json").write_text(json.dumps(pqal, indent=1))
    (folder / "test_ground_truth.json").write_text('{"101": "yes", "102": "no"}\n')
    return root


def handle_for(lb) -> api.ServerHandle:
    """A handle for a loopback double, as ``evalkit serve`` would record one."""
    return api.ServerHandle(name="lb", backend="llamacpp", pid=lb.proc.pid, pgid=lb.proc.pid, host="127.0.0.1",
                            port=lb.port, model="loopback-model", command=[], log_path="", started_at="")


def test_a_task_is_named_by_its_benchmark_or_its_file(tmp_path):
    assert Task("medqa").name == "medqa"
    assert Task(str(tmp_path / "mine.jsonl")).name == "mine"
    assert Task(str(tmp_path / "medqa_test.jsonl")).name == "medqa"  # a registered file keeps its name
    assert from_benchmark("pubmedqa").data == "pubmedqa"
    from evalkit.data.registry import benchmarks

    rows = [from_benchmark(b, prompt="cot") for b in benchmarks()]
    assert rows[0].name == benchmarks()[0].name and {t.prompt for t in rows} == {"cot"}
    with pytest.raises(TaskError, match="unknown benchmark 'nope'"):
        from_benchmark("nope")
    with pytest.raises(TaskError, match="unknown generation setting max_tokens"):
        Task("medqa", generation={"max_tokens": 5})


def test_a_suite_becomes_its_tasks_with_its_settings():
    tasks = from_suite("medreason", extra_data=["extra.jsonl"])
    assert [t.name for t in tasks] == ["medbullets_op4", "medbullets_op5", "medxpertqa", "medqa", "medmcqa",
                                       "pubmedqa", "extra"]
    assert all(t.prompt == "strict" and t.generation["max_new_tokens"] == 2000 for t in tasks)
    assert [t.name for t in tasks if t.prompt_variant == "context"] == ["pubmedqa"]


def test_tasks_differing_only_in_data_share_a_run_and_overrides_win(tmp_path):
    base = RunConfig(eval_files=[], endpoint="http://127.0.0.1:9/v1")
    a, b = Task("a.jsonl", generation={"max_new_tokens": 7, "temperature": 0.0}), Task("b.jsonl",
                                                                                     generation={"max_new_tokens": 7,
                                                                                                 "temperature": 0.0})
    c = Task("c.jsonl", prompt="cot")
    runs = plan_runs([a, b, c], base, {"limit": 3, "top_p": 0.5}, tmp_path)
    assert [[t.name for t in r.tasks] for r in runs] == [["a", "b"], ["c"]]
    assert runs[0].config.eval_files == ["a.jsonl", "b.jsonl"] and runs[0].config.limit == 3
    assert runs[0].config.params == GenerationParams(max_new_tokens=7, temperature=0.0, top_p=0.5)
    assert runs[1].config.prompt == "cot" and runs[1].config.params == GenerationParams(top_p=0.5)
    (run,) = plan_runs([a], base, {"max_new_tokens": 9}, tmp_path)
    assert run.config.params.max_new_tokens == 9  # an override wins over the task
    (run,) = plan_runs([a], base, {"samples": 5}, tmp_path)
    assert run.config.params.temperature is None  # a task's greedy temperature does not make 5 equal samples
    with pytest.raises(TaskError, match="unknown setting max_tokens"):
        plan_runs([a], base, {"max_tokens": 3}, tmp_path)
    (run,) = plan_runs([a, a], base, {}, tmp_path)
    assert run.config.eval_files == ["a.jsonl", "a.jsonl"]  # the runner reads it once, with a note


def test_evaluate_a_suite_from_python(tmp_path, loopback):
    data = small_suite_data(tmp_path / "data")
    lb = loopback("--record", str(tmp_path / "bodies.jsonl"))
    evaluation = api.evaluate(suite="medreason", server=handle_for(lb), data_dir=data,
                              results_dir=str(tmp_path / "results"))
    assert [r.task.name for r in evaluation] == ["medbullets_op4", "medbullets_op5", "medxpertqa", "medqa",
                                                 "medmcqa", "pubmedqa"]
    (run,) = evaluation.runs  # one run, as `evalkit run --suite` makes
    assert run.errors == 0 and run.total == 2 + 3 + 4 + 5 + 6 + 2
    assert evaluation["medqa"].summary["medqa"].n == 5 and evaluation["pubmedqa"].summary["pubmedqa"].n == 2
    manifest = json.loads((run.run_dir / "manifest.json").read_text())
    assert manifest["suite"]["name"] == "medreason"
    bodies = [json.loads(line) for line in (tmp_path / "bodies.jsonl").read_text().splitlines()]
    assert {b["max_tokens"] for b in bodies} == {2000} and {b["top_p"] for b in bodies} == {0.9}
    assert any("Only one part." in b["messages"][-1]["content"] for b in bodies)  # PubMedQA's abstract is shown
    again = api.evaluate(suite="medreason", server=handle_for(lb), data_dir=data,
                         results_dir=str(tmp_path / "results"))
    assert again.runs[0].resumed == run.total and again.runs[0].run_dir == run.run_dir  # same run, resumed
    # `evalkit run --suite` builds the same tasks: it finds this run complete and sends nothing.
    from click.testing import CliRunner

    from evalkit.cli import main

    out = CliRunner().invoke(main, ["run", "--suite", "medreason", "--data-dir", str(data), "--endpoint", lb.url,
                                    "--model", "loopback-model", "--results-dir", str(tmp_path / "results"),
                                    "--task-folder", run.run_dir.parent.name, "--quiet"])
    assert out.exit_code == 0, out.output
    assert f"0 requested, {run.total} resumed" in out.output and str(run.run_dir) in out.output


def test_evaluate_tasks_and_a_run_config_on_an_endpoint(tmp_path, loopback):
    lb = loopback()
    one = write_items(tmp_path / "one.jsonl", 3)
    two = write_items(tmp_path / "two.jsonl", 4, start=50)
    evaluation = api.evaluate([Task(str(one)), Task(str(two), prompt="cot")], endpoint=lb.url,
                              results_dir=str(tmp_path / "results"), max_new_tokens=16)
    assert [r.task.name for r in evaluation] == ["one", "two"] and len(evaluation.runs) == 2
    assert evaluation["two"].summary["two"].n == 4 and evaluation["one"].run_dir != evaluation["two"].run_dir
    result = api.evaluate(RunConfig(eval_files=[str(one)], endpoint=lb.url, results_dir=str(tmp_path / "r2")))
    assert isinstance(result, api.RunResult) and result.total == 3
    with pytest.raises(TaskError, match="nothing to evaluate"):
        api.evaluate(endpoint=lb.url)


def test_a_task_round_trips_through_its_json_form():
    """A sweep keeps its tasks as JSON (SweepSettings.tasks): scorers, options and settings come back."""
    import json

    import pytest

    from evalkit.run.tasks import Task, TaskError

    task = Task(data="/data/x.jsonl", name="x", prompt="igakuqa_strict", prompt_variant="context",
                scorers=("igakuqa", "tests.toy_scorers:ToyScorer"),
                scorer_options={"igakuqa": {"credited_to_all": "1"}},
                generation={"max_new_tokens": 64})
    doc = json.loads(json.dumps(task.to_dict()))
    assert doc["scorers"] == ["igakuqa", "tests.toy_scorers:ToyScorer"]
    assert Task.from_dict(doc) == task
    with pytest.raises(TaskError, match="unknown task field colour"):
        Task.from_dict({**doc, "colour": "red"})
