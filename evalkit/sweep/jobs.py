"""A sweep's jobs: the job body (serve one checkpoint, evaluate, stop) and the executors.

``run_checkpoint`` is what runs on the node: it stops a server an earlier, killed try left
under its name, serves the checkpoint on a free port under a server name of its own, evaluates
the sweep's tasks into the shared results directory with the checkpoint's identity in the
manifest (resuming a partial run), and stops the server in ``finally``. It evaluates through the
callable it is handed (``api.evaluate``, which ``api.sweep_run`` / ``api.sweep_watch`` put in
``SweepLaunch.evaluate``): this layer never imports the API above it. A module-level function
pickles by name, so a job submitted to Slurm carries it.

Slurm's ``scancel`` (SIGTERM), a time limit's warning (SIGUSR2, submitit's ``--signal``) and
Ctrl-C all end the job that way: they become SIGINT, which the runner turns into a clean stop
that keeps every finished sample.

Executors: ``submit_slurm`` submits a job array through submitit's SlurmExecutor (and returns;
the jobs run on the cluster); ``run_local`` runs the jobs on this machine through submitit's
LocalExecutor, N at a time, and returns when they end. Both record each job (id, log file) in
the sweep's state as it is submitted. ``start_sweep`` / ``watch_sweep`` / ``submit_pending``
tie planning and executors together (one at a time per sweep folder).
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from evalkit.config import EXECUTORS, ServerControlSettings, SweepCommandSettings, field_default
from evalkit.sweep.state import (QUIET_REASON, Checkpoint, CheckpointJob, JobView, SweepError, SweepSettings, SweepState,
                           check_settings, checkpoint_readiness, find_checkpoints, missing_files, model_file, now,
                           read_job_status, views)
from evalkit.core.store import write_json

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR2)  # scancel; submitit's warning before the time limit

# The evaluation a job runs: ``api.evaluate``'s signature (tasks, server=, suite=, **settings) -> an
# Evaluation whose ``runs`` are RunResults.
Evaluate = Callable[..., Any]


class CheckpointIncomplete(SweepError):
    """The checkpoint lacks files its backend needs (still being written): a watch retries it once they arrive."""


# ---------------------------------------------------------------- the job body


def _job_env() -> tuple[str, str | None]:
    """This job's id and log file as submitit knows them (the pid and None outside submitit)."""
    try:
        import submitit

        env = submitit.JobEnvironment()
        return str(env.job_id), str(env.paths.stdout)
    except Exception:  # not inside a submitit job (a direct call, a test)
        return str(os.getpid()), None


def _write_status(job: CheckpointJob, **fields: Any) -> None:
    job.status_file.parent.mkdir(parents=True, exist_ok=True)
    doc = {**read_job_status(job), **fields, "updated_at": now()}
    write_json(job.status_file, doc)


class _StopSignals:
    """SIGTERM and SIGUSR2 become SIGINT for the length of a ``with``: the runner's clean stop."""

    def __init__(self) -> None:
        self.received: str | None = None
        self._saved: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.received is not None:  # already stopping: let the server's stop finish
            print(f"evalkit sweep: {name} received again: still stopping", flush=True)
            return
        self.received = name
        print(f"evalkit sweep: {name} received: stopping (finished samples are kept)", flush=True)
        signal.raise_signal(signal.SIGINT)

    def __enter__(self) -> "_StopSignals":
        # A batch job may start with SIGINT ignored; the runner's clean stop needs the default one.
        self._saved[signal.SIGINT] = signal.signal(signal.SIGINT, signal.default_int_handler)
        for sig in STOP_SIGNALS:
            self._saved[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)


def serve_request(job: CheckpointJob, port: int):
    """The ServeRequest of JOB's server: its own name, port and log folder; SGLang gets the node's GPUs as dp."""
    from evalkit.serving.backends.base import cuda_gpus_visible
    from evalkit.serving.request import ServeRequest

    s = job.settings
    settings = dict(s.serve)
    if s.backend == "sglang" and "dp" not in settings:
        settings["dp"] = max(1, cuda_gpus_visible())
    return ServeRequest(backend=s.backend, model_path=model_file(job.checkpoint.path, s.backend),
                        name=job.server_name, host="127.0.0.1", port=port,
                        served_model_name=job.served_model_name,
                        log_dir=str(Path(s.sweep_dir) / "servers" / job.checkpoint.key), **settings)


def job_tasks(job: CheckpointJob) -> list:
    """The tasks JOB evaluates: the sweep's (a suite's, with its scorers), else one per file."""
    from evalkit.run.tasks import Task

    s = job.settings
    return [Task.from_dict(doc) for doc in s.tasks] if s.tasks else [Task(data=f) for f in s.eval_files]


