"""Odd 200 responses and oversized bodies: an error on that sample alone, never the end of the run."""

import json

import pytest

from evalkit.serving.client import MalformedResponse, parse_completion, safe_text
from evalkit.core.store import iter_samples, read_json
from tests.conftest import write_items
from tests.loopback_server import USABLE_SHAPES, choose_letter, malformed_shape, prompt_key
from tests.test_faults import run_to_end, runner_cmd


def body(content="The answer is B.", **kw):
    doc = {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
           "usage": {"prompt_tokens": 3, "completion_tokens": 4}}
    doc.update(kw)
    return doc


def test_content_as_a_list_of_parts_joins_the_text_parts():
    parts = [{"type": "text", "text": "The answer "}, {"type": "image_url", "image_url": {"url": "x"}},
             {"type": "text", "text": "is C."}]
    (gen,) = parse_completion(body(parts), 0.1)
    assert gen.text == "The answer is C." and gen.usage == {"prompt_tokens": 3, "completion_tokens": 4}


@pytest.mark.parametrize("doc, reason", [
    (body(42), "content is a number"),
    (body(choices=[None]), "choice 0 is a null"),
    (body(choices=["hello"]), "choice 0 is a string"),
    (body(choices=[]), "no choices"),
    (body(choices={"0": {}}), "choices is a object"),
    ([1, 2], "body is a JSON array"),
    (body(choices=[{"message": "hi"}]), "message is a string"),
    (body([{"type": "text", "text": "a"}, 7]), "part of type int"),
])
def test_unusable_completions_raise_malformed_with_the_reason(doc, reason):
    with pytest.raises(MalformedResponse, match=reason):
        parse_completion(doc, 0.1)


def test_a_usage_that_is_not_an_object_keeps_the_answer_and_drops_the_counts():
    (gen,) = parse_completion(body(usage="lots"), 0.1)
    assert gen.text == "The answer is B." and gen.usage == {}
    (gen,) = parse_completion(body(usage={"prompt_tokens": float("nan"), "completion_tokens": 2, "x": True}), 0.1)
    assert gen.usage == {"completion_tokens": 2}


def test_a_lone_surrogate_is_escaped_so_the_text_can_be_written():
    raw = '{"choices": [{"message": {"content": "The answer is A. \\ud800"}, "finish_reason": "stop"}]}'
    (gen,) = parse_completion(json.loads(raw), 0.1)
    gen.text.encode("utf-8")  # would raise on a lone surrogate
    assert gen.text == "The answer is A. \\ud800"
    assert safe_text("plain é 😀") == "plain é 😀"


ALL_SHAPES = ["parts", "number", "null-choice", "string-choice", "usage-string", "surrogate", "not-json"]


def test_a_run_against_every_malformed_shape_finishes_with_those_items_as_errors(tmp_path, loopback):
    data = write_items(tmp_path / "d.jsonl", 200)
    srv = loopback(*[a for shape in ALL_SHAPES for a in ("--malformed", shape)])
    cmd = runner_cmd(tmp_path, srv.url, data, "--concurrency", "8")
    rc, out, err = run_to_end(cmd)
    assert rc == 3, err  # some samples are errors; the run itself finished
    assert "Traceback" not in err and "stopped answering" not in err
    run_dir = tmp_path / "results" / "loopback-model" / "r"
    raw = (run_dir / "samples.jsonl").read_bytes()
    raw.decode("utf-8")  # the file is valid UTF-8
    samples = list(iter_samples(run_dir))
    assert len(samples) == 200
    seen = set()
    for s in samples:
        shape = malformed_shape(s["prompt"], ALL_SHAPES)
        seen.add(shape)
        if shape is None or shape in USABLE_SHAPES:
            assert not s["error"], (shape, s["error"])
            assert s["pred"] == choose_letter(s["prompt"]), shape
        else:
            assert s["error"] and "malformed response" in s["error"], (shape, s["error"])
        if shape == "surrogate":
            assert s["output"].endswith("\\ud800")
        if shape == "usage-string":
            assert s["usage"] == {}
    assert seen >= set(ALL_SHAPES), "the double should have sent every shape at least once"
    bad = [s for s in samples if s["error"]]
    summary = read_json(run_dir / "summary.json")["datasets"]["d"]
    assert summary["errors"] == len(bad) and summary["n"] == 200 - len(bad)
    # Each malformed answer was asked once (not retried in the run): the server answered.
    assert set(srv.stats()["prompts"].values()) == {1}

    # The next run of the same command tries exactly the failed items again.
    before = srv.stats()["prompts"]
    rc, _, err = run_to_end(cmd)
    assert rc == 3 and f"{200 - len(bad)} of 200 samples already done" in err
    after = srv.stats()["prompts"]
    again = {k for k in after if after[k] > before.get(k, 0)}
    assert again == {prompt_key(s["prompt"]) for s in bad}


def test_a_200_that_is_never_json_is_malformed_not_endpoint_down(tmp_path, loopback):
    data = write_items(tmp_path / "d.jsonl", 30)
    srv = loopback("--malformed", "not-json", "--malformed-every", "1")
    rc, _, err = run_to_end(runner_cmd(tmp_path, srv.url, data, "--concurrency", "2"))
    assert rc == 3, err  # every sample an error, but the run went through all of them
    assert "stopped answering" not in err and "endpoint down" not in err
    samples = list(iter_samples(tmp_path / "results" / "loopback-model" / "r"))
    assert len(samples) == 30
    assert all("malformed response: the body is not JSON" in s["error"] for s in samples)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_over_the_cap_is_an_error_on_its_sample_and_never_kept(tmp_path, loopback, chunked):
    data = write_items(tmp_path / "d.jsonl", 40)
    srv = loopback("--malformed", "huge", "--malformed-every", "5", "--huge-mb", "3", *(["--chunked"] if chunked else []))
    rc, _, err = run_to_end(runner_cmd(tmp_path, srv.url, data, "--concurrency", "4", "--max-response-mb", "1"))
    assert rc == 3, err
    run_dir = tmp_path / "results" / "loopback-model" / "r"
    samples = list(iter_samples(run_dir))
    huge = [s for s in samples if malformed_shape(s["prompt"], ["huge"], 5)]
    assert huge and all("response too large" in s["error"] and "1 MB cap" in s["error"] for s in huge)
    how = "the body passed" if chunked else "the server announced"
    assert all(how in s["error"] for s in huge)
    assert all(not s["error"] for s in samples if s not in huge)
    assert (run_dir / "samples.jsonl").stat().st_size < 200_000  # no 3 MB body was written


def test_the_default_cap_keeps_a_normal_body(tmp_path, loopback):
    data = write_items(tmp_path / "d.jsonl", 10)
    srv = loopback("--malformed", "huge", "--malformed-every", "1", "--huge-mb", "2", "--chunked")
    rc, _, err = run_to_end(runner_cmd(tmp_path, srv.url, data, "--concurrency", "2"))
    assert rc == 0, err  # 2 MB is under the default 16 MB
