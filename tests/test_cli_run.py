"""`evalkit run` through the CLI: bad input and unreachable servers give clear errors, nothing sent."""

import json

from click.testing import CliRunner

from evalkit.cli import main
from tests.conftest import free_port, write_items


def test_invalid_records_are_listed_with_file_and_line_and_nothing_is_sent(tmp_path, loopback):
    srv = loopback()
    bad = write_items(tmp_path / "bad.jsonl", 3)
    lines = bad.read_text().splitlines()
    lines[1] = lines[1][:-5]  # torn JSON on line 2
    rec = json.loads(lines[2])
    rec["answer_idx"] = "Z"  # line 3: answer key that is not an option
    lines[2] = json.dumps(rec)
    bad.write_text("\n".join(lines) + "\n")
    res = CliRunner().invoke(main, ["run", "--eval-file", str(bad), "--endpoint", srv.url, "--quiet",
                                    "--results-dir", str(tmp_path / "r")])
    assert res.exit_code == 2
    assert f"{bad}:2: malformed JSON" in res.output and f"{bad}:3:" in res.output and "'Z'" in res.output
    assert srv.stats()["requests"] == 0


def test_skip_invalid_runs_the_rest_and_lists_the_skipped_in_the_manifest(tmp_path, loopback):
    srv = loopback()
    f = write_items(tmp_path / "some.jsonl", 4)
    f.write_text(f.read_text() + "{not json\n")
    res = CliRunner().invoke(main, ["run", "--eval-file", str(f), "--endpoint", srv.url, "--quiet", "--skip-invalid",
                                    "--results-dir", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    manifest = json.loads(next((tmp_path / "r").glob("*/*/manifest.json")).read_text())
    assert manifest["data"][0]["items"] == 4
    assert any(":5:" in s for s in manifest["data"][0]["skipped"])


def test_unreachable_endpoint_names_it(tmp_path, items_file):
    url = f"http://127.0.0.1:{free_port()}/v1"
    res = CliRunner().invoke(main, ["run", "--eval-file", str(items_file), "--endpoint", url, "--quiet",
                                    "--results-dir", str(tmp_path / "r")])
    assert res.exit_code == 1 and url in res.output and "cannot reach" in res.output


def test_no_server_recorded_says_how_to_start_one(tmp_path, items_file):
    res = CliRunner().invoke(main, ["run", "--eval-file", str(items_file), "--quiet"])
    assert res.exit_code == 2 and "evalkit serve" in res.output


def test_a_missing_registered_benchmark_says_how_to_fetch_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, ["run", "--eval-file", "eval_data/medqa_test.jsonl", "--endpoint",
                                    "http://127.0.0.1:9/v1", "--quiet"])
    assert res.exit_code == 2
    assert "eval_data/medqa_test.jsonl" in res.output and "evalkit data fetch medqa" in res.output


def draft_then_decide(samples, refine, refine_samples):
    """A strategy defined outside evalkit, for --strategy tests.test_cli_run:draft_then_decide:
    SAMPLES drafts, then one answer that sees them."""
    from evalkit.run.sampling import Stage

    return [Stage("draft", samples),
            Stage("decide", 1, lambda item, base, earlier: base + "\nDrafts:\n" + "\n".join(earlier[0]))]


def test_strategy_given_as_module_attr_on_the_command_line(tmp_path, loopback):
    srv = loopback("--ignore-n")
    f = write_items(tmp_path / "items.jsonl", 3)
    name = "tests.test_cli_run:draft_then_decide"
    res = CliRunner().invoke(main, ["run", "--eval-file", str(f), "--endpoint", srv.url, "--quiet", "--samples", "2",
                                    "--strategy", name, "--results-dir", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    samples = [json.loads(line) for line in next((tmp_path / "r").glob("*/*/samples.jsonl")).read_text().splitlines()]
    assert len(samples) == 3
    for s in samples:
        assert s["strategy"] == name
        assert [(st["name"], len(st["outputs"])) for st in s["stages"]] == [("draft", 2), ("decide", 1)]
    assert srv.stats()["requests"] == 3 * (2 + 1)
    manifest = json.loads(next((tmp_path / "r").glob("*/*/manifest.json")).read_text())
    assert manifest["strategy"] == name


def test_a_strategy_that_cannot_be_loaded_is_a_usage_error_before_any_request(tmp_path, loopback):
    srv = loopback()
    f = write_items(tmp_path / "items.jsonl", 2)
    for strategy, why in (("tests.test_cli_run:no_such_strategy", "no attribute"),
                          ("vote-twice", "unknown strategy 'vote-twice'"), ("single", "one sample per item")):
        res = CliRunner().invoke(main, ["run", "--eval-file", str(f), "--endpoint", srv.url, "--quiet", "--samples",
                                        "2", "--strategy", strategy, "--results-dir", str(tmp_path / "r")])
        assert res.exit_code == 2 and "--strategy" in res.output and why in res.output, res.output
    assert srv.stats()["requests"] == 0
    assert "module:attr" in CliRunner().invoke(main, ["run", "--help"], terminal_width=200).output
