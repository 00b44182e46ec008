"""Shared fixtures: hermetic settings, a temp store, generated files, and condition waits.

Deadlines scale with the machine. Every deadline a test gives (``wait_for``'s and the UI tests' ``until``'s
timeouts, subprocess and socket timeouts, upper bounds on elapsed time, pytest-timeout's limit) is
multiplied by one factor, ``SLOWDOWN``:

- ``BATCHDESK_TEST_SLOWDOWN`` from the environment when it is set (a number > 0, e.g. ``3`` on a busy CI
  runner; read once, at import: the autouse ``_hermetic_env`` fixture removes ``BATCHDESK_*`` before
  each test);
- else ``max(1, 4 / CPUs)``, the CPUs this process may run on: the deadlines as written are for a
  4-core machine, a 2-core machine gets twice as long, a bigger one no less.

``wait_for`` and ``until`` scale their timeouts themselves (pass the seconds as written); anything else
that takes a timeout gets ``scaled(seconds)``. Lower bounds on elapsed time and the product's own
settings (an item's time limit, a settle time) are behaviour under test and are not scaled.
"""

from __future__ import annotations

import json
import math
import os
import random
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from batchdesk.config import Settings

REPO = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
SLOWDOWN_VARIABLE = "BATCHDESK_TEST_SLOWDOWN"


def _slowdown() -> float:
    """The factor every deadline is multiplied by (the rule is in the module docstring)."""
    raw = os.environ.get(SLOWDOWN_VARIABLE, "").strip()
    if not raw:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        return max(1.0, 4 / cpus)
    try:
        factor = float(raw)
    except ValueError:
        factor = math.nan
    if not (math.isfinite(factor) and factor > 0):
        raise pytest.UsageError(f"{SLOWDOWN_VARIABLE}={raw!r}: give a number > 0 (e.g. 2 for twice the time)")
    return factor


SLOWDOWN = _slowdown()


def scaled(seconds: float) -> float:
    """``seconds`` of deadline on a 4-core machine, on this one."""
    return seconds * SLOWDOWN


def pytest_report_header() -> str:
    return f"batchdesk test deadlines: x{SLOWDOWN:g} ({SLOWDOWN_VARIABLE}, else max(1, 4 / CPUs))"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """pytest-timeout's limit (the ini's, the command line's or a test's own mark) scales like every deadline."""
    if SLOWDOWN == 1:
        return
    default = config.getoption("timeout", None) or float(config.getini("timeout") or 0)
    for item in items:
        marker = item.get_closest_marker("timeout")
        seconds = marker.args[0] if marker is not None and marker.args else default
        if seconds:
            item.add_marker(pytest.mark.timeout(scaled(float(seconds))), append=False)


class Deadline:
    """A deadline ``seconds`` (scaled) from now, for a wait on ``what``: the one place a wait's deadline
    is computed and its failure worded (``wait_for`` and the UI tests' async ``until`` both use it)."""

    def __init__(self, seconds: float, what: object) -> None:
        self.seconds = scaled(seconds)
        self.what = what
        self.end = time.monotonic() + self.seconds

    def check(self) -> None:
        """Fail the test if the deadline has passed."""
        if time.monotonic() > self.end:
            raise AssertionError(f"timed out after {self.seconds:g} s waiting for {self.what}")


def wait_for(condition: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05, message: str = "") -> Any:
    """Poll ``condition`` until it returns something truthy and return that; fail with ``message`` after
    ``timeout`` seconds (scaled: pass the seconds as written)."""
    deadline = Deadline(timeout, message or condition)
    while not (value := condition()):
        deadline.check()
        time.sleep(interval)
    return value


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch, tmp_path_factory):
    """No user config or BATCHDESK_* variable of the developer's leaks into a test."""
    for key in list(os.environ):
        if key.startswith("BATCHDESK_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("BATCHDESK_CONFIG", str(tmp_path_factory.mktemp("cfg") / "none.toml"))


@pytest.fixture(scope="session", autouse=True)
def _nothing_left_behind(tmp_path_factory):
    """After the whole run, no batchdesk process of this run's folders may still be alive: a test that
    leaves a desk or a worker behind fails the session (and the stray processes are killed)."""
    import psutil

    yield
    base = str(tmp_path_factory.getbasetemp())

    def strays() -> list[psutil.Process]:
        found = []
        for proc in psutil.process_iter(["pid", "cmdline"]):
            cmdline = " ".join(proc.info["cmdline"] or [])
            if proc.pid != os.getpid() and "batchdesk" in cmdline and base in cmdline:
                found.append(proc)
        return found

    left: list[psutil.Process] = []

    def none_left() -> bool:
        left[:] = strays()
        return not left

    try:
        wait_for(none_left, 30, 0.2, "this run's batchdesk processes to exit")  # a stopping desk gets the time
    except AssertionError:
        for proc in left:
            proc.kill()
        raise AssertionError("processes left behind: " + "; ".join(" ".join(p.info["cmdline"]) for p in left)) from None


@pytest.fixture
def store(tmp_path):
    from data.store import close_store, open_store

    database = open_store(tmp_path / "store.sqlite3")
    yield database
    close_store()


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "data", broker="embedded", workers=2, retry_backoff=(0.2, 0.4, 0.8),
                    stale_seconds=5.0, linger_seconds=0.0)


