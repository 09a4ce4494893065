"""A benchmark's code lives in its own folder (issue 30): no generic module names a benchmark.

Every file of the evalkit package outside ``evalkit/benchmarks/`` (modules and the data files that ship
with them: rubrics, templates, page assets) is read line by line, code, strings, docstrings and
comments alike, and so is every file name. A benchmark kind that has code of its own is named only in
its folder, which registers what it adds (adapters, file shapes, scorers, extractors, judge passes,
readers of saved answers, prompt variants) into the generic registries. Nothing is exempt.
"""

from __future__ import annotations

import re

from tests.conftest import ROOT

PACKAGE = ROOT / "evalkit"
HOMES = PACKAGE / "benchmarks"
# The kinds with a folder of their own under evalkit/benchmarks/ (K-QA also spelled k-qa).
KINDS = re.compile(r"igakuqa|k-?qa|healthbench|pubmedqa|medreason", re.IGNORECASE)
TEXT_SUFFIXES = {".py", ".json", ".txt", ".md", ".html", ".js", ".css", ".toml", ".cfg"}


def generic_files() -> list:
    """Every file of the package outside evalkit/benchmarks/ (caches left out)."""
    return [p for p in sorted(PACKAGE.rglob("*"))
            if p.is_file() and HOMES not in p.parents and "__pycache__" not in p.parts]


def test_no_generic_module_names_a_benchmark():
    found = []
    for path in generic_files():
        rel = path.relative_to(ROOT)
        if KINDS.search(str(path.relative_to(PACKAGE))):
            found.append(f"{rel}: the file's name")
        if path.suffix not in TEXT_SUFFIXES:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if KINDS.search(line):
                found.append(f"{rel}:{number}: {line.strip()}")
    assert not found, ("generic modules name a benchmark; move the code into evalkit/benchmarks/<kind>/ and "
                       "register it:\n" + "\n".join(found))


def test_each_kind_has_its_folder_and_the_package_imports_it():
    init = (HOMES / "__init__.py").read_text(encoding="utf-8")
    for kind in ("igakuqa", "kqa", "healthbench", "pubmedqa", "medreason"):
        assert (HOMES / kind / "__init__.py").is_file(), kind
        assert re.search(rf"\b{kind}\b", init), f"evalkit/benchmarks/__init__.py does not import {kind}"


def test_the_scan_finds_a_name():
    """The pattern catches each spelling (a scan that matched nothing would pass vacuously)."""
    for text in ("IgakuQA", "igakuqa_strict", "K-QA", "kqa_per", "HealthBench", "_pubmedqa", "MedReason"):
        assert KINDS.search(text), text
    assert not KINDS.search("a question and its answer (qa), mcq, liveqa, medicationqa, nist_graded")
