"""Shared fixtures: hermetic settings, a temp store, generated files, and condition waits."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Callable

import pytest

from batchdesk.config import Settings


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

    deadline = time.monotonic() + 30  # a desk that is stopping gets the time to finish
    while (left := strays()) and time.monotonic() < deadline:
        time.sleep(0.2)
    for proc in left:
        proc.kill()
    assert not left, "processes left behind: " + "; ".join(" ".join(p.info["cmdline"]) for p in left)


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


def make_files(root: Path, count: int, min_size: int = 1, max_size: int = 64, nested: int = 0, seed: int = 1) -> dict[str, bytes]:
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


def wait_for(condition: Callable[[], object], timeout: float = 30.0, interval: float = 0.05, message: str = "") -> object:
    """Poll ``condition`` until it returns something truthy; fail with ``message`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message or condition}")
        time.sleep(interval)


REPO = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent


def redis_server_binary() -> str | None:
    import shutil

    return shutil.which("redis-server") or shutil.which("valkey-server")


def require_redis_server() -> str:
    """The real server binary; CI installs it, so there a missing one fails instead of skipping."""
    binary = redis_server_binary()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed; .ci/run must install it")
        pytest.skip("no redis-server/valkey-server on this machine (CI installs one)")
    return binary


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
    proc.wait(10)


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
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False
