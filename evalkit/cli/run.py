"""``evalkit run``: evaluate a served model on one or more benchmark files."""

from __future__ import annotations

import os
import shlex
import sys
import time

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from evalkit.cli import stdout_console
from evalkit.client import RequestError
from evalkit.datasets import DatasetError
from evalkit.records import GenerationParams
from evalkit.runner import DEFAULT_CONCURRENCY, EndpointDown, RunConfig, RunProgress, run_eval
from evalkit.sampling import STRATEGIES
from evalkit.server import ServerError, resolve_endpoint
from evalkit.stats import wilson_interval

console = Console(stderr=True, soft_wrap=True)  # long paths stay on one line in logs


def summary_table(summary: dict, title: str) -> Table:
    """The end-of-run table, from the streamed per-dataset counts (no samples reloaded)."""
    table = Table(title=title, title_justify="left")
    for col, justify in (("dataset", "left"), ("n", "right"), ("accuracy", "right"), ("95% CI (Wilson)", "right"),
                         ("unparsed", "right"), ("truncated", "right"), ("errors", "right")):
        table.add_column(col, justify=justify, no_wrap=True)
    for name, d in summary.items():
        if d.choice:
            lo, hi = wilson_interval(d.correct, d.n)
            table.add_row(name, str(d.n), f"{100 * d.accuracy:.1f}%", f"[{100 * lo:.1f}, {100 * hi:.1f}]",
                          str(d.unparsed), str(d.truncated), str(d.errors))
        else:
            table.add_row(name, str(d.n), "-", "-", "-", str(d.truncated), str(d.errors))
    return table


def scores_table(summary: dict) -> Table | None:
    """Every named score other than the choice scorer's (shown as accuracy above): mean over n."""
    rows = [(dataset, name, s) for dataset, d in summary.items() for name, s in d.scores.items() if name != "correct"]
    if not rows:
        return None
    table = Table(title="scores (mean over scored samples; `evalkit report` adds CIs)", title_justify="left")
    for col, justify in (("dataset", "left"), ("score", "left"), ("n", "right"), ("mean", "right"),
                         ("not scored", "right")):
        table.add_column(col, justify=justify, no_wrap=True)
    for dataset, name, s in rows:
        mean = "-" if s.mean is None else (f"{100 * s.mean:.1f}%" if s.binary else f"{s.mean:.3f}")
        table.add_row(dataset, name, str(s.n), mean, str(s.errors))
    return table


def parse_scorer_args(args: tuple[str, ...]) -> dict[str, dict[str, object]]:
    """``SCORER.KEY=VALUE`` options as {scorer: {key: value}}; values that read as JSON are parsed."""
    import json

    out: dict[str, dict[str, object]] = {}
    for arg in args:
        target, eq, value = arg.partition("=")
        scorer, dot, key = target.rpartition(".")
        if not eq or not dot or not scorer or not key:
            raise ValueError(f"{arg!r} is not SCORER.KEY=VALUE")
        try:
            parsed: object = json.loads(value)
        except ValueError:
            parsed = value
        out.setdefault(scorer, {})[key] = parsed
    return out


def _resume_hint() -> str:
    args = " ".join(shlex.quote(a) for a in sys.argv[1:])
    return f"evalkit {args}" if args else "the same command"


@click.command()
@click.option("--eval-file", "eval_files", multiple=True, required=True, type=click.Path(dir_okay=False),
              help="Benchmark file (repeatable).")
@click.option("--endpoint", "endpoints", multiple=True,
              help="Server base URL, e.g. http://127.0.0.1:30000/v1 (repeatable: requests are balanced over all; "
                   "default: the recorded server).")
@click.option("--server", "server_name", default=None, help="Name of a server started by `evalkit serve`.")
@click.option("--model", default=None, help="Model id to request (default: the one the server lists).")
@click.option("--api-key", envvar="EVALKIT_API_KEY", default=None, help="Or $EVALKIT_API_KEY. Never saved.")
@click.option("--prompt", default=None,
              help="Template name under prompts/ or a file path [default: strict; er_sample for ensemble-refinement].")
