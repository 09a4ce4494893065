"""The run format on disk: the one module that reads run directories.

A run directory is ``results/<task-folder>/<run-name>/`` holding:

- ``samples.jsonl``: one SampleRecord a line, appended as each sample finishes;
- ``manifest.json``: what was evaluated and how (``RunManifest``);
- ``summary.json``: per-dataset counts, rewritten at the end of every run;
- while a run is unfinished: ``generations.jsonl`` (each generation of a multi-sample
  strategy as it arrives) and ``scores.jsonl`` (each model-judge score as it arrives).

A RUN given to a reader is a run directory or a bare samples file. Which sample
counts for an item: among the lines of one (dataset, id, index), a success beats a
failed request (one retried on resume) and a later line beats an earlier one; an
item's verdict is its index-0 sample. Lines of every earlier evalkit version are
read as they are: a line without ``scores`` that carries ``correct`` has the one
binary score ``correct``.

Report, leaderboard, gate, HTML and rescoring read runs only through this module.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from evalkit.core.journal import SampleKey, sample_key  # noqa: F401
from evalkit.core.records import LEGACY_SCORE
from evalkit.scoring.metrics import Metric, metric_of
from evalkit.core.store import (MANIFEST, SAMPLES, SUMMARY, iter_samples, parse_json, read_json,  # noqa: F401
                           read_samples)

ItemKey = tuple[str, str]


def counting_samples(samples: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One sample per key, the one that counts: a success beats an error (a failed request
    retried on resume), and a later line beats an earlier one. First-seen order.

    The runner applies the same rule with line numbers only (resume.SampleIndex), to keep
    memory flat on large runs.
    """
    best: dict[SampleKey, dict[str, Any]] = {}
    for s in samples:
        key = sample_key(s)
        old = best.get(key)
        if old is None or not s.get("error") or old.get("error"):
            best[key] = dict(s)
    return list(best.values())


def sample_scores(sample: Mapping[str, Any]) -> dict[str, Any]:
    """{score name: value} of one sample (value None where the scorer could not score); a failed
    request has none. Lines without ``scores`` give their ``correct`` as the one binary score."""
    if sample.get("error"):
        return {}
    scores = sample.get("scores")
    if isinstance(scores, Mapping):
        return {name: (s.get("value") if isinstance(s, Mapping) else None) for name, s in scores.items()}
    if sample.get("correct") is not None:
        return {LEGACY_SCORE: bool(sample["correct"])}
    return {}



@dataclass
class Run:
    """One run's samples and manifest (None for a bare samples file without one)."""

    path: Path
    name: str
    samples: list[dict[str, Any]]
    manifest: dict[str, Any] | None = None
    # Who was writing the run while it was read (evalkit.core.lock.LockHolder): then the samples are
    # a partial snapshot (the complete lines on disk at that moment). None for a finished run.
    live_writer: Any = None
    _items: "OrderedDict[ItemKey, dict[str, Any]] | None" = field(default=None, init=False, repr=False, compare=False)

    @property
    def model(self) -> str:
        """The served model's name from the manifest, else the run's name."""
        return _manifest_name(self.manifest, "model") or self.name

    @property
    def prompt(self) -> str | None:
        """The prompt's name, with the sampling strategy when it is not one greedy sample per item
        (a majority vote over K samples is a different setup from a single answer)."""
        name = _manifest_name(self.manifest, "prompt")
        m = self.manifest or {}
        strategy = m.get("strategy")
        if name is None or strategy in (None, "single"):
            return name
        if strategy == "ensemble-refinement":
            return f"{name} +ER {m.get('samples')}/{m.get('refine_samples')}"
        return f"{name} +SC{m.get('samples')}"

    @property
    def prompt_sha256(self) -> str | None:
        m = self.manifest or {}
        p = m.get("prompt")
        if isinstance(p, Mapping) and p.get("sha256"):
            return str(p["sha256"])
        return m.get("prompt_sha256")

    @property
    def extractor(self) -> str:
        """The extractor that produced the choice scores: the choice scorer's as the manifest's scoring
        record names it (whichever flag chose it), else the manifest's ``extractor``; "evalkit" (the
        built-in one) when unstated."""
        return recorded_extractor(self.manifest) or _manifest_name(self.manifest, "extractor") or "evalkit"

    @property
    def metrics(self) -> dict[str, dict[str, Any]]:
        """Score name -> the metric spec recorded for it (see ``recorded_metrics``)."""
        return recorded_metrics(self.manifest)

    def metric(self, name: str, values: Iterable[Any] = ()) -> Metric:
        """The metric of score NAME in this run: the one recorded for it, else ``default_metric`` of VALUES."""
        return metric_of(name, self.metrics, values)

    @property
    def wall_s(self) -> float | None:
        w = (self.manifest or {}).get("wall_s")
        return float(w) if isinstance(w, (int, float)) and w > 0 else None

    @property
    def finished_at(self) -> str | None:
        return (self.manifest or {}).get("finished_at")

    @property
    def info(self) -> "RunManifest":
        """The manifest, typed."""
        return RunManifest.from_dict(self.manifest)

    def items(self) -> "OrderedDict[ItemKey, dict[str, Any]]":
        """One sample per (dataset, id), chosen as the module docstring says (computed once)."""
        if self._items is None:
            self._items = item_samples(self.samples)
        return self._items


