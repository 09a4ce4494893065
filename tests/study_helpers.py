"""Shared helpers of the study tests: long-form runs written as run directories, a study made of them."""

import hashlib
import json
import secrets
from pathlib import Path


def write_run(root: Path, name: str, answers: dict, *, refs: dict | None = None, errors: dict | None = None) -> Path:
    """A run directory NAME under ROOT whose samples answer each question id of ANSWERS."""
    run = root / name
    run.mkdir(parents=True)
    with open(run / "samples.jsonl", "w") as f:
        for i, (qid, text) in enumerate(answers.items()):
            rec = {"id": qid, "dataset": "liveqa", "question": f"Question {qid}?", "output": text,
                   "index": 0, "target": [refs[qid]] if refs else None}
            if errors and qid in errors:
                rec["error"], rec["output"] = errors[qid], ""
            f.write(json.dumps(rec) + "\n")
    return run


def plain_token() -> tuple[str, str]:
    """A test token and its hash."""
    token = secrets.token_urlsafe(16)
    return token, hashlib.sha256(token.encode()).hexdigest()