@click.option("--extractor", default="evalkit", show_default=True, help="Answer extractor of the choice scorer.")
@click.option("--scorer", "scorers", multiple=True,
              help="Scorer by name (choice, judge) or module:attr (repeatable) [default: choice for "
                   "multiple-choice items]. Changing only the scorers rescores the saved generations.")
@click.option("--scorer-arg", "scorer_args", multiple=True, metavar="SCORER.KEY=VALUE",
              help="An option for a scorer, e.g. choice.extractor=medreason (repeatable).")
@click.option("--adapter", default=None,
              help="How records become items: an adapter name or module:attr [default: the registry's, else mcq].")
@click.option("--max-new-tokens", type=int, default=1024, show_default=True)
@click.option("--temperature", type=float, default=None,
              help="Sampling temperature [default: 0; 0.7 with several samples].")
@click.option("--top-p", type=float, default=1.0, show_default=True)
@click.option("--seed", type=int, default=None, help="Base seed; generation k of an item uses seed + k.")
@click.option("--samples", type=int, default=None,
              help="Generations per item, answer by majority vote [default: 1; 11 for ensemble-refinement].")
@click.option("--strategy", type=click.Choice(STRATEGIES), default=STRATEGIES[0], show_default=True,
              help="How several samples make one answer.")
@click.option("--refine-samples", type=int, default=33, show_default=True,
              help="Refinement generations per item (ensemble-refinement).")
@click.option("--refine-prompt", default="er_refine", show_default=True,
              help="Refinement template with a {reasonings} field (ensemble-refinement).")
@click.option("--fewshot-k", type=int, default=3, show_default=True,
              help="Worked examples in a few-shot prompt (--prompt fewshot).")
@click.option("--fewshot-seed", type=int, default=0, show_default=True, help="Seed of the exemplar draw.")
@click.option("--exemplars", "exemplars_file", default=None, type=click.Path(dir_okay=False),
              help="Exemplar file for few-shot prompts (default: eval_data/fewshot_exemplars.jsonl).")
@click.option("--separate-requests", is_flag=True,
              help="One request per generation instead of asking for n generations in one request.")
@click.option("--concurrency", type=int, default=None,
              help=f"Requests in flight (default: {DEFAULT_CONCURRENCY}, or 4 for the embedded llama.cpp server).")
