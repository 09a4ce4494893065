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

from evalkit.api import API_KEY_ENV, ServerError, resolve_server
from evalkit.cli import stdout_console
from evalkit.client import RequestError, redact
from evalkit.datasets import DatasetError, Problem
from evalkit.limits import DEFAULT_MAX_RECORD_MB, DEFAULT_MAX_RESPONSE_MB
from evalkit.lock import RunLocked
from evalkit.order import UNKNOWN_RULES
from evalkit.progress import DEFAULT_INTERVAL_S, ProgressLines
from evalkit.prompts import TemplateError, load_template
from evalkit.records import GenerationParams
from evalkit.registry import resolve_benchmark_file
from evalkit.report_extras import truncation_hints
from evalkit.request_controls import json_object, text_or_file
from evalkit.runs import write_failure_message
from evalkit.runner import DEFAULT_CONCURRENCY, EndpointDown, RunConfig, RunProgress, run_eval
from evalkit.sampling import ENSEMBLE_REFINEMENT, STRATEGIES
from evalkit.scoring.base import is_secret_option, secret_option_values
from evalkit.scoring.rubric_judge import JUDGE_API_KEY_ENV
from evalkit.stats import wilson_interval
from evalkit.store import parse_json
from evalkit.suites import Suite, SuiteError, check_prompt, load_suite

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


SECRET_FLAGS = ("--api-key", "--judge-api-key")
SCORER_ARG = "--scorer-arg"


def _secret_scorer_arg(value: str) -> bool:
    """True for a ``SCORER.KEY=VALUE`` whose KEY holds a secret (``judge.api_key=...``)."""
    target = value.partition("=")[0]
    return is_secret_option(target.rpartition(".")[2])


def without_secrets(argv: list[str], secret_flags: tuple[str, ...] = SECRET_FLAGS) -> tuple[list[str], bool]:
    """ARGV with every secret flag and its value left out (a key flag, or a ``--scorer-arg`` that
    sets a secret option such as ``judge.api_key``), and whether one was there."""
    out, dropped, i = [], False, 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg in secret_flags or (arg == SCORER_ARG and i < len(argv) and _secret_scorer_arg(argv[i])):
            dropped = True
            i += 1  # its value too
            continue
        if any(arg.startswith(flag + "=") for flag in secret_flags) or \
                (arg.startswith(SCORER_ARG + "=") and _secret_scorer_arg(arg[len(SCORER_ARG) + 1:])):
            dropped = True
            continue
        out.append(arg)
    return out, dropped


def scores_table(summary: dict) -> Table | None:
    """Every named score other than the choice scorer's (shown as accuracy above), by its metric."""
    rows = [(dataset, name, s) for dataset, d in summary.items() for name, s in d.scores.items() if name != "correct"]
    if not rows:
        return None
    table = Table(title="scores (each by its metric over scored samples; `evalkit report` adds CIs)",
                  title_justify="left")
    for col, justify in (("dataset", "left"), ("score", "left"), ("metric", "left"), ("n", "right"),
                         ("value", "right"), ("not scored", "right")):
        table.add_column(col, justify=justify, no_wrap=True)
    for dataset, name, s in rows:
        value = "-" if s.value is None else (f"{100 * s.value:.1f}%" if s.binary else f"{s.value:.3f}")
        table.add_row(dataset, name, s.to_dict()["metric"]["name"], str(s.n), value, str(s.errors))
    return table


def parse_scorer_args(args: tuple[str, ...]) -> dict[str, dict[str, object]]:
    """``SCORER.KEY=VALUE`` options as {scorer: {key: value}}; values that read as JSON are parsed."""
    out: dict[str, dict[str, object]] = {}
    for arg in args:
        target, eq, value = arg.partition("=")
        scorer, dot, key = target.rpartition(".")
        if not eq or not dot or not scorer or not key:
            raise ValueError(f"{arg!r} is not SCORER.KEY=VALUE")
        try:
            parsed: object = parse_json(value)
        except ValueError:
            parsed = value
        out.setdefault(scorer, {})[key] = parsed
    return out


