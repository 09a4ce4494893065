"""The config types: the one home of every default a run, a task or the CLI uses.

``RunConfig`` (a run), ``GenerationParams`` (what every request carries), the size
limits on what a run reads, the strategy and ordering names, the data folder. The
CLI derives its flags' defaults and help from these fields (``field_default``), so
``--help`` shows the values the library uses and nothing restates them.

This module imports nothing of evalkit at load time (every other module may import
it); the checks that need other modules import them when called.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evalkit.serving.state import ServerHandle

# Where registered benchmarks are (as ``evalkit data fetch`` puts them), relative to the working directory.
DEFAULT_DATA_DIR = Path("eval_data")

EXEMPLARS_FILE = "fewshot_exemplars.jsonl"  # the bundled few-shot exemplars, in the bundled eval_data/

# Limits on what a run reads (checked by evalkit.limits).
MB = 1 << 20
DEFAULT_MAX_RESPONSE_MB = 16.0  # a completion body larger than this is an error on its sample
DEFAULT_MAX_RECORD_MB = 16.0  # an input line longer than this is an error at its file and line

# Strategies (evalkit.sampling): how several generations of an item make one answer.
SINGLE = "single"
SELF_CONSISTENCY = "self-consistency"
ENSEMBLE_REFINEMENT = "ensemble-refinement"
STRATEGIES = (SELF_CONSISTENCY, ENSEMBLE_REFINEMENT)  # the multi-sample strategies a user picks

# Where --order-from puts items the earlier run has no length for (evalkit.order).
UNKNOWN_FIRST = "first"
UNKNOWN_MEDIAN = "median"
UNKNOWN_RULES = (UNKNOWN_FIRST, UNKNOWN_MEDIAN)

DEFAULT_RESAMPLES = 10_000  # bootstrap resamples of a report's, leaderboard's and gate's intervals
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
    see ``RunConfig.resolved``); a request never carries None.

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
# declares its own (the embedded llama.cpp server has few slots): see backend_concurrency.
DEFAULT_CONCURRENCY = 512
MULTI_SAMPLE_TEMPERATURE = 0.7
ER_SAMPLES = 11
DEFAULT_PROMPT = "strict"  # the prompt template of a run that names none
ER_PROMPT = "er_sample"  # ... and of an ensemble-refinement run


def backend_concurrency(backend: str | None) -> int:
    """Requests in flight by default against BACKEND (a registry name or ``module:attr``):
    its declared default concurrency, else DEFAULT_CONCURRENCY."""
    from evalkit.backends import default_concurrency

    return default_concurrency(backend) or DEFAULT_CONCURRENCY


@dataclass
class RunConfig:
    """Everything that defines one evaluation run; every default lives here.

    ``endpoint`` and ``endpoints`` together list the servers to use (duplicates
    dropped); all must serve the same model. ``samples`` > 1 selects a
    multi-sample ``strategy`` (see evalkit.sampling); ``refine_samples`` and
    ``refine_prompt`` apply to ensemble refinement. ``n_per_request`` asks for
    several generations in one request (``n``) and falls back to one request per
    generation where the server ignores or refuses ``n``.

    Fields left None are filled by ``resolved()``: the prompt (``strict``,
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
    suite: dict[str, Any] | None = None  # the suite this run evaluates (evalkit.suites), for the manifest
    checkpoint: dict[str, Any] | None = None  # a sweep's checkpoint identity (path, step, hash), for the manifest
    order_from: str | None = None  # an earlier run, or "auto": dispatch longest-predicted first (evalkit.order)
    order_unknown: str = UNKNOWN_FIRST  # where items the earlier run does not predict go

    def all_endpoints(self) -> list[str]:
        """Every endpoint of the run, first given first, without duplicates."""
        urls = ([self.endpoint] if self.endpoint else []) + list(self.endpoints)
        return list(dict.fromkeys(u.rstrip("/") for u in urls))

    @property
    def multi_sample(self) -> bool:
        return (self.samples or 1) > 1 or self.strategy == ENSEMBLE_REFINEMENT

    @classmethod
    def on_server(cls, server: "ServerHandle | str | None" = None, **settings: Any) -> "RunConfig":
        """A config that talks to a server ``evalkit serve`` (or ``api.serve``) started.

        SERVER is its handle, its recorded name, or None for the only server recorded. The
        endpoint, the backend (for its defaults) and, unless SETTINGS name one, the model come
        from it; the API key is never recorded, so it comes from SETTINGS or $EVALKIT_API_KEY.
        """
        from evalkit.serving.request import API_KEY_ENV
        from evalkit.serving.state import ServerHandle, resolve_endpoint

        handle = server if isinstance(server, ServerHandle) else resolve_endpoint(server)
        settings.setdefault("model", handle.model)
        settings.setdefault("api_key", os.environ.get(API_KEY_ENV))
        return cls(endpoint=handle.base_url, backend=handle.backend, **settings)

    def resolved(self) -> "RunConfig":
        """A copy with every default that depends on other settings filled in."""
        er = self.strategy == ENSEMBLE_REFINEMENT
        # "is None", not "or": an out-of-range 0 must reach validate(), not become the default.
        samples = self.samples if self.samples is not None else (ER_SAMPLES if er else 1)
        params = self.params
        if params.temperature is None:
            params = replace(params, temperature=MULTI_SAMPLE_TEMPERATURE if samples > 1 or er else 0.0)
        concurrency = self.concurrency if self.concurrency is not None else backend_concurrency(self.backend)
        return replace(self, samples=samples, params=params, concurrency=concurrency,
                       prompt=self.prompt or (ER_PROMPT if er else DEFAULT_PROMPT))

    def validate(self) -> None:
        """Raise ValueError on settings that cannot make a sensible run (call on ``resolved()``)."""
        if not self.all_endpoints():
            raise ValueError("no endpoint given")
        if self.strategy not in STRATEGIES and ":" not in self.strategy and not _registered_strategy(self.strategy):
            raise ValueError(f"unknown strategy {self.strategy!r}: choose one of {', '.join(STRATEGIES)}, "
                             "or give one as module:attr")
        from evalkit.limits import check_run_numbers
        from evalkit.runs import check_path_component

        check_run_numbers(self)
        if self.multi_sample and (self.params.temperature or 0) <= 0:
            raise ValueError(f"{self.strategy} with {self.samples} samples needs a temperature > 0 "
                             "(greedy samples would all be the same)")
        for name, what in ((self.task_folder, "task_folder (--task-folder)"), (self.run_name, "run_name (--run-name)")):
            if name is not None:
                check_path_component(name, what)
        if self.order_unknown not in UNKNOWN_RULES:
            raise ValueError(f"order_unknown must be one of {', '.join(UNKNOWN_RULES)}")

    def secrets(self) -> list[str]:
        """Every key this config carries (the model's, scorer options such as judge.api_key): never written."""
        from evalkit.scoring.base import secret_option_values

        return [s for s in (self.api_key, *secret_option_values(self.scorer_options)) if s]

    def strategy_name(self) -> str:
        """The strategy as recorded: ``single`` for one sample per item."""
        return self.strategy if self.multi_sample else SINGLE


def _registered_strategy(name: str) -> bool:
    """True when NAME is a strategy a user registered (``sampling.register_strategy``); the built-in
    ``single`` is not picked by name (it is what one sample per item means)."""
    from evalkit.sampling import STRATEGY_REGISTRY

    return name != SINGLE and name in STRATEGY_REGISTRY


# The config types whose home is beside what they configure, named here too so that every config
# type can be imported from this module: serving's (evalkit.serving.request) and sweeps'
# (evalkit.sweep). Looked up when first asked for, so importing this module loads nothing else.
_ELSEWHERE = {"ServeRequest": "evalkit.serving.request", "API_KEY_ENV": "evalkit.serving.request",
              "ENGINE_PYTHON_ENV": "evalkit.serving.request", "SweepSettings": "evalkit.sweep"}


def __getattr__(name: str) -> Any:
    module = _ELSEWHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'evalkit.config' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
