"""The library surface: what a notebook calls, the same functions the CLI calls.

    from evalkit import api
    with api.served(backend="llamacpp") as server:   # the embedded SmolLM2; stopped on exit
        result = api.evaluate(api.RunConfig(eval_files=["eval_data/sample_medqa.jsonl"]), server=server)
    df = api.samples_frame(result.run_dir)          # one row per sample, a column per score
    report = api.report([result.run_dir])           # rows with CIs per dataset and score

Every default lives in the config types (``RunConfig``, ``ServeRequest``; those that depend on other
settings are filled in by ``evalkit.run.plan.resolve_config``), not in the CLI.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from evalkit import __version__  # noqa: F401 (the CLI reads the version here)
from evalkit.results.compare import Comparison, build_comparison
from evalkit.config import (DEFAULT_DATA_DIR, OverlapSettings, ReportSettings, ServerControlSettings,
                            ViewSettings, field_default)
from evalkit.results.gate import GateResult, compare_runs
from evalkit.core.records import GenerationParams, Item, SampleRecord, Score
from evalkit.results.report import Report, build_report
from evalkit.run.rescore import Rescored, rescore, rescore_to_file
from evalkit.run.runner import Evaluation, RunConfig, RunResult, TaskResult, evaluate_tasks, run_eval
from evalkit.run.rundir import Run, load_run, to_dataframe
from evalkit.scoring import get_scorer
from evalkit.serving.backends import backend_names, get_backend, served_models
from evalkit.serving.errors import ServerError
from evalkit.serving.launch import StopResult, stop_server
from evalkit.serving.plan import ServePlan, server_status
from evalkit.serving.plan import serve as _serve
from evalkit.config import API_KEY_ENV, ServeRequest
from evalkit.serving.state import ServerHandle, list_states, resolve_endpoint, state_dir
from evalkit.data.suites import Suite, load_suite
from evalkit.run.tasks import Task, TaskError, from_benchmark, from_suite
from evalkit.sweep import report as _sweep_report  # noqa: F401 (registers a sweep trend's renderers: format_names("trend"))

__all__ = ["API_KEY_ENV", "Evaluation", "GenerationParams", "Item", "RunConfig", "RunResult", "Run", "SampleRecord",
           "Rescored", "Score", "ServeRequest", "ServePlan", "ServerError", "ServerHandle", "StopResult", "Suite", "Task",
           "TaskError", "TaskResult", "backend_names", "backend_ports", "check_strategy", "compare", "evaluate",
           "check_tracker", "export", "tracker_targets", "from_benchmark", "from_suite", "gate", "get_scorer", "judge", "leaderboard", "leaderboard_document",
           "load_run", "load_suite", "overlap", "report", "report_document", "rescore", "rescore_to_file",
           "resolve_server", "samples_frame", "serve", "served", "served_models", "server_names", "servers",
           "state_dir", "stop", "sweep_gate", "sweep_run", "sweep_status", "sweep_tasks", "sweep_trend",
           "sweep_trend_page", "write_gate_reports",
           "sweep_watch", "view"]


def serve(request: ServeRequest | None = None, *, on_plan: Callable[[ServePlan], None] | None = None,
          **settings: Any) -> ServerHandle:
    """Start a model server detached and wait until it answers (``evalkit serve``).

    Give a ServeRequest or its fields (``backend="vllm", model_path=..., replicas=2``); the
    server keeps running after this returns, until ``stop(handle.name)``. ON_PLAN sees what
    will be started before anything starts. ``backend`` may be ``module:attr`` (a backend
    defined outside evalkit, see ``evalkit.serving.backends.base.Backend``).
    """
    return _serve(request or ServeRequest(**settings), on_plan=on_plan)


def resolve_server(name: str | None = None) -> ServerHandle:
    """The recorded server NAME, else the only one recorded (ServerError otherwise)."""
    return resolve_endpoint(name)


def stop(name: str = field_default(ServeRequest, "name"), *,
         grace_s: float = field_default(ServerControlSettings, "stop_grace_s")) -> StopResult | None:
    """Stop the server recorded as NAME (only processes evalkit started); None if none is recorded."""
    return stop_server(name, grace_s=grace_s)


def backend_ports() -> dict[str, int]:
    """Each built-in backend's default port."""
    return {name: get_backend(name).default_port for name in backend_names()}


