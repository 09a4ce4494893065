"""Weights & Biases as a tracker: figures as history rows against a step metric, identity as config,
files as an artifact and samples as a W&B Table.

The eval figures are plotted against ``TrackerSettings.wandb_step_metric`` (``define_metric``), not
W&B's own ``_step``: a training run's ``_step`` is already past the checkpoints' steps, and W&B drops
rows logged at an earlier ``_step``. What was sent is kept in a ledger beside the figures
(``base.LEDGER``), since an offline run cannot be asked; it is written only once W&B has the run finished.
Project, entity, mode and key are W&B's own settings (``WANDB_PROJECT`` aside: the target names the project).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Mapping, Sequence

from evalkit.config import TrackerSettings
from evalkit.results.trackers.base import TrackerError, TrackerTarget, read_ledger, write_ledger
from evalkit.results.trackers.figures import ExportPlan, Point, clean_name, default_target_name

CONFIG_KEY = "evalkit"  # the run's config holds the identity under this key
SAMPLES_KEY = "eval_samples"  # the samples tables: eval_samples/LABEL


class WandbRun:
    """A W&B run opened for an export: the run TARGET names (run_id, resumed), else one whose id is made
    of the plan's source (so the next export resumes the same run)."""

    def __init__(self, target: TrackerTarget, plan: ExportPlan, settings: TrackerSettings, ledger_dir: Path) -> None:
        import wandb

        self.settings = settings
        self.ledger_dir = ledger_dir
        self.attached = target.run_id is not None
        run_id = target.run_id or f"evalkit-{plan.source}"
        try:
            self.run = wandb.init(project=target.name or default_target_name("wandb", settings), id=run_id,
                                  resume="allow", name=None if self.attached else plan.name,
                                  job_type=None if self.attached else "evaluation",
                                  settings=wandb.Settings(silent=True), reinit="create_new")
        except (wandb.Error, OSError) as exc:
            raise TrackerError(f"wandb: {exc}") from None
        self.run_id = self.run.id
        self.where = f"offline, in {Path(self.run.dir).parent}" if self.run.offline else str(self.run.url)
        self.key = f"wandb:{self.run.entity or ''}/{self.run.project}/{self.run_id}"
        self.ledger = read_ledger(ledger_dir)
        self.sent = self.ledger.setdefault(self.key, {"points": {}, "files": {}, "samples": []})
        self.run.define_metric(f"{settings.prefix}/*", step_metric=settings.wandb_step_metric)

    def sent_points(self, keys: Sequence[str]) -> set[tuple[str, int]]:
        """The ledger's record of points sent to this run."""
        points = self.sent["points"]
        return {(key, step) for key in keys for step in points.get(key, ())}

    def log_points(self, points: Sequence[Point]) -> None:
        """One history row per step, in step order, with the step metric beside the figures."""
        rows: dict[int, dict[str, float]] = {}
        for p in points:
            rows.setdefault(p.step, {})[p.key] = p.value
        for step in sorted(rows):
            self.run.log({self.settings.wandb_step_metric: step, **rows[step]})
        for p in points:
            self.sent["points"].setdefault(p.key, []).append(p.step)

    def log_params(self, params: Mapping[str, str]) -> list[str]:
        self.run.config.update({CONFIG_KEY: dict(params)}, allow_val_change=True)
        return []

    def log_files(self, label: str, files: Mapping[str, "Path | str"]) -> bool:
        """An artifact of type ``evaluation`` (one per LABEL); sent again only when a file changed."""
        import wandb

        blobs = {n: (c.read_bytes() if isinstance(c, Path) else c.encode("utf-8")) for n, c in files.items()}
        digest = hashlib.sha256(b"".join(hashlib.sha256(b).digest() for _, b in sorted(blobs.items()))).hexdigest()
        if self.sent["files"].get(label) == digest:
            return False
        name = clean_name(f"evalkit-{self.run_id}-{label}" if label else f"evalkit-{self.run_id}").replace("/", "_")
        artifact = wandb.Artifact(name.replace(" ", "_"), type="evaluation")
        for file_name, data in blobs.items():
            with artifact.new_file(file_name, mode="wb") as fh:
                fh.write(data)
        self.run.log_artifact(artifact)
        self.sent["files"][label] = digest
        return True

    def log_samples(self, label: str, columns: list[str], rows: list[list[Any]]) -> bool:
        import wandb

        if label in self.sent["samples"]:
            return False
        table = wandb.Table(columns=columns, data=rows)
        self.run.log({f"{SAMPLES_KEY}/{label or 'run'}": table})
        self.sent["samples"].append(label)
        return True

    def close(self) -> None:
        """Finish the W&B run, then record what it was sent."""
        self.run.finish()
        write_ledger(self.ledger_dir, self.ledger)


__all__ = ["CONFIG_KEY", "SAMPLES_KEY", "WandbRun"]
