"""IgakuQA: the adapter (with its companion files), extraction of sets and numbers, the weighted
exam score, contraindicated picks and the report beside the examinees, on a small exam written
here whose right figures are computed by hand."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from evalkit.data.datasets import DatasetError, load_dataset
from evalkit.benchmarks.igakuqa.exam import exam_summary, extract_choices, extract_number, grade, numeric_value
from evalkit.benchmarks.igakuqa.targets import ChoiceSets, NumericAnswer
from evalkit.core.records import SampleRecord, target_to_json
from evalkit.scoring import get_scorer
from evalkit.scoring.metrics import get_metric
from tests.conftest import SHARED

IGAKU = SHARED / "eval_data" / "igakuqa"

# id, points, answer, choices?, text_only, kinki, human accuracy, the model's reply
EXAM = [
    ("199B1", "1", ["c"], True, True, [], "90", "答え: c"),
    ("199B2", "3", ["a", "c"], True, True, [], "40", "Both fit. The answers are A and C."),
    ("199B3", "3", ["b", "d"], True, True, ["e"], "30", "考察...\n答え：ｂ、ｅ"),
    ("199B4", "0", ["a"], True, True, [], "50", "答え: a"),  # excluded by the ministry
    ("199A1", "1", ["a or d"], True, True, [], "60", "正解は（ｄ）です"),
    ("199A2", "1", ["21"], False, True, [], "20", "計算すると 2.1 g/日。\n答え: 2.10"),
    ("199A3", "1", ["325"], False, True, [], "45", "答え: 330"),
    ("199A4", "1", ["e"], True, False, [], "80", "I am not sure."),
]
NUMERIC_TEXT = {"199A2": "蛋白量を求めよ。解答：①.②g/日", "199A3": "投与量を計算せよ。解答：①②③mL"}
BREAKDOWN = {"199B1": ["5", "5", "90", "0", "0"], "199A1": ["60", "10", "10", "15", "5"]}  # % per choice


def write_exam(folder: Path) -> list[Path]:
    """The exam above as IgakuQA's three files per section; returns the two exam files."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for section in ("A", "B"):
        rows = [r for r in EXAM if r[0][3] == section]
        base = folder / f"199-{section}"
        with open(f"{base}.jsonl", "w", encoding="utf-8") as q, open(f"{base}_metadata.jsonl", "w") as m, \
                open(f"{base}_translate.jsonl", "w") as t:
            for pid, points, answer, has_choices, text_only, kinki, human, _ in rows:
                choices = ["一", "二", "三", "四", "五"] if has_choices else []
                text = NUMERIC_TEXT.get(pid, f"問題 {pid}。どれか。")
                q.write(json.dumps({"problem_id": pid, "problem_text": text, "choices": choices,
                                    "text_only": text_only, "answer": answer, "points": points},
                                   ensure_ascii=False) + "\n")
                m.write(json.dumps({"problem_id": pid, "category": "x", "kinki": kinki, "reason": "",
                                    "human_accuracy": human, "breakdown": BREAKDOWN.get(pid, [])}) + "\n")
                t.write(json.dumps({"problem_id": pid, "problem_text_en": f"Question {pid}?",
                                    "choices_en": ["one", "two", "three", "four", "five"] if has_choices else [],
                                    "answer": answer}) + "\n")
        paths.append(Path(f"{base}.jsonl"))
    return paths


def scored(tmp_path: Path) -> list[dict]:
    """The stored score dicts of the model's replies above, as the scoring stage stores them."""
    scorer = get_scorer("igakuqa")
    replies = {r[0]: r[7] for r in EXAM}
    out = []
    for path in write_exam(tmp_path / "2099"):
        for item in load_dataset(path, adapter="igakuqa").items:
            sample = SampleRecord(id=item.id, dataset=item.dataset, output=replies[item.id])
            out.append({name: s.to_dict() for name, s in scorer.score(item, sample).items()})
    return out


# --------------------------------------------------------------------------- extraction


