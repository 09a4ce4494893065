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

The two methods exclude each other, so one run directory has one writer whatever
method each process uses: a flock taker refuses while a live exclusive lock file is
there (and sets a stale one aside), and an exclusive taker, once its file is made,
refuses (removing it) while a flock holder has the lock file.

A holder checks before each write into its run directory that the lock is still its
own (``RunLock.check``, called through ``store.guard_writes``): its record is still the
exclusive lock file's, or its flock file is still the one at the path. A holder that
stalled past STALE_AFTER_S (suspended, swapped out, a frozen NFS client) and was taken
over raises LockLost at its next write, having written nothing beside the new holder.
Only an exclusive lock file's holder can be taken over while it lives (its staleness is a
heartbeat); a live flock holder cannot (the kernel holds its lock), so its check, which
catches only a lock file removed by hand, runs at most every FLOCK_RECHECK_S and stays
off the per-sample path.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import json
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from evalkit.core.store import guard_writes, parse_json
from evalkit.core.liveness import proc_start_time, process_alive  # one liveness rule (a zombie is dead) for locks and servers
from evalkit.core.errors import BusyError

LOCK_FILE = ".evalkit.lock"
EXCL_LOCK_FILE = ".evalkit.xlock"  # the lock file where flock does not lock across hosts
LOCK_METHOD_ENV = "EVALKIT_LOCK"   # auto (default), flock or excl
HEARTBEAT_S = 20.0                 # how often the holder of an exclusive lock file touches it
STALE_AFTER_S = 120.0              # an exclusive lock file of another host untouched this long is stale
POLL_S = 0.2  # how often a waiting run tries the lock again
# A reader's probe (live_holder) holds a shared lock for microseconds; a run that meets one
# tries again for this long before it says the directory is in use.
PROBE_GRACE_S = 0.05
FLOCK_RECHECK_S = 1.0  # a flock holder looks at its lock file at most this often (see the docstring)
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


class RunLocked(BusyError):
    """Another process holds the run directory's lock."""

    def __init__(self, run_dir: Path, holder: LockHolder | None):
        who = holder.describe() if holder else "another process (its record is unreadable)"
        super().__init__(f"{run_dir} is in use by another evalkit run: {who}. Wait for it to finish, "
                         "or pass --wait-for-lock to wait and then resume")
        self.run_dir = run_dir
        self.holder = holder


class LockLost(BusyError):
    """This process's run-directory lock is no longer its own (another run took it over): it writes no more."""

    lost = True

    def __init__(self, run_dir: Path, holder: LockHolder | None):
        who = holder.describe() if holder else "another process (or nobody: the lock file was removed)"
        super().__init__(f"the lock of {run_dir} was taken over by {who} while this run held it (this run was "
                         f"stalled past the lock's stale age of {STALE_AFTER_S:g}s, or its lock file was removed): "
                         "stopped before writing more; what it saved is kept in the run directory. Let the "
                         "other holder finish (`evalkit status`, or its pid), then run the same command to resume")
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
        self._flock_checked_at = -FLOCK_RECHECK_S  # the first check always looks
        self._stop_heartbeat = threading.Event()
        if excl_record is not None:
            threading.Thread(target=self._heartbeat, name="evalkit-lock-heartbeat", daemon=True).start()
        self._unguard = guard_writes(run_dir, self.check) if self.held else (lambda: None)

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

    def check(self) -> None:
        """Raise LockLost when the lock is no longer this holder's: its record is not the exclusive lock
        file's any more, or the flock file at the path is another file. Cheap (a small read, or two stats):
        called before each write into the run directory."""
        try:
            if self._excl_record is not None:
                text = self.path.read_text(encoding="utf-8", errors="replace")
                if text == self._excl_record:
                    return
                raise LockLost(self.run_dir, LockHolder.from_text(text))
            if self._fd is not None:
                at = time.monotonic()
                if at - self._flock_checked_at < FLOCK_RECHECK_S:
                    return
                mine, now = os.fstat(self._fd), os.stat(self.path)
                if (mine.st_dev, mine.st_ino) == (now.st_dev, now.st_ino):
                    self._flock_checked_at = at
                    return
                raise LockLost(self.run_dir, LockHolder.from_text(_read_path(self.path) or ""))
        except FileNotFoundError:
            raise LockLost(self.run_dir, None) from None
        except OSError:
            return  # cannot tell (an NFS hiccup): the write itself says whether the directory can be written

    def release(self) -> None:
        """Drop the lock and remove the lock file (a clean exit leaves no record behind)."""
        self._unguard()
        if self._excl_record is not None:
            self._stop_heartbeat.set()
            if _read_path(self.path) == self._excl_record:  # never remove a record another holder wrote
                self.path.unlink(missing_ok=True)
            self._excl_record = None
            return
        if self._fd is None:
            return
        _unlink_if_ours(self._fd, self.path)
        os.close(self._fd)  # closing drops the flock
        self._fd = None

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _unlink_if_ours(fd: int, path: Path) -> None:
    """Remove the flock file PATH while FD (open on it, flocked) is still the file there.

    Unlinked while still held: a waiter that then gets the old inode sees it is no longer the
    path's file and tries again (see try_lock_run_dir). A file another run made at the path
    since (this one was removed) is that run's and stays."""
    try:
        mine, now = os.fstat(fd), os.stat(path)
        if (mine.st_dev, mine.st_ino) == (now.st_dev, now.st_ino):
            path.unlink()
    except OSError:
        pass