def run_settings(job: CheckpointJob, identity: Mapping[str, Any]) -> dict[str, Any]:
    """What the evaluation (``api.evaluate``) is given beside JOB's tasks: its fixed run directory, the
    checkpoint's identity, and the sweep's own run and generation settings (which win over a task's)."""
    s = job.settings
    return {"results_dir": s.results_dir, "task_folder": job.task_folder, "run_name": job.run_name,
            "checkpoint": dict(identity), **s.run, **s.generation}


def evaluate_checkpoint(job: CheckpointJob, handle, identity: Mapping[str, Any], evaluate: Evaluate):
    """Evaluate JOB's tasks on the server HANDLE through EVALUATE (``api.evaluate``; the suite recorded as
    the sweep read it); the one run's RunResult."""
    evaluation = evaluate(job_tasks(job), server=handle, suite=job.settings.suite, **run_settings(job, identity))
    if len(evaluation.runs) != 1:  # sweep_tasks refuses such tasks when the sweep starts
        raise SweepError(f"the sweep's tasks made {len(evaluation.runs)} runs; a checkpoint's job makes one")
    return evaluation.runs[0]


def _stop(name: str):
    """Stop the server recorded as NAME, as ``evalkit stop`` does (None where none is recorded)."""
    from evalkit.serving.launch import stop_server

    return stop_server(name, grace_s=field_default(ServerControlSettings, "stop_grace_s"))


def run_checkpoint(job: CheckpointJob, evaluate: Evaluate) -> dict[str, Any]:
    """Serve JOB's checkpoint, evaluate the sweep's tasks on it with EVALUATE (``api.evaluate``), and stop
    the server (always).

    Returns the run's directory and whether it is complete; raises what stopped it (the
    job's status file says failed or cancelled, with the error).
    """
    from evalkit.core.liveness import proc_start_time
    from evalkit.serving.launch import tied_to_this_process
    from evalkit.serving.plan import serve
    from evalkit.serving.probe import free_port
    from evalkit.serving.state import load_state

    job_id, log = _job_env()
    _write_status(job, state="running", job_id=job_id, log=log, host=socket.gethostname(), pid=os.getpid(),
                  pid_start=proc_start_time(os.getpid()), started_at=now(), error=None, finished_at=None,
                  missing_files=None)
    print(f"evalkit sweep: {job.checkpoint.path} ({job.checkpoint.label}) as {job.server_name}", flush=True)
    with _StopSignals() as stops:
        try:
            if load_state(job.server_name) is not None:  # an earlier try died with its server running
                left = _stop(job.server_name)
                print(f"evalkit sweep: stopped the server an earlier try left: {left}", flush=True)
            lacking = missing_files(job.checkpoint.path, job.settings.backend)
            if lacking:
                raise CheckpointIncomplete(f"checkpoint {job.checkpoint.path}: {lacking} (still being written?); "
                                           "`sweep run --watch` submits it again once it is complete")
            try:
                with tied_to_this_process():  # the server dies with this job, even one killed with SIGKILL
                    handle = serve(serve_request(job, free_port("127.0.0.1")))
                print(f"evalkit sweep: serving at {handle.base_url}", flush=True)
                result = evaluate_checkpoint(job, handle, job.identity(handle.model_hash), evaluate)
            finally:
                _stop(job.server_name)  # a no-op where nothing is recorded under the name
        except BaseException as exc:
            cancelled = stops.received is not None or isinstance(exc, KeyboardInterrupt)
            why = f"{stops.received} (scancel or time limit)" if stops.received else f"{type(exc).__name__}: {exc}"
            _write_status(job, state="cancelled" if cancelled else "failed", error=why, finished_at=now(),
                          missing_files=str(exc) if isinstance(exc, CheckpointIncomplete) else None)
            if not cancelled and not isinstance(exc, CheckpointIncomplete):
                traceback.print_exc()
            raise
    _write_status(job, state="done" if result.complete else "failed", finished_at=now(), run_dir=str(result.run_dir),
                  error=None if result.complete else "the run ended incomplete (errors); it resumes when submitted again")
    print(f"evalkit sweep: {result.run_dir} complete={result.complete}", flush=True)
    return {"key": job.checkpoint.key, "run_dir": str(result.run_dir), "complete": result.complete}


# ---------------------------------------------------------------- executors


