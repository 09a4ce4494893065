"""The registry table, fetching with sha256 checks, and the ``evalkit data`` commands."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from evalkit.cli import main
from evalkit.data.datasets import load_dataset
from evalkit.data.fetch import FetchError, fetch, fetch_file, sha256_file
from evalkit.data.registry import benchmarks, bundled_dir, get_benchmark, match_file

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = None

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EVALKIT_SHARED") or ROOT.parent / "shared")
EVAL_DATA = SHARED / "eval_data"
needs_shared = pytest.mark.skipif(not EVAL_DATA.is_dir(), reason=f"shared benchmark folder {EVAL_DATA} is absent")
SHAPES = {"jsonl", "json-list", "json-sources", "json-keyed", "pubmedqa-pqal", "pubmedqa-split", "csv"}


# --------------------------------------------------------------------------- table


def test_registry_entries_are_well_formed():
    entries = benchmarks()
    names = [b.name for b in entries]
    assert len(set(names)) == len(names)
    file_names = [b.file_name for b in entries]
    assert len(set(file_names)) == len(file_names)  # a file name identifies its benchmark
    for b in entries:
        assert len(b.sha256) == 64 and int(b.sha256, 16) >= 0, b.name
        assert b.shape in SHAPES, b.name
        assert b.items > 0 and b.source and b.license, b.name
        assert all(get_benchmark(r) for r in b.requires)
        assert b.local or b.url is None or b.url.startswith("https://raw.githubusercontent.com/"), b.name
        if b.url is None and not b.local:
            assert "--from" in b.note, f"{b.name}: say how to get a derived file"
    for expected in ("medqa", "medbullets_op4", "medbullets_op5", "medxpertqa", "pubmedqa", "hle_biomed",
                     "medmcqa", "mmlu_medical", "sample_medqa"):
        assert expected in names


def test_urls_pin_a_commit():
    for b in benchmarks():
        if b.url:
            commit = b.url.split("/")[5]
            assert len(commit) >= 12 and int(commit, 16) >= 0, b.name


def test_get_and_match():
    assert get_benchmark("medqa").file_name == "medqa_test.jsonl"
    assert match_file("/anywhere/medqa_test.jsonl").name == "medqa"
    assert match_file("other.jsonl") is None
    with pytest.raises(KeyError, match="unknown benchmark 'nope' \\(known: medqa, "):
        get_benchmark("nope")


def test_local_sample_benchmark_matches_its_entry():
    bench = get_benchmark("sample_medqa")
    path = bundled_dir("eval_data") / bench.file
    loaded = load_dataset(path)
    assert loaded.verified is True and len(loaded.items) == bench.items == 30
    assert {len(i.options) for i in loaded.items} == {4, 5}
    assert {i.meta["meta_info"] for i in loaded.items} == {"step1", "step2&3"}
    assert all(i.options[i.answer_idx] == i.meta["answer"] for i in loaded.items)
    assert len({i.answer_idx for i in loaded.items}) == 5  # the gold letter varies


@pytest.mark.skipif(tomllib is None, reason="tomllib needs Python 3.11")
def test_pyproject_lists_every_package_and_bundles_the_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "evalkit").rglob("__init__.py")}
    assert found <= listed, f"add {sorted(found - listed)} to [tool.setuptools] packages"
    assert config["package-dir"] == {"evalkit._prompts": "prompts", "evalkit._eval_data": "eval_data"}
    bundled = set(config["package-data"]["evalkit._eval_data"])
    assert {"registry.json", "sample_medqa.jsonl", "fewshot_exemplars.jsonl"} <= bundled
    assert all((ROOT / "eval_data" / name).is_file() for name in bundled)


# --------------------------------------------------------------------------- fetch


def tampered_mirror(tmp_path: Path, name: str) -> Path:
    """A mirror folder whose copy of NAME's file has one byte changed."""
    bench = get_benchmark(name)
    mirror = tmp_path / "mirror"
    target = mirror / bench.file
    target.parent.mkdir(parents=True)
    data = bytearray((EVAL_DATA / bench.file).read_bytes())
    data[100] = ord("#") if data[100] != ord("#") else ord("%")
    target.write_bytes(bytes(data))
    return mirror


