"""Every command example in README.md and docs/*.md runs here, so none goes stale (issue 29, item 14).

The convention (pages written by anyone follow it):

- A command example is a fenced block with the info string ``sh``. Fences named ``bash``,
  ``shell``, ``console`` or ``zsh`` are refused, so no example escapes the test by its name.
- A block preceded by the line ``<!-- not run: REASON -->`` is not run (it needs a GPU, SGLang,
  Slurm, a long llama-server job...). It is still checked: ``bash -n`` parses it, and every
  ``evalkit ...`` command in it is resolved by the CLI's own click parser (the subcommand path
  and every option must exist).
- A page whose first line is ``<!-- examples run by: tests/test_FILE.py -->`` has its examples
  run by that test; here the file must exist and name the page.
- Every other ``sh`` block runs for real. A page's blocks run in order in one ``bash`` (``set -euo
  pipefail``), in a fresh folder, with:
  - ``evalkit`` on PATH (this checkout's ``python -m evalkit``);
  - a copy of ``eval_data/`` in the folder, and ``../shared`` the shared benchmark files and model
    outputs (a page that names ``../shared`` is skipped, with the reason, where they are absent);
  - a server recorded as ``default`` (so ``evalkit run`` with no ``--server``/``--endpoint``
    reaches it, and ``evalkit status``/``stop`` see it): ``tests/toy_server.py`` served through the
    backend defined outside evalkit, ``tests.toy_backend:ToyBackend``, an OpenAI-compatible double
    that answers "The answer is X." for a letter X of the options. ``$EVALKIT_URL`` is its URL;
  - ``$JUDGE_URL`` and ``$JUDGE_MODEL``, where a page names the first: a judge double
    (``tests/judge_server.py``) that replies ``{"grade": 3}`` to every judge prompt, and its model id;
  - its own ``$EVALKIT_STATE_DIR``, so a page's servers are its own.

Lines of other blocks that start ``$ evalkit`` (transcripts with their output) are parsed too.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import tempfile
import warnings
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

from tests.conftest import ROOT, SHARED
from tests.serverproc import ServerProcess, free_port

DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [ROOT / "README.md", *DOCS]
NOT_RUN = re.compile(r"^<!-- not run: (\S.*?) -->$")
RUN_BY = re.compile(r"^<!-- examples run by: (tests/test_\w+\.py) -->$")
FENCE = re.compile(r"^(`{3,}|~{3,})[ \t]*([^\s`]*)")
SHELL_NAMES = {"bash", "shell", "console", "zsh", "shell-session"}
PAGE_TIMEOUT_S = 240
FORKSERVER = ROOT / "tests" / "cli_forkserver.py"
JUDGE_REPLY = '{"grade": 3}'
JUDGE_MODEL = "judge-double"  # tests/judge_server.py's model id
# Pages the README's guide list names that other branches are writing (issue 29); the merger
# empties this set once they are in.
PENDING_PAGES: set[str] = set()  # pages the README links before they are written (none now)


@dataclass(frozen=True)
class Block:
    """One fenced block of a page: its info string, first line number (the fence's) and text."""

    info: str
    line: int
    text: str
    not_run: str | None  # the reason, when the line before it is <!-- not run: REASON -->


def blocks(text: str) -> list[Block]:
    """The fenced blocks of a markdown TEXT, in order."""
    found: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, info, start = m.group(1), m.group(2).lower(), i
        prev = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marker = NOT_RUN.match(prev)
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].startswith(fence[0] * len(fence)):
            body.append(lines[i])
            i += 1
        found.append(Block(info, start + 1, "\n".join(body) + "\n", marker.group(1) if marker else None))
        i += 1
    return found


def run_by(text: str) -> str | None:
    """The test file a page names on its first line as running its examples, or None."""
    first = text.splitlines()[0].strip() if text.strip() else ""
    m = RUN_BY.match(first)
    return m.group(1) if m else None


def commands(script: str) -> list[list[str]]:
    """The simple commands of a shell SCRIPT (continuations joined, comments dropped), each as argv
    without its leading VAR=value assignments; split at ; && || | and newlines."""
    joined = script.replace("\\\n", " ")
    out: list[list[str]] = []
    for line in joined.splitlines():
        lex = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lex.whitespace_split = True
        lex.commenters = "#"
        current: list[str] = []
        for tok in list(lex) + [";"]:
            if tok and set(tok) <= set(";&|"):
                while current and re.match(r"^[A-Za-z_]\w*=", current[0]):
                    current.pop(0)
                if current:
                    out.append(current)
                current = []
            else:
                current.append(tok)
    return out


