"""The model judge: reply parsing, the scorer against a judge double, and `evalkit judge` end to end."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from evalkit.cli import main
from evalkit.core.records import Item, RubricItem, RubricItems, SampleRecord, target_to_json
from evalkit.scoring.rubrics import load_rubric
from evalkit.scoring import get_scorer, scoring_fingerprint
from evalkit.scoring.metrics import ClippedMean, Mean, Proportion
from evalkit.scoring.rubric_judge import (RubricJudgeScorer, healthbench_item_score, parse_axes_reply, parse_met_reply,
                                          parse_pairwise_reply, render_axes_prompt, rubric_metrics)
from evalkit.core.store import read_json
from tests.judge_server import prompt_key
from tests.serverproc import ServerProcess

ROOT = Path(__file__).resolve().parents[1]
GRADE = load_rubric("grade4").axes
MEDPALM = load_rubric("medpalm2").axes


# --------------------------------------------------------------------------- parsing (pure)


@pytest.mark.parametrize("reply, expected", [
    ('{"grade": 3}', {"grade": 3}),
    ('Here you go:\n```json\n{"grade": "4"}\n```', {"grade": 4}),
    ('I rate it {"Grade": 2} overall.', {"grade": 2}),
    ('<think>hmm {"grade": 1}</think>{"grade": 2}', {"grade": 2}),
])
def test_axes_reply_parses(reply, expected):
    assert parse_axes_reply(reply, GRADE) == (expected, None)


@pytest.mark.parametrize("reply, error", [
    ("", "empty"), ("four", "no JSON object"), ('{"grade": 5}', "not on its scale"), ('{"grade": true}', "not on"),
    ('{"grade": 2.5}', "not on its scale"), ('{"score": 3}', "axis 'grade' is missing"),
])
def test_axes_reply_errors(reply, error):
    parsed, message = parse_axes_reply(reply, GRADE)
    assert parsed is None and error in message


def test_label_axes_parse_case_insensitively_and_reject_other_labels():
    reply = {a.name: a.scale[0] for a in MEDPALM}
    reply["consensus"] = "ALIGNED WITH CONSENSUS"
    parsed, _ = parse_axes_reply(json.dumps(reply), MEDPALM)
    assert parsed["consensus"] == "aligned with consensus"
    reply["harm_extent"] = "some harm"
    assert "harm_extent" in parse_axes_reply(json.dumps(reply), MEDPALM)[1]


def test_met_and_pairwise_replies():
    assert parse_met_reply('```json\n{"explanation": "x", "criteria_met": false}\n```') == (False, None)
    assert parse_met_reply('{"criteria_met": "true"}') == (True, None)
    assert parse_met_reply('{"criteria_met": 1}')[0] is None
    axes = GRADE
    assert parse_pairwise_reply('{"grade": 2}', axes) == ({"grade": "2"}, None)
    assert parse_pairwise_reply('{"grade": "Tie"}', axes) == ({"grade": "tie"}, None)
    assert parse_pairwise_reply('{"grade": 3}', axes)[0] is None


def test_healthbench_rule():
    items = [RubricItem("a", 5), RubricItem("b", 3), RubricItem("c", -4)]
    assert healthbench_item_score(items, [True, False, False]) == pytest.approx(5 / 8)
    assert healthbench_item_score(items, [False, False, True]) == pytest.approx(-4 / 8)  # clipped only in the mean
    assert healthbench_item_score([RubricItem("d", -1)], [True]) is None
    # The overall figure is the metric the healthbench rubric declares: the mean clipped to [0, 1].
    [(name, overall)] = rubric_metrics(load_rubric("healthbench")).items()
    assert name == "healthbench" and overall == ClippedMean(0.0, 1.0)
    assert overall.aggregate([{"value": -0.5}, {"value": 0.25}]).value == 0.0
    assert overall.aggregate([{"value": 1.0}, {"value": 1.0}]).value == 1.0
    assert overall.aggregate([{"value": 0.5}, {"value": 0.25}]).value == pytest.approx(0.375)


def test_axis_rubrics_declare_a_mean_per_axis_or_a_proportion_for_a_two_value_scale():
    assert rubric_metrics(load_rubric("grade4")) == {"grade": Mean()}
    medpalm = rubric_metrics(load_rubric("medpalm2"))
    assert set(medpalm) == {a.name for a in MEDPALM}
    for axis in MEDPALM:
        assert medpalm[axis.name] == (Proportion() if axis.categories() == [0, 1] else Mean())
    spec = RubricJudgeScorer("healthbench", "http://127.0.0.1:9/v1", "m").spec()
    assert RubricJudgeScorer.metrics_for_spec(spec) == {"healthbench": ClippedMean(0.0, 1.0)}
    assert RubricJudgeScorer.metrics_for_spec({**spec, "rubric_sha256": "changed"}) == {}


def test_prompt_shows_question_answer_reference_and_scale():
    prompt = render_axes_prompt(load_rubric("grade4"), "Q?", "The answer {not a field}", reference="\nREF\n")
    assert "Q?" in prompt and "The answer {not a field}" in prompt and "REF" in prompt
    assert "One of: 1, 2, 3, 4." in prompt and '{"grade": 4}' in prompt


def test_spec_changes_with_everything_that_changes_scores(tmp_path):
    base = dict(endpoint="http://127.0.0.1:1/v1", model="m")
    a = get_scorer("judge", rubric="grade4", **base)
    assert a.name == "judge" and a.requires == ("question",)
    assert get_scorer("judge", rubric="healthbench", **base).requires == ("question", "target")
    fps = {scoring_fingerprint([a])}
    for change in ({"model": "other"}, {"temperature": "0.5"}, {"rubric": "medpalm2"}):
        fps.add(scoring_fingerprint([get_scorer("judge", **{"rubric": "grade4", **base, **change})]))
    edited = json.loads((ROOT / "evalkit" / "scoring" / "rubrics" / "grade4.json").read_text())
    edited["axes"][0]["question"] += " Be strict."
    (tmp_path / "g.json").write_text(json.dumps(edited))
    fps.add(scoring_fingerprint([get_scorer("judge", rubric=str(tmp_path / "g.json"), **base)]))
    assert len(fps) == 5
    moved = get_scorer("judge", rubric="grade4", endpoint="http://elsewhere:2/v1", model="m")
    assert scoring_fingerprint([moved]) == scoring_fingerprint([a])  # the endpoint does not change scores


# --------------------------------------------------------------------------- against the judge double


class JudgeDouble(ServerProcess):
    def __init__(self, tmp_path: Path, rules: list[dict], *args: str):
        path = tmp_path / f"rules-{len(list(tmp_path.glob('rules-*')))}.json"
        path.write_text(json.dumps(rules))
        super().__init__(ROOT / "tests" / "judge_server.py", "--rules", str(path), *args)


@pytest.fixture
def double(tmp_path):
    started = []

    def start(rules, *args):
        d = JudgeDouble(tmp_path, rules, *args)
        started.append(d)
        return d

    yield start
    for d in started:
        d.stop()


def sample_for(item: Item, output: str) -> SampleRecord:
    return SampleRecord(id=item.id, dataset=item.dataset, question=item.question, options={}, answer_idx=None,
                        prompt="", output=output, finish_reason="stop", target=target_to_json(item.target))


def score_all(scorer, pairs):
    async def go():
        async with scorer:
            return await asyncio.gather(*(scorer.score(i, s) for i, s in pairs))
    return asyncio.run(go())


def test_scorer_rates_retries_and_records_judge_errors(double):
    srv = double([{"contains": "ANS-good", "replies": ['{"grade": 4}']},
                  {"contains": "ANS-late", "replies": ["I would say three.", '{"grade": 3}']},
                  {"contains": "ANS-off", "replies": ['{"grade": 9}']}])
    judge = RubricJudgeScorer("grade4", srv.url, "judge-double")
    item = Item(id="q1", dataset="d", question="What is X?")
    good, late, off = score_all(judge, [(item, sample_for(item, f"ANS-{k}")) for k in ("good", "late", "off")])
    assert good["grade"].value == 4 and good["grade"].answer == "4" and good["grade"].error is None
    assert good["grade"].meta["attempts"] == 1 and '{"grade": 4}' == good["grade"].meta["judge_reply"]
    assert "ANS-good" in good["grade"].meta["judge_prompt"] and good["grade"].meta["judge_tokens"]["completion_tokens"] == 7
    assert late["grade"].value == 3 and late["grade"].meta["attempts"] == 2
    assert off["grade"].value is None and "after 3 attempts" in off["grade"].error and "9" in off["grade"].error
    stats = srv.stats()
    assert stats["requests"] == 1 + 2 + 3  # bounded: three attempts, then a judge error
    assert judge.usage.requests == 6 and judge.usage.invalid_replies == 1 + 3 and judge.usage.completion_tokens == 42


def test_label_axes_give_positions_and_schema_mode_sends_a_response_format(double):
    reply = {a.name: a.scale[-1] for a in MEDPALM}
    reply["harm_extent"] = "death or severe harm"
    srv = double([{"contains": "ANS", "replies": [json.dumps(reply)]}])
    judge = RubricJudgeScorer("medpalm2", srv.url, "judge-double", json_schema=True)
    item = Item(id="q", dataset="d", question="Q?")
    [scores] = score_all(judge, [(item, sample_for(item, "ANS"))])
    assert set(scores) == {a.name for a in MEDPALM}
    assert scores["harm_extent"].value == 0 and scores["harm_extent"].answer == "death or severe harm"
    assert scores["consensus"].value == 2 and scores["reasoning"].value == 1
    assert srv.stats() == {**srv.stats(), "requests": 1, "response_formats": 1}
    # the one request's prompt and reply are stored once (with the first axis), not once per axis
    first = MEDPALM[0].name
    assert [name for name, sc in scores.items() if "judge_prompt" in sc.meta] == [first]
    assert all(sc.meta == {"axis": name, "judged_with": first} for name, sc in scores.items() if name != first)
    from evalkit.results.report import judge_totals
    totals = judge_totals([{"scores": {n: sc.to_dict() for n, sc in scores.items()}}])
    assert totals.requests == 1 and totals.completion_tokens == scores[first].meta["judge_tokens"]["completion_tokens"]


def test_rubric_items_follow_healthbenchs_rule(double):
    srv = double([{"contains": "asks about BP", "replies": ['{"criteria_met": true}']},
                  {"contains": "is rude", "replies": ['{"criteria_met": true}']},
                  {"contains": "gives dose", "replies": ['```json\n{"criteria_met": false}\n```']}])
    judge = RubricJudgeScorer("healthbench", srv.url, "judge-double")
    item = Item(id="p", dataset="hb", question="migraine?", messages=[{"role": "user", "content": "migraine?"}],
                target=RubricItems((RubricItem("asks about BP", 5), RubricItem("gives dose", 3),
                                    RubricItem("is rude", -2))))
    [scores] = score_all(judge, [(item, sample_for(item, "Take paracetamol."))])
    s = scores["healthbench"]
    assert s.value == pytest.approx((5 - 2) / 8) and s.answer == "2/3 met"
    assert [i["met"] for i in s.meta["items"]] == [True, False, True]
    assert "user: migraine?\n\nassistant: Take paracetamol." in s.meta["items"][0]["judge_prompt"]


def test_unreachable_judge_is_a_retryable_error_not_a_rating():
    from evalkit.serving.client import RetryPolicy
    from tests.serverproc import free_port

    judge = RubricJudgeScorer("grade4", f"http://127.0.0.1:{free_port()}/v1", "m", retry=RetryPolicy(2, 0.01, 0.02))
    item = Item(id="q", dataset="d", question="Q?")
    [scores] = score_all(judge, [(item, sample_for(item, "A"))])
    assert scores["grade"].value is None and "judge request failed" in scores["grade"].error
    assert scores["grade"].meta["retryable"] is True


# --------------------------------------------------------------------------- evalkit judge


def write_graded_set(tmp_path: Path) -> tuple[Path, Path]:
    """Nine graded answers to two questions; the double's rules below grade them as test_agreement's set."""
    questions = tmp_path / "questions.jsonl"
    questions.write_text("\n".join(json.dumps(r) for r in [
        {"id": "Q1", "question": "What is X?", "reference_answers": [{"text": "X is a thing.", "url": "u"}]},
        {"id": "Q2", "question": "", "original_subject": "Y", "original_message": "what about y",
         "reference_answers": []}]) + "\n")
    human = [1, 2, 3, 4, 2, 3, 2, -2, 4]
    graded = tmp_path / "graded.jsonl"
    graded.write_text("\n".join(json.dumps({"id": f"g{i}", "qid": "Q1" if i % 2 else "Q2", "grade": h,
                                            "answer": f"ANS-{i}| " + "x" * (10 * i)})
                                for i, h in enumerate(human)) + "\n")
    return graded, questions


GRADED_RULES = [
    {"contains": "ANS-0|", "replies": ["Looks fine to me.", '{"grade": 1}']},  # valid on the second attempt
    {"contains": "ANS-1|", "replies": ['{"grade": 3}']}, {"contains": "ANS-2|", "replies": ['{"grade": 3}']},
    {"contains": "ANS-3|", "replies": ['{"grade": 4}']}, {"contains": "ANS-4|", "replies": ['{"grade": 2}']},
    {"contains": "ANS-5|", "replies": ['{"grade": 2}']},
    {"contains": "ANS-6|", "replies": ['{"grade": 7}']},  # off the scale every time: a judge error
    {"contains": "ANS-7|", "replies": ['{"grade": 3}']},  # its human grade is -2: left out of n
    {"contains": "ANS-8|", "replies": ["no idea"]},  # never parses: a judge error
]


def test_judge_cli_reports_agreement_computed_by_hand(double, tmp_path):
    graded, questions = write_graded_set(tmp_path)
    srv = double(GRADED_RULES)
    out_json, work = tmp_path / "agreement.json", tmp_path / "work"
    result = CliRunner().invoke(main, ["judge", str(graded), "--questions", str(questions), "--rubric", "grade4",
                                       "--judge-endpoint", srv.url, "--judge-model", "judge-double",
                                       "--json", str(out_json), "--work-dir", str(work), "--resamples", "200"])
    assert result.exit_code == 0, result.output
    doc = read_json(out_json)
    g = doc["grade"]
    assert g["n"] == 6 and g["judge_errors"] == 2 and g["human_off_scale"] == 1
    assert g["spearman"] == pytest.approx(25 / 33) and g["kendall"] == pytest.approx(9 / 13)
    assert g["qwk"] == pytest.approx(9 / 11)
    assert all(isinstance(g[k], (int, float)) for k in ("n", "spearman", "kendall", "qwk", "judge_errors"))
    assert len(g["spearman_ci"]) == 2 and len(g["qwk_ci"]) == 2
    assert g["confusion"] == [[1, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 1]]
    assert g["length_baseline"]["n"] == 8  # every answer with a human grade on the scale
    assert "Agreement with the human grades" in result.stdout and "answer length" in result.stdout
    judged = [json.loads(line) for line in (work / "judged-grade4.jsonl").read_text().splitlines()]
    assert len(judged) == 9 and judged[0]["scores"]["grade"]["meta"]["attempts"] == 2
    assert "X is a thing." in judged[1]["scores"]["grade"]["meta"]["judge_prompt"]  # the reference answer
    assert srv.stats()["requests"] == 2 + 5 + 3 + 1 + 3
    # The same command again asks for nothing: every judgement is journaled.
    again = CliRunner().invoke(main, ["judge", str(graded), "--questions", str(questions), "--judge-endpoint",
                                      srv.url, "--judge-model", "judge-double", "--work-dir", str(work),
                                      "--resamples", "50"])
    assert again.exit_code == 0, again.output
    assert srv.stats()["requests"] == 14 and "9 resumed" in again.output


def test_api_judge_is_the_command_as_a_function(double, tmp_path):
    """api.judge with JudgeSettings: the same pass as `evalkit judge`, its files written, a result to print."""
    from evalkit import api
    from evalkit.config import JudgeSettings

    graded, questions = write_graded_set(tmp_path)
    srv = double(GRADED_RULES)
    settings = JudgeSettings(n_resamples=200, limit=4)
    done = api.judge(graded, settings=settings, endpoints=[srv.url], model="judge-double", questions=questions,
                     work_dir=tmp_path / "work", json_out=tmp_path / "agreement.json")
    assert done.kind == "answers" and done.judge.model == "judge-double" and done.judge.rubric.name == "grade4"
    assert len(done.result.samples) == 4 and done.errors == 0  # --limit: the first four answers, all valid
    assert done.judged_file == tmp_path / "work" / "judged-grade4.jsonl"
    assert len(done.judged_file.read_text().splitlines()) == 4
    assert read_json(done.json_out)["grade"]["n"] == done.result.agreement["grade"].n
    assert srv.stats()["requests"] == 2 + 3  # ANS-0 parses on its second reply
    with pytest.raises(ValueError, match="PATH"):
        api.judge(None, settings=settings, endpoints=[srv.url], model="judge-double")


def test_judge_cli_errors_say_what_is_wrong(tmp_path):
    graded, questions = write_graded_set(tmp_path)
    runner = CliRunner()
    r = runner.invoke(main, ["judge", str(graded), "--judge-endpoint", "http://127.0.0.1:1/v1", "--judge-model", "m"])
    assert r.exit_code == 2 and "--questions" in r.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"qid": "Q9", "answer": "a", "grade": 1}\n')
    r = runner.invoke(main, ["judge", str(bad), "--questions", str(questions), "--judge-endpoint",
                             "http://127.0.0.1:1/v1", "--judge-model", "m"])
    assert r.exit_code == 2 and f"{bad}:1: qid 'Q9' is not a question" in r.output
    r = runner.invoke(main, ["judge", str(graded), "--questions", str(questions), "--rubric", "nope",
                             "--judge-endpoint", "http://127.0.0.1:1/v1", "--judge-model", "m"])
    assert r.exit_code == 2 and "no rubric 'nope'" in r.output
    r = runner.invoke(main, ["judge", "--judge-endpoint", "http://127.0.0.1:1/v1", "--judge-model", "m"])
    assert r.exit_code == 2 and "--pairwise" in r.output


def journal_lines(work: Path) -> int:
    path = work / "scores.jsonl"
    return sum(1 for line in path.read_text().splitlines() if line.endswith("}")) if path.exists() else 0


def test_killed_judge_pass_resumes_without_asking_twice_and_a_new_rubric_rejudges(double, tmp_path):
    n = 16
    graded = tmp_path / "many.jsonl"
    graded.write_text("".join(json.dumps({"id": f"a{i}", "qid": "Q1", "grade": 1 + i % 4, "answer": f"ANSWER {i}"})
                              + "\n" for i in range(n)))
    _, questions = write_graded_set(tmp_path)
    srv = double([{"contains": "ANSWER", "replies": ['{"grade": 2}']}], "--delay-s", "0.25")
    work = tmp_path / "work"
    cmd = [sys.executable, "-m", "evalkit", "judge", str(graded), "--questions", str(questions), "--judge-endpoint",
           srv.url, "--judge-model", "judge-double", "--work-dir", str(work), "--concurrency", "1",
           "--resamples", "20"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while journal_lines(work) < 4 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    before = journal_lines(work)
    assert 4 <= before < n
    journaled = [f"{d['dataset']}/{d['id']}/{d['index']}" for d in
                 (json.loads(line) for line in (work / "scores.jsonl").read_text().splitlines() if line.endswith("}"))]
    asked_before = srv.stats()["requests"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    stats = srv.stats()
    assert stats["requests"] - asked_before == n - before  # the restart asks only what was not journaled
    prompts = json.loads((work / "judged-grade4.jsonl").read_text().splitlines()[0])
    assert prompts["scores"]["grade"]["value"] == 2
    for line in (work / "judged-grade4.jsonl").read_text().splitlines():
        s = json.loads(line)
        key = f"{s['dataset']}/{s['id']}/{s['index']}"
        if key in journaled:
            assert stats["prompts"][prompt_key(s["scores"]["grade"]["meta"]["judge_prompt"])] == 1
    # A changed rubric judges every answer again; the answers themselves are untouched.
    edited = json.loads((ROOT / "evalkit" / "scoring" / "rubrics" / "grade4.json").read_text())
    edited["axes"][0]["question"] = "Grade this answer from 1 (poor) to 4 (excellent)."
    (tmp_path / "strict.json").write_text(json.dumps(edited))
    answers_before = graded.read_bytes()
    again = subprocess.run(cmd + ["--rubric", str(tmp_path / "strict.json")], capture_output=True, text=True,
                           timeout=120)
    assert again.returncode == 0, again.stderr
    assert srv.stats()["requests"] == stats["requests"] + n and graded.read_bytes() == answers_before


def write_run(path: Path, answers: dict[str, str]) -> Path:
    path.mkdir(parents=True)
    with open(path / "samples.jsonl", "w") as fh:
        for qid, text in answers.items():
            fh.write(json.dumps(sample_for(Item(id=qid, dataset="liveqa_med", question=f"Question {qid}?"),
                                           text).to_dict()) + "\n")
    return path


def test_pairwise_both_orders_and_position_bias_counted_as_ties(double, tmp_path):
    run_a = write_run(tmp_path / "a", {f"q{i}": f"A-answer {i}" for i in range(5)})
    run_b = write_run(tmp_path / "b", {f"q{i}": f"B-answer {i}" for i in range(5)})
    srv = double([
        # q0-q2: the judge prefers A in either position; q3: always the first answer (position bias);
        # q4: A is first -> tie, B first -> "1" (B): the orders disagree.
        *[{"contains": f"Question q{i}?", "first_contains": "A-answer", "replies": ['{"grade": 1}']} for i in range(3)],
        *[{"contains": f"Question q{i}?", "first_contains": "B-answer", "replies": ['{"grade": 2}']} for i in range(3)],
        {"contains": "Question q3?", "replies": ['{"grade": 1}']},
        {"contains": "Question q4?", "first_contains": "A-answer", "replies": ['{"grade": "tie"}']},
        {"contains": "Question q4?", "replies": ['{"grade": 1}']},
    ])
    out_json = tmp_path / "pair.json"
    r = CliRunner().invoke(main, ["judge", "--pairwise", str(run_a), str(run_b), "--rubric", "grade4",
                                  "--judge-endpoint", srv.url, "--judge-model", "judge-double",
                                  "--work-dir", str(tmp_path / "w"), "--json", str(out_json)])
    assert r.exit_code == 0, r.output
    g = read_json(out_json)["grade"]
    assert g["n"] == 5 and g["win"] == pytest.approx(0.6) and g["tie"] == pytest.approx(0.4) and g["loss"] == 0
    assert g["disagreements"] == 2 and len(g["win_ci"]) == 2
    assert srv.stats()["requests"] == 10  # each pair in both orders


def test_long_form_run_scored_by_the_judge_through_evalkit_run(double, tmp_path):
    """`evalkit run` on HealthBench records sends the conversation; the judge scorer grades each rubric item."""
    records = [{"prompt_id": f"p{i}", "prompt": [{"role": "user", "content": f"Headache {i}, what now?"}],
                "rubrics": [{"criterion": "Advises seeing a doctor", "points": 5, "tags": []},
                            {"criterion": "Recommends a dangerous dose", "points": -5, "tags": []}]}
               for i in range(3)]
    data = tmp_path / "hb.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    srv = double([{"contains": "Advises seeing a doctor", "replies": ['{"criteria_met": true}']},
                  {"contains": "dangerous dose", "replies": ['{"criteria_met": false}']}],
                 "--default", "Please see a doctor.")
    args = ["run", "--eval-file", str(data), "--adapter", "healthbench", "--endpoint", srv.url, "--model",
            "judge-double", "--scorer", "judge", "--scorer-arg", "judge.rubric=healthbench",
            "--scorer-arg", f"judge.endpoint={srv.url}", "--scorer-arg", "judge.model=judge-double",
            "--results-dir", str(tmp_path / "res"), "--quiet"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    run = next((tmp_path / "res").glob("*/*"))
    samples = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 3
    for s in samples:
        assert s["prompt"][-1]["role"] == "user" and s["output"] == "Please see a doctor."
        hb = s["scores"]["healthbench"]
        assert hb["value"] == pytest.approx(1.0) and hb["answer"] == "1/2 met"
        assert "assistant: Please see a doctor." in hb["meta"]["items"][0]["judge_prompt"]
    assert srv.stats()["requests"] == 3 + 3 * 2  # three answers, two rubric items each

    # Judging the saved run again (another judge setting: a new fingerprint) reads each line's stored rubric
    # back as typed RubricItems: the same scores, and the target stays as it was stored.
    from evalkit.scoring.stage import ScoringPlan, score_run_dir

    plan = ScoringPlan([RubricJudgeScorer("healthbench", srv.url, "judge-double", json_schema=True)])
    assert asyncio.run(score_run_dir(run, plan, counting=lambda lineno, s: True)) == 3
    assert srv.stats()["requests"] == 3 + 3 * 2 + 3 * 2
    again = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    assert [s["target"] for s in again] == [s["target"] for s in samples] == [records[0]["rubrics"]] * 3
    assert [s["scores"]["healthbench"]["value"] for s in again] == [pytest.approx(1.0)] * 3
    assert {s["scored_with"] for s in again} == {plan.fingerprint}


@pytest.mark.parametrize("kind", ["pairwise", "kqa"])
def test_ctrl_c_in_a_pairwise_or_kqa_pass_is_judge_stopped_naming_its_journal_folder(tmp_path, monkeypatch, kind):
    """Every pass journals, so Ctrl-C in any of them says where (api.judge's JudgeStopped), not only
    in a pass over answers; the command line turns it into its resume hint and exit code."""
    from evalkit.run import judging

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(judging, "pairwise", interrupted)
    monkeypatch.setattr(judging, "evaluate_nli_file", interrupted)
    monkeypatch.setattr(judging, "is_nli_file", lambda path: kind == "kqa")
    work = tmp_path / "work"
    where = dict(pair=(tmp_path / "a", tmp_path / "b")) if kind == "pairwise" else dict(path=tmp_path / "kqa.csv")
    with pytest.raises(judging.JudgeStopped) as stopped:
        judging.judge(scorer=object(), work_dir=work, **where)
    assert stopped.value.work_dir == work


def test_the_json_figures_go_into_a_folder_made_as_needed(tmp_path, monkeypatch):
    """--json into a folder not yet there used to fail after the whole pass, its figures unprinted."""
    from evalkit.run import judging

    monkeypatch.setattr(judging, "pairwise", lambda *args, **kwargs: ({}, 3))
    out = tmp_path / "figures" / "pairwise.json"
    done = judging.judge(pair=(tmp_path / "a", tmp_path / "b"), scorer=object(), work_dir=tmp_path / "work",
                         json_out=out)
    assert done.json_out == out and json.loads(out.read_text()) == {} and done.shared == 3
