"""MedAgentsBench's hard subsets: registry rows for the ten files and the medagents_hard suite."""

from __future__ import annotations

import pytest

from evalkit.data.datasets import load_dataset
from evalkit.data.registry import benchmarks, get_benchmark
from evalkit.data.suites import load_suite
from tests.conftest import SHARED

HARD = SHARED / "eval_data" / "medagents_hard"
NAMES = ["medqa", "pubmedqa", "medmcqa", "medbullets", "mmlu", "mmlu_pro", "afrimedqa", "medexqa",
         "medxpertqa_r", "medxpertqa_u"]
# The paper's model-by-task figure (fig:model_task_heatmap, "Hard" columns), as the authors' notebook
# plots/table1_performance.ipynb prints it at gersteinlab/medagents-benchmark @ f5e50b6.
PUBLISHED_HARD = {
    "GPT-4o": [35.0, 8.0, 27.0, 18.0, 28.8, 15.0, 21.9],
    "o3-mini": [52.0, 13.0, 25.0, 50.6, 34.2, 14.0, 18.8],
    "DeepSeek-R1": [47.0, 12.0, 34.0, 43.8, 41.1, 37.0, 28.1],
    "Claude-3.5-Haiku": [13.0, 12.0, 23.0, 7.9, 11.0, 11.0, 15.6],
}
needs_shared = pytest.mark.skipif(not HARD.is_dir(), reason=f"{HARD} is absent")


def test_ten_rows_pin_the_hard_files_at_one_commit():
    rows = [b for b in benchmarks() if b.name.startswith("medagents_hard_")]
    assert sorted(b.name for b in rows) == sorted(f"medagents_hard_{n}" for n in NAMES)
    assert sum(b.items for b in rows) == 894
    for b in rows:
        assert b.url.startswith("https://raw.githubusercontent.com/xk-huang/medagents-benchmark/56ca11eb1ef8")
        assert b.url.endswith("/test_hard.jsonl") and b.adapter == "mcq" and b.gold == "answer_idx"
    assert get_benchmark("medagents_hard_mmlu_pro").options == (4, 10)
    assert get_benchmark("medagents_hard_pubmedqa").options == 3


@needs_shared
@pytest.mark.parametrize("name", NAMES)
def test_each_file_loads_verified_with_its_counts(name):
    bench = get_benchmark(f"medagents_hard_{name}")
    loaded = load_dataset(SHARED / "eval_data" / bench.file)
    assert loaded.verified is True and loaded.benchmark == bench.name
    assert len(loaded.items) == bench.items
    low, high = bench.options if isinstance(bench.options, tuple) else (bench.options, bench.options)
    for item in loaded.items:
        assert low <= len(item.options) <= high
        assert item.answer_idx in item.options  # the gold letter is one of the item's own options


def test_suite_lists_the_ten_in_the_papers_column_order():
    suite = load_suite("medagents_hard")
    assert [b.name for b in suite.benchmarks] == [f"medagents_hard_{n}" for n in NAMES]
    assert [b.column for b in suite.benchmarks][:7] == ["MedQA", "PubMedQA", "MedMCQA", "MedBullets", "MMLU",
                                                         "MMLU-Pro", "AfriMedQA"]
    assert "2503.07459" in suite.title


def test_suite_carries_the_papers_hard_set_figures_for_its_ten_models():
    suite = load_suite("medagents_hard")
    assert len(suite.published) == 10
    assert "f5e50b6" in suite.published_source and "table1_performance.ipynb" in suite.published_source
    by_model = {row.model: row for row in suite.published}
    first_seven = [f"medagents_hard_{n}" for n in NAMES[:7]]
    for model, figures in PUBLISHED_HARD.items():
        assert [by_model[model].scores[name] for name in first_seven] == figures
        # the figure reports no MedExQA or MedXpertQA column, so those cells stay empty and no average is made up
        assert not any(f"medagents_hard_{n}" in by_model[model].scores for n in NAMES[7:])
        assert by_model[model].average is None


@needs_shared
def test_suite_files_resolve_under_the_shared_data_dir():
    files = load_suite("medagents_hard").files(SHARED / "eval_data")
    assert len(files) == 10 and all(f.exists() for f in files)
