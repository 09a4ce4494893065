"""HealthBench (Arora et al., 2025): conversations graded item by item on physicians' rubrics. Its
adapter, and its grader: the ``healthbench`` rubric (``healthbench.json`` here, a ``rubric_items``
rubric whose per-record score is points met over positive points, its mean clipped to [0, 1])."""

from pathlib import Path

from evalkit.benchmarks.healthbench import adapter  # noqa: F401  (it registers itself)
from evalkit.scoring.rubrics import register_rubric_dir

RUBRICS = register_rubric_dir(Path(__file__).resolve().parent)
