"""``evalkit sweep run|status|report``: every checkpoint of a training run, on Slurm or locally."""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import fields
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from evalkit.cli.common import stdout_console
from evalkit.cli.export import check_run_ids, send_to_trackers
from evalkit.cli.options import (alpha_option, config_option, field_options, format_option, max_drop_option,
                                 score_option, tracker_options)
from evalkit.config import (EXIT_MISMATCH, EXIT_PASS, EXIT_REGRESSION, SweepCommandSettings, SweepRunRequest,
                            SweepSettings, field_default)

TREND_PAGE = field_default(SweepCommandSettings, "trend_page")


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
@field_options(SweepRunRequest)
@tracker_options()
def run_command(checkpoints: tuple[str, ...], trackers: tuple[Any, ...], tracker_run_ids: tuple[str, ...],
                log_samples: bool, **options: Any) -> None:
    """Evaluate CHECKPOINTS (paths or globs, e.g. 'out/checkpoint-*') on the tasks; running the same
    command again submits only what is not complete (failed and cancelled jobs again).

    With --executor local (or --wait) it returns when the jobs have ended: exit 1 when one failed.
    With --log-to, the checkpoints finished by then are sent (each at its training step); `evalkit export
    SWEEP_DIR --to ...` sends the others once they finish."""
    from evalkit import api

    request = SweepRunRequest(**options)
    if not checkpoints and not request.watch:
        raise click.UsageError("give CHECKPOINTS (paths or globs) or --watch FOLDER")
    if not request.eval_files and not request.suite:
        raise click.UsageError("give --eval-file FILE (repeatable) or --suite NAME")
    check_run_ids(trackers, tracker_run_ids)
    name = request.name or _default_name(checkpoints, request.watch)
    try:
        settings, launch = _sweep_settings(request, name)
        say = lambda m: click.echo(f"sweep {name}: {m}")  # noqa: E731
        if request.watch:
            api.sweep.watch(settings, request.watch, launch, marker=request.marker, quiet_s=request.quiet_s,
                            interval_s=request.watch_interval, max_polls=request.max_polls, on_event=say)
        else:
            api.sweep.run(settings, list(checkpoints), launch, on_event=say)
    except api.InputError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(f"sweep {name}: state in {settings.sweep_dir}; "
               f"`evalkit sweep status {shlex.quote(settings.sweep_dir)}` shows the jobs")
    sent = not trackers or send_to_trackers([settings.sweep_dir], trackers, tracker_run_ids, log_samples)
    failed = []
    if launch.executor == "local" or launch.wait:  # the jobs' table first: a tracker's failure must not hide which
        standing = _print_status(settings.sweep_dir, lines=3, as_json=False)  # jobs failed
        failed = [v for v in standing if v.state == "failed"]
        if failed:
            click.echo(f"sweep {name}: {len(failed)} job(s) failed; run the same command again to resubmit them",
                       err=True)
    if failed or not sent:
        click.get_current_context().exit(1)


def _sections(request: SweepRunRequest) -> dict[str, dict[str, Any]]:
    """The values the user gave (not None, not empty), by where each goes (``SweepRunRequest``'s ``to``:
    ``SECTION`` or ``SECTION.KEY``, the key defaulting to the field's name)."""
    out: dict[str, dict[str, Any]] = {}
    for f in fields(request):
        section, _, key = f.metadata.get("to", "").partition(".")
        value = getattr(request, f.name)
        if section and value is not None and value != [] and value != ():
            out.setdefault(section, {})[key or f.name] = list(value) if isinstance(value, (list, tuple)) else value
    return out


def _sweep_settings(request: SweepRunRequest, name: str) -> tuple[Any, Any]:
    """The sweep's SweepSettings and SweepLaunch from REQUEST (its tasks: a suite's, or one per file)."""
    from evalkit import api

    given = _sections(request)
    generation, run = given.get("generation", {}), given.get("run", {})
    files, suite_doc, tasks = _suite_tasks(request.suite, request.data_dir, list(request.eval_files),
                                           {**run, **generation})
    settings = SweepSettings(
        name=name, sweep_dir=request.sweep_dir or str(Path(request.results_dir) / "sweeps" / name),
        results_dir=request.results_dir, eval_files=files, suite=suite_doc, tasks=tasks, generation=generation,
        serve=given.get("serve", {}), run=run, **given.get("settings", {}))
    return settings, api.sweep.launch(slurm=api.sweep.slurm(**given.get("slurm", {})), **given.get("launch", {}))


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
            for table in api.render(trend, "table", best=False):
                stdout_console().print(table)


@sweep.command("report")
@click.argument("sweep_dir", type=click.Path(file_okay=False))
@score_option("The named score of the trend and the gates [default: a suite sweep's table score, else this].")
@format_option("trend", (SweepCommandSettings, "report_format"),
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
    if output is not None and not api.settings.format(fmt).page:
        raise click.UsageError("-o/--output goes with --format html")
    if api.settings.format(fmt).page:
        _write_trend_page(trend, output or Path(TREND_PAGE), score=score, max_drop=max_drop, alpha=alpha)
    elif api.settings.format(fmt).terminal:
        console = stdout_console()
        for renderable in api.render(trend, fmt, gate=gate):
            console.print(renderable, highlight=False)
    else:
        click.echo(api.render(trend, fmt, gate=gate), nl=False)
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
