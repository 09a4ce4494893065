"""The run planning layer (issue 30): config.py is data; a task is resolved once and executed by the runner."""

from __future__ import annotations

import ast
import collections
import json

import pytest

from evalkit import api
from evalkit.config import RunConfig, SweepSettings
from evalkit.data import registry
from evalkit.data.prompts import PromptTemplate
from evalkit.run.plan import config_secrets, plan_runs, prepare_run, resolve_task
from evalkit.run.tasks import Task, TaskError
from tests.conftest import ROOT, write_items


def test_config_imports_nothing_of_evalkit():
    tree = ast.parse((ROOT / "evalkit" / "config.py").read_text(encoding="utf-8"))
    found = [n.module if isinstance(n, ast.ImportFrom) else a.name for n in ast.walk(tree)
             if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names]
    assert not [m for m in found if m and m.split(".")[0] == "evalkit"]


@pytest.fixture
def counted(monkeypatch):
    """Count readings of the registry table (every lookup reads it through registry_path) and
    templates parsed, by name."""
    reads, parsed = collections.Counter(), collections.Counter()
    path = registry.registry_path

    def reading():
        reads["registry"] += 1
        return path()

    monkeypatch.setattr(registry, "registry_path", reading)
    from_text = PromptTemplate.from_text.__func__

    def parsing(cls, text, **kw):
        parsed[kw.get("name")] += 1
        return from_text(cls, text, **kw)

    monkeypatch.setattr(PromptTemplate, "from_text", classmethod(parsing))
    return reads, parsed


def test_one_evaluation_of_two_files_reads_the_registry_once_per_task_and_the_template_once(
        tmp_path, loopback, counted):
    reads, parsed = counted
    lb = loopback()
    one = write_items(tmp_path / "one.jsonl", 3)
    two = write_items(tmp_path / "medqa_test.jsonl", 4, start=50)  # a registered file's name: its row is used
    evaluation = api.evaluate([Task(str(one)), Task(str(two))], endpoint=lb.url,
                              results_dir=str(tmp_path / "results"), max_new_tokens=16)
    assert reads["registry"] == 2  # once per task, Task() included (it names the task)
    assert parsed == {"strict": 1, "strict_context": 1}  # the run's template and its context variant, once
    (run,) = evaluation.runs
    assert [r.task.name for r in evaluation] == ["one", "medqa"]
    assert evaluation["one"].summary["one"].n == 3 and evaluation["medqa"].summary["medqa"].n == 4
    assert run.task_datasets == [["one"], ["medqa"]]
    data = json.loads((run.run_dir / "manifest.json").read_text())["data"]
    assert [d["path"] for d in data] == [str(one), str(two)]


def test_a_run_config_reads_the_registry_once_per_file(tmp_path, loopback, counted):
    reads, parsed = counted
    lb = loopback()
    files = [str(write_items(tmp_path / f"f{i}.jsonl", 2, start=10 * i)) for i in range(3)]
    result = api.evaluate(RunConfig(eval_files=files, endpoint=lb.url, results_dir=str(tmp_path / "r")))
    assert reads["registry"] == 3 and parsed["strict"] == 1
    assert result.task_datasets == [["f0"], ["f1"], ["f2"]]


def test_a_task_resolves_to_its_file_row_adapter_and_settings(tmp_path):
    base = RunConfig(eval_files=[], endpoint="http://127.0.0.1:9/v1")
    named = resolve_task(Task("igakuqa_112_a"), base, {}, tmp_path)
    assert named.path == tmp_path / "igakuqa" / "2018" / "112-A.jsonl"
    assert named.benchmark.name == "igakuqa_112_a" and named.config.prompt == "igakuqa_strict"
    assert named.config.eval_files == [str(named.path)]
    mine = resolve_task(Task(str(tmp_path / "mine.jsonl"), adapter="healthbench"), base, {"limit": 2}, tmp_path)
    assert mine.benchmark is None and mine.source.adapter == "healthbench" and mine.config.limit == 2


def test_a_file_given_twice_maps_both_tasks_to_its_one_reading(tmp_path, loopback):
    lb = loopback()
    one = write_items(tmp_path / "one.jsonl", 3)
    copy = tmp_path / "copy" / "one.jsonl"
    copy.parent.mkdir()
    copy.write_bytes(one.read_bytes())
    notes = []
    evaluation = api.evaluate([Task(str(one)), Task(str(one), name="again"), Task(str(copy), name="copy")],
                              endpoint=lb.url, results_dir=str(tmp_path / "r"), on_notice=notes.append)
    (run,) = evaluation.runs
    assert run.total == 3 and run.task_datasets == [["one"], ["one"], ["one"]]
    assert evaluation["again"].summary["one"].n == 3 and evaluation["copy"].summary["one"].n == 3
    assert any("more than once" in n for n in notes) and any("same content" in n for n in notes)


def test_prepare_checks_the_settings_and_the_prompt_before_any_request(tmp_path):
    base = RunConfig(eval_files=[], endpoint="http://127.0.0.1:9/v1")
    bare = tmp_path / "bare.txt"
    bare.write_text("{question}\n{options}")  # no {context}, no _pubmedqa sibling
    (run,) = plan_runs([Task("pubmedqa", prompt_variant="context")], base, {"prompt": str(bare)}, tmp_path)
    with pytest.raises(TaskError, match="shows the abstract"):
        prepare_run(run)
    (run,) = plan_runs([Task("a.jsonl")], base, {"samples": 0}, tmp_path)
    with pytest.raises(ValueError, match="must"):
        prepare_run(run)
    (run,) = plan_runs([Task("a.jsonl")], base, {"samples": 3}, tmp_path)
    plan = prepare_run(run)
    assert plan.config.params.temperature == 0.7 and plan.template.name == "strict" and plan.refine is None


def test_secrets_of_a_config():
    config = RunConfig(eval_files=[], api_key="k1", scorer_options={"judge": {"api_key": "k2", "model": "m"}})
    assert config_secrets(config) == ["k1", "k2"]


def test_a_sweep_name_is_checked_by_the_sweep(tmp_path):
    from evalkit.sweep.state import SweepError, SweepState, check_settings

    settings = SweepSettings(name="bad name!", sweep_dir=str(tmp_path / "s"), results_dir=str(tmp_path / "r"),
                             eval_files=[])  # the settings type holds it; the sweep refuses it
    with pytest.raises(SweepError, match="sweep name 'bad name!'"):
        check_settings(settings)
    with pytest.raises(SweepError, match="sweep name"):
        SweepState.open(settings)
    assert not (tmp_path / "s").exists()
