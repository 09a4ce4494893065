"""``evalkit sweep run|status|report``: every checkpoint of a training run, on Slurm or locally."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from evalkit.cli.common import stdout_console
from evalkit.cli.export import check_run_ids, send_to_trackers
from evalkit.cli.options import (alpha_option, config_option, format_option, max_drop_option, score_option,
                                 tracker_options)
from evalkit.config import (DEFAULT_PROMPT, EXECUTORS, EXIT_MISMATCH, EXIT_PASS, EXIT_REGRESSION, TREND_FORMATS,
                            RunConfig, SweepCommandSettings, SweepSettings, field_default)

TREND_PAGE = field_default(SweepCommandSettings, "trend_page")


def _given(**values: Any) -> dict[str, Any]:
    """The options the user gave (None means: the config type's default)."""
    return {k: v for k, v in values.items() if v is not None and v != ()}


def _default_name(checkpoints: tuple[str, ...], watch: str | None) -> str:
    import re

    base = watch or (os.path.dirname(os.path.abspath(checkpoints[0].rstrip("/"))) if checkpoints else "sweep")
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(base).name).strip("._-") or "sweep"


@click.group("sweep")
def sweep() -> None:
    """Evaluate every checkpoint of a training run: one job per checkpoint (serve, evaluate, stop),
    on Slurm (a job array through submitit) or on this machine; then the trend over training steps
    and a gate per checkpoint."""


@sweep.command("run")
@click.argument("checkpoints", nargs=-1)
@click.option("--watch", default=None, type=click.Path(file_okay=False),
              help="Watch this folder and submit each new checkpoint (a folder named checkpoint-N, global_stepN, "
                   "iter_N, ...step=N...) once complete (the backend's files are there: a .gguf for llamacpp, "
                   "config and weights for vllm/sglang), until Ctrl-C; a checkpoint whose job failed for lack of "
                   "files is submitted again once they are there.")
@click.option("--marker", default=None, help="--watch: a checkpoint is complete when this file exists in it "
                                             "(default: when its files stopped changing for --quiet-s) and "
                                             "its backend's files are there.")
@config_option("--quiet-s", type=float, source=(SweepCommandSettings, "quiet_s"),
               help="--watch: seconds without a change.")
@config_option("--watch-interval", type=float, source=(SweepCommandSettings, "watch_interval_s"),
               help="--watch: seconds between looks.")
@click.option("--max-polls", type=int, default=None, hidden=True)
@click.option("--eval-file", "eval_files", multiple=True, help="A benchmark file (repeatable).")
@click.option("--suite", default=None, help="A suite of registered benchmarks (eval_data/suites/NAME.json).")
@config_option("--data-dir", source="DEFAULT_DATA_DIR", help="Where a suite's benchmark files are.")
@click.option("--name", default=None, help="The sweep's name [default: the checkpoints' folder name].")
@config_option("--results-dir", source=(RunConfig, "results_dir"), help="The results directory every job shares.")
@click.option("--sweep-dir", default=None, help="The sweep's state folder [default: RESULTS_DIR/sweeps/NAME].")
@click.option("--backend", default=None,
              help=f"Serving backend: llamacpp, vllm, sglang [default: {field_default(SweepSettings, 'backend')}].")
@click.option("--n-ctx", type=int, default=None, help="llama.cpp context size.")
@click.option("--server-parallel", type=int, default=None, help="llama.cpp --parallel slots.")
@click.option("--tp", type=int, default=None, help="SGLang tensor parallelism (dp is the node's GPU count).")
@click.option("--serve-arg", "serve_args", multiple=True, help="An extra argument for the server (repeatable).")
@click.option("--serve-timeout", type=float, default=None, help="Seconds to wait for a server to answer.")
@click.option("--prompt", default=None, help=f"Prompt template [default: {DEFAULT_PROMPT}, or the suite's].")
@click.option("--max-new-tokens", type=int, default=None)
@click.option("--temperature", type=float, default=None)
@click.option("--limit", type=int, default=None, help="First N items of each file.")
@click.option("--concurrency", type=int, default=None, help="Requests in flight per job.")
@click.option("--rps", type=float, default=None, help="At most this many requests per second per job.")
@click.option("--step-from", default=None, metavar="REGEX", help="Read the training step from the path with REGEX.")
@config_option("--executor", type=click.Choice(EXECUTORS), source=(SweepCommandSettings, "executor"))
@click.option("--local-jobs", type=int, default=None,
              help=f"--executor local: jobs at once [default: {field_default(SweepCommandSettings, 'local_jobs')}].")
