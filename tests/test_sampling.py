"""Sampling strategies: majority vote, refinement prompts, and multi-sample runs on the loopback double."""

from collections import Counter

import pytest
from hypothesis import given, strategies as st

from evalkit.core.records import GenerationParams, Item
from evalkit.run.runner import RunConfig, run_eval
from evalkit.run.sampling import (STRATEGY_REGISTRY, Stage, format_reasonings, get_strategy, load_refine_template,
                              register_strategy, strategy_stages)
from evalkit.scoring.choice import majority_vote
from evalkit.core.store import read_json, read_samples


def test_majority_vote_counts_and_ignores_unparsed():
    assert majority_vote(["B", None, "B", "C", None]) == ("B", {"B": 2, "C": 1})
    assert majority_vote([None, None]) == (None, {})
    assert majority_vote([]) == (None, {})


def test_majority_vote_tie_goes_to_the_first_letter_voted_for():
    assert majority_vote(["C", "A", "A", "C"])[0] == "C"
    assert majority_vote([None, "D", "B"])[0] == "D"


@given(st.lists(st.one_of(st.none(), st.sampled_from("ABCDE")), max_size=40))
def test_majority_vote_properties(letters):
    winner, votes = majority_vote(letters)
    parsed = [x for x in letters if x is not None]
    assert votes == dict(Counter(parsed))
    if not parsed:
        assert winner is None
    else:
        assert votes[winner] == max(votes.values())
        tied = {x for x, c in votes.items() if c == votes[winner]}
        assert winner == next(x for x in parsed if x in tied)


def test_refine_template_fills_reasonings_after_item_fields(tmp_path):
    tpl = tmp_path / "refine.txt"
    tpl.write_text("Q: {question}\n{options}\nSeen:\n{reasonings}\nNow answer.\n", encoding="utf-8")
    refine = load_refine_template(str(tpl))
    item = Item("1", "d", "Which {one}?", {"A": "x", "B": "y"}, "A")
    # Braces in model outputs must reach the prompt untouched, never read as fields.
    out = refine.render(item, ["<think>hidden</think>I pick {question} A", "Answer: B"])
    assert out.startswith("Q: Which {one}?\nA. x\nB. y\nSeen:\n")
    assert "Response 1:\nI pick {question} A" in out and "Response 2:\nAnswer: B" in out
    assert "hidden" not in out
    assert out.endswith("Now answer.")
    assert len(refine.sha256) == 64


