"""One journal convention for samples.jsonl, generations.jsonl and scores.jsonl (evalkit.core.journal):
the envelope key, last-record-wins with ok records kept, a torn last line reported as file:line and
cut before appending, and resuming after a kill in both the generation and the judge-score journal."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from evalkit.core.journal import GENERATIONS, SAMPLES, Journal, LineIndex
from evalkit.core.records import SampleRecord
from evalkit.run.resume import SampleIndex, open_generations
from evalkit.run.sampling import strategy_stages
from evalkit.scoring import get_scorer
from evalkit.scoring.stage import SCORES, ScoringPlan, load_journal, score_samples
from evalkit.core.store import read_samples
from tests.conftest import ROOT, write_items
from tests.test_faults import finish, run_to_end, runner_cmd, start_runner, wait_for_lines


def _lines(*records, torn: str | None = None) -> str:
    return "".join(json.dumps(r) + "\n" for r in records) + (torn or "")


# --- the convention ---------------------------------------------------------------------------

def test_each_kind_keys_its_records_by_the_envelope_and_what_tells_them_apart():
    line = {"dataset": "d", "id": "7", "stage": 1, "k": 2, "scored_with": "abc"}
    assert SAMPLES.key(line) == ("d", "7", 0)  # index 0 when absent, as lines of old versions have it
    assert GENERATIONS.key(line) == ("d", "7", 0, 1, 2)
    assert SCORES.key({**line, "index": 3}) == ("d", "7", 3, "abc")
    assert SAMPLES.ok({"error": None}) and not SAMPLES.ok({"error": "HTTP 500"})
    assert not SCORES.ok({"scores": {"a": {"value": None, "error": "x", "meta": {"retryable": True}}}})


def test_last_record_wins_but_one_not_ok_never_replaces_one_that_is(tmp_path):
    path = tmp_path / "samples.jsonl"
    path.write_text(_lines({"dataset": "d", "id": "1", "output": "first"},
                           {"dataset": "d", "id": "2", "error": "HTTP 500"},
                           {"dataset": "d", "id": "1", "output": "second"},
                           {"dataset": "d", "id": "1", "error": "HTTP 500"},
                           {"dataset": "d", "id": "2", "output": "retried"}))
    journal = Journal(path, SAMPLES)
    latest = journal.latest()
    assert [r.get("output") for r in latest.values()] == ["second", "retried"]
    index = LineIndex(SAMPLES)
    index.load(journal)
    assert index.best[("d", "1", 0)] >> 2 == 3 and index.best[("d", "2", 0)] >> 2 == 5
    assert index.done(("d", "1", 0)) and index.lines == 5


def test_a_torn_last_line_is_reported_with_file_and_line_then_cut_before_appending(tmp_path):
    path = tmp_path / "scores.jsonl"
    path.write_text(_lines({"dataset": "d", "id": "1"}, {"dataset": "d", "id": "2"}, torn='{"dataset": "d", "id'))
    seen = []
    journal = Journal(path, SCORES, on_torn=seen.append)
    assert [r["id"] for _, r in journal.records()] == ["1", "2"]
    assert str(seen[0]).startswith(f"{path}:3: torn last line (20 bytes")
    with journal.writer() as writer:  # the writer cuts it (and says so) before its first line
        writer.write({"dataset": "d", "id": "3"})
    assert len(seen) == 2 and seen[1].line == 3
    assert path.read_text() == _lines({"dataset": "d", "id": "1"}, {"dataset": "d", "id": "2"},
                                      {"dataset": "d", "id": "3"})


def test_a_last_line_that_parses_without_its_newline_is_kept_by_reader_and_writer(tmp_path, caplog):
    path = tmp_path / "generations.jsonl"
    path.write_text(_lines({"dataset": "d", "id": "1", "stage": 0, "k": 0}) + '{"dataset": "d", "id": "1", '
                    '"stage": 0, "k": 1}')
    journal = Journal(path, GENERATIONS)
    with caplog.at_level(logging.WARNING, logger="evalkit"):
        assert len(journal.latest()) == 2
        with journal.writer() as writer:
            writer.write({"dataset": "d", "id": "1", "stage": 0, "k": 2})
    assert not caplog.records and journal.torn is None
    assert [r["k"] for _, r in journal.records()] == [0, 1, 2]


def test_a_torn_line_cut_without_a_listener_is_a_warning_of_the_evalkit_logger(tmp_path, caplog):
    path = tmp_path / "samples.jsonl"
    path.write_text(_lines({"dataset": "d", "id": "1"}, torn="{"))
    index = SampleIndex()
    with caplog.at_level(logging.WARNING, logger="evalkit"):
        journal = Journal(path, SAMPLES)
        index.load(journal)  # reading notes it; the file is untouched
        assert journal.torn.line == 2 and not caplog.records
        journal.writer().close()  # cutting it says so
    assert f"{path}:2: torn last line" in caplog.text and index.done(("d", "1", 0))
    assert path.read_text() == _lines({"dataset": "d", "id": "1"})


# --- files of today's main load as they are ---------------------------------------------------

def test_a_scores_journal_in_the_format_of_earlier_versions_loads(tmp_path):
    # The lines score_samples has written since the journal began (none of the fields changed).
    path = tmp_path / "scores.jsonl"
    good = {"dataset": "d", "id": "1", "index": 0, "scored_with": "fp", "fields": {},
            "scores": {"length_ok": {"value": True}}}
    retry = {"dataset": "d", "id": "2", "index": 0, "scored_with": "fp", "fields": {},
             "scores": {"judge": {"value": None, "error": "down", "meta": {"retryable": True}}}}
    other = {**good, "id": "3", "scored_with": "another"}
    path.write_text(_lines(good, retry, other))
    assert load_journal(path, "fp") == {("d", "1", 0): good}


def test_a_generation_journal_with_a_torn_line_gives_what_it_holds_and_reports_the_rest(tmp_path):
    lines = [{"dataset": "d", "id": "1", "index": 0, "stage": 0, "k": k, "output": f"g{k}", "finish_reason": "stop",
              "usage": {}, "latency_s": 0.1} for k in range(2)]
    (tmp_path / "generations.jsonl").write_text(_lines(*lines, torn='{"dataset": "d", "id": "1", "ind'))
    seen = []
    writer, partial = open_generations(tmp_path, strategy_stages("self-consistency", 3), SampleIndex(), seen.append)
    writer.close()
    assert [g["output"] for g in partial[("d", "1", 0)][0].values()] == ["g0", "g1"]
    assert partial[("d", "1", 0)][0][1] == {k: v for k, v in lines[1].items() if k not in ("dataset", "id", "index",
                                                                                           "stage")}
    assert str(seen[0]).startswith(f"{tmp_path / 'generations.jsonl'}:3: torn last line")
    assert (tmp_path / "generations.jsonl").read_bytes().endswith(b"}\n")


def test_a_malformed_generation_line_mid_file_is_named_and_leaves_no_writer_open(tmp_path):
    import gc
    import warnings

    (tmp_path / "generations.jsonl").write_text('{"dataset": "d", "id": "1", "stage": 0, "k": 0}\nnot json\n{}\n')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        with pytest.raises(ValueError, match=r"generations\.jsonl:2: not valid JSON"):
            open_generations(tmp_path, strategy_stages("self-consistency", 3), SampleIndex())
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


# --- resuming after a kill --------------------------------------------------------------------

_JUDGE_PASS = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    from evalkit.core.records import SampleRecord
    from evalkit.scoring import get_scorer
    from evalkit.scoring.stage import ScoringPlan, score_samples

    pairs = []
    for i in range(40):
        rec = SampleRecord(id=str(i), dataset="d", question="q", options={}, answer_idx=None, prompt="p",
                           output="x" * i, finish_reason="stop")
        pairs.append((rec.item(), rec))
    plan = ScoringPlan([get_scorer("tests.toy_scorers:SlowAsyncScorer")])
    asyncio.run(score_samples(pairs, plan, journal=Path(sys.argv[1]), concurrency=2))
""")


