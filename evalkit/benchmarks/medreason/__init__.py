"""MedReason / HuatuoGPT-o1's evaluation, reproduced for comparison: its answer extractor."""

from evalkit.benchmarks.medreason.extract import extract_medreason
from evalkit.scoring.extract import register_extractor

register_extractor("medreason")(extract_medreason)
