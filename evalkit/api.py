"""The library surface: the operations a notebook calls, the same ones the command line calls.

    from evalkit import api
    with api.served(backend="llamacpp") as server:   # the embedded SmolLM2; stopped on exit
        result = api.evaluate(api.RunConfig(eval_files=["eval_data/sample_medqa.jsonl"]), server=server)
    df = api.samples_frame(result.run_dir)          # one row per sample, a column per score
    doc = api.report([result.run_dir])              # rows with CIs per dataset and score, notes, sections
    print(api.render(doc, "markdown"))               # or "csv", "json", "html"; "rich": terminal tables

Public: this module and ``evalkit.config`` (the settings types and their defaults); every other
module of evalkit may move. Each operation returns a typed result; ``render`` lays any of them out.
The errors evalkit raises on purpose derive from ``EvalkitError``: ``InputError`` (an input it cannot
use; nothing was done), ``BusyError`` (another evalkit process writes the run directory),
``UnreachableError`` (a server stopped answering), ``ServerError`` (a server could not be started,
found or stopped). Related operations are grouped: ``data``, ``sweep``, ``study``, ``settings``.

Every default lives in the config types (``RunConfig``, ``ServeRequest`` ...; those that depend on other
settings are filled in by ``evalkit.run.plan.resolve_config``), not in the CLI.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from evalkit import __version__  # noqa: F401 (the CLI reads the version here)
from evalkit.config import (DEFAULT_DATA_DIR, OverlapSettings, ReportSettings, ServerControlSettings,
                            ViewSettings, field_default)
from evalkit.config import API_KEY_ENV, GenerationParams, ServeRequest
from evalkit.core.errors import BusyError, EvalkitError, InputError, UnreachableError
from evalkit.data.suites import Suite, load_suite
from evalkit.results.compare import Comparison, build_comparison
from evalkit.results.gate import GateResult, compare_runs
from evalkit.run.dispatch import RunProgress
from evalkit.run.rundir import Run, load_run, to_dataframe
from evalkit.run.runner import Evaluation, RunConfig, RunResult, evaluate_tasks, run_eval
from evalkit.run.tasks import Task, TaskError, from_suite
from evalkit.serving.errors import ServerError
from evalkit.serving.launch import StopResult, stop_server
from evalkit.serving.plan import ServePlan, server_status
from evalkit.serving.plan import serve as _serve
from evalkit.serving.state import ServerHandle, list_states
from evalkit.sweep import report as _sweep_report  # noqa: F401 (registers a sweep's renderers: trend, sweep_gate)
# evalkit's own registrations, imported here as well as through the evalkit.plugins entry points, so the
# API and the CLI find every benchmark even where the install's metadata predates those entry points.
import evalkit.benchmarks  # noqa: E402,F401
import evalkit.data.longform  # noqa: E402,F401

__all__ = [
    # the types a caller builds or gets back
    "RunConfig", "GenerationParams", "Task", "Suite", "Run", "RunResult", "Evaluation", "RunProgress",
    "ServeRequest", "ServerHandle",
    # the errors evalkit raises on purpose, by kind
    "EvalkitError", "InputError", "BusyError", "UnreachableError", "ServerError",
    # serving
    "serve", "served", "stop", "servers", "backends",
    # evaluating, and reading what was run
    "evaluate", "from_suite", "load_suite", "load_run", "samples_frame",
    # scoring again, judging
    "rescore", "judge", "make_judge",
    # results, and their layout
    "report", "leaderboard", "gate", "compare", "overlap", "render", "export", "view",
    # groups of operations
    "data", "sweep", "study", "settings",
]


# ---------------------------------------------------------------- serving (evalkit serve, status, stop)

def serve(request: ServeRequest | None = None, *, on_plan: Callable[[ServePlan], None] | None = None,
          **settings: Any) -> ServerHandle:
    """Start a model server detached and wait until it answers (``evalkit serve``).

    Give a ServeRequest or its fields (``backend="vllm", model_path=..., replicas=2``); the
    server keeps running after this returns, until ``stop(handle.name)``. ON_PLAN sees what
    will be started (a ``ServePlan``) before anything starts. ``backend`` may be ``module:attr``
    (a backend defined outside evalkit, see ``evalkit.serving.backends.base.Backend``).
    """
    return _serve(request or ServeRequest(**settings), on_plan=on_plan)


@contextmanager
def served(request: ServeRequest | None = None, **settings: Any) -> Iterator[ServerHandle]:
    """``serve`` for the length of a ``with`` block: the server is stopped when the block ends."""
    handle = serve(request, **settings)
    try:
        yield handle
    finally:
        stop_server(handle.name)


def stop(name: str = field_default(ServeRequest, "name"), *,
         grace_s: float = field_default(ServerControlSettings, "stop_grace_s")) -> StopResult | None:
    """Stop the server recorded as NAME (only processes evalkit started); None if none is recorded.
    The result's ``was_running`` and ``message`` say what was done."""
    return stop_server(name, grace_s=grace_s)