@pytest.mark.parametrize("text, letters, want, rule", [
    ("答え: a, c", "abcde", ["a", "c"], "answer_line"),
    ("よって答え：ｂ", "abcde", ["b"], "answer_line"),
    ("The answers are A and C.", "abcde", ["a", "c"], "answer_line"),
    ("Answer: Ｄ", "abcde", ["d"], "answer_line"),
    ("I think (a)(d) fit best.", "abcde", ["a", "d"], "bracketed"),
    ("reasoning...\nc、e", "abcde", ["c", "e"], "bare_letters"),
    ("<think>答え: a</think>答え: b", "abcde", ["b"], "answer_line"),
    ("Answer: C (rhabdomyolysis) fits.", "abcde", ["c"], "answer_line"),
    ("答えは b と d です。", "abcde", ["b", "d"], "answer_line"),
    ("The answer is a bit unclear.", "abcde", None, None),  # "a" begins a phrase, not an answer
    ("答え: \na. 一\nb. 二", "abcde", None, None),  # the options listed again under the cue are no answer
    ("答え: a\nb. は誤り", "abcde", ["a"], "answer_line"),  # letters are read on the cue's line only
    ("The answer is f.", "abcde", None, None),  # not a choice of this question
    ("This is a hard question about anemia.", "abcde", None, None),  # the article "a" is no answer
    ("", "abcde", None, None),
])
def test_choices_are_read_from_japanese_and_english_text(text, letters, want, rule):
    assert extract_choices(text, letters) == (want, rule)


@pytest.mark.parametrize("text, want", [
    ("答え: 2.1", ("2.1", "answer_line")), ("Answer: 1,130 kcal", ("1130", "answer_line")),
    ("計算すると\n２７％", ("27", "bare_number")), ("about forty", (None, None)),
])
def test_numbers_are_read_from_the_answer_line_or_a_last_number_line(text, want):
    assert extract_number(text) == want


def test_numeric_answers_are_read_into_the_boxes_of_the_question():
    assert str(numeric_value("21", "①.②g/日")) == "2.1"
    assert str(numeric_value("04", "①.②")) == "0.4"
    assert str(numeric_value("100", "①②.③/人口1,000対")) == "10.0"
    assert str(numeric_value("130", "1, ①②③ kcal")) == "1130"
    assert str(numeric_value("7.20", "①.②③")) == "7.20"


def test_sets_must_be_exact_alternatives_accept_either_numbers_compare_exactly():
    two = ChoiceSets((("a", "c"),))
    opts = dict.fromkeys("abcde", "x")
    assert grade(two, opts, "答え: c, a")["correct"] is True
    assert grade(two, opts, "答え: a")["correct"] is False  # a subset is wrong
    assert grade(two, opts, "答え: a, c, d")["correct"] is False  # a superset too
    either = ChoiceSets((("a",), ("d",)))
    assert grade(either, opts, "答え: d")["correct"] and grade(either, opts, "答え: a")["correct"]
    assert grade(either, opts, "答え: a, d")["correct"] is False
    number = NumericAnswer("2.1", "2.1", "")
    assert grade(number, {}, "答え: 2.10")["correct"] is True
    assert grade(number, {}, "答え: 2.14")["correct"] is False  # no rounding is done for the model
    boxes = NumericAnswer("2.1", "21", "①.②")
    assert grade(boxes, {}, "答え: 21")["correct"] is True  # the boxes' digits, as the sheet reads them
    assert grade(boxes, {}, "答え: 12")["correct"] is False
    kcal = NumericAnswer("1130", "130", "1, ①②③ kcal")
    assert grade(kcal, {}, "Answer: 1,130 kcal")["correct"] and grade(kcal, {}, "Answer: 130")["correct"]
    assert grade(kcal, {}, "Answer: 2130")["correct"] is False
    assert grade(two, opts, "答え: a, e", kinki=["e"])["kinki_picked"] == ["e"]
    assert grade(None, opts, "答え: a")["correct"] is False  # an item without a gold is never right


# --------------------------------------------------------------------------- adapter


