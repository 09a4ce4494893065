"""What identifies a checkpoint: its content hash and the name it is served under by default.
Pure but for reading the checkpoint's files; knows no engine."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any


def sha256_file(path: str | Path, *, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def checkpoint_hash(model_path: str | Path) -> dict[str, Any]:
    """What identifies a checkpoint's content.

    A single file (a GGUF): its sha256. An HF folder: the sha256 of its config.json and of
    its weight index (with no index, the names and sizes of its weight files; hashing every
    weight file of a large checkpoint would cost minutes). A hub id: nothing local to hash.
    """
    p = Path(model_path)
    if p.is_file():
        return {"kind": "file", "sha256": sha256_file(p), "bytes": p.stat().st_size}
    if p.is_dir():
        out: dict[str, Any] = {"kind": "hf-folder"}
        if (p / "config.json").is_file():
            out["config_sha256"] = sha256_file(p / "config.json")
        indexes = sorted(p.glob("*.safetensors.index.json")) + sorted(p.glob("*.bin.index.json"))
        if indexes:
            out["weight_index_sha256"] = sha256_file(indexes[0])
        else:
            weights = sorted(p.glob("*.safetensors")) + sorted(p.glob("*.bin"))
            out["weights"] = [{"file": w.name, "bytes": w.stat().st_size} for w in weights]
        return out
    return {"kind": "hub-id"}


def name_from_path(model_path: str) -> str:
    """The model id a checkpoint is served under by default: a file's stem, a folder's name,
    a hub repo id itself."""
    p = Path(model_path)
    if p.is_file():
        return p.stem
    if p.is_dir():
        return p.resolve().name
    return model_path.rstrip("/")  # a hub repo id such as org/Model