SKIPPED_SHOWN = 5  # invalid records named on the terminal; the manifest lists them all


def skipped_message(problems: list[Problem], run_dir) -> str:
    """What --skip-invalid left out: how many records, and the first few as file:line: reasons."""
    by_record: dict[tuple[str, int], list[str]] = {}
    for p in problems:
        by_record.setdefault((str(p.path), p.line), []).append(p.message)
    n = len(by_record)
    where = f" (all listed in {run_dir / 'manifest.json'})" if run_dir is not None else ""
    lines = [f"[yellow]skipped {n} invalid record{'s' if n != 1 else ''}[/] (--skip-invalid){escape(where)}:"]
    lines += [f"  {escape(f'{path}:{line}: ' + '; '.join(reasons))}"
              for (path, line), reasons in list(by_record.items())[:SKIPPED_SHOWN]]
    if n > SKIPPED_SHOWN:
        lines.append(f"  ... and {n - SKIPPED_SHOWN} more")
    return "\n".join(lines)


def suite_inputs(ctx: click.Context, name: str, data_dir: str, eval_files: list[str], prompt: str | None
                 ) -> tuple[Suite, list[str], str, dict]:
    """The suite's files (plus any --eval-file), its prompt unless --prompt was given, and the generation
    settings it sets that the command line did not."""
    suite = load_suite(name)
    files = [str(p) for p in suite.files(data_dir)] + eval_files
    prompt = prompt or suite.prompt
    check_prompt(suite, load_template(prompt))
    given = {k: v for k, v in suite.generation.items()
             if ctx.get_parameter_source(k) in (click.core.ParameterSource.DEFAULT, None)}
    return suite, files, prompt, given


def _resume_hint() -> str:
    """The command that resumes this run, as typed, minus any API key (never printed)."""
    argv, had_key = without_secrets(sys.argv[1:])
    if not argv:
        return "the same command"
    hint = "evalkit " + " ".join(shlex.quote(a) for a in argv)
    if had_key:
        hint += (f" (with the same keys in ${API_KEY_ENV} or --api-key for the model, "
                 f"${JUDGE_API_KEY_ENV} or judge.api_key_env=NAME for a judge)")
    return hint


@click.command()
@click.option("--eval-file", "eval_files", multiple=True, type=click.Path(dir_okay=False),
              help="Benchmark file, or a registered name such as medqa (repeatable; see `evalkit data list`).")
@click.option("--suite", default=None,
              help="Run a suite of registered benchmarks (e.g. medreason: eval_data/suites/NAME.json) with its "
                   "prompt and generation settings; flags given explicitly override them.")
@click.option("--data-dir", default="eval_data", show_default=True, type=click.Path(file_okay=False),
              help="Where registered benchmarks (a suite's, or --eval-file NAME) are, as `evalkit data fetch` "
                   "puts them.")
@click.option("--endpoint", "endpoints", multiple=True,
              help="Server base URL, e.g. http://127.0.0.1:30000/v1 (repeatable: requests are balanced over all; "
                   "default: the recorded server).")
@click.option("--server", "server_name", default=None, help="Name of a server started by `evalkit serve`.")
@click.option("--model", default=None, help="Model id to request (default: the one the server lists).")
@click.option("--api-key", envvar=API_KEY_ENV, default=None, help=f"Or ${API_KEY_ENV}. Never saved.")
@click.option("--prompt", default=None,
              help="Template name under prompts/ or a file path [default: strict; er_sample for ensemble-refinement].")
@click.option("--extractor", default="evalkit", show_default=True, help="Answer extractor of the choice scorer.")
@click.option("--scorer", "scorers", multiple=True,
              help="Scorer by name (choice, judge) or module:attr (repeatable) [default: choice for "
                   "multiple-choice items]. Changing only the scorers rescores the saved generations.")
