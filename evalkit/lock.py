"""The run-directory lock: one ``evalkit run`` writes a run directory at a time.

The lock is an advisory ``flock`` on ``<run-dir>/.evalkit.lock``, so the kernel
drops it when its holder dies, however it dies (SIGKILL included). The file also
records who holds it (pid, host, start time, command line without secrets): a
second run refuses with those details, and a run that finds the record of a
holder that died without releasing says that it takes the lock over.

Where ``flock`` does not lock across machines (an NFS mount with ``nolock`` or
``local_lock=flock|all``: the lock is then local to each client; or a filesystem
that refuses flock with ENOLCK), or with ``EVALKIT_LOCK=excl``, the lock is an
exclusive lock file instead: ``<run-dir>/.evalkit.xlock``, created with
``O_CREAT|O_EXCL`` (atomic on NFSv3+ and Lustre), holding the holder's host, pid
and the pid's start time; the holder touches it every HEARTBEAT_S seconds. A
record is stale (and taken over, said so) when its holder on this host is gone
(or its pid now names another process), or, for a holder on another host, when
the file was not touched for STALE_AFTER_S seconds (the clocks of the hosts are
assumed to agree within that). A taker sets a stale file aside by renaming it,
so of two takers only one gets it.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import json
import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from evalkit.store import parse_json
from evalkit.liveness import proc_start_time, process_alive  # one liveness rule (a zombie is dead) for locks and servers

LOCK_FILE = ".evalkit.lock"
EXCL_LOCK_FILE = ".evalkit.xlock"  # the lock file where flock does not lock across hosts
LOCK_METHOD_ENV = "EVALKIT_LOCK"   # auto (default), flock or excl
HEARTBEAT_S = 20.0                 # how often the holder of an exclusive lock file touches it
STALE_AFTER_S = 120.0              # an exclusive lock file of another host untouched this long is stale
POLL_S = 0.2  # how often a waiting run tries the lock again
# A reader's probe (live_holder) holds a shared lock for microseconds; a run that meets one
# tries again for this long before it says the directory is in use.
PROBE_GRACE_S = 0.05
# flock errors of filesystems that have no locks (some FUSE and old NFS mounts): run unlocked, say so.
_NO_LOCKS = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL})


@dataclass(frozen=True)
class LockHolder:
    """Who holds (or last held) a run directory's lock, as its lock file records it."""

    pid: int | None
    host: str | None
    started_at: str | None = None
    pid_start: int | None = None  # the pid's start time (clock ticks after boot): a reused pid is not the holder

    @classmethod
    def from_text(cls, text: str) -> "LockHolder | None":
        """The holder recorded in a lock file's text; None for an empty or unreadable record."""
        try:
            doc = parse_json(text)
        except ValueError:
            return None
        if not isinstance(doc, dict):
            return None
        pid, pid_start = doc.get("pid"), doc.get("pid_start")
        return cls(pid=pid if isinstance(pid, int) else None, host=_str_or_none(doc.get("host")),
                   started_at=_str_or_none(doc.get("started_at")),
                   pid_start=pid_start if isinstance(pid_start, int) else None)

    def describe(self) -> str:
        since = f", since {self.started_at}" if self.started_at else ""
        return f"pid {self.pid if self.pid is not None else '?'} on host {self.host or '?'}{since}"


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class RunLocked(RuntimeError):
    """Another process holds the run directory's lock."""

    def __init__(self, run_dir: Path, holder: LockHolder | None):
        who = holder.describe() if holder else "another process (its record is unreadable)"
        super().__init__(f"{run_dir} is in use by another evalkit run: {who}. Wait for it to finish, "
                         "or pass --wait-for-lock to wait and then resume")
        self.run_dir = run_dir
        self.holder = holder


