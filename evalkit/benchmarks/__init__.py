"""Benchmark kinds with code of their own, one folder each. Importing this package registers what
they add to the generic registries: adapters, file shapes, target kinds, scorers, metrics, extractors,
rubrics, prompt variants, judge file passes and readers of other harnesses' logs (it is the
``benchmarks`` entry point of the ``evalkit.plugins`` group, so a registry below finds them without
importing this layer)."""

# K-QA before IgakuQA: messages list the registered target kinds in this order, as they were listed
# when the kinds lived in evalkit.core.records.
from evalkit.benchmarks import healthbench, kqa, igakuqa, medreason, pubmedqa  # noqa: F401  (each registers itself)
