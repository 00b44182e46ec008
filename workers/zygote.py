"""Workers forked from a template process (a *zygote*) instead of started as new interpreters.

A worker started as ``batchdesk worker`` pays for a fresh interpreter and ~0.3 s of CPU importing the
broker client, RQ, the batch runner and every task before it takes its first batch. A desk that may
fork safely (Linux, no thread yet) forks one template process first; the template imports the worker
side once and forks each worker from itself on request, in milliseconds. Nothing of the desk's
crosses into a worker: the desk closes its store before it forks the template, the template closes
every file descriptor it inherited, and each worker opens its own store and broker connections.

The template is its workers' parent: it reaps them and reports every exit to the desk, whose handle
(:class:`ForkedWorker`) answers like a ``subprocess.Popen``. A worker follows the template
(``follow_parent``) and the template follows the desk: when the desk goes away, even killed, its end
of the request pipe closes, the template exits and the workers stop as they would after their desk.
The template lowers itself to the workers' niceness, so they start niced; each worker runs in a
session of its own, writes to the data dir's workers.log and is killed as a process tree like any.
Where the desk cannot fork (the UI's desk has threads; not Linux) it starts ``batchdesk worker``
processes instead, as workers on other machines are.

Protocol, one JSON object per line: desk -> template ``{"name", "env", "log", "run"}`` (``run``: the
keyword arguments of :func:`workers.worker.run_worker`); template -> desk ``{"name", "pid"}`` once
forked and ``{"pid", "code"}`` once reaped (``code`` as Popen's returncode: negative for a signal).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from typing import Any, NoReturn

import psutil

from workers.defaults import ZYGOTE_SPAWN_TIMEOUT_SECONDS, ZYGOTE_STOP_SECONDS
from workers.priority import lower_priority

log = logging.getLogger("batchdesk.zygote")

# Signals the template and its workers must not inherit the desk's handlers for.
_RESET_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1", "SIGUSR2")
                       if hasattr(signal, name))


class ZygoteError(Exception):
    """The template is gone or did not answer: start the worker as a new process instead."""


def can_fork() -> bool:
    """Whether this process may fork a template now: on Linux, and while it has no other thread."""
    return sys.platform.startswith("linux") and threading.active_count() == 1


def fork_template(plugins: tuple[str, ...], nice: int) -> Zygote:
    """Fork the template (only while :func:`can_fork`; no store connection may be open) and return the
    desk's handle on it."""
    requests_r, requests_w = os.pipe()
    reports_r, reports_w = os.pipe()
    for stream in (sys.stdout, sys.stderr):  # what the desk has not written yet is not written twice
        with contextlib.suppress(Exception):
            stream.flush()
    pid = os.fork()
    if pid == 0:  # the template: never returns
        os.close(requests_w)
        os.close(reports_r)
        _run_template(requests_r, reports_w, plugins, nice)
    os.close(requests_r)
    os.close(reports_w)
    return Zygote(pid, requests_w, reports_r)


# -- the desk's side -------------------------------------------------------------------------------


class Zygote:
    """The desk's handle on its template: asks it for workers and collects what it reports."""

    def __init__(self, pid: int, requests: int, reports: int) -> None:
        self.pid = pid
        self.alive = True
        self.exits: dict[int, int] = {}  # worker pid -> returncode, reported and not yet collected
        self._requests, self._reports = requests, reports
        self._spawned: dict[str, int] = {}
        self._buffer = b""

    def spawn(self, name: str, env: Mapping[str, str], log_path: str, run: Mapping[str, Any],
              timeout: float = ZYGOTE_SPAWN_TIMEOUT_SECONDS) -> ForkedWorker:
        """A new worker forked from the template; ZygoteError if the template is gone or silent."""
        message = json.dumps({"name": name, "env": dict(env), "log": log_path, "run": dict(run)}) + "\n"
        try:
            os.write(self._requests, message.encode())
        except OSError as exc:
            self._gone()
            raise ZygoteError(f"the worker template is gone ({exc})") from exc
        deadline = time.monotonic() + timeout
        while name not in self._spawned:
            left = deadline - time.monotonic()
            if not self.alive or left <= 0:
                raise ZygoteError("the worker template is gone" if not self.alive else
                                  f"the worker template did not answer within {timeout:.0f} s")
            self.pump(left)
        return ForkedWorker(self._spawned.pop(name), self)

    def pump(self, timeout: float = 0.0) -> None:
        """Take in what the template reported, waiting at most ``timeout`` seconds for it."""
        if not self.alive or not select.select([self._reports], [], [], timeout)[0]:
            return
        chunk = os.read(self._reports, 65536)
        if not chunk:
            self._gone()
            return
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            message = json.loads(line)
            if "code" in message:
                self.exits[message["pid"]] = message["code"]
            else:
                self._spawned[message["name"]] = message["pid"]

    def close(self, timeout: float = ZYGOTE_STOP_SECONDS) -> None:
        """Let the template go (call once its workers have stopped): it exits when its pipe closes."""
        with contextlib.suppress(OSError):
            os.close(self._requests)
        deadline = time.monotonic() + timeout
        while _child_running(self.pid):
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
            time.sleep(0.005)
        with contextlib.suppress(OSError):
            os.close(self._reports)
        self.alive = False

    def _gone(self) -> None:
        self.alive = False
        _child_running(self.pid)  # reaps it