def test_refine_template_without_reasonings_is_rejected(tmp_path):
    tpl = tmp_path / "bad.txt"
    tpl.write_text("Q: {question}\n{options}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="reasonings"):
        load_refine_template(str(tpl))


def test_shipped_er_templates_load_and_render():
    from evalkit.data.prompts import load_template, render_prompt

    item = Item("1", "d", "Fever and rash?", {"A": "measles", "B": "mumps"}, "A")
    sample = render_prompt(load_template("er_sample"), item)
    assert "Fever and rash?" in sample and "A. measles" in sample
    refined = load_refine_template("er_refine").render(item, ["one", "two"])
    assert "Response 2:\ntwo" in refined and "B. mumps" in refined


def test_format_reasonings_numbers_each_response():
    assert format_reasonings(["a", "b"]) == "Response 1:\na\n\nResponse 2:\nb"


def sc_config(tmp_path, url, files, **kw):
    kw.setdefault("concurrency", 8)
    kw.setdefault("max_attempts", 3)
    return RunConfig(eval_files=[str(f) for f in files], endpoint=url, results_dir=str(tmp_path / "results"),
                     params=GenerationParams(max_new_tokens=16, temperature=0.8, seed=7), **kw)


def check_vote_record(s, k):
    stage = s["stages"][-1]
    preds = [g["pred"] for g in stage["outputs"]]
    assert [g["k"] for g in stage["outputs"]] == list(range(k))
    assert s["votes"] == stage["votes"] == dict(Counter(p for p in preds if p))
    assert sum(s["votes"].values()) + stage["unparsed"] == k
    assert s["pred"] == majority_vote(preds)[0]
    assert s["correct"] == (s["pred"] is not None and s["pred"] == s["answer_idx"])
    assert s["method"] == "majority_vote"
    if s["pred"] is not None:
        assert s["output"] in [g["output"] for g in stage["outputs"] if g["pred"] == s["pred"]]


@pytest.mark.parametrize("mode,requests_per_item", [((), 1), (("--ignore-n",), 5), (("--reject-n",), 5)])
def test_self_consistency_one_line_per_item_with_votes(tmp_path, loopback, items_file, mode, requests_per_item):
    srv = loopback(*mode)
    result = run_eval(sc_config(tmp_path, srv.url, [items_file], samples=5))
    samples = read_samples(result.run_dir)
    assert len(samples) == 12 and len({s["id"] for s in samples}) == 12
    for s in samples:
        assert s["strategy"] == "self-consistency"
        check_vote_record(s, 5)
    # Sampled answers differ between generations (distinct seeds even with one request each).
    assert any(len({g["output"] for g in s["stages"][0]["outputs"]}) > 1 for s in samples)
    stats = srv.stats()
    if mode == ("--reject-n",):
        # Requests sent with n before the first refusal came back, at most one per worker, are refused;
        # after that every generation is its own request.
        assert 1 <= sum(n > 1 for n in stats["n"]) <= 8
        assert sum(n == 1 for n in stats["n"]) == 12 * requests_per_item
    else:
        assert stats["requests"] == 12 * requests_per_item
    d = read_json(result.run_dir / "summary.json")["datasets"]["tiny"]
    assert d["n"] == 12 and d["correct"] == sum(s["correct"] for s in samples)
    assert "sc5" in result.run_dir.name
    assert not (result.run_dir / "generations.jsonl").exists()  # journal dropped once complete


def test_multi_sample_needs_temperature(tmp_path, items_file):
    cfg = sc_config(tmp_path, "http://127.0.0.1:1/v1", [items_file], samples=3)
    cfg.params = GenerationParams(temperature=0.0)
    with pytest.raises(ValueError, match="temperature"):
        run_eval(cfg)


def test_ensemble_refinement_saves_both_stages(tmp_path, loopback, items_file):
    srv = loopback("--ignore-n")
    result = run_eval(sc_config(tmp_path, srv.url, [items_file], strategy="ensemble-refinement", samples=3,
                                refine_samples=4, prompt="er_sample", limit=5))
    samples = read_samples(result.run_dir)
    assert len(samples) == 5
    for s in samples:
        first, refine = s["stages"]
        assert (first["name"], refine["name"]) == ("sample", "refine")
        assert len(first["outputs"]) == 3 and len(refine["outputs"]) == 4
        assert first["prompt"] == s["prompt"]
        for i, g in enumerate(first["outputs"], start=1):
            assert f"Response {i}:\n{g['output']}" in refine["prompt"]
        check_vote_record(s, 4)  # the verdict is the vote over the refinements
    assert srv.stats()["requests"] == 5 * (3 + 4)
    manifest = read_json(result.run_dir / "manifest.json")
    assert manifest["strategy"] == "ensemble-refinement" and manifest["refine_samples"] == 4
    assert "{reasonings}" in manifest["refine_prompt_template"]


def test_partial_items_resume_requests_only_missing_generations(tmp_path, loopback, items_file):
    flaky = loopback("--ignore-n", "--fail-500", "0.3", "--seed", "5")
    first = run_eval(sc_config(tmp_path, flaky.url, [items_file], samples=4, max_attempts=1, run_name="r"))
    assert 0 < first.errors < 12
    journal = first.run_dir / "generations.jsonl"
    assert journal.exists()
    failed = [s for s in read_samples(first.run_dir) if s.get("error")]
    journaled = sum(1 for line in journal.read_text().splitlines()
                    if any(f'"id": "{s["id"]}"' in line for s in failed))
    flaky.stop()
    good = loopback("--ignore-n")
    again = run_eval(sc_config(tmp_path, good.url, [items_file], samples=4, run_name="r",
                               task_folder="loopback-model"))
    assert again.requested == len(failed) and again.errors == 0
    # Only the generations the failed items lacked were asked for.
    assert good.stats()["requests"] == 4 * len(failed) - journaled
    final = [s for s in read_samples(again.run_dir) if not s.get("error")]
    assert sorted(s["id"] for s in final) == sorted({s["id"] for s in final}) and len(final) == 12
    for s in final:
        check_vote_record(s, 4)


def draft_then_answer(samples, refine, refine_samples):
    """A user's own strategy (loaded as tests.test_sampling:draft_then_answer): drafts, then one answer."""
    return [Stage("sample", samples),
            Stage("final", 1, lambda item, base, earlier: base + "\nDrafts:\n" + "\n".join(earlier[0]))]


def no_stages(samples, refine, refine_samples):
    """A broken user strategy: it makes no stage."""
    return []


def test_strategies_are_one_registry_filled_by_the_decorator():
    assert set(STRATEGY_REGISTRY) == {"single", "self-consistency", "ensemble-refinement"}
    assert [s.size for s in strategy_stages("self-consistency", 5)] == [5]
    assert [s.size for s in strategy_stages("self-consistency", 1)] == [1]
    assert [s.size for s in strategy_stages("single", 5)] == [1]
    with pytest.raises(ValueError, match="refinement template"):
        strategy_stages("ensemble-refinement", 3)
    with pytest.raises(ValueError, match="unknown strategy 'vote-twice'.*module:attr"):
        strategy_stages("vote-twice", 3)

    @register_strategy("test-twice")
    def twice(samples, refine, refine_samples):
        return [Stage("sample", 2)]
    try:
        assert get_strategy("test-twice") is twice and [s.size for s in strategy_stages("test-twice", 9)] == [2]
    finally:
        del STRATEGY_REGISTRY["test-twice"]


def test_strategy_from_module_attr_is_loaded_and_checked():
    stages = strategy_stages("tests.test_sampling:draft_then_answer", 3)
    assert [(s.name, s.size) for s in stages] == [("sample", 3), ("final", 1)]
    with pytest.raises(ValueError, match="no attribute"):
        get_strategy("tests.test_sampling:no_such_strategy")
    with pytest.raises(ValueError, match="cannot import"):
        get_strategy("no_such_module_xyz:f")
    with pytest.raises(ValueError, match="non-empty list of Stage"):
        strategy_stages("tests.test_sampling:no_stages", 3)


def test_run_with_a_strategy_from_outside_the_package(tmp_path, loopback, items_file):
    srv = loopback("--ignore-n")
    name = "tests.test_sampling:draft_then_answer"
    result = run_eval(sc_config(tmp_path, srv.url, [items_file], strategy=name, samples=2, limit=4))
    samples = read_samples(result.run_dir)
    assert len(samples) == 4 and result.complete
    for s in samples:
        assert s["strategy"] == name
        assert [st_["name"] for st_ in s["stages"]] == ["sample", "final"]
        assert [len(st_["outputs"]) for st_ in s["stages"]] == [2, 1]
        assert all(g["output"] in s["stages"][1]["prompt"] for g in s["stages"][0]["outputs"])
    assert srv.stats()["requests"] == 4 * (2 + 1)
    assert read_json(result.run_dir / "manifest.json")["strategy"] == name