def servers(*, probe: bool = True,
            timeout: float = field_default(ServerControlSettings, "status_timeout_s")) -> list[dict[str, Any]]:
    """Every recorded server, its processes and whether it answers (``evalkit status --json``); each
    row's ``state`` is "ready", "busy", ``config.NEEDS_KEY`` ... Without PROBE, only each server's
    ``name``, asking nothing. ``ServerHandle.records_dir()`` is where they are recorded."""
    if not probe:
        return [{"name": h.name} for h in list_states()]
    key = os.environ.get(API_KEY_ENV)
    return [server_status(h, api_key=key, timeout=timeout) for h in list_states()]


def backends() -> dict[str, Any]:
    """Each built-in serving backend by name, with its ``default_port`` and ``default_concurrency``
    (requests in flight a run sends it; 0: the run's own default)."""
    from evalkit.serving.backends import backend_names, get_backend

    return {name: get_backend(name) for name in backend_names()}


# ---------------------------------------------------------------- evaluating (evalkit run)

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

    on = config_on_server(server, eval_files=[])
    out = {"endpoint": on.endpoint, "endpoints": [], "backend": on.backend}
    if config is None or config.model is None:
        out["model"] = on.model
    if config is None or config.api_key is None:
        out["api_key"] = on.api_key
    return out


def samples_frame(run: "str | Path | Run", *, counting_only: bool = True) -> Any:
    """A run's samples as a pandas DataFrame (``score:NAME`` columns for its scores)."""
    return to_dataframe(run, counting_only=counting_only)


# ---------------------------------------------------------------- scoring again, judging

def rescore(path: "str | Path", extractor: str | None = None, *, scorers: Sequence[str] | None = None,
            scorer_options: Mapping[str, Mapping[str, Any]] | None = None,
            output: "str | Path | None" = None) -> Any:
    """Score the generations saved at PATH again, requesting nothing (``evalkit score``); PATH is a run
    directory, a samples file or another tool's log that a benchmark registered a reader for. The rescored samples are written to OUTPUT (default:
    beside PATH, never over it; a run's own samples.jsonl is rewritten only under its lock: BusyError).

    Returns ``Rescored``: its ``samples``, ``output``, scoring ``plan``, ``extractor``, ``summary`` per
    dataset, a ``note`` when a running run was writing PATH, and ``extractor_table``: the extractor's own
    table (a ``ReportTable``, for an extractor that declares ``report_table(samples)``), or None."""
    from evalkit.run.rescore import rescore_to_file
    from evalkit.scoring.extract import get_extractor

    done = rescore_to_file(path, output, extractor=extractor, scorers=scorers, scorer_options=scorer_options)
    table_of = getattr(get_extractor(done.extractor), "report_table", None)
    if table_of is not None and all(s.name == "choice" for s in done.plan.scorers):
        done = replace(done, extractor_table=table_of(done.samples))
    return done