@pytest.fixture
def session(settings):
    """A session on ``settings`` (no desk until a test asks for one), closed with its store."""
    from batchdesk.desk.session import Session
    from data.store import close_store

    session = Session(settings)
    yield session
    session.close()
    close_store()


def make_files(root: Path, count: int, min_size: int = 1, max_size: int = 64, nested: int = 0,
               seed: int = 1) -> dict[str, bytes]:
    """Write ``count`` random files under ``root`` (spread over ``nested`` subfolders); returns rel -> content."""
    rng = random.Random(seed)
    files = {}
    for i in range(count):
        sub = f"d{i % nested}/" if nested else ""
        rel = f"{sub}f{i:06d}.bin"
        data = rng.randbytes(rng.randint(min_size, max_size))
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        files[rel] = data
    return files


def redis_server_binary() -> str | None:
    import shutil

    return shutil.which("redis-server") or shutil.which("valkey-server")


def require_redis_server() -> str:
    """The real server binary; CI installs it, so there a missing one fails instead of skipping."""
    return require_program(redis_server_binary(), "redis-server")


def require_program(found: str | None, package: str) -> str:
    """A program a test needs (``found``: its path, or None): .ci/run installs it, so in CI a missing
    one fails the test instead of skipping it; elsewhere the test is skipped saying what to install."""
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{package} is not installed; .ci/run must install it")
        pytest.skip(f"needs {package} (apt-get install {package}; CI installs it)")
    return found


@pytest.fixture
def redis_url(tmp_path):
    """A real redis-server on a free loopback port with a password, stopped after the test."""
    import socket
    import subprocess

    import redis

    binary = require_redis_server()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    password = "test-secret"
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--requirepass", password, "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"redis://:{password}@127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)

    def ping():
        try:
            return client.ping()
        except redis.ConnectionError:
            return False

    wait_for(ping, 10, message="redis-server to answer")
    yield url
    proc.terminate()
    proc.wait(scaled(10))


def batchdesk_env(**extra: str) -> dict[str, str]:
    """Environment for batchdesk subprocesses: test plugin tasks importable, no user config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHDESK_")}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(REPO), env.get("PYTHONPATH", "")])
    env["BATCHDESK_CONFIG"] = "/nonexistent/batchdesk.toml"
    env["BATCHDESK_LINGER"] = "0"  # a background desk stops as soon as its job has ended (tests that linger say so)
    env.update(extra)
    return env


def process_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # the state follows the command name, which may hold spaces and parentheses
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def query_store(data: Path, sql: str, *params: object) -> list[tuple]:
    """Rows from the SQLite store of data dir ``data``, read-only, as another process sees them (nothing
    while the store does not exist yet)."""
    path = data / "batchdesk.sqlite3"
    if not path.exists():
        return []
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=scaled(30))
    try:
        return con.execute(sql, params).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):  # created, not yet migrated
            return []
        raise
    finally:
        con.close()


def job_row(data: Path, job_id: int = 1) -> dict:
    """A job's status and counters from the store ({} before it exists)."""
    rows = query_store(data, "SELECT status, items_total, items_done, items_failed, items_cancelled, paused_by, "
                             "reason, outputs FROM job WHERE id=?", job_id)
    if not rows:
        return {}
    keys = ("status", "total", "done", "failed", "cancelled", "paused_by", "reason", "outputs")
    return dict(zip(keys, rows[0], strict=True))


def desk_pid(data: Path) -> int | None:
    """The pid in data dir ``data``'s desk file (None before a desk wrote one or after it removed it)."""
    try:
        return json.loads((data / "desk.json").read_text())["pid"]
    except (OSError, ValueError):
        return None


def desk_diagnosis(data: Path) -> str:
    """What a desk of ``data`` that seems stuck is doing: its threads' stacks (asked with SIGQUIT, which a
    headless desk answers in its log) and the tail of its and its workers' logs, for a failure message."""
    import signal

    pid = desk_pid(data)
    log = data / "logs" / "desk.log"
    if pid is not None and process_alive(pid):
        size = log.stat().st_size if log.exists() else 0
        os.kill(pid, signal.SIGQUIT)
        deadline = Deadline(5, "the desk's stacks")
        while (log.stat().st_size if log.exists() else 0) == size and time.monotonic() < deadline.end:
            time.sleep(0.05)
    tails = [f"jobs: {query_store(data, 'SELECT id, status, paused_by, waiters FROM job')}",
             f"batches: {query_store(data, 'SELECT kind, status, COUNT(*) FROM batch GROUP BY kind, status')}"]
    for name in ("desk.log", "workers.log"):
        path = data / "logs" / name
        text = path.read_text(errors="replace")[-6000:] if path.exists() else "(none)"
        tails.append(f"--- {name} (tail) ---\n{text}")
    return "\n".join(tails)


def wait_desk_gone(data: Path, timeout: float, message: str) -> None:
    """Wait until no desk holds data dir ``data``; on timeout fail with :func:`desk_diagnosis`."""
    from batchdesk.desk.info import read_desk_info

    try:
        wait_for(lambda: read_desk_info(data) is None, timeout, 0.05, message)
    except AssertionError as timeout_error:
        raise AssertionError(f"{timeout_error}\n{desk_diagnosis(data)}") from None
