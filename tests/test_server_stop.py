"""`evalkit stop` signals only what evalkit started, and leaves nothing of it behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from evalkit.serving import launch, processes, state
from evalkit.cli import main
from tests.conftest import ROOT, free_port

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def _foreign(argv: list[str] = SLEEPER) -> subprocess.Popen:
    """A process (group leader) evalkit did not start."""
    return subprocess.Popen(argv, start_new_session=True)


def _record(name: str, *, pid: int, pgid: int, start_time: int | None, argv: list[str]) -> state.ServerHandle:
    h = state.ServerHandle(name=name, backend="llamacpp", pid=pid, pgid=pgid, host="127.0.0.1", port=1, model="m",
                         command=list(argv), log_path="", started_at="", start_time=start_time,
                         token="never-given-to-anyone")
    state.save_state(h)
    return h


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _stop_cli(*args: str):
    return CliRunner().invoke(main, ["stop", *args])


@pytest.fixture
def foreign():
    started: list[subprocess.Popen] = []

    def start(argv: list[str] = SLEEPER) -> subprocess.Popen:
        p = _foreign(argv)
        started.append(p)
        time.sleep(0.2)  # let it exec, so /proc shows its own command line
        return p

    yield start
    for p in started:
        p.kill()
        p.wait()


def test_a_gone_pid_whose_pgid_now_names_another_group_signals_nothing(foreign):
    other = foreign()
    _record("gone", pid=_dead_pid(), pgid=other.pid, start_time=12345, argv=SLEEPER)
    res = _stop_cli("--name", "gone")
    assert res.exit_code == 1
    assert "was not running" in res.output and "stopped" not in res.output
    assert other.poll() is None  # the other group is untouched
    assert state.load_state("gone") is None


def test_a_foreign_process_with_the_recorded_command_is_not_ours(foreign):
    # Same argv as recorded (what a name-pattern check would accept), but another start time.
    argv = [sys.executable, "-c", "import time; time.sleep(60)", "llama_cpp.server"]
    other = foreign(argv)
    start = processes.proc_start_time(other.pid)
    assert processes.proc_cmdline(other.pid) == argv
    _record("lookalike", pid=_dead_pid(), pgid=_dead_pid(), start_time=start, argv=argv)
    _record("sametime", pid=other.pid, pgid=other.pid, start_time=start - 1, argv=argv)
    for name in ("lookalike", "sametime"):
        res = _stop_cli("--name", name)
        assert res.exit_code == 1 and "was not running" in res.output
    assert other.poll() is None


def test_a_reused_pid_is_not_signalled(foreign):
    # The recorded pid now runs another program; even its start time matching is not enough.
    other = foreign()
    _record("reused", pid=other.pid, pgid=other.pid, start_time=processes.proc_start_time(other.pid),
            argv=[sys.executable, "-m", "llama_cpp.server", "--model", "x.gguf"])
    result = launch.stop_server("reused")
    assert result is not None and not result.was_running and result.signalled == 0
    assert other.poll() is None
    assert state.load_state("reused") is None


def test_owns_process_needs_pid_start_time_and_command(foreign):
    other = foreign()
    live = state.ProcessRecord(role="server", pid=other.pid, pgid=other.pid, start_time=processes.proc_start_time(other.pid),
                             argv=processes.proc_cmdline(other.pid), host="127.0.0.1", port=1, log_path="")
    assert processes.owns_process(live)
    for change in ({"start_time": live.start_time + 1}, {"start_time": None}, {"argv": live.argv + ["x"]},
                   {"pid": _dead_pid()}):
        assert not processes.owns_process(state.ProcessRecord(**{**live.__dict__, **change}))


def test_stop_without_name_stops_only_default_and_all_stops_every_one(tmp_path):
    handles = {}
    for name in ("default", "other"):
        port = free_port()
        handles[name] = launch.start_server([sys.executable, str(ROOT / "tests" / "loopback_server.py"), "--port",
                                          str(port)], name=name, backend="llamacpp", host="127.0.0.1", port=port,
                                         model="loopback-model", log_path=tmp_path / f"{name}.log", timeout_s=30)
    res = _stop_cli()
    assert res.exit_code == 0 and "stopped default" in res.output
    assert not processes.process_alive(handles["default"].pid)
    assert processes.server_running(handles["other"]) and state.load_state("other") is not None
    res = _stop_cli("--all")
    assert res.exit_code == 0 and "stopped other" in res.output
    assert not processes.process_alive(handles["other"].pid) and state.list_states() == []


def test_stop_on_a_dead_server_says_it_was_not_running(tmp_path):
    port = free_port()
    h = launch.start_server([sys.executable, str(ROOT / "tests" / "loopback_server.py"), "--port", str(port)],
                         name="dies", backend="llamacpp", host="127.0.0.1", port=port, model="loopback-model",
                         log_path=tmp_path / "d.log", timeout_s=30)
    os.kill(h.pid, 9)
    deadline = time.monotonic() + 10
    while processes.process_alive(h.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    res = _stop_cli("--name", "dies")
    assert res.exit_code == 1 and "was not running" in res.output and "stopped dies" not in res.output
    assert state.load_state("dies") is None


def test_serve_twice_under_one_name_refuses_before_starting(tmp_path):
    port = free_port()
    launch.start_server([sys.executable, str(ROOT / "tests" / "loopback_server.py"), "--port", str(port)],
                     name="once", backend="llamacpp", host="127.0.0.1", port=port, model="loopback-model",
                     log_path=tmp_path / "o.log", timeout_s=30)
    try:
        res = CliRunner().invoke(main, ["serve", "--backend", "llamacpp", "--name", "once", "--port",
                                        str(free_port())])
        assert res.exit_code == 1 and "already running" in res.output
        assert "starting" not in res.output and "backend:" not in res.output
    finally:
        assert launch.stop_server("once").was_running


def _can_listen(port: int) -> bool:
    """True when a new server could listen on PORT (as servers do, past TIME_WAIT leftovers)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
        except OSError:
            return False
    return True