@click.option("--partition", default=None)
@click.option("--account", default=None)
@click.option("--qos", default=None)
@click.option("--time", "time_min", type=int, default=None,
              help=f"Minutes per job [default: {field_default(SweepCommandSettings, 'slurm_time_min')}].")
@click.option("--gpus", "gpus_per_node", type=int, default=None, help="GPUs per job (node).")
@click.option("--cpus", "cpus_per_task", type=int, default=None, help="CPUs per job.")
@click.option("--mem", default=None, help="Memory per job, e.g. 64G.")
@click.option("--constraint", default=None)
@click.option("--array-parallelism", type=int, default=None, help="At most this many jobs of the array at once.")
@click.option("--sbatch", "sbatch", multiple=True, metavar="KEY=VALUE",
              help="An extra #SBATCH directive (repeatable), e.g. --sbatch exclusive --sbatch gres=gpu:8.")
@click.option("--setup", "setup", multiple=True, help="A shell line run before each job (module load ...).")
@click.option("--wait", is_flag=True, help="--executor slurm: wait until every job ended, then show where each stands.")
@tracker_options()
def run_command(checkpoints, watch, marker, quiet_s, watch_interval, max_polls, eval_files, suite, data_dir, name,
                results_dir, sweep_dir, backend, n_ctx, server_parallel, tp, serve_args, serve_timeout, prompt,
                max_new_tokens, temperature, limit, concurrency, rps, step_from, executor, local_jobs, partition,
                account, qos, time_min, gpus_per_node, cpus_per_task, mem, constraint, array_parallelism, sbatch, setup,
                wait, trackers, tracker_run_ids, log_samples) -> None:
    """Evaluate CHECKPOINTS (paths or globs, e.g. 'out/checkpoint-*') on the tasks; running the same
    command again submits only what is not complete (failed and cancelled jobs again).

    With --executor local (or --wait) it returns when the jobs have ended: exit 1 when one failed.
    With --log-to, the checkpoints finished by then are sent (each at its training step); `evalkit export
    SWEEP_DIR --to ...` sends the others once they finish."""
    from evalkit import api

    if not checkpoints and not watch:
        raise click.UsageError("give CHECKPOINTS (paths or globs) or --watch FOLDER")
    if not eval_files and not suite:
        raise click.UsageError("give --eval-file FILE (repeatable) or --suite NAME")
    check_run_ids(trackers, tracker_run_ids)
    name = name or _default_name(checkpoints, watch)
    generation = _given(max_new_tokens=max_new_tokens, temperature=temperature)
    run = _given(prompt=prompt, limit=limit, concurrency=concurrency, rps=rps)
    try:
        files, suite_doc, tasks = _suite_tasks(suite, data_dir, list(eval_files), {**run, **generation})
        settings = SweepSettings(
            name=name, sweep_dir=sweep_dir or str(Path(results_dir) / "sweeps" / name), results_dir=results_dir,
            eval_files=files, suite=suite_doc, tasks=tasks, generation=generation, step_from=step_from,
            serve=_given(n_ctx=n_ctx, parallel=server_parallel, tp=tp, extra_args=list(serve_args) or None,
                         timeout_s=serve_timeout),
            run=run, **_given(backend=backend))
        slurm = api.sweep.slurm(**_given(partition=partition, account=account, qos=qos, time_min=time_min,
                                      gpus_per_node=gpus_per_node, cpus_per_task=cpus_per_task, mem=mem,
                                      constraint=constraint, array_parallelism=array_parallelism,
                                      sbatch=list(sbatch) or None, setup=list(setup) or None))
        launch = api.sweep.launch(executor=executor, slurm=slurm, wait=wait, **_given(parallel=local_jobs))
        say = lambda m: click.echo(f"sweep {name}: {m}")  # noqa: E731
        if watch:
            api.sweep.watch(settings, watch, launch, marker=marker, quiet_s=quiet_s, interval_s=watch_interval,
                            max_polls=max_polls, on_event=say)
        else:
            api.sweep.run(settings, list(checkpoints), launch, on_event=say)
    except api.InputError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(f"sweep {name}: state in {settings.sweep_dir}; "
               f"`evalkit sweep status {shlex.quote(settings.sweep_dir)}` shows the jobs")
    sent = not trackers or send_to_trackers([settings.sweep_dir], trackers, tracker_run_ids, log_samples)
    failed = []
    if executor == "local" or wait:  # the jobs' table first: a tracker's failure must not hide which jobs failed
        standing = _print_status(settings.sweep_dir, lines=3, as_json=False)
        failed = [v for v in standing if v.state == "failed"]
        if failed:
            click.echo(f"sweep {name}: {len(failed)} job(s) failed; run the same command again to resubmit them",
                       err=True)
    if failed or not sent:
        click.get_current_context().exit(1)