def make_judge(settings: Any = None, *, endpoints: Sequence[str] = (), server: str | None = None,
               model: str | None = None, api_key: str | None = None) -> Any:
    """The model judge of SETTINGS (a ``config.JudgeSettings``: rubric, sampling ...) at ENDPOINTS, else at
    the recorded server SERVER (None: the only one); MODEL defaults to the one the server lists. The key
    is API_KEY, else ``$EVALKIT_JUDGE_API_KEY``. ServerError when no server answers, InputError for a
    rubric or setting it cannot use."""
    from evalkit.config import JudgeSettings
    from evalkit.run.judging import make_judge as _make

    return _make(settings or JudgeSettings(), endpoints=endpoints, server=server, model=model, api_key=api_key)


def judge(path: "str | Path | None" = None, **options: Any) -> Any:
    """Judge the saved answers in PATH with a model judge, or rank two runs' answers (``pair=(A, B)``);
    options: ``scorer=make_judge(...)`` (else ``settings=``, ``endpoints=``, ``server=`` ... make one),
    ``questions=``, ``work_dir=``, ``json_out=``, ``progress=`` (a RunProgress). Returns a ``Judgement``
    (its ``kind``: answers, pairwise, or a benchmark's own file pass); rerunning resumes. UnreachableError when the judge
    stops answering, KeyboardInterrupt (with ``work_dir``) when stopped: what was judged is kept."""
    from evalkit.run.judging import judge as _judge

    return _judge(path, **options)


# ---------------------------------------------------------------- results

def report(runs: Iterable["str | Path | Run"], **options: Any) -> Any:
    """The report of RUNS (``evalkit report``), a ``ReportDocument``: ``report`` (per-dataset rows with CIs
    for each run; ``rows`` for short), notes and warnings about the runs, truncation ``hints``, and the
    sections of suite tables and of the overlap split. Options: ``by``, ``ci``, ``ks``, ``n_resamples``,
    ``seed``, ``overlap_file``, ``overlap_rule``, ``overlap_stale``. ``render(doc, fmt)`` lays it out."""
    from evalkit.results.report_document import report_document

    return report_document(runs, **options)


def leaderboard(runs_or_root: "str | Path | Iterable[str | Path | Run]" = field_default(ReportSettings, "results_dir"),
                **options: Any) -> Any:
    """Every run under a results folder (or the runs given) as configurations x datasets, ranked
    (``evalkit leaderboard``), a ``LeaderboardDocument``: the ``leaderboard``, warnings about runs left
    out, and with ``overlap_file=`` the clean-accuracy section. Options: ``score=``, ``models=["*7b*"]``,
    ``task_folders``, ``prompts``, ``run_names``, ``ci`` ... ValueError when no run is left."""
    from evalkit.results.report_document import leaderboard_document

    return leaderboard_document(runs_or_root, **options)


def gate(baseline: "str | Path | Run", candidate: "str | Path | Run", *, overlap_file: "str | Path | None" = None,
         overlap_rule: str = field_default(OverlapSettings, "rule"),
         overlap_stale: str = field_default(OverlapSettings, "stale"), **options: Any) -> GateResult:
    """Is CANDIDATE worse than BASELINE? (``evalkit gate``; options: ``max_drop``, ``alpha``, ``score``,
    ``allow_mismatch`` ...). With OVERLAP_FILE, only the items it marks clean under OVERLAP_RULE are
    gated; items whose text it did not flag are refused (ValueError) or, OVERLAP_STALE "ignore", left
    out. The result's ``exit_code`` is ``config.EXIT_PASS``, ``EXIT_REGRESSION`` or ``EXIT_MISMATCH``."""
    if overlap_file is not None:
        from evalkit.results.overlap_split import read_overlap

        options["clean_only"] = read_overlap(Path(overlap_file), overlap_rule, overlap_stale)
    return compare_runs(baseline, candidate, **options)


def compare(runs: Iterable["str | Path | Run"], *, overlap_file: "str | Path | None" = None,
            overlap_rule: str = field_default(OverlapSettings, "rule"),
            overlap_stale: str = field_default(OverlapSettings, "stale"), **options: Any) -> Comparison:
    """Two or more runs item by item, with the gate on each pair (``evalkit compare``; options as
    ``gate``'s); with OVERLAP_FILE, overlapping items are marked and each pair is gated on the clean
    ones too. ``render(comparison, "html", title=...)`` makes the page."""
    if overlap_file is not None:
        from evalkit.results.overlap_split import read_overlap

        options["overlap"] = read_overlap(Path(overlap_file), overlap_rule, overlap_stale)
    return build_comparison(runs, **options)


