"""Overlap analysis that must not be silently wrong: a training file cut short or unreadable is named
and fails the scan (unless accepted), an overlap file made for another version of a benchmark is
refused by report, leaderboard, gate and compare, and one very long JSON line is scanned in bounded
memory (issue 29, items 3, 4 and 6)."""

from __future__ import annotations

import gzip
import json
import random
import tracemalloc

import pytest
from click.testing import CliRunner

from evalkit.cli import main
from evalkit.data.corpus import analyse_overlap
from evalkit.core.records import Item
from tests.runfactory import make_sample, write_run
from tests.test_overlap import LONG_Q, SECOND_Q, THIRD_Q

WORDS = "the of patient and with was in to for on study clinical results data".split()


def _filler(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) + str(rng.randrange(1000)) for _ in range(n))


def _item(i: str, q: str) -> Item:
    return Item(id=i, dataset="d", question=q, options={"A": "x", "B": "y"}, answer_idx="A")


def _invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


# ---------------------------------------------------------------------- item 3: partial corpora


def _body(rng: random.Random) -> bytes:
    """About 2 MB of text: LONG_Q near the start, SECOND_Q at the very end."""
    lines = [_filler(rng, 30) for _ in range(200)] + [LONG_Q] + [_filler(rng, 30) for _ in range(9000)]
    return ("\n".join(lines) + "\n" + SECOND_Q + "\n").encode()