@dataclass
class SlurmOptions:
    """The #SBATCH settings of a sweep's job array (None: the cluster's default)."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time_min: int = field_default(SweepCommandSettings, "slurm_time_min")
    gpus_per_node: int | None = None
    cpus_per_task: int | None = None
    mem: str | None = None
    constraint: str | None = None
    array_parallelism: int | None = None
    sbatch: list[str] = field(default_factory=list)  # extra directives: "KEY=VALUE" or "--KEY[=VALUE]"
    setup: list[str] = field(default_factory=list)   # shell lines run before the job (module load ...)

    def __post_init__(self) -> None:
        parse_sbatch_directives(self.sbatch)  # a malformed directive is an error now, not at submission

    def parameters(self, job_name: str) -> dict[str, Any]:
        """submitit SlurmExecutor parameters."""
        params: dict[str, Any] = {"job_name": job_name, "time": self.time_min}
        for key in ("partition", "account", "qos", "gpus_per_node", "cpus_per_task", "mem", "constraint",
                    "array_parallelism"):
            value = getattr(self, key)
            if value is not None:
                params[key] = value
        if self.sbatch:
            params["additional_parameters"] = parse_sbatch_directives(self.sbatch)
        if self.setup:
            params["setup"] = list(self.setup)
        return params


def parse_sbatch_directives(items: Sequence[str]) -> dict[str, Any]:
    """``--sbatch`` values as submitit's additional_parameters: ``KEY=VALUE`` (``--`` optional),
    a bare ``KEY`` is a flag; ``#SBATCH`` prefixes are dropped."""
    out: dict[str, Any] = {}
    for raw in items:
        text = raw.strip().removeprefix("#SBATCH").strip().lstrip("-")
        key, eq, value = text.partition("=")
        key = key.strip()
        if not key or " " in key:
            raise SweepError(f"--sbatch {raw!r}: give KEY=VALUE (e.g. exclusive, gres=gpu:8, mail-type=END)")
        out[key] = value.strip() if eq else True
    return out


Submitted = Callable[[CheckpointJob, str, "str | None"], None]


def submit_slurm(jobs: Sequence[CheckpointJob], settings: SweepSettings, options: SlurmOptions,
                 on_submit: Submitted, evaluate: Evaluate) -> list[str]:
    """Submit JOBS as one Slurm job array (submitit), each to be evaluated with EVALUATE;
    ON_SUBMIT(job, job_id, log) records each."""
    if not jobs:
        return []
    try:
        import submitit
    except ImportError:
        raise SweepError("the slurm executor needs submitit: pip install 'evalkit[sweep]'") from None
    if shutil.which("sbatch") is None:
        raise SweepError("sbatch is not on PATH: run the sweep on a Slurm login node, or use --executor local")
    executor = submitit.SlurmExecutor(folder=Path(settings.sweep_dir) / "logs" / "%j")
    executor.update_parameters(**options.parameters(f"evalkit-sweep-{settings.name}"))
    submitted = executor.map_array(run_checkpoint, list(jobs), [evaluate] * len(jobs))
    for job, sj in zip(jobs, submitted):
        on_submit(job, str(sj.job_id), str(sj.paths.stdout))
    return [str(sj.job_id) for sj in submitted]


def run_local(jobs: Sequence[CheckpointJob], settings: SweepSettings, on_submit: Submitted, evaluate: Evaluate, *,
              parallel: int = 1, time_min: int = 24 * 60, poll_s: float = 1.0) -> dict[str, str]:
    """Run JOBS on this machine (submitit's LocalExecutor), PARALLEL at a time, each evaluated with EVALUATE;
    returns key -> outcome.

    Ctrl-C stops the running jobs cleanly (their servers are stopped, samples kept) and re-raises.
    """
    try:
        import submitit
    except ImportError:
        raise SweepError("the local executor needs submitit: pip install 'evalkit[sweep]'") from None
    executor = submitit.LocalExecutor(folder=Path(settings.sweep_dir) / "logs" / "%j")
    executor.update_parameters(timeout_min=time_min)
    waiting, running, outcomes = list(jobs), [], {}
    try:
        while waiting or running:
            while waiting and len(running) < max(1, parallel):
                job = waiting.pop(0)
                sj = executor.submit(run_checkpoint, job, evaluate)
                on_submit(job, str(sj.job_id), str(sj.paths.stdout))
                running.append((job, sj))
            time.sleep(poll_s)
            for job, sj in [r for r in running if r[1].done()]:
                running.remove((job, sj))
                outcomes[job.checkpoint.key] = _local_outcome(sj)
    except KeyboardInterrupt:
        for _, sj in running:
            sj.cancel()  # SIGINT: the job body stops its server and keeps its samples
        for _, sj in running:
            _wait_done(sj, 60)
        raise
    return outcomes


