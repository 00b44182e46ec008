"""The managed server as a child process: started so that it dies with the desk, waited for, and stopped."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import BinaryIO

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from batchdesk.broker import defaults
from batchdesk.broker.handle import BrokerError
from workers.environment import external_env

_NO_RETRY = Retry(NoBackoff(), 0)  # where we poll ourselves, redis-py's own retries (with backoff) only add delay
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class ServerKeeper:
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
                preexec_fn=preexec,  # prepared before the fork, so the child only calls prctl: see _parent_death_signal
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


def wait_until_up(child: subprocess.Popen[bytes], url: str) -> str | None:
    """None once the server answers PING, else why not: it exited, or the deadline passed."""
    deadline = time.monotonic() + defaults.MANAGED_START_TIMEOUT
    probe = defaults.MANAGED_PROBE_TIMEOUT
    with redis.Redis.from_url(url, socket_connect_timeout=probe, socket_timeout=probe, retry=_NO_RETRY) as client:
        while time.monotonic() < deadline:
            if child.poll() is not None:
                return f"it exited with code {child.returncode}"
            try:
                client.ping()
                return None
            except (redis.ConnectionError, redis.TimeoutError):  # not listening yet, or loading its data
                time.sleep(defaults.MANAGED_START_POLL)
    return f"it did not answer within {defaults.MANAGED_START_TIMEOUT:.0f} s"


def _stop_child(child: subprocess.Popen[bytes], url: str) -> None:
    """SHUTDOWN (which flushes the append-only file), then wait; terminate, then kill, if it will not go."""
    if child.poll() is not None:
        return
    try:
        with redis.Redis.from_url(
            url, socket_connect_timeout=defaults.MANAGED_PROBE_TIMEOUT, retry=_NO_RETRY
        ) as client:
            client.shutdown()
    except redis.RedisError:
        child.terminate()
    try:
        child.wait(defaults.MANAGED_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
