"""The layering rules that keep evalkit easy to change (docs/architecture.md).

The command line is a thin shell: every module of evalkit/cli/ imports, of evalkit, only the
library API (evalkit.api), the config types (evalkit.config) and other cli modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

CLI = ROOT / "evalkit" / "cli"
ALLOWED = {"evalkit.api", "evalkit.config"}

# Modules known not to follow the rule yet, each with the reason; the test fails if one of them
# starts to follow it (so the entry is removed) and lists what each still imports.
KNOWN_EXCEPTIONS: dict[str, str] = {}


def evalkit_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of an evalkit module in PATH, at any depth (function bodies too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "evalkit"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.split(".")[0] == "evalkit":
            if node.module == "evalkit":  # from evalkit import api / config / server ...
                found += [(node.lineno, f"evalkit.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            found.append((node.lineno, "." * node.level + (node.module or "")))
    return sorted(found)


def forbidden(module: str) -> bool:
    """True for an evalkit module the CLI may not import (relative imports are refused too: name the module)."""
    return not (module in ALLOWED or module == "evalkit.cli" or module.startswith("evalkit.cli."))


def cli_modules() -> list[Path]:
    return sorted(CLI.glob("*.py"))


@pytest.mark.parametrize("path", cli_modules(), ids=lambda p: p.name)
def test_cli_imports_only_the_api_and_the_config(path):
    bad = [f"{path.relative_to(ROOT)}:{line}: imports {module}" for line, module in evalkit_imports(path)
           if forbidden(module)]
    if path.name in KNOWN_EXCEPTIONS:
        assert bad, f"{path.name} now imports only the API and the config: remove it from KNOWN_EXCEPTIONS"
        return
    assert not bad, "the CLI goes through evalkit.api and evalkit.config only:\n" + "\n".join(bad)


def test_the_rule_is_checked_on_real_imports(tmp_path):
    """The checker sees imports inside functions and every spelling of an evalkit import."""
    sample = tmp_path / "mod.py"
    sample.write_text("import evalkit.run.runner\nfrom evalkit import server, api\n"
                      "def f():\n    from evalkit.results.report import build_report\n    from evalkit.cli import run\n"
                      "from evalkit.config import RunConfig\nfrom . import data\n")
    assert [m for _, m in evalkit_imports(sample) if forbidden(m)] == ["evalkit.run.runner", "evalkit.server",
                                                                      "evalkit.results.report", "."]
    assert not forbidden("evalkit.api") and not forbidden("evalkit.config") and not forbidden("evalkit.cli.run")


def test_the_api_is_a_small_surface_with_no_lazy_lookup():
    """At most 40 public names, every one of them defined; no module __getattr__ lending internals."""
    from evalkit import api

    assert len(api.__all__) <= 40, f"{len(api.__all__)} names in evalkit.api.__all__"
    assert len(set(api.__all__)) == len(api.__all__)
    assert [name for name in api.__all__ if not hasattr(api, name)] == []
    assert not hasattr(api, "__getattr__") and not hasattr(api, "_EXPORTS")


def test_the_cli_uses_only_the_public_names_of_the_api():
    """Every ``api.NAME`` a cli module uses is in ``api.__all__`` (a name the API imports for itself is not
    the CLI's to borrow)."""
    import re

    from evalkit import api

    used = {(path.name, name) for path in cli_modules()
            for name in re.findall(r"\bapi\.([A-Za-z_]\w*)", path.read_text(encoding="utf-8"))}
    assert sorted(f"{file}: api.{name}" for file, name in used if name not in api.__all__) == []


def test_evalkit_run_restates_no_default():
    """Every `evalkit run` option named after a config field has that field's default, and --help shows it."""
    import dataclasses

    from click.testing import CliRunner

    from evalkit.cli import main
    from evalkit.cli.run import run
    from evalkit.config import GenerationParams, RunConfig, field_default

    fields = {f.name: cls for cls in (RunConfig, GenerationParams) for f in dataclasses.fields(cls)
              if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING}
    checked = []
    for param in run.params:
        if param.name in fields and not param.multiple and not getattr(param, "is_flag", False):
            assert param.default == field_default(fields[param.name], param.name), param.name
            checked.append(param.name)
    assert {"max_new_tokens", "top_p", "timeout_s", "max_attempts", "refine_samples", "strategy",
            "max_record_mb", "results_dir", "extractor"} <= set(checked)
    text = CliRunner().invoke(main, ["run", "--help"], terminal_width=200).output
    assert f"[default: {field_default(GenerationParams, 'max_new_tokens')}]" in text
    assert f"[default: {field_default(RunConfig, 'refine_samples')}]" in text


def every_command(command=None, path="evalkit"):
    """(name, click command) of every command and subcommand of ``evalkit``."""
    import click

    from evalkit.cli import main

    command = command or main
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from every_command(sub, f"{path} {name}")


def restated_defaults() -> list[str]:
    """Every option or argument of every command whose default is not the config's: a default that is
    not None, an empty repetition or an off plain flag must come from a field (or constant) of
    evalkit.config through ``cli.options.config_option``, and equal it."""
    import click

    from evalkit.cli.options import config_value

    bad = []
    for path, command in every_command():
        ctx = click.Context(command)
        for param in command.params:
            where = f"{path} {param.opts[0] if param.opts else param.name}"
            source = getattr(param, "config_source", None)
            if source is not None:
                if param.default != config_value(source):
                    bad.append(f"{where}: {param.default!r} is not {source}'s {config_value(source)!r}")
                elif isinstance(param, click.Option) and not param.is_flag and not param.show_default:
                    bad.append(f"{where}: --help does not show its default")
                continue
            plain_flag = isinstance(param, click.Option) and param.is_flag and not param.secondary_opts
            value = param.get_default(ctx)
            unset = value is None or value is getattr(click.core, "UNSET", None)  # click 8.2+: no default given
            if unset or (value == () and (param.multiple or param.nargs == -1)) or (plain_flag and value is False):
                continue
            bad.append(f"{where}: default {value!r} restated in cli/ (give it a home in evalkit.config)")
    return bad


def test_no_command_restates_a_default():
    """Every default of every command is a config type's, and --help shows it (issue 21)."""
    assert not restated_defaults(), "\n".join(restated_defaults())


def test_the_default_check_sees_a_restated_default(monkeypatch):
    """A literal default added to a command is found by the check above."""
    import click

    from evalkit.cli.report import gate_command

    monkeypatch.setattr(gate_command, "params", [*gate_command.params,
                                                 click.Option(["--margin"], type=float, default=0.5)])
    found = restated_defaults()
    assert found == ["evalkit gate --margin: default 0.5 restated in cli/ (give it a home in evalkit.config)"]


def test_the_config_types_match_the_library_defaults():
    """Where a library function (owned elsewhere) still names a default of its own, it is the config type's."""
    import inspect

    from evalkit.benchmarks.kqa import statements as kqa
    from evalkit.data import corpus
    from evalkit.scoring import judge_pass
    from evalkit.sweep import jobs as sweep_jobs
    from evalkit.results.compare import build_comparison
    from evalkit.results.pages.compare import render_compare_html
    from evalkit.config import (CompareSettings, GateSettings, IntervalSettings, JudgeSettings, OverlapSettings,
                                ReportSettings, SweepCommandSettings, field_default)
    from evalkit.results.gate import compare_runs
    from evalkit.results.leaderboard import build_leaderboard
    from evalkit.results.report import build_report
    from evalkit.scoring.rubric_judge import RubricJudgeScorer

    def default(func, name):
        return inspect.signature(func).parameters[name].default

    interval = {"ci": "ci", "confidence": "confidence", "n_resamples": "n_resamples", "seed": "seed"}
    checks = [(f, p, IntervalSettings, n) for f in (build_report, build_leaderboard) for p, n in interval.items()]
    checks += [(f, p, IntervalSettings, p) for f in (compare_runs, build_comparison)
               for p in ("confidence", "n_resamples", "seed")]
    checks += [(f, p, GateSettings, p) for f in (compare_runs, build_comparison)
               for p in ("max_drop", "alpha", "score")]
    checks += [(compare_runs, "allow_mismatch", GateSettings, "allow_mismatch"),
               (build_leaderboard, "score", ReportSettings, "score"),
               (render_compare_html, "title", CompareSettings, "title"),
               (corpus.analyse_overlap, "ngram", OverlapSettings, "ngram"),
               (judge_pass.judge_answers, "n_resamples", JudgeSettings, "n_resamples"),
               (kqa.evaluate_nli_file, "n_resamples", JudgeSettings, "n_resamples"),
               (sweep_jobs.watch_sweep, "quiet_s", SweepCommandSettings, "quiet_s"),
               (sweep_jobs.watch_sweep, "interval_s", SweepCommandSettings, "watch_interval_s")]
    checks += [(RubricJudgeScorer.__init__, p, JudgeSettings, p)
               for p in ("rubric", "concurrency", "rps", "temperature", "max_tokens", "max_attempts", "reference",
                         "json_schema")]
    differ = [f"{f.__qualname__}({p}={default(f, p)!r}) but {cls.__name__}.{n} = {field_default(cls, n)!r}"
              for f, p, cls, n in checks if default(f, p) != field_default(cls, n)]
    assert not differ, "\n".join(differ)
    assert sweep_jobs.SweepLaunch().executor == field_default(SweepCommandSettings, "executor")
    assert sweep_jobs.SlurmOptions().time_min == field_default(SweepCommandSettings, "slurm_time_min")


# --- library defaults: one home ------------------------------------------------------------
# A library parameter (or dataclass field) named after a field of a config type, whose default is a
# literal equal to that field's default, restates it: it must read it from evalkit.config
# (``field_default(Type, "name")`` or a constant of config). None and False (nothing, off) are not
# restatements, as in the CLI's rule above.

# "file:function(param)" -> why it still restates a config value (owned by another engineer this
# round); the test fails once it no longer does, so the entry is removed.
LITERAL_DEFAULT_EXCEPTIONS: dict[str, str] = {}


def config_field_defaults() -> dict[str, list[tuple[str, object]]]:
    """Field name -> (config type, default) of every dataclass of evalkit.config (None and False left out)."""
    import dataclasses

    from evalkit import config

    out: dict[str, list[tuple[str, object]]] = {}
    for cls in vars(config).values():
        if isinstance(cls, type) and dataclasses.is_dataclass(cls) and cls.__module__ == config.__name__:
            for f in dataclasses.fields(cls):
                if f.default is not dataclasses.MISSING and f.default is not None and f.default is not False:
                    out.setdefault(f.name, []).append((cls.__name__, f.default))
    return out


def _same_value(a: object, b: object) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def literal_defaults(path: Path) -> list[tuple[str, str, object]]:
    """(owner, name, value) of every parameter default and dataclass-style field in PATH that is a literal."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        pairs: list[tuple[str, ast.expr]] = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            positional = a.posonlyargs + a.args
            pairs += [(p.arg, d) for p, d in zip(positional[len(positional) - len(a.defaults):], a.defaults)]
            pairs += [(p.arg, d) for p, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None]
        elif isinstance(node, ast.ClassDef):
            pairs += [(s.target.id, s.value) for s in node.body
                      if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name) and s.value is not None]
        for name, expr in pairs:
            try:
                value = ast.literal_eval(expr)
            except ValueError:
                continue  # a name, a call: not a literal
            found.append((node.name, name, value))
    return found


def restated_library_defaults(paths) -> list[str]:
    fields = config_field_defaults()
    found = []
    for path in paths:
        rel = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        for owner, name, value in literal_defaults(path):
            homes = [cls for cls, default in fields.get(name, []) if _same_value(value, default)]
            if homes:
                found.append(f"{rel}:{owner}({name}) = {value!r}, the default of {' and '.join(homes)}.{name}")
    return found


def test_no_library_default_restates_a_config_value():
    """Issue 21: a default lives once, in evalkit.config; library functions read it from there."""
    paths = [p for p in sorted(EVALKIT.rglob("*.py")) if p != EVALKIT / "config.py"]
    found = restated_library_defaults(paths)
    known = {line for line in found if line.split(" = ")[0] in LITERAL_DEFAULT_EXCEPTIONS}
    stale = sorted(set(LITERAL_DEFAULT_EXCEPTIONS) - {line.split(" = ")[0] for line in known})
    assert not stale, f"no longer restated, remove from LITERAL_DEFAULT_EXCEPTIONS: {stale}"
    bad = [line for line in found if line not in known]
    assert not bad, ("a library default restates a config value; use field_default(Type, name) or a constant of "
                     "evalkit.config:\n" + "\n".join(bad))


def test_the_library_default_check_sees_every_spelling(tmp_path):
    sample = tmp_path / "mod.py"
    sample.write_text("from evalkit.config import DEFAULT_CONFIDENCE\n"
                      "def f(x, confidence=0.95, *, seed=0, alpha=0.05, ngram=DEFAULT_CONFIDENCE, rps=None,\n"
                      "      allow_mismatch=False, reference=True, max_drop=2.0, title='evalkit compare'): ...\n"
                      "async def g(quiet_s: float = 60.0, temperature=0): ...\n"
                      "class C:\n    executor: str = 'slurm'\n    seed: int | None = None\n")
    found = [line.split(" = ")[0].split(":", 1)[1] for line in restated_library_defaults([sample])]
    assert sorted(found) == sorted(["f(confidence)", "f(seed)", "f(alpha)", "f(reference)", "f(title)",
                                    "g(quiet_s)", "g(temperature)", "C(executor)"])


def test_config_types_live_in_config():
    """ServeRequest and SweepSettings are defined in evalkit.config; their old import paths still work."""
    from evalkit import config
    from evalkit.serving.request import ServeRequest
    from evalkit.sweep.state import SweepSettings

    assert ServeRequest is config.ServeRequest and ServeRequest.__module__ == "evalkit.config"
    assert SweepSettings is config.SweepSettings and SweepSettings.__module__ == "evalkit.config"
    assert not hasattr(config, "_ELSEWHERE")


# --- private names stay private --------------------------------------------------------------
# A module's underscore names are its own: another module that needs one means the name is public
# API of its module (then it is renamed without the underscore) or belongs in the importing module.

EVALKIT = ROOT / "evalkit"

# Importing module -> why it still imports another module's private name (owned by another
# engineer this round); the test fails once the module stops, so the entry is removed.
PRIVATE_IMPORT_EXCEPTIONS: dict[str, str] = {}


def private_imports(path: Path) -> list[str]:
    """'file:line: name' for every underscore name PATH takes from another evalkit module: imported
    (``from evalkit.x import _name``, ``from .x import _name``) or read off an imported module (``x._name``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    found, modules = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").split(".")[0] == "evalkit"):
            for alias in node.names:
                if _private(alias.name):
                    found.append(f"{where}:{node.lineno}: {alias.name} from {'.' * node.level}{node.module or ''}")
                elif node.module is None or node.module == "evalkit":  # from evalkit import store
                    modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            modules.update(a.asname or a.name.split(".")[0] for a in node.names if a.name.split(".")[0] == "evalkit")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            base = node.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if isinstance(base, ast.Name) and base.id in modules:
                found.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
    return sorted(found)


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_module_imports_another_modules_private_name():
    problems = []
    for path in sorted(EVALKIT.rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        found = private_imports(path)
        if rel in PRIVATE_IMPORT_EXCEPTIONS:
            assert found, f"{rel} no longer imports a private name: remove it from PRIVATE_IMPORT_EXCEPTIONS"
            continue
        problems += found
    assert not problems, ("a module uses another module's underscore name; make it public there (no "
                          "underscore) or move it to the module that uses it:\n" + "\n".join(problems))


def test_the_private_name_rule_sees_every_spelling(tmp_path):
    sample = tmp_path / "mod.py"
    sample.write_text("import evalkit.core.store\nfrom evalkit import runs as r\nfrom evalkit.run.resume import Key, _Index\n"
                      "from .dispatch import _Sink\nfrom evalkit import __version__\n"
                      "def f():\n    from evalkit.results.gate import _fmt\n    return evalkit.core.store._ERRORS, r._x, r.public\n")
    assert [line.split(": ", 1)[1] for line in private_imports(sample)] == [
        "_Index from evalkit.run.resume", "_Sink from .dispatch", "_fmt from evalkit.results.gate", "evalkit.core.store._ERRORS",
        "r._x"]


# --- small functions -------------------------------------------------------------------------

MAX_FUNCTION_LINES = 80
# "file:function" -> why it is still longer (owned by another engineer this round); the test fails
# once it is short enough, so the entry is removed.
LONG_FUNCTION_EXCEPTIONS: dict[str, str] = {}


def test_no_function_is_longer_than_80_lines():
    long, seen = [], set()
    for path in sorted(EVALKIT.rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=rel)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                key = f"{rel}:{node.name}"
                if lines > MAX_FUNCTION_LINES:
                    seen.add(key)
                    if key not in LONG_FUNCTION_EXCEPTIONS:
                        long.append(f"{key} ({node.lineno}): {lines} lines")
    stale = sorted(set(LONG_FUNCTION_EXCEPTIONS) - seen)
    assert not stale, f"no longer over {MAX_FUNCTION_LINES} lines, remove from LONG_FUNCTION_EXCEPTIONS: {stale}"
    assert not long, f"split these by concern (at most {MAX_FUNCTION_LINES} lines a function):\n" + "\n".join(long)


# --- file names: one home --------------------------------------------------------------------
# A file name a module names as a constant (``store.SAMPLES = "samples.jsonl"``, ``kqa.NLI_JOURNAL``,
# ``config.EXEMPLARS_FILE``...) is written nowhere else: other modules, the CLI included, use the constant.

FILE_NAME = r"\.?[\w.-]+\.(jsonl|json|sqlite|lock|csv|html|txt)"


def file_name_constants(paths) -> dict[str, str]:
    """File name -> 'module.NAME' of each module-level constant of PATHS that is a file name (names
    joined by ' and ' when more than one module names it)."""
    import re

    homes: dict[str, str] = {}
    for path in paths:
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts) if path.is_relative_to(ROOT) else path.stem
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) \
                    and isinstance(node.value.value, str) and re.fullmatch(FILE_NAME, node.value.value):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        home = f"{module}.{target.id}"
                        homes[node.value.value] = f"{homes[node.value.value]} and {home}" \
                            if node.value.value in homes and module not in homes[node.value.value] else home
    return homes


def restated_file_names(paths, homes: dict[str, str]) -> list[str]:
    found = []
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        homes_here = {id(n.value) for n in tree.body if isinstance(n, ast.Assign)}  # the constants themselves
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in homes \
                    and id(node) not in homes_here:
                rel = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
                found.append(f"{rel}:{node.lineno}: {node.value!r} is {homes[node.value]}")
    return found


def test_no_module_restates_a_file_name_another_names():
    paths = sorted(EVALKIT.rglob("*.py"))
    homes = file_name_constants(paths)
    assert {"samples.jsonl", "manifest.json", "summary.json", "scores.jsonl", "generations.jsonl",
            "kqa-nli-journal.jsonl", "sweep.json"} <= set(homes)
    twice = [f"{name}: {home}" for name, home in homes.items() if " and " in home]
    assert not twice, "a file name has one home; the other modules import it:\n" + "\n".join(twice)
    found = restated_file_names(paths, homes)
    assert not found, "use the constant:\n" + "\n".join(found)


def test_the_file_name_check_sees_a_restated_name(tmp_path):
    sample = tmp_path / "mod.py"
    sample.write_text("HOME = 'samples.jsonl'\n"
                      "def f(run_dir):\n    return f\"{run_dir / 'samples.jsonl'}\", 'x.jsonl'\n")
    assert [line.split(": ", 1)[1] for line in restated_file_names([sample], {"samples.jsonl": "store.SAMPLES"})] \
        == ["'samples.jsonl' is store.SAMPLES"]
    other = tmp_path / "other.py"
    other.write_text("FILE = 'samples.jsonl'\n")
    assert file_name_constants([sample, other]) == {"samples.jsonl": "mod.HOME and other.FILE"}
