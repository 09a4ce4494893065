"""IgakuQA (Japan's medical licensing exams): adapters, the exam's scoring and its report tables."""

from evalkit.benchmarks.igakuqa import exam, scorer  # noqa: F401  (they register themselves)