@needs_shared
def test_fetch_from_a_mirror_folder(tmp_path):
    data_dir = tmp_path / "eval_data"
    [result] = fetch(["medqa"], source=str(EVAL_DATA), data_dir=data_dir)
    assert result.status == "fetched" and result.path == data_dir / "medqa_test.jsonl"
    assert sha256_file(result.path) == get_benchmark("medqa").sha256
    [again] = fetch(["medqa"], source=str(EVAL_DATA), data_dir=data_dir)
    assert again.status == "present"


@needs_shared
def test_tampered_copy_is_refused_and_a_good_file_kept(tmp_path):
    data_dir = tmp_path / "eval_data"
    fetch(["medqa"], source=str(EVAL_DATA), data_dir=data_dir)
    good = (data_dir / "medqa_test.jsonl").read_bytes()
    (data_dir / "medqa_test.jsonl").write_bytes(good[:-10])  # a damaged local copy is re-fetched...
    mirror = tampered_mirror(tmp_path, "medqa")
    with pytest.raises(FetchError, match="checksum mismatch") as info:
        fetch(["medqa"], source=str(mirror), data_dir=data_dir)  # ...but never from a bad source
    assert "refused; the existing" in str(info.value)
    assert (data_dir / "medqa_test.jsonl").read_bytes() == good[:-10]
    assert sorted(p.name for p in data_dir.iterdir()) == ["medqa_test.jsonl"]  # no temp file left
    [result] = fetch(["medqa"], source=str(EVAL_DATA), data_dir=data_dir)
    assert result.status == "replaced" and (data_dir / "medqa_test.jsonl").read_bytes() == good


@needs_shared
def test_tampered_copy_with_no_previous_file_leaves_nothing(tmp_path):
    data_dir = tmp_path / "eval_data"
    with pytest.raises(FetchError, match="checksum mismatch"):
        fetch(["medqa"], source=str(tampered_mirror(tmp_path, "medqa")), data_dir=data_dir)
    assert list(data_dir.iterdir()) == []


@needs_shared
def test_fetch_brings_the_files_a_benchmark_is_read_with(tmp_path):
    data_dir = tmp_path / "eval_data"
    results = fetch(["pubmedqa"], source=str(EVAL_DATA), data_dir=data_dir)
    assert [r.name for r in results] == ["pubmedqa_pqal", "pubmedqa"]
    assert len(load_dataset(data_dir / "pubmedqa" / "test_ground_truth.json").items) == 500


def test_local_benchmark_comes_from_the_bundled_copy(tmp_path):
    [result] = fetch(["sample_medqa"], data_dir=tmp_path)
    assert result.status == "fetched"
    assert sha256_file(tmp_path / "sample_medqa.jsonl") == get_benchmark("sample_medqa").sha256


def test_derived_file_needs_a_mirror(tmp_path):
    with pytest.raises(FetchError, match="no public origin is registered"):
        fetch(["medxpertqa_text"], data_dir=tmp_path)


def test_fetch_errors(tmp_path):
    with pytest.raises(FetchError, match="unknown benchmark 'nope'"):
        fetch(["nope"], data_dir=tmp_path)
    with pytest.raises(FetchError, match="is not a directory"):
        fetch(["medqa"], source=str(tmp_path / "absent"), data_dir=tmp_path)
    with pytest.raises(FetchError, match="medqa_test.jsonl is not in mirror"):
        fetch(["medqa"], source=str(tmp_path), data_dir=tmp_path / "d")


@pytest.fixture
def http_mirror():
    """Serve a folder over HTTP on 127.0.0.1; yields a function folder -> base URL."""
    servers = []

    def serve(folder: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(folder))
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - keep test output clean
        pass


@needs_shared
def test_fetch_over_http(tmp_path, http_mirror):
    base = http_mirror(EVAL_DATA)
    data_dir = tmp_path / "eval_data"
    [result] = fetch(["medbullets_op4"], source=base + "/", data_dir=data_dir)
    assert result.source == base + "/medbullets_op4.jsonl" and result.status == "fetched"
    assert sha256_file(result.path) == get_benchmark("medbullets_op4").sha256
    # the default origin is the registry URL: point it at the loopback server
    bench = dataclasses.replace(get_benchmark("medmcqa"), url=base + "/medxpertqa_repo/medmcqa_input.jsonl")
    assert fetch_file(bench, data_dir=data_dir).status == "fetched"


