"""The managed broker leaves no redis-server behind: it dies with a killed desk, and the next start reaps a leftover.

Real processes throughout: a desk is a child Python process that starts a managed broker (from a short-lived thread,
as the TUI does) and is then killed with SIGKILL.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
import redis

from batchdesk.broker.modes import BrokerHandle, start_broker
from conftest import batchdesk_env, process_alive, require_redis_server, scaled, wait_for

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")

SECRET = "leftover-secret"
# A desk: starts the managed broker from a thread that then ends, prints the broker's URL, waits to be killed.
# With "unlinked", the server is started without the parent-death signal, as on a system without one.
DESK = f"""
import sys, threading
from pathlib import Path
import batchdesk.broker.keeper as keeper
import batchdesk.broker.modes as broker
if sys.argv[2] == "unlinked":
    keeper._parent_death_signal = lambda: None
handles = []
starter = threading.Thread(target=lambda: handles.append(broker.start_broker("managed", Path(sys.argv[1]), {SECRET!r})))
starter.start()
starter.join()
print(handles[0].url, flush=True)
sys.stdin.read()
"""


def servers_of(data_dir: Path) -> list[int]:
    """Pids of the live redis/valkey servers working in ``data_dir``."""
    found = []
    for proc in psutil.process_iter(["name"]):
        try:
            name, cwd = proc.info["name"], Path(proc.cwd())
            if name in ("redis-server", "valkey-server") and cwd == data_dir.resolve() and process_alive(proc.pid):
                found.append(proc.pid)
        except psutil.Error:
            continue
    return found


def server_pid(url: str) -> int:
    with redis.Redis.from_url(url, socket_timeout=scaled(10)) as client:
        return int(client.info("server")["process_id"])


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Callable[..., tuple[subprocess.Popen[str], str]]]:
    """Start a desk process on ``tmp_path``; returns (process, broker URL). Every desk is killed at the end."""
    require_redis_server()
    started: list[subprocess.Popen[str]] = []

    def start(link: str = "linked") -> tuple[subprocess.Popen[str], str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", DESK, str(tmp_path), link],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=batchdesk_env(),
        )
        started.append(proc)
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], scaled(60))
        assert ready, f"the desk did not start its broker within {scaled(60):g} s"
        url = proc.stdout.readline().strip()
        assert url.startswith("redis://"), f"the desk failed to start its broker: {url!r}"
        return proc, url

    yield start
    for proc in started:
        proc.kill()
        proc.wait()


def kill_desk(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(scaled(30))


def test_the_server_dies_with_a_killed_desk_not_with_the_thread_that_started_it(desk, tmp_path: Path) -> None:
    proc, url = desk()
    pid = server_pid(url)  # answering, though the thread that started it has ended
    assert servers_of(tmp_path / "redis") == [pid]
    kill_desk(proc)
    wait_for(lambda: not servers_of(tmp_path / "redis"), 30, message="the killed desk's redis-server to exit")


def test_the_next_start_reaps_a_server_a_killed_desk_left_running(desk, tmp_path: Path) -> None:
    proc, url = desk("unlinked")
    with redis.Redis.from_url(url) as client:
        client.set("queued", "job")
    old = server_pid(url)
    kill_desk(proc)
    assert server_pid(url) == old  # orphaned, still running on our data dir
    handle = start_broker("managed", tmp_path, SECRET)
    try:
        wait_for(lambda: not process_alive(old), 30, message="the leftover server to be stopped")
        new = server_pid(handle.url)
        assert servers_of(tmp_path / "redis") == [new]
        assert (tmp_path / "redis" / "server.pid").read_text().strip() == str(new)
        assert handle.connection().get("queued") == b"job"  # it flushed its append-only file on the way out
    finally:
        handle.stop()


@pytest.fixture
def sleeper() -> Iterator[int]:
    proc = subprocess.Popen(["sleep", "300"])
    yield proc.pid
    proc.kill()
    proc.wait()


@pytest.mark.parametrize("occupant", ["server-of-another-dir", "not-a-server", "garbage"])
def test_a_pid_file_naming_another_process_kills_nothing(
    tmp_path: Path, redis_url: str, sleeper: int, occupant: str
) -> None:
    others = {"server-of-another-dir": str(server_pid(redis_url)), "not-a-server": str(sleeper), "garbage": "12ab\n"}
    run_dir = tmp_path / "desk"
    (run_dir / "redis").mkdir(parents=True)
    (run_dir / "redis" / "server.pid").write_text(others[occupant])
    handle = start_broker("managed", run_dir, SECRET)
    try:
        assert handle.connection().ping()
        assert process_alive(sleeper)
        assert redis.Redis.from_url(redis_url).ping()
        assert (run_dir / "redis" / "server.pid").read_text().strip() == str(server_pid(handle.url))
    finally:
        handle.stop()


def test_stop_removes_the_pid_file(tmp_path: Path) -> None:
    require_redis_server()
    handle: BrokerHandle = start_broker("managed", tmp_path, SECRET)
    pid_file = tmp_path / "redis" / "server.pid"
    try:
        assert pid_file.read_text().strip() == str(server_pid(handle.url))
    finally:
        handle.stop()
    assert not pid_file.exists()
    assert not servers_of(tmp_path / "redis")