def backend_concurrencies() -> dict[str, int]:
    """The built-in backends that declare their own default concurrency (requests in flight), and it."""
    return {name: get_backend(name).default_concurrency for name in backend_names()
            if get_backend(name).default_concurrency}


def server_names() -> list[str]:
    """The names of every recorded server (no probe)."""
    return [h.name for h in list_states()]


def servers(*, timeout: float = field_default(ServerControlSettings, "status_timeout_s")) -> list[dict[str, Any]]:
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


def evaluate(what: "RunConfig | Task | Sequence[Task] | Suite | None" = None, *,
             suite: "str | Suite | Mapping[str, Any] | None" = None,
             server: "ServerHandle | str | None" = None, endpoint: "str | Sequence[str] | None" = None,
             data_dir: "str | Path" = DEFAULT_DATA_DIR, **settings: Any) -> "RunResult | Evaluation":
    """Run (or resume) an evaluation of a task, several tasks, a suite, or a RunConfig.

        api.evaluate(suite="medagents_hard", server="default")      # the suite's benchmarks
        api.evaluate([Task("medqa"), Task("my.jsonl", adapter="mcq")], endpoint="http://127.0.0.1:30000/v1",
                     limit=50, max_new_tokens=512)

    SERVER is a handle or the recorded name of a server ``serve`` started (None: the only one
    recorded); ENDPOINT one URL or several instead. SETTINGS are RunConfig fields and single
    GenerationParams fields; they win over what a task sets. Registered benchmarks are read
    from DATA_DIR. Returns an Evaluation (results per task, ``evaluation["medqa"]``).

    SUITE (a name, a path or a Suite) runs the suite's tasks and records the suite in the
    manifest (the report's layout); given with TASKS, those are run as the suite's (e.g.
    ``tasks.from_suite(suite, extra_data=[...])``). A mapping is a suite's manifest record, recorded
    as it is with the TASKS given (a sweep's job: the suite as it was when the sweep started).

    A RunConfig runs as it is (SETTINGS may replace its fields) and gives its RunResult.
    The callbacks (on_sample, on_start, progress, on_notice) are ``runner.run_eval``'s.
    """
    callbacks = {k: settings.pop(k) for k in CALLBACKS if k in settings}
    if isinstance(suite, Mapping):
        settings.setdefault("suite", dict(suite))
        suite = None
    if isinstance(what, RunConfig):
        config = replace(what, **settings) if settings else what
        if endpoint is not None or server is not None:
            config = replace(config, **_endpoint_settings(server, endpoint, config))
        return run_eval(config, **callbacks)
    chosen = None
    if isinstance(what, Suite) or suite is not None:
        chosen = what if isinstance(what, Suite) else (suite if isinstance(suite, Suite) else load_suite(suite))
        chosen.files(data_dir)  # SuiteError naming every missing file, and how to fetch it
    if isinstance(what, Task):
        tasks = [what]
    elif what is None or isinstance(what, Suite):
        tasks = from_suite(chosen) if chosen is not None else []
    else:
        tasks = list(what)
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
    from evalkit.run.plan import config_on_server

    on = config_on_server(server)
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


def report_document(runs: Iterable["str | Path | Run"], **options: Any) -> Any:
    """The whole report of RUNS in one call (``evalkit report``): the Report, notes and warnings about the
    runs, truncation hints, and the sections of suite tables and of the overlap split
    (``report_document.report_document``'s options: ``by``, ``ci``, ``ks``, ``overlap_file`` ...).
    ``render_report(doc, fmt)`` lays it out as text, ``report_renderables(doc)`` as rich tables."""
    from evalkit.results.report_document import report_document as _document

    return _document(runs, **options)


def leaderboard_document(runs_or_root: "str | Path | Iterable[str | Path | Run]" = field_default(ReportSettings,
                                                                                                   "results_dir"),
                         **options: Any) -> Any:
    """The whole leaderboard in one call (``evalkit leaderboard``): the Leaderboard, warnings about runs
    skipped, and with ``overlap_file=`` the clean-accuracy section (``report_document.leaderboard_document``;
    the other options are ``leaderboard``'s). ``render_leaderboard(doc, fmt)`` lays it out as text,
    ``leaderboard_renderables(doc)`` as rich tables. ValueError when no run is left."""
    from evalkit.results.report_document import leaderboard_document as _document

    return _document(runs_or_root, **options)