def _pairs(n):
    out = []
    for i in range(n):
        rec = SampleRecord(id=str(i), dataset="d", question="q", options={}, answer_idx=None, prompt="p",
                           output="x" * i, finish_reason="stop")
        out.append((rec.item(), rec))
    return out


def test_a_judge_pass_sigkilled_then_torn_resumes_asking_only_what_is_not_journaled(tmp_path, monkeypatch):
    calls = tmp_path / "calls.txt"
    journal = tmp_path / "scores.jsonl"
    env = {**os.environ, "TOY_CALLS_FILE": str(calls), "TOY_DELAY_S": "0.05"}
    proc = subprocess.Popen([sys.executable, "-c", _JUDGE_PASS, str(journal)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    wait_for_lines(journal, 6, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    whole = journal.read_bytes()
    cut = whole[:-1] if whole.endswith(b"\n") else whole  # and, as if killed mid-write, a torn last line
    journal.write_bytes(cut[:len(cut) - 5])
    kept = [json.loads(line)["id"] for line in journal.read_text().splitlines()[:-1]]
    assert len(kept) >= 5

    calls.write_text("")
    monkeypatch.setenv("TOY_CALLS_FILE", str(calls))
    monkeypatch.setenv("TOY_DELAY_S", "0")
    plan = ScoringPlan([get_scorer("tests.toy_scorers:SlowAsyncScorer")])
    done = asyncio.run(score_samples(_pairs(40), plan, journal=journal, concurrency=4))
    again = calls.read_text().split()
    assert sorted(again, key=int) == sorted({str(i) for i in range(40)} - set(kept), key=int)  # each once
    assert all(r.scores["length_ok"]["value"] == (len(r.output) > 5) for r in done)
    assert len(load_journal(journal, plan.fingerprint)) == 40


def test_a_multi_sample_run_sigkilled_then_torn_resumes_requesting_only_missing_generations(tmp_path, loopback):
    data = write_items(tmp_path / "d.jsonl", 60)
    srv = loopback("--ignore-n", "--delay-s", "0.02")
    cmd = runner_cmd(tmp_path, srv.url, data, "--samples", "3", "--concurrency", "4")
    proc = start_runner(cmd)
    run_dir = tmp_path / "results" / "loopback-model" / "r"
    wait_for_lines(run_dir / "generations.jsonl", 20, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    finish(proc)
    gens = run_dir / "generations.jsonl"
    whole = gens.read_bytes()
    gens.write_bytes(whole[:len(whole) - 7] if whole.endswith(b"\n") else whole)  # a torn last generation
    done_items = {s["id"] for s in read_samples(run_dir) if not s.get("error")}
    journaled = [json.loads(line) for line in gens.read_text().splitlines()[:-1]]
    pending = sum(1 for g in journaled if g["id"] not in done_items)
    before = srv.stats()["requests"]

    rc, _, err = run_to_end(cmd)
    assert rc == 0, err
    assert "generations.jsonl:" in err and "torn last line" in err
    samples = [s for s in read_samples(run_dir) if not s.get("error")]
    assert len(samples) == 60 and len({s["id"] for s in samples}) == 60
    assert all(len(s["stages"][0]["outputs"]) == 3 for s in samples)
    # Only the generations not yet journaled (nor in a finished sample) were asked for.
    assert srv.stats()["requests"] - before == 3 * (60 - len(done_items)) - pending
    assert not gens.exists()


def test_the_pairwise_journal_follows_the_convention_with_its_own_key(tmp_path):
    from evalkit.scoring.judge_pass import PAIRWISE

    path = tmp_path / "pairwise.jsonl"
    good = {"key": "d/1/ab", "fingerprint": "fp", "a_first": {"grade": "1"}, "b_first": {"grade": "2"},
            "errors": [], "retryable": False}
    retry = {**good, "errors": ["down"], "retryable": True}
    path.write_text(_lines(good, retry, {**good, "key": "d/2/cd", "retryable": True}, torn='{"key": "d/3'))
    seen = []
    journal = Journal(path, PAIRWISE, on_torn=seen.append)
    assert journal.done(lambda line: line["fingerprint"] == "fp") == {("d/1/ab", "fp"): good}
    assert seen[0].line == 4


def test_a_malformed_line_inside_the_scores_journal_is_an_error_naming_file_and_line(tmp_path):
    path = tmp_path / "scores.jsonl"
    path.write_text(_lines({"dataset": "d", "id": "1"}) + "not json\n" + _lines({"dataset": "d", "id": "2"}))
    plan = ScoringPlan([get_scorer("tests.toy_scorers:SlowAsyncScorer")])
    with pytest.raises(ValueError, match=r"scores\.jsonl:2: not valid JSON"):
        asyncio.run(score_samples(_pairs(2), plan, journal=path))
    assert path.read_text().count("\n") == 3  # nothing appended to a journal that cannot be read


def test_a_torn_scores_line_cut_by_the_scoring_pass_is_told_to_its_listener(tmp_path, monkeypatch, caplog):
    """score_samples (and score_run_dir, which a run calls with its notices) report the cut line to
    ON_TORN like the run's other journals, not only to the evalkit logger."""
    from pathlib import Path

    monkeypatch.setenv("TOY_CALLS_FILE", str(tmp_path / "calls.txt"))
    journal = tmp_path / "scores.jsonl"
    journal.write_text(_lines(torn='{"dataset": "d", "id": "0", "ind'))
    plan = ScoringPlan([get_scorer("tests.toy_scorers:CountingAsyncScorer")])
    seen = []
    with caplog.at_level(logging.WARNING, logger="evalkit"):
        asyncio.run(score_samples(_pairs(2), plan, journal=Path(journal), on_torn=seen.append))
    assert [str(t).split(": torn")[0] for t in seen] == [f"{journal}:1"] and not caplog.records
    assert len(load_journal(journal, plan.fingerprint)) == 2
