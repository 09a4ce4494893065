"""`evalkit sweep run`'s flags are generated from config.SweepRunRequest (as serve's from ServeRequest):
one flag per field, and each value given lands on a real field of the type it configures."""

from __future__ import annotations

import dataclasses

import click
import pytest

from evalkit import config
from evalkit.sweep.jobs import SlurmOptions, SweepLaunch
from evalkit.cli.sweep import run_command

TARGETS = {"settings": config.SweepSettings, "serve": config.ServeRequest, "generation": config.GenerationParams,
           "run": config.RunConfig, "slurm": SlurmOptions, "launch": SweepLaunch}


def test_one_flag_per_field_and_the_tracker_options():
    fields = [f.name for f in dataclasses.fields(config.SweepRunRequest)]
    params = [p.name for p in run_command.params]
    assert params == ["checkpoints", *fields, "trackers", "tracker_run_ids", "log_samples"]


@pytest.mark.parametrize("field", dataclasses.fields(config.SweepRunRequest), ids=lambda f: f.name)
def test_each_value_goes_to_a_field_of_its_type(field):
    section, _, key = field.metadata.get("to", "").partition(".")
    if not section:
        return  # the command reads it itself (--watch, --name, --results-dir ...)
    assert (key or field.name) in {f.name for f in dataclasses.fields(TARGETS[section])}


def test_the_generated_flags_keep_their_names_and_defaults():
    opts = {p.name: p for p in run_command.params if isinstance(p, click.Option)}
    assert opts["time_min"].opts == ["--time"] and opts["gpus_per_node"].opts == ["--gpus"]
    assert opts["eval_files"].opts == ["--eval-file"] and opts["eval_files"].multiple
    assert opts["serve_args"].opts == ["--serve-arg"] and opts["max_polls"].hidden
    assert opts["quiet_s"].default == config.field_default(config.SweepCommandSettings, "quiet_s")
    assert opts["executor"].default == config.field_default(config.SweepCommandSettings, "executor")
    assert list(opts["executor"].type.choices) == list(config.EXECUTORS)
    assert opts["wait"].is_flag and opts["step_from"].metavar == "REGEX"