def _suite_tasks(suite: str | None, data_dir: str, files: list[str], settings: dict[str, Any]
                 ) -> tuple[list[str], dict[str, Any] | None, list[dict[str, Any]]]:
    """The files, the suite's record and the tasks of a sweep: with --suite, the suite's tasks (its
    prompt, generation settings and scorers) and the --eval-file files as tasks of the suite's."""
    if not suite:
        return files, None, []
    from evalkit import api

    try:
        loaded = api.load_suite(suite)
        suite_files = [str(p) for p in loaded.files(data_dir)]
    except api.InputError as exc:
        raise click.UsageError(str(exc)) from None
    tasks = api.sweep.tasks(api.from_suite(loaded, extra_data=files), data_dir=data_dir, **settings)
    return suite_files + files, loaded.to_manifest(), tasks


def _print_status(sweep_dir: str, *, lines: int, as_json: bool) -> list:
    from evalkit import api

    log_tail = api.sweep.log_tail
    standing = api.sweep.status(sweep_dir)
    if as_json:
        click.echo(json.dumps([dict(v.to_dict(), log_tail=log_tail((v.submission or {}).get("log"), lines))
                               for v in standing], indent=2))
        return standing
    from rich.table import Table

    console = stdout_console()
    table = Table(title=f"sweep {sweep_dir}")
    for col in ("step", "checkpoint", "state", "job", "detail"):
        table.add_column(col)
    for v in standing:
        ck = v.job.checkpoint
        table.add_row(ck.step_text, Path(ck.path).name, v.state, str((v.submission or {}).get("job_id") or "-"),
                      escape(v.detail))
    console.print(table)
    counts = {s: sum(1 for v in standing if v.state == s) for s in ("done", "running", "pending", "failed", "new")}
    console.print(", ".join(f"{n} {s}" for s, n in counts.items() if n), highlight=False)
    for v in standing:
        log = (v.submission or {}).get("log")
        if v.state in ("failed", "running") and log:
            console.print(f"[bold]{escape(Path(v.job.checkpoint.path).name)}[/] log {escape(log)}:", highlight=False)
            for line in log_tail(log, lines):
                console.print("    " + escape(line), highlight=False)
    return standing


def _write_trend_page(trend, output: Path, **gate_options: Any) -> None:
    """The trend page (api.sweep.trend_page: the trend's own figures) written to OUTPUT."""
    from evalkit import api

    try:
        page, notes = api.sweep.trend_page(trend, **gate_options)
    except ValueError as exc:  # fewer than two scored checkpoints
        raise click.UsageError(f"--format html: {exc}") from None
    for note in notes:
        click.echo(f"note: {note}", err=True)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(page, encoding="utf-8")
    click.echo(f"wrote {output} ({output.stat().st_size / 1e6:.2f} MB)", err=True)


def _load_state(sweep_dir: str):
    from evalkit import api

    try:
        return api.sweep.load(sweep_dir)
    except api.InputError as exc:
        raise click.UsageError(str(exc)) from None


