"""``evalkit judge``: grade saved answers with a model judge, check it against human grades, rank two runs."""

from __future__ import annotations

import sys
import time
from contextlib import nullcontext
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from evalkit.api import (
    Agreement, agreement_json, default_work_dir, judge_answers, JUDGE_DEFAULT_CONCURRENCY as DEFAULT_CONCURRENCY,
    JUDGE_DEFAULT_MAX_ATTEMPTS as DEFAULT_MAX_ATTEMPTS, JUDGE_DEFAULT_MAX_TOKENS as DEFAULT_MAX_TOKENS,
    JudgeInputError, live_writer, pairwise, read_input, resolve_server, RubricError, RubricJudgeScorer, RunLocked,
    SAMPLES, samples_path, ScorerError, served_models, ServerError, snapshot_note, try_lock_run_dir, write_json,
    write_jsonl
)
from evalkit.cli import stdout_console

console = Console(stderr=True, soft_wrap=True)  # messages are never wrapped, so logs grep well


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _ci(ci: tuple[float, float] | None) -> str:
    return "" if ci is None else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def agreement_table(result: dict[str, Agreement], title: str) -> Table:
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


def confusion_table(axis: str, a: Agreement) -> Table:
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
@click.option("--rubric", default="grade4", show_default=True,
              help="A shipped rubric (grade4, medpalm2, healthbench) or a rubric JSON file.")
@click.option("--judge-endpoint", "endpoints", multiple=True,
              help="Base URL of the judge's OpenAI-compatible server (ending in /v1); repeat for several.")
