"""The config types: the one home of every default a run, a task or the CLI uses.

``RunConfig`` (a run), ``GenerationParams`` (what every request carries), the size
limits on what a run reads, the strategy and ordering names, the data folder; the
settings of the tables (``IntervalSettings``, ``ReportSettings``, ``GateSettings``,
``CompareSettings``, ``OverlapSettings``), of the model judge (``JudgeSettings``), of
serving (``ServeRequest``, ``ServerControlSettings``) and of sweeps (``SweepSettings``,
``SweepCommandSettings``). The CLI derives its flags' defaults and help from these
fields (``field_default``), so ``--help`` shows the values the library uses and
nothing restates them (tests/test_architecture.py checks every command).

This module is data: it imports nothing of evalkit (every other module may import it).
What needs the rest of evalkit to fill in or check these settings lives in the run planning
layer, ``evalkit.run.plan`` (``resolve_config``, ``validate_config``, ``config_secrets``,
``config_on_server``, ``backend_concurrency``); the sweep's checks in ``evalkit.sweep.state``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# Where registered benchmarks are (as ``evalkit data fetch`` puts them), relative to the working directory.
DEFAULT_DATA_DIR = Path("eval_data")

EXEMPLARS_FILE = "fewshot_exemplars.jsonl"  # the bundled few-shot exemplars, in the bundled eval_data/

# Limits on what a run reads (checked by evalkit.core.limits).
MB = 1 << 20
DEFAULT_MAX_RESPONSE_MB = 16.0  # a completion body larger than this is an error on its sample
DEFAULT_MAX_RECORD_MB = 16.0  # an input line longer than this is an error at its file and line

# Strategies (evalkit.run.sampling): how several generations of an item make one answer.
SINGLE = "single"
SELF_CONSISTENCY = "self-consistency"
ENSEMBLE_REFINEMENT = "ensemble-refinement"
STRATEGIES = (SELF_CONSISTENCY, ENSEMBLE_REFINEMENT)  # the multi-sample strategies a user picks

# Where --order-from puts items the earlier run has no length for (evalkit.run.order).
UNKNOWN_FIRST = "first"
UNKNOWN_MEDIAN = "median"
UNKNOWN_RULES = (UNKNOWN_FIRST, UNKNOWN_MEDIAN)

DEFAULT_RESAMPLES = 10_000  # bootstrap resamples of a report's, leaderboard's and gate's intervals
DEFAULT_CI = "wilson"  # the interval of a proportion (IntervalSettings.ci)
DEFAULT_CONFIDENCE = 0.95  # the confidence level of every interval (IntervalSettings.confidence)
DEFAULT_SEED = 0  # the bootstrap's seed (IntervalSettings.seed)
PROGRESS_INTERVAL_S = 15.0  # seconds between progress lines when stdout is a log


def field_default(cls: type, name: str) -> Any:
    """The default of field NAME of dataclass CLS (its factory called), for a CLI option's default or help."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
            raise KeyError(f"{cls.__name__}.{name} has no default")
    raise KeyError(f"{cls.__name__} has no field {name!r}")


# Body keys the client sets itself; --extra-body may not replace them (the runner relies on them).
RESERVED_BODY_KEYS = frozenset({"model", "messages", "n", "stream"})