@click.option("--scorer-arg", "scorer_args", multiple=True, metavar="SCORER.KEY=VALUE",
              help="An option for a scorer, e.g. choice.extractor=medreason (repeatable). A judge's key: "
                   f"${JUDGE_API_KEY_ENV}, or judge.api_key_env=NAME (a key given here is never shown or saved).")
@click.option("--adapter", default=None,
              help="How records become items: an adapter name or module:attr [default: the registry's, else mcq].")
@click.option("--max-new-tokens", type=int, default=1024, show_default=True)
@click.option("--temperature", type=float, default=None,
              help="Sampling temperature [default: 0; 0.7 with several samples].")
@click.option("--top-p", type=float, default=1.0, show_default=True)
@click.option("--seed", type=int, default=None, help="Base seed; generation k of an item uses seed + k.")
@click.option("--system-prompt", default=None, metavar="TEXT|@FILE", help="A system message before each prompt.")
@click.option("--stop", "stop", multiple=True, help="Stop sequence (repeatable).")
@click.option("--top-k", type=int, default=None, help="Top-k sampling (sent only when given).")
@click.option("--min-p", type=float, default=None, help="Min-p sampling (sent only when given).")
@click.option("--presence-penalty", type=float, default=None)
@click.option("--frequency-penalty", type=float, default=None)
@click.option("--chat-template-kwargs", default=None, metavar="JSON|@FILE",
              help='Sent as the body\'s chat_template_kwargs (SGLang, vLLM), e.g. {"enable_thinking": false}.')
@click.option("--extra-body", default=None, metavar="JSON|@FILE",
              help="JSON object merged into every request body, for anything else the server takes.")
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
@click.option("--order-from", default=None, metavar="RUN|auto",
              help="Send the items longest-predicted first, by the output lengths of an earlier run (its directory), "
                   "or of the latest finished run over the same items and prompt (auto). Changes only timing.")
@click.option("--order-unknown", type=click.Choice(UNKNOWN_RULES), default=UNKNOWN_RULES[0], show_default=True,
              help="Where --order-from puts items the earlier run has no length for: first, or at the median length.")
@click.option("--rps", type=float, default=None, help="At most this many requests per second (hosted APIs).")
@click.option("--limit", type=int, default=None, help="First N items of each file.")
@click.option("--results-dir", default="results", show_default=True)
@click.option("--task-folder", default=None, help="Folder under results/ (default: the model id).")
@click.option("--run-name", default=None, help="Run folder name (default: prompt and settings hash).")
@click.option("--timeout", "timeout_s", type=float, default=600.0, show_default=True, help="Per-request timeout, s.")
@click.option("--max-attempts", type=int, default=5, show_default=True, help="Tries per request.")
@click.option("--skip-invalid", is_flag=True, help="Run the valid records of a file that has invalid ones.")
@click.option("--wait-for-lock", is_flag=True,
              help="If another run is writing the same run directory, wait for it and then resume (default: refuse).")
@click.option("--max-response-mb", type=float, default=DEFAULT_MAX_RESPONSE_MB, show_default=True,
              help="A larger response body is an error on its sample.")
@click.option("--max-record-mb", type=float, default=DEFAULT_MAX_RECORD_MB, show_default=True,
              help="A longer line in a JSONL benchmark file is an error at its line.")
@click.option("--quiet", is_flag=True, help="No progress bar and no progress lines.")
@click.option("--progress-interval", type=click.FloatRange(0, min_open=True), default=DEFAULT_INTERVAL_S,
              show_default=True, help="Seconds between progress lines when stdout is not a terminal (logs).")