def write_gate_reports(result: GateResult, *, json_out: "str | Path | None" = None,
                       junit_out: "str | Path | None" = None) -> list[Path]:
    """Write a gate's verdict as JSON to JSON_OUT and as JUnit XML to JUNIT_OUT (their folders made as
    needed); JSON_OUT "-" (stdout) is left to the caller. The paths written, in that order."""
    from evalkit.results.formats import render

    written = []
    for target, fmt in ((json_out, "json"), (junit_out, "junit")):
        if target is None or str(target) == "-":
            continue
        path = Path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render("gate", result, fmt), encoding="utf-8")
        written.append(path)
    return written


def leaderboard(runs_or_root: "str | Path | Iterable[str | Path | Run]" = field_default(ReportSettings, "results_dir"),
                **options: Any) -> Any:
    """Every run under a results folder (or the runs given) as configurations x datasets, ranked
    (``leaderboard.build_leaderboard``'s options, e.g. ``score="grade"``, ``models=["*7b*"]``)."""
    from evalkit.results.leaderboard import build_leaderboard

    return build_leaderboard(runs_or_root, **options)


def gate(baseline: "str | Path | Run", candidate: "str | Path | Run", *, overlap_file: "str | Path | None" = None,
         overlap_rule: str = field_default(OverlapSettings, "rule"),
         overlap_stale: str = field_default(OverlapSettings, "stale"), **options: Any) -> GateResult:
    """Is CANDIDATE worse than BASELINE? (``compare_runs``'s options, e.g. ``score="grade"``). With
    OVERLAP_FILE, only the items it marks clean under OVERLAP_RULE are gated (``--clean-only``);
    items whose text it did not flag are refused (a ValueError) or, OVERLAP_STALE "ignore", left out."""
    if overlap_file is not None:
        from evalkit.results.overlap_split import read_overlap

        options["clean_only"] = read_overlap(Path(overlap_file), overlap_rule, overlap_stale)
    return compare_runs(baseline, candidate, **options)


def compare(runs: Iterable["str | Path | Run"], **options: Any) -> Comparison:
    """Two or more runs item by item, with the gate on each pair (``build_comparison``'s options);
    ``evalkit.results.pages.compare.render_compare_html`` makes the page."""
    return build_comparison(runs, **options)


def check_strategy(name: str) -> str:
    """NAME if a run can use it as its multi-sample strategy: a built-in or registered name
    (``sampling.register_strategy``), or ``module:attr`` naming a stage factory outside evalkit
    (``sampling.get_strategy`` loads it); ValueError otherwise."""
    from evalkit.config import SINGLE
    from evalkit.run.sampling import get_strategy

    if name == SINGLE:
        raise ValueError(f"{SINGLE!r} is what one sample per item means; name a strategy for several samples")
    get_strategy(name)
    return name


def judge(path: "str | Path | None" = None, **options: Any) -> Any:
    """Judge the saved answers in PATH with a model judge, or rank two runs' answers (``pair=(A, B)``);
    ``judging.judge``'s options (``settings=JudgeSettings(...)``, ``endpoints=``, ``server=``,
    ``work_dir=``, ``json_out=`` ...). Returns a ``judging.Judgement``; rerunning resumes."""
    from evalkit.run.judging import judge as _judge

    return _judge(path, **options)