def test_adapter_joins_metadata_and_translation_by_problem_id(tmp_path):
    a_path, b_path = write_exam(tmp_path / "2099")
    items = {i.id: i for i in load_dataset(b_path, adapter="igakuqa").items}
    b3 = items["199B3"]
    assert b3.options == {"a": "一", "b": "二", "c": "三", "d": "四", "e": "五"} and b3.answer_idx is None
    assert b3.target == ChoiceSets((("b", "d"),))
    assert target_to_json(b3.target) == {"kind": "choices", "accept": [["b", "d"]]}  # the stored form
    assert b3.meta["kinki"] == ["e"] and b3.meta["human_accuracy"] == 30.0 and b3.meta["points"] == 3
    assert b3.meta["required"] is True and b3.meta["exam"] == "199" and b3.meta["section"] == "B"
    en = {i.id: i for i in load_dataset(a_path, adapter="igakuqa_en").items}
    assert en["199A1"].question == "Question 199A1?" and en["199A1"].options["e"] == "five"
    assert en["199A1"].dataset == items["199B3"].dataset.replace("-B", "-A") + "_en"  # never the Japanese keys
    assert en["199A2"].target == NumericAnswer("2.1", "21", "①.②g/日")
    assert target_to_json(en["199A2"].target) == {"kind": "number", "value": "2.1", "answer": "21",
                                                  "template": "①.②g/日"}


def test_a_missing_companion_file_is_named(tmp_path):
    _, b_path = write_exam(tmp_path / "2099")
    (tmp_path / "2099" / "199-B_metadata.jsonl").unlink()
    with pytest.raises(DatasetError, match="199-B_metadata.jsonl from the same folder, and .* is missing"):
        load_dataset(b_path, adapter="igakuqa")


# --------------------------------------------------------------------------- exam score, report


def test_weighted_exam_score_equals_the_hand_computed_one(tmp_path):
    scores = scored(tmp_path)
    exam = [s["igakuqa"] for s in scores]
    value = get_metric("weighted_proportion").aggregate(exam)
    # counted: B1 1 + B2 3 + B3 3 + A1..A4 1 each = 11 points; earned B1 1 + B2 3 + A1 1 + A2 1 = 6
    assert value.value == pytest.approx(6 / 11) and value.n == 7
    assert value.extra["excluded"] == 1 and value.extra["weight_total"] == 11
    kinki = get_scorer("igakuqa").metrics["kinki_picked"].aggregate([s["kinki_picked"] for s in scores])
    assert kinki.value == 1 and kinki.n == 7  # B3 picked the contraindicated e; B4 (excluded) does not count
    excluded_pick = [{"value": True, "meta": {"weight": 0}}, {"value": True, "meta": {"weight": 3}}]
    assert get_scorer("igakuqa").metrics["kinki_picked"].aggregate(excluded_pick).value == 1


def test_the_report_beside_the_examinees_equals_the_hand_computed_one(tmp_path):
    exam = [s["igakuqa"] for s in scored(tmp_path)]
    criteria = {"199": {"required": [8, 10], "general": [2, 4], "kinki_max": 3, "questions_counted": 7}}
    summary = exam_summary(exam, criteria)
    whole = summary["exams"]["199"]
    assert whole["n"] == 7 and whole["model_accuracy"] == pytest.approx(4 / 7)
    assert whole["examinee_accuracy"] == pytest.approx((90 + 40 + 30 + 60 + 20 + 45 + 80) / 700)
    assert whole["points"] == 6 and whole["points_total"] == 11 and whole["excluded"] == 1
    assert whole["exam_score"] == pytest.approx(6 / 11)
    # examinees who made the model's single choice: B1 c (90%), A1 d (15%); sets, numbers, unparsed have none
    assert whole["examinees_same_choice"] == pytest.approx((0.90 + 0.15) / 2)
    assert summary["sections"]["199-B"]["model_accuracy"] == pytest.approx(2 / 3)
    hard = summary["hard"]  # examinees under 50%: B2 (right), B3, A2 (right), A3
    assert hard["n"] == 4 and hard["model_accuracy"] == 0.5
    assert hard["examinee_accuracy"] == pytest.approx((40 + 30 + 20 + 45) / 400)
    assert summary["text_only"]["n"] == 6 and summary["text_only"]["model_accuracy"] == pytest.approx(4 / 6)
    assert summary["with_image"]["n"] == 1 and summary["with_image"]["model_accuracy"] == 0
    verdict = summary["pass"]["199"]
    # required part: 4 of 7 points < 80%; the rest: 2 of 4 >= 2/4; one contraindicated pick <= 3
    assert verdict["required"] == [4, 7] and verdict["general"] == [2, 4] and verdict["kinki"] == 1
    assert verdict["complete"] is True and verdict["passed"] is False
    incomplete = exam_summary(exam[1:], criteria)["pass"]["199"]  # A1 missing
    assert incomplete["complete"] is False and incomplete["passed"] is None


