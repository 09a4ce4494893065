"""``evalkit study create | serve | report | judge | export | close``: human rating studies."""

from __future__ import annotations

from pathlib import Path

import click

from evalkit import api
from evalkit.cli.common import fail_on_bad_input
from evalkit.cli.options import config_option
from evalkit.config import JudgeSettings, StudyServeSettings, StudySettings

_DIR = config_option("--studies-dir", source=(StudySettings, "studies_dir"), type=click.Path(file_okay=False),
                     help="Folder holding the studies (one folder each).")


def _bad_input() -> tuple[type[Exception], ...]:
    return (api.InputError, FileNotFoundError, ValueError)


@click.group()
def study() -> None:
    """Human rating studies: physicians and lay raters grade long answers, as in Med-PaLM 2."""


@study.command("create")
@click.argument("name")
@click.option("--run", "runs", multiple=True, required=True, type=click.Path(exists=True),
              help="A long-form run directory (or samples file); repeat for each system.")
@config_option("--reference/--no-reference", source=(StudySettings, "reference"),
               help="Add the items' reference answers (LiveQA's, a statements file's physician answers) as the system 'reference'.")
@config_option("--design", type=click.Choice(["independent", "pairwise", "both"]), source=(StudySettings, "design"))
@config_option("--raters-per-answer", "-k", type=int, source=(StudySettings, "raters_per_answer"))
@config_option("--physicians", type=int, source=(StudySettings, "physicians"), help="Physician raters.")
@config_option("--lay", type=int, source=(StudySettings, "lay"), help="Lay raters (0: none).")
@config_option("--items", type=int, source=(StudySettings, "items"), help="Questions drawn from those all systems answered.")
@config_option("--seed", type=int, source=(StudySettings, "seed"))
@click.option("--rubric", "rubrics", multiple=True, metavar="ROLE=RUBRIC",
              help="Another rubric for physician, pairwise or lay (a shipped name or a file).")
@_DIR
def create_command(name: str, runs: tuple[str, ...], reference: bool, design: str, raters_per_answer: int,
                   physicians: int, lay: int, items: int, seed: int, rubrics: tuple[str, ...], studies_dir: str) -> None:
    """Create study NAME from long-form runs; print each rater's personal link and the organiser's."""
    bad = [r for r in rubrics if "=" not in r]
    if bad:
        raise click.BadParameter(f"{bad[0]!r}: write ROLE=RUBRIC (physician=, pairwise= or lay=)",
                                 param_hint="--rubric")
    chosen = dict(r.split("=", 1) for r in rubrics)
    try:
        made = api.study.create(name, runs, reference=reference, design=design, raters_per_answer=raters_per_answer,
                                physicians=physicians, lay=lay, items=items, seed=seed, studies_dir=studies_dir,
                                rubrics=chosen)
    except _bad_input() as exc:
        fail_on_bad_input(exc)
    base = f"http://{StudyServeSettings.host}:{StudyServeSettings.port}"
    click.echo(f"study {name}: {made.items} items, systems {', '.join(made.systems)}, {made.tasks} ratings to make")
    click.echo(f"  file: {made.path}")
    click.echo("Personal links (shown once; the study keeps only their hashes; a different --host/--port of "
               "`evalkit study serve` changes the start of each link):")
    for inv in made.invitations:
        click.echo(f"  {inv.label:14} {base}/r/{inv.token}")
    click.echo(f"  {'organiser':14} {base}/o/{made.organiser.token}")


@study.command("serve")
@click.argument("name")
@config_option("--host", source=(StudyServeSettings, "host"), help="Address to listen on.")
@config_option("--port", type=int, source=(StudyServeSettings, "port"), help="Port (0: a free one).")
@config_option("--fsync/--no-fsync", source=(StudyServeSettings, "fsync"),
               help="Each save waits for the disk too (survives a power cut; slower).")
@_DIR
def serve_command(name: str, host: str, port: int, fsync: bool, studies_dir: str) -> None:
    """Serve study NAME's rating pages and organiser page until Ctrl-C."""
    def announce(url: str, notes: list[str]) -> None:
        for note in notes:
            click.echo(f"note: {note}", err=True)
        click.echo(f"study {name} served at {url} (raters: {url}/r/TOKEN, organiser: {url}/o/TOKEN)", err=False)

    try:
        api.study.serve(name, host=host, port=port, studies_dir=studies_dir, fsync=fsync, announce=announce)
    except (api.InputError, OSError) as exc:
        fail_on_bad_input(exc)


@study.command("report")
@click.argument("name")
@config_option("--format", "fmt", type=click.Choice(api.study.formats()),
               source=(StudySettings, "report_format"))
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Write here instead of stdout.")
@config_option("--resamples", type=int, source=(StudySettings, "n_resamples"), help="Bootstrap resamples, permutations.")
@config_option("--seed", type=int, source=(StudySettings, "seed"))
@_DIR
def report_command(name: str, fmt: str, output: str | None, resamples: int, seed: int, studies_dir: str) -> None:
    """Study NAME's results: shares per system and axis, pairwise preferences, agreement, the judge."""
    try:
        text = api.study.report(name, fmt=fmt, studies_dir=studies_dir, n_resamples=resamples, seed=seed)
    except _bad_input() as exc:
        fail_on_bad_input(exc)
    if output:
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            fail_on_bad_input(OSError(f"{output}: cannot write: {exc.strerror or exc}"))
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text)


@study.command("judge")
@click.argument("name")
@click.option("--judge-endpoint", "endpoints", multiple=True, help="The judge's base URL (ending in /v1).")
@click.option("--judge-server", "server_name", default=None, help="Name of a judge server started by `evalkit serve`.")
@click.option("--judge-model", "model", default=None, help="Judge model id (default: the one the server lists).")
@config_option("--concurrency", type=int, source=(JudgeSettings, "concurrency"))
@config_option("--max-tokens", type=int, source=(JudgeSettings, "max_tokens"))
@_DIR
def judge_command(name: str, endpoints: tuple[str, ...], server_name: str | None, model: str | None,
                  concurrency: int, max_tokens: int, studies_dir: str) -> None:
    """Ask a model judge the study's own rubrics; `evalkit study report` then sets it against the raters."""
    settings = JudgeSettings(concurrency=concurrency, max_tokens=max_tokens)
    try:
        scorer = api.make_judge(settings, endpoints=endpoints, server=server_name, model=model)
        done = api.study.judge(name, scorer, studies_dir=studies_dir)
    except (*_bad_input(), api.ServerError) as exc:
        fail_on_bad_input(exc)
    missing = done.asked - done.answered
    click.echo(f"study {name}: {done.asked} unit(s) asked, {done.answered} with a valid reply"
               + (f" ({missing} without: the same command asks them again)" if missing else "")
               + f"; see `evalkit study report {name}`")
    for error in sorted(set(done.errors))[:3]:
        click.echo(f"  judge error: {error[:300]}", err=True)


@study.command("export")
@click.argument("name")
@config_option("--format", "fmt", type=click.Choice(api.study.export_formats()), source=(StudySettings, "export_format"))
@_DIR
def export_command(name: str, fmt: str, studies_dir: str) -> None:
    """Every saved rating of study NAME, systems named, to stdout."""
    try:
        click.echo(api.study.export(name, fmt, studies_dir=studies_dir), nl=False)
    except _bad_input() as exc:
        fail_on_bad_input(exc)