@dataclass(frozen=True)
class GenerationParams:
    """Sampling parameters and request controls sent with every request of a run.

    ``temperature`` None means "the run's default" (0, or 0.7 for several samples:
    see ``run.plan.resolve_config``); a request never carries None.

    The fields after ``seed`` are optional controls; at their defaults they are
    left out of the request body and of ``fingerprint_doc``, so runs made
    without them keep the fingerprints (and run directories) they had.
    ``chat_template_kwargs`` goes to the server's chat template (SGLang and vLLM
    read it from the top level of the body, e.g. ``{"enable_thinking": false}``);
    ``extra_body`` is merged into the body last, for anything else a server takes.
    """

    max_new_tokens: int = 1024
    temperature: float | None = None
    top_p: float = 1.0
    seed: int | None = None
    system_prompt: str | None = None
    stop: tuple[str, ...] = ()
    top_k: int | None = None
    min_p: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    chat_template_kwargs: dict[str, Any] | None = None
    extra_body: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))
        elif not isinstance(self.stop, tuple):
            object.__setattr__(self, "stop", tuple(self.stop))
        for name in ("chat_template_kwargs", "extra_body"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, dict):
                raise ValueError(f"{name} must be a JSON object, got {type(value).__name__}")
        clash = sorted(RESERVED_BODY_KEYS & set(self.extra_body or {}))
        if clash:
            raise ValueError(f"extra_body may not set {', '.join(clash)}: evalkit sets them itself")

    def to_dict(self) -> dict[str, Any]:
        """Every field (as the manifest records it)."""
        d = asdict(self)
        d["stop"] = list(self.stop)
        return d

    def fingerprint_doc(self) -> dict[str, Any]:
        """The fields that identify a run: the four original ones always, the controls only when set."""
        d = self.to_dict()
        doc = {k: d[k] for k in ("max_new_tokens", "temperature", "top_p", "seed")}
        defaults = GenerationParams().to_dict()
        doc.update({k: v for k, v in d.items() if k not in doc and v != defaults[k]})
        return doc



# Requests in flight by default where the backend has no opinion (or none is known): 64 per
# data-parallel replica of an SGLang dp=8 server, enough to keep its batches full. A backend
# declares its own (the embedded llama.cpp server has few slots): see run.plan.backend_concurrency.
DEFAULT_CONCURRENCY = 512
MULTI_SAMPLE_TEMPERATURE = 0.7
ER_SAMPLES = 11
DEFAULT_PROMPT = "strict"  # the prompt template of a run that names none
ER_PROMPT = "er_sample"  # ... and of an ensemble-refinement run


@dataclass
class RunConfig:
    """Everything that defines one evaluation run; every default lives here.

    ``endpoint`` and ``endpoints`` together list the servers to use (duplicates
    dropped); all must serve the same model. ``samples`` > 1 selects a
    multi-sample ``strategy`` (see evalkit.run.sampling); ``refine_samples`` and
    ``refine_prompt`` apply to ensemble refinement. ``n_per_request`` asks for
    several generations in one request (``n``) and falls back to one request per
    generation where the server ignores or refuses ``n``.

    Fields left None are filled by ``evalkit.run.plan.resolve_config``: the prompt (``strict``,
    ``er_sample`` for ensemble refinement), the samples (1, 11 for ensemble
    refinement), the temperature (0, 0.7 with several samples), the concurrency
    (512, 4 on the embedded llama.cpp server) and the scorers (``choice`` with
    ``extractor`` for multiple-choice items). ``scorers`` holds names or
    ``module:attr`` references; ``scorer_options`` per-scorer keyword options.
    """

    eval_files: list[str]
    endpoint: str | None = None
    model: str | None = None
    api_key: str | None = None
    backend: str | None = None
    prompt: str | None = None
    extractor: str = "evalkit"
    params: GenerationParams = field(default_factory=GenerationParams)
    concurrency: int | None = None
    limit: int | None = None
    results_dir: str = "results"
    task_folder: str | None = None
    run_name: str | None = None
    timeout_s: float = 600.0
    max_attempts: int = 5
    skip_invalid: bool = False
    endpoints: list[str] = field(default_factory=list)
    rps: float | None = None
    retry_base_delay_s: float = 0.5
    samples: int | None = None
    strategy: str = SELF_CONSISTENCY
    refine_samples: int = 33
    refine_prompt: str = "er_refine"
    n_per_request: bool = True
    fewshot_k: int = 3
    fewshot_seed: int = 0
    exemplars_file: str | None = None
    adapter: str | None = None
    scorers: list[str] | None = None
    scorer_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    scoring_concurrency: int = 16
    wait_for_lock: bool = False  # wait for another run holding the run directory instead of refusing
    max_response_mb: float = DEFAULT_MAX_RESPONSE_MB
    max_record_mb: float = DEFAULT_MAX_RECORD_MB
    suite: dict[str, Any] | None = None  # the suite this run evaluates (evalkit.data.suites), for the manifest
    checkpoint: dict[str, Any] | None = None  # a sweep's checkpoint identity (path, step, hash), for the manifest
    order_from: str | None = None  # an earlier run, or "auto": dispatch longest-predicted first (evalkit.run.order)
    order_unknown: str = UNKNOWN_FIRST  # where items the earlier run does not predict go

    def all_endpoints(self) -> list[str]:
        """Every endpoint of the run, first given first, without duplicates."""
        urls = ([self.endpoint] if self.endpoint else []) + list(self.endpoints)
        return list(dict.fromkeys(u.rstrip("/") for u in urls))

    @property
    def multi_sample(self) -> bool:
        return (self.samples or 1) > 1 or self.strategy == ENSEMBLE_REFINEMENT

    def strategy_name(self) -> str:
        """The strategy as recorded: ``single`` for one sample per item."""
        return self.strategy if self.multi_sample else SINGLE