def evalkit_args(argv: list[str]) -> list[str] | None:
    """The arguments after ``evalkit`` (or ``.venv/bin/evalkit``, ``python -m evalkit``), else None."""
    if argv and (argv[0] == "evalkit" or argv[0].endswith("/evalkit")):
        return argv[1:]
    if len(argv) >= 3 and Path(argv[0]).name.startswith("python") and argv[1:3] == ["-m", "evalkit"]:
        return argv[3:]
    return None


def check_cli(args: list[str]) -> str:
    """Resolve ``evalkit ARGS`` with the CLI's click parser: the command path must exist and every
    option must be one of its options (values are not converted: a placeholder path is fine).
    Returns the command path; raises click.UsageError naming what does not exist."""
    from evalkit.cli import main

    cmd: click.Command = main
    path = ["evalkit"]
    ctx = click.Context(main, info_name="evalkit")
    rest = list(args)
    while isinstance(cmd, click.Group):
        if not rest or rest[0] in ("-h", "--help"):
            return " ".join(path)
        sub = cmd.get_command(ctx, rest[0])
        if sub is None:
            raise click.UsageError(f"no command {' '.join(path)} {rest[0]}")
        path.append(rest.pop(0))
        ctx = click.Context(sub, info_name=path[-1], parent=ctx)
        cmd = sub
    if any(a in ("-h", "--help") for a in rest):
        return " ".join(path)
    # The bare option parser: it knows the options and their arity, and converts no value (so
    # placeholders such as RUN_DIR pass), nor runs any callback.
    parser = cmd.make_parser(click.Context(cmd, info_name=path[-1], parent=ctx.parent))
    parser.parse_args(args=rest)  # NoSuchOption / BadOptionUsage on an option the command lacks
    return " ".join(path)


def check_synopsis(text: str) -> list[str]:
    """The options a usage synopsis (a block whose first line is ``evalkit CMD ...``, options in
    brackets) names that its command does not have."""
    from evalkit.cli import main

    words = text.split()
    cmd: click.Command = main
    ctx = click.Context(main, info_name="evalkit")
    for word in words[1:]:
        if not isinstance(cmd, click.Group):
            break
        sub = cmd.get_command(ctx, word)
        if sub is None:
            return [f"no command {word}"]
        ctx, cmd = click.Context(sub, info_name=word, parent=ctx), sub
    known = {opt for param in cmd.params for opt in (*param.opts, *param.secondary_opts)}
    named = re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", text)
    return [f"{' '.join(ctx.command_path.split()[1:])}: no option {o}" for o in named if o not in known]


