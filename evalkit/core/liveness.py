"""Whether a process is alive, from /proc: the one rule (a zombie is dead) that the run-directory
lock and the server launcher share. Knows nothing of servers or runs."""

from __future__ import annotations

import os
from pathlib import Path


def stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat from field 3 (state) on; the command name in parentheses may hold spaces."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_alive(pid: int) -> bool:
    """True when PID exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    f = stat_fields(pid)
    return True if f is None else f[0] != "Z"


def proc_start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks after boot); None when gone."""
    f = stat_fields(pid)
    return int(f[19]) if f and len(f) > 19 else None