# ---------------------------------------------------------------- tables: report, leaderboard, gate, compare

CI_METHODS = ("wilson", "bootstrap")  # how a proportion's interval is computed (a mean's is always bootstrap)
OVERLAP_RULES = ("medpalm", "ngram")  # which rule of an overlap file marks an item as overlapping
# what a report, leaderboard, gate or comparison does with an item whose text is not the one the overlap file flagged
OVERLAP_STALE = ("refuse", "ignore")


@dataclass(frozen=True)
class IntervalSettings:
    """How the confidence intervals of a report, leaderboard, gate or comparison are computed."""

    ci: str = DEFAULT_CI
    confidence: float = DEFAULT_CONFIDENCE
    n_resamples: int = DEFAULT_RESAMPLES
    seed: int = DEFAULT_SEED


@dataclass(frozen=True)
class ReportSettings:
    """What ``evalkit report`` and ``evalkit leaderboard`` show: the output format, the score
    ranked by (the multiple-choice verdict, ``correct``, unless a judge's axis is named), and
    where the leaderboard looks for runs."""

    format: str = "rich"  # a name of evalkit.results.formats (format_names("report"))
    score: str = "correct"
    results_dir: str = "results"
    report_page: str = "report.html"  # where --format html goes without -o
    leaderboard_page: str = "leaderboard.html"


@dataclass(frozen=True)
class GateSettings:
    """When a candidate run fails against its baseline (``evalkit gate``, compare, sweep report)."""

    max_drop: float = 1.0  # largest tolerated drop, in points
    alpha: float = 0.05  # significance level, Holm-corrected over datasets
    score: str = "correct"
    allow_mismatch: bool = False
    show_flips: int = 20  # right-to-wrong items listed per dataset


@dataclass(frozen=True)
class CompareSettings:
    """The page of ``evalkit compare``."""

    output: str = "compare.html"
    title: str = "evalkit compare"


@dataclass(frozen=True)
class OverlapSettings:
    """Training-data overlap: the n-gram rule's length, where ``evalkit overlap`` writes, whether it
    accepts a corpus it could read only in part, the rule a report, leaderboard, gate or comparison
    reads from an overlap file, and what they do with items whose text is not the one it flagged."""

    ngram: int = 13  # lm-eval's decontamination uses 13-grams
    output: str = "overlap.jsonl"
    rule: str = "medpalm"
    # a training file cut short or unreadable makes `evalkit overlap` exit 1 unless this is set
    accept_partial: bool = False
    stale: str = "refuse"  # OVERLAP_STALE: an item whose text changed since the overlap file stops the command


# ---------------------------------------------------------------- the model judge (evalkit judge)

REQUEST_PER = ("statement", "answer")  # a file of statements to judge: one judge request per statement, or per answer


@dataclass(frozen=True)
class JudgeSettings:
    """A model judge's settings (``evalkit judge``; ``scoring.rubric_judge.RubricJudgeScorer``'s defaults,
    which tests/test_architecture.py checks against these) and the judge pass's own."""

    rubric: str = "grade4"
    concurrency: int = 4
    rps: float | None = None
    temperature: float = 0.0
    max_tokens: int = 256
    max_attempts: int = 3
    reference: bool = True  # show the judge an item's reference answers, when it has some
    json_schema: bool = False  # constrain the reply to the rubric's JSON schema (response_format)
    n_resamples: int = 2000  # bootstrap resamples of the agreement figures
    request_per: str = "statement"  # REQUEST_PER: a file pass's statements, one request each or per answer
    limit: int | None = None