@pytest.mark.skipif(not IGAKU.is_dir(), reason=f"{IGAKU} is absent")
def test_the_published_files_load_verified_with_their_shapes():
    counts = {"choices": 0, "number": 0, "sets": 0, "alternatives": 0, "excluded": 0}
    for path in sorted(IGAKU.glob("*/*.jsonl")):
        if "_" in path.name:
            continue
        loaded = load_dataset(path)
        assert loaded.verified is True and len(loaded.extra_files) == 2
        for item in loaded.items:
            counts["number" if isinstance(item.target, NumericAnswer) else "choices"] += 1
            accept = item.target.accept if isinstance(item.target, ChoiceSets) else ()
            counts["sets"] += len(accept) == 1 and len(accept[0]) > 1
            counts["alternatives"] += len(accept) > 1
            counts["excluded"] += item.meta["points"] == 0
    assert counts == {"choices": 1988, "number": 12, "sets": 298, "alternatives": 1, "excluded": 11}


# --------------------------------------------------------------------------- end to end, against a stand-in


@pytest.fixture
def standin(tmp_path):
    """tests/judge_server.py as the answering model: each question's prompt gets the reply of EXAM."""
    from tests.serverproc import ServerProcess

    rules = [{"contains": NUMERIC_TEXT.get(pid, f"問題 {pid}。"), "replies": [reply]} for pid, *_, reply in EXAM]
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(rules, ensure_ascii=False), encoding="utf-8")
    srv = ServerProcess(Path(__file__).resolve().parent / "judge_server.py", "--rules", str(path))
    yield srv
    srv.stop()


