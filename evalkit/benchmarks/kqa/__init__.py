"""K-QA: long answers judged statement by statement against physicians' labels."""

from evalkit.benchmarks.kqa import judge, scorer, statements, targets  # noqa: F401  (they register themselves)