def overlap(train: Sequence["str | Path"], *, eval_files: Sequence["str | Path"] = (), suite: str | None = None,
            data_dir: "str | Path | None" = None, field: str | None = None,
            ngram: int = field_default(OverlapSettings, "ngram"),
            output: "str | Path | None" = None):
    """Which benchmark items the training corpus TRAIN holds (Med-PaLM 2's rule and the n-gram rule).

    The items come from EVAL_FILES and/or the benchmarks of SUITE (under DATA_DIR).
    With OUTPUT, writes overlap.jsonl: a header line (the rules, the normalization,
    the files read, those read only in part or not at all, each benchmark file's sha256)
    then one line per item (with its text's fingerprint). It is written even when some
    training file was incomplete or unreadable; ``OverlapResult.partial`` says so.
    Returns ``corpus.OverlapResult``.
    """
    from evalkit.data.corpus import analyse_overlap
    from evalkit.data.datasets import load_dataset
    from evalkit.data.registry import DEFAULT_DATA_DIR
    from evalkit.core.store import write_jsonl
    from evalkit.data.suites import load_suite

    files = [Path(f) for f in eval_files]
    if suite is not None:
        files += load_suite(suite).files(data_dir if data_dir is not None else DEFAULT_DATA_DIR)
    if not files:
        raise ValueError("overlap: give benchmark files (--eval-file) or a suite (--suite)")
    loaded = [load_dataset(f) for f in files]
    items = [item for d in loaded for item in d.items]
    # what the flags were computed for: each file's sha256 here, each item's text fingerprint in its row
    benchmarks = [{"path": str(d.path), "sha256": d.sha256, "items": len(d.items)} for d in loaded]
    result = analyse_overlap(items, train, field_spec=field, ngram=ngram, header_extra={"benchmarks": benchmarks})
    if output is not None:
        write_jsonl(output, [{"overlap_header": result.header}, *result.rows])
    return result


def export(path: "str | Path", to: Sequence[str], *, tracker_run_ids: Sequence[str] = (), log_samples: bool = False,
           step: int | None = None) -> list[Any]:
    """Send the figures of PATH (a run directory, or a sweep folder: each finished checkpoint at its
    training step) to the trackers TO (``mlflow[:EXPERIMENT]``, ``wandb[:PROJECT]``); points the tracker
    run already holds are not sent again. TRACKER_RUN_IDS (``TRACKER=ID``, or an ID with one tracker)
    attach to an existing run, e.g. the training run. One ``trackers.export.ExportResult`` per tracker."""
    from evalkit.sweep.track import export as _export

    return _export(path, tracker_targets(to, tracker_run_ids), log_samples=log_samples, step=step)


def tracker_targets(to: Sequence[str], tracker_run_ids: Sequence[str] = ()) -> list[Any]:
    """The trackers TO (``mlflow[:EXPERIMENT]``, ``wandb[:PROJECT]``) as ``trackers.base.TrackerTarget``s,
    with the run ids TRACKER_RUN_IDS give them; TrackerError when one does not fit."""
    from evalkit.results.trackers.base import parse_target, with_run_ids

    return with_run_ids([parse_target(s) for s in to], tracker_run_ids)


def check_tracker(spec: str) -> str:
    """SPEC if figures can be sent to it here (a known tracker whose extra is installed); TrackerError
    (naming the extra to install) otherwise."""
    from evalkit.results.trackers.base import parse_target, require

    require(parse_target(spec).kind)
    return spec


# ---------------------------------------------------------------- sweeps (evalkit.sweep.state*)



def view(results_dir: "str | Path" = field_default(ReportSettings, "results_dir"), *,
         settings: ViewSettings | None = None, announce: Callable[[str, list[str]], None] | None = None) -> None:
    """Serve RESULTS_DIR as a live, read-only web application until stopped (``evalkit view``).

    ANNOUNCE(url, notes) hears the URL to open (carrying the token when one is needed) once the
    server listens. A non-loopback address needs a token: ``settings.token``, else one made now.
    """
    from evalkit.web.view.app import build_app
    from evalkit.web import security, server

    settings = settings or ViewSettings()
    notes: list[str] = []
    token = settings.token
    if not server.is_loopback(settings.host):
        token = token or security.new_token()
        notes.append(server.PUBLIC_ADDRESS_NOTE)
    app = build_app(results_dir, settings, token=token)
    sock = server.bind(settings.host, settings.port)
    url = server.base_url(sock, settings.host) + "/" + (f"?token={token}" if token else "")
    server.serve(app, sock, announce=(lambda: announce(url, notes)) if announce else None)

def sweep_run(settings: Any, checkpoints: Sequence[str], launch: Any = None, **options: Any) -> list[Any]:
    """Submit one job per checkpoint (paths or globs) that is not complete; see ``sweep_jobs.start_sweep``.

    ``settings`` is a ``sweep.SweepSettings``, ``launch`` a ``sweep_jobs.SweepLaunch`` (Slurm by default);
    its jobs evaluate with ``evaluate`` unless LAUNCH names another callable.
    """
    from evalkit.sweep.jobs import start_sweep

    return start_sweep(settings, checkpoints, _sweep_launch(launch), **options)


