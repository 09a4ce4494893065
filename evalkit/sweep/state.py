"""Sweeps: every checkpoint of a training run evaluated with the same settings (planning only).

A sweep is a folder of its own (``--sweep-dir``) holding its state file, ``sweep.json``: the
settings every job shares and, per checkpoint, its path, training step and the jobs submitted
for it (executor, job id, log file). Each job writes ``jobs/<key>.json`` as it starts and ends.
The results go to one results directory shared by the jobs, each checkpoint's run at a path
fixed by the sweep (``<results>/<sweep>--<key>/sweep-<settings id>``), so whether a checkpoint
is done is read from its run's manifest, the source of truth; a partial run resumes through
the runner's own resume.

This module is pure but for reading files: the job body is ``evalkit.sweep.jobs``, the
executors (Slurm through submitit, local) too; the trend and the gates are in ``sweep.report``.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from evalkit.config import SWEEP_NAME, SweepCommandSettings, SweepSettings, field_default
from evalkit.run.rundir import MANIFEST, read_manifest
from evalkit.core.store import write_json
from evalkit.core.errors import InputError

STATE_FILE = "sweep.json"
JOBS_DIR = "jobs"
# The folder (or file) names training frameworks give their checkpoints, and where the step is.
STEP_PATTERNS: tuple[tuple[str, str], ...] = (
    ("hf-trainer", r"^checkpoint-(\d+)$"),        # Hugging Face Trainer: checkpoint-1200
    ("deepspeed", r"^global_step(\d+)$"),          # DeepSpeed: global_step1200
    ("megatron", r"^iter_(\d+)$"),                 # Megatron-LM: iter_0001200
    ("nemo", r"(?:^|[-_])step=(\d+)(?:[-_.]|$)"),  # NeMo / Lightning: model--step=1200-last.ckpt, step=1200
)
# Slurm states (squeue's %T) in which a job still holds its checkpoint.
LIVE_STATES = frozenset({"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "RESIZING", "SUSPENDED"})


class SweepError(InputError):
    """A sweep cannot be planned: a checkpoint path, a pattern or the state file is wrong."""


def check_settings(settings: SweepSettings) -> SweepSettings:
    """SETTINGS when a sweep can use them; SweepError otherwise (a name that is not one plain word)."""
    if not re.fullmatch(SWEEP_NAME, settings.name):
        raise SweepError(f"sweep name {settings.name!r}: use letters, digits, '.', '_' and '-'")
    return settings


def training_step(path: str | Path, step_from: str | None = None) -> int | None:
    """The training step in a checkpoint's path, or None.

    With STEP_FROM, a regular expression with one group (or a group named ``step``) searched
    in the whole path. Otherwise the path's names are tried from the last one up against the
    folder names of HF Trainer, DeepSpeed, Megatron and NeMo checkpoints (STEP_PATTERNS).
    """
    text = str(path)
    if step_from:
        try:
            m = re.search(step_from, text)
        except re.error as exc:
            raise SweepError(f"--step-from {step_from!r} is not a regular expression: {exc}") from None
        if m is None:
            return None
        value = m.groupdict().get("step") or (m.group(1) if m.groups() else None)
        if value is None or not value.isdigit():
            raise SweepError(f"--step-from {step_from!r} must capture the step's digits in a group")
        return int(value)
    for name in reversed(Path(text).parts):
        stem = name[:-len(Path(name).suffix)] if re.fullmatch(r".*\.(ckpt|nemo|pt|bin|gguf)", name) else name
        for _, pattern in STEP_PATTERNS:
            m = re.search(pattern, stem) or re.search(pattern, name)
            if m:
                return int(m.group(1))
    return None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", text).strip("._") or "checkpoint"


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint of the sweep: its absolute path, training step and a key unique in the sweep."""

    path: str
    step: int | None
    key: str

    @classmethod
    def at(cls, path: str | Path, step_from: str | None = None) -> "Checkpoint":
        """The checkpoint at PATH, known by its real path: one reached through a symlinked folder (or a
        link to it) is the same checkpoint, with the same key. Its step is read from the name given,
        else from the real one."""
        given = os.path.abspath(path)
        p = os.path.realpath(given)
        step = training_step(given, step_from)
        if step is None and p != given:
            step = training_step(p, step_from)
        digest = hashlib.sha1(p.encode()).hexdigest()[:6]
        return cls(path=p, step=step, key=f"{_slug(Path(p).name)}-{digest}")

    @property
    def label(self) -> str:
        """How tables name it: the step where known, else the folder name."""
        return f"step {self.step}" if self.step is not None else Path(self.path).name

    @property
    def step_text(self) -> str:
        """The step as a table cell: its number, or ``-`` where the path gives none."""
        return "-" if self.step is None else str(self.step)

    def sort_key(self) -> tuple:
        return (self.step is None, self.step or 0, self.path)