def overlap(train: Sequence["str | Path"], *, eval_files: Sequence["str | Path"] = (), suite: str | None = None,
            data_dir: "str | Path | None" = None, field: str | None = None,
            ngram: int = field_default(OverlapSettings, "ngram"),
            output: "str | Path | None" = None) -> Any:
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


def render(document: Any, fmt: str, **options: Any) -> Any:
    """DOCUMENT laid out in FMT: the one entry to evalkit's renderers (``results.formats``).

    Documents: ``report(...)``, ``leaderboard(...)``, ``gate(...)``, ``compare(...)``, ``sweep.trend(...)``,
    ``sweep.gate(...)``; ``settings.formats(kind)`` lists each one's formats (a terminal format gives a
    list of rich renderables, the others text). A ``RunResult`` in "hints" gives the advice its truncated
    answers call for (lines; with ``max_new_tokens=`` the limit they hit). ValueError for a document or a
    format it does not lay out.
    """
    from evalkit.results.formats import render as render_kind

    if isinstance(document, RunResult) and fmt == "hints":
        from evalkit.results.report_extras import truncation_hints

        rows = ((name, d.n, d.truncated, d.thinking) for name, d in document.summary.items())
        return truncation_hints(rows, options.get("max_new_tokens"))
    return render_kind(document_kind(document), document, fmt, **options)


def document_kind(document: Any) -> str:
    """The kind of DOCUMENT as the renderer registry names it (report, leaderboard, gate, compare, trend,
    sweep_gate, table: one ``ReportTable``); ValueError for anything else."""
    from evalkit.core.records import ReportTable
    from evalkit.results.report_document import LeaderboardDocument, ReportDocument
    from evalkit.sweep.report import SweepGate, Trend

    kinds = ((ReportDocument, "report"), (LeaderboardDocument, "leaderboard"), (GateResult, "gate"),
             (Comparison, "compare"), (Trend, "trend"), (SweepGate, "sweep_gate"), (ReportTable, "table"))
    for cls, kind in kinds:
        if isinstance(document, cls):
            return kind
    raise ValueError(f"cannot render a {type(document).__name__}")


def export(path: "str | Path", to: Sequence[str], *, tracker_run_ids: Sequence[str] = (), log_samples: bool = False,
           step: int | None = None) -> list[Any]:
    """Send the figures of PATH (a run directory, or a sweep folder: each finished checkpoint at its
    training step) to the trackers TO (``mlflow[:EXPERIMENT]``, ``wandb[:PROJECT]``); points the tracker
    run already holds are not sent again. TRACKER_RUN_IDS (``TRACKER=ID``, or an ID with one tracker)
    attach to an existing run, e.g. the training run. One ``ExportResult`` per tracker (``line()``,
    ``notes``); InputError when a tracker or run id does not fit (``settings.trackers`` checks first)."""
    from evalkit.sweep.track import export as _export

    return _export(path, settings.trackers(to, tracker_run_ids), log_samples=log_samples, step=step)


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


# ---------------------------------------------------------------- groups of operations

