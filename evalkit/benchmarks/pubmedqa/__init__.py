"""PubMedQA (Jin et al. 2019): yes / no / maybe questions about an abstract. Its original files'
layouts, its adapter (a record must carry ``final_decision``) and the options its items get.
Its prompts are the built-in templates' context variants (``<name>_context.txt``): an item with a
context is shown it under any template that has one (evalkit.data.prompts)."""

from evalkit.benchmarks.pubmedqa import adapter, files, prompts  # noqa: F401  (they register themselves)
from evalkit.benchmarks.pubmedqa.adapter import PUBMEDQA_OPTIONS  # noqa: F401
