"""``evalkit data``: check, list and fetch benchmark files (no server needed)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import click

from evalkit import api
from evalkit.cli.options import config_option


def _options_text(counts: Counter) -> str:
    """``5`` when every item has 5 options, else ``4-5 (4: 12, 5: 30)``."""
    if len(counts) == 1:
        return str(next(iter(counts)))
    detail = ", ".join(f"{n}: {counts[n]}" for n in sorted(counts))
    return f"{min(counts)}-{max(counts)} ({detail})"


def _targets_text(counts: Counter) -> str:
    """``RubricItems: 104`` or ``References: 1, none: 103``: how many items carry each kind of target."""
    return ", ".join(f"{kind}: {n}" for kind, n in counts.most_common())


@click.group("data")
def data() -> None:
    """Check, list and fetch benchmark files."""


@data.command("check")
@click.argument("files", nargs=-1, required=True)
@config_option("--data-dir", type=click.Path(path_type=Path), source="DEFAULT_DATA_DIR",
               help="Where registered names (e.g. 'medqa') are looked up.")
@click.option("--adapter", default=None, metavar="NAME|module:attr",
              help="Read the records with this adapter (e.g. liveqa, nist_graded, medicationqa) instead of the "
                   "registry's (a registered file) or mcq.")
def check(files: tuple[str, ...], data_dir: Path, adapter: str | None) -> None:
    """Load and validate FILES; print each dataset's item count and options per item (or targets, long-form).

    A FILE may also be a registered benchmark name. Every problem is printed
    as file:line: message; the exit status is 1 if any record is invalid.
    """
    failed = False
    for target in files:
        path = api.data.resolve(target, data_dir)
        try:
            loaded = api.data.load(path, adapter=adapter)
        except api.InputError as exc:
            failed = True
            problems = exc.problems or [exc]  # a file's error lists each bad record
            for problem in problems:
                click.echo(str(problem), err=True)
            click.echo(f"{path}: INVALID ({len(problems)} problem"
                       f"{'s' if len(problems) != 1 else ''})")
            continue
        note = ""
        if loaded.benchmark is not None:
            note = f"  [{loaded.benchmark}: sha256 {'ok' if loaded.verified else 'differs from registry'}]"
        click.echo(f"{path}: ok, {loaded.shape}{note}")
        targets = loaded.target_counts()
        for name, counts in loaded.option_counts().items():
            n = sum(counts.values())
            if set(counts) != {0}:
                click.echo(f"  {name}: {n} items, options per item {_options_text(counts)}")
            else:
                click.echo(f"  {name}: {n} items, long-form, targets {_targets_text(targets[name])}")
    raise SystemExit(1 if failed else 0)


@data.command("list")
def list_() -> None:
    """Print the benchmark registry."""
    rows = [("name", "file", "items", "options", "sha256", "source")]
    rows += [(b.name, b.file, str(b.items), b.options_text, b.sha256, b.source) for b in api.data.benchmarks()]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[5])


@data.command("fetch")
@click.argument("names", nargs=-1)
@click.option("--all", "fetch_all", is_flag=True, help="Fetch every registered benchmark.")
@click.option("--from", "source", metavar="DIR_OR_URL", default=None,
              help="A mirror folder or http(s) URL instead of each file's public origin.")
@config_option("--data-dir", type=click.Path(path_type=Path), source="DEFAULT_DATA_DIR",
               help="Where fetched files go.")
def fetch_cmd(names: tuple[str, ...], fetch_all: bool, source: str | None, data_dir: Path) -> None:
    """Download (or copy from a mirror) the named benchmarks into the data folder.

    Each file's sha256 is checked against the registry; a mismatch is refused
    and an existing good file is left untouched. Exit status 1 if any failed.
    """
    if fetch_all:
        names = tuple(b.name for b in api.data.benchmarks())
    if not names:
        raise click.UsageError("name at least one benchmark (see 'evalkit data list') or use --all")
    try:
        todo = api.data.plan(names)
    except api.EvalkitError as exc:
        raise click.UsageError(str(exc)) from None
    failed = False
    for bench in todo:
        try:
            r = api.data.fetch(bench, source=source, data_dir=data_dir)
        except api.EvalkitError as exc:
            failed = True
            hint = ""
            if source is None and isinstance(exc, api.UnreachableError):
                hint = ("\n  offline or blocked? copy it from a mirror instead: "
                        f"evalkit data fetch {bench.name} --from DIR_OR_URL")
            click.echo(f"error: {exc}{hint}", err=True)
            continue
        click.echo(f"{r.name}: {r.status} {r.path} (sha256 {r.sha256[:12]}...)")
    raise SystemExit(1 if failed else 0)