def page_id(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


# ---------------------------------------------------------------- the harness checks itself


def test_blocks_reads_markers_and_fences():
    text = ("<!-- examples run by: tests/test_x.py -->\n# t\n\n<!-- not run: needs a GPU -->\n\n```sh\n"
            "evalkit serve --dp 8\n```\n\n```sh\nevalkit status\n```\n````text\n```sh\nnot a block\n```\n````\n")
    found = blocks(text)
    assert [(b.info, b.line, b.not_run) for b in found] == [("sh", 6, "needs a GPU"), ("sh", 10, None),
                                                          ("text", 13, None)]
    assert found[2].text == "```sh\nnot a block\n```\n"
    assert run_by(text) == "tests/test_x.py"


def test_commands_split_shell_lines():
    script = ("A=1 evalkit run --eval-file x.jsonl \\\n  --limit 3   # three\n"
              "evalkit report results/x && ls | wc -l; .venv/bin/evalkit stop\n")
    assert commands(script) == [["evalkit", "run", "--eval-file", "x.jsonl", "--limit", "3"],
                                ["evalkit", "report", "results/x"], ["ls"], ["wc", "-l"], [".venv/bin/evalkit", "stop"]]
    assert evalkit_args(["python", "-m", "evalkit", "data", "list"]) == ["data", "list"]


def test_check_cli_knows_commands_and_options():
    assert check_cli(["sweep", "report", "DIR", "--format", "html", "-o", "t.html"]) == "evalkit sweep report"
    assert check_cli(["run", "--eval-file", "no/such/file.jsonl", "--prompt", "strict"]) == "evalkit run"
    with pytest.raises(click.UsageError):
        check_cli(["run", "--no-such-option", "1"])
    with pytest.raises(click.UsageError):
        check_cli(["sweep", "nosuch"])


def test_check_synopsis_sees_an_option_that_is_gone():
    assert check_synopsis("evalkit overlap --train PATH [-o overlap.jsonl] [--ngram 13]\n") == []
    assert check_synopsis("evalkit sweep report DIR [--no-such-flag]\n") == ["sweep report: no option --no-such-flag"]


# ---------------------------------------------------------------- the pages


def test_pages_follow_the_convention():
    problems = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        lines = text.splitlines()
        for i, line in enumerate(lines):
            if NOT_RUN.match(line.strip()):
                nxt = next((ln for ln in lines[i + 1:] if ln.strip()), "")
                m = FENCE.match(nxt)
                if not (m and m.group(2).lower() == "sh"):
                    problems.append(f"{page_id(page)}:{i + 1}: a not-run marker must precede a ```sh block")
            elif "not run" in line and line.lstrip().startswith("<!--"):
                problems.append(f"{page_id(page)}:{i + 1}: a not-run marker is `<!-- not run: REASON -->`")
        for b in blocks(text):
            if b.info in SHELL_NAMES:
                problems.append(f"{page_id(page)}:{b.line}: command examples are ```sh blocks, not ```{b.info}")
        test_file = run_by(text)
        if test_file:
            f = ROOT / test_file
            if not f.is_file():
                problems.append(f"{page_id(page)}:1: {test_file} does not exist")
            elif page_id(page) not in f.read_text(encoding="utf-8"):
                problems.append(f"{page_id(page)}:1: {test_file} does not name {page_id(page)}")
    assert not problems, "\n".join(problems)


def test_readme_is_a_front_page():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 300
    headings = [ln for ln in text.splitlines() if ln.startswith("#")]
    assert len(headings) == len(set(headings)), "a heading appears twice"
    assert "make demo" in text and "make test" in text and ". .venv/bin/activate" in text


def test_links_to_pages_exist():
    missing = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#\s]+\.md)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            path = (page.parent / target).resolve()
            if not path.is_file() and path.relative_to(ROOT).as_posix() not in PENDING_PAGES:
                missing.append(f"{page_id(page)} -> {target}")
    assert not missing, missing


def _not_run_problems(page: Path) -> list[str]:
    problems = []
    text = page.read_text(encoding="utf-8")
    for b in blocks(text):
        if b.info == "sh" and b.not_run is not None:
            syntax = subprocess.run(["bash", "-n"], input=b.text, capture_output=True, text=True)
            if syntax.returncode:
                problems.append(f"{page_id(page)}:{b.line}: bash -n: {syntax.stderr.strip()}")
            argvs = commands(b.text)
        elif b.info != "sh":
            argvs = [shlex.split(ln.strip()[2:], comments=True) for ln in b.text.splitlines()
                     if ln.strip().startswith("$ evalkit ")]
            if b.text.startswith("evalkit "):
                problems += [f"{page_id(page)}:{b.line}: synopsis: {p}" for p in check_synopsis(b.text)]
        else:
            continue
        for argv in argvs:
            args = evalkit_args(argv)
            if args is None:
                continue
            try:
                check_cli(args)
            except click.ClickException as exc:
                problems.append(f"{page_id(page)}:{b.line}: evalkit {' '.join(args)}: {exc.format_message()}")
    return problems


def test_examples_not_run_still_parse():
    problems = [p for page in PAGES if not run_by(page.read_text(encoding="utf-8")) for p in _not_run_problems(page)]
    assert not problems, "\n".join(problems)


def _runnable(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    if run_by(text):
        return []
    return [b for b in blocks(text) if b.info == "sh" and b.not_run is None]


RUN_PAGES = [p for p in PAGES if _runnable(p)]


def _script(page: Path, todo: list[Block]) -> str:
    trace = ["PS4='+ $(date +%T.%N | cut -c1-12) '", "set -x"] if os.environ.get("EVALKIT_DOCS_TRACE") == "1" else []
    parts = [*trace, "set -euo pipefail",
             f"trap 'echo \"[docs] the sh block at {page_id(page)}:$__docs_line failed (exit $?)\" >&2' ERR"]
    for b in todo:
        parts += [f"__docs_line={b.line}", f"echo '[docs] {page_id(page)}:{b.line}'", b.text]
    return "\n".join(parts) + "\n"


def _workspace(tmp: Path) -> tuple[Path, dict[str, str]]:
    work = tmp / "work"
    shutil.copytree(ROOT / "eval_data", work / "eval_data")
    if SHARED.is_dir():
        (tmp / "shared").symlink_to(SHARED.resolve())
    bindir = tmp / "bin"
    bindir.mkdir()
    shim = bindir / "evalkit"
    py, fork = shlex.quote(sys.executable), shlex.quote(str(FORKSERVER))
    shim.write_text(f'#!/bin/sh\nif [ -n "${{EVALKIT_DOCS_FORKSERVER:-}}" ]; then exec {py} -S {fork} client "$@"; fi\n'
                    f'exec {py} -m evalkit "$@"\n')
    shim.chmod(0o755)
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}", PYTHONPATH=str(ROOT),
               COLUMNS="160", NO_COLOR="1")
    env.pop("EVALKIT_API_KEY", None)
    return work, env