def sweep_tasks(tasks: Sequence[Task], *, data_dir: "str | Path" = DEFAULT_DATA_DIR, **settings: Any
                ) -> list[dict[str, Any]]:
    """TASKS as a sweep keeps them (``SweepSettings.tasks``; e.g. ``from_suite(suite)``, whose scorers then
    score every checkpoint), their data as absolute file paths; SETTINGS are the sweep's own RunConfig and
    GenerationParams fields. SweepError when they would need more than one run per checkpoint."""
    from evalkit.sweep import state as sweep

    return sweep.sweep_tasks(tasks, data_dir, settings)


def sweep_watch(settings: Any, folder: str, launch: Any = None, **options: Any) -> list[Any]:
    """Submit each new checkpoint in FOLDER once complete, until stopped; see ``sweep_jobs.watch_sweep``."""
    from evalkit.sweep.jobs import watch_sweep

    return watch_sweep(settings, folder, _sweep_launch(launch), **options)


def _sweep_launch(launch: Any) -> Any:
    """LAUNCH (None: the default ``SweepLaunch``) with this module's ``evaluate`` as the evaluation its jobs
    run, unless it names another: the sweep layer is handed it, never imports this module."""
    from evalkit.sweep.jobs import SweepLaunch

    launch = launch or SweepLaunch()
    return launch if launch.evaluate is not None else replace(launch, evaluate=evaluate)


def sweep_status(sweep_dir: "str | Path") -> list[Any]:
    """Each checkpoint of the sweep in SWEEP_DIR: new, pending, running, done or failed (``sweep.JobView``)."""
    from evalkit.sweep.state import SweepState
    from evalkit.sweep.jobs import current_views

    return current_views(SweepState.load(sweep_dir))


def sweep_trend(state: Any, **options: Any) -> Any:
    """The sweep's scores per training step (``sweep_report.Trend``); STATE is a SweepState or its folder."""
    from evalkit.sweep.state import SweepState
    from evalkit.sweep.report import sweep_trend as _trend

    return _trend(state if isinstance(state, SweepState) else SweepState.load(state), **options)


def sweep_trend_page(trend: Any, *, title: str | None = None, **gate_options: Any) -> tuple[str, list[str]]:
    """The trend page of TREND (``sweep_trend``'s result) and a note per checkpoint left off its plot.

    The points are the trend's own figures (``sweep_report.trend_points``); GATE_OPTIONS go to the
    comparison below the plot (``compare.build_comparison``). ValueError when fewer than two
    checkpoints are scored."""
    from evalkit.results.formats import render
    from evalkit.sweep.report import trend_points

    return render("trend", trend, "html", title=title, **gate_options), trend_points(trend)[1]


def sweep_gate(state: Any, baseline: str, **options: Any) -> Any:
    """Every complete checkpoint gated against BASELINE (a run directory or a checkpoint of the sweep)."""
    from evalkit.sweep.state import SweepState
    from evalkit.sweep.report import sweep_gate as _gate

    return _gate(state if isinstance(state, SweepState) else SweepState.load(state), baseline, **options)


# What the command line uses besides the functions above: the errors it reports, the readers and
# writers of run directories, and the formatting of tables. evalkit/cli/ imports evalkit.api and
# evalkit.config only (tests/test_architecture.py); these names are looked up when first used, so
# `evalkit --help` does not load every module. PUBLIC NAME -> (module, name in it).
# ---------------------------------------------------------------- rating studies (evalkit study ...)

def study_create(name: str, runs: Sequence["str | Path"], **settings: Any) -> Any:
    """Create rating study NAME from long-form RUNS (``reference=True``: the items' reference answers as one
    more system); ``StudySettings`` fields as SETTINGS. Returns ``study.create.CreatedStudy``: its
    invitations carry the raters' and the organiser's tokens, shown once (only hashes are stored)."""
    from evalkit.web.study.create import create_study
    from evalkit.web.security import hash_token, new_token

    def token() -> tuple[str, str]:
        t = new_token()
        return t, hash_token(t)

    return create_study(name, runs, new_token=token, **settings)


