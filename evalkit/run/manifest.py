"""The manifest of a run directory: its fingerprint, what it was run with, and one entry per invocation.

``run_fingerprint`` hashes everything that changes what the server is asked and answers (equal
fingerprints share a run directory); ``_manifest`` records the settings, the data, the scoring
plan and the server's identity; secrets are masked (``masked``) wherever they appear.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from evalkit import __version__
from evalkit.serving.client import EndpointPool, redact
from evalkit.config import RunConfig
from evalkit.data.datasets import LoadedDataset
from evalkit.data.prompts import PromptTemplate, template_summary
from evalkit.core.records import GenerationParams, Item
from evalkit.run.rundir import read_manifest, run_invocations
from evalkit.run.sampling import ENSEMBLE_REFINEMENT, RefineTemplate
from evalkit.scoring.plan import ScoringPlan
from evalkit.core.store import MANIFEST


def utc_now() -> str:
    """The time now in UTC, as the manifest writes it (ISO 8601, to the second)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_fingerprint(
    *, model: str, prompt: PromptTemplate, data: list[LoadedDataset], params: GenerationParams,
    strategy: dict[str, Any] | None = None, exemplars: list[Item] | None = None,
) -> str:
    """The generation fingerprint: a hash of everything that changes what the server is asked and
    answers. Equal fingerprints share a run directory; how samples are scored is not part of it
    (see evalkit.scoring.stage), so a new scorer rescores saved generations."""
    doc: dict[str, Any] = {
        "model": model,
        "prompt_sha256": prompt.sha256,
        "data_sha256": sorted(d.sha256 for d in data),
        "params": params.fingerprint_doc(),
    }
    # Optional parts are absent when unused, so the other fingerprints stay as they were.
    if prompt.context_variant is not None:
        doc["prompt_variant_sha256"] = prompt.context_variant.sha256
    if exemplars:
        doc["exemplars"] = [(e.id, e.question) for e in exemplars]
    if strategy:
        doc["strategy"] = strategy
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def strategy_doc(config: RunConfig, refine: RefineTemplate | None) -> dict[str, Any] | None:
    """The multi-sample strategy as the fingerprint holds it (None for one generation per item)."""
    if not config.multi_sample:
        return None
    doc: dict[str, Any] = {"name": config.strategy, "samples": config.samples}
    if refine is not None:
        doc.update(refine_samples=config.refine_samples, refine_prompt=refine.name,
                   refine_prompt_sha256=refine.sha256)
    return doc


def default_run_name(template: PromptTemplate, config: RunConfig, fp: str) -> str:
    """The run directory's name when none is given: the prompt, the strategy, the fingerprint's start."""
    if config.strategy == ENSEMBLE_REFINEMENT:
        return f"{template.name}-er{config.samples}x{config.refine_samples}-{fp[:10]}"
    if (config.samples or 1) > 1:
        return f"{template.name}-sc{config.samples}-{fp[:10]}"
    return f"{template.name}-{fp[:10]}"


def check_fingerprint(run_dir: Path, fp: str) -> dict[str, Any] | None:
    """The manifest an earlier invocation left in RUN_DIR (None if none); a ValueError when it
    was made with other settings (another fingerprint)."""
    path = run_dir / MANIFEST
    if not path.exists():
        return None
    manifest = read_manifest(path)
    old = manifest.get("fingerprint")
    if old and old != fp:
        raise ValueError(
            f"{run_dir} holds a run with other settings (fingerprint {old[:10]} != {fp[:10]}); "
            "choose another --run-name, or drop --run-name to get a fresh directory"
        )
    return manifest


def masked(doc: dict[str, Any], secrets: list[str]) -> dict[str, Any]:
    """DOC with every occurrence of SECRETS masked ("***"), wherever a scorer's spec or a server put one."""
    if not secrets:
        return doc
    text = json.dumps(doc, ensure_ascii=False)
    return json.loads(redact(text, [json.dumps(s, ensure_ascii=False)[1:-1] for s in secrets]))


def _manifest(config: RunConfig, pool: EndpointPool, template: PromptTemplate, refine: RefineTemplate | None,
              loaded: list[LoadedDataset], fp: str, started_at: str, total: int,
              exemplars: list[Item] | None = None, plan: ScoringPlan | None = None) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "evalkit_version": __version__,
        "fingerprint": fp,
        "scoring": plan.manifest() if plan is not None else None,
        "model": pool.model,
        "endpoint": pool.base_urls[0],
        "endpoints": list(pool.base_urls),
        "backend": config.backend,
        "prompt": template.name,
        "prompt_template": template.text,
        "prompt_sha256": template.sha256,
        "prompt_detail": template_summary(template),
        "exemplars": [e.id for e in exemplars] if exemplars else None,
        # What extracted the choice scores, whichever flag chose it (--extractor or --scorer-arg).
        "extractor": plan.extractor if plan is not None else config.extractor,
        "data": [
            {"path": str(d.path), "sha256": d.sha256, "items": len(d.items),
             "skipped": [str(p) for p in d.skipped]}
            for d in loaded
        ],
        "limit": config.limit,
        "generation": config.params.to_dict(),
        "strategy": config.strategy_name(),
        "samples": config.samples,
        "concurrency": config.concurrency,
        "rps": config.rps,
        "timeout_s": config.timeout_s,
        "max_attempts": config.max_attempts,
        "total": total,
        "started_at": started_at,
        "status": "running",
    }
    from evalkit.serving.plan import endpoint_identity  # what served the run: checkpoint hash, engine version

    manifest["server"] = endpoint_identity(pool.base_urls[0], api_key=config.api_key)
    if config.suite:
        manifest["suite"] = config.suite
    if config.checkpoint:
        manifest["checkpoint"] = config.checkpoint
    if refine is not None:
        manifest.update(refine_samples=config.refine_samples, refine_prompt=refine.name,
                        refine_prompt_template=refine.text,
                        refine_prompt_sha256=refine.sha256)
    return manifest


def start_manifest(config: RunConfig, pool: EndpointPool, template: PromptTemplate, refine: RefineTemplate | None,
                   loaded: list[LoadedDataset], fp: str, started_at: str, total: int, *,
                   exemplars: list[Item] | None, plan: ScoringPlan, order: dict[str, Any],
                   earlier: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The manifest of an invocation that starts now, and its own entry in ``invocations`` (one per
    `evalkit run` of the directory, after those of EARLIER; its counts are filled in at its end)."""
    manifest = _manifest(config, pool, template, refine, loaded, fp, started_at, total, exemplars, plan)
    manifest["order"] = order
    invocation: dict[str, Any] = {"started_at": started_at, "status": "running"}
    manifest["invocations"] = [*run_invocations(earlier), invocation]
    return manifest, invocation
