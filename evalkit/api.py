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
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from evalkit.compare import Comparison, build_comparison
from evalkit.gate import GateResult, compare_runs
from evalkit.records import GenerationParams, Item, SampleRecord, Score
from evalkit.report import Report, build_report
from evalkit.rescore import rescore
from evalkit.runner import RunConfig, RunResult, run_eval
from evalkit.runs import Run, load_run, to_dataframe
from evalkit.scoring import get_scorer
from evalkit.backends import backend_names, get_backend, served_models
from evalkit.serving.errors import ServerError
from evalkit.serving.launch import StopResult, stop_server
from evalkit.serving.plan import ServePlan, server_status
from evalkit.serving.plan import serve as _serve
from evalkit.serving.request import API_KEY_ENV, ServeRequest
from evalkit.serving.state import ServerHandle, list_states, resolve_endpoint, state_dir

__all__ = ["API_KEY_ENV", "GenerationParams", "Item", "RunConfig", "RunResult", "Run", "SampleRecord", "Score",
           "ServeRequest", "ServePlan", "ServerError", "ServerHandle", "StopResult", "backend_names", "backend_ports",
           "compare", "evaluate", "gate", "get_scorer", "load_run", "overlap", "report", "rescore",
           "rescore_run",
           "resolve_server", "samples_frame", "serve", "served", "served_models", "server_names", "servers",
           "state_dir", "stop", "sweep_gate", "sweep_run", "sweep_status", "sweep_trend", "sweep_watch"]


def serve(request: ServeRequest | None = None, *, on_plan: Callable[[ServePlan], None] | None = None,
          **settings: Any) -> ServerHandle:
    """Start a model server detached and wait until it answers (``evalkit serve``).

    Give a ServeRequest or its fields (``backend="vllm", model_path=..., replicas=2``); the
    server keeps running after this returns, until ``stop(handle.name)``. ON_PLAN sees what
    will be started before anything starts. ``backend`` may be ``module:attr`` (a backend
    defined outside evalkit, see ``evalkit.backends.base.Backend``).
    """
    return _serve(request or ServeRequest(**settings), on_plan=on_plan)


def resolve_server(name: str | None = None) -> ServerHandle:
    """The recorded server NAME, else the only one recorded (ServerError otherwise)."""
    return resolve_endpoint(name)


def stop(name: str = "default", *, grace_s: float = 10.0) -> StopResult | None:
    """Stop the server recorded as NAME (only processes evalkit started); None if none is recorded."""
    return stop_server(name, grace_s=grace_s)


def backend_ports() -> dict[str, int]:
    """Each built-in backend's default port."""
    return {name: get_backend(name).default_port for name in backend_names()}


def server_names() -> list[str]:
    """The names of every recorded server (no probe)."""
    return [h.name for h in list_states()]


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


def evaluate(config: RunConfig, **callbacks: Any) -> RunResult:
    """Run (or resume) an evaluation; see ``evalkit.runner.run_eval`` for the callbacks."""
    return run_eval(config, **callbacks)


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


def rescore_run(run: "str | Path", scorers: Sequence[str] | None = None, *, extractor: str | None = None,
                scorer_options: Mapping[str, Mapping[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The saved generations of RUN scored again (nothing is requested from the answering server):
    ``rescore`` (the one rescoring entry point) with the scorers first."""
    return rescore(run, extractor, scorers=list(scorers) if scorers else None, scorer_options=scorer_options)


def overlap(train: Sequence["str | Path"], *, eval_files: Sequence["str | Path"] = (), suite: str | None = None,
            data_dir: "str | Path | None" = None, field: str | None = None, ngram: int = 13,
            output: "str | Path | None" = None):
    """Which benchmark items the training corpus TRAIN holds (Med-PaLM 2's rule and the n-gram rule).

    The items come from EVAL_FILES and/or the benchmarks of SUITE (under DATA_DIR).
    With OUTPUT, writes overlap.jsonl: a header line (the rules, the normalization,
    the files read) then one line per item. Returns ``corpus.OverlapResult``.
    """
    from evalkit.corpus import analyse_overlap
    from evalkit.datasets import load_dataset
    from evalkit.registry import DEFAULT_DATA_DIR
    from evalkit.store import write_jsonl
    from evalkit.suites import load_suite

    files = [Path(f) for f in eval_files]
    if suite is not None:
        files += load_suite(suite).files(data_dir if data_dir is not None else DEFAULT_DATA_DIR)
    if not files:
        raise ValueError("overlap: give benchmark files (--eval-file) or a suite (--suite)")
    items = [item for f in files for item in load_dataset(f).items]
    result = analyse_overlap(items, train, field_spec=field, ngram=ngram)
    if output is not None:
        write_jsonl(output, [{"overlap_header": result.header}, *result.rows])
    return result


# ---------------------------------------------------------------- sweeps (evalkit.sweep*)


def sweep_run(settings: Any, checkpoints: Sequence[str], launch: Any = None, **options: Any) -> list[Any]:
    """Submit one job per checkpoint (paths or globs) that is not complete; see ``sweep_jobs.start_sweep``.

    ``settings`` is a ``sweep.SweepSettings``, ``launch`` a ``sweep_jobs.SweepLaunch`` (Slurm by default).
    """
    from evalkit.sweep_jobs import SweepLaunch, start_sweep

    return start_sweep(settings, checkpoints, launch or SweepLaunch(), **options)


def sweep_watch(settings: Any, folder: str, launch: Any = None, **options: Any) -> list[Any]:
    """Submit each new checkpoint in FOLDER once complete, until stopped; see ``sweep_jobs.watch_sweep``."""
    from evalkit.sweep_jobs import SweepLaunch, watch_sweep

    return watch_sweep(settings, folder, launch or SweepLaunch(), **options)


def sweep_status(sweep_dir: "str | Path") -> list[Any]:
    """Each checkpoint of the sweep in SWEEP_DIR: new, pending, running, done or failed (``sweep.JobView``)."""
    from evalkit.sweep import SweepState
    from evalkit.sweep_jobs import current_views

    return current_views(SweepState.load(sweep_dir))


def sweep_trend(state: Any, **options: Any) -> Any:
    """The sweep's scores per training step (``sweep_report.Trend``); STATE is a SweepState or its folder."""
    from evalkit.sweep import SweepState
    from evalkit.sweep_report import sweep_trend as _trend

    return _trend(state if isinstance(state, SweepState) else SweepState.load(state), **options)


def sweep_gate(state: Any, baseline: str, **options: Any) -> Any:
    """Every complete checkpoint gated against BASELINE (a run directory or a checkpoint of the sweep)."""
    from evalkit.sweep import SweepState
    from evalkit.sweep_report import sweep_gate as _gate

    return _gate(state if isinstance(state, SweepState) else SweepState.load(state), baseline, **options)