class RunLock:
    """A held run-directory lock; release it with ``release()`` or by leaving ``with``."""

    def __init__(self, run_dir: Path, fd: int | None, took_over: LockHolder | None, *, supported: bool = True,
                 excl_record: str | None = None, fallback_reason: str | None = None):
        self.run_dir = run_dir
        self.path = run_dir / (LOCK_FILE if excl_record is None else EXCL_LOCK_FILE)
        self._fd: int | None = fd
        self.took_over = took_over  # the dead holder whose lock this one replaced, if any
        self.supported = supported  # False where the filesystem has no flock: nothing is held
        self.method = "flock" if excl_record is None else "excl"
        self.fallback_reason = fallback_reason  # why an exclusive lock file replaced flock, if it did
        self._excl_record = excl_record
        self._stop_heartbeat = threading.Event()
        if excl_record is not None:
            threading.Thread(target=self._heartbeat, name="evalkit-lock-heartbeat", daemon=True).start()

    @property
    def held(self) -> bool:
        return self._fd is not None or self._excl_record is not None

    def _heartbeat(self) -> None:
        """Touch the exclusive lock file while it is ours: other hosts see the holder alive."""
        while not self._stop_heartbeat.wait(HEARTBEAT_S):
            if self._excl_record is None or _read_path(self.path) != self._excl_record:
                return
            try:
                os.utime(self.path)
            except OSError:
                pass

    def release(self) -> None:
        """Drop the lock and remove the lock file (a clean exit leaves no record behind)."""
        if self._excl_record is not None:
            self._stop_heartbeat.set()
            if _read_path(self.path) == self._excl_record:  # never remove a record another holder wrote
                self.path.unlink(missing_ok=True)
            self._excl_record = None
            return
        if self._fd is None:
            return
        try:
            # Unlink while still holding it: a waiter that then gets the old inode sees it is
            # no longer the path's file and tries again (see try_lock_run_dir).
            self.path.unlink(missing_ok=True)
        except OSError:
            pass
        os.close(self._fd)  # closing drops the flock
        self._fd = None

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _holder_record() -> str:
    return json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                       "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                       "pid_start": proc_start_time(os.getpid())})


def _read_path(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def mount_of(path: str, mounts_text: str) -> tuple[str, str, str] | None:
    """(mount point, filesystem type, options) of the mount holding PATH, from /proc/mounts' text."""
    best = None
    for line in mounts_text.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        point = fields[1].replace("\\040", " ")
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) > len(best[0])):
            best = (point, fields[2], fields[3])
    return best


def flock_is_local_only(fstype: str, options: str) -> bool:
    """True for an NFS mount whose flock locks only on this client (``nolock``, ``local_lock=flock|all``)."""
    opts = set(options.split(","))
    return fstype.startswith("nfs") and bool(opts & {"nolock", "local_lock=flock", "local_lock=all"})


def lock_method(run_dir: str | Path) -> tuple[str, str | None]:
    """How RUN_DIR is locked: ("flock", None), or ("excl", why) where flock would not exclude other hosts."""
    wanted = os.environ.get(LOCK_METHOD_ENV, "auto")
    if wanted == "excl":
        return "excl", f"${LOCK_METHOD_ENV}=excl"
    if wanted == "flock":
        return "flock", None
    try:
        mounts = Path("/proc/self/mounts").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "flock", None
    found = mount_of(os.path.realpath(run_dir), mounts)
    if found and flock_is_local_only(found[1], found[2]):
        return "excl", f"{found[0]} is {found[1]} mounted with {found[2]} (flock is local to each host)"
    return "flock", None


def excl_record_is_stale(holder: LockHolder | None, age_s: float, *, here: str) -> bool:
    """Whether an exclusive lock file's record (HOLDER, untouched for AGE_S seconds) belongs to a dead holder."""
    if holder is not None and holder.host == here and holder.pid is not None:
        if not process_alive(holder.pid):
            return True
        return holder.pid_start is not None and proc_start_time(holder.pid) != holder.pid_start
    return age_s > STALE_AFTER_S  # another host's holder (or a torn record): only its heartbeat tells


