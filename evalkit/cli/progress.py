"""Plain progress lines for runs whose output is not a terminal (nohup, Slurm, CI logs).

A progress bar redraws one line in place, which a log file cannot show, and it is
hidden when output is redirected; so nothing would appear until the run ends.
``ProgressLines`` instead writes one self-contained line at a steady interval
(done/total, requests/s, output tokens/s, errors, retries, elapsed, ETA) and
flushes it, from a small thread, so lines keep coming while no sample finishes.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, TextIO

from evalkit.config import PROGRESS_INTERVAL_S as DEFAULT_INTERVAL_S

if TYPE_CHECKING:
    from evalkit.api import RunProgress


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def progress_line(progress: RunProgress, now: float, *, final: bool = False) -> str:
    """One line describing PROGRESS at time NOW (``time.perf_counter``), e.g.

    ``progress 120/1273 (9.4%) | 12.3 req/s | 2450 tok/s | errors 0 | retries 2 | elapsed 0:00:10 | eta 0:01:36``

    Rates count this session's requests (resumed samples cost nothing); the ETA
    extrapolates this session's finished items to the ones left.
    """
    done, total = progress.resumed + progress.done, progress.total
    elapsed = max(now - progress.started, 1e-9)
    share = f"{100 * done / total:.1f}%" if total else "-"
    left = total - done
    if left <= 0:
        eta = "0:00:00"
    elif final:
        eta = "-"
    elif progress.done:
        eta = _clock(left * elapsed / progress.done)
    else:
        eta = "?"
    word = ("done" if left <= 0 else "stopped") if final else "progress"
    return (f"{word} {done}/{total} ({share}) | {progress.requests / elapsed:.1f} req/s | "
            f"{progress.completion_tokens / elapsed:.0f} tok/s | errors {progress.errors} | "
            f"retries {progress.retries} | elapsed {_clock(elapsed)} | eta {eta}")


class ProgressLines:
    """Write ``progress_line`` to STREAM every INTERVAL_S seconds between ``begin`` and ``close``.

    ``begin`` (when the run knows its total) writes the first line; ``close``
    stops the thread and writes a last one. Each line is flushed at once.
    """

    def __init__(self, progress: RunProgress, stream: TextIO, interval_s: float = DEFAULT_INTERVAL_S):
        if interval_s <= 0:
            raise ValueError("the progress interval must be positive")
        self.progress = progress
        self.stream = stream
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _write(self, final: bool = False) -> None:
        self.stream.write(progress_line(self.progress, time.perf_counter(), final=final) + "\n")
        self.stream.flush()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._write()

    def begin(self) -> None:
        """The run has started dispatching: write the first line and start the timer."""
        if self._thread is not None:
            return
        self._write()
        self._thread = threading.Thread(target=self._loop, name="evalkit-progress", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop writing; a run that began gets a last line with its final counts."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        self._write(final=True)

    def __enter__(self) -> "ProgressLines":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
