"""IgakuQA (Japan's medical licensing exams): adapters, the exam's scoring and its report tables."""

from evalkit.benchmarks.igakuqa import exam, scorer, targets  # noqa: F401  (they register themselves)
