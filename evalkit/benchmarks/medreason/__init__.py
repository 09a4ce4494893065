"""MedReason / HuatuoGPT-o1's evaluation, reproduced for comparison: its answer extractor (with the
compat table ``evalkit score`` prints under the accuracy) and the reader of its evaluation logs."""

from evalkit.benchmarks.medreason import log  # noqa: F401  (it registers itself)
from evalkit.benchmarks.medreason.extract import compat_table, extract_medreason
from evalkit.scoring.extract import register_extractor

# An extractor's ``report_table(samples)``: a table of its own that ``evalkit score`` prints under the accuracy.
extract_medreason.report_table = compat_table  # type: ignore[attr-defined]
register_extractor("medreason")(extract_medreason)
