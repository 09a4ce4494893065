"""Benchmark kinds with code of their own, one folder each. Importing this package registers their
adapters, scorers, metrics and extractors (it is the ``benchmarks`` entry point of the
``evalkit.plugins`` group, so a registry below finds them without importing this layer)."""

from evalkit.benchmarks import healthbench, igakuqa, kqa, medreason, pubmedqa  # noqa: F401  (each registers itself)
