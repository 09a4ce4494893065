"""The resume index of a run directory and its generation journal.

``_SampleIndex`` says which line of samples.jsonl counts for each item (a success beats an
error, later beats earlier) without holding any sample, so a resumed run knows what is done
and its summary is streamed from the file. Multi-sample strategies journal each generation
to ``generations.jsonl`` as it arrives (``open_journal``), so a resume re-requests only the
generations that are missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from evalkit.records import Item
from evalkit.sampling import Stage
from evalkit.score import DatasetSummary, SampleKey, sample_key, summarize
from evalkit.scoring.metrics import Metric
from evalkit.scoring.plan import retryable_scores
from evalkit.store import SampleWriter, iter_numbered, paused_gc

GENERATIONS = "generations.jsonl"  # the per-generation journal of multi-sample runs
# Fields of a journal line that are not part of the generation it records.
_JOURNAL_KEYS = ("dataset", "id", "index", "stage", "pred", "method")

Key = SampleKey


def _count_lines(path: Path) -> int:
    n = 0
    if path.exists():
        with open(path, "rb") as fh:
            for _ in fh:
                n += 1
    return n


class _SampleIndex:
    """Which line of samples.jsonl holds the sample that counts for each key.

    One small int per key (line number, ok and selected bits), never the samples
    themselves: about 0.2 kB per item, so memory stays flat in the size of outputs.
    """

    _OK, _SELECTED = 2, 1

    def __init__(self) -> None:
        self.best: dict[Key, int] = {}  # key -> lineno << 2 | ok << 1 | selected
        self.lines = 0
        self.stale = 0  # lines read at load whose scores another scoring fingerprint made (or a judge left to retry)
        self.scores_to_retry = 0  # counting samples with a retryable judge error, as of the last summary()

    def load(self, path: Path, is_current: Callable[[dict[str, Any]], bool] | None = None) -> None:
        """Index the lines of PATH; with IS_CURRENT, also note the lines whose scores are stale."""
        for lineno, s in iter_numbered(path):
            self.add(sample_key(s), not s.get("error"), lineno)
            if is_current is not None and not is_current(s):
                self.stale += 1
        self.lines = _count_lines(path)

    def add(self, key: Key, ok: bool, lineno: int | None = None, selected: bool = False) -> None:
        if lineno is None:
            self.lines += 1
            lineno = self.lines
        old = self.best.get(key)
        if old is None:
            self.best[key] = lineno << 2 | ok * self._OK | selected * self._SELECTED
        elif ok or not old & self._OK:  # a success beats an error, later beats earlier
            self.best[key] = lineno << 2 | ok * self._OK | (selected or old & self._SELECTED)

    def done(self, key: Key) -> bool:
        return bool(self.best.get(key, 0) & self._OK)

    def select(self, key: Key) -> None:
        if key in self.best:
            self.best[key] |= self._SELECTED

    def counting(self, lineno: int, sample: dict[str, Any]) -> bool:
        """True when line LINENO holds the sample that counts for its key (selected or not)."""
        v = self.best.get(sample_key(sample))
        return v is not None and v >> 2 == lineno

    def summary(self, path: Path, metrics: Mapping[str, Metric] | None = None
                ) -> tuple[dict[str, DatasetSummary], int]:
        """The summary of the selected keys as PATH (the file this index describes) holds them,
        and how many have a sample that counts. Both are read from the file, not from the
        writing process's memory, so what summary.json says (and whether the run is complete)
        is what is on disk; this index only says which line counts, so the file is parsed once
        and memory holds no samples. A sample whose judge could not be reached (a retryable
        judge error) does not count until it is scored: ``scores_to_retry`` says how many."""
        on_disk = [0]
        self.scores_to_retry = 0

        def counted() -> Iterator[dict[str, Any]]:
            for s in self.selected_samples(path):
                if not s.get("error"):
                    retry = retryable_scores(s.get("scores"))
                    self.scores_to_retry += retry
                    on_disk[0] += not retry
                yield s

        with paused_gc():
            summary = summarize(counted(), metrics)
        return summary, on_disk[0]

    def selected_samples(self, path: Path) -> Iterator[dict[str, Any]]:
        """Stream the samples that count, for the selected keys."""
        for lineno, s in iter_numbered(path):
            v = self.best.get(sample_key(s))
            if v is not None and v & self._SELECTED and v >> 2 == lineno:
                yield s


def summary_on_disk(samples_file: Path, items: Iterable[Item]) -> tuple[dict[str, DatasetSummary], int]:
    """The summary of ITEMS as samples.jsonl holds them now, and how many have a sample that counts
    (the file indexed first; a run uses its own live index: ``_SampleIndex.summary``)."""
    return _index_on_disk(samples_file, items).summary(samples_file)


def _index_on_disk(samples_file: Path, items: Iterable[Item]) -> _SampleIndex:
    """A fresh index of SAMPLES_FILE with ITEMS selected."""
    index = _SampleIndex()
    with paused_gc():
        index.load(samples_file)
    for item in items:
        index.select((item.dataset, item.id, 0))
    return index


def journals_generations(stages: list[Stage]) -> bool:
    """True when a strategy of STAGES asks more than one generation per item (so they are journaled)."""
    return len(stages) > 1 or stages[0].size > 1


def open_journal(run_dir: Path, stages: list[Stage], index: _SampleIndex
                 ) -> tuple[SampleWriter | None, dict[Key, list[dict[int, dict[str, Any]]]]]:
    """The generation journal of RUN_DIR opened for appending (None for a one-generation strategy),
    and the generations it already holds of each item not yet done: per stage, number -> generation."""
    partial: dict[Key, list[dict[int, dict[str, Any]]]] = {}
    if not journals_generations(stages):
        return None, partial
    journal_file = run_dir / GENERATIONS
    journal = SampleWriter(journal_file)
    for _, g in iter_numbered(journal_file):
        key = sample_key(g)
        if not index.done(key):
            outs = partial.setdefault(key, [{} for _ in stages])
            if g["stage"] < len(outs):
                outs[g["stage"]][g["k"]] = {k: v for k, v in g.items() if k not in _JOURNAL_KEYS}
    return journal, partial


def journal_line(item: Item, stage: int, generation: dict[str, Any]) -> dict[str, Any]:
    """The journal line of one GENERATION of ITEM at STAGE."""
    return {"dataset": item.dataset, "id": item.id, "index": 0, "stage": stage, **generation}
