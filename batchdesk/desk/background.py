"""A background desk: what `run`, `resume` and `submit` start when no desk runs for the data dir.

It is a process of its own (a forked, detached copy of the command when it can fork, else a new
``batchdesk serve --background``), so the command that started it is only ever a client: its
Ctrl-C, its crash or its exit never take the desk (or a half-run job) down with them. The desk runs
no drop folders; it lingers ``linger_seconds`` after its last job has ended (nobody waiting, nothing
queued or running), so the next command finds warm workers, then stops and leaves nothing behind.
`batchdesk stop` ends it sooner.

The launcher hears how the start went through a pipe: ``ready``, ``busy`` (another desk won the
data dir's lock: attach to that one) or ``error: ...`` (nothing was started; the message says why).
"""

from __future__ import annotations

import logging
import os
import select
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

from batchdesk import defaults, locations
from batchdesk.config import Settings, settings_env
from batchdesk.desk.info import BACKGROUND, DeskBusy, install_wake_signal
from batchdesk.desk.wakeup import Wakeup
from batchdesk.errors import BatchdeskError
from data.models import Job
from data.states import JOB_BUSY, SourceKind
from data.store import StoreError, close_store, open_store

# The first word a starting background desk writes to its launcher (see the module docstring).
READY, BUSY, ERROR = "ready", "busy", "error"

log = logging.getLogger("batchdesk.background")


class Launch:
    """A background desk being started: read its first word without blocking, or wait for it."""

    def __init__(self, read_fd: int, log_path: Path) -> None:
        self._fd: int | None = read_fd
        self._buffer = b""
        self.log_path = log_path
        self.outcome: str | None = None

    def poll(self, timeout: float = 0.0) -> str | None:
        """READY or BUSY once the desk said so, None while it starts; a DeskStartError if it failed."""
        if self.outcome is not None or self._fd is None:
            return self.outcome
        if select.select([self._fd], [], [], timeout)[0]:
            chunk = os.read(self._fd, 4096)
            self._buffer += chunk
            if not chunk or b"\n" in self._buffer:
                self._finish()
        return self.outcome

    def wait(self, timeout: float = defaults.DESK_START_WAIT_SECONDS) -> str:
        """Block until the desk said how its start went (READY or BUSY); DeskStartError if it failed."""
        deadline = time.monotonic() + timeout
        while (outcome := self.poll(0.1)) is None:
            if time.monotonic() > deadline:
                raise DeskStartError(f"the background desk did not start within {timeout:.0f} s; see {self.log_path}")
        return outcome

    def _finish(self) -> None:
        assert self._fd is not None
        os.close(self._fd)
        self._fd = None
        word, _, detail = self._buffer.decode(errors="replace").partition("\n")[0].partition(" ")
        if word in (READY, BUSY):
            self.outcome = word
            return
        self.outcome = ERROR
        raise DeskStartError(detail or f"the background desk exited while starting; see {self.log_path}")


class DeskStartError(BatchdeskError):
    """The background desk could not start (its broker, store or config); nothing was left running."""


def launch(settings: Settings, fork: bool) -> Launch:
    """Start a background desk for ``settings``: forked (only safe before this process has threads)
    or as a new process. Returns at once; the Launch says how the start went."""
    locations.ensure_private_dir(locations.logs_dir(settings.data_dir))
    log_path = locations.logs_dir(settings.data_dir) / "desk.log"
    read_fd, write_fd = os.pipe()
    try:
        if fork:
            _fork(settings, write_fd, read_fd, log_path)
        else:
            _spawn(settings, write_fd, log_path)
    finally:
        os.close(write_fd)
    return Launch(read_fd, log_path)


def _fork(settings: Settings, write_fd: int, read_fd: int, log_path: Path) -> None:
    """Double fork: the desk is nobody's child, in a session of its own (the terminal's Ctrl-C is the
    command's, not the desk's), with the command's stdio swapped for the desk log."""
    close_store()  # no SQLite connection may cross a fork
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(read_fd)
            os.setsid()
            if os.fork() != 0:
                os._exit(0)
            _detach(log_path, keep=write_fd)
            code = serve_background(settings, write_fd)
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    os.waitpid(pid, 0)
    open_store(settings.store_ref)


def _detach(log_path: Path, keep: int) -> None:
    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.closerange(3, keep)
    os.closerange(keep + 1, 65536)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    sys.stderr = os.fdopen(2, "w", buffering=1)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, force=True,
                        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")


def _spawn(settings: Settings, write_fd: int, log_path: Path) -> None:
    """``batchdesk serve --background`` as a new process (where this one cannot fork safely)."""
    command = [*locations.self_command(), "serve", "--background", "--notify-fd", str(write_fd)]
    with open(log_path, "ab") as log_file:
        subprocess.Popen(command, env=settings_env(settings), stdin=subprocess.DEVNULL, stdout=log_file,
                         stderr=subprocess.STDOUT, pass_fds=(write_fd,), start_new_session=True)


def serve_background(settings: Settings, notify_fd: int) -> int:
    """The background desk's life: start, say how it went on ``notify_fd``, run until idle for
    ``linger_seconds`` (or SIGTERM / `batchdesk stop`), stop cleanly. Returns the exit code."""
    from batchdesk.desk.desk import Desk  # here: the commands that only launch a desk never load it
    from batchdesk.desk.stall import dump_stacks_on_sigquit, stop_within

    stop = Wakeup()  # set by signal handlers: a threading.Event there could deadlock (batchdesk.desk.wakeup)
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    install_wake_signal()
    dump_stacks_on_sigquit()
    desk = Desk(settings, kind=BACKGROUND)
    try:
        desk.start()
    except DeskBusy:
        _notify(notify_fd, BUSY)
        return 0
    except (BatchdeskError, StoreError) as exc:
        _notify(notify_fd, f"{ERROR} {exc}")
        return 1
    _notify(notify_fd, READY)
    try:
        _linger(settings.linger_seconds, stop)
    finally:
        stop_within(defaults.STOP_STALL_SECONDS, desk.stop)
        close_store()
    return 0


def _notify(fd: int, message: str) -> None:
    try:
        os.write(fd, message.replace("\n", " ").encode() + b"\n")
        os.close(fd)
    except OSError:  # the command that started us is gone; the desk serves whoever comes next
        pass


def _linger(linger_seconds: float, stop: Wakeup) -> None:
    idle_since: float | None = None
    while not stop.wait(defaults.IDLE_CHECK_SECONDS):
        try:
            busy = has_work()
        except Exception:  # a store hiccup is no reason to stop: look again at the next check
            log.exception("could not tell whether jobs are left; staying")
            busy = True
        if busy:
            idle_since = None
            continue
        now = time.monotonic()
        idle_since = idle_since if idle_since is not None else now
        if now - idle_since >= linger_seconds:
            log.info("no work for %.0f s; the background desk stops", linger_seconds)
            return


def has_work() -> bool:
    """A folder job a desk must still carry, or a job somebody waits for (even a paused one)."""
    return bool(Job.select(Job.id).where(
        ((Job.status.in_(JOB_BUSY)) & (Job.source_kind == SourceKind.FOLDER)) | Job.has_waiters()).exists())