def find_checkpoints(patterns: Sequence[str], *, step_from: str | None = None) -> list[Checkpoint]:
    """The checkpoints PATTERNS name (paths or globs), each once, in training-step order.

    A pattern without glob characters must exist; a glob may match nothing only when another
    pattern matches something (a sweep of nothing is an error naming the patterns).
    """
    found: dict[str, Checkpoint] = {}
    for pattern in patterns:
        if glob.has_magic(pattern):
            matches = sorted(glob.glob(os.path.expanduser(pattern)))
        else:
            if not os.path.exists(os.path.expanduser(pattern)):
                raise SweepError(f"checkpoint {pattern}: no such file or folder")
            matches = [os.path.expanduser(pattern)]
        for m in matches:
            ck = Checkpoint.at(m, step_from)
            found.setdefault(ck.path, ck)
    if not found:
        raise SweepError(f"no checkpoint matches {' '.join(patterns)}")
    return sorted(found.values(), key=Checkpoint.sort_key)


def model_file(checkpoint_path: str, backend: str) -> str:
    """What to serve for a checkpoint: llama.cpp needs its GGUF file (a folder must hold exactly
    one); the other backends take the folder (or hub id) as it is."""
    p = Path(checkpoint_path)
    if backend != "llamacpp" or p.is_file():
        return str(p)
    ggufs = sorted(p.glob("*.gguf"))
    if len(ggufs) != 1:
        raise SweepError(f"checkpoint {p}: the llamacpp backend needs one .gguf file in it, found {len(ggufs)}")
    return str(ggufs[0])


