"""`evalkit serve` is a thin shell: its flags are ServeRequest's fields with ServeRequest's
defaults, and cli/serve.py imports nothing of evalkit but the API; the run-directory lock does
not pull in the serving modules."""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import MISSING, fields

from evalkit.cli.serve import serve
from evalkit.serving.request import ServeRequest
from tests.conftest import ROOT


def test_every_serve_flag_is_a_serve_request_field_with_its_default():
    params = {p.name: p for p in serve.params}
    assert set(params) == {f.name for f in fields(ServeRequest)}
    for f in fields(ServeRequest):
        param = params[f.name]
        if f.default is MISSING:  # a list: repeatable flag (or the arguments after --), empty by default
            assert param.multiple or param.nargs == -1, f.name
            continue
        assert param.default == f.default, (f.name, param.default, f.default)


def test_help_shows_the_request_defaults():
    import click

    ctx = click.Context(serve)
    records = {p.name: p.get_help_record(ctx) for p in serve.params if isinstance(p, click.Option)}
    for f in fields(ServeRequest):
        if f.name in records and f.default not in (MISSING, None, False):
            assert f"[default: {f.default}]" in records[f.name][1], (f.name, records[f.name])
    assert records["timeout_s"][0].startswith("--timeout") and "[default: 900.0]" in records["timeout_s"][1]
    assert "llamacpp 8321" in records["port"][1] and "router 30080" in records["port"][1]  # from each backend


def test_cli_serve_imports_only_the_api():
    tree = ast.parse((ROOT / "evalkit" / "cli" / "serve.py").read_text())
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    modules |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    # the API, the config types (the option defaults) and the CLI's own option helpers
    assert {m for m in modules if m.startswith("evalkit")} == {"evalkit", "evalkit.cli.common", "evalkit.cli.options",
                                                               "evalkit.config"}
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "evalkit"
             for a in n.names}
    assert names == {"api"}


def test_the_lock_does_not_import_the_serving_modules():
    code = "import sys, evalkit.core.lock; print(sorted(m for m in sys.modules if m.startswith('evalkit.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    loaded = eval(out.stdout)  # a list literal printed by the child
    assert "evalkit.core.liveness" in loaded
    assert not [m for m in loaded if m.startswith(("evalkit.serving", "evalkit.serving.backends"))], loaded