# ---------------------------------------------------------------- serving (evalkit serve, status, stop)

API_KEY_ENV = "EVALKIT_API_KEY"
JUDGE_API_KEY_ENV = "EVALKIT_JUDGE_API_KEY"  # where a model judge's key comes from (judge.api_key_env to change)
ENGINE_PYTHON_ENV = "EVALKIT_ENGINE_PYTHON"
NEEDS_KEY = "needs a key"  # the state of a server that answers, but refuses a request without its API key

# ---------------------------------------------------------------- values results carry (read by callers)

SAMPLES = "samples.jsonl"  # a run directory's samples, one JSON line each
MANIFEST = "manifest.json"  # a run directory's record of what was run
EXIT_PASS, EXIT_REGRESSION, EXIT_MISMATCH = 0, 1, 2  # a gate's verdicts, as exit codes (GateResult.exit_code)


def _setting(default: Any = None, help: str = "", **cli: Any) -> Any:
    """A ServeRequest field: its default, its --help text, and CLI details (``flag``, ``multiple``)."""
    if isinstance(default, list):
        return field(default_factory=list, metadata={"help": help, **cli})
    return field(default=default, metadata={"help": help, **cli})


@dataclass
class ServeRequest:
    """The settings of ``evalkit serve`` (see its --help); every default is here.

    The CLI builds its flags from these fields (name, type, default and the ``help`` in each
    field's metadata). A field whose default depends on the machine or the environment is None
    here and resolved where it is used (its help says how): ``engine_python`` (the Python that
    has sglang / vllm / sglang-router) defaults to $EVALKIT_ENGINE_PYTHON, else this one;
    ``api_key`` to $EVALKIT_API_KEY.
    """

    backend: str = _setting("auto", "A built-in backend, or module:attr for one defined outside evalkit; "
                                    "auto: sglang when CUDA GPUs and sglang are present, else llamacpp.")
    model_path: str | None = _setting(None, "Checkpoint folder or hub id (sglang, vllm) or GGUF file "
                                            "(llamacpp; default: the embedded SmolLM2).")
    name: str = _setting("default", "Name under which the server is recorded.")
    host: str = _setting("127.0.0.1", "Address every listener binds.")
    port: int | None = _setting(None, "Default: the backend's own port, or a free one when that is taken.")
    served_model_name: str | None = _setting(None, "Model id the server reports (default: the checkpoint's file "
                                                   "stem, folder name or hub id).")
    replicas: int = _setting(1, "Start this many workers of the backend and SGLang's router in front of them.")
    router_only: bool = _setting(False, "Start only SGLang's router, in front of --worker-urls started elsewhere.",
                                 flag="--router")
    worker_urls: list[str] = _setting([], "Workers for --router (repeatable, or space-separated).", multiple=True)
    prometheus_port: int | None = _setting(None, "Router's metrics port on 127.0.0.1 (default: a free one).")
    dp: int = _setting(8, "sglang data parallel size (--dp-size).")
    tp: int = _setting(1, "sglang tensor parallel size (--tp-size).")
    mem_fraction_static: float = _setting(0.8, "sglang KV-cache memory share.")
    tensor_parallel_size: int = _setting(1, "vllm.")
    data_parallel_size: int = _setting(1, "vllm.")
    gpu_memory_utilization: float | None = _setting(None, "vllm (default: vLLM's).")
    max_model_len: int | None = _setting(None, "vllm (default: vLLM's; 2048 on CPU).")
    dtype: str | None = _setting(None, "vllm (default: vLLM's; bfloat16 on CPU).")
    reasoning_parser: str | None = _setting(None, "vllm.")
    enforce_eager: bool = _setting(False, "vllm: no CUDA graphs / torch.compile (always on CPU).")
    n_ctx: int = _setting(4096, "llamacpp context per slot.")
    parallel: int = _setting(4, "llamacpp parallel slots per server.")
    threads: int | None = _setting(None, "llamacpp threads per server (default: (cores - 1) / replicas, at least 1).")
    engine_python: str | None = _setting(None, f"Python that has sglang / vllm / sglang-router "
                                                f"(default: ${ENGINE_PYTHON_ENV} or this one).")
    api_key: str | None = _setting(None, f"Required of clients; or ${API_KEY_ENV}. Never saved.", envvar=API_KEY_ENV)
    timeout_s: float = _setting(900.0, "Seconds to wait for the server to answer.", flag="--timeout")
    log_dir: str | None = _setting(None, "Where the server logs go (default: the state directory).")
    extra_args: list[str] = _setting([], "Arguments after `--`, passed to the server (each worker) unchanged.",
                                     argument=True)

    def __post_init__(self) -> None:
        self.engine_python = self.engine_python or os.environ.get(ENGINE_PYTHON_ENV) or sys.executable
        self.api_key = self.api_key or os.environ.get(API_KEY_ENV) or None


