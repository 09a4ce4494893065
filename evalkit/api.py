"""The library surface: what a notebook calls, the same functions the CLI calls.

    from evalkit import api
    with api.served(backend="llamacpp") as server:   # the embedded SmolLM2; stopped on exit
        result = api.evaluate(api.RunConfig.on_server(server, eval_files=["eval_data/sample_medqa.jsonl"]))
    df = api.samples_frame(result.run_dir)          # one row per sample, a column per score
    report = api.report([result.run_dir])           # rows with CIs per dataset and score

Every default lives in the config types (``RunConfig.resolved``, ``ServeRequest``), not in the CLI.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from evalkit.compare import Comparison, build_comparison
from evalkit.config import DEFAULT_DATA_DIR
from evalkit.gate import GateResult, compare_runs
from evalkit.records import GenerationParams, Item, SampleRecord, Score
from evalkit.report import Report, build_report
from evalkit.rescore import rescore
from evalkit.runner import RunConfig, RunResult, run_eval
from evalkit.runs import Run, load_run, to_dataframe
from evalkit.scoring import get_scorer
from evalkit.server import ServerHandle, StopResult, list_states, stop_server
from evalkit.serving import API_KEY_ENV, ServeRequest, server_status
from evalkit.serving import serve as _serve
from evalkit.suites import Suite, load_suite
from evalkit.tasks import Evaluation, Task, TaskError, TaskResult, evaluate_tasks, from_suite

__all__ = ["GenerationParams", "Item", "RunConfig", "RunResult", "Run", "SampleRecord", "Score", "ServeRequest",
           "ServerHandle", "compare", "evaluate", "gate", "get_scorer", "load_run", "report", "rescore_run",
           "samples_frame", "serve", "served", "servers", "stop"]


def serve(request: ServeRequest | None = None, **settings: Any) -> ServerHandle:
    """Start a model server detached and wait until it answers (``evalkit serve``).

    Give a ServeRequest or its fields (``backend="vllm", model_path=..., replicas=2``); the
    server keeps running after this returns, until ``stop(handle.name)``.
    """
    return _serve(request or ServeRequest(**settings))


def stop(name: str = "default", *, grace_s: float = 10.0) -> StopResult | None:
    """Stop the server recorded as NAME (only processes evalkit started); None if none is recorded."""
    return stop_server(name, grace_s=grace_s)


def servers(*, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Every recorded server, its processes and whether it answers (``evalkit status --json``)."""
    key = os.environ.get(API_KEY_ENV)
    return [server_status(h, api_key=key, timeout=timeout) for h in list_states()]


@contextmanager
def served(request: ServeRequest | None = None, **settings: Any) -> Iterator[ServerHandle]:
    """``serve`` for the length of a ``with`` block: the server is stopped when the block ends."""
    handle = serve(request, **settings)
    try:
        yield handle
    finally:
        stop_server(handle.name)


CALLBACKS = ("on_sample", "on_start", "progress", "on_notice")  # run_eval's keywords


def evaluate(what: "RunConfig | Task | Sequence[Task] | Suite | None" = None, *, suite: "str | Suite | None" = None,
             server: "ServerHandle | str | None" = None, endpoint: "str | Sequence[str] | None" = None,
             data_dir: "str | Path" = DEFAULT_DATA_DIR, **settings: Any) -> "RunResult | Evaluation":
    """Run (or resume) an evaluation of a task, several tasks, a suite, or a RunConfig.

        api.evaluate(suite="medreason", server="default")           # the suite's six benchmarks
        api.evaluate([Task("medqa"), Task("my.jsonl", adapter="mcq")], endpoint="http://127.0.0.1:30000/v1",
                     limit=50, max_new_tokens=512)

    SERVER is a handle or the recorded name of a server ``serve`` started (None: the only one
    recorded); ENDPOINT one URL or several instead. SETTINGS are RunConfig fields and single
    GenerationParams fields; they win over what a task sets. Registered benchmarks are read
    from DATA_DIR. Returns an Evaluation (results per task, ``evaluation["medqa"]``).

    A RunConfig runs as it is (SETTINGS may replace its fields) and gives its RunResult.
    The callbacks (on_sample, on_start, progress, on_notice) are ``runner.run_eval``'s.
    """
    callbacks = {k: settings.pop(k) for k in CALLBACKS if k in settings}
    if isinstance(what, RunConfig):
        config = replace(what, **settings) if settings else what
        if endpoint is not None or server is not None:
            config = replace(config, **_endpoint_settings(server, endpoint, config))
        return run_eval(config, **callbacks)
    chosen = None
    if isinstance(what, Suite) or suite is not None:
        chosen = what if isinstance(what, Suite) else (suite if isinstance(suite, Suite) else load_suite(suite))
    tasks = list(from_suite(chosen)) if chosen is not None else []
    if isinstance(what, Task):
        tasks.append(what)
    elif what is not None and not isinstance(what, Suite):
        tasks += list(what)
    if not tasks:
        raise TaskError("nothing to evaluate: give a task, a list of tasks, suite=NAME or a RunConfig")
    base = replace(RunConfig(eval_files=[]), **_endpoint_settings(server, endpoint, None))
    return evaluate_tasks(tasks, base, settings, data_dir=data_dir, suite=chosen, **callbacks)


def _endpoint_settings(server: "ServerHandle | str | None", endpoint: "str | Sequence[str] | None",
                       config: RunConfig | None) -> dict[str, Any]:
    """The RunConfig fields that say where to send requests: ENDPOINT's URLs, else SERVER's (a handle or a
    recorded name, None for the only one recorded), with its backend, model and the API key from the environment."""
    if endpoint is not None:
        urls = [endpoint] if isinstance(endpoint, str) else list(endpoint)
        return {"endpoint": urls[0], "endpoints": urls[1:]}
    on = RunConfig.on_server(server, eval_files=[])
    out = {"endpoint": on.endpoint, "endpoints": [], "backend": on.backend}
    if config is None or config.model is None:
        out["model"] = on.model
    if config is None or config.api_key is None:
        out["api_key"] = on.api_key
    return out


def samples_frame(run: "str | Path | Run", *, counting_only: bool = True):
    """A run's samples as a pandas DataFrame (``score:NAME`` columns for its scores)."""
    return to_dataframe(run, counting_only=counting_only)


def report(runs: Iterable["str | Path | Run"], **options: Any) -> Report:
    """Per-dataset rows with CIs for each run (``build_report``'s options)."""
    return build_report(runs, **options)


def gate(baseline: "str | Path | Run", candidate: "str | Path | Run", **options: Any) -> GateResult:
    """Is CANDIDATE worse than BASELINE? (``compare_runs``'s options, e.g. ``score="grade"``)."""
    return compare_runs(baseline, candidate, **options)


def compare(runs: Iterable["str | Path | Run"], **options: Any) -> Comparison:
    """Two or more runs item by item, with the gate on each pair (``build_comparison``'s options);
    ``evalkit.compare_html.render_compare_html`` makes the page."""
    return build_comparison(runs, **options)


def rescore_run(run: "str | Path", scorers: Sequence[str] | None = None, *, extractor: str = "evalkit",
                scorer_options: Mapping[str, Mapping[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The saved generations of RUN scored again (nothing is requested from the answering server)."""
    return rescore(run, extractor, scorers=list(scorers) if scorers else None, scorer_options=scorer_options)