@sweep.command("status")
@click.argument("sweep_dir", type=click.Path(file_okay=False))
@config_option("--lines", type=int, source=(SweepCommandSettings, "status_lines"),
               help="Last lines of each failed or running job's log.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per checkpoint.")
def status_command(sweep_dir: str, lines: int, as_json: bool) -> None:
    """Each checkpoint of the sweep in SWEEP_DIR: new, pending, running, done or failed (with its log's
    last lines), and the scores so far."""
    _load_state(sweep_dir)
    _print_status(sweep_dir, lines=lines, as_json=as_json)
    if not as_json:
        from evalkit import api

        trend = api.sweep.trend(_load_state(sweep_dir))
        if trend.datasets:
            for table in api.render(trend, "rich"):
                stdout_console().print(table)


@sweep.command("report")
@click.argument("sweep_dir", type=click.Path(file_okay=False))
@score_option("The named score of the trend and the gates [default: a suite sweep's table score, else this].")
@format_option(TREND_FORMATS, (SweepCommandSettings, "report_format"),
               "html: the trend as a page (click two points to compare their runs).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help=f"--format html: the page's file [default: {TREND_PAGE}].")
@click.option("--baseline", default=None, metavar="RUN_OR_CHECKPOINT",
              help="Gate every checkpoint against this run directory, or checkpoint of the sweep (path, key or step).")
@max_drop_option("Largest tolerated drop in points (the gate's).")
@alpha_option()
@click.option("--allow-mismatch", is_flag=True, help="Gate on the shared items where the runs differ.")
@click.option("--junit", "junit_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write one JUnit XML file for the sweep's gates.")
def report_command(sweep_dir: str, score: str, fmt: str, output: Path | None, baseline: str | None,
                   max_drop: float, alpha: float, allow_mismatch: bool, junit_out: Path | None) -> None:
    """The trend: each benchmark's score with its CI per training step, the suite's average and the best
    step; with --baseline, a gate per checkpoint (exit 1 when any regressed, 2 when one cannot be compared).

    --format html writes the trend as a page: the plot of the same figures, and below it the
    comparison of the checkpoints' runs (click two points to pair them)."""
    from evalkit import api

    state = _load_state(sweep_dir)
    if click.get_current_context().get_parameter_source("score") is click.core.ParameterSource.DEFAULT:
        score = None  # the sweep's own: its suite's table score, else the option's default
    trend = api.sweep.trend(state, score=score)
    score = trend.score
    gate = None
    if baseline:
        try:
            gate = api.sweep.gate(state, baseline, max_drop=max_drop, alpha=alpha, allow_mismatch=allow_mismatch,
                                  score=score)
        except (OSError, ValueError) as exc:
            raise click.UsageError(str(exc)) from None
    if output is not None and fmt != "html":
        raise click.UsageError("-o/--output goes with --format html")
    if fmt == "html":
        _write_trend_page(trend, output or Path(TREND_PAGE), score=score, max_drop=max_drop, alpha=alpha)
    elif fmt == "json":
        click.echo(api.render(trend, "json", gate=gate), nl=False)
    elif fmt == "markdown":
        click.echo(api.render(trend, "markdown"), nl=False)
    else:
        console = stdout_console()
        for renderable in api.render(trend, "rich", best=True) + (api.render(gate, "rich") if gate else []):
            console.print(renderable, highlight=False)
    if gate is not None:
        if junit_out is not None:
            junit_out.parent.mkdir(parents=True, exist_ok=True)
            junit_out.write_text(api.render(gate, "junit"), encoding="utf-8")

        regressed = ", ".join(j.checkpoint.label for j in gate.regressed)
        verdict = {EXIT_PASS: "PASS", EXIT_REGRESSION: f"FAIL: regressed: {regressed}",
                   EXIT_MISMATCH: f"NOT COMPARABLE (exit {EXIT_MISMATCH})"}[gate.exit_code]
        partial = [r.job.checkpoint.label for r in trend.rows if r.partial]
        if partial:  # a run still going is not gated: say so beside the verdict
            verdict += f" ({', '.join(partial)} not gated: the run is not complete)"
        click.echo(f"gate: {verdict}", err=fmt == "json")
        click.get_current_context().exit(gate.exit_code)