def study_report(name: str, *, fmt: str | None = None, **options: Any) -> Any:
    """Study NAME's report: the data (a dict), or rendered as FMT (text, markdown, json, html);
    options: ``studies_dir``, ``n_resamples``, ``seed``."""
    from evalkit.web.study.render import render
    from evalkit.web.study.service import study_report as _report

    report = _report(name, **options)
    return report if fmt is None else render(report, fmt)


def study_export(name: str, fmt: str, **options: Any) -> str:
    """Study NAME's saved ratings as CSV or JSONL text (systems named: the organiser's file)."""
    from evalkit.web.study.service import export_ratings

    return export_ratings(name, fmt, **options)


def study_judge(name: str, scorer: Any, **options: Any) -> Any:
    """Ask the model judge SCORER (``make_judge``) the study's own rubrics about its answers and pairs; a
    ``study.judge.JudgePass``: units asked, with a valid reply, the others' errors (judged units are kept)."""
    from evalkit.web.study.service import run_judge

    return run_judge(name, scorer, **options)


def study_serve(name: str, *, host: str, port: int, studies_dir: "str | Path | None" = None, fsync: bool = False,
                announce: Callable[[str], None] | None = None) -> None:
    """Serve study NAME's rating and organiser pages on HOST:PORT until stopped."""
    from evalkit.config import StudySettings
    from evalkit.web.study.app import serve_study
    from evalkit.web.study.create import study_path
    from evalkit.web.study.db import StudyDB

    path = study_path(name, studies_dir or field_default(StudySettings, "studies_dir"))
    StudyDB(path).close()  # a missing study is named before anything listens
    serve_study(path, host=host, port=port, fsync=fsync, announce=announce)