@click.pass_context
def run(ctx, eval_files, suite, data_dir, endpoints, server_name, model, api_key, prompt, extractor, scorers,
        scorer_args, adapter, max_new_tokens, temperature, top_p, seed, system_prompt, stop, top_k, min_p,
        presence_penalty, frequency_penalty, chat_template_kwargs, extra_body, samples, strategy, refine_samples,
        refine_prompt, fewshot_k, fewshot_seed, exemplars_file, separate_requests, concurrency, rps, limit,
        results_dir, task_folder, run_name, timeout_s, max_attempts, skip_invalid, wait_for_lock, max_response_mb,
        max_record_mb, quiet, progress_interval, order_from, order_unknown):
    """Evaluate a served model on benchmark files; saves every sample under results/.

    Running the same command again resumes: finished samples are kept and not
    requested again; failed ones are retried, and so are scores a model judge
    could not give because it did not answer.
    """
    eval_files = list(eval_files)
    suite_doc = None
    if suite:
        try:
            loaded_suite, eval_files, prompt, given = suite_inputs(ctx, suite, data_dir, eval_files, prompt)
        except (SuiteError, TemplateError) as exc:
            console.print(f"[red]error:[/] {escape(str(exc))}")
            sys.exit(2)
        if (samples or 1) > 1 or strategy == ENSEMBLE_REFINEMENT:
            given.pop("temperature", None)  # several samples need the sampling temperature, not greedy
        max_new_tokens, temperature, top_p = (given.get(k, v) for k, v in (
            ("max_new_tokens", max_new_tokens), ("temperature", temperature), ("top_p", top_p)))
        suite_doc = loaded_suite.to_manifest()
    elif not eval_files:
        raise click.UsageError("give --eval-file FILE (repeatable) or --suite NAME")
    try:
        controls = dict(system_prompt=text_or_file(system_prompt, "--system-prompt"), stop=tuple(stop), top_k=top_k,
                        min_p=min_p, presence_penalty=presence_penalty, frequency_penalty=frequency_penalty,
                        chat_template_kwargs=json_object(chat_template_kwargs, "--chat-template-kwargs"),
                        extra_body=json_object(extra_body, "--extra-body"))
        GenerationParams(**controls)  # checks the controls before anything else happens
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    try:
        scorer_options = parse_scorer_args(scorer_args)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--scorer-arg") from None
    settings: dict = dict(
        eval_files=[str(resolve_benchmark_file(f, data_dir)) for f in eval_files], api_key=api_key,
        prompt=prompt, extractor=extractor, scorers=list(scorers) or None,
        scorer_options=scorer_options, adapter=adapter,
        params=GenerationParams(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed,
                                **controls),
        concurrency=concurrency, rps=rps, limit=limit, results_dir=results_dir, task_folder=task_folder,
        run_name=run_name, timeout_s=timeout_s, max_attempts=max_attempts, skip_invalid=skip_invalid,
        samples=samples, strategy=strategy, refine_samples=refine_samples, refine_prompt=refine_prompt,
        n_per_request=not separate_requests, fewshot_k=fewshot_k, fewshot_seed=fewshot_seed,
        exemplars_file=exemplars_file, wait_for_lock=wait_for_lock, max_response_mb=max_response_mb,
        max_record_mb=max_record_mb, suite=suite_doc, order_from=order_from,
        order_unknown=order_unknown,
    )
    if model:
        settings["model"] = model
    if endpoints:
        config = RunConfig(endpoint=endpoints[0], endpoints=list(endpoints[1:]), **settings)
    else:
        try:
            config = RunConfig.on_server(resolve_server(server_name), **settings)
        except ServerError as exc:
            console.print(f"[red]error:[/] {escape(str(exc))}")
            sys.exit(2)
    try:
        config.resolved().validate()
    except ValueError as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}")
        sys.exit(2)

    secrets = [api_key, *secret_option_values(scorer_options), os.environ.get(JUDGE_API_KEY_ENV)]
    secrets += [os.environ.get(str(o["api_key_env"])) for o in scorer_options.values() if o.get("api_key_env")]

    def say(message: str) -> None:
        """Print MESSAGE (rich markup) with every API key (the model's, a judge's), should anything carry it, masked."""
        console.print(redact(message, secrets))

    show = not quiet and (console.is_terminal or os.environ.get("EVALKIT_PROGRESS") == "1")
    bar = Progress(TextColumn("[bold]evaluating"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                   TextColumn("errors {task.fields[errors]} retries {task.fields[retries]}"), TimeElapsedColumn(),
                   TextColumn("eta"), TimeRemainingColumn(), console=console, disable=not show)
    live = RunProgress()
    state = {"task": None, "shown": 0.0}
    # Where stdout is a log (nohup, Slurm, CI), steady plain lines instead of a bar it cannot show.
    lines = ProgressLines(live, sys.stdout, progress_interval) if not quiet and not sys.stdout.isatty() else None

    def on_start(total: int, already: int) -> None:
        if live.order:
            console.print(escape(live.order))
        if live.skipped:
            console.print(skipped_message(live.skipped, live.run_dir), highlight=False)
        if already:
            say(f"resuming {escape(str(live.run_dir))}: {already} of {total} samples already done")
        live.started = time.perf_counter()
        state["task"] = bar.add_task("run", total=total, completed=already, rate="", errors=0, retries=0)
        if lines is not None:
            lines.begin()

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
            try:
                result = run_eval(config, on_sample=on_sample, on_start=on_start, progress=live,
                                  on_notice=lambda m: say(f"[yellow]note:[/] {escape(m)}"))
            finally:
                if lines is not None:
                    lines.close()
    except DatasetError as exc:
        if any(p.line > 0 for p in exc.problems):
            console.print(f"[red]invalid data[/] (nothing was sent; fix these or pass --skip-invalid):\n{escape(str(exc))}")
        else:
            console.print(f"[red]cannot use the data[/] (nothing was sent):\n{escape(str(exc))}")
        sys.exit(2)
    except EndpointDown as exc:
        say(f"[red]endpoint down:[/] {escape(str(exc))}\n{live.retries} retries; resume with: {escape(_resume_hint())}")
        sys.exit(1)
    except RunLocked as exc:
        say(f"[red]busy:[/] {escape(str(exc))}")
        sys.exit(4)
    except (RequestError, ValueError, FileNotFoundError) as exc:
        say(f"[red]error:[/] {escape(str(exc))}")
        sys.exit(1)
    except OSError as exc:
        say(f"[red]cannot write results:[/] {escape(write_failure_message(exc, live))}; resume with: "
            f"{escape(_resume_hint())}")
        sys.exit(1)
    except KeyboardInterrupt:
        where = f" in {live.run_dir / 'samples.jsonl'}" if live.run_dir else ""
        say(f"[yellow]stopped[/]: {live.resumed + live.done - live.errors} of {live.total} samples are "
            f"saved{escape(where)}; resume with: {escape(_resume_hint())}")
        sys.exit(130)
    out = stdout_console()
    out.print(summary_table(result.summary, title=f"{result.run_dir}"))
    extra = scores_table(result.summary)
    if extra is not None:
        out.print(extra)
    for hint in truncation_hints(((name, d.n, d.truncated) for name, d in result.summary.items()), max_new_tokens):
        console.print(f"[yellow]hint:[/] {escape(hint)}")
    console.print(f"{result.requested} requested, {result.resumed} resumed, {result.errors} errors, "
                  f"{result.retries} retries in {result.wall_s:.1f}s; samples: {result.run_dir / 'samples.jsonl'}")
    if len(result.endpoints) > 1:
        console.print("requests per endpoint: " +
                      ", ".join(f"{e['endpoint']} {e['requests']}" for e in result.endpoints))
    if result.scores_to_retry:
        say(f"[yellow]{result.scores_to_retry} samples could not be scored because the judge did not answer; "
            f"they count as missing until they are: score them with: {escape(_resume_hint())}[/]")
    if result.errors:
        say(f"[yellow]{result.errors} samples failed (counted as errors, not wrong answers); "
            f"retry them with: {escape(_resume_hint())}[/]")
    if result.errors or result.scores_to_retry:
        sys.exit(3)