class ForkedWorker:
    """A worker the template forked, answering like the ``subprocess.Popen`` of a spawned one."""

    def __init__(self, pid: int, zygote: Zygote) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._zygote = zygote
        try:
            self._process: psutil.Process | None = psutil.Process(pid)
        except psutil.Error:
            self._process = None

    def poll(self) -> int | None:
        """The returncode once the template reported the exit (or, the template gone, once it is gone)."""
        if self.returncode is None:
            self._zygote.pump()
            self.returncode = self._zygote.exits.pop(self.pid, None)
            if self.returncode is None and not self._zygote.alive and not self._running():
                self.returncode = 1  # its exit went unreported with the template
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Block until it exited; subprocess.TimeoutExpired after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            left = 0.05 if deadline is None else min(0.05, deadline - time.monotonic())
            if left <= 0:
                raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout or 0)
            if self._zygote.alive:
                self._zygote.pump(left)
            else:
                time.sleep(left)
        return code

    def send_signal(self, sig: int) -> None:
        """Signal it, unless it has already exited (its pid may be another process's by now)."""
        if self.poll() is None and self._process is not None:
            with contextlib.suppress(psutil.Error):
                self._process.send_signal(sig)

    def _running(self) -> bool:
        try:  # is_running() tells a reused pid from this process
            return (self._process is not None and self._process.is_running()
                    and self._process.status() != psutil.STATUS_ZOMBIE)
        except psutil.Error:
            return False


def _child_running(pid: int) -> bool:
    """Whether a child of this process still runs (reaping it if it ended)."""
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == 0
    except ChildProcessError:
        return False


# -- the template's side ---------------------------------------------------------------------------


def _run_template(requests: int, reports: int, plugins: tuple[str, ...], nice: int) -> NoReturn:
    """The template's life: detach from the desk's session and files, import the worker side once,
    then fork a worker for each request and report every exit, until the desk's end closes."""
    code = 1
    try:
        os.setsid()
        _close_inherited(keep=(requests, reports))
        for sig in _RESET_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        lower_priority(nice)
        wakeup_r, wakeup_w = os.pipe()
        for fd in (wakeup_r, wakeup_w):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(wakeup_w)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)  # a handler, so the wake-up byte is written
        _preload(plugins)
        _serve(requests, reports, (wakeup_r, wakeup_w))
        code = 0
    except BaseException:  # the desk sees the pipe close and starts its workers as processes
        traceback.print_exc()
    finally:
        os._exit(code)


def _close_inherited(keep: tuple[int, ...]) -> None:
    """Close every file descriptor above stderr except ``keep`` (the desk's lock, store, sockets...)."""
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 65536)


def _preload(plugins: tuple[str, ...]) -> None:
    """What every worker needs, imported once here rather than in each worker."""
    from workers import registry, runner, worker  # noqa: F401

    try:
        registry.load(plugins)
    except registry.TaskError as exc:  # the batches that need it fail with this reason (as in run_worker)
        log.warning("%s", exc)


def _serve(requests: int, reports: int, wakeup: tuple[int, int]) -> None:
    """Fork a worker per request line; report exits as SIGCHLD arrives; return when the desk's end closes."""
    buffer = b""
    while True:
        ready = select.select([requests, wakeup[0]], [], [])[0]
        if wakeup[0] in ready:
            with contextlib.suppress(BlockingIOError):
                os.read(wakeup[0], 4096)
            _reap(reports)
        if requests in ready:
            chunk = os.read(requests, 65536)
            if not chunk:
                return  # the desk is done with us, or gone: our workers follow us out
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                request = json.loads(line)
                pid = _fork_worker(request, close=(requests, reports, *wakeup))
                _report(reports, {"name": request["name"], "pid": pid})


def _reap(reports: int) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _report(reports, {"pid": pid, "code": os.waitstatus_to_exitcode(status)})


def _report(reports: int, message: dict[str, Any]) -> None:
    os.write(reports, json.dumps(message).encode() + b"\n")  # a desk gone raises: the template ends


def _fork_worker(request: dict[str, Any], close: tuple[int, ...]) -> int:
    """Fork one worker; in the child, become it and never return."""
    pid = os.fork()
    if pid != 0:
        return pid
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in close:
            os.close(fd)
        os.setsid()
        _redirect(request["log"])
        os.environ.update(request["env"])
        from workers.worker import run_worker

        run_worker(**{**request["run"], "plugins": tuple(request["run"].get("plugins", ()))},
                   parent_pid=os.getppid())
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _redirect(log_path: str) -> None:
    """stdin from /dev/null, stdout and stderr to the workers' log (as a spawned worker has them)."""
    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(null)
    os.close(out)