@dataclass(frozen=True)
class CheckpointJob:
    """One job of the sweep: serve CHECKPOINT, evaluate the sweep's tasks on it, stop the server."""

    checkpoint: Checkpoint
    settings: SweepSettings

    @property
    def server_name(self) -> str:
        """Its own server name (so jobs sharing a node, or a state folder, never collide)."""
        return f"sweep-{self.settings.name}-{self.checkpoint.key}"

    @property
    def served_model_name(self) -> str:
        return f"{self.settings.name}/{Path(self.checkpoint.path).name}"

    @property
    def task_folder(self) -> str:
        return f"{self.settings.name}--{self.checkpoint.key}"

    @property
    def run_name(self) -> str:
        return f"sweep-{self.settings.settings_id()}"

    @property
    def run_dir(self) -> Path:
        return Path(self.settings.results_dir) / self.task_folder / self.run_name

    @property
    def status_file(self) -> Path:
        return Path(self.settings.sweep_dir) / JOBS_DIR / f"{self.checkpoint.key}.json"

    def identity(self, content_hash: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The checkpoint's identity for the run's manifest: path, content hash, training step."""
        return {"path": self.checkpoint.path, "step": self.checkpoint.step, "key": self.checkpoint.key,
                "sweep": self.settings.name, "content_hash": dict(content_hash or {})}


def sweep_tasks(tasks: Sequence[Any], data_dir: str | Path, overrides: Mapping[str, Any] | None = None
                ) -> list[dict[str, Any]]:
    """TASKS (``tasks.Task``s: a suite's, with its scorers) as ``SweepSettings.tasks`` keeps them, each
    task's data as its file's absolute path (jobs may start elsewhere). OVERRIDES are the sweep's own
    RunConfig and GenerationParams fields. SweepError when they would need more than one run: a
    checkpoint's job makes one run (a suite row naming scorers of its own becomes a run of its own)."""
    from evalkit.config import RunConfig
    from evalkit.run.plan import plan_runs
    from evalkit.run.tasks import TaskError

    try:
        runs = plan_runs(tasks, RunConfig(eval_files=[]), overrides, data_dir)  # each task resolved once
    except TaskError as exc:
        raise SweepError(str(exc)) from None
    if len(runs) > 1:
        apart = ", ".join(t.name for run in runs[1:] for t in run.tasks)
        raise SweepError(f"a sweep makes one run per checkpoint, and these tasks need {len(runs)} (their scorers or "
                         f"settings differ): {apart} apart from {runs[0].tasks[0].name}; sweep them separately")
    return [t.task.with_data(os.path.abspath(t.path), name=t.name).to_dict() for run in runs for t in run.tasks]


# ---------------------------------------------------------------- the state file


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class SweepState:
    """``sweep.json``: the settings and, per checkpoint key, its path, step and submitted jobs."""

    settings: SweepSettings
    checkpoints: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return Path(self.settings.sweep_dir) / STATE_FILE

    def add(self, checkpoints: Iterable[Checkpoint]) -> list[Checkpoint]:
        """Record CHECKPOINTS (those already recorded keep their jobs); returns the new ones."""
        new = []
        # A checkpoint recorded under a path through a symlink (by an earlier evalkit) is the same one.
        recorded = {os.path.realpath(d["path"]) for d in self.checkpoints.values()}
        for ck in checkpoints:
            if ck.key not in self.checkpoints and ck.path not in recorded:
                self.checkpoints[ck.key] = {"path": ck.path, "step": ck.step, "jobs": []}
                recorded.add(ck.path)
                new.append(ck)
        return new

    def checkpoint_list(self) -> list[Checkpoint]:
        cks = [Checkpoint(path=d["path"], step=d.get("step"), key=k) for k, d in self.checkpoints.items()]
        return sorted(cks, key=Checkpoint.sort_key)

    def jobs(self) -> list[CheckpointJob]:
        return [CheckpointJob(ck, self.settings) for ck in self.checkpoint_list()]

    def record_submission(self, key: str, *, executor: str, job_id: str, log: str | None) -> None:
        self.checkpoints[key]["jobs"].append({"executor": executor, "job_id": job_id, "log": log,
                                              "submitted_at": now()})

    def last_submission(self, key: str) -> dict[str, Any] | None:
        jobs = self.checkpoints.get(key, {}).get("jobs") or []
        return jobs[-1] if jobs else None

    def save(self) -> Path:
        Path(self.settings.sweep_dir).mkdir(parents=True, exist_ok=True)
        write_json(self.path, {"format": 1, "settings": self.settings.to_dict(), "checkpoints": self.checkpoints})
        return self.path

    @classmethod
    def load(cls, sweep_dir: str | Path) -> "SweepState":
        path = Path(sweep_dir) / STATE_FILE
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SweepError(f"{path}: no sweep here (start one with `evalkit sweep run`)") from None
        except (OSError, ValueError) as exc:
            raise SweepError(f"{path}: unreadable sweep state ({exc})") from None
        if not isinstance(doc, dict) or "settings" not in doc:
            raise SweepError(f"{path}: not a sweep state file (no settings)")
        problem = state_problem(doc)
        if problem:
            raise SweepError(f"{path}: not a sweep state file of this evalkit: {problem}")
        try:
            settings = check_settings(SweepSettings.from_dict(doc["settings"]))
        except (TypeError, ValueError) as exc:
            raise SweepError(f"{path}: settings: {exc}") from None
        checkpoints = doc.get("checkpoints") or {}
        for entry in checkpoints.values():
            entry.setdefault("jobs", [])
        return cls(settings=settings, checkpoints=checkpoints)

    @classmethod
    def open(cls, settings: SweepSettings) -> "SweepState":
        """The sweep in SETTINGS' folder, created if new. Settings that change results refuse
        (another --sweep-dir, or the same flags as before); other changes are taken."""
        check_settings(settings)
        try:
            old = cls.load(settings.sweep_dir)
        except SweepError:
            if (Path(settings.sweep_dir) / STATE_FILE).exists():
                raise
            return cls(settings=settings)
        if old.settings.settings_id() != settings.settings_id() or old.settings.name != settings.name:
            raise SweepError(f"{old.path} holds sweep {old.settings.name!r} with other settings (tasks, backend, "
                             "generation or serving); use another --sweep-dir or the same flags as before")
        return replace(old, settings=settings)


_SETTING_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,), "sweep_dir": (str,), "results_dir": (str,), "eval_files": (list,), "backend": (str,),
    "suite": (dict, type(None)), "serve": (dict,), "generation": (dict,), "run": (dict,),
    "step_from": (str, type(None)), "tasks": (list,)}
_REQUIRED_SETTINGS = ("name", "sweep_dir", "results_dir", "eval_files")


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", type(None): "null"}.get(type(value),
                                                                                       type(value).__name__)