def _local_outcome(sj: Any) -> str:
    try:
        sj.result()
        return "done"
    except Exception as exc:  # submitit's FailedJobError carries the job's traceback
        return f"failed: {str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__}"


def _wait_done(sj: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not sj.done():
        time.sleep(0.5)


def slurm_queue() -> dict[str, str]:
    """This user's Slurm jobs the controller knows (finished ones for a while): job id -> state.

    {} where squeue is missing or fails (then only the sweep's own files say what happened)."""
    if shutil.which("squeue") is None:
        return {}
    try:
        out = subprocess.run(["squeue", "-h", "-r", "-t", "all", "-u", getpass.getuser(), "-o", "%i %T"],
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return {}
    if out.returncode != 0:
        print(f"warning: squeue failed ({out.stderr.strip()}); job states come from the sweep's files",
              file=sys.stderr)
        return {}
    return dict(line.split(None, 1) for line in out.stdout.splitlines() if len(line.split()) == 2)


# ---------------------------------------------------------------- a sweep, end to end


@dataclass
class SweepLaunch:
    """How to submit: the executor, its Slurm settings or local parallelism, whether to wait, and the
    evaluation each job runs (``api.evaluate``; ``api.sweep_run`` and ``api.sweep_watch`` fill it in)."""

    executor: str = field_default(SweepCommandSettings, "executor")
    slurm: SlurmOptions = field(default_factory=SlurmOptions)
    parallel: int = field_default(SweepCommandSettings, "local_jobs")
    wait: bool = False
    poll_s: float = 5.0
    evaluate: Evaluate | None = None

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            raise SweepError(f"unknown executor {self.executor!r}: choose {' or '.join(EXECUTORS)}")


def current_views(state: SweepState) -> list[JobView]:
    """Every checkpoint's standing, asking Slurm where a checkpoint's last job went through it."""
    uses_slurm = any((state.last_submission(k) or {}).get("executor") == "slurm" for k in state.checkpoints)
    return views(state, slurm_queue() if uses_slurm else {})


def submit_pending(state: SweepState, launch: SweepLaunch,
                   on_event: Callable[[str], None] = lambda _m: None, *,
                   only: Callable[[JobView], bool] | None = None) -> list[JobView]:
    """Submit every checkpoint of STATE that is not done, pending or running (new, failed, cancelled,
    partial), or of those the ones ONLY accepts; a complete run is never evaluated again. Returns the
    standing afterwards."""
    todo = [v.job for v in current_views(state) if v.needs_submitting and (only is None or only(v))]

    def record(job: CheckpointJob, job_id: str, log: str | None) -> None:
        state.record_submission(job.checkpoint.key, executor=launch.executor, job_id=job_id, log=log)
        state.save()
        on_event(f"submitted {job.checkpoint.label} ({job.checkpoint.path}) as {launch.executor} job {job_id}"
                 f"{f'; log {log}' if log else ''}")

    if todo and launch.evaluate is None:
        raise SweepError("a sweep's jobs need the evaluation they run: SweepLaunch(evaluate=api.evaluate) "
                         "(api.sweep.run and api.sweep.watch give it)")
    if not todo:
        on_event("nothing to submit: every checkpoint is done, pending or running")
    elif launch.executor == "slurm":
        submit_slurm(todo, state.settings, launch.slurm, record, launch.evaluate)
    else:
        run_local(todo, state.settings, record, launch.evaluate, parallel=launch.parallel,
                  time_min=launch.slurm.time_min)
    if launch.wait and launch.executor == "slurm":
        wait_for_jobs(state, poll_s=launch.poll_s)
    return current_views(state)


def wait_for_jobs(state: SweepState, *, poll_s: float = 5.0, timeout_s: float | None = None) -> list[JobView]:
    """Poll until no checkpoint of STATE is pending or running (or TIMEOUT_S passes)."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        standing = current_views(state)
        if not any(v.state in ("pending", "running") for v in standing):
            return standing
        if deadline is not None and time.monotonic() > deadline:
            return standing
        time.sleep(poll_s)


@contextmanager
def _submitting(settings: SweepSettings) -> Iterator[None]:
    """One ``evalkit sweep run`` at a time per sweep folder (two would both submit, and both write
    the state file): the run-directory lock, taken on the sweep's folder."""
    from evalkit.core.lock import RunLocked, try_lock_run_dir

    check_settings(settings)  # before its folder is made
    Path(settings.sweep_dir).mkdir(parents=True, exist_ok=True)
    try:
        lock = try_lock_run_dir(settings.sweep_dir)
    except RunLocked as exc:
        who = exc.holder.describe() if exc.holder else "another process"
        raise SweepError(f"{settings.sweep_dir} is in use by another `evalkit sweep run` ({who}); "
                         "wait for it to end") from None
    with lock:
        yield


def start_sweep(settings: SweepSettings, patterns: Sequence[str], launch: SweepLaunch,
                on_event: Callable[[str], None] = lambda _m: None) -> list[JobView]:
    """``evalkit sweep run``: record the checkpoints PATTERNS name in the sweep's state and submit
    what is not complete. Running the same command again submits only what is still missing."""
    checkpoints = find_checkpoints(patterns, step_from=settings.step_from)
    with _submitting(settings):
        state = SweepState.open(settings)
        new = state.add(checkpoints)
        state.save()
        if new:
            on_event(f"{len(new)} new checkpoint(s) in {state.path}")
        return submit_pending(state, launch, on_event)


def watch_candidates(standing: Sequence[JobView], ready: Sequence[Checkpoint]) -> set[str]:
    """The keys ``--watch`` submits among READY (complete) checkpoints: those never submitted, and those
    whose last job failed for lack of files (they are there now). Other failures wait for ``sweep run``
    again, so a checkpoint that fails for another reason is not submitted at every look (pure)."""
    by_key = {v.job.checkpoint.key: v for v in standing}
    out = set()
    for ck in ready:
        view = by_key.get(ck.key)
        if view is not None and (view.state == "new" or (view.state == "failed" and view.incomplete)):
            out.add(ck.key)
    return out


def watch_sweep(settings: SweepSettings, folder: str, launch: SweepLaunch, *, marker: str | None = None,
                quiet_s: float = field_default(SweepCommandSettings, "quiet_s"),
                interval_s: float = field_default(SweepCommandSettings, "watch_interval_s"), max_polls: int | None = None,
                on_event: Callable[[str], None] = lambda _m: None) -> list[JobView]:
    """``--watch FOLDER``: every INTERVAL_S, submit each new checkpoint in FOLDER once it is complete
    (its backend can load it, and MARKER exists in it or its files stopped changing for QUIET_S), and
    again one whose job failed for lack of files once they are there, until stopped (Ctrl-C) or
    MAX_POLLS polls. Each checkpoint still waiting is said once per reason."""
    with _submitting(settings):
        state = SweepState.open(settings)
        state.save()
        seen: dict[str, tuple] = {}
        said: dict[str, str] = {}
        polls = 0
        while max_polls is None or polls < max_polls:
            looked = checkpoint_readiness(folder, seen, backend=settings.backend, marker=marker, quiet_s=quiet_s,
                                          step_from=settings.step_from)
            _say_waiting(looked, said, on_event)
            ready = [ck for ck, why in looked if why is None]
            new = state.add(ready)
            if new:
                state.save()
                on_event(f"ready: {', '.join(c.label for c in new)}")
            keys = watch_candidates(current_views(state), [state_checkpoint(state, ck) for ck in ready])
            if keys:
                submit_pending(state, replace(launch, wait=False), on_event,
                               only=lambda v: v.job.checkpoint.key in keys)
            polls += 1
            if max_polls is None or polls < max_polls:
                time.sleep(interval_s)
        return current_views(state)


def state_checkpoint(state: SweepState, ck: Checkpoint) -> Checkpoint:
    """CK as STATE records it (an earlier evalkit may have recorded it under a path through a symlink)."""
    if ck.key in state.checkpoints:
        return ck
    real = {os.path.realpath(d["path"]): k for k, d in state.checkpoints.items()}
    key = real.get(ck.path)
    return Checkpoint(path=state.checkpoints[key]["path"], step=ck.step, key=key) if key else ck


def _say_waiting(looked: Sequence[tuple[Checkpoint, str | None]], said: dict[str, str],
                 on_event: Callable[[str], None]) -> None:
    """Say why a checkpoint is not submitted yet, once per reason; files still changing go unsaid (the
    expected wait while a trainer writes)."""
    for ck, why in looked:
        if why is None or said.get(ck.key) == why or why.startswith(QUIET_REASON):
            continue
        said[ck.key] = why
        on_event(f"waiting for {ck.label} ({Path(ck.path).name}): {why}")


__all__ = ["EXECUTORS", "CheckpointIncomplete", "SlurmOptions", "SweepLaunch", "current_views",
           "evaluate_checkpoint", "job_tasks", "parse_sbatch_directives", "run_checkpoint", "run_local",
           "run_settings", "serve_request", "slurm_queue", "start_sweep", "state_checkpoint", "submit_pending",
           "submit_slurm", "wait_for_jobs", "watch_candidates", "watch_sweep"]