@dataclass(frozen=True)
class ServerControlSettings:
    """``evalkit status`` and ``evalkit stop`` (``api.servers``, ``api.stop``)."""

    status_timeout_s: float = 10.0  # seconds each recorded server has to answer its probe
    stop_grace_s: float = 10.0  # seconds between SIGTERM and SIGKILL


# ---------------------------------------------------------------- web applications (evalkit view, study serve)

LOOPBACK_HOST = "127.0.0.1"
DEFAULT_STUDIES_DIR = "studies"  # each rating study is a folder here holding its SQLite file


@dataclass(frozen=True)
class WebSettings:
    """Where one of evalkit's web applications listens; port 0 takes a free one."""

    host: str = LOOPBACK_HOST  # another address needs a token, and TLS from a proxy in front of it
    port: int = 8800


@dataclass(frozen=True)
class ViewSettings(WebSettings):
    """``evalkit view``: the results folder as a live, read-only web application."""

    token: str | None = None  # needed on a non-loopback bind; made and printed with the URL when not given
    refresh_s: float = 1.0  # how often a live page asks the server for news
    items_per_page: int = 100  # a run's items shown at once in its item browser
    studies_dir: str = DEFAULT_STUDIES_DIR  # the rating studies listed on the home page


# ---------------------------------------------------------------- sweeps (evalkit sweep)

SWEEP_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"
EXECUTORS = ("slurm", "local")