@click.option("--rps", type=float, default=None, help="At most this many requests per second (hosted APIs).")
@click.option("--limit", type=int, default=None, help="First N items of each file.")
@click.option("--results-dir", default="results", show_default=True)
@click.option("--task-folder", default=None, help="Folder under results/ (default: the model id).")
@click.option("--run-name", default=None, help="Run folder name (default: prompt and settings hash).")
@click.option("--timeout", "timeout_s", type=float, default=600.0, show_default=True, help="Per-request timeout, s.")
@click.option("--max-attempts", type=int, default=5, show_default=True, help="Tries per request.")
@click.option("--skip-invalid", is_flag=True, help="Run the valid records of a file that has invalid ones.")
@click.option("--quiet", is_flag=True, help="No progress bar (for CI logs).")
def run(eval_files, endpoints, server_name, model, api_key, prompt, extractor, scorers, scorer_args, adapter,
        max_new_tokens, temperature, top_p,
        seed, samples, strategy, refine_samples, refine_prompt, fewshot_k, fewshot_seed, exemplars_file, separate_requests, concurrency, rps, limit,
        results_dir, task_folder, run_name, timeout_s, max_attempts, skip_invalid, quiet):
    """Evaluate a served model on benchmark files; saves every sample under results/.

    Running the same command again resumes: finished samples are kept and not
    requested again; failed ones are retried.
    """
    backend = None
    endpoints = list(endpoints)
    try:
        if not endpoints:
            handle = resolve_endpoint(server_name)
            endpoints, backend = [handle.base_url], handle.backend
            model = model or handle.model
    except ServerError as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}")
        sys.exit(2)
    try:
        scorer_options = parse_scorer_args(scorer_args)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--scorer-arg") from None
    config = RunConfig(
        eval_files=list(eval_files), endpoint=endpoints[0], endpoints=endpoints[1:], model=model, api_key=api_key,
        backend=backend, prompt=prompt, extractor=extractor, scorers=list(scorers) or None,
        scorer_options=scorer_options, adapter=adapter,
        params=GenerationParams(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed),
        concurrency=concurrency, rps=rps, limit=limit, results_dir=results_dir, task_folder=task_folder,
        run_name=run_name, timeout_s=timeout_s, max_attempts=max_attempts, skip_invalid=skip_invalid,
        samples=samples, strategy=strategy, refine_samples=refine_samples, refine_prompt=refine_prompt,
        n_per_request=not separate_requests, fewshot_k=fewshot_k, fewshot_seed=fewshot_seed,
        exemplars_file=exemplars_file,
    )
    show = not quiet and (console.is_terminal or os.environ.get("EVALKIT_PROGRESS") == "1")
    bar = Progress(TextColumn("[bold]evaluating"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                   TextColumn("errors {task.fields[errors]} retries {task.fields[retries]}"), TimeElapsedColumn(),
                   TextColumn("eta"), TimeRemainingColumn(), console=console, disable=not show)
    live = RunProgress()
    state = {"task": None, "shown": 0.0}

    def on_start(total: int, already: int) -> None:
        if already:
            console.print(f"resuming {live.run_dir}: {already} of {total} samples already done")
        live.started = time.perf_counter()
        state["task"] = bar.add_task("run", total=total, completed=already, rate="", errors=0, retries=0)

    def on_sample(record) -> None:
        now = time.perf_counter()
        if now - state["shown"] < 0.2 and live.done + live.resumed < live.total:
            return  # refresh the fields five times a second, not at every sample
        state["shown"] = now
        elapsed = max(now - live.started, 1e-9)
        bar.update(state["task"], completed=live.resumed + live.done, errors=live.errors, retries=live.retries,
                   rate=f"{live.requests / elapsed:.1f} req/s {live.completion_tokens / elapsed:.0f} tok/s")

    try:
        with bar:
            result = run_eval(config, on_sample=on_sample, on_start=on_start, progress=live)
    except DatasetError as exc:
        if any(p.line > 0 for p in exc.problems):
            console.print(f"[red]invalid data[/] (nothing was sent; fix these or pass --skip-invalid):\n{escape(str(exc))}")
        else:
            console.print(f"[red]cannot read the data[/] (nothing was sent):\n{escape(str(exc))}")
        sys.exit(2)
    except EndpointDown as exc:
        console.print(f"[red]endpoint down:[/] {escape(str(exc))}\n{live.retries} retries; resume with: {_resume_hint()}")
        sys.exit(1)
    except (RequestError, ValueError, FileNotFoundError) as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}")
        sys.exit(1)
    except KeyboardInterrupt:
        where = f" in {live.run_dir / 'samples.jsonl'}" if live.run_dir else ""
        console.print(f"[yellow]stopped[/]: {live.resumed + live.done - live.errors} of {live.total} samples are "
                      f"saved{where}; resume with: {_resume_hint()}")
        sys.exit(130)
    out = stdout_console()
    out.print(summary_table(result.summary, title=f"{result.run_dir}"))
    extra = scores_table(result.summary)
    if extra is not None:
        out.print(extra)
    console.print(f"{result.requested} requested, {result.resumed} resumed, {result.errors} errors, "
                  f"{result.retries} retries in {result.wall_s:.1f}s; samples: {result.run_dir / 'samples.jsonl'}")
    if len(result.endpoints) > 1:
        console.print("requests per endpoint: " +
                      ", ".join(f"{e['endpoint']} {e['requests']}" for e in result.endpoints))
    if result.errors:
        console.print(f"[yellow]{result.errors} samples failed (counted as errors, not wrong answers); "
                      f"retry them with: {_resume_hint()}[/]")
        sys.exit(3)