class _DataOperations:
    """Benchmark files: the registry, fetching, checking (``evalkit data``). ``api.data``."""

    @staticmethod
    def benchmarks() -> list[Any]:
        """Every registered benchmark (name, file, items, options_text, sha256, source), in table order."""
        from evalkit.data.registry import benchmarks

        return benchmarks()

    @staticmethod
    def resolve(target: "str | Path", data_dir: "str | Path" = DEFAULT_DATA_DIR) -> Path:
        """TARGET as a path when it exists; else a registered name ("medqa") stands for its file under DATA_DIR."""
        from evalkit.data.registry import resolve_benchmark_file

        return resolve_benchmark_file(target, data_dir)

    @staticmethod
    def load(path: "str | Path", *, adapter: str | None = None) -> Any:
        """The benchmark file PATH read and checked (``evalkit data check``): its items, shape, option and
        target counts, and whether its sha256 is the registry's. InputError (``problems``: every bad
        record, as file:line: message) when it cannot be used."""
        from evalkit.data.datasets import load_dataset

        return load_dataset(path, adapter=adapter)

    @staticmethod
    def plan(names: Iterable[str]) -> list[Any]:
        """The registry entries to fetch for NAMES, each after the files it is read with; an EvalkitError
        naming an unknown one."""
        from evalkit.data.fetch import plan

        return plan(names)

    @staticmethod
    def fetch(bench: Any, *, source: str | None = None, data_dir: "str | Path" = DEFAULT_DATA_DIR) -> Any:
        """Download BENCH (a ``plan`` entry), or copy it from the mirror SOURCE, into DATA_DIR; its sha256
        is checked and a good file is never replaced. An EvalkitError (UnreachableError: the origin did
        not answer) when it could not be fetched."""
        from evalkit.data.fetch import fetch_file

        return fetch_file(bench, source=source, data_dir=data_dir)


class _SweepOperations:
    """Every checkpoint of a training run evaluated (``evalkit sweep``). ``api.sweep``; the settings are
    ``config.SweepSettings``; ``launch`` and ``slurm`` say where the jobs run."""

    @staticmethod
    def launch(**options: Any) -> Any:
        """Where and how the jobs run (``SweepLaunch``): ``executor`` ("slurm", "local"), ``slurm``
        (``sweep.slurm(...)``), ``wait``, ``parallel`` (local jobs at once)."""
        from evalkit.sweep.jobs import SweepLaunch

        return SweepLaunch(**options)

    @staticmethod
    def slurm(**options: Any) -> Any:
        """A Slurm job's resources (``SlurmOptions``): partition, account, qos, time_min, gpus_per_node,
        cpus_per_task, mem, constraint, array_parallelism, sbatch, setup."""
        from evalkit.sweep.jobs import SlurmOptions

        return SlurmOptions(**options)

    @staticmethod
    def run(settings: Any, checkpoints: Sequence[str], launch: Any = None, **options: Any) -> list[Any]:
        """Submit one job per checkpoint (paths or globs) that is not complete; see ``sweep.jobs.start_sweep``.

        ``settings`` is a ``config.SweepSettings``, ``launch`` a ``sweep.launch(...)`` (Slurm by default).
        """
        from evalkit.sweep.jobs import start_sweep

        return start_sweep(settings, checkpoints, _sweep_launch(launch), **options)

    @staticmethod
    def watch(settings: Any, folder: str, launch: Any = None, **options: Any) -> list[Any]:
        """Submit each new checkpoint in FOLDER once complete, until stopped; see ``sweep.jobs.watch_sweep``."""
        from evalkit.sweep.jobs import watch_sweep

        return watch_sweep(settings, folder, _sweep_launch(launch), **options)

    @staticmethod
    def tasks(tasks: Sequence[Task], *, data_dir: "str | Path" = DEFAULT_DATA_DIR, **settings: Any
              ) -> list[dict[str, Any]]:
        """TASKS as a sweep keeps them (``SweepSettings.tasks``; e.g. ``from_suite(suite)``, whose scorers then
        score every checkpoint), their data as absolute file paths; SETTINGS are the sweep's own RunConfig and
        GenerationParams fields. InputError when they would need more than one run per checkpoint."""
        from evalkit.sweep.state import sweep_tasks

        return sweep_tasks(tasks, data_dir, settings)

    @staticmethod
    def load(sweep_dir: "str | Path") -> Any:
        """The sweep whose state is in SWEEP_DIR (its settings and jobs); InputError when there is none."""
        from evalkit.sweep.state import SweepState

        return SweepState.load(sweep_dir)

    @staticmethod
    def status(sweep_dir: "str | Path") -> list[Any]:
        """Each checkpoint of the sweep in SWEEP_DIR: new, pending, running, done or failed (a ``JobView``:
        ``state``, ``detail``, ``job.checkpoint``, ``submission``, ``log_tail(lines)``)."""
        from evalkit.sweep.jobs import current_views

        return current_views(sweep.load(sweep_dir))

    @staticmethod
    def log_tail(path: str | None, lines: int) -> list[str]:
        """The last LINES lines of a job's log PATH ([] where there is none yet)."""
        from evalkit.sweep.state import log_tail

        return log_tail(path, lines)

    @staticmethod
    def trend(state: Any, **options: Any) -> Any:
        """The sweep's scores per training step (a ``Trend``); STATE is a loaded sweep or its folder."""
        from evalkit.sweep.report import sweep_trend

        return sweep_trend(sweep.load(state) if isinstance(state, (str, Path)) else state, **options)

    @staticmethod
    def gate(state: Any, baseline: str, **options: Any) -> Any:
        """Every complete checkpoint gated against BASELINE (a run directory or a checkpoint of the sweep);
        ``exit_code``, ``regressed``. Options as ``api.gate``'s."""
        from evalkit.sweep.report import sweep_gate

        return sweep_gate(sweep.load(state) if isinstance(state, (str, Path)) else state, baseline, **options)

    @staticmethod
    def trend_page(trend: Any, *, title: str | None = None, **gate_options: Any) -> tuple[str, list[str]]:
        """The trend page of TREND (``trend``'s result) and a note per checkpoint left off its plot.

        The points are the trend's own figures; GATE_OPTIONS go to the comparison below the plot
        (``compare``'s). ValueError when fewer than two checkpoints are scored."""
        from evalkit.results.formats import render as render_kind
        from evalkit.sweep.report import trend_points

        return render_kind("trend", trend, "html", title=title, **gate_options), trend_points(trend)[1]