@needs_shared
def test_tampered_copy_over_http_is_refused(tmp_path, http_mirror):
    base = http_mirror(tampered_mirror(tmp_path, "medbullets_op4"))
    with pytest.raises(FetchError, match="checksum mismatch"):
        fetch(["medbullets_op4"], source=base, data_dir=tmp_path / "eval_data")
    assert not (tmp_path / "eval_data" / "medbullets_op4.jsonl").exists()


def test_http_error_is_reported(tmp_path, http_mirror):
    base = http_mirror(tmp_path)
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch(["medqa"], source=base, data_dir=tmp_path / "eval_data")


# --------------------------------------------------------------------------- CLI


def run_cli(*args: str):
    return CliRunner().invoke(main, list(args))


def test_cli_list_prints_the_registry():
    result = run_cli("data", "list")
    assert result.exit_code == 0
    header, *rows = result.stdout.splitlines()
    assert header.split()[:5] == ["name", "file", "items", "options", "sha256"]
    assert len(rows) == len(benchmarks())
    medqa = next(r for r in rows if r.startswith("medqa "))
    assert medqa.split()[:5] == ["medqa", "medqa_test.jsonl", "1273", "5", get_benchmark("medqa").sha256]


def test_cli_check_good_file():
    result = run_cli("data", "check", str(bundled_dir("eval_data") / "sample_medqa.jsonl"))
    assert result.exit_code == 0, result.output
    assert "sample_medqa: 30 items, options per item 4-5 (4: 7, 5: 23)" in result.stdout
    assert "[sample_medqa: sha256 ok]" in result.stdout


def test_cli_check_bad_file_exits_1_with_file_and_line():
    broken = Path(__file__).parent / "data" / "broken" / "records.jsonl"
    good = bundled_dir("eval_data") / "sample_medqa.jsonl"
    result = run_cli("data", "check", str(broken), str(good))
    assert result.exit_code == 1
    assert f"{broken}:4: missing question" in result.stderr
    assert f"{broken}: INVALID (10 problems)" in result.stdout
    assert "sample_medqa: 30 items" in result.stdout  # the other file is still checked


@needs_shared
def test_cli_check_by_registered_name_and_multi_source_file(tmp_path):
    result = run_cli("data", "check", "--data-dir", str(EVAL_DATA), "medmcqa", str(EVAL_DATA / "mirage_benchmark.json"))
    assert result.exit_code == 0, result.output
    assert "medmcqa: 4183 items, options per item 4" in result.stdout
    assert "bioasq: 618 items, options per item 2" in result.stdout


@needs_shared
def test_cli_fetch_and_refuse(tmp_path):
    data_dir = tmp_path / "eval_data"
    result = run_cli("data", "fetch", "medqa", "--from", str(EVAL_DATA), "--data-dir", str(data_dir))
    assert result.exit_code == 0, result.output
    assert f"medqa: fetched {data_dir / 'medqa_test.jsonl'}" in result.stdout
    good = hashlib.sha256((data_dir / "medqa_test.jsonl").read_bytes()).hexdigest()
    (data_dir / "medqa_test.jsonl").write_text("local edit\n")
    mirror = tampered_mirror(tmp_path, "medqa")
    result = run_cli("data", "fetch", "medqa", "--from", str(mirror), "--data-dir", str(data_dir))
    assert result.exit_code == 1 and "checksum mismatch" in result.stderr
    assert (data_dir / "medqa_test.jsonl").read_text() == "local edit\n"
    assert good == get_benchmark("medqa").sha256


def test_cli_fetch_needs_a_name():
    result = run_cli("data", "fetch")
    assert result.exit_code == 2 and "name at least one benchmark" in result.output


def test_registry_file_is_plain_json():
    table = json.loads((bundled_dir("eval_data") / "registry.json").read_text())
    assert len(table["benchmarks"]) == len(benchmarks())


def test_no_public_benchmark_file_is_tracked():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    names = {b.file_name for b in benchmarks() if not b.local}
    assert not names & {Path(line).name for line in tracked.splitlines()}
