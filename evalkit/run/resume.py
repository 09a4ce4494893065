"""The resume index of a run directory and its generation journal.

``SampleIndex`` says which line of samples.jsonl counts for each item (a success beats an
error, later beats earlier: the journal rule, ``journal.LineIndex``) without holding any
sample, so a resumed run knows what is done and its summary is streamed from the file.
Multi-sample strategies journal each generation to ``generations.jsonl`` as it arrives
(``open_generations``), so a resume re-requests only the generations that are missing.
Both files follow the one journal convention of ``evalkit.core.journal``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from evalkit.core.journal import GENERATIONS, SAMPLES, Journal, LineIndex, TornLine
from evalkit.core.records import Item
from evalkit.run.sampling import Stage
from evalkit.run.summary import DatasetSummary, SampleKey, summarize
from evalkit.scoring.metrics import Metric
from evalkit.scoring.plan import retryable_scores
from evalkit.core.store import SampleWriter, paused_gc

# Fields of a generation journal line that are not part of the generation it records.
_ENVELOPE = ("dataset", "id", "index", "stage", "pred", "method")

Key = SampleKey


class SampleIndex(LineIndex):
    """Which line of samples.jsonl holds the sample that counts for each key (``LineIndex``),
    and the summary of the selected keys streamed from the file."""

    def __init__(self) -> None:
        super().__init__(SAMPLES)
        self.stale = 0  # lines read at load whose scores another scoring fingerprint made (or a judge left to retry)
        self.scores_to_retry = 0  # counting samples with a retryable judge error, as of the last summary()

    def load(self, path: Path | Journal,  # type: ignore[override]
             is_current: Callable[[dict[str, Any]], bool] | None = None) -> None:
        """Index the lines of PATH; with IS_CURRENT, also note the lines whose scores are stale."""
        journal = path if isinstance(path, Journal) else Journal(path, SAMPLES)

        def note_stale(sample: dict[str, Any]) -> None:
            if not is_current(sample):  # type: ignore[misc]
                self.stale += 1

        super().load(journal, note_stale if is_current is not None else None)

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
        return self.selected_records(Journal(path, SAMPLES))


def summary_on_disk(samples_file: Path, items: Iterable[Item]) -> tuple[dict[str, DatasetSummary], int]:
    """The summary of ITEMS as samples.jsonl holds them now, and how many have a sample that counts
    (the file indexed first; a run uses its own live index: ``SampleIndex.summary``)."""
    return index_on_disk(samples_file, items).summary(samples_file)


def index_on_disk(samples_file: Path, items: Iterable[Item]) -> SampleIndex:
    """A fresh index of SAMPLES_FILE with ITEMS selected."""
    index = SampleIndex()
    with paused_gc():
        index.load(samples_file)
    for item in items:
        index.select((item.dataset, item.id, 0))
    return index


def journals_generations(stages: list[Stage]) -> bool:
    """True when a strategy of STAGES asks more than one generation per item (so they are journaled)."""
    return len(stages) > 1 or stages[0].size > 1


def open_generations(run_dir: Path, stages: list[Stage], index: SampleIndex,
                     on_torn: Callable[[TornLine], None] | None = None,
                     ) -> tuple[SampleWriter | None, dict[Key, list[dict[int, dict[str, Any]]]]]:
    """The generation journal of RUN_DIR opened for appending (None for a one-generation strategy),
    and the generations it already holds of each item not yet done: per stage, number -> generation."""
    partial: dict[Key, list[dict[int, dict[str, Any]]]] = {}
    if not journals_generations(stages):
        return None, partial
    journal = Journal.in_run(run_dir, GENERATIONS, on_torn=on_torn)
    writer = journal.writer()  # a torn last line is settled (and reported) before reading
    try:
        latest = journal.latest()
    except BaseException:  # a malformed line mid-file (named file:line): the writer is not left open
        writer.close()
        raise
    for (dataset, item_id, sample, stage, k), g in latest.items():
        key = (dataset, item_id, sample)
        if not index.done(key):
            outs = partial.setdefault(key, [{} for _ in stages])
            if stage < len(outs):
                outs[stage][k] = {name: v for name, v in g.items() if name not in _ENVELOPE}
    return writer, partial


def journal_line(item: Item, stage: int, generation: dict[str, Any]) -> dict[str, Any]:
    """The generation journal's line of one GENERATION of ITEM at STAGE."""
    return {"dataset": item.dataset, "id": item.id, "index": 0, "stage": stage, **generation}