def state_problem(doc: Mapping[str, Any]) -> str | None:
    """What is wrong with the shape of a ``sweep.json`` document (None when nothing): the first
    field of the wrong type or missing, named by its place in the file."""
    settings = doc.get("settings")
    if not isinstance(settings, dict):
        return f"settings is {_kind(settings)}, not an object"
    for key in _REQUIRED_SETTINGS:
        if key not in settings:
            return f"settings.{key} is missing"
    for key, types in _SETTING_TYPES.items():
        if key in settings and not isinstance(settings[key], types):
            return f"settings.{key} is {_kind(settings[key])}"
    if not all(isinstance(f, str) for f in settings["eval_files"]):
        return "settings.eval_files holds something other than file names"
    checkpoints = doc.get("checkpoints") or {}
    if not isinstance(checkpoints, dict):
        return f"checkpoints is {_kind(checkpoints)}, not an object"
    for key, entry in checkpoints.items():
        where = f"checkpoints[{key!r}]"
        if not isinstance(entry, dict):
            return f"{where} is {_kind(entry)}, not an object"
        if not isinstance(entry.get("path"), str):
            return f"{where}.path is {'missing' if 'path' not in entry else _kind(entry['path'])}"
        if not isinstance(entry.get("step"), (int, type(None))) or isinstance(entry.get("step"), bool):
            return f"{where}.step is {_kind(entry['step'])}, not a number"
        jobs = entry.get("jobs", [])
        if not isinstance(jobs, list) or not all(isinstance(j, dict) for j in jobs):
            return f"{where}.jobs is not a list of objects"
    return None


# ---------------------------------------------------------------- job status