_EXPORTS: dict[str, tuple[str, str]] = {
    # errors the CLI turns into messages and exit codes
    "DatasetError": ("evalkit.data.datasets", "DatasetError"), "Problem": ("evalkit.data.datasets", "Problem"),
    "EndpointDown": ("evalkit.run.runner", "EndpointDown"), "RequestError": ("evalkit.serving.client", "RequestError"),
    "RunLocked": ("evalkit.core.lock", "RunLocked"), "TemplateError": ("evalkit.data.prompts", "TemplateError"),
    "NEEDS_KEY": ("evalkit.serving.backends", "NEEDS_KEY"),
    "LockLost": ("evalkit.core.lock", "LockLost"),
    "SuiteError": ("evalkit.data.suites", "SuiteError"),
    "FetchError": ("evalkit.data.fetch", "FetchError"), "OriginUnreachable": ("evalkit.data.fetch", "OriginUnreachable"),
    "RubricError": ("evalkit.scoring.rubrics", "RubricError"),
    "ScorerError": ("evalkit.scoring.base", "ScorerError"),
    # a run in progress, and its secrets
    "RunProgress": ("evalkit.run.runner", "RunProgress"), "ProgressLines": ("evalkit.run.progress", "ProgressLines"),
    "redact": ("evalkit.serving.client", "redact"), "is_secret_option": ("evalkit.scoring.base", "is_secret_option"),
    "secret_option_values": ("evalkit.scoring.base", "secret_option_values"),
    "JUDGE_API_KEY_ENV": ("evalkit.scoring.rubric_judge", "JUDGE_API_KEY_ENV"),
    "write_failure_message": ("evalkit.run.rundir", "write_failure_message"),
    # flags that take text, a file or JSON
    "text_or_file": ("evalkit.run.request_controls", "text_or_file"),
    "json_object": ("evalkit.run.request_controls", "json_object"), "parse_json": ("evalkit.core.store", "parse_json"),
    # benchmark data: check, list, fetch
    "load_dataset": ("evalkit.data.datasets", "load_dataset"), "benchmarks": ("evalkit.data.registry", "benchmarks"),
    "resolve_benchmark_file": ("evalkit.data.registry", "resolve_benchmark_file"),
    "fetch_file": ("evalkit.data.fetch", "fetch_file"), "fetch_plan": ("evalkit.data.fetch", "plan"),
    # run directories: their files' names
    "SAMPLES": ("evalkit.core.store", "SAMPLES"), "MANIFEST": ("evalkit.core.store", "MANIFEST"),
    # scoring again, and model judges
    "EXTRACTORS": ("evalkit.scoring.extract", "EXTRACTORS"),
    "extractor_names": ("evalkit.scoring.extract", "extractor_names"),
    "summarize": ("evalkit.run.summary", "summarize"), "Agreement": ("evalkit.scoring.agreement", "Agreement"),
    "make_judge": ("evalkit.run.judging", "make_judge"), "Judgement": ("evalkit.run.judging", "Judgement"),
    "JudgeStopped": ("evalkit.run.judging", "JudgeStopped"), "JudgeDown": ("evalkit.run.judging", "JudgeDown"),
    "JudgeSettings": ("evalkit.config", "JudgeSettings"),
    "JudgeInputError": ("evalkit.scoring.judge_pass", "JudgeInputError"),
    # reports, leaderboards and gates: whole documents and their renderers; numbers the CLI formats itself
    "render": ("evalkit.results.formats", "render"), "format_names": ("evalkit.results.formats", "format_names"),
    "format_of": ("evalkit.results.formats", "format_of"),
    "render_report": ("evalkit.results.report_document", "render_report"),
    "report_renderables": ("evalkit.results.report_document", "report_renderables"),
    "ReportDocument": ("evalkit.results.report_document", "ReportDocument"),
    "render_leaderboard": ("evalkit.results.report_document", "render_leaderboard"),
    "leaderboard_renderables": ("evalkit.results.report_document", "leaderboard_renderables"),
    "fmt_ci": ("evalkit.results.report", "fmt_ci"), "pct": ("evalkit.results.report", "pct"),
    "truncation_hints": ("evalkit.results.report_extras", "truncation_hints"),
    "wilson_interval": ("evalkit.core.stats", "wilson_interval"),
    "EXIT_MISMATCH": ("evalkit.results.gate", "EXIT_MISMATCH"), "flips_table": ("evalkit.results.gate", "flips_table"),
    "gate_json": ("evalkit.results.gate", "gate_json"), "gate_table": ("evalkit.results.gate", "gate_table"),
    "render_compare_html": ("evalkit.results.pages.compare", "render_compare_html"),
    # training-data overlap beside a gate or a comparison
    "read_overlap": ("evalkit.results.overlap_split", "read_overlap"),
    "LEGACY_SCORE": ("evalkit.run.rundir", "LEGACY_SCORE"),
    # sweeps over checkpoints (evalkit sweep)
    "SweepError": ("evalkit.sweep.state", "SweepError"), "SweepState": ("evalkit.sweep.state", "SweepState"),
    "log_tail": ("evalkit.sweep.state", "log_tail"), "SlurmOptions": ("evalkit.sweep.jobs", "SlurmOptions"),
    "SweepLaunch": ("evalkit.sweep.jobs", "SweepLaunch"), "trend_table": ("evalkit.sweep.report", "trend_table"),
    "gate_rows": ("evalkit.sweep.report", "gate_rows"), "sweep_junit": ("evalkit.sweep.report", "sweep_junit"),
    "trend_json": ("evalkit.sweep.report", "trend_json"),
    "trend_markdown": ("evalkit.sweep.report", "trend_markdown"), "best_text": ("evalkit.sweep.report", "best_text"),
    # trackers (evalkit export, --log-to)
    "TrackerError": ("evalkit.results.trackers.base", "TrackerError"),
    # rating studies
    "StudyError": ("evalkit.web.study.db", "StudyError"), "STUDY_FORMATS": ("evalkit.web.study.render", "STUDY_FORMATS"),
    "EXPORT_FORMATS": ("evalkit.web.study.service", "EXPORT_FORMATS"), "DESIGNS": ("evalkit.web.study.rubric", "DESIGNS"),
    "DesignError": ("evalkit.web.study.design", "DesignError"), "PUBLIC_ADDRESS_NOTE": ("evalkit.web.server", "PUBLIC_ADDRESS_NOTE"),
    "is_loopback": ("evalkit.web.server", "is_loopback"),
    "EXIT_PASS": ("evalkit.results.gate", "EXIT_PASS"), "EXIT_REGRESSION": ("evalkit.results.gate", "EXIT_REGRESSION"),  # its gates
}


def __getattr__(name: str) -> Any:
    """The names of ``_EXPORTS``, imported from their module when first asked for."""
    try:
        module, attr = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'evalkit.api' has no attribute {name!r}") from None
    import importlib

    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value
