"""--order-from through the runner and the CLI, against the loopback double: the dispatch order is
longest-predicted first, and everything but timing is the same as a file-order run."""

import json
import random

from click.testing import CliRunner

from evalkit.cli import main
from evalkit.data.datasets import load_dataset
from evalkit.core.records import GenerationParams
from evalkit.run.runner import RunConfig, run_eval
from evalkit.core.store import read_json, read_samples
from tests.runfactory import make_sample


def config(tmp_path, url, files, results="results", **kw):
    kw.setdefault("concurrency", 1)  # one request at a time: samples.jsonl is in dispatch order
    kw.setdefault("params", GenerationParams(max_new_tokens=16))
    return RunConfig(eval_files=[str(f) for f in files], endpoint=url, results_dir=str(tmp_path / results), **kw)


def earlier_run(tmp_path, items_file, *, drop=(), seed=1):
    """A fake earlier run over ITEMS_FILE with distinct random output lengths; DROP lists item numbers
    left out of it. Returns (run dir, {id: tokens})."""
    items = load_dataset(items_file).items
    lengths = random.Random(seed).sample(range(10, 5000), len(items))
    known = {it.id: t for i, (it, t) in enumerate(zip(items, lengths)) if i not in drop}
    run = tmp_path / "earlier" / "run"
    run.mkdir(parents=True)
    with open(run / "samples.jsonl", "w") as fh:
        for it in items:
            if it.id in known:
                fh.write(json.dumps(make_sample(it.id, it.dataset, completion_tokens=known[it.id])) + "\n")
    return run, known


def comparable(samples):
    """Samples by key, without the fields that depend on timing (latency, also of each generation)."""
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k != "latency_s"}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value
    return {(s["dataset"], s["id"]): strip(s) for s in samples}


def test_order_from_a_run_sends_longest_first_and_unpredicted_items_first(tmp_path, loopback, items_file):
    srv = loopback()
    file_ids = [it.id for it in load_dataset(items_file).items]
    run, known = earlier_run(tmp_path, items_file, drop={3, 7})
    result = run_eval(config(tmp_path, srv.url, [items_file], order_from=str(run)))
    sent = [s["id"] for s in read_samples(result.run_dir)]
    unknown = [file_ids[3], file_ids[7]]
    assert sent[:2] == unknown  # the stated rule: items without a prediction go first, in file order
    assert sent[2:] == sorted(known, key=lambda i: -known[i])
    order = read_json(result.run_dir / "manifest.json")["order"]
    assert order["source"] == str(run) and order["auto"] is False
    assert (order["predicted"], order["unpredicted"], order["unpredicted_rule"]) == (10, 2, "first")


def test_an_ordered_run_gives_the_same_results_as_a_file_order_run(tmp_path, loopback, items_file):
    srv = loopback()
    run, known = earlier_run(tmp_path, items_file)
    plain = run_eval(config(tmp_path, srv.url, [items_file], results="a"))
    ordered = run_eval(config(tmp_path, srv.url, [items_file], results="b", order_from=str(run)))
    a, b = read_samples(plain.run_dir), read_samples(ordered.run_dir)
    assert [s["id"] for s in a] != [s["id"] for s in b]  # the order did change
    assert comparable(a) == comparable(b)
    assert plain.run_dir.relative_to(tmp_path / "a") == ordered.run_dir.relative_to(tmp_path / "b")
    ma, mb = read_json(plain.run_dir / "manifest.json"), read_json(ordered.run_dir / "manifest.json")
    assert ma["fingerprint"] == mb["fingerprint"]
    assert ma["order"]["source"] is None and ma["order"]["by"] == "file order"
    assert mb["order"]["source"] == str(run)
    sa, sb = read_json(plain.run_dir / "summary.json"), read_json(ordered.run_dir / "summary.json")
    assert sa["datasets"] == sb["datasets"]


def test_a_multi_sample_ordered_run_gives_the_same_votes(tmp_path, loopback, items_file):
    srv = loopback()
    run, _ = earlier_run(tmp_path, items_file, seed=5)
    kw = dict(samples=3, params=GenerationParams(max_new_tokens=16, temperature=0.7, seed=11), concurrency=4)
    plain = run_eval(config(tmp_path, srv.url, [items_file], results="a", **kw))
    ordered = run_eval(config(tmp_path, srv.url, [items_file], results="b", order_from=str(run), **kw))
    assert comparable(read_samples(plain.run_dir)) == comparable(read_samples(ordered.run_dir))


def test_resume_with_an_order_requests_only_the_missing_items_longest_first(tmp_path, loopback, items_file):
    srv = loopback()
    run, known = earlier_run(tmp_path, items_file, seed=3)
    first = run_eval(config(tmp_path, srv.url, [items_file], limit=5))
    second = run_eval(config(tmp_path, srv.url, [items_file], order_from=str(run)))
    assert second.run_dir == first.run_dir and (second.resumed, second.requested) == (5, 7)
    assert srv.stats()["requests"] == 12  # no finished item asked twice
    samples = read_samples(second.run_dir)
    done_first = {s["id"] for s in samples[:5]}
    rest = [s["id"] for s in samples[5:]]
    assert rest == sorted((i for i in known if i not in done_first), key=lambda i: -known[i])


def test_cli_order_from_auto_picks_the_earlier_run_and_says_which(tmp_path, loopback, items_file):
    srv = loopback()
    base = ["run", "--eval-file", str(items_file), "--endpoint", srv.url, "--quiet",
            "--results-dir", str(tmp_path / "r"), "--concurrency", "2"]
    first = CliRunner().invoke(main, base + ["--order-from", "auto", "--run-name", "first"])
    assert first.exit_code == 0, first.output
    assert "found no finished run" in first.output  # nothing to go on yet: file order, said so
    second = CliRunner().invoke(main, base + ["--order-from", "auto", "--run-name", "second"])
    assert second.exit_code == 0, second.output
    first_dir = tmp_path / "r" / "loopback-model" / "first"
    assert str(first_dir) in second.output and "auto" in second.output
    manifest = read_json(tmp_path / "r" / "loopback-model" / "second" / "manifest.json")
    assert manifest["order"]["source"] == str(first_dir) and manifest["order"]["auto"] is True
    assert manifest["order"]["predicted"] == 12
    assert manifest["fingerprint"] == read_json(first_dir / "manifest.json")["fingerprint"]


def test_cli_order_from_a_missing_run_is_an_error_and_nothing_is_sent(tmp_path, loopback, items_file):
    srv = loopback()
    missing = tmp_path / "no-such-run"
    res = CliRunner().invoke(main, ["run", "--eval-file", str(items_file), "--endpoint", srv.url, "--quiet",
                                    "--results-dir", str(tmp_path / "r"), "--order-from", str(missing)])
    assert res.exit_code == 1 and str(missing) in res.output
    assert srv.stats()["requests"] == 0
    assert not list((tmp_path / "r").rglob("manifest.json"))