@pytest.mark.parametrize("page", RUN_PAGES, ids=page_id)
def test_page_examples_run(page, tmp_path):
    from evalkit import api

    todo = _runnable(page)
    text = page.read_text(encoding="utf-8")
    if not SHARED.is_dir():  # the blocks before the first that reads ../shared still run
        first = next((i for i, b in enumerate(todo) if "../shared" in b.text), len(todo))
        if first < len(todo):
            reason = f"{page_id(page)}:{todo[first].line} on: the shared files are not at {SHARED} (set EVALKIT_SHARED)"
            if first == 0:
                pytest.skip(reason)
            warnings.warn(f"not run: {reason}")
            todo = todo[:first]
    work, env = _workspace(tmp_path)
    handle = api.serve(backend="tests.toy_backend:ToyBackend", name="default", port=free_port(),
                       log_dir=str(tmp_path / "logs"), timeout_s=60)
    env["EVALKIT_URL"] = handle.base_url
    judge = forks = None
    try:
        if "$JUDGE_URL" in text:
            judge = ServerProcess(ROOT / "tests" / "judge_server.py", "--rules", _judge_rules(tmp_path),
                                  "--default", JUDGE_REPLY)
            env["JUDGE_URL"], env["JUDGE_MODEL"] = judge.url, JUDGE_MODEL
        forks = _start_forkserver(env, work)
        script = tmp_path / "page.sh"
        script.write_text(_script(page, todo), encoding="utf-8")
        done = subprocess.run(["bash", str(script)], cwd=work, env=env, capture_output=True, text=True,
                              timeout=PAGE_TIMEOUT_S)
        assert done.returncode == 0, f"{page_id(page)}:\n{done.stdout[-6000:]}\n{done.stderr[-6000:]}"
        if os.environ.get("EVALKIT_DOCS_TRACE") == "1":
            print(done.stdout, done.stderr)
    finally:
        if forks is not None:
            os.killpg(forks.pid, signal.SIGKILL)  # the server and any command still running in it
            forks.wait(timeout=10)
            shutil.rmtree(Path(env["EVALKIT_DOCS_FORKSERVER"]).parent, ignore_errors=True)
        if judge is not None:
            judge.stop()
        for name in [s["name"] for s in api.servers(probe=False)]:  # the default one, and any a failed page left running
            api.stop(name, grace_s=2)


def _judge_rules(tmp: Path) -> str:
    rules = tmp / "judge_rules.json"
    rules.write_text("[]", encoding="utf-8")
    return str(rules)


def _start_forkserver(env: dict[str, str], work: Path) -> "subprocess.Popen[str] | None":
    """tests/cli_forkserver.py for this page (evalkit imported once, each command a fork of it),
    named in ENV for the shim; None (each command a fresh `python -m evalkit`) with
    EVALKIT_DOCS_NO_FORK=1."""
    if os.environ.get("EVALKIT_DOCS_NO_FORK") == "1":
        return None
    sock = Path(tempfile.mkdtemp(prefix="ekdocs-")) / "cli.sock"  # short: a socket path has ~100 bytes
    proc = subprocess.Popen([sys.executable, str(FORKSERVER), "serve", str(sock)], cwd=work, env=env,
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    if proc.stdout is None or proc.stdout.readline().strip() != "ready":
        os.killpg(proc.pid, signal.SIGKILL)
        raise RuntimeError("the docs' CLI fork server did not start")
    env["EVALKIT_DOCS_FORKSERVER"] = str(sock)
    return proc
