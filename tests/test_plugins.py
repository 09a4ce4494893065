"""Units registered from a higher layer are found through the evalkit.plugins entry points (issue 30)."""

from __future__ import annotations

import logging
import subprocess
import sys
from importlib import metadata

from evalkit.core import plugins
from tests.conftest import ROOT


def test_the_install_declares_evalkits_own_plugins():
    names = {e.name: e.value for e in metadata.entry_points(group=plugins.PLUGIN_GROUP)}
    assert names.get("benchmarks") == "evalkit.benchmarks" and names.get("longform") == "evalkit.data.longform"


def test_a_lower_layer_finds_a_benchmarks_adapter_without_importing_it():
    """A fresh process that imports only the data layer still gets IgakuQA's adapter (loaded on the miss)."""
    code = ("import sys\nfrom evalkit.data.adapters import get_adapter\n"
            "assert 'evalkit.benchmarks' not in sys.modules\n"
            "print(get_adapter('igakuqa').__module__, 'evalkit.benchmarks' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.split() == ["evalkit.benchmarks.igakuqa.exam", "True"]


def test_an_install_older_than_the_entry_points_is_named(monkeypatch, caplog):
    monkeypatch.setattr(plugins, "_plugins_loaded", False)
    monkeypatch.setattr(metadata, "entry_points", lambda group: [])
    with caplog.at_level(logging.WARNING, logger="evalkit"):
        plugins.load_plugins()
    assert "longform, benchmarks entry points" in caplog.text and "pip install -e ." in caplog.text
    plugins.load_plugins()  # once only
    assert caplog.text.count("entry points") == 1
