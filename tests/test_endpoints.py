"""Several endpoints, rate limits and error classes, against loopback doubles."""

import threading

import pytest

from tests.conftest import write_items
from evalkit.serving import client as client_mod
from evalkit.serving.client import RequestError, RetryPolicy, throttler_for
from evalkit.core.records import GenerationParams
from evalkit.run.runner import RunConfig, run_eval
from evalkit.core.store import read_json, read_samples


def config(tmp_path, urls, files, **kw):
    kw.setdefault("concurrency", 8)
    kw.setdefault("max_attempts", 5)
    kw.setdefault("retry_base_delay_s", 0.02)
    return RunConfig(eval_files=[str(f) for f in files], endpoint=urls[0], endpoints=list(urls[1:]),
                     results_dir=str(tmp_path / "results"), params=GenerationParams(max_new_tokens=16), **kw)


def test_requests_are_spread_over_endpoints(tmp_path, loopback):
    files = [write_items(tmp_path / "d.jsonl", 60)]
    a, b = loopback("--delay-s", "0.03"), loopback("--delay-s", "0.03")
    result = run_eval(config(tmp_path, [a.url, b.url], files))
    na, nb = a.stats()["requests"], b.stats()["requests"]
    assert na + nb == 60
    assert min(na, nb) >= 20  # equal servers get about equal shares
    assert {e["endpoint"] for e in result.endpoints} == {a.url, b.url}
    assert read_json(result.run_dir / "manifest.json")["endpoints"] == [a.url, b.url]


def test_fewest_in_flight_sends_more_to_the_faster_endpoint(tmp_path, loopback):
    files = [write_items(tmp_path / "d.jsonl", 120)]
    fast, slow = loopback("--delay-s", "0.005"), loopback("--delay-s", "0.15")
    run_eval(config(tmp_path, [slow.url, fast.url], files))
    assert fast.stats()["requests"] > 4 * slow.stats()["requests"]


def test_a_dead_endpoint_is_taken_out_and_the_run_finishes_on_the_others(tmp_path, loopback):
    files = [write_items(tmp_path / "d.jsonl", 300)]
    a, b = loopback("--delay-s", "0.02"), loopback("--delay-s", "0.02")
    threading.Timer(0.4, b.stop).start()
    result = run_eval(config(tmp_path, [a.url, b.url], files))
    assert result.errors == 0 and result.complete
    samples = read_samples(result.run_dir)
    assert len(samples) == 300 and len({s["id"] for s in samples}) == 300
    stats = {e["endpoint"]: e for e in result.endpoints}
    assert stats[b.url]["outages"] >= 1
    assert result.retries >= 1


def test_an_endpoint_that_comes_back_is_used_again(tmp_path, loopback, monkeypatch):
    monkeypatch.setattr(client_mod, "COOL_DOWN_S", (0.2, 0.4))
    files = [write_items(tmp_path / "d.jsonl", 800)]
    a, b = loopback("--delay-s", "0.03"), loopback("--delay-s", "0.03")
    port = b.port
    back = []

    def restart():
        b.stop()
        threading.Timer(0.5, lambda: back.append(loopback("--delay-s", "0.03", port=port))).start()

    threading.Timer(0.3, restart).start()
    result = run_eval(config(tmp_path, [a.url, b.url], files))
    assert result.errors == 0
    assert back and back[0].stats()["requests"] > 10  # probed, found answering, and back in rotation


def test_endpoints_serving_different_models_are_refused(tmp_path, loopback, items_file):
    a, b = loopback(), loopback("--model", "other-model")
    with pytest.raises(RequestError, match="different models"):
        run_eval(config(tmp_path, [a.url, b.url], [items_file]))
    # Naming the model both must serve: the one that lacks it is named.
    with pytest.raises(RequestError, match=b.url.replace(".", r"\.")):
        run_eval(config(tmp_path, [a.url, b.url], [items_file], model="loopback-model"))


def test_rps_limits_request_rate(tmp_path, loopback):
    files = [write_items(tmp_path / "d.jsonl", 30)]
    srv = loopback()
    run_eval(config(tmp_path, [srv.url], files, rps=20))
    times = sorted(srv.stats()["times"])
    assert len(times) == 30
    # No window shorter than the period holds more than the limit (small slack for transit).
    worst = max(sum(1 for t in times if t0 <= t < t0 + 0.95) for t0 in times)
    assert worst <= 20
    assert times[-1] - times[0] >= 0.45  # 30 requests at 20/s cannot all go in the first second


def test_fractional_rps_becomes_a_longer_period():
    t = throttler_for(0.5)
    assert (t.rate_limit, t.period) == (1, 2.0)
    t = throttler_for(2.5)
    assert (t.rate_limit, t.period) == (5, 2.0)
    with pytest.raises(ValueError):
        throttler_for(0)


def test_client_error_fails_at_once_with_the_servers_message(tmp_path, loopback, items_file):
    srv = loopback("--fail-400", "0.4", "--seed", "2")
    result = run_eval(config(tmp_path, [srv.url], [items_file]))
    errors = [s for s in read_samples(result.run_dir) if s.get("error")]
    assert len(errors) == srv.stats()["400"] > 0
    assert all("HTTP 400: injected bad request" in s["error"] for s in errors)
    assert result.retries == 0 and srv.stats()["requests"] == 12


def test_backoff_is_bounded_and_honours_retry_after():
    policy = RetryPolicy(base_delay_s=0.5, max_delay_s=4.0)
    for attempt in range(1, 10):
        assert 0 <= policy.delay(attempt) <= min(4.0, 0.5 * 2 ** (attempt - 1))
    assert 3.0 <= policy.delay(1, retry_after=3.0) <= 4.0
    assert policy.delay(1, retry_after=100.0) == 4.0