def test_run_and_report_end_to_end_against_a_stand_in(standin, tmp_path):
    from click.testing import CliRunner

    from evalkit.cli import main

    a_path, b_path = write_exam(tmp_path / "2099")
    args = ["run", "--eval-file", str(a_path), "--eval-file", str(b_path), "--adapter", "igakuqa", "--prompt",
            "igakuqa_strict", "--scorer", "igakuqa", "--endpoint", standin.url, "--model", "judge-double",
            "--results-dir", str(tmp_path / "res"), "--quiet"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    run = next((tmp_path / "res").glob("*/*"))
    samples = {s["id"]: s for s in map(json.loads, (run / "samples.jsonl").read_text().splitlines())}
    assert samples["199B2"]["scores"]["igakuqa"] == {
        "value": True, "answer": "a,c",
        "meta": {"exam": "199", "section": "B", "text_only": True, "human_accuracy": 40.0, "required": True,
                 "weight": 3, "method": "answer_line", "kinki_picked": [], "examinees_same": None}}
    assert "答え: 記号" in samples["199B2"]["prompt"] and samples["199B2"]["correct"] is True
    assert samples["199A4"]["pred"] is None and samples["199A4"]["correct"] is False  # unparsed: wrong
    rep = CliRunner().invoke(main, ["report", str(run), "--format", "markdown"])
    assert rep.exit_code == 0, rep.output
    # the scorer's declared metrics, as the manifest records them: section B's exam score 4/7 points (B4 excluded)
    assert json.loads((run / "manifest.json").read_text())["scoring"]["metrics"] == {
        "igakuqa": {"name": "weighted_proportion"}, "kinki_picked": {"name": "count"}}
    assert "| 199-B | igakuqa | weighted_proportion | 3 | 57.1 |" in rep.output
    assert "| 199-B | kinki_picked | count | 3 | 1.000 |" in rep.output
    section = rep.output.split("## IgakuQA beside the examinees", 1)[1]
    # exam 199: 7 counted, 4 right (57.1%), examinees 52.1%, exam score 6/11 = 54.5%, 1 excluded, 1 kinki pick
    assert "| 199 | 7 | 57.1 | 52.1 | 57.1 | 54.5 | 1 | 1 | 52.5 |" in section
    assert "| hard (examinees < 50%) | 4 | 50.0 | 33.8 |" in section
    check_section_in_html_and_text(run, tmp_path)


def pct(num: float, den: float) -> str:
    return f"{100 * num / den:.1f}"


def check_section_in_html_and_text(run: Path, tmp_path: Path) -> None:
    """The scorer's section on the HTML page and in the text (rich) report, its cells the hand-computed ones."""
    from click.testing import CliRunner
    from rich.console import Console

    from evalkit.cli import main
    from evalkit.results.report import build_report, report_tables
    from tests.html_sections import html_sections

    page = tmp_path / "report.html"
    r = CliRunner().invoke(main, ["report", str(run), "--format", "html", "-o", str(page)])
    assert r.exit_code == 0, r.output
    header, rows, notes = html_sections(page.read_text(encoding="utf-8"))["IgakuQA beside the examinees"]
    assert header[:7] == ["run", "exam / subset", "n", "model acc %", "examinees acc %", "model on same %",
                          "exam score %"]
    cells = {row[1]: row[2:] for row in rows}
    # exam 199, 7 counted (B4 excluded): 4 right; examinees 365/700; exam score 6/11 points; one kinki pick
    # (B3's e); examinees who made the model's single choice: B1 c 90%, A1 d 15%; no criteria for exam 199
    assert cells["199"] == ["7", pct(4, 7), pct(365, 700), pct(4, 7), pct(6, 11), "1", "1", pct(1.05, 2), "-"]
    # A: A1, A2 right of 4; examinees (60+20+45+80)/400; 2 of 4 points; A1's d chosen by 15%
    assert cells["199-A"] == ["4", pct(2, 4), pct(205, 400), pct(2, 4), pct(2, 4), "0", "0", "15.0", ""]
    # B: B1, B2 right of 3 counted; examinees (90+40+30)/300; 4 of 7 points; B4 excluded; B3 picked e
    assert cells["199-B"] == ["3", pct(2, 3), pct(160, 300), pct(2, 3), pct(4, 7), "1", "1", "90.0", ""]
    assert cells["hard (examinees < 50%)"][:3] == ["4", pct(2, 4), pct(135, 400)]  # B2, B3, A2, A3
    assert cells["text_only"][:2] == ["6", pct(4, 6)] and cells["with_image"][:2] == ["1", "0.0"]
    assert any("contraindicated" in n for n in notes)
    console = Console(width=400, record=True, file=io.StringIO())
    for table in report_tables(build_report([run])):
        console.print(table)
    text = console.export_text().split("IgakuQA beside the examinees", 1)[1]
    line = next(x for x in text.splitlines() if "│ 199-B " in x)
    assert [c.strip() for c in line.split("│")[3:9]] == ["3", "66.7", "53.3", "66.7", "57.1", "1"]


def test_suite_lists_the_thirty_sections_and_criteria_that_match_the_data():
    from evalkit.benchmarks.igakuqa.exam import passing_criteria
    from evalkit.data.suites import load_suite

    suite = load_suite("igakuqa")
    assert [b.column for b in suite.benchmarks][:7] == ["112-A", "112-B", "112-C", "112-D", "112-E", "112-F", "113-A"]
    assert len(suite.benchmarks) == 30 and suite.prompt == "igakuqa_strict"
    criteria = passing_criteria()
    assert sorted(criteria) == ["112", "113", "114", "115", "116"]
    for exam, rule in criteria.items():
        assert rule["required"][0] * 5 == rule["required"][1] * 4 or rule["required"] == [158, 197]
        assert rule["kinki_max"] == 3 and "MHLW" in rule["source"]
    if IGAKU.is_dir():  # the published totals are the data's, once its excluded questions are left out
        for exam, rule in criteria.items():
            items = [i for f in sorted(IGAKU.glob(f"*/{exam}-?.jsonl")) for i in load_dataset(f).items]
            counted = [i for i in items if i.meta["points"] > 0]
            assert len(counted) == rule["questions_counted"]
            assert sum(i.meta["points"] for i in counted if i.meta["required"]) == rule["required"][1]
            assert sum(1 for i in counted if not i.meta["required"]) == rule["general"][1]


@pytest.mark.skipif(not IGAKU.is_dir(), reason=f"{IGAKU} is absent")
def test_a_companion_file_loaded_alone_says_which_file_to_load():
    with pytest.raises(DatasetError, match="read beside its exam file"):
        load_dataset(IGAKU / "2018" / "112-A_metadata.jsonl")


# --------------------------------------------------------------------------- a suite that names its scorer


def two_section_suite(tmp_path: Path, **suite_fields) -> tuple[Path, Path]:
    """A data folder holding the exam above at the registered files of exam 112's sections A and B, and a
    suite file over those two benchmarks that names the igakuqa scorer (SUITE_FIELDS added to it)."""
    data = tmp_path / "data"
    folder = data / "igakuqa" / "2018"
    folder.mkdir(parents=True)
    for path in write_exam(tmp_path / "2099"):
        section = path.stem[-1]
        for suffix in ("", "_metadata", "_translate"):
            (folder / f"112-{section}{suffix}.jsonl").write_bytes(path.with_name(f"{path.stem}{suffix}.jsonl")
                                                                  .read_bytes())
    doc = {"name": "igakuqa_two", "title": "two sections", "prompt": "igakuqa_strict", "scorers": ["igakuqa"],
           "table_score": "igakuqa",
           "benchmarks": [{"name": "igakuqa_112_a", "column": "112-A"}, {"name": "igakuqa_112_b", "column": "112-B"}],
           **suite_fields}
    suite = tmp_path / "igakuqa_two.json"
    suite.write_text(json.dumps(doc), encoding="utf-8")
    return data, suite


def test_the_bundled_suite_names_its_scorer():
    from evalkit.run.tasks import from_suite

    tasks = from_suite("igakuqa", extra_data=["more.jsonl"])
    assert {t.scorers for t in tasks} == {("igakuqa",)} and len(tasks) == 31


def test_a_suite_row_may_name_its_own_scorers_and_options(tmp_path):
    from evalkit.data.suites import SuiteError, load_suite
    from evalkit.run.tasks import from_suite

    _, path = two_section_suite(tmp_path, scorer_options={"igakuqa": {"credited_to_all": "199A3"}})
    doc = json.loads(path.read_text())
    doc["benchmarks"][1].update(scorers=["igakuqa", "tests.toy_scorers:ToyScorer"],
                                scorer_options={"igakuqa": {"credited_to_all": "199B3"}})
    path.write_text(json.dumps(doc))
    a, b = from_suite(load_suite(str(path)))
    assert a.scorers == ("igakuqa",) and a.scorer_options == {"igakuqa": {"credited_to_all": "199A3"}}
    assert b.scorers == ("igakuqa", "tests.toy_scorers:ToyScorer")
    assert b.scorer_options == {"igakuqa": {"credited_to_all": "199B3"}}
    doc["scorers"] = "igakuqa"
    path.write_text(json.dumps(doc))
    with pytest.raises(SuiteError, match="'scorers' must be a non-empty list"):
        load_suite(str(path))


def test_a_suite_run_scores_with_the_suites_scorer_and_a_flag_overrides_it(standin, tmp_path):
    from click.testing import CliRunner

    from evalkit.cli import main

    data, suite = two_section_suite(tmp_path)
    args = ["run", "--suite", str(suite), "--data-dir", str(data), "--endpoint", standin.url, "--model",
            "judge-double", "--results-dir", str(tmp_path / "res"), "--quiet"]  # no --scorer
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    (run,) = (tmp_path / "res").glob("*/*")
    scoring = json.loads((run / "manifest.json").read_text())["scoring"]
    assert [s["name"] for s in scoring["scorers"]] == ["igakuqa"]
    assert scoring["metrics"] == {"igakuqa": {"name": "weighted_proportion"}, "kinki_picked": {"name": "count"}}
    rep = CliRunner().invoke(main, ["report", str(run), "--format", "json"])
    assert rep.exit_code == 0, rep.output
    doc = json.loads(rep.output)
    cells = {(row["dataset"], name): c["mean"] for row in doc["rows"] for name, c in row["scores"].items()}
    # exam score (points earned / points): A 1+1 of 4 (A1, A2 right); B 1+3 of 7 (B4 excluded: points 0)
    assert cells[("igakuqa_112_a", "igakuqa")] == pytest.approx(2 / 4)
    assert cells[("igakuqa_112_b", "igakuqa")] == pytest.approx(4 / 7)
    assert cells[("igakuqa_112_b", "kinki_picked")] == 1
    assert [t["title"] for t in doc["sections"]] == ["IgakuQA beside the examinees"]  # the scorer's section
    # the suite table shows the suite's table score, the exam score per section in %, and their mean
    (table,) = doc["suites"]
    assert table["runs"][0]["scores"] == {"112-A": 50.0, "112-B": pytest.approx(400 / 7)}
    assert table["runs"][0]["average"] == pytest.approx((50 + 400 / 7) / 2)
    # a --scorer flag overrides the suite's: the saved generations are scored again, nothing is asked
    requests = standin.stats()["requests"]
    r = CliRunner().invoke(main, [*args, "--scorer", "tests.toy_scorers:ToyScorer"])
    assert r.exit_code == 0, r.output
    assert standin.stats()["requests"] == requests
    assert [s["name"] for s in json.loads((run / "manifest.json").read_text())["scoring"]["scorers"]] == ["toy"]


def test_api_evaluate_a_suite_scores_with_its_scorer_and_options(standin, tmp_path):
    from evalkit import api

    data, suite = two_section_suite(tmp_path, scorer_options={"igakuqa": {"credited_to_all": "199A3"}})
    evaluation = api.evaluate(suite=str(suite), endpoint=standin.url, model="judge-double", data_dir=data,
                              results_dir=str(tmp_path / "res"))
    assert [t.task.scorers for t in evaluation] == [("igakuqa",), ("igakuqa",)]
    (run,) = evaluation.runs
    scoring = json.loads((run.run_dir / "manifest.json").read_text())["scoring"]
    assert scoring["scorers"] == [{"name": "igakuqa", "spec": {"rules": "igakuqa-2", "credited_to_all": ["199A3"]}}]
    report = api.report([run.run_dir])
    a = next(r for r in report.rows if r.dataset == "igakuqa_112_a")
    # A3 credited to all by the suite's option: A1, A2, A3 right, 3 of 4 points
    assert a.scores["igakuqa"].mean == pytest.approx(3 / 4)


def test_an_exam_file_without_scorer_is_scored_by_its_targets_scorer(standin, tmp_path):
    """IgakuQA's targets (letter sets, numbers) name their scorer, so `--scorer igakuqa` is not needed."""
    from click.testing import CliRunner

    from evalkit.cli import main

    a_path, b_path = write_exam(tmp_path / "2099")
    args = ["run", "--eval-file", str(a_path), "--eval-file", str(b_path), "--adapter", "igakuqa", "--prompt",
            "igakuqa_strict", "--endpoint", standin.url, "--model", "judge-double",
            "--results-dir", str(tmp_path / "res"), "--quiet"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    run = next((tmp_path / "res").glob("*/*"))
    scoring = json.loads((run / "manifest.json").read_text())["scoring"]
    assert [s["name"] for s in scoring["scorers"]] == ["igakuqa"]
    samples = {s["id"]: s for s in map(json.loads, (run / "samples.jsonl").read_text().splitlines())}
    assert samples["199B2"]["scores"]["igakuqa"]["value"] is True and samples["199B2"]["correct"] is True
    # rescoring with no scorer named takes the items' own too (it refused these samples: no answer_idx)
    from evalkit import api

    done = api.rescore(run)  # evalkit score RUN: the same scorer, and the file says so
    again = {s["id"]: s for s in done.samples}
    assert again["199B2"]["scores"]["igakuqa"] == samples["199B2"]["scores"]["igakuqa"]
    assert again.keys() == samples.keys()
    assert done.output.name == "samples.rescored-igakuqa.jsonl" and [s.name for s in done.plan.scorers] == ["igakuqa"]


def test_default_scorers_follow_the_item_kind():
    from evalkit.core.records import Item, References

    choice = Item("1", "d", "q", options={"A": "x", "B": "y"}, answer_idx="A")
    assert choice.default_scorers == ("choice",)
    assert Item("2", "d", "q", options={"a": "x"}, target=ChoiceSets((("a",),))).default_scorers == ("igakuqa",)
    assert Item("3", "d", "q", target=NumericAnswer("1.5", "15", "X.X")).default_scorers == ("igakuqa",)
    assert Item("4", "d", "q", target=References(("ref",))).default_scorers == ()


# --------------------------------------------------------------------------- issue 29, item 13


def test_an_exam_run_without_prompt_uses_the_exam_prompt_and_its_end_table_shows_the_score(standin, tmp_path):
    """No --prompt: the igakuqa adapter's own prompt (not MedReason's English one-letter "strict"); the
    end-of-run table and summary.json give the exam score as the report does (it was "-" and null)."""
    from click.testing import CliRunner

    from evalkit.cli import main

    a_path, b_path = write_exam(tmp_path / "2099")
    args = ["run", "--eval-file", str(a_path), "--eval-file", str(b_path), "--adapter", "igakuqa",
            "--endpoint", standin.url, "--model", "judge-double", "--results-dir", str(tmp_path / "res"), "--quiet"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    run = next((tmp_path / "res").glob("*/*"))
    assert json.loads((run / "manifest.json").read_text())["prompt"] == "igakuqa_strict"
    summary = json.loads((run / "summary.json").read_text())
    # section B: 4 of 7 points (B4 excluded); section A: 2 of 4
    assert summary["datasets"]["199-B"]["scores"]["igakuqa"]["value"] == pytest.approx(4 / 7)
    assert summary["datasets"]["199-A"]["scores"]["igakuqa"]["value"] == pytest.approx(2 / 4)
    rows = [x for x in r.output.splitlines() if "199-B" in x]
    assert "57.1% igakuqa" in rows[0]  # the end-of-run table's row (was "-")
    assert any("weighted_proportion" in x and "57.1%" in x for x in rows[1:])  # and the scores table's


def test_a_registered_exam_names_its_prompt_and_a_flag_or_adapter_overrides_it():
    from evalkit.config import RunConfig
    from evalkit.data.registry import get_benchmark
    from evalkit.run.plan import plan_runs, resolve_config
    from evalkit.run.tasks import Task

    assert get_benchmark("igakuqa_112_a").prompt == "igakuqa_strict" and get_benchmark("medqa").prompt is None
    base = RunConfig(eval_files=[], endpoint="http://127.0.0.1:1")

    def prompt(data, **overrides):
        [run] = plan_runs([Task(data)], base, overrides)
        return run.config.prompt

    assert prompt("igakuqa_112_a") == "igakuqa_strict"
    assert prompt("igakuqa_112_a", prompt="strict") == "strict"  # --prompt wins
    assert prompt("igakuqa_112_a", adapter="igakuqa_en") == "igakuqa_en"  # the English variant's own
    assert prompt("medqa") is None and resolve_config(RunConfig(eval_files=[], prompt=None)).prompt == "strict"
    assert prompt("igakuqa_112_a", strategy="ensemble-refinement") is None  # er_sample, as before
