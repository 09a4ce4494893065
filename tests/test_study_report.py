"""The study report: pairwise outcomes turned round on "worse" axes, sections per pool, every format; the
judge against the raters (ceiling and floors) on a hand-made case."""

import json

from evalkit.web.study.create import create_study
from evalkit.web.study.db import StudyDB
from evalkit.web.study.judge import judge_agreement
from evalkit.web.study.render import render
from evalkit.web.study.report import X, Y, TIE, pair_outcome
from evalkit.web.study.rubric import StudyAxis, StudyRubric, load_study_rubric
from evalkit.web.study.service import study_report
from tests.study_helpers import plain_token, write_run


def test_pair_outcome_turns_round_on_worse_axes():
    better = StudyAxis("b", "q", ("A", "B", "tie"), picks="better")
    worse = StudyAxis("w", "q", ("A", "B", "tie"), picks="worse")
    assert pair_outcome(better, "A", "m1", "m2", "m1") == X
    assert pair_outcome(better, "A", "m2", "m1", "m1") == Y  # the sides were swapped for this rater
    assert pair_outcome(worse, "A", "m1", "m2", "m1") == Y  # m1 has more of the fault: m2 preferred
    assert pair_outcome(worse, "tie", "m1", "m2", "m1") == TIE


def _rated_study(tmp_path):
    a = write_run(tmp_path / "runs", "run-a", {f"q{i}": "short" for i in range(4)},
                  refs={f"q{i}": "a much longer reference answer " * 3 for i in range(4)})
    made = create_study("rep", [a], new_token=plain_token, reference=True, studies_dir=str(tmp_path / "st"),
                        design="both", items=4, physicians=3, lay=2, raters_per_answer=2, seed=0)
    db = StudyDB(made.path)
    rubrics = {r.name: r for r in (load_study_rubric("medpalm2_physician"), load_study_rubric("medpalm2_pairwise"),
                                   load_study_rubric("medpalm2_lay"))}
    systems = {a["id"]: a["system"] for a in db.answer_rows()}
    for rater in db.raters():
        for pos in range(db.task_count(rater["id"])):
            task = db.task_at(rater["id"], pos)
            row = db.conn.execute("SELECT answer_a, answer_b FROM tasks WHERE id = ?", (task.id,)).fetchone()
            rubric = rubrics[task.rubric]
            if rubric.pairwise:  # every rater prefers the reference on every axis
                ref_left = systems[row["answer_a"]] == "reference"
                choices = {ax.name: ("A" if ref_left else "B") if ax.picks == "better" else ("B" if ref_left else "A")
                           for ax in rubric.axes}
            else:  # the reference's answers get the best choice, the run's the worst
                best = systems[row["answer_a"]] == "reference"
                choices = {ax.name: ax.choices[-1] if best else ax.choices[0] for ax in rubric.axes}
            db.save_rating(task.id, f"{rater['id']}-{pos}", choices)
    return made, db


def test_report_sections_and_formats(tmp_path):
    made, db = _rated_study(tmp_path)
    report = study_report("rep", studies_dir=str(tmp_path / "st"), n_resamples=100)
    pools = [s["pool"] for s in report["independent"]]
    assert pools == ["physician", "lay"]
    consensus = report["independent"][0]["axes"][0]
    assert consensus["axis"] == "consensus"
    ref = {s["value"]: s["share"] for s in consensus["systems"]["reference"]}
    run = {s["value"]: s["share"] for s in consensus["systems"]["run-a"]}
    assert ref["aligned with consensus"] == 1.0 and run["opposed to consensus"] == 1.0
    assert consensus["agreement"]["randolph_kappa"] == 1.0
    for ax in report["pairwise"]["axes"]:
        (pair,) = ax["pairs"]
        assert (pair["system_x"], pair["system_y"]) == ("run-a", "reference")
        assert pair["y"] == 1.0 and pair["x"] == 0.0 and pair["p_value"] == 2 / 16  # 4 pairs: exact
    text = render(report, "text")
    assert "Randolph's kappa 1.00" in text and "reference" in text
    assert "| system |" in render(report, "markdown")
    assert json.loads(render(report, "json"))["counts"]["ratings"] == report["counts"]["ratings"]
    html = render(report, "html")
    assert "<svg" in html and "<script" not in html


def test_judge_against_raters_by_hand():
    rubric = StudyRubric("r", False, (StudyAxis("ok", "q", ("no", "yes")),))
    answers = [{"id": i, "system": "s", "text": "x" * (10 if i < 2 else 100)} for i in range(4)]
    votes = {0: ["no", "no", "no"], 1: ["no", "no", "yes"], 2: ["yes", "yes", "yes"], 3: ["yes", "yes", "no"]}
    rows = [{"answer_a": a, "answer_b": None, "system_a": "s", "system_b": None, "choices": {"ok": v}}
            for a, vs in votes.items() for v in vs]
    judged = [{"answer_a": a, "answer_b": None, "rubric": "r", "choices": {"ok": v}}
              for a, v in {0: "no", 1: "yes", 2: "yes", 3: "yes"}.items()]
    (axis,) = judge_agreement(rows, judged, rubric, ["s"], answers, n_resamples=0)
    assert axis["n"] == 4 and axis["judge"]["accuracy"] == 0.75
    # ceiling: 12 rater-vs-others pairs; others' majority exists when the two others agree:
    # unit 0: 3 pairs all agree; unit 1: the 'yes' rater vs (no,no) wrong, the 'no' raters vs (no,yes) no majority
    # -> unit 1 gives one pair (wrong); likewise unit 3: one wrong pair; unit 2: 3 right. 6 right of 8.
    assert axis["ceiling"]["n"] == 8 and axis["ceiling"]["accuracy"] == 0.75
    assert axis["majority_floor"]["accuracy"] == 0.5
    assert axis["length_floor"]["accuracy"] == 1.0  # short answers 'no', long 'yes': length alone suffices here


def test_cannot_rate_is_counted_not_used(tmp_path):
    a = write_run(tmp_path / "runs", "a", {f"q{i}": "answer" for i in range(3)})
    b = write_run(tmp_path / "runs", "b", {f"q{i}": "other answer" for i in range(3)})
    made = create_study("cr", [a, b], new_token=plain_token, studies_dir=str(tmp_path / "st"), items=3,
                        physicians=2, raters_per_answer=2)
    db = StudyDB(made.path)
    system = {x["id"]: x["system"] for x in db.answer_rows()}
    rubric = load_study_rubric("medpalm2_physician")
    for rater in db.raters():  # every answer of b is marked cannot rate
        for pos in range(db.task_count(rater["id"])):
            task = db.task_at(rater["id"], pos)
            left = db.conn.execute("SELECT answer_a FROM tasks WHERE id = ?", (task.id,)).fetchone()[0]
            if system[left] == "b":
                db.save_rating(task.id, f"{rater['id']}-{pos}", {}, cannot_rate="outside my field")
            else:
                db.save_rating(task.id, f"{rater['id']}-{pos}", {x.name: x.choices[0] for x in rubric.axes})
    report = study_report("cr", studies_dir=str(tmp_path / "st"), n_resamples=20)
    assert report["counts"] == {"ratings": 12, "cannot_rate": 6, "raters": 2}
    assert list(report["independent"][0]["axes"][0]["systems"]) == ["a"]
    assert "6 marked cannot rate" in render(report, "text") and "<svg" in render(report, "html")