def _try_excl_lock(run_dir: Path, why: str | None) -> RunLock:
    path = run_dir / EXCL_LOCK_FILE
    previous: LockHolder | None = None
    for _ in range(5):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            text = _read_path(path)
            holder = LockHolder.from_text(text or "")
            try:
                age = time.time() - path.stat().st_mtime
            except FileNotFoundError:
                continue  # released meanwhile: try again
            if not excl_record_is_stale(holder, age, here=socket.gethostname()):
                raise RunLocked(run_dir, holder) from None
            aside = path.with_name(f"{EXCL_LOCK_FILE}.stale.{socket.gethostname()}.{os.getpid()}")
            try:
                os.rename(path, aside)  # of two takers only one moves it
            except FileNotFoundError:
                continue
            if _read_path(aside) != text:  # we moved a fresh record another taker had just written: put it back
                try:
                    os.link(aside, path)
                except FileExistsError:
                    pass
                aside.unlink(missing_ok=True)
                raise RunLocked(run_dir, LockHolder.from_text(_read_path(path) or "")) from None
            aside.unlink(missing_ok=True)
            previous = holder or LockHolder(pid=None, host=None)
            continue
        record = _holder_record()
        try:
            os.write(fd, record.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        return RunLock(run_dir, None, took_over=previous, excl_record=record, fallback_reason=why)
    raise RunLocked(run_dir, LockHolder.from_text(_read_path(path) or ""))


def try_lock_run_dir(run_dir: str | Path) -> RunLock:
    """Take RUN_DIR's lock now, or raise RunLocked naming its holder.

    A lock file left with a record but not locked belongs to a holder that died
    (its kernel lock went with it); the lock is taken over and ``took_over``
    names that holder.
    """
    run_dir = Path(run_dir)
    method, why = lock_method(run_dir)
    if method == "excl":
        return _try_excl_lock(run_dir, why)
    path = run_dir / LOCK_FILE
    give_up = time.monotonic() + PROBE_GRACE_S
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = LockHolder.from_text(_read_fd(fd))
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                if time.monotonic() < give_up:
                    time.sleep(0.005)  # perhaps a reader's probe (see live_holder): try again
                    continue
                raise RunLocked(run_dir, holder) from None
            if exc.errno in _NO_LOCKS:
                return _try_excl_lock(run_dir, f"flock on {run_dir} failed ({errno.errorcode.get(exc.errno)})")
            raise
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # the holder released (and removed) it between our open and our flock
            os.close(fd)
            continue
        previous = LockHolder.from_text(_read_fd(fd))
        os.ftruncate(fd, 0)
        os.pwrite(fd, _holder_record().encode(), 0)
        return RunLock(run_dir, fd, took_over=previous)


def live_holder(run_dir: str | Path) -> LockHolder | None:
    """Who holds RUN_DIR's lock now (a live writer), else None; takes nothing and writes nothing.

    For readers (report, score, gate) that must say when what they read is a partial snapshot.
    The probe is a shared lock that fails while a writer holds the exclusive one; held for
    an instant when it succeeds, it never makes a starting run refuse (see PROBE_GRACE_S).
    """
    try:
        fd = os.open(Path(run_dir) / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return None  # no lock file: nobody has held it since the last clean release
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return LockHolder.from_text(_read_fd(fd)) or LockHolder(pid=None, host=None)
            return None  # a filesystem without locks: nothing can be told
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_fd(fd: int) -> str:
    try:
        return os.pread(fd, 4096, 0).decode("utf-8", "replace")
    except OSError:
        return ""


async def lock_run_dir(run_dir: str | Path, *, wait: bool = False,
                       on_wait: Callable[[RunLocked], None] | None = None) -> RunLock:
    """Take RUN_DIR's lock; with WAIT, poll until its holder lets go (ON_WAIT is told once).

    Polling (rather than a blocking flock) keeps the event loop free, so Ctrl-C
    still stops a waiting run.
    """
    told = False
    while True:
        try:
            return try_lock_run_dir(run_dir)
        except RunLocked as exc:
            if not wait:
                raise
            if not told and on_wait is not None:
                on_wait(exc)
            told = True
        await asyncio.sleep(POLL_S)


def took_over_message(lock: RunLock) -> str | None:
    """What to tell the user when LOCK replaced the record of a holder that died (or could not
    be taken at all on this filesystem), else None."""
    if not lock.supported:
        return (f"the filesystem of {lock.run_dir} does not support file locks: nothing stops another run "
                "from writing the same run directory at the same time")
    dead = lock.took_over
    if dead is None:
        if lock.fallback_reason and lock.method == "excl":
            return f"locked {lock.run_dir} with the exclusive lock file {EXCL_LOCK_FILE}: {lock.fallback_reason}"
        return None
    here = socket.gethostname()
    state = ""
    if dead.pid is not None and dead.host == here and not process_alive(dead.pid):
        state = " (no longer running)"
    return f"took over the stale lock of {lock.run_dir}: its holder, {dead.describe()}, ended without releasing it{state}"


__all__ = ["EXCL_LOCK_FILE", "LOCK_FILE", "LOCK_METHOD_ENV", "LockHolder", "RunLock", "RunLocked",
           "excl_record_is_stale", "flock_is_local_only", "live_holder", "lock_method", "lock_run_dir", "mount_of",
           "took_over_message", "try_lock_run_dir"]
