"""Length-aware dispatch: send the items predicted to generate longest first.

On a continuous-batching server the makespan of a run is set by its tail: long
generations that happen to start last keep a few slots busy while the rest
idle. Users rerun the same benchmark checkpoint after checkpoint, so an earlier
run's output lengths are at hand and predict the next run's; dispatching
longest-predicted first (LPT scheduling) moves the long generations to the start
and leaves short ones for the end.

Pure functions over items and predictions, plus two readers at the edge
(``predicted_lengths`` reads a samples file, ``find_auto_source`` scans a
results folder's manifests). Order changes only timing: the runner's samples,
ids, fingerprint and resume are the same whatever the order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from evalkit.core.records import Item
from evalkit.run.rundir import MANIFEST, SampleKey, find_runs, read_manifest, sample_key
from evalkit.core.store import iter_numbered, samples_path

AUTO = "auto"

# Where items without a prediction go. "first": ahead of every predicted item, in
# file order (an unknown item may be long, and at the start no length makes a tail).
# "median": ranked as if predicted at the median of the known predictions.
from evalkit.config import UNKNOWN_FIRST, UNKNOWN_MEDIAN, UNKNOWN_RULES  # noqa: F401,E402 (their home)


def _check_rule(rule: str) -> None:
    if rule not in UNKNOWN_RULES:
        raise ValueError(f"unknown rule for items without a prediction {rule!r}: choose one of "
                         f"{', '.join(UNKNOWN_RULES)}")


def item_key(item: Item) -> SampleKey:
    """The key an item's sample has in samples.jsonl (the runner writes index 0)."""
    return (item.dataset, item.id, 0)


def sample_length(sample: Mapping[str, Any]) -> int | None:
    """The output length of one stored sample in tokens: its ``usage.completion_tokens``
    (for a multi-sample record, the runner's sum over all its generations).

    None for a failed request, or a server that reported no usage.
    """
    if sample.get("error"):
        return None
    tokens = (sample.get("usage") or {}).get("completion_tokens")
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0:
        return None
    return tokens


def predicted_lengths(run: str | Path) -> dict[SampleKey, int]:
    """Predicted output length per sample key, from an earlier run (a run directory or samples file).

    The sample that counts gives the length: a success beats an error, a later
    line beats an earlier one (the runner's rule). Keys without a usable length
    are left out. Streams the file, so memory is one small entry per item.
    """
    path = samples_path(run)
    if not path.is_file():
        raise FileNotFoundError(f"{run}: no samples.jsonl to take output lengths from")
    lengths: dict[SampleKey, int] = {}
    for _, sample in iter_numbered(path):
        tokens = sample_length(sample)
        if tokens is not None:
            lengths[sample_key(sample)] = tokens
    return lengths


