"""What makes two runs comparable: their configuration, their status, their coverage.

Pure functions over manifests and item sets, no I/O, and nothing here knows how a
sample is scored: coverage is "which items have a score", whatever the score is.
The leaderboard (and later the gate) build on these.

- ``configuration_of``: the settings that decide what a run measures (model
  identity, prompt, extractor, generation parameters, sampling strategy,
  scoring version). Runs with equal configurations may share a leaderboard row;
  runs that differ in any setting may not.
- ``run_status``: "complete", or why a run is partial (killed, interrupted,
  stopped on a dead endpoint, still running).
- ``reference_items`` and ``choose_ranked``: which datasets (and which items of
  each) a set of rows can be ranked on.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from itertools import combinations
from typing import Any, Hashable, Iterable, Mapping, Sequence, TypeVar

Key = TypeVar("Key", bound=Hashable)
Coverage = Mapping[str, frozenset[str]]  # dataset -> ids of the items that have a score

COMPLETE = "complete"
# Manifest "status" values the runner writes for a run that did not finish.
PARTIAL_STATUSES = ("running", "incomplete", "interrupted", "endpoint-down")
_MAX_CANDIDATES = 4096  # bound on the dataset sets choose_ranked tries (never reached in practice)


@dataclass(frozen=True)
class Configuration:
    """The settings that decide what a run measures; None where the run does not record one.

    ``prompt`` is the display name (with "+SC5" and the like for multi-sample
    strategies); ``prompt_sha256`` tells two templates of one name apart.
    ``checkpoint`` is the content hash of the served checkpoint, from the
    manifest's "server" record when it has one. ``scorers`` names the run's
    scorers; ``scoring_version`` (their fingerprint) tells their settings apart.
    """

    model: str
    checkpoint: str | None
    prompt: str | None
    prompt_sha256: str | None
    extractor: str
    scorers: str | None
    max_new_tokens: int | None
    temperature: float | None
    top_p: float | None
    strategy: str | None
    samples: int | None
    refine_samples: int | None
    scoring_version: str | None
    # The request controls that are set (system prompt, stop, top-k, chat_template_kwargs...), as
    # compact JSON; None when none is. Runs that differ in them measure different things.
    controls: str | None = None

    def settings(self) -> dict[str, Any]:
        """Every setting by name, in field order."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


SETTINGS = tuple(f.name for f in fields(Configuration))
# Settings the tables show in columns of their own; the rest are shown where they differ.
COLUMN_SETTINGS = ("model", "prompt", "extractor")


def checkpoint_hash(manifest: Mapping[str, Any] | None) -> str | None:
    """The served checkpoint's content hash from the manifest's "server" record, if it has one.

    The record's ``model_hash`` (as ``evalkit serve`` writes it) gives a GGUF's
    ``sha256``, or for an HF folder its config and weight-index hashes (joined
    as "config:<sha>+index:<sha>"); a bare ``checkpoint_sha256`` or ``sha256`` is
    read too. A hub id has no local content to hash: None.
    """
    server = (manifest or {}).get("server")
    if not isinstance(server, Mapping):
        return None
    model_hash = server.get("model_hash")
    if isinstance(model_hash, Mapping):
        if model_hash.get("sha256"):
            return str(model_hash["sha256"])
        parts = [f"{label}:{model_hash[key]}" for label, key in (("config", "config_sha256"),
                                                                  ("index", "weight_index_sha256"))
                 if model_hash.get(key)]
        if parts:
            return "+".join(parts)
    for value in (server.get("checkpoint_sha256"), server.get("sha256")):
        if value:
            return str(value)
    return None


def scoring_version(manifest: Mapping[str, Any] | None, samples: Iterable[Mapping[str, Any]] = ()) -> str | None:
    """What scored the run: the scoring fingerprint its samples carry (``scored_with``; samples
    rescored later are what counts), else the manifest's (``scoring.fingerprint``), else the
    evalkit version that wrote the run ("evalkit 0.1.0"), else None."""
    stamps = {str(s["scored_with"]) for s in samples if s.get("scored_with")}
    if stamps:
        return stamps.pop() if len(stamps) == 1 else "mixed: " + ", ".join(sorted(stamps))
    m = manifest or {}
    scoring = m.get("scoring")
    if isinstance(scoring, Mapping) and scoring.get("fingerprint"):
        return str(scoring["fingerprint"])
    if m.get("scoring_fingerprint"):
        return str(m["scoring_fingerprint"])
    return f"evalkit {m['evalkit_version']}" if m.get("evalkit_version") else None


def scorer_names(manifest: Mapping[str, Any] | None) -> str | None:
    """The run's scorers by name ("choice", "choice+judge") from the manifest's scoring record."""
    scoring = (manifest or {}).get("scoring")
    scorers = scoring.get("scorers") if isinstance(scoring, Mapping) else None
    if not isinstance(scorers, list):
        return None
    names = [str(s.get("name")) for s in scorers if isinstance(s, Mapping) and s.get("name")]
    return "+".join(names) or None