def _pids(pid_dir: Path) -> dict[str, int]:
    return {p.name.removesuffix(".pid"): int(p.read_text()) for p in pid_dir.glob("*.pid") if p.read_text()}


def test_stop_ends_an_sglang_shaped_process_tree_and_frees_the_port(tmp_path):
    # launcher -> per-dp-rank children (spawn, own process groups, ignoring TERM for 3 s)
    # and one grandchild re-parented into a session of its own that ignores TERM for good.
    port = free_port()
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    cmd = [sys.executable, str(ROOT / "tests" / "sglang_tree_standin.py"), "--port", str(port), "--pid-dir",
           str(pid_dir), "--dp", "2", "--ignore-term-s", "3"]
    h = launch.start_server(cmd, name="tree", backend="sglang", host="127.0.0.1", port=port, model="loopback-model",
                         log_path=tmp_path / "tree.log", timeout_s=60)
    deadline = time.monotonic() + 30
    while len(_pids(pid_dir)) < 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    pids = _pids(pid_dir)
    try:
        assert set(pids) == {"launcher", "rank0", "rank1", "rank0.detached"}, pids
        assert all(processes.process_alive(p) for p in pids.values())
        detached = pids["rank0.detached"]
        # Out of the launcher's session, group and tree: only the token still ties it to the server.
        assert os.getsid(detached) != h.pid and os.getpgid(detached) != h.pgid
        assert os.getpgid(pids["rank1"]) != h.pgid
        assert int(Path(f"/proc/{detached}/stat").read_text().rsplit(")", 1)[1].split()[1]) not in pids.values()
    finally:
        result = launch.stop_server("tree", grace_s=1.0)
    assert result.was_running and result.signalled >= 4
    for name, pid in pids.items():
        assert not processes.process_alive(pid), f"{name} (pid {pid}) outlived stop"
    assert _can_listen(port)  # nothing of it holds the port
    assert state.load_state("tree") is None


def test_the_recorded_stop_scope_decides_which_companions_are_ended(tmp_path):
    # The same tree with a backend whose stop scope leaves out the token: the re-parented
    # grandchild, tied to the server by nothing else, is not evalkit's to stop.
    port = free_port()
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    cmd = [sys.executable, str(ROOT / "tests" / "sglang_tree_standin.py"), "--port", str(port), "--pid-dir",
           str(pid_dir), "--dp", "1", "--ignore-term-s", "0"]
    spec = launch.LaunchSpec(role="server", command=cmd, host="127.0.0.1", port=port, log_path=tmp_path / "s.log")
    launch.launch([spec], name="scoped", backend="custom", model="loopback-model", timeout_s=60,
                  stop_scope=("group", "descendants"))
    assert state.load_state("scoped").stop_scope == ["group", "descendants"]
    deadline = time.monotonic() + 30
    while len(_pids(pid_dir)) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    pids = _pids(pid_dir)
    detached = pids.get("rank0.detached")
    try:
        assert detached is not None, pids
        assert launch.stop_server("scoped", grace_s=1.0).was_running
        assert not processes.process_alive(pids["launcher"]) and not processes.process_alive(pids["rank0"])
        assert processes.process_alive(detached)  # outside the scope: left alone
    finally:
        if detached is not None and processes.process_alive(detached):
            os.kill(detached, signal.SIGKILL)  # this test's own leftover, by its pid
