"""The renderer registry (evalkit.results.formats): one list of formats, every kind renders through it,
and a format is added by one file."""

from __future__ import annotations

import importlib
import json
import sys
import textwrap

import pytest

from evalkit import api, config
from evalkit.results.formats import format_names, format_of, render
from evalkit.results.report_document import render_report, report_document
from evalkit.results.formats import registry
from tests.runfactory import verdict_samples, write_run

TOY = '''
"""A toy format: each report row as "dataset=accuracy", one a line."""

from evalkit.results.formats import Format, register, register_format

FORMAT = register_format(Format("toy", "dataset=accuracy lines"))


@register("report", "toy")
def report_toy(doc, **_):
    return "".join(f"{row.dataset}={row.accuracy:.2f}\\n" for row in doc.report.rows)
'''


@pytest.fixture
def clean_registry(monkeypatch):
    """The registry as it is now, restored after the test (a toy format must not leak into other tests)."""
    monkeypatch.setattr(registry, "_FORMATS", dict(registry._FORMATS))
    monkeypatch.setattr(registry, "_RENDERERS", {k: dict(v) for k, v in registry._RENDERERS.items()})


def test_each_kind_offers_the_formats_its_command_always_did():
    assert format_names("report") == ("rich", "markdown", "csv", "json", "html")
    assert format_names("leaderboard") == ("rich", "markdown", "csv", "json", "html")
    assert format_names("trend") == ("table", "markdown", "json", "html")
    assert api.study.formats() == format_names("study") == ("text", "markdown", "json", "html")
    assert format_names("gate") == ("rich", "json", "junit")
    assert format_names("compare") == ("html",)
    assert format_names("report", terminal=False) == ("markdown", "csv", "json", "html")


def test_the_config_defaults_are_registered_formats():
    assert config.ReportSettings().format in format_names("report")
    assert config.SweepCommandSettings().report_format in format_names("trend")
    assert config.StudySettings().report_format in format_names("study")
    assert not hasattr(config, "FORMATS") and not hasattr(config, "TREND_FORMATS")  # the registry is the list


def test_one_format_under_several_names():
    assert format_of("rich") is format_of("table") is format_of("text")
    assert format_of("rich").terminal and format_of("html").page
    with pytest.raises(ValueError, match="unknown format 'pdf'"):
        format_of("pdf")


def test_a_kind_refuses_a_format_it_has_no_renderer_in(tmp_path):
    doc = report_document([write_run(tmp_path, "r", verdict_samples("medqa", [True]))])
    with pytest.raises(ValueError, match=r"unknown format 'junit' for a report \(choose from rich, markdown"):
        render("report", doc, "junit")
    with pytest.raises(ValueError, match="unknown format 'rich'"):
        render_report(doc, "rich")  # text only: the terminal's tables are report_renderables


def test_a_format_is_one_file(tmp_path, monkeypatch, clean_registry):
    (tmp_path / "toy_format.py").write_text(textwrap.dedent(TOY), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "toy_format", raising=False)
    importlib.import_module("toy_format")
    runs = [write_run(tmp_path, "r", verdict_samples("medqa", [True, True, True, False]))]
    doc = report_document(runs)
    assert "toy" in format_names("report")
    assert render_report(doc, "toy") == "medqa=0.75\n"
    assert render("report", doc, "toy") == render_report(doc, "toy")


def test_the_gate_writes_json_and_junit_through_the_registry(tmp_path):
    base = write_run(tmp_path, "base", verdict_samples("medqa", [True] * 20))
    cand = write_run(tmp_path, "cand", verdict_samples("medqa", [True] * 20))
    result = api.gate(base, cand)
    written = result.write_reports(json_out=tmp_path / "g.json", junit_out=tmp_path / "g.xml")
    assert json.loads(written[0].read_text())["verdict"] == result.verdict
    assert written[1].read_text() == render("gate", result, "junit")
