"""The kinds of error evalkit raises on purpose, so a caller (the command line, a notebook) can tell
them apart without knowing which module raised one.

Each error class of evalkit derives from one of these; ``evalkit.api`` exports them. The kinds say
what happened, not what to do about it: the command line chooses its exit codes from them.
"""

from __future__ import annotations


class EvalkitError(Exception):
    """An error evalkit raises on purpose; its message says what went wrong and what to do."""


class InputError(EvalkitError, ValueError):
    """An input evalkit cannot use (a file, a suite, a rubric, a setting): nothing was done with it.
    ``problems``: for a file, each bad record (``path``, ``line``, ``message``); None otherwise."""

    problems = None


class BusyError(EvalkitError, RuntimeError):
    """Another evalkit process writes the run directory (``lost`` False), or took it over from this one
    (``lost`` True: this process stopped writing). ``run_dir`` and ``holder`` say where and who."""

    lost = False


class UnreachableError(EvalkitError, RuntimeError):
    """A server (the model's, a judge's, a download's origin) stopped answering or could not be reached."""