def test_a_zstd_file_cut_in_half_is_incomplete_and_what_was_read_counts(tmp_path):
    zstandard = pytest.importorskip("zstandard")
    body = _body(random.Random(3))
    data = zstandard.ZstdCompressor().compress(body)
    (tmp_path / "cut.txt.zst").write_bytes(data[:len(data) // 2])
    result = analyse_overlap([_item("a", LONG_Q), _item("b", SECOND_Q)], [tmp_path])
    name = str(tmp_path / "cut.txt.zst")
    assert any(p.startswith(f"{name}: incomplete") for p in result.problems), result.problems
    assert result.partial and list(result.incomplete) == [name] and not result.unreadable
    assert "cut short" in result.incomplete[name]
    assert 0 < result.header["bytes_read"] < len(body)
    assert result.header["complete"] is False and list(result.header["incomplete"]) == [name]
    rows = {r["id"]: r for r in result.rows}
    assert rows["a"]["whole_question"] and not rows["b"]["ngram_overlap"]  # read before the cut / after it


def test_a_truncated_gzip_file_keeps_what_was_read_at_the_default_chunk_size(tmp_path):
    body = _body(random.Random(4))
    data = gzip.compress(body)
    (tmp_path / "cut.txt.gz").write_bytes(data[:len(data) // 2])
    (tmp_path / "z_good.jsonl.gz").write_bytes(gzip.compress(json.dumps({"t": THIRD_Q}).encode() + b"\n"))
    result = analyse_overlap([_item("a", LONG_Q), _item("b", SECOND_Q), _item("c", THIRD_Q)], [tmp_path])
    rows = {r["id"]: r for r in result.rows}
    assert rows["a"]["whole_question"], "what was decoded before the cut must be searched"
    assert rows["c"]["whole_question"] and not rows["b"]["ngram_overlap"]
    assert list(result.incomplete) == [str(tmp_path / "cut.txt.gz")]
    assert result.header["bytes_read"] > len(body) // 4


def test_several_gzip_members_are_all_read(tmp_path):
    (tmp_path / "two.txt.gz").write_bytes(gzip.compress(b"intro\n") + gzip.compress(LONG_Q.encode()) + b"\0" * 8)
    result = analyse_overlap([_item("a", LONG_Q)], [tmp_path])
    assert not result.partial and result.rows[0]["whole_question"]


def _bench(path, questions):
    path.write_text("".join(json.dumps({"id": i, "question": q, "options": {"A": "a", "B": "b"}, "answer_idx": "A"})
                            + "\n" for i, q in questions))
    return path


def test_overlap_command_exits_1_on_a_partial_corpus_unless_accepted(tmp_path):
    bench = _bench(tmp_path / "bench.jsonl", [("1", LONG_Q), ("2", SECOND_Q)])
    train = tmp_path / "train"
    train.mkdir()
    (train / "a.txt").write_text(LONG_Q + "\n")
    (train / "b.txt.gz").write_bytes(b"this is not gzip data at all\n")  # nothing decodes: unreadable
    data = gzip.compress(_body(random.Random(5)))
    (train / "c.txt.gz").write_bytes(data[:len(data) // 2])  # incomplete
    out = tmp_path / "overlap.jsonl"
    res = _invoke("overlap", "--train", train, "--eval-file", bench, "-o", out)
    assert res.exit_code == 1, res.output
    assert "b.txt.gz: unreadable" in res.output and "c.txt.gz: incomplete" in res.output
    assert "--accept-partial" in res.output
    header = json.loads(out.read_text().splitlines()[0])["overlap_header"]  # written anyway, with what was read
    assert list(header["unreadable"]) == [str(train / "b.txt.gz")]
    assert list(header["incomplete"]) == [str(train / "c.txt.gz")]
    assert json.loads(out.read_text().splitlines()[1])["medpalm_overlap"] is True
    res = _invoke("overlap", "--train", train, "--eval-file", bench, "-o", out, "--accept-partial")
    assert res.exit_code == 0, res.output
    assert "b.txt.gz: unreadable" in res.output
    # an overlap file from a partial scan says so wherever it is used
    run = write_run(tmp_path / "results", "r", [make_sample("1", "bench", question=LONG_Q),
                                                 make_sample("2", "bench", question=SECOND_Q)])
    res = _invoke("report", run, "--overlap", out, "--format", "json")
    assert res.exit_code == 0, res.output
    assert "partial scan" in res.stderr


# ---------------------------------------------------------------------- item 4: another benchmark version

EDITED = {"3": "Which drug reverses the effect of heparin in a patient who bleeds after cardiac surgery today?",
          "5": "A newborn has bilious vomiting on the first day of life; which imaging study comes first?",
          "7": "Which electrolyte disorder causes peaked T waves on the ECG of a patient with renal failure?"}


def _versions(tmp_path):
    """An overlap file made from bench v1 (every item in the corpus); a run of v2, whose items 3, 5
    and 7 have other questions under the same ids; the baseline and candidate runs of v2."""
    rng = random.Random(11)
    v1 = [(str(i), f"Question {i}: " + _filler(rng, 20) + "?") for i in range(10)]
    v2 = [(i, EDITED.get(i, q)) for i, q in v1]
    (tmp_path / "v1").mkdir()
    (tmp_path / "v2").mkdir()
    bench1 = _bench(tmp_path / "v1" / "bench.jsonl", v1)
    _bench(tmp_path / "v2" / "bench.jsonl", v2)
    train = tmp_path / "train.txt"
    train.write_text("\n".join(q for i, q in v1 if int(i) < 8) + "\n")  # v1's items 0-7 are in the corpus
    ov = tmp_path / "overlap.jsonl"
    res = _invoke("overlap", "--train", train, "--eval-file", bench1, "-o", ov)
    assert res.exit_code == 0, res.output
    base = [make_sample(i, "bench", correct=True, question=q) for i, q in v2]
    cand = [make_sample(i, "bench", correct=int(i) >= 8, question=q) for i, q in v2]
    root = tmp_path / "results"
    return ov, write_run(root, "base", base, model="m-base"), write_run(root, "cand", cand, model="m-cand"), root


def test_the_overlap_file_records_file_sha256_and_item_fingerprints(tmp_path):
    import hashlib

    ov, *_ = _versions(tmp_path)
    lines = [json.loads(x) for x in ov.read_text().splitlines()]
    (bench,) = lines[0]["overlap_header"]["benchmarks"]
    data = (tmp_path / "v1" / "bench.jsonl").read_bytes()
    assert bench["sha256"] == hashlib.sha256(data).hexdigest() and bench["items"] == 10
    first = json.loads(data.splitlines()[0])
    assert lines[1]["fingerprint"] == {"question": hashlib.sha256(first["question"].encode()).hexdigest()}


def test_report_refuses_an_overlap_file_of_another_benchmark_version(tmp_path):
    ov, _, cand, _ = _versions(tmp_path)
    res = _invoke("report", cand, "--overlap", ov, "--format", "json")
    assert res.exit_code == 1
    assert "3 items of cand are not the text" in res.output and "bench/3, bench/5, bench/7" in res.output
    assert "--overlap-stale ignore" in res.output
    res = _invoke("report", cand, "--overlap", ov, "--format", "json", "--overlap-stale", "ignore")
    assert res.exit_code == 0, res.output
    assert "left out of the split as not covered" in res.stderr
    split = json.loads(res.stdout)["overlap"]
    (row,) = split["rows"]
    # v1's items 0-7 were flagged; 3, 5 and 7 are other questions now: 5 overlapping, 2 clean, 3 not covered
    assert (row["n"], row["overlapping"], row["not_covered"]) == (7, 5, 3)
    assert any("bench/3, bench/5, bench/7" in n for n in split["notes"])  # the note stays with the figures
    res = _invoke("report", cand, "--overlap", ov, "--format", "markdown", "--overlap-stale", "ignore")
    assert "left out of the split as not covered" in res.stdout.split("Accuracy by overlap")[1]


def test_gate_clean_only_refuses_then_leaves_the_changed_items_out(tmp_path):
    ov, base, cand, _ = _versions(tmp_path)
    res = _invoke("gate", "--baseline", base, "--candidate", cand, "--clean-only", "--overlap", ov)
    assert res.exit_code == 2 and "are not the text" in res.output and "bench/3" in res.output
    res = _invoke("gate", "--baseline", base, "--candidate", cand, "--clean-only", "--overlap", ov,
                  "--overlap-stale", "ignore", "--allow-mismatch", "--json", "-")
    verdict = json.loads(res.stdout)
    # clean by v1's flags would be 8 and 9 (and, wrongly, nothing else); the edited 3, 5, 7 are left out too
    assert [d["n"] for d in verdict["datasets"]] == [2]
    assert any("left out of the split as not covered" in w for w in verdict["warnings"])


def test_leaderboard_and_compare_refuse_it_too(tmp_path):
    ov, base, cand, root = _versions(tmp_path)
    res = _invoke("leaderboard", root, "--overlap", ov, "--format", "markdown", "--no-index")
    assert res.exit_code == 1 and "are not the text" in res.output
    res = _invoke("leaderboard", root, "--overlap", ov, "--format", "markdown", "--no-index",
                  "--overlap-stale", "ignore")
    assert res.exit_code == 0 and "left out of the split" in res.stderr
    page = tmp_path / "c.html"
    res = _invoke("compare", base, cand, "-o", page, "--overlap", ov)
    assert res.exit_code == 1 and "are not the text" in res.output
    res = _invoke("compare", base, cand, "-o", page, "--overlap", ov, "--overlap-stale", "ignore")
    assert res.exit_code == 0 and "left out of the split" in res.stderr


def test_an_overlap_file_without_fingerprints_is_used_with_a_warning(tmp_path):
    ov, _, cand, _ = _versions(tmp_path)
    lines = [json.loads(x) for x in ov.read_text().splitlines()]
    for line in lines[1:]:
        del line["fingerprint"]
    del lines[0]["overlap_header"]["benchmarks"]
    old = tmp_path / "old.jsonl"
    old.write_text("".join(json.dumps(x) + "\n" for x in lines))
    res = _invoke("report", cand, "--overlap", old, "--format", "json")
    assert res.exit_code == 0, res.output
    assert "records no item fingerprints" in res.stderr and "cannot be checked" in res.stderr


# ---------------------------------------------------------------------- item 6: one very long line


def _long_record(rng: random.Random, words: int, planted: str) -> str:
    half = " ".join(rng.choice(WORDS) for _ in range(words // 2))
    # the copy sits inside one string with JSON escapes around and inside it
    return json.dumps({"meta": {"src": "web"}, "text": half + '\n"' + planted.replace(", ", ",\n\t") + '"\n' + half,
                       "more": ["x\u00e9y", half]})


def test_a_jsonl_line_longer_than_the_buffer_is_scanned_as_text_in_bounded_memory(tmp_path):
    rng = random.Random(2)
    line = _long_record(rng, 1_200_000, LONG_Q)  # about 8 MB on one line
    last = json.dumps({"t": SECOND_Q})
    (tmp_path / "one.jsonl").write_text('{"t": "short first line"}\n' + line + "\n" + last + "\n")
    chunk = 1 << 16
    items = [_item("a", LONG_Q), _item("b", SECOND_Q), _item("c", THIRD_Q)]
    tracemalloc.start()
    try:
        result = analyse_overlap(items, [tmp_path], chunk_bytes=chunk)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40 * chunk + (2 << 20), f"peak {peak / 1e6:.1f} MB for an {len(line) / 1e6:.0f} MB line"
    rows = {r["id"]: r for r in result.rows}
    assert rows["a"]["whole_question"] and rows["a"]["line"] == 2 and rows["a"]["places"] == 1
    assert rows["b"]["whole_question"] and rows["b"]["line"] == 3
    assert not rows["c"]["ngram_overlap"]
    assert not result.partial and any("one.jsonl:2: a line longer than the scan buffer" in p for p in result.problems)


def test_a_json_document_longer_than_the_buffer_is_scanned_as_text(tmp_path):
    rng = random.Random(3)
    (tmp_path / "doc.json").write_text("[\n" + _long_record(rng, 40_000, LONG_Q) + "\n]\n")
    row = analyse_overlap([_item("a", LONG_Q)], [tmp_path], chunk_bytes=1 << 14).rows[0]
    assert row["whole_question"] and row["line"] == 2 and row["places"] == 1


def test_a_line_that_is_not_json_is_still_searched(tmp_path):
    (tmp_path / "t.jsonl").write_text('{"t": "fine"}\n{"t": "cut short ' + LONG_Q + "\n")
    result = analyse_overlap([_item("a", LONG_Q)], [tmp_path])
    assert result.rows[0]["whole_question"] and result.rows[0]["line"] == 2
    assert [p.split(": ")[0] for p in result.problems] == [f"{tmp_path / 't.jsonl'}:2"]


def test_json_escapes_are_decoded_the_same_however_the_line_is_cut():
    from evalkit.data.corpus import json_text

    text = 'caf\u00e9 "quoted" back\\slash tab\there line\nbreak \U0001F600 smile \u65e5\u672c 0123abcdef u1234'
    raw = json.dumps({"t": text, "k": ["x/y", "\\u0041"]}).encode()
    want = b"".join(json_text(iter([raw])))
    assert "café \"quoted\" back\\slash tab here line break \U0001F600 smile 日本".encode() in want
    for cut in range(1, len(raw)):
        assert b"".join(json_text(iter([raw[:cut], raw[cut:]]))) == want, cut


def test_a_folder_that_cannot_be_listed_is_unreadable(tmp_path, monkeypatch):
    import os

    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "a.txt").write_text(LONG_Q)
    (tmp_path / "b.txt").write_text(SECOND_Q)
    real = os.scandir

    def scandir(path="."):
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)
    monkeypatch.setattr(os, "scandir", scandir)
    result = analyse_overlap([_item("a", LONG_Q), _item("b", SECOND_Q)], [tmp_path])
    assert list(result.unreadable) == [str(tmp_path / "locked")] and result.partial
    assert [r["whole_question"] for r in result.rows] == [False, True]
