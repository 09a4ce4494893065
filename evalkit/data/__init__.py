"""Benchmark data: the registry and its downloads, adapters (a source record -> Item), datasets,
prompt templates, suites, and overlap with training corpora."""