def _number(value: Any) -> Any:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def configuration_of(*, model: str, prompt: str | None, prompt_sha256: str | None, extractor: str,
                     manifest: Mapping[str, Any] | None,
                     samples: Iterable[Mapping[str, Any]] = ()) -> Configuration:
    """A run's configuration from its names (as ``report.Run`` reads them) and its manifest."""
    m = manifest or {}
    generation = m.get("generation") if isinstance(m.get("generation"), Mapping) else {}
    strategy = m.get("strategy")
    if strategy is None and manifest is not None:
        strategy = "single"  # manifests written before multi-sample strategies existed
    multi = strategy not in (None, "single")
    return Configuration(
        model=model,
        checkpoint=checkpoint_hash(m),
        prompt=prompt,
        prompt_sha256=prompt_sha256,
        extractor=extractor,
        scorers=scorer_names(m),
        max_new_tokens=_number(generation.get("max_new_tokens")),
        temperature=_number(generation.get("temperature")),
        top_p=_number(generation.get("top_p")),
        strategy=str(strategy) if strategy is not None else None,
        samples=_number(m.get("samples")) if multi else (1 if strategy == "single" else None),
        refine_samples=_number(m.get("refine_samples")) if strategy == "ensemble-refinement" else None,
        scoring_version=scoring_version(m, samples),
        controls=request_controls(generation),
    )


def request_controls(generation: Mapping[str, Any]) -> str | None:
    """The request controls a manifest's ``generation`` record sets (beyond the four sampling
    parameters every run has), as sorted compact JSON; None when none is set."""
    import json

    from evalkit.core.records import GenerationParams

    defaults = GenerationParams().to_dict()
    set_ = {k: v for k, v in generation.items()
            if k in defaults and k not in ("max_new_tokens", "temperature", "top_p", "seed") and v != defaults[k]}
    return json.dumps(set_, sort_keys=True, separators=(",", ":")) if set_ else None


def run_status(manifest: Mapping[str, Any] | None, summary: Mapping[str, Any] | None) -> str:
    """"complete", or the reason a run is partial.

    The manifest's ``status`` decides where it has one; otherwise summary.json's
    ``complete: false`` marks it "incomplete". A run that records neither (older
    runs, bare samples files) counts as complete.
    """
    status = (manifest or {}).get("status")
    if status:
        return str(status)
    if summary is not None and summary.get("complete") is False:
        return "incomplete"
    return COMPLETE


def is_partial(status: str) -> bool:
    return status != COMPLETE


def varying_settings(configs: Sequence[Configuration], *, skip: Sequence[str] = COLUMN_SETTINGS) -> list[str]:
    """The settings (besides SKIP) whose values are not the same in every configuration."""
    return [name for name in SETTINGS if name not in skip and len({getattr(c, name) for c in configs}) > 1]


def reference_items(coverages: Mapping[Key, Coverage], keys: Iterable[Key]) -> dict[str, frozenset[str]]:
    """Per dataset, the item set shared by the most of KEYS' rows (a tie: the larger set)."""
    counts: dict[str, dict[frozenset[str], int]] = {}
    for key in keys:
        for dataset, items in coverages[key].items():
            per = counts.setdefault(dataset, {})
            per[items] = per.get(items, 0) + 1
    return {d: max(per, key=lambda s: (per[s], len(s), sorted(s))) for d, per in counts.items()}


def comparable_datasets(coverage: Coverage, reference: Mapping[str, frozenset[str]]) -> frozenset[str]:
    """The datasets a row covers with exactly the reference items (and at least one)."""
    return frozenset(d for d, items in coverage.items() if items and reference.get(d) == items)


def _intersection_closure(sets: Iterable[frozenset[str]]) -> set[frozenset[str]]:
    found = {s for s in sets if s}
    frontier = set(found)
    while frontier and len(found) < _MAX_CANDIDATES:
        new = {a & b for a, b in combinations(found, 2) if a & b} - found
        frontier = new
        found |= new
    return found


def choose_ranked(coverages: Mapping[Key, Coverage], eligible: Sequence[Key]) -> tuple[list[str], list[Key]]:
    """The datasets to rank on and the rows ranked on them.

    Every ranked row covers every ranked dataset with the same items (the
    reference set of ``reference_items`` over the eligible rows). Among the
    dataset sets that allow this, the one with the most (rows x datasets)
    cells wins; a tie goes to more datasets, then to more rows. Rows not
    returned cover less and are listed apart. Returns ([], []) when no
    eligible row covers anything.
    """
    reference = reference_items(coverages, eligible)
    comparable = {k: comparable_datasets(coverages[k], reference) for k in eligible}
    best: tuple | None = None
    best_pick: tuple[list[str], list[Key]] = ([], [])
    for datasets in _intersection_closure(comparable.values()):
        rows = [k for k in eligible if datasets <= comparable[k]]
        score = (len(rows) * len(datasets), len(datasets), len(rows), sorted(datasets))
        if best is None or score > best:
            best, best_pick = score, (sorted(datasets), rows)
    return best_pick
