"""Overlap analysis: normalization, the two rules, planted items, compressed files, CJK."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evalkit.data.corpus import analyse_overlap, field_selector, train_files
from evalkit.data.overlap import (MEDPALM_MIN_CHARS, normalize_bytes, word_arrays, words,
                             words_with_offsets)
from evalkit.core.records import Item

LONG_Q = ("A 45-year-old man presents to the emergency department with crushing substernal chest pain "
          "radiating to the left arm and jaw for two hours, accompanied by diaphoresis and nausea. "
          "His blood pressure is 150/90 mm Hg. An ECG shows ST elevations in leads II, III and aVF. "
          "Which of the following is the most appropriate next step in management?")
JA_Q = ("患者は三日前から発熱と咳があり、胸部エックス線写真で右下肺野に浸潤影を認める。"
        "喀痰グラム染色でグラム陽性双球菌を認めた。最も考えられる起炎菌はどれか。")
FR_Q = ("Une femme de 62 ans présente une fièvre élevée, des frissons et une douleur lombaire droite "
        "depuis deux jours; l'échographie révèle une dilatation des cavités pyélocalicielles. "
        "Quelle est la conduite à tenir en première intention chez cette patiente âgée?")


def _item(i: str, q: str, dataset: str = "d", context: str | None = None) -> Item:
    return Item(id=i, dataset=dataset, question=q, options={"A": "x", "B": "y"}, answer_idx="A", context=context)


def _corpus_words(text: str) -> list[str]:
    w = word_arrays(normalize_bytes(text.encode()))
    return [w.buf[s:e].decode() for s, e in zip(w.starts.tolist(), w.ends.tolist())]


# ---------------------------------------------------------------------- normalization


def test_normalization_is_lm_evals_janitor():
    assert words("Don't   STOP!\n(A) well-known e.g. x") == ["dont", "stop", "a", "wellknown", "eg", "x"]
    # non-ASCII letters keep their case, as lm-eval's table only lowercases ASCII
    assert words("Échographie ÉTÉ") == ["Échographie", "ÉtÉ"]
    # CJK: one word per character; 、。 and the ideographic space separate
    assert words("発熱と咳、\u3000胸部。") == ["発", "熱", "と", "咳", "胸", "部"]
    assert words("CT検査") == ["ct", "検", "査"]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("aZ .,-'\n\t\xa0éÉ漢字かナ、。\u3000!()09")), max_size=60))
def test_corpus_scanner_sees_the_same_words_as_the_item_side(text):
    assert _corpus_words(text) == words(text)


def test_word_offsets_point_into_the_text():
    wo = words_with_offsets("  Hello, (world)  漢字!")
    assert [(w, "  Hello, (world)  漢字!"[s:e]) for w, s, e in wo] == [
        ("hello", "Hello,"), ("world", "(world)"), ("漢", "漢"), ("字", "字")]


# ---------------------------------------------------------------------- planted items


def _planted_corpus(tmp: Path) -> dict[str, tuple[str, int]]:
    """Files with each item planted once; returns id -> (file name, line)."""
    rng = random.Random(7)
    filler_words = "the of patient and with was in to for on study clinical results data".split()

    def filler(n: int) -> str:
        return " ".join(rng.choice(filler_words) for _ in range(n))

    where = {}
    # at the very start of one file and at the very end (no final newline) of another
    (tmp / "start.txt").write_text(LONG_Q.upper() + "\n" + filler(400) + "\n", encoding="utf-8")
    where["start"] = ("start.txt", 1)
    (tmp / "end.txt").write_text(filler(400) + "\n" + filler(30) + " " + JA_Q, encoding="utf-8")
    where["ja"] = ("end.txt", 2)
    # inside a long line (about 3 MB, cut into many chunks), wrapped differently
    long_line = filler(250_000) + " " + FR_Q.replace(" ", "  ") + " " + filler(250_000)
    (tmp / "sub").mkdir()
    (tmp / "sub" / "long.txt").write_text("first line\n" + long_line + "\nlast\n", encoding="utf-8")
    where["fr"] = ("sub/long.txt", 2)
    # gzip JSONL and zstd text
    recs = [{"text": filler(50)} for _ in range(200)]
    recs[150] = {"meta": {"src": "x"}, "messages": [{"role": "user", "content": "Q: " + THIRD_Q.replace(
        "back pain", "BACK\n pain,")}]}
    with gzip.open(tmp / "sub" / "train.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in recs)
    where["gz"] = ("sub/train.jsonl.gz", 151)
    zstandard = pytest.importorskip("zstandard")
    body = "\n".join(filler(40) for _ in range(500)) + "\nAnswer: " + SECOND_Q + "\n" + filler(40)
    (tmp / "book.txt.zst").write_bytes(zstandard.ZstdCompressor().compress(body.encode()))
    where["zst"] = ("book.txt.zst", 501)
    return where


THIRD_Q = ("A 70-year-old woman has had back pain for six weeks that wakes her at night, with weight loss, "
           "anemia and hypercalcemia on routine blood tests; what is the most likely diagnosis?")
SECOND_Q = ("A 6-year-old boy is brought to the clinic because of a limp and pain in the right hip for the past "
            "three weeks without any history of trauma; examination shows limited internal rotation.")


@pytest.mark.parametrize("chunk_bytes", [4096, 1 << 20])
def test_planted_items_are_found_once_each_where_they_are(tmp_path, chunk_bytes):
    where = _planted_corpus(tmp_path)
    items = [_item("start", LONG_Q), _item("ja", JA_Q), _item("fr", FR_Q), _item("zst", SECOND_Q),
             _item("gz", THIRD_Q),
             _item("clean", "Which vitamin deficiency causes scurvy in sailors who eat no fresh fruit "
                            "for many months at sea?")]
    result = analyse_overlap(items, [tmp_path], chunk_bytes=chunk_bytes)
    rows = {r["id"]: r for r in result.rows}
    assert not result.problems
    for item_id in ("start", "ja", "fr", "zst", "gz"):
        r = rows[item_id]
        assert r["ngram_overlap"] and r["medpalm_overlap"] and r["whole_question"], r
        assert r["places"] == 1, r
        name, line = where[item_id]
        assert (Path(r["file"]).relative_to(tmp_path).as_posix(), r["line"]) == (name, line)
    assert not rows["clean"]["ngram_overlap"] and not rows["clean"]["medpalm_overlap"]


def test_a_partial_copy_counts_by_the_512_character_rule(tmp_path):
    context = " ".join(f"Sentence {i} of the abstract reports measured outcome {i * 7} in cohort {i}." for i in range(40))
    item = _item("p", "Does it work?", context=context)
    part = context[100:100 + 700]
    (tmp_path / "c.txt").write_text("intro " + part + " outro\n")
    row = analyse_overlap([item], [tmp_path]).rows[0]
    assert row["ngram_overlap"] and row["medpalm_overlap"] and not row["whole_question"]
    assert MEDPALM_MIN_CHARS <= row["longest_chars"] <= 700
    # 300 characters: n-gram overlap only
    (tmp_path / "c.txt").write_text("intro " + context[100:400] + " outro\n")
    row = analyse_overlap([item], [tmp_path]).rows[0]
    assert row["ngram_overlap"] and not row["medpalm_overlap"]


def test_runs_never_cross_documents_or_files(tmp_path):
    ws = LONG_Q.split()
    half = len(ws) // 2
    lines = [{"t": " ".join(ws[:half])}, {"t": " ".join(ws[half:])}]
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    row = analyse_overlap([_item("x", LONG_Q)], [tmp_path]).rows[0]
    assert row["ngram_overlap"] and not row["whole_question"]
    assert row["longest_words"] == max(half, len(ws) - half)
    assert row["places"] == 2


def test_short_items_are_matched_whole(tmp_path):
    (tmp_path / "a.txt").write_text("Q: What causes scurvy? A: no vitamin C\n")
    rows = {r["id"]: r for r in analyse_overlap(
        [_item("s", "What causes scurvy?"), _item("t", "What causes rickets?")], [tmp_path]).rows}
    assert rows["s"]["whole_question"] and rows["s"]["ngram_overlap"] and rows["s"]["medpalm_overlap"]
    assert not rows["t"]["medpalm_overlap"]


def test_field_selection_and_bad_lines(tmp_path):
    recs = ['{"prompt": "%s", "other": "x"}' % LONG_Q, "{not json", '{"other": "%s"}' % SECOND_Q]
    (tmp_path / "t.jsonl").write_text("\n".join(recs) + "\n")
    items = [_item("a", LONG_Q), _item("b", SECOND_Q)]
    rows = {r["id"]: r for r in analyse_overlap(items, [tmp_path], field_spec="prompt").rows}
    assert rows["a"]["medpalm_overlap"] and not rows["b"]["medpalm_overlap"]
    result = analyse_overlap(items, [tmp_path])
    assert [p.split(": ")[0] for p in result.problems] == [f"{tmp_path / 't.jsonl'}:2"]
    assert all(r["medpalm_overlap"] for r in result.rows)
    assert list(field_selector("$.messages[*].content")({"messages": [{"content": "a"}, {"content": "b"}]})) == ["a", "b"]


def test_folders_are_walked_and_hidden_files_skipped(tmp_path):
    (tmp_path / "x" / ".git").mkdir(parents=True)
    (tmp_path / "x" / ".git" / "c.txt").write_text(LONG_Q)
    (tmp_path / "x" / "b.txt").write_text("b")
    assert train_files([tmp_path]) == [tmp_path / "x" / "b.txt"]


# ---------------------------------------------------------------------- against a brute force


def _naive_ngram_flags(items: list[Item], corpus_lines: list[str], n: int) -> list[bool]:
    grams = set()
    for line in corpus_lines:
        ws = words(line)
        grams.update(tuple(ws[i:i + n]) for i in range(len(ws) - n + 1))
    out = []
    for it in items:
        ws = words(it.question)
        out.append(any(tuple(ws[i:i + n]) in grams for i in range(len(ws) - n + 1)))
    return out


def test_ngram_rule_equals_a_brute_force_on_random_text(tmp_path):
    rng = random.Random(3)
    vocab = "a b c d e f".split()
    items = [_item(str(i), " ".join(rng.choice(vocab) for _ in range(rng.randint(9, 30)))) for i in range(60)]
    lines = [" ".join(rng.choice(vocab) for _ in range(rng.randint(0, 40))) for _ in range(300)]
    (tmp_path / "c.jsonl").write_text("".join(json.dumps({"t": x}) + "\n" for x in lines))
    got = [r["ngram_overlap"] for r in analyse_overlap(items, [tmp_path], ngram=8).rows]
    want = _naive_ngram_flags(items, lines, 8)
    assert got == want and any(want) and not all(want)


# ---------------------------------------------------------------------- real data

def _shared(name: str) -> Path:
    from tests.conftest import shared_dir
    path = shared_dir() / "eval_data" / name
    if not path.exists():
        pytest.skip(f"{path} not present (set EVALKIT_SHARED)")
    return path


def test_every_medqa_question_is_in_mirages_copy():
    from evalkit.data.datasets import load_dataset
    items = load_dataset(_shared("medqa_test.jsonl")).items
    result = analyse_overlap(items, [_shared("mirage_benchmark.json")])
    assert len(result.rows) == 1273
    assert all(r["medpalm_overlap"] and r["ngram_overlap"] for r in result.rows)
    assert all(str(r["line"]).startswith("$.medqa.") for r in result.rows)


def test_pubmedqa_items_are_flagged_exactly_when_their_abstract_is_in_the_corpus(tmp_path):
    from evalkit.data.datasets import load_dataset
    items = load_dataset(_shared("pubmedqa/pubmedqa_test500.jsonl")).items
    pqal = json.loads(_shared("pubmedqa/ori_pqal.json").read_text())
    inside = {it.id for it in items[::2]}
    with gzip.open(tmp_path / "abstracts.jsonl.gz", "wt") as fh:
        for pmid in sorted(pqal):
            if pmid in inside or pmid not in {it.id for it in items}:
                fh.write(json.dumps({"pmid": pmid, "abstract": " ".join(pqal[pmid]["CONTEXTS"])}) + "\n")
    rows = analyse_overlap(items, [tmp_path], field_spec="abstract").rows
    flagged = {r["id"] for r in rows if r["medpalm_overlap"]}
    assert flagged == inside
    assert {r["id"] for r in rows if r["ngram_overlap"]} == inside


def test_paraphrases_sharing_no_13_gram_are_not_flagged(tmp_path):
    """The honest limit: a reworded copy is invisible to both rules."""
    from evalkit.data.datasets import load_dataset
    items = load_dataset(_shared("medqa_test.jsonl")).items[:300]
    fillers = ["indeed", "notably", "clearly", "reportedly", "apparently"]
    with open(tmp_path / "para.txt", "w") as fh:
        for k, it in enumerate(items):
            ws = it.question.split()
            para = [w + (" " + fillers[(i + k) % 5] if i % 6 == 5 else "") for i, w in enumerate(ws)]
            fh.write(" ".join(para) + "\n")
    lines = (tmp_path / "para.txt").read_text().splitlines()
    assert not any(_naive_ngram_flags(items, lines, 13))  # by construction: no shared 13-gram
    rows = analyse_overlap(items, [tmp_path]).rows
    assert not any(r["ngram_overlap"] or r["medpalm_overlap"] for r in rows)


def test_a_whole_short_question_after_its_context_counts_for_medpalm_only(tmp_path):
    context = " ".join(f"word{i}" for i in range(60))
    item = _item("p", "Is it safe in children?", context=context)
    (tmp_path / "q.jsonl").write_text(json.dumps({"q": "is it SAFE in children"}) + "\n")
    row = analyse_overlap([item], [tmp_path]).rows[0]
    assert row["whole_question"] and row["medpalm_overlap"] and not row["ngram_overlap"]
    assert not row["whole_context"] and row["places"] == 1
    # context and question together in one place: one place, both parts whole
    (tmp_path / "q.jsonl").write_text(json.dumps({"q": context + " Is it safe in children?"}) + "\n")
    row = analyse_overlap([item], [tmp_path]).rows[0]
    assert row["whole_question"] and row["whole_context"] and row["ngram_overlap"] and row["places"] == 1


def test_a_broken_compressed_file_is_reported_and_the_rest_still_counts(tmp_path):
    rng = random.Random(1)
    body = (LONG_Q + "\n" + " ".join(str(rng.random()) for _ in range(20000))).encode()
    (tmp_path / "a_bad.txt.gz").write_bytes(gzip.compress(body)[:2000])
    (tmp_path / "b_good.txt").write_text(SECOND_Q + "\n")
    result = analyse_overlap([_item("a", LONG_Q), _item("b", SECOND_Q)], [tmp_path], chunk_bytes=1024)
    assert len(result.problems) == 1 and "a_bad.txt.gz: incomplete" in result.problems[0]
    assert [r["medpalm_overlap"] for r in result.rows] == [True, True]  # what was read before the break counts


def test_overlap_command_writes_the_rules_and_one_line_per_item(tmp_path):
    from click.testing import CliRunner

    from evalkit.cli import main
    bench = tmp_path / "bench.jsonl"
    bench.write_text("".join(json.dumps({"id": i, "question": q, "options": {"A": "a", "B": "b"}, "answer_idx": "A"})
                             + "\n" for i, q in (("1", LONG_Q), ("2", SECOND_Q))))
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "t.txt").write_text("intro\n" + LONG_Q + "\n")
    out_file = tmp_path / "overlap.jsonl"
    res = CliRunner().invoke(main, ["overlap", "--train", str(tmp_path / "train"), "--eval-file", str(bench),
                                    "-o", str(out_file)])
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in out_file.read_text().splitlines()]
    header = lines[0]["overlap_header"]
    assert "512 contiguous characters" in header["overlap_rules"]["medpalm"]
    assert "per character" not in header["normalization"] and "U+3040-U+9FFF" in header["normalization"]
    assert [(x["id"], x["medpalm_overlap"], x["line"]) for x in lines[1:]] == [("1", True, 2), ("2", False, None)]
    res = CliRunner().invoke(main, ["overlap", "--train", str(tmp_path / "train")])
    assert res.exit_code != 0 and "--eval-file" in res.output


def test_japanese_without_any_whitespace_is_cut_between_characters(tmp_path):
    rng = random.Random(5)
    kana = [chr(c) for c in range(0x3042, 0x3094)]
    text = "".join(rng.choice(kana) for _ in range(3000)) + JA_Q + "".join(rng.choice(kana) for _ in range(3000))
    (tmp_path / "ja.txt").write_text(text, encoding="utf-8")
    for chunk in (7, 10, 64):  # hard cuts every 16 chunks, at every byte phase of a 3-byte character
        row = analyse_overlap([_item("ja", JA_Q)], [tmp_path], chunk_bytes=chunk).rows[0]
        assert row["whole_question"] and row["places"] == 1 and row["line"] == 1, (chunk, row)
