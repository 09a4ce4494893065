"""``evalkit run``: evaluate a served model on one or more benchmark files, or a suite.

The command parses flags, turns them into tasks and run settings (only the flags given:
every default is the config types', and ``--help`` shows their values), calls
``api.evaluate``, and prints what came back. It imports evalkit.api and evalkit.config only.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

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

from evalkit import api
from evalkit.cli.common import (EXIT_BUSY, EXIT_INCOMPLETE, EXIT_INTERRUPTED, parse_scorer_args,  # noqa: F401
                                scores_table, stdout_console, summary_table)
from evalkit.cli.controls import json_object, text_or_file
from evalkit.cli.export import check_run_ids, send_to_trackers
from evalkit.cli.options import ConfigOption, StrategyName, config_option, tracker_options
from evalkit.cli.progress import ProgressLines
from evalkit.config import (API_KEY_ENV, DEFAULT_CONCURRENCY, DEFAULT_PROMPT, ER_PROMPT, ER_SAMPLES, EXEMPLARS_FILE,
                            JUDGE_API_KEY_ENV, MANIFEST, MULTI_SAMPLE_TEMPERATURE, SAMPLES, STRATEGIES, UNKNOWN_RULES,
                            GenerationParams, RunConfig)

console = Console(stderr=True, soft_wrap=True)  # long paths stay on one line in logs


SECRET_FLAGS = ("--api-key", "--judge-api-key")
SCORER_ARG = "--scorer-arg"


def _secret_scorer_arg(value: str) -> bool:
    """True for a ``SCORER.KEY=VALUE`` whose KEY holds a secret (``judge.api_key=...``)."""
    target = value.partition("=")[0]
    return api.settings.is_secret(target.rpartition(".")[2])


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


SKIPPED_SHOWN = 5  # invalid records named on the terminal; the manifest lists them all


def skipped_message(problems: list, run_dir) -> str:
    """What --skip-invalid left out: how many records, and the first few as file:line: reasons."""
    by_record: dict[tuple[str, int], list[str]] = {}
    for p in problems:
        by_record.setdefault((str(p.path), p.line), []).append(p.message)
    n = len(by_record)
    where = f" (all listed in {run_dir / MANIFEST})" if run_dir is not None else ""
    lines = [f"[yellow]skipped {n} invalid record{'s' if n != 1 else ''}[/] (--skip-invalid){escape(where)}:"]
    lines += [f"  {escape(f'{path}:{line}: ' + '; '.join(reasons))}"
              for (path, line), reasons in list(by_record.items())[:SKIPPED_SHOWN]]
    if n > SKIPPED_SHOWN:
        lines.append(f"  ... and {n - SKIPPED_SHOWN} more")
    return "\n".join(lines)


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



def default_from(cls: type, name: str, **option: Any) -> dict[str, Any]:
    """Keyword arguments of a click option whose default, shown by --help, is field NAME of CLS."""
    return {"cls": ConfigOption, "config": (cls, name), **option}


# Flags that are RunConfig fields under the same name; the generation flags are GenerationParams fields.
RUN_FLAGS = ("model", "api_key", "prompt", "extractor", "adapter", "concurrency", "rps", "limit", "results_dir",
             "task_folder", "run_name", "timeout_s", "max_attempts", "skip_invalid", "wait_for_lock",
             "max_response_mb", "max_record_mb", "samples", "strategy", "refine_samples", "refine_prompt",
             "fewshot_k", "fewshot_seed", "exemplars_file", "order_from", "order_unknown")
GENERATION_FLAGS = ("max_new_tokens", "temperature", "top_p", "seed", "top_k", "min_p", "presence_penalty",
                    "frequency_penalty")
_CONCURRENCY_BY_BACKEND = ", ".join(f"{b.default_concurrency} on {name}" for name, b in api.backends().items()
                                    if b.default_concurrency)


@click.command()
@click.option("--eval-file", "eval_files", multiple=True, type=click.Path(dir_okay=False),
              help="Benchmark file, or a registered name such as medqa (repeatable; see `evalkit data list`).")
@click.option("--suite", default=None,
              help="Run a suite of registered benchmarks (eval_data/suites/NAME.json, e.g. medagents_hard) with its "
                   "prompt and generation settings; flags given explicitly override them.")
@config_option("--data-dir", source="DEFAULT_DATA_DIR", type=click.Path(file_okay=False),
               help="Where registered benchmarks (a suite's, or --eval-file NAME) are, as `evalkit data fetch` "
                    "puts them.")
@click.option("--endpoint", "endpoints", multiple=True,
              help="Server base URL, e.g. http://127.0.0.1:30000/v1 (repeatable: requests are balanced over all; "
                   "default: the recorded server).")
@click.option("--server", "server_name", default=None, help="Name of a server started by `evalkit serve`.")
@click.option("--model", default=None, help="Model id to request (default: the one the server lists).")
@click.option("--api-key", envvar=API_KEY_ENV, default=None, help=f"Or ${API_KEY_ENV}. Never saved.")
@click.option("--prompt", default=None,
              help=f"Template name under prompts/ or a file path [default: the benchmark's own where its registry "
                   f"row or adapter names one, else {DEFAULT_PROMPT}; {ER_PROMPT} for "
                   "ensemble-refinement].")
@click.option("--extractor", **default_from(RunConfig, "extractor", help="Answer extractor of the choice scorer."))
@click.option("--scorer", "scorers", multiple=True,
              help="Scorer by name (choice, judge) or module:attr (repeatable) [default: the items' "
                   "own: choice for multiple-choice items, a target type's registered scorer for others]. "
                   "Changing only the scorers rescores the saved generations.")
@click.option("--scorer-arg", "scorer_args", multiple=True, metavar="SCORER.KEY=VALUE",
              help="An option for a scorer, e.g. choice.extractor=NAME (repeatable). A judge's key: "
                   f"${JUDGE_API_KEY_ENV}, or judge.api_key_env=NAME (a key given here is never shown or saved).")
@click.option("--adapter", default=None,
              help="How records become items: an adapter name or module:attr [default: the registry's, else mcq].")
@click.option("--max-new-tokens", type=int, **default_from(GenerationParams, "max_new_tokens"))
@click.option("--temperature", type=float, default=None,
              help=f"Sampling temperature [default: 0; {MULTI_SAMPLE_TEMPERATURE} with several samples].")
@click.option("--top-p", type=float, **default_from(GenerationParams, "top_p"))
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
              help=f"Generations per item, answer by majority vote [default: 1; {ER_SAMPLES} for "
                   "ensemble-refinement].")
@click.option("--strategy", type=StrategyName(),
              **default_from(RunConfig, "strategy", help="How several samples make one answer: "
                             f"{', '.join(STRATEGIES)}, or module:attr naming your own (a function (samples, refine, refine_samples) -> "
                             "[Stage]; see evalkit.run.sampling)."))
@click.option("--refine-samples", type=int,
              **default_from(RunConfig, "refine_samples", help="Refinement generations per item "
                             "(ensemble-refinement)."))
@click.option("--refine-prompt", **default_from(RunConfig, "refine_prompt", help="Refinement template with a "
                                                "{reasonings} field (ensemble-refinement)."))
@click.option("--fewshot-k", type=int, **default_from(RunConfig, "fewshot_k", help="Worked examples in a few-shot "
                                                      "prompt (--prompt fewshot)."))
@click.option("--fewshot-seed", type=int, **default_from(RunConfig, "fewshot_seed", help="Seed of the exemplar draw."))
@click.option("--exemplars", "exemplars_file", default=None, type=click.Path(dir_okay=False),
              help=f"Exemplar file for few-shot prompts (default: the bundled eval_data/{EXEMPLARS_FILE}).")
@click.option("--separate-requests", is_flag=True,
              help="One request per generation instead of asking for n generations in one request.")
@click.option("--concurrency", type=int, default=None,
              help=f"Requests in flight (default: {DEFAULT_CONCURRENCY}; {_CONCURRENCY_BY_BACKEND}).")
@click.option("--order-from", default=None, metavar="RUN|auto",
              help="Send the items longest-predicted first, by the output lengths of an earlier run (its directory), "
                   "or of the latest finished run over the same items and prompt (auto). Changes only timing.")
@click.option("--order-unknown", type=click.Choice(UNKNOWN_RULES),
              **default_from(RunConfig, "order_unknown", help="Where --order-from puts items the earlier run has "
                             "no length for: first, or at the median length."))
@click.option("--rps", type=float, default=None, help="At most this many requests per second (hosted APIs).")
@click.option("--limit", type=int, default=None, help="First N items of each file.")
@click.option("--results-dir", **default_from(RunConfig, "results_dir"))
@click.option("--task-folder", default=None, help="Folder under results/ (default: the model id).")
@click.option("--run-name", default=None, help="Run folder name (default: prompt and settings hash).")
@click.option("--timeout", "timeout_s", type=float,
              **default_from(RunConfig, "timeout_s", help="Per-request timeout, s."))
@click.option("--max-attempts", type=int, **default_from(RunConfig, "max_attempts", help="Tries per request."))
@click.option("--skip-invalid", is_flag=True, help="Run the valid records of a file that has invalid ones.")
@click.option("--wait-for-lock", is_flag=True,
              help="If another run is writing the same run directory, wait for it and then resume (default: refuse).")
@click.option("--max-response-mb", type=float,
              **default_from(RunConfig, "max_response_mb", help="A larger response body is an error on its sample."))
@click.option("--max-record-mb", type=float,
              **default_from(RunConfig, "max_record_mb", help="A longer line in a JSONL benchmark file is an error "
                             "at its line."))
@click.option("--quiet", is_flag=True, help="No progress bar and no progress lines.")
@config_option("--progress-interval", type=click.FloatRange(0, min_open=True), source="PROGRESS_INTERVAL_S",
               help="Seconds between progress lines when stdout is not a terminal (logs).")
@tracker_options()
@click.pass_context
def run(ctx: click.Context, **flags: Any) -> None:
    """Evaluate a served model on benchmark files; saves every sample under results/.

    Running the same command again resumes: finished samples are kept and not
    requested again; failed ones are retried, and so are scores a model judge
    could not give because it did not answer.
    """
    given = given_flags(ctx, flags)
    check_run_ids(flags["trackers"], flags["tracker_run_ids"])
    tasks, suite = tasks_from_flags(flags)
    settings = settings_from_flags(given)
    where = {"endpoint": list(flags["endpoints"])} if flags["endpoints"] else {"server": flags["server_name"]}
    display = RunDisplay(quiet=flags["quiet"], interval_s=flags["progress_interval"],
                         secrets=run_secrets(flags["api_key"], settings.get("scorer_options", {})))
    evaluation = evaluate_or_exit(display, tasks, suite=suite, data_dir=flags["data_dir"], **where, **settings)
    code = print_results(evaluation, display)
    if flags["trackers"] and not send_to_trackers([r.run_dir for r in evaluation.runs], flags["trackers"],
                                                  flags["tracker_run_ids"], flags["log_samples"]):
        code = code or 1
    sys.exit(code)


def given_flags(ctx: click.Context, flags: dict[str, Any]) -> dict[str, Any]:
    """The flags given on the command line (or by their environment variable), not left at their default."""
    return {name: value for name, value in flags.items()
            if ctx.get_parameter_source(name) not in (click.core.ParameterSource.DEFAULT, None)}


def tasks_from_flags(flags: dict[str, Any]) -> tuple[list, Any]:
    """The tasks of --suite (with any --eval-file run in its settings) or of each --eval-file, and the suite."""
    files = list(flags["eval_files"])
    if flags["suite"]:
        try:
            suite = api.load_suite(flags["suite"])
        except api.InputError as exc:
            _fail(exc)
        return api.from_suite(suite, extra_data=files), suite
    if not files:
        raise click.UsageError("give --eval-file FILE (repeatable) or --suite NAME")
    return [api.Task(f) for f in files], None


def settings_from_flags(given: dict[str, Any]) -> dict[str, Any]:
    """The run and generation settings the given flags set, as ``api.evaluate`` takes them (checked here,
    so a bad value is a usage error before anything else happens)."""
    settings = {k: given[k] for k in (*RUN_FLAGS, *GENERATION_FLAGS) if k in given}
    try:
        if "system_prompt" in given:
            settings["system_prompt"] = text_or_file(given["system_prompt"], "--system-prompt")
        for name, flag in (("chat_template_kwargs", "--chat-template-kwargs"), ("extra_body", "--extra-body")):
            if name in given:
                settings[name] = json_object(given[name], flag)
        if "stop" in given:
            settings["stop"] = tuple(given["stop"])
        GenerationParams(**{k: v for k, v in settings.items() if k in GENERATION_CONTROLS})  # checks the controls
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if "scorers" in given:
        settings["scorers"] = list(given["scorers"])
    if "scorer_args" in given:
        try:
            settings["scorer_options"] = parse_scorer_args(given["scorer_args"])
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--scorer-arg") from None
    if given.get("separate_requests"):
        settings["n_per_request"] = False
    return settings


GENERATION_CONTROLS = ("system_prompt", "stop", "chat_template_kwargs", "extra_body")


def run_secrets(api_key: str | None, scorer_options: dict) -> list[str | None]:
    """Every key a message could carry: the model's, a judge's (given, or in the variable it is read from)."""
    secrets = [api_key, *api.settings.secrets(scorer_options), os.environ.get(JUDGE_API_KEY_ENV)]
    return secrets + [os.environ.get(str(o["api_key_env"])) for o in scorer_options.values() if o.get("api_key_env")]


def _fail(exc: Exception, code: int = 2) -> None:
    console.print(f"[red]error:[/] {escape(str(exc))}")
    sys.exit(code)


class RunDisplay:
    """The progress of a run on the terminal (a bar), or in a log (plain lines), and its messages."""

    def __init__(self, *, quiet: bool, interval_s: float, secrets: list[str | None]):
        self.secrets = secrets
        self.live = api.RunProgress()
        show = not quiet and (console.is_terminal or os.environ.get("EVALKIT_PROGRESS") == "1")
        self.bar = Progress(TextColumn("[bold]evaluating"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[rate]}"),
                            TextColumn("errors {task.fields[errors]} retries {task.fields[retries]}"),
                            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=console,
                            disable=not show)
        # Where stdout is a log (nohup, Slurm, CI), steady plain lines instead of a bar it cannot show.
        self.lines = ProgressLines(self.live, sys.stdout, interval_s) if not quiet and not sys.stdout.isatty() else None
        self.task = None
        self.shown = 0.0

    def say(self, message: str) -> None:
        """Print MESSAGE (rich markup) with every API key (the model's, a judge's), should anything carry it, masked."""
        for secret in self.secrets:
            if secret:
                message = message.replace(secret, "***")
        console.print(message)

    def callbacks(self) -> dict[str, Any]:
        """The callbacks ``api.evaluate`` passes to each run."""
        return {"on_start": self.on_start, "on_sample": self.on_sample, "progress": self.live,
                "on_notice": lambda m: self.say(f"[yellow]note:[/] {escape(m)}")}

    def on_start(self, total: int, already: int) -> None:
        live = self.live
        if live.order:
            console.print(escape(live.order))
        if live.skipped:
            console.print(skipped_message(live.skipped, live.run_dir), highlight=False)
        if already:
            self.say(f"resuming {escape(str(live.run_dir))}: {already} of {total} samples already done")
        live.started = time.perf_counter()
        self.task = self.bar.add_task("run", total=total, completed=already, rate="", errors=0, retries=0)
        if self.lines is not None:
            self.lines.begin()

    def on_sample(self, record: Any) -> None:
        live, now = self.live, time.perf_counter()
        if now - self.shown < 0.2 and live.done + live.resumed < live.total:
            return  # refresh the fields five times a second, not at every sample
        self.shown = now
        elapsed = max(now - live.started, 1e-9)
        self.bar.update(self.task, completed=live.resumed + live.done, errors=live.errors, retries=live.retries,
                        rate=f"{live.requests / elapsed:.1f} req/s {live.completion_tokens / elapsed:.0f} tok/s")


def evaluate_or_exit(display: RunDisplay, tasks: list, **arguments: Any) -> Any:
    """``api.evaluate(TASKS, **ARGUMENTS)`` with the display's callbacks; each failure is a message and an exit code
    (2: nothing was sent, 1: the run stopped, 4: another run holds the directory, 130: interrupted)."""
    live = display.live
    try:
        with display.bar:
            try:
                return api.evaluate(tasks, **arguments, **display.callbacks())
            finally:
                if display.lines is not None:
                    display.lines.close()
    except api.InputError as exc:  # nothing was sent
        problems = exc.problems
        if problems is not None and any(p.line > 0 for p in problems):
            console.print(f"[red]invalid data[/] (nothing was sent; fix these or pass --skip-invalid):\n{escape(str(exc))}")
        elif problems is not None:
            console.print(f"[red]cannot use the data[/] (nothing was sent):\n{escape(str(exc))}")
        else:
            _fail(exc)
        sys.exit(2)
    except api.ServerError as exc:  # no server to send to
        _fail(exc)
    except api.UnreachableError as exc:
        display.say(f"[red]endpoint down:[/] {escape(str(exc))}\n{live.retries} retries; resume with: "
                    f"{escape(_resume_hint())}")
        sys.exit(1)
    except api.BusyError as exc:
        display.say(f"[red]{'stopped' if exc.lost else 'busy'}:[/] {escape(str(exc))}")
        sys.exit(EXIT_BUSY)
    except (api.EvalkitError, ValueError, FileNotFoundError) as exc:
        display.say(f"[red]error:[/] {escape(str(exc))}")
        sys.exit(1)
    except OSError as exc:
        display.say(f"[red]cannot write results:[/] {escape(write_failure_message(exc, live))}; resume with: "
                    f"{escape(_resume_hint())}")
        sys.exit(1)
    except KeyboardInterrupt:
        where = f" in {live.run_dir / SAMPLES}" if live.run_dir else ""
        display.say(f"[yellow]stopped[/]: {live.resumed + live.done - live.errors} of {live.total} samples are "
                    f"saved{escape(where)}; resume with: {escape(_resume_hint())}")
        sys.exit(EXIT_INTERRUPTED)


def print_results(evaluation: Any, display: RunDisplay) -> int:
    """Each run's tables and counts; the exit code: 3 when samples failed or wait for a judge, else 0."""
    out = stdout_console()
    code = 0
    for result, config in zip(evaluation.runs, evaluation.configs):
        out.print(summary_table(result.summary, title=f"{result.run_dir}"))
        extra = scores_table(result.summary)
        if extra is not None:
            out.print(extra)
        for hint in api.render(result, "hints", max_new_tokens=config.params.max_new_tokens):
            console.print(f"[yellow]hint:[/] {escape(hint)}")
        console.print(f"{result.requested} requested, {result.resumed} resumed, {result.errors} errors, "
                      f"{result.retries} retries in {result.wall_s:.1f}s; samples: {result.run_dir / SAMPLES}")
        if len(result.endpoints) > 1:
            console.print("requests per endpoint: " +
                          ", ".join(f"{e['endpoint']} {e['requests']}" for e in result.endpoints))
        if result.scores_to_retry:
            display.say(f"[yellow]{result.scores_to_retry} samples could not be scored because the judge did not "
                        f"answer; they count as missing until they are: score them with: {escape(_resume_hint())}[/]")
        if result.errors:
            display.say(f"[yellow]{result.errors} samples failed (counted as errors, not wrong answers); "
                        f"retry them with: {escape(_resume_hint())}[/]")
        if result.errors or result.scores_to_retry:
            code = EXIT_INCOMPLETE
    return code


def write_failure_message(exc: OSError, progress: Any) -> str:
    """One line for a run that could not write (read-only results, full disk): the first file that
    could not be written, and what was kept.

    EXC is the first failure (the run keeps it when later writes fail too); PROGRESS is the
    run's RunProgress (its run_dir, total, resumed, done, errors, and ``unwritten``: the end
    files that could not be updated after it).
    """
    run_dir = getattr(progress, "run_dir", None)
    where = exc.filename if exc.filename is not None else (run_dir or "results")
    reason = exc.strerror or type(exc).__name__
    if run_dir is None or not progress.total:
        return f"{where}: {reason}; nothing was written and no completion was requested"
    kept = progress.resumed + progress.done - progress.errors
    message = (f"{where}: {reason}; kept {kept} of {progress.total} answered samples in "
               f"{Path(run_dir) / SAMPLES} (complete lines only: a torn last line is cut on resume)")
    unwritten = list(getattr(progress, "unwritten", None) or ())
    if unwritten:
        message += f"; {' and '.join(unwritten)} could not be updated either"
        if MANIFEST in unwritten:
            message += " (the manifest still says the run is running)"
    return message
