"""Range checks for a run's numeric settings, and the size caps on what a run reads.

Every check names the setting as the library knows it and as the CLI flag, so
a notebook user and a shell user both see what to change. Out-of-range values
are refused rather than quietly reinterpreted (``--timeout 0`` must not mean
"no timeout", ``--limit 0`` must not mean "everything").
"""

from __future__ import annotations

import math
from typing import Any

from evalkit.config import DEFAULT_MAX_RECORD_MB, DEFAULT_MAX_RESPONSE_MB, MB  # noqa: F401  (their home)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _need(ok: bool, setting: str, flag: str, rule: str, value: Any) -> None:
    if not ok:
        name = f"{setting} ({flag})" if flag else setting
        raise ValueError(f"{name} must be {rule}, got {value!r}")


def check_int_at_least(value: Any, low: int, setting: str, flag: str) -> None:
    """Raise ValueError unless VALUE is an int >= LOW."""
    _need(isinstance(value, int) and not isinstance(value, bool) and value >= low, setting, flag,
          f"a whole number of at least {low}", value)


def check_positive(value: Any, setting: str, flag: str) -> None:
    """Raise ValueError unless VALUE is a finite number > 0."""
    _need(_number(value) and value > 0, setting, flag, "a number greater than 0", value)


def check_run_numbers(config: Any) -> None:
    """The numeric range checks of a RunConfig (called by run.plan.validate_config).

    Settings left None (filled in by ``run.plan.resolve_config``) are not checked.
    """
    if config.concurrency is not None:
        check_int_at_least(config.concurrency, 1, "concurrency", "--concurrency")
    if config.limit is not None:
        check_int_at_least(config.limit, 1, "limit", "--limit")
    check_positive(config.timeout_s, "timeout_s", "--timeout")
    check_int_at_least(config.max_attempts, 1, "max_attempts", "--max-attempts")
    if config.rps is not None:
        check_positive(config.rps, "rps", "--rps")
    _need(_number(config.retry_base_delay_s) and config.retry_base_delay_s >= 0, "retry_base_delay_s",
          "", "a number of at least 0", config.retry_base_delay_s)
    if config.samples is not None:
        check_int_at_least(config.samples, 1, "samples", "--samples")
    check_int_at_least(config.refine_samples, 1, "refine_samples", "--refine-samples")
    check_int_at_least(config.fewshot_k, 0, "fewshot_k", "--fewshot-k")
    check_positive(config.max_response_mb, "max_response_mb", "--max-response-mb")
    check_positive(config.max_record_mb, "max_record_mb", "--max-record-mb")
    params = config.params
    check_int_at_least(params.max_new_tokens, 1, "params.max_new_tokens", "--max-new-tokens")
    if params.temperature is not None:
        _need(_number(params.temperature) and params.temperature >= 0, "params.temperature", "--temperature",
              "a number of at least 0", params.temperature)
    _need(_number(params.top_p) and 0 < params.top_p <= 1, "params.top_p", "--top-p",
          "a number in (0, 1]", params.top_p)
