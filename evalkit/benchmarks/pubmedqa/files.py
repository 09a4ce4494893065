"""PubMedQA's original files as layouts the dataset loader reads (``evalkit.data.datasets.register_file_shape``):

- ``pubmedqa-pqal``: ``ori_pqal.json``, ``{pmid: {QUESTION, CONTEXTS, final_decision, ...}}``;
- ``pubmedqa-split``: a split such as ``test_ground_truth.json``, ``{pmid: decision}``, read together
  with the ``ori_pqal.json`` beside it (the split's decision is the ground truth).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from evalkit.core.store import parse_json
from evalkit.data.datasets import DatasetError, FileShape, Problem, register_file_shape

PUBMEDQA_PQAL = "ori_pqal.json"


def is_split(values: list[Any]) -> bool:
    """A split: every value is a decision (text)."""
    return all(isinstance(v, str) for v in values)


def is_pqal(values: list[Any]) -> bool:
    """``ori_pqal.json``: every value is a record with a ``QUESTION``."""
    return all(isinstance(v, dict) and "QUESTION" in v for v in values)


def read_pqal(path: Path, members: list[tuple[str, Any, int]], problems: list[Problem]
              ) -> tuple[list[tuple[Any, int, str | None]], dict[Path, str]]:
    """The records of ``ori_pqal.json``, keyed by PMID."""
    return [(record, line, pmid) for pmid, record, line in members], {}


def read_split(path: Path, members: list[tuple[str, Any, int]], problems: list[Problem]
               ) -> tuple[list[tuple[Any, int, str | None]], dict[Path, str]]:
    """Records of PubMedQA's {pmid: decision} split, looked up in the ori_pqal.json beside it."""
    pqal_path = path.with_name(PUBMEDQA_PQAL)
    if not pqal_path.is_file():
        raise DatasetError([Problem(path, 1, f"a PubMedQA split is read with {PUBMEDQA_PQAL} "
                                             f"from the same folder, and {pqal_path} is missing")])
    data = pqal_path.read_bytes()
    try:
        pqal = parse_json(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError([Problem(pqal_path, getattr(exc, "lineno", 1), f"cannot read: {exc}")])
    found: list[tuple[Any, int, str | None]] = []
    for pmid, decision, line in members:
        record = pqal.get(pmid)
        if not isinstance(record, dict):
            problems.append(Problem(path, line, f"PMID {pmid} is not in {pqal_path}"))
            continue
        # The split file is the ground truth; it overrides the record's own decision.
        found.append(({**record, "final_decision": decision}, line, pmid))
    return found, {pqal_path: hashlib.sha256(data).hexdigest()}


# Order matters: a split (decisions) is told apart before the keyed layouts the loader knows.
SPLIT = register_file_shape(FileShape("pubmedqa-split", is_split, read_split, "PubMedQA's files"))
PQAL = register_file_shape(FileShape("pubmedqa-pqal", is_pqal, read_pqal, "PubMedQA's files"))