def _scoring_record(manifest: Mapping[str, Any] | None) -> Mapping[str, Any]:
    scoring = (manifest or {}).get("scoring")
    return scoring if isinstance(scoring, Mapping) else {}


def recorded_extractor(manifest: Mapping[str, Any] | None) -> str | None:
    """The extractor of the run's choice scorer, from its scoring record (None without one)."""
    scoring = _scoring_record(manifest)
    if scoring.get("extractor"):
        return str(scoring["extractor"])
    for s in scoring.get("scorers") or ():
        if isinstance(s, Mapping) and s.get("name") == "choice":
            return str((s.get("spec") or {}).get("extractor") or "evalkit")
    return None


def recorded_metrics(manifest: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Score name -> metric spec, as the run's manifest records them (``scoring.metrics``). A run
    written before metrics were recorded gets those its scorers declare for their recorded specs
    (``metrics_for_spec``), where a built-in scorer can say; other scores fall back to
    ``default_metric`` when aggregated."""
    scoring = _scoring_record(manifest)
    if isinstance(scoring.get("metrics"), Mapping):
        return {str(k): dict(v) for k, v in scoring["metrics"].items() if isinstance(v, Mapping)}
    from evalkit.scoring.base import scorer_metrics_for_spec  # the scorer registry, only for old manifests

    out: dict[str, dict[str, Any]] = {}
    for s in scoring.get("scorers") or ():
        if isinstance(s, Mapping):
            out.update({n: m.spec() for n, m in scorer_metrics_for_spec(str(s.get("name")), s.get("spec")).items()})
    return out


def _choice_score(sample: Mapping[str, Any]) -> Any:
    """The stored ``correct`` score dict of a line with named scores; False for a line with other
    scores only; None for a line without ``scores`` (written before named scores)."""
    scores = sample.get("scores")
    if scores is None:
        return None
    if type(scores) is not dict and not isinstance(scores, Mapping):  # type() first: this runs per sample
        return None
    score = scores.get(LEGACY_SCORE)
    if score is None:
        return False if scores else None
    return score if type(score) is dict or isinstance(score, Mapping) else False


def choice_verdict(sample: Mapping[str, Any]) -> bool | None:
    """The multiple-choice verdict of a sample line: its ``correct`` score, else (lines written
    before named scores) its top-level ``correct``; None for a failed request or a sample that was
    not scored as multiple choice. The one place the verdict is read (the choice scorer still
    writes the top-level ``pred`` / ``method`` / ``correct`` for old readers)."""
    if sample.get("error"):
        return None
    score = _choice_score(sample)
    if score is False:
        return None
    if score is not None:
        value = score.get("value")
        return None if value is None else bool(value)
    correct = sample.get("correct")
    return None if correct is None else bool(correct)


def choice_answer(sample: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(the letter read, the rule that matched) of a multiple-choice sample line, read beside its verdict."""
    score = _choice_score(sample)
    if score:
        meta = score.get("meta")
        return score.get("answer"), (meta.get("method") if meta else None)
    return sample.get("pred"), sample.get("method")


def _manifest_name(manifest: Mapping[str, Any] | None, key: str) -> str | None:
    """``manifest[key]`` as a name: a string, or the "name" of a nested record."""
    if not manifest:
        return None
    value = manifest.get(key)
    if isinstance(value, Mapping):
        value = value.get("name")
    if value is None:
        value = manifest.get(f"{key}_name")
    return str(value) if value not in (None, "") else None


def load_run(run: "str | Path | Run") -> Run:
    """Read a run directory or samples file (with the manifest beside it, if any)."""
    if isinstance(run, Run):
        return run
    path = Path(run)
    if path.is_dir():
        samples_file, run_dir = path / SAMPLES, path
        name = path.resolve().name
    else:
        samples_file, run_dir = path, path.parent
        # A file called samples.jsonl belongs to its directory; any other file
        # (a re-scored copy, say) is a run of its own, named after itself.
        name = run_dir.resolve().name if path.name == SAMPLES else path.stem
    if not samples_file.exists():
        raise FileNotFoundError(f"{samples_file}: no samples file (a RUN is a run directory or a samples.jsonl)")
    writer = live_writer(samples_file)  # looked at before and after reading: either makes the read partial
    manifest = None
    if samples_file.name == SAMPLES and (run_dir / MANIFEST).exists():
        manifest = read_manifest(run_dir / MANIFEST)
    samples = read_samples(samples_file)
    for lineno, s in enumerate(samples, start=1):
        if not isinstance(s, dict) or "dataset" not in s or "id" not in s:
            raise ValueError(f"{samples_file}: sample {lineno} lacks 'dataset' or 'id'")
    return Run(path=path, name=name, samples=samples, manifest=manifest,
               live_writer=writer or live_writer(samples_file))


def live_writer(samples_file: str | Path):
    """The evalkit run writing SAMPLES_FILE now (its evalkit.core.lock.LockHolder), else None.

    Only a run directory's own samples.jsonl has a writer; any other file is never written in place.
    """
    from evalkit.core.lock import live_holder  # the lock module imports the server module: only when needed

    samples_file = Path(samples_file)
    if samples_file.name != SAMPLES:
        return None
    return live_holder(samples_file.parent)


def partial_note(run: Run) -> str | None:
    """What to tell a reader of RUN when a live run was writing it, else None."""
    return None if run.live_writer is None else snapshot_note(run.path, run.live_writer, len(run.samples))


def snapshot_note(path: str | Path, writer: Any, n_samples: int) -> str:
    """The note of a read of PATH while WRITER (a LockHolder) was writing it: the read is partial."""
    return (f"{path} is being written by a running evalkit run ({writer.describe()}): "
            f"this is a partial snapshot ({n_samples} complete samples on disk when read)")


def empty_run_reason(run: Run) -> str | None:
    """Why RUN has nothing to report (no sample of any item in its samples file), naming the file and
    what its manifest claims; None for a run with samples."""
    if run.items():
        return None
    samples_file = run.path / SAMPLES if run.path.is_dir() else run.path
    what = "no sample" if not run.samples else "no sample of an item (index 0)"
    status = (run.manifest or {}).get("status")
    claim = f", though its manifest says {status!r}" if status else ""
    return f"{samples_file} holds {what}{claim}: nothing to report"


def load_runs(runs: Iterable["str | Path | Run"]) -> list[Run]:
    return [load_run(r) for r in runs]


def item_samples(samples: Iterable[Mapping[str, Any]]) -> "OrderedDict[ItemKey, dict[str, Any]]":
    """The sample that carries each item's verdict, keyed (dataset, id), first-seen order:
    its index-0 sample, chosen among repeated lines by ``counting_samples``."""
    chosen: OrderedDict[ItemKey, dict[str, Any]] = OrderedDict()
    for s in counting_samples(samples):
        dataset, item_id, index = sample_key(s)
        if index == 0:
            chosen[(dataset, item_id)] = s
    return chosen




def sample_score_dicts(sample: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """{score name: stored score dict} of one sample (what a metric aggregates); a failed request has
    none, and a line without ``scores`` gives its ``correct`` as ``{"value": bool}``."""
    if sample.get("error"):
        return {}
    scores = sample.get("scores")
    if scores is not None and (type(scores) is dict or isinstance(scores, Mapping)):  # per sample: cheap tests first
        return {name: (s if type(s) is dict or isinstance(s, Mapping) else {"value": None})
                for name, s in scores.items()}
    if sample.get("correct") is not None:
        return {LEGACY_SCORE: {"value": bool(sample["correct"])}}
    return {}


def score_dicts(items: Iterable[Mapping[str, Any]]) -> "OrderedDict[str, list[Mapping[str, Any]]]":
    """Per score name, the stored score dicts over ITEMS (samples), in order."""
    out: OrderedDict[str, list[Mapping[str, Any]]] = OrderedDict()
    for s in items:
        for name, score in sample_score_dicts(s).items():
            out.setdefault(name, []).append(score)
    return out


def find_runs(root: str | Path) -> list[Path]:
    """Every run directory (a folder holding samples.jsonl) under ``root``, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a directory")
    return sorted(p.parent for p in root.rglob(SAMPLES))


def to_dataframe(run: "str | Path | Run", *, counting_only: bool = True):
    """The samples of RUN as a pandas DataFrame: one row per sample (the ones that count, unless
    COUNTING_ONLY is False), the stored fields as columns plus one ``score:NAME`` column per score."""
    import pandas as pd

    run = load_run(run)
    samples = counting_samples(run.samples) if counting_only else run.samples
    rows = []
    for s in samples:
        row = {k: v for k, v in s.items() if k not in ("scores", "stages")}
        for name, value in sample_scores(s).items():
            row[f"score:{name}"] = value
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class RunManifest:
    """The typed view of manifest.json (every version's; absent fields are None)."""

    fingerprint: str | None = None
    scoring_fingerprint: str | None = None
    scorers: tuple[str, ...] = ()
    model: str | None = None
    prompt: str | None = None
    extractor: str | None = None
    strategy: str | None = None
    samples: int | None = None
    generation: dict[str, Any] = field(default_factory=dict)
    status: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    wall_s: float | None = None
    evalkit_version: str | None = None
    server: dict[str, Any] | None = None
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)  # score name -> metric spec, as recorded

    @classmethod
    def from_dict(cls, m: Mapping[str, Any] | None) -> "RunManifest":
        if not m:
            return cls()
        scoring = m.get("scoring") if isinstance(m.get("scoring"), Mapping) else {}
        wall = m.get("wall_s")
        return cls(
            fingerprint=m.get("fingerprint"), scoring_fingerprint=scoring.get("fingerprint"),
            scorers=tuple(s.get("name", "?") for s in scoring.get("scorers", ()) if isinstance(s, Mapping)),
            model=_manifest_name(m, "model"), prompt=_manifest_name(m, "prompt"),
            extractor=recorded_extractor(m) or _manifest_name(m, "extractor"), strategy=m.get("strategy"),
            samples=m.get("samples"),
            generation=dict(m.get("generation") or {}), status=m.get("status"), started_at=m.get("started_at"),
            finished_at=m.get("finished_at"), wall_s=float(wall) if isinstance(wall, (int, float)) else None,
            evalkit_version=m.get("evalkit_version"),
            server=dict(m["server"]) if isinstance(m.get("server"), Mapping) else None,
            metrics=recorded_metrics(m),
        )


# --- the invocations of a run: each `evalkit run` of one run directory ---------------------------
INVOCATION_COUNTS = ("sent", "requests", "retries", "errors", "wall_s")


def run_invocations(manifest: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Each ``evalkit run`` of a run directory, oldest first, as its manifest records them: when it
    started and finished, its status, and its counts (INVOCATION_COUNTS: items sent, HTTP requests
    with retries, retries, failed samples, wall seconds). An invocation that was killed has no counts.

    A manifest written before invocations were kept stands for one, with the numbers it has
    (those of its last invocation; its "requested" was not what was sent, so ``sent`` is absent).
    """
    if not manifest:
        return []
    listed = manifest.get("invocations")
    if isinstance(listed, list):
        return [dict(i) for i in listed if isinstance(i, Mapping)]
    if manifest.get("started_at") is None:
        return []
    return [{k: manifest.get(k) for k in ("started_at", "finished_at", "status", "requests", "retries", "errors",
                                          "wall_s") if manifest.get(k) is not None}]


def invocation_totals(manifest: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The sums of INVOCATION_COUNTS over a run's recorded invocations, with their number
    (``invocations``); None for a manifest without the list (an earlier version's, or none)."""
    if not manifest or not isinstance(manifest.get("invocations"), list):
        return None
    listed = run_invocations(manifest)
    totals: dict[str, Any] = {"invocations": len(listed)}
    for name in INVOCATION_COUNTS:
        values = [i[name] for i in listed if isinstance(i.get(name), (int, float))]
        totals[name] = sum(values) if values else None
    return totals


# --- where a run directory is, and its manifest -------------------------------------------------
# A run directory is <results-dir>/<task-folder>/<run-name>. The two names come from flags or from
# the served model's id, so each must be exactly one plain path component: never empty, "." or
# "..", never holding a path separator or NUL, never absolute. Then nothing a run writes lands
# outside --results-dir.

_SEPARATORS = tuple({"/", "\\", os.sep, os.altsep or "/"})


def check_path_component(name: str, what: str) -> str:
    """Return NAME when it is one plain relative path component; raise ValueError naming WHAT otherwise."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{what} must be a non-empty name")
    if name in (".", ".."):
        raise ValueError(f"{what} {name!r} is not allowed: it must name a folder inside the results directory")
    if any(sep in name for sep in _SEPARATORS) or "\0" in name:
        raise ValueError(f"{what} {name!r} must be a single folder name, without '/' or '\\' "
                         "(results always stay inside --results-dir)")
    return name


def run_dir_inside(results_dir: str | Path, task_folder: str, run_name: str) -> Path:
    """``results_dir / task_folder / run_name``, with both names checked (see check_path_component)."""
    return Path(results_dir) / check_path_component(task_folder, "task folder") / \
        check_path_component(run_name, "run name")


def read_manifest(path: str | Path) -> dict[str, Any]:
    """A run's manifest.json as a dict; a torn or foreign file is a ValueError naming the file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text (byte {exc.start}); the file is damaged") from None
    try:
        doc = parse_json(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); the file is torn or damaged") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: not a run manifest (a JSON object was expected)")
    return doc
