"""Values given on the command line as text or a file, and as JSON.

Pure parsing with errors that name the flag (and the file), so the CLI stays a
thin shell over ``GenerationParams``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class ControlError(ValueError):
    """A request control's value cannot be used; the message names the flag."""


def parse_json(text: str) -> Any:
    """TEXT parsed as JSON (a RecursionError where it is nested deeper than the parser goes)."""
    return json.loads(text)


def text_or_file(value: str | None, flag: str) -> str | None:
    """VALUE itself, or the contents of the file it names when it starts with ``@``."""
    if value is None or not value.startswith("@"):
        return value
    path = Path(value[1:])
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ControlError(f"{flag} {value}: cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ControlError(f"{flag} {value}: {path} is not UTF-8 text (byte {exc.start})") from None


def json_object(value: str | None, flag: str) -> dict[str, Any] | None:
    """VALUE parsed as a JSON object (``@FILE`` reads it from a file); None stays None."""
    text = text_or_file(value, flag)
    if text is None:
        return None
    try:
        parsed = parse_json(text)
    except json.JSONDecodeError as exc:
        where = f"{value[1:]}:{exc.lineno}" if value and value.startswith("@") else f"column {exc.colno}"
        raise ControlError(f"{flag}: not valid JSON at {where} ({exc.msg})") from None
    except RecursionError:
        raise ControlError(f"{flag}: not valid JSON (nested too deep)") from None
    if not isinstance(parsed, dict):
        raise ControlError(f"{flag}: expected a JSON object like {{\"key\": value}}, got {type(parsed).__name__}")
    return parsed