def _sweep_launch(launch: Any) -> Any:
    """LAUNCH (None: the default ``SweepLaunch``) with this module's ``evaluate`` as the evaluation its jobs
    run, unless it names another: the sweep layer is handed it, never imports this module."""
    from evalkit.sweep.jobs import SweepLaunch

    launch = launch or SweepLaunch()
    return launch if launch.evaluate is not None else replace(launch, evaluate=evaluate)


class _StudyOperations:
    """Human rating studies (``evalkit study``). ``api.study``; settings: ``config.StudySettings``."""

    @staticmethod
    def formats() -> tuple[str, ...]:
        """The formats a study's report is rendered in (``report(name, fmt=...)``)."""
        from evalkit.web.study.render import STUDY_FORMATS

        return STUDY_FORMATS

    @staticmethod
    def export_formats() -> tuple[str, ...]:
        """The formats a study's ratings are exported in (``export``)."""
        from evalkit.web.study.service import EXPORT_FORMATS

        return EXPORT_FORMATS

    @staticmethod
    def create(name: str, runs: Sequence["str | Path"], **settings: Any) -> Any:
        """Create rating study NAME from long-form RUNS (``reference=True``: the items' reference answers as
        one more system); ``StudySettings`` fields as SETTINGS. Returns a ``CreatedStudy``: its invitations
        carry the raters' and the organiser's tokens, shown once (only hashes are stored)."""
        from evalkit.web.security import hash_token, new_token
        from evalkit.web.study.create import create_study

        def token() -> tuple[str, str]:
            t = new_token()
            return t, hash_token(t)

        return create_study(name, runs, new_token=token, **settings)

    @staticmethod
    def report(name: str, *, fmt: str | None = None, **options: Any) -> Any:
        """Study NAME's report: the data (a dict), or rendered as FMT (text, markdown, json, html);
        options: ``studies_dir``, ``n_resamples``, ``seed``."""
        from evalkit.web.study.render import render as render_study
        from evalkit.web.study.service import study_report

        data = study_report(name, **options)
        return data if fmt is None else render_study(data, fmt)

    @staticmethod
    def export(name: str, fmt: str, **options: Any) -> str:
        """Study NAME's saved ratings as CSV or JSONL text (systems named: the organiser's file)."""
        from evalkit.web.study.service import export_ratings

        return export_ratings(name, fmt, **options)

    @staticmethod
    def judge(name: str, scorer: Any, **options: Any) -> Any:
        """Ask the model judge SCORER (``make_judge``) the study's own rubrics about its answers and pairs;
        a ``JudgePass``: units ``asked``, ``answered`` with a valid reply, the others' ``errors``."""
        from evalkit.web.study.service import run_judge

        return run_judge(name, scorer, **options)

    @staticmethod
    def serve(name: str, *, host: str, port: int, studies_dir: "str | Path | None" = None, fsync: bool = False,
              announce: Callable[[str, list[str]], None] | None = None) -> None:
        """Serve study NAME's rating and organiser pages on HOST:PORT until stopped; ANNOUNCE(url, notes)
        once it listens (a note when the address is not loopback)."""
        from evalkit.config import StudySettings
        from evalkit.web import server
        from evalkit.web.study.app import serve_study
        from evalkit.web.study.create import study_path
        from evalkit.web.study.db import StudyDB

        path = study_path(name, studies_dir or field_default(StudySettings, "studies_dir"))
        StudyDB(path).close()  # a missing study is named before anything listens
        notes = [] if server.is_loopback(host) else [server.PUBLIC_ADDRESS_NOTE]
        serve_study(path, host=host, port=port, fsync=fsync,
                    announce=(lambda url: announce(url, notes)) if announce else None)