@dataclass
class SweepSettings:
    """What every job of a sweep shares. ``eval_files`` are the files evaluated; ``tasks``, when set,
    the tasks each job evaluates (``tasks.Task.to_dict()`` of each: a suite's, with its prompt, generation
    settings and scorers, the suite's record in ``suite``), their files in ``eval_files``; else each
    file is a task of its own. ``serve`` holds ServeRequest fields, ``generation`` GenerationParams
    fields, ``run`` other RunConfig fields (limit, prompt, concurrency, ...); both win over a task's."""

    name: str
    sweep_dir: str
    results_dir: str
    eval_files: list[str]
    backend: str = "llamacpp"
    suite: dict[str, Any] | None = None
    serve: dict[str, Any] = field(default_factory=dict)
    generation: dict[str, Any] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)
    step_from: str | None = None
    tasks: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        # The name's check (SWEEP_NAME) raises the sweep's own error: evalkit.sweep.state.check_settings.
        self.sweep_dir = os.path.abspath(self.sweep_dir)
        self.results_dir = os.path.abspath(self.results_dir)
        # A file as an absolute path (jobs may start elsewhere); a registered name such as medqa as it is.
        self.eval_files = [os.path.abspath(f) if os.path.exists(f) else f for f in self.eval_files]

    def settings_id(self) -> str:
        """A short hash of what changes a run's results (not where the sweep keeps its state)."""
        doc = {"eval_files": self.eval_files, "backend": self.backend, "generation": self.generation,
               "run": self.run, "serve": self.serve}
        if self.tasks:  # only then: a sweep of files keeps the id (and run directories) it had
            doc["tasks"] = self.tasks
        return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:10]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: Any) -> "SweepSettings":
        known = {k: v for k, v in doc.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass(frozen=True)
class SweepCommandSettings:
    """The sweep commands' own settings: how jobs are submitted, how ``--watch`` decides a checkpoint
    is complete, and what status and report show."""

    executor: str = "slurm"
    local_jobs: int = 1  # --executor local: jobs at once
    slurm_time_min: int = 240  # minutes per Slurm job
    quiet_s: float = 60.0  # --watch: a checkpoint is complete when its files stopped changing this long
    watch_interval_s: float = 30.0  # --watch: seconds between looks
    status_lines: int = 5  # last lines of each failed or running job's log
    report_format: str = "table"  # a name of evalkit.results.formats (format_names("trend"))
    trend_page: str = "trend.html"


def _sweep_setting(default: Any = None, help: str = "", to: str = "", **cli: Any) -> Any:
    """A SweepRunRequest field: ``_setting``'s, and TO, where a value given goes: ``SECTION`` or
    ``SECTION.KEY`` (sections: settings, serve, generation, run, slurm, launch; SweepSettings' ``serve``,
    ``generation`` and ``run`` are dictionaries), "" for what the command reads itself."""
    return _setting(default, help, to=to, **cli)


@dataclass
class SweepRunRequest:
    """The flags of ``evalkit sweep run`` (see its --help), built from these fields like ``evalkit serve``'s
    from ServeRequest's. None (or an empty list) means: the setting's own default, in the type named by
    ``to`` (SweepSettings, its serve/generation/run dictionaries, SlurmOptions, SweepLaunch)."""

    watch: str | None = _sweep_setting(
        None, "Watch this folder and submit each new checkpoint (a folder named checkpoint-N, global_stepN, iter_N, "
              "...step=N...) once complete (the backend's files are there: a .gguf for llamacpp, config and weights "
              "for vllm/sglang), until Ctrl-C; a checkpoint whose job failed for lack of files is submitted again "
              "once they are there.", folder=True)
    marker: str | None = _sweep_setting(None, "--watch: a checkpoint is complete when this file exists in it "
                                              "(default: when its files stopped changing for --quiet-s) and its "
                                              "backend's files are there.")
    quiet_s: float = _sweep_setting(field_default(SweepCommandSettings, "quiet_s"), "--watch: seconds without a change.")
    watch_interval: float = _sweep_setting(field_default(SweepCommandSettings, "watch_interval_s"),
                                           "--watch: seconds between looks.")
    max_polls: int | None = _sweep_setting(None, hidden=True)
    eval_files: list[str] = _sweep_setting([], "A benchmark file (repeatable).", flag="--eval-file")
    suite: str | None = _sweep_setting(None, "A suite of registered benchmarks (eval_data/suites/NAME.json).")
    data_dir: str = _sweep_setting(str(DEFAULT_DATA_DIR), "Where a suite's benchmark files are.")
    name: str | None = _sweep_setting(None, "The sweep's name [default: the checkpoints' folder name].")
    results_dir: str = _sweep_setting(field_default(RunConfig, "results_dir"),
                                      "The results directory every job shares.")
    sweep_dir: str | None = _sweep_setting(None, "The sweep's state folder [default: RESULTS_DIR/sweeps/NAME].")
    backend: str | None = _sweep_setting(None, f"Serving backend: llamacpp, vllm, sglang "
                                               f"[default: {field_default(SweepSettings, 'backend')}].", to="settings")
    n_ctx: int | None = _sweep_setting(None, "llama.cpp context size.", to="serve")
    server_parallel: int | None = _sweep_setting(None, "llama.cpp --parallel slots.", to="serve.parallel")
    tp: int | None = _sweep_setting(None, "SGLang tensor parallelism (dp is the node's GPU count).", to="serve")
    serve_args: list[str] = _sweep_setting([], "An extra argument for the server (repeatable).", flag="--serve-arg",
                                           to="serve.extra_args")
    serve_timeout: float | None = _sweep_setting(None, "Seconds to wait for a server to answer.",
                                                 to="serve.timeout_s")
    prompt: str | None = _sweep_setting(None, f"Prompt template [default: {DEFAULT_PROMPT}, or the suite's].",
                                        to="run")
    max_new_tokens: int | None = _sweep_setting(None, to="generation")
    temperature: float | None = _sweep_setting(None, to="generation")
    limit: int | None = _sweep_setting(None, "First N items of each file.", to="run")
    concurrency: int | None = _sweep_setting(None, "Requests in flight per job.", to="run")
    rps: float | None = _sweep_setting(None, "At most this many requests per second per job.", to="run")
    step_from: str | None = _sweep_setting(None, "Read the training step from the path with REGEX.", metavar="REGEX",
                                           to="settings")
    executor: str = _sweep_setting(field_default(SweepCommandSettings, "executor"), choices=EXECUTORS, to="launch")
    local_jobs: int | None = _sweep_setting(
        None, f"--executor local: jobs at once [default: {field_default(SweepCommandSettings, 'local_jobs')}].",
        to="launch.parallel")
    partition: str | None = _sweep_setting(None, to="slurm")
    account: str | None = _sweep_setting(None, to="slurm")
    qos: str | None = _sweep_setting(None, to="slurm")
    time_min: int | None = _sweep_setting(
        None, f"Minutes per job [default: {field_default(SweepCommandSettings, 'slurm_time_min')}].", flag="--time",
        to="slurm")
    gpus_per_node: int | None = _sweep_setting(None, "GPUs per job (node).", flag="--gpus", to="slurm")
    cpus_per_task: int | None = _sweep_setting(None, "CPUs per job.", flag="--cpus", to="slurm")
    mem: str | None = _sweep_setting(None, "Memory per job, e.g. 64G.", to="slurm")
    constraint: str | None = _sweep_setting(None, to="slurm")
    array_parallelism: int | None = _sweep_setting(None, "At most this many jobs of the array at once.", to="slurm")
    sbatch: list[str] = _sweep_setting([], "An extra #SBATCH directive (repeatable), e.g. --sbatch exclusive "
                                           "--sbatch gres=gpu:8.", metavar="KEY=VALUE", to="slurm")
    setup: list[str] = _sweep_setting([], "A shell line run before each job (module load ...).", to="slurm")
    wait: bool = _sweep_setting(False, "--executor slurm: wait until every job ended, then show where each stands.",
                                to="launch")


# ---------------------------------------------------------------- rating studies (evalkit study ...)

@dataclass(frozen=True)
class StudySettings:
    """A human rating study's settings (``evalkit study create / serve / report``)."""

    studies_dir: str = DEFAULT_STUDIES_DIR
    design: str = "independent"  # independent, pairwise or both
    raters_per_answer: int = 3  # K distinct raters per answer (Med-PaLM 2: 3; 4 on adversarial sets)
    physicians: int = 3
    lay: int = 0
    items: int = 20
    seed: int = DEFAULT_SEED
    max_answer_chars: int = 20_000  # a longer answer would not display as one page; refused at creation
    n_resamples: int = 2000  # bootstrap resamples / permutations of the study report
    reference: bool = False  # the items' reference answers as one more system ("reference")
    report_format: str = "text"  # text, markdown, json or html
    export_format: str = "csv"  # csv or jsonl


@dataclass(frozen=True)
class StudyServeSettings(WebSettings):
    """``evalkit study serve``: where the rating pages listen (raters' and organiser's tokens are the study's)."""

    port: int = 8801
    # Each save also waits for the disk (SQLite synchronous=FULL): survives a power cut, not only a killed
    # server, at about 8 ms a save here. Off: a save is in the file's WAL before the reply, fsynced later.
    fsync: bool = False


TRACKERS = ("mlflow", "wandb")  # where `--log-to` / `evalkit export` send figures (optional extras)


@dataclass(frozen=True)
class TrackerSettings:
    """Where and how evaluation figures go to a tracker (``evalkit export``, ``--log-to``): the MLflow
    experiment and W&B project when the target names none, the metric names' prefix
    (PREFIX/DATASET/SCORE), the W&B step metric eval figures are plotted against (Hugging Face
    Trainer's, so curves sit beside its training curves), and the step of a run that has no training step."""

    mlflow_experiment: str = "evalkit"
    wandb_project: str = "evalkit"
    prefix: str = "eval"
    wandb_step_metric: str = "train/global_step"
    step: int = 0