@click.option("--judge-server", "server_name", default=None, help="Name of a judge server started by `evalkit serve`.")
@click.option("--judge-model", "model", default=None, help="Judge model id (default: the one the server lists).")
@click.option("--judge-api-key", "api_key", default=None, envvar="EVALKIT_JUDGE_API_KEY")
@click.option("--questions", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Long-form questions file, looked up by qid (needed for a graded-answers JSONL).")
@click.option("--pairwise", "pair", nargs=2, type=click.Path(exists=True, path_type=Path), default=None,
              help="RUN_A RUN_B: rank the two runs' answers item by item (both orders) instead of grading PATH.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the agreement (or pairwise) figures per axis to this JSON file.")
@click.option("--work-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the journal and judged samples go (default: the run directory, or results/judge/...).")
@click.option("--limit", type=int, default=None, help="Judge only the first N answers.")
@click.option("--concurrency", type=int, default=DEFAULT_CONCURRENCY, show_default=True,
              help="Judge requests in flight.")
@click.option("--rps", type=float, default=None, help="Judge requests per second at most.")
@click.option("--temperature", type=float, default=0.0, show_default=True, help="Judge sampling temperature.")
@click.option("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS, show_default=True)
@click.option("--max-attempts", type=int, default=DEFAULT_MAX_ATTEMPTS, show_default=True,
              help="Judge replies asked per answer before it is recorded as a judge error.")
@click.option("--reference/--no-reference", default=True, show_default=True,
              help="Show the judge an item's reference answers, when it has some.")
@click.option("--json-schema/--no-json-schema", default=False, show_default=True,
              help="Constrain the judge's reply to the rubric's JSON schema (response_format; llama.cpp supports it).")
@click.option("--resamples", type=int, default=2000, show_default=True, help="Bootstrap resamples for the CIs.")
@click.option("--kqa-per", type=click.Choice(["statement", "answer"]), default="statement", show_default=True,
              help="K-QA physicians' file: one judge request per statement, or one per answer.")
def judge_command(path, rubric, endpoints, server_name, model, api_key, questions, pair, json_out, work_dir, limit,
                  concurrency, rps, temperature, max_tokens, max_attempts, reference, json_schema, resamples,
                  kqa_per):
    """Judge saved answers in PATH (a run directory, or a JSONL of graded answers with --questions).

    When the answers carry human grades, reports the judge's agreement with them
    per axis (n, Spearman, Kendall tau-b, quadratic-weighted kappa, bootstrap CIs,
    confusion matrix) beside the answer-length baseline. Rerunning the same command
    resumes: journaled judgements are not requested again.

    PATH may also be K-QA's physicians' file (NLI_medical_annotator.csv): the judge labels
    each (answer, statement) pair, and its agreement with the physicians' majority is shown
    between a floor (always Neutral; word overlap) and a ceiling (each physician against
    the other two; Fleiss' kappa of the three).
    """
    if (path is None) == (pair is None):
        raise click.UsageError("give PATH to judge, or --pairwise RUN_A RUN_B")
    endpoints = list(endpoints)
    try:
        if not endpoints:
            handle = resolve_server(server_name)
            endpoints = [handle.base_url]
            model = model or handle.model
        if not model:
            listed = served_models(endpoints[0], api_key=api_key)
            if not listed:
                raise ServerError(f"{endpoints[0]} lists no model: pass --judge-model NAME")
            model = listed[0]
        scorer = RubricJudgeScorer(rubric, endpoints, model, concurrency=concurrency, rps=rps, temperature=temperature,
                             max_tokens=max_tokens, max_attempts=max_attempts, reference=reference,
                             json_schema=json_schema, api_key=api_key)
    except (ServerError, RubricError, ScorerError, OSError) as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}")
        sys.exit(2)

    out = stdout_console()
    t0 = time.perf_counter()
    if pair is not None:
        run_a, run_b = pair
        work = work_dir or default_work_dir(run_a)
        try:
            with _run_dir_lock(work):  # its journal goes into RUN_A's directory by default
                summary, shared = pairwise(run_a, run_b, scorer, work_dir=work, limit=limit)
        except (JudgeInputError, ScorerError) as exc:
            console.print(f"[red]error:[/] {escape(str(exc))}")
            sys.exit(2)
        table = Table(title=f"{run_a} (A) vs {run_b} (B), {shared} items, both orders")
        for name in ("axis", "n", "A wins", "95% CI", "tie", "95% CI ", "B wins", "95% CI  ", "orders disagree",
                     "judge errors"):
            table.add_column(name, justify="left" if name == "axis" else "right")
        doc = {}
        for axis, s in summary.items():
            d = s.to_dict()
            doc[axis] = d
            table.add_row(axis, str(s.n), _num(d["win"]), _ci(d["win_ci"]), _num(d["tie"]), _ci(d["tie_ci"]),
                          _num(d["loss"]), _ci(d["loss_ci"]), str(s.disagreements), str(s.errors))
        out.print(table)
        _usage_line(scorer, time.perf_counter() - t0)
        if json_out:
            write_json(json_out, doc)
        return

    from evalkit.api import is_nli_file

    if is_nli_file(path):
        from evalkit.cli.judge_kqa import judge_nli_file

        judge_nli_file(path, scorer, per=kqa_per, work_dir=work_dir or default_work_dir(path), limit=limit,
                       json_out=json_out, resamples=resamples, out=out)
        _usage_line(scorer, time.perf_counter() - t0)
        return
    work = work_dir or default_work_dir(path)
    writer = live_writer(samples_path(path)) if path.exists() else None  # a run still writing PATH
    with _run_dir_lock(work):  # judging into a run directory writes it: one writer at a time
        try:
            data = read_input(path, questions=questions, limit=limit)
        except JudgeInputError as exc:
            console.print(f"[red]cannot read the answers[/] (nothing was sent):\n{escape(str(exc))}")
            sys.exit(2)
        if writer is not None:
            console.print(f"note: {escape(snapshot_note(samples_path(path), writer, len(data.pairs)))}")
        try:
            result = judge_answers(data, scorer, work_dir=work, n_resamples=resamples)
        except ScorerError as exc:
            console.print(f"[red]error:[/] {escape(str(exc))}")
            sys.exit(2)
        except KeyboardInterrupt:
            console.print(f"[yellow]stopped[/]: judgements so far are journaled in {work}; rerun the same command "
                          "to resume")
            sys.exit(130)
        judged_file = work / f"judged-{scorer.rubric.name}.jsonl"
        write_jsonl(judged_file, [s.to_dict() for s in result.samples])
    out.print(scores_table(result.samples, scorer.rubric.score_names,
                           f"{path}: judged by {model} on rubric {scorer.rubric.name!r}"))
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
                  f"judged samples: {judged_file}")
    _usage_line(scorer, time.perf_counter() - t0)
    if json_out:
        write_json(json_out, agreement_json(result))
        console.print(f"agreement figures: {json_out}")
    errors = sum(1 for s in result.samples for v in (s.scores or {}).values() if v.get("value") is None)
    if errors:
        console.print(f"[yellow]{errors} scores are judge errors (no valid reply); they count in no figure[/]")


def _run_dir_lock(work: Path):
    """The run-directory lock of WORK when it is a run directory (the journal and judged samples go
    there), else nothing; a running evalkit run holding it makes the command refuse (exit 4)."""
    if not (work / SAMPLES).is_file():
        return nullcontext()
    try:
        return try_lock_run_dir(work)
    except RunLocked as exc:
        who = exc.holder.describe() if exc.holder else "another process (its record is unreadable)"
        console.print(f"[red]busy:[/] {escape(str(work))} is being written by a running evalkit run ({who}); "
                      "judge it when that run ends, or pass --work-dir elsewhere")
        sys.exit(4)


def _usage_line(scorer: RubricJudgeScorer, wall_s: float) -> None:
    u = scorer.usage.to_dict()
    console.print(f"judge {scorer.model}: {u['requests']} requests, {u['prompt_tokens']} prompt + "
                  f"{u['completion_tokens']} completion tokens, {u['invalid_replies']} invalid replies, "
                  f"{u['seconds']:.1f}s in requests, {wall_s:.1f}s wall")


__all__ = ["judge_command"]