def _holder_record() -> str:
    # The token makes each record unique (one process may take the same lock twice within a second):
    # a holder recognises its own record, and only its own, by comparing the whole text.
    return json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                       "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                       "pid_start": proc_start_time(os.getpid()), "token": secrets.token_hex(8)})


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


def _set_aside_if_stale(run_dir: Path) -> tuple[str, LockHolder | None]:
    """Look at RUN_DIR's exclusive lock file: ("free", None) when there is none, ("held", holder)
    while its holder lives, ("stale", dead holder) when a stale one was set aside just now.

    A stale file is set aside by renaming it: of two takers only one moves it, and one that
    moved a fresh record another taker had just written puts it back."""
    path = run_dir / EXCL_LOCK_FILE
    text = _read_path(path)
    if text is None:
        return "free", None
    holder = LockHolder.from_text(text)
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return "free", None  # released meanwhile
    if not excl_record_is_stale(holder, age, here=socket.gethostname()):
        return "held", holder
    aside = path.with_name(f"{EXCL_LOCK_FILE}.stale.{socket.gethostname()}.{os.getpid()}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return "free", None
    if _read_path(aside) != text:
        try:
            os.link(aside, path)
        except FileExistsError:
            pass
        aside.unlink(missing_ok=True)
        return "held", LockHolder.from_text(_read_path(path) or "")
    aside.unlink(missing_ok=True)
    return "stale", holder or LockHolder(pid=None, host=None)


def _try_excl_lock(run_dir: Path, why: str | None) -> RunLock:
    path = run_dir / EXCL_LOCK_FILE
    previous: LockHolder | None = None
    for _ in range(5):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            state, holder = _set_aside_if_stale(run_dir)
            if state == "held":
                raise RunLocked(run_dir, holder) from None
            previous = holder if state == "stale" else previous
            continue
        record = _holder_record()
        try:
            os.write(fd, record.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        # A run holding the flock file (another process's lock method) keeps the directory: made after
        # our file, a flock taker sees it and refuses; made before, its lock is seen here.
        blocker = _flock_holder(run_dir)
        if blocker is not None:
            if _read_path(path) == record:
                path.unlink(missing_ok=True)
            raise RunLocked(run_dir, blocker)
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
        # A run holding the exclusive lock file (another process's lock method) keeps the directory.
        state, excl_holder = _set_aside_if_stale(run_dir)
        if state == "held":
            if not _read_fd(fd).strip():
                _unlink_if_ours(fd, path)  # the empty file this attempt made: leave nothing behind
            os.close(fd)
            raise RunLocked(run_dir, excl_holder)
        previous = LockHolder.from_text(_read_fd(fd)) or (excl_holder if state == "stale" else None)
        os.ftruncate(fd, 0)
        os.pwrite(fd, _holder_record().encode(), 0)
        return RunLock(run_dir, fd, took_over=previous)


def live_holder(run_dir: str | Path) -> LockHolder | None:
    """Who holds RUN_DIR's lock now (a live writer, by either lock method), else None; takes nothing
    and writes nothing.

    For readers (report, score, gate) that must say when what they read is a partial snapshot.
    """
    found = _flock_holder(Path(run_dir))
    if found is not None:
        return found
    path = Path(run_dir) / EXCL_LOCK_FILE
    text = _read_path(path)
    if text is None:
        return None
    holder = LockHolder.from_text(text)
    try:
        age = time.time() - path.stat().st_mtime
    except OSError:
        return None
    return None if excl_record_is_stale(holder, age, here=socket.gethostname()) else (
        holder or LockHolder(pid=None, host=None))


def _flock_holder(run_dir: Path) -> LockHolder | None:
    """Who holds RUN_DIR's flock file now, else None (no file, unlocked, or a filesystem without locks).

    The probe is a shared lock that fails while a writer holds the exclusive one; held for
    an instant when it succeeds, it never makes a starting run refuse (see PROBE_GRACE_S).
    """
    try:
        fd = os.open(run_dir / LOCK_FILE, os.O_RDONLY)
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


__all__ = ["EXCL_LOCK_FILE", "LOCK_FILE", "LOCK_METHOD_ENV", "LockHolder", "LockLost", "RunLock", "RunLocked",
           "excl_record_is_stale", "flock_is_local_only", "live_holder", "lock_method", "lock_run_dir", "mount_of",
           "took_over_message", "try_lock_run_dir"]