def dispatch_order(items: Iterable[Item], predictions: Mapping[SampleKey, float],
                   rule: str = UNKNOWN_FIRST) -> list[Item]:
    """ITEMS longest-predicted first (ties keep file order); items without a prediction go by RULE.

    RULE "first" puts them ahead of all predicted items, in file order; "median"
    ranks them as if predicted at the median known length (after known items of
    the same length). One sort: O(n log n).
    """
    _check_rule(rule)
    items = list(items)
    lengths = [predictions.get(item_key(it)) for it in items]
    known = [i for i, p in enumerate(lengths) if p is not None]
    if not known:
        return items
    unknown = [i for i, p in enumerate(lengths) if p is None]
    known.sort(key=lengths.__getitem__, reverse=True)  # stable: ties keep file order
    if rule == UNKNOWN_FIRST:
        split = 0
    else:
        median = lengths[known[len(known) - 1 - len(known) // 2]]  # the upper median, as sorted(...)[n // 2]
        # after every known item at least as long as the median
        split = next((j for j, i in enumerate(known) if lengths[i] < median), len(known))
    return [items[i] for i in known[:split]] + [items[i] for i in unknown] + [items[i] for i in known[split:]]


@dataclass
class DispatchPlan:
    """Where a run's dispatch order comes from, and how many of its items it predicts."""

    source: Path | None  # the earlier run, or None for file order
    auto: bool
    rule: str
    predictions: dict[SampleKey, int]
    predicted: int = 0
    unpredicted: int = 0

    def order(self, items: Iterable[Item]) -> list[Item]:
        """ITEMS in dispatch order (file order when there is no source); counts what was predicted.

        A run named by the user that predicts none of ITEMS is an error (it is over other data).
        """
        ordered = dispatch_order(items, self.predictions, self.rule)
        self.predicted = sum(item_key(it) in self.predictions for it in ordered)
        self.unpredicted = len(ordered) - self.predicted
        if self.source is not None and not self.auto and ordered and not self.predicted:
            raise ValueError(f"--order-from {self.source}: that run has no sample of any item of this run "
                             "(is it over other data?)")
        return ordered

    def to_dict(self) -> dict[str, Any]:
        """The manifest's ``order`` entry (outside the fingerprint: order changes no sample)."""
        return {"source": str(self.source) if self.source else None, "auto": self.auto,
                "by": "predicted output tokens, longest first" if self.source else "file order",
                "unpredicted_rule": self.rule, "predicted": self.predicted, "unpredicted": self.unpredicted}

    def describe(self) -> str:
        """One line for the user: which run the order comes from."""
        if self.source is None:
            return ("dispatch order: file order" + (" (--order-from auto found no finished run over the same "
                                                     "items and prompt)" if self.auto else ""))
        how = " (auto: the latest finished run over the same items and prompt)" if self.auto else ""
        return (f"dispatch order: longest first by output lengths of {self.source}{how}; {self.predicted} items "
                f"predicted, {self.unpredicted} without a prediction placed {self.rule}")


def plan_dispatch(order_from: str | None, rule: str, *, results_dir: str | Path, data_sha256: Sequence[str],
                  prompt_sha256: str, limit: int | None, exclude: Path | None = None) -> DispatchPlan:
    """Resolve ``--order-from`` (a run directory, a samples file, ``auto``, or None) into a DispatchPlan.

    None is file order. A named run that is missing, or that has no usable lengths,
    is an error (nothing is sent). ``auto`` with no matching run falls back to file order.
    """
    _check_rule(rule)
    if order_from is None:
        return DispatchPlan(None, False, rule, {})
    if order_from == AUTO:
        source = find_auto_source(results_dir, data_sha256=data_sha256, prompt_sha256=prompt_sha256, limit=limit,
                                  exclude=exclude)
        if source is None:
            return DispatchPlan(None, True, rule, {})
        return DispatchPlan(source, True, rule, predicted_lengths(source))
    source = Path(order_from)
    predictions = predicted_lengths(source)
    if not predictions:
        raise ValueError(f"{samples_path(source)}: no sample with usage.completion_tokens to take lengths from")
    return DispatchPlan(source, False, rule, predictions)


def _finished_at(manifest: Mapping[str, Any]) -> datetime | None:
    try:
        at = datetime.fromisoformat(str(manifest["finished_at"]))
    except (KeyError, ValueError):
        return None
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)  # the runner writes UTC


def find_auto_source(results_dir: str | Path, *, data_sha256: Sequence[str], prompt_sha256: str,
                     limit: int | None, exclude: Path | None = None) -> Path | None:
    """The latest complete run under RESULTS_DIR over the same items and prompt, of any model.

    Same items: the same data files (by sha256) and a limit that covers this run's
    (none, or at least LIMIT). Same prompt: the same template hash. Unreadable
    manifests are passed over. EXCLUDE (the run being started) is never chosen.
    """
    want = sorted(data_sha256)
    best: tuple[datetime, str] | None = None
    runs = find_runs(results_dir) if Path(results_dir).is_dir() else []
    for run_dir in runs:
        if exclude is not None and run_dir.resolve() == exclude.resolve():
            continue
        try:
            manifest = read_manifest(run_dir / MANIFEST)
        except (OSError, ValueError):
            continue  # a bare samples file, or a damaged manifest: not a candidate
        if manifest.get("status") != "complete":
            continue
        if manifest.get("prompt_sha256") != prompt_sha256:
            continue
        try:
            if sorted(d["sha256"] for d in manifest.get("data") or []) != want:
                continue
        except (KeyError, TypeError):
            continue
        their_limit = manifest.get("limit")
        if their_limit is not None and (limit is None or their_limit < limit):
            continue
        finished = _finished_at(manifest)
        if finished is None:
            continue
        if best is None or (finished, str(run_dir)) > best:
            best = (finished, str(run_dir))
    return Path(best[1]) if best else None
