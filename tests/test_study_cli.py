"""evalkit study create / report / export on the command line, and the judge pass with a judge double."""

import json
import re

from click.testing import CliRunner

from evalkit.cli import main
from evalkit.web.study.db import StudyDB
from evalkit.web.study.service import run_judge, study_report
from tests.study_helpers import write_run


def _create(tmp_path, *extra):
    a = tmp_path / "runs" / "model-x"
    a = a if a.exists() else write_run(tmp_path / "runs", "model-x", {f"q{i}": "x" * (20 + 40 * (i % 2)) for i in range(8)},
                  refs={f"q{i}": f"reference {i}" for i in range(8)})
    return CliRunner().invoke(main, ["study", "create", "cli", "--run", str(a), "--reference", "--items", "5",
                                     "--design", "both", "--physicians", "3", "-k", "2",
                                     "--studies-dir", str(tmp_path / "st"), *extra])


def test_create_prints_links_and_report_and_export_run(tmp_path):
    res = _create(tmp_path)
    assert res.exit_code == 0, res.output
    links = re.findall(r"http://127\.0\.0\.1:\d+/([ro])/(\S+)", res.output)
    assert [kind for kind, _ in links] == ["r", "r", "r", "o"]
    assert "systems model-x, reference" in res.output
    again = _create(tmp_path)
    assert again.exit_code == 1 and "exists already" in again.output
    rep = CliRunner().invoke(main, ["study", "report", "cli", "--studies-dir", str(tmp_path / "st"),
                                    "--format", "json", "--resamples", "50"])
    assert rep.exit_code == 0 and json.loads(rep.output)["counts"]["ratings"] == 0
    exp = CliRunner().invoke(main, ["study", "export", "cli", "--studies-dir", str(tmp_path / "st")])
    assert exp.exit_code == 0 and exp.output.startswith("rater,pool,rubric")
    bad_role = _create(tmp_path, "--rubric", "doctor=medpalm2_lay")
    assert bad_role.exit_code == 1 and "the roles are physician, pairwise, lay" in bad_role.output
    assert _create(tmp_path, "--rubric", "medpalm2_lay").exit_code == 2
    missing = CliRunner().invoke(main, ["study", "report", "nope", "--studies-dir", str(tmp_path / "st")])
    assert missing.exit_code == 1 and "no study here" in missing.output


class JudgeDouble:
    """Answers every single-answer prompt with each axis's best choice, every pair with "1"."""

    model = "judge-double"

    def __init__(self):
        self.prompts = []

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        return None

    async def ask(self, prompt, parse):
        self.prompts.append(prompt)
        if "Answer 2" in prompt:
            names = re.findall(r"^- (\w+):", prompt, re.M)
            reply = json.dumps({n: 1 for n in names})
        else:
            reply = self.best(prompt)
        parsed, _ = parse(reply)
        return type("Reply", (), {"parsed": parsed})()

    def best(self, prompt):
        out = {}
        for line in prompt.splitlines():
            m = re.match(r"^- (\w+): .*", line)
            if m:
                choices = re.findall(r'"([^"]+)"', line)
                out[m.group(1)] = choices[-1] if choices else "yes"
        return json.dumps(out)


def test_judge_pass_then_report_sets_it_against_raters(tmp_path):
    assert _create(tmp_path).exit_code == 0
    st = str(tmp_path / "st")
    db = StudyDB(tmp_path / "st" / "cli" / "study.sqlite")
    system = {a["id"]: a["system"] for a in db.answer_rows()}
    for rater in db.raters():  # raters: the best choice everywhere; on a pair, the side showing the reference
        for pos in range(db.task_count(rater["id"])):
            task = db.task_at(rater["id"], pos)
            left = db.conn.execute("SELECT answer_a FROM tasks WHERE id = ?", (task.id,)).fetchone()[0]
            side = "A" if system[left] == "reference" else "B"
            choices = ({a["name"]: a["choices"][-1] for a in db.meta("rubrics")["physician"]["axes"]}
                       if task.rubric == "medpalm2_physician"
                       else {a["name"]: side for a in db.meta("rubrics")["pairwise"]["axes"]})
            db.save_rating(task.id, f"{rater['id']}/{pos}", choices)
    judge = JudgeDouble()
    done = run_judge("cli", judge, studies_dir=st)
    assert (done.asked, done.answered) == (15, 15)  # each answer once, each pair once (whatever order shown in)
    assert run_judge("cli", JudgeDouble(), studies_dir=st).asked == 0  # judged units are kept
    report = study_report("cli", studies_dir=st, n_resamples=50)
    axes = {a["axis"]: a for a in report["judge"]["axes"]}
    assert report["judge"]["model"] == "judge-double"
    assert axes["consensus"]["judge"]["accuracy"] == 1.0 and axes["consensus"]["n"] == 10
    assert axes["better_consensus"]["n"] == 5
    text = CliRunner().invoke(main, ["study", "report", "cli", "--studies-dir", st, "--resamples", "50"]).output
    assert "the judge (judge-double) against the raters' majority" in text


class MuteJudge(JudgeDouble):
    """Never gives a valid reply (as a judge does after its retries run out)."""

    async def ask(self, prompt, parse):
        return type("Reply", (), {"parsed": None, "error": None})()


def test_units_without_a_valid_reply_are_asked_again(tmp_path):
    assert _create(tmp_path).exit_code == 0
    st = str(tmp_path / "st")
    mute = run_judge("cli", MuteJudge(), studies_dir=st)
    assert (mute.asked, mute.answered, set(mute.errors)) == (15, 0, {"no valid reply"})
    assert StudyDB(tmp_path / "st" / "cli" / "study.sqlite").judged() == []
    done = run_judge("cli", JudgeDouble(), studies_dir=st)
    assert (done.asked, done.answered) == (15, 15)
