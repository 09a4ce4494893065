"""``evalkit judge``: grade saved answers with a model judge, check it against human grades, rank two runs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from evalkit import api
from evalkit.cli.common import EXIT_BUSY, EXIT_INCOMPLETE, EXIT_INTERRUPTED, stdout_console
from evalkit.cli.options import config_option
from evalkit.cli.progress import ProgressLines
from evalkit.config import JUDGE_API_KEY_ENV, REQUEST_PER, PROGRESS_INTERVAL_S, JudgeSettings

console = Console(stderr=True, soft_wrap=True)  # messages are never wrapped, so logs grep well


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _ci(ci: tuple[float, float] | None) -> str:
    return "" if ci is None else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def agreement_table(result: dict[str, Any], title: str) -> Table:
    """Per axis: n, Spearman, Kendall tau-b, QWK with CIs, judge errors; a length-baseline row under each axis."""
    table = Table(title=title)
    for name in ("axis", "grader", "n", "spearman", "95% CI", "kendall", "95% CI ", "qwk", "95% CI  ",
                 "judge errors"):
        table.add_column(name, justify="left" if name in ("axis", "grader") else "right")
    for axis, a in result.items():
        table.add_row(axis, "judge", str(a.n), _num(a.spearman), _ci(a.spearman_ci), _num(a.kendall),
                      _ci(a.kendall_ci), _num(a.qwk), _ci(a.qwk_ci), str(a.judge_errors))
        if a.baseline is not None:
            b = a.baseline
            table.add_row("", "answer length", str(b.n), _num(b.spearman), _ci(b.spearman_ci), _num(b.kendall),
                          _ci(b.kendall_ci), _num(b.qwk), _ci(b.qwk_ci), "")
    return table


def confusion_table(axis: str, a: Any) -> Table:
    table = Table(title=f"{axis}: human grade (rows) x judge grade (columns)")
    table.add_column("human \\ judge")
    for c in a.categories:
        table.add_column(str(c), justify="right")
    for c, row in zip(a.categories, a.confusion):
        table.add_row(str(c), *(str(v) for v in row))
    return table


def scores_table(samples: list, score_names: list[str], title: str) -> Table:
    """Per score: how many were judged, judge errors, the mean value and the count of each value."""
    table = Table(title=title)
    for name in ("score", "judged", "errors", "mean", "values"):
        table.add_column(name, justify="left" if name in ("score", "values") else "right")
    for name in score_names:
        values = [(s.scores or {}).get(name, {}) for s in samples]
        ok = [v["value"] for v in values if v.get("value") is not None]
        counts: dict = {}
        for v in values:
            if v.get("value") is not None:
                counts[v.get("answer", v["value"])] = counts.get(v.get("answer", v["value"]), 0) + 1
        shown = ", ".join(f"{k}: {n}" for k, n in sorted(counts.items(), key=lambda kv: str(kv[0]))[:8])
        table.add_row(name, str(len(ok)), str(len(values) - len(ok)),
                      _num(sum(ok) / len(ok)) if ok else "-", shown)
    return table


@click.command("judge")
@click.argument("path", required=False, type=click.Path(path_type=Path))
@config_option("--rubric", source=(JudgeSettings, "rubric"),
               help="A shipped or registered rubric (e.g. grade4, medpalm2) or a rubric JSON file.")
@click.option("--judge-endpoint", "endpoints", multiple=True,
              help="Base URL of the judge's OpenAI-compatible server (ending in /v1); repeat for several.")
@click.option("--judge-server", "server_name", default=None, help="Name of a judge server started by `evalkit serve`.")
@click.option("--judge-model", "model", default=None, help="Judge model id (default: the one the server lists).")
@click.option("--judge-api-key", "api_key", default=None, envvar=JUDGE_API_KEY_ENV)
@click.option("--questions", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Long-form questions file, looked up by qid (needed for a graded-answers JSONL).")
@click.option("--pairwise", "pair", nargs=2, type=click.Path(exists=True, path_type=Path), default=None,
              help="RUN_A RUN_B: rank the two runs' answers item by item (both orders) instead of grading PATH.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the agreement (or pairwise) figures per axis to this JSON file.")
@click.option("--work-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the journal and judged samples go (default: the run directory, or results/judge/...).")
@click.option("--limit", type=int, default=None, help="Judge only the first N answers.")
@config_option("--concurrency", type=int, source=(JudgeSettings, "concurrency"), help="Judge requests in flight.")
@click.option("--rps", type=float, default=None, help="Judge requests per second at most.")
@config_option("--temperature", type=float, source=(JudgeSettings, "temperature"), help="Judge sampling temperature.")
@config_option("--max-tokens", type=int, source=(JudgeSettings, "max_tokens"))
@config_option("--max-attempts", type=int, source=(JudgeSettings, "max_attempts"),
               help="Judge replies asked per answer before it is recorded as a judge error.")
@config_option("--reference/--no-reference", source=(JudgeSettings, "reference"),
               help="Show the judge an item's reference answers, when it has some.")
@config_option("--json-schema/--no-json-schema", source=(JudgeSettings, "json_schema"),
               help="Constrain the judge's reply to the rubric's JSON schema (response_format; llama.cpp supports it).")
@config_option("--resamples", type=int, source=(JudgeSettings, "n_resamples"), help="Bootstrap resamples for the CIs.")
@config_option("--request-per", type=click.Choice(REQUEST_PER), source=(JudgeSettings, "request_per"),
               help="A file of statements to judge (a file pass's): one judge request per statement, or one "
                    "per answer.")
def judge_command(path, rubric, endpoints, server_name, model, api_key, questions, pair, json_out, work_dir, limit,
                  concurrency, rps, temperature, max_tokens, max_attempts, reference, json_schema, resamples,
                  request_per):
    """Judge saved answers in PATH (a run directory, or a JSONL of graded answers with --questions).

    When the answers carry human grades, reports the judge's agreement with them
    per axis (n, Spearman, Kendall tau-b, quadratic-weighted kappa, bootstrap CIs,
    confusion matrix) beside the answer-length baseline. Rerunning the same command
    resumes: journaled judgements are not requested again.

    PATH may also be a file a benchmark registers a judge pass for, such as physicians' labels of
    (answer, statement) pairs: the judge labels each pair, and its agreement with the physicians'
    majority is shown between a floor (always Neutral; word overlap) and a ceiling (each physician
    against the other two; Fleiss' kappa of the three).
    """
    if (path is None) == (pair is None):
        raise click.UsageError("give PATH to judge, or --pairwise RUN_A RUN_B")
    settings = JudgeSettings(rubric=rubric, concurrency=concurrency, rps=rps, temperature=temperature,
                             max_tokens=max_tokens, max_attempts=max_attempts, reference=reference,
                             json_schema=json_schema, n_resamples=resamples, request_per=request_per, limit=limit)
    try:
        scorer = api.make_judge(settings, endpoints=endpoints, server=server_name, model=model, api_key=api_key)
    except (api.ServerError, api.InputError, OSError) as exc:
        _exit(f"[red]error:[/] {escape(str(exc))}", 2)
    progress = api.RunProgress()
    lines = ProgressLines(progress, sys.stderr, PROGRESS_INTERVAL_S)  # a line now and then while it judges
    try:
        try:
            done = api.judge(path, pair=pair, scorer=scorer, settings=settings, questions=questions,
                             work_dir=work_dir, json_out=json_out, progress=progress,
                             on_start=lambda _total, _resumed: lines.begin(),
                             on_note=lambda note: console.print(f"note: {escape(note)}"))
        finally:
            lines.close()
    except api.InputError as exc:  # the answers cannot be used (the judge was made above): nothing was sent
        _exit(f"[red]cannot read the answers[/] (nothing was sent):\n{escape(str(exc))}" if pair is None
              else f"[red]error:[/] {escape(str(exc))}", 2)
    except api.BusyError as exc:
        if exc.lost:
            _exit(f"[red]stopped:[/] {escape(str(exc))}", EXIT_BUSY)
        who = exc.holder.describe() if exc.holder else "another process (its record is unreadable)"
        _exit(f"[red]busy:[/] {escape(str(exc.run_dir))} is being written by a running evalkit run ({who}); "
              "judge it when that run ends, or pass --work-dir elsewhere", EXIT_BUSY)
    except api.UnreachableError as exc:
        _exit(f"[red]judge down:[/] {escape(str(exc))}", 1)
    except KeyboardInterrupt as exc:  # a judge pass stopped says where what it judged is journaled
        work_dir = getattr(exc, "work_dir", None)
        if work_dir is None:
            raise
        _exit(f"[yellow]stopped[/]: judgements so far are journaled in {work_dir}; rerun the same command to resume",
              EXIT_INTERRUPTED)
    if done.file_pass is not None:  # a benchmark's own file: it prints its report
        done.file_pass.show(done, path, out=stdout_console())
    else:
        {"pairwise": _print_pairwise, "answers": _print_answers}[done.kind](done, path, pair)
    _usage_line(done.judge, done.wall_s)
    if done.json_out is not None and done.kind != "pairwise":
        console.print(f"agreement figures: {done.json_out}")
    if done.errors:
        console.print(f"[yellow]{done.errors} scores are judge errors (no valid reply); they count in no figure[/]")
    if done.unjudged:
        console.print(f"[yellow]{done.unjudged} are not judged: their judge request failed; run the same command "
                      "again to ask for them[/]")
        sys.exit(EXIT_INCOMPLETE)


def _exit(message: str, code: int) -> None:
    console.print(message)
    sys.exit(code)


def _print_pairwise(done, path, pair) -> None:
    run_a, run_b = pair
    table = Table(title=f"{run_a} (A) vs {run_b} (B), {done.shared} items, both orders")
    for name in ("axis", "n", "A wins", "95% CI", "tie", "95% CI ", "B wins", "95% CI  ", "orders disagree",
                 "judge errors"):
        table.add_column(name, justify="left" if name == "axis" else "right")
    for axis, s in done.summary.items():
        d = s.to_dict()
        table.add_row(axis, str(s.n), _num(d["win"]), _ci(d["win_ci"]), _num(d["tie"]), _ci(d["tie_ci"]),
                      _num(d["loss"]), _ci(d["loss_ci"]), str(s.disagreements), str(s.errors))
    stdout_console().print(table)


def _print_answers(done, path, pair) -> None:
    out, result, scorer = stdout_console(), done.result, done.judge
    out.print(scores_table(result.samples, scorer.rubric.score_names,
                           f"{path}: judged by {scorer.model} on rubric {scorer.rubric.name!r}"))
    if result.agreement:
        out.print(agreement_table(result.agreement, "Agreement with the human grades"))
        for axis, a in result.agreement.items():
            out.print(confusion_table(axis, a))
            skipped = [f"{a.human_off_scale} with a human grade off the scale"] if a.human_off_scale else []
            if a.ungraded:
                skipped.append(f"{a.ungraded} with no human grade")
            if skipped:
                console.print(f"{axis}: left out of n: " + ", ".join(skipped))
    console.print(f"{len(result.samples)} answers, {result.resumed} resumed from {result.journal}; "
                  f"judged samples: {done.judged_file}")


def _usage_line(scorer: Any, wall_s: float) -> None:
    u = scorer.usage.to_dict()
    console.print(f"judge {scorer.model}: {u['requests']} requests, {u['prompt_tokens']} prompt + "
                  f"{u['completion_tokens']} completion tokens, {u['invalid_replies']} invalid replies, "
                  f"{u['seconds']:.1f}s in requests, {wall_s:.1f}s wall")


__all__ = ["judge_command"]