class _SettingsOperations:
    """Settings given as text, checked before any work starts, and which of them are secret. ``api.settings``."""

    @staticmethod
    def strategy(name: str) -> str:
        """NAME if a run can use it as its multi-sample strategy: a built-in or registered name
        (``sampling.register_strategy``), or ``module:attr`` naming a stage factory outside evalkit
        (loaded now); ValueError otherwise."""
        from evalkit.config import SINGLE
        from evalkit.run.sampling import get_strategy

        if name == SINGLE:
            raise ValueError(f"{SINGLE!r} is what one sample per item means; name a strategy for several samples")
        get_strategy(name)
        return name

    @staticmethod
    def extractors() -> list[str]:
        """The names of the answer extractors a choice scorer can use (those plugins register too)."""
        from evalkit.scoring.extract import extractor_names

        return list(extractor_names())

    @staticmethod
    def formats(kind: str, *, terminal: bool = True) -> tuple[str, ...]:
        """The formats KIND's documents are rendered in (``render``): report, leaderboard, gate, compare,
        trend, sweep_gate, study; without TERMINAL only those that give text."""
        from evalkit.results.formats import format_names

        return format_names(kind, terminal=terminal)

    @staticmethod
    def format(name: str) -> Any:
        """The format NAME (``terminal``: it gives rich renderables; ``page``: it goes to a file)."""
        from evalkit.results.formats import format_of

        return format_of(name)

    @staticmethod
    def tracker(spec: str) -> str:
        """SPEC (``mlflow[:EXPERIMENT]``, ``wandb[:PROJECT]``) if figures can be sent to it here (a known
        tracker whose extra is installed); InputError (naming the extra to install) otherwise."""
        from evalkit.results.trackers.base import parse_target, require

        require(parse_target(spec).kind)
        return spec

    @staticmethod
    def trackers(to: Sequence[str], tracker_run_ids: Sequence[str] = ()) -> list[Any]:
        """The trackers TO as targets, with the run ids TRACKER_RUN_IDS give them; InputError when one
        does not fit."""
        from evalkit.results.trackers.base import parse_target, with_run_ids

        return with_run_ids([parse_target(s) for s in to], tracker_run_ids)

    @staticmethod
    def is_secret(option: str) -> bool:
        """True for a scorer option that holds a secret (``api_key``, ``..._token``, ``password`` ...)."""
        from evalkit.scoring.base import is_secret_option

        return is_secret_option(option)

    @staticmethod
    def secrets(scorer_options: Mapping[str, Mapping[str, Any]]) -> list[str]:
        """The values of every secret option in SCORER_OPTIONS ({scorer: {key: value}}), to mask."""
        from evalkit.scoring.base import secret_option_values

        return secret_option_values(scorer_options)


data = _DataOperations()
sweep = _SweepOperations()
study = _StudyOperations()
settings = _SettingsOperations()