def read_job_status(job: CheckpointJob) -> dict[str, Any]:
    """What the job body last wrote of itself ({} before it started)."""
    try:
        doc = json.loads(job.status_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def run_status(run_dir: Path) -> tuple[str | None, dict[str, Any]]:
    """A run directory's manifest status ('complete', 'interrupted', ...) and manifest; None when absent."""
    path = run_dir / MANIFEST
    if not path.exists():
        return None, {}
    try:
        manifest = read_manifest(path)
    except (OSError, ValueError):
        return "unreadable", {}
    return manifest.get("status"), manifest


@dataclass
class JobView:
    """A checkpoint's place in the sweep, as ``sweep status`` shows it. ``incomplete``: its last job
    failed because the checkpoint's files were not all there (it is retried once they are)."""

    job: CheckpointJob
    state: str                    # new, pending, running, done, failed
    detail: str = ""
    submission: dict[str, Any] | None = None
    run_status: str | None = None
    incomplete: bool = False

    @property
    def needs_submitting(self) -> bool:
        return self.state in ("new", "failed")

    def to_dict(self) -> dict[str, Any]:
        ck = self.job.checkpoint
        return {"key": ck.key, "path": ck.path, "step": ck.step, "state": self.state, "detail": self.detail,
                "run_dir": str(self.job.run_dir), "run_status": self.run_status, "incomplete": self.incomplete,
                "job_id": (self.submission or {}).get("job_id"), "log": (self.submission or {}).get("log")}


def _failure_reasons(sub: Mapping[str, Any], queue_state: str | None, status: Mapping[str, Any],
                     run_state: str | None, dead: bool) -> list[str]:
    same_job = str(status.get("job_id")) == str(sub.get("job_id"))
    reasons = []
    if queue_state:
        reasons.append(f"slurm: {queue_state.lower()}")
    if same_job and status.get("state") in ("failed", "cancelled"):
        reasons.append(f"{status['state']}: {status.get('error') or ''}".strip(": "))
    elif same_job and status.get("state") == "running":
        reasons.append(f"the job's process ({status.get('pid')} on {status.get('host')}) is gone: killed"
                       if dead else "the job ended without saying how (killed, or its node died)")
    elif not same_job:
        reasons.append("the job never started, or ended before it began")
    if run_state and run_state != "complete":
        reasons.append(f"run {run_state}: resumes when submitted again")
    return reasons


def classify(job: CheckpointJob, submission: Mapping[str, Any] | None, queue_state: str | None,
             status: Mapping[str, Any], run_state: str | None, *, local_alive: bool = False,
             body_alive: bool | None = None) -> JobView:
    """Where one checkpoint stands (pure).

    SUBMISSION is its last recorded job; QUEUE_STATE that job's Slurm state where the controller
    still knows it; STATUS what the job body wrote; RUN_STATE its run's manifest status;
    LOCAL_ALIVE whether a local job's process still runs; BODY_ALIVE whether the process STATUS
    names still runs (None where it cannot be told: another host). A complete run is done whatever
    else says; a job the queue still holds is pending or running, unless its process is known dead
    (killed: Slurm may show it completing for a while); anything else that was submitted and is not
    complete failed (cancelled, killed with its node, or left a partial run).
    """
    sub = dict(submission) if submission else None
    if run_state == "complete":
        return JobView(job, "done", "", sub, run_state)
    if sub is None:
        detail = f"partial run ({run_state}) from an earlier sweep" if run_state else ""
        return JobView(job, "new", detail, sub, run_state)
    same_job = str(status.get("job_id")) == str(sub.get("job_id"))
    dead = same_job and status.get("state") == "running" and body_alive is False
    if queue_state in LIVE_STATES and not dead:
        return JobView(job, "pending" if queue_state in ("PENDING", "CONFIGURING", "REQUEUED") else "running",
                       queue_state.lower(), sub, run_state)
    if local_alive and not dead:
        return JobView(job, "running", "", sub, run_state)
    reasons = _failure_reasons(sub, queue_state, status, run_state, dead)
    incomplete = same_job and status.get("state") == "failed" and bool(status.get("missing_files"))
    return JobView(job, "failed", "; ".join(r for r in reasons if r), sub, run_state, incomplete)


def job_process_alive(status: Mapping[str, Any]) -> bool | None:
    """Whether the process a job status names still runs: None where that cannot be told here (no
    pid recorded, or another host's)."""
    import socket

    from evalkit.core.liveness import proc_start_time, process_alive

    pid = status.get("pid")
    if not isinstance(pid, int) or status.get("host") != socket.gethostname():
        return None
    if not process_alive(pid):
        return False
    return status.get("pid_start") in (None, proc_start_time(pid))


def views(state: SweepState, queue: Mapping[str, str]) -> list[JobView]:
    """Every checkpoint of STATE classified; QUEUE maps Slurm job ids to states (``squeue``)."""
    out = []
    for job in state.jobs():
        sub = state.last_submission(job.checkpoint.key)
        status = read_job_status(job)
        run_state, _ = run_status(job.run_dir)
        same = sub is not None and str(status.get("job_id")) == str(sub.get("job_id"))
        body = job_process_alive(status) if same and status.get("state") == "running" else None
        alive = same and sub.get("executor") == "local" and body is True
        out.append(classify(job, sub, queue.get(str((sub or {}).get("job_id"))), status, run_state,
                            local_alive=alive, body_alive=body))
    return out


def _fingerprint(path: Path) -> tuple[int, int, float]:
    """(files, bytes, newest mtime) of a checkpoint file or folder: what changes while it is written."""
    if path.is_file():
        st = path.stat()
        return 1, st.st_size, st.st_mtime
    files = bytes_ = 0
    newest = path.stat().st_mtime
    for p in path.rglob("*"):
        try:
            st = p.stat()
        except OSError:  # removed while we looked: still being written
            continue
        files += 1
        bytes_ += st.st_size if p.is_file() else 0
        newest = max(newest, st.st_mtime)
    return files, bytes_, newest


# The weight files vLLM and SGLang load from a checkpoint folder (a trainer's optimizer.pt,
# scheduler.pt, rng_state.pth and training_args.bin are not weights).
_HF_WEIGHTS = ("*.safetensors", "pytorch_model*.bin", "consolidated*.pth", "*.gguf")
_HF_CONFIGS = ("config.json", "params.json")


HF_BACKENDS = ("vllm", "sglang")  # engines that load a Hugging Face checkpoint folder


def declared_missing_files(path: Path, backend: str) -> str | None:
    """What another backend (one from outside evalkit) says is missing at PATH: its
    ``missing_checkpoint_files(path)`` where it defines one; else nothing is required."""
    from evalkit.serving.backends import get_backend
    from evalkit.serving.errors import ServerError

    try:
        check = getattr(get_backend(backend), "missing_checkpoint_files", None)
    except ServerError:
        return None  # an unknown backend is refused where the job starts it, with its own message
    return check(path) if callable(check) else None


def missing_files(path: str | Path, backend: str) -> str | None:
    """Why BACKEND cannot load the checkpoint at PATH yet for lack of files, or None when the files it
    needs are there: llama.cpp a non-empty GGUF file (the checkpoint, or the one in its folder); vLLM and
    SGLang a config and weights, every shard a weight index names; another backend what it declares
    (``declared_missing_files``). Whether they stopped changing is
    ``checkpoint_readiness``' business."""
    p = Path(path)
    if p.is_file():
        return "the file is empty" if p.stat().st_size == 0 else None
    if not p.is_dir():
        return "no such file or folder"
    if backend == "llamacpp":
        ggufs = sorted(p.glob("*.gguf"))
        if not ggufs:
            return "no .gguf file in it yet"
        empty = [g.name for g in ggufs if g.stat().st_size == 0]
        if empty:
            return f"{empty[0]} is empty"
        try:
            model_file(str(p), backend)  # what the job will serve: it refuses a folder of several .gguf files
        except SweepError as exc:
            return str(exc).removeprefix(f"checkpoint {p}: ")
        return None
    if backend not in HF_BACKENDS:
        return declared_missing_files(p, backend)
    if not any((p / c).is_file() for c in _HF_CONFIGS):
        return "no config.json in it yet"
    weights = {w.name for pattern in _HF_WEIGHTS for w in p.glob(pattern)}
    if not weights:
        return "no weight file (.safetensors, pytorch_model*.bin) in it yet"
    for index in sorted(p.glob("*.index.json")):
        try:
            shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return f"{index.name} is not readable yet"
        absent = sorted(s for s in shards if not (p / s).is_file())
        if absent:
            return f"{len(absent)} shard(s) {index.name} names are not there yet ({absent[0]}, ...)"
    return None


QUIET_REASON = "its files changed"  # why a checkpoint still being written waits (see checkpoint_readiness)


def checkpoint_readiness(folder: str | Path, seen: dict[str, tuple], *, backend: str, marker: str | None = None,
                         quiet_s: float = field_default(SweepCommandSettings, "quiet_s"),
                         step_from: str | None = None, clock: float | None = None
                         ) -> list[tuple[Checkpoint, str | None]]:
    """Each checkpoint in FOLDER (entries whose name gives a training step) and why it is not complete
    yet (None when it is), in step order.

    Complete means BACKEND can load it (``missing_files``) and, with MARKER, the file MARKER exists
    inside it (e.g. a trainer's ``done``); without, its files did not change since the last call (SEEN
    keeps what each looked like, updated here) and nothing in it is newer than QUIET_S seconds.
    """
    import time as _time

    root = Path(folder)
    if not root.is_dir():
        raise SweepError(f"--watch {folder}: no such folder")
    t = _time.time() if clock is None else clock
    out: list[tuple[Checkpoint, str | None]] = []
    for entry in sorted(root.iterdir()):
        ck = Checkpoint.at(entry, step_from)
        if ck.step is None:
            continue
        try:
            if marker is not None:
                why = None if entry.is_dir() and (entry / marker).exists() else f"no {marker} in it yet"
            else:
                fp = _fingerprint(entry)
                why = None if seen.get(ck.path) == fp and t - fp[2] >= quiet_s else \
                    f"{QUIET_REASON} in the last {quiet_s:g} s"
                seen[ck.path] = fp
            out.append((ck, why or missing_files(entry, backend)))
        except OSError as exc:  # removed or unreadable while we looked
            out.append((ck, f"unreadable ({exc.strerror or exc})"))
    return sorted(out, key=lambda pair: pair[0].sort_key())


def ready_checkpoints(folder: str | Path, seen: dict[str, tuple], *, marker: str | None = None,
                      quiet_s: float = field_default(SweepCommandSettings, "quiet_s"), step_from: str | None = None,
                      clock: float | None = None, backend: str = field_default(SweepSettings, "backend")
                      ) -> list[Checkpoint]:
    """The checkpoints in FOLDER that are complete (``checkpoint_readiness``)."""
    return [ck for ck, why in checkpoint_readiness(folder, seen, backend=backend, marker=marker, quiet_s=quiet_s,
                                                   step_from=step_from, clock=clock) if why is None]


def log_tail(path: str | None, n: int = field_default(SweepCommandSettings, "status_lines")) -> list[str]:
    """The last N lines of a job's log ([] where there is none yet)."""
    if not path:
        return []
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 16384))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()][-n:]


__all__ = ["Checkpoint", "CheckpointJob", "JobView", "STEP_PATTERNS", "SweepError", "SweepSettings", "SweepState",
           "QUIET_REASON", "check_settings", "checkpoint_readiness", "classify", "find_checkpoints", "job_process_alive", "log_tail",
           "missing_files", "model_file", "read_job_status", "ready_checkpoints", "run_status", "state_problem",
           "training_step", "views"]
