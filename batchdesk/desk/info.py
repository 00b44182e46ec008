"""How processes find the desk of a data dir and talk to it: its lock, its ``desk.json``, its kind,
and the signal that wakes it.

One desk runs per data dir, guarded by ``desk.lock``; once its broker is up it writes its pid and
broker URL to ``desk.json`` (mode 0600), so a second ``batchdesk`` (CLI or TUI) attaches to it
instead of starting another. A PostgreSQL store is shared by hosts: there the store's own lock
also keeps it to one desk per store.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from batchdesk import locations
from batchdesk.errors import BatchdeskError
from data.store import StoreError, hold_desk_lock

try:
    import fcntl
except ImportError:  # Windows: a single desk is assumed
    fcntl = None  # type: ignore[assignment]

# Who runs a desk: `batchdesk serve`, the terminal UI, or a background desk that `run`, `resume` or
# `submit` started when none was running (it lingers after its last job, then exits).
SERVE, UI, BACKGROUND = "serve", "ui", "background"
WAKE_SIGNAL = getattr(signal, "SIGUSR1", None)  # another process's submit wakes the desk at once


class DeskError(BatchdeskError):
    """The desk cannot start (its broker, its store or its lock)."""


class DeskBusy(DeskError):
    """Another desk holds this data dir's lock: attach to it instead."""


@dataclass(frozen=True)
class DeskInfo:
    """What ``desk.json`` says about the running desk: where its broker is and who runs it."""

    pid: int
    url: str
    mode: str
    started_at: float
    kind: str = SERVE
    wakeable: bool = False  # the desk's process handles WAKE_SIGNAL (never send it otherwise: it would kill)


def desk_lock_held(data_dir: Path) -> bool:
    """Whether a desk holds this data dir's lock (it may still be starting)."""
    lock_path = locations.desk_lock_path(data_dir)
    if fcntl is None or not lock_path.exists():
        return False
    with open(lock_path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False


def read_desk_info(data_dir: Path) -> DeskInfo | None:
    """The running desk for this data dir, or None if no desk holds the lock (or it is still starting)."""
    if not desk_lock_held(data_dir):
        return None
    try:
        return DeskInfo(**json.loads(locations.desk_info_path(data_dir).read_text()))
    except (OSError, ValueError, TypeError):
        return None


class DeskLock:
    """The data dir's lock (and, on PostgreSQL, the store's), held for a desk's whole life."""

    def __init__(self, data_dir: Path, store_ref: Path | str) -> None:
        self.data_dir, self.store_ref = data_dir, store_ref
        self._file: IO[str] | None = None
        self._store_lock: Callable[[], None] | None = None

    def take(self) -> None:
        """DeskBusy if another desk holds it; DeskError if the store's lock cannot be had."""
        if fcntl is not None:
            fh = open(locations.desk_lock_path(self.data_dir), "a+")  # noqa: SIM115  (held until release)
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.close()
                raise DeskBusy(f"another batchdesk desk is running for {self.data_dir}") from None
            self._file = fh
        try:
            self._store_lock = hold_desk_lock(self.store_ref)
        except StoreError as exc:
            self.release()
            raise DeskError(str(exc)) from None

    def publish(self, url: str, mode: str, kind: str) -> None:
        """Tell other processes where this desk's broker is (``desk.json``, 0600: the URL holds the password)."""
        info = DeskInfo(pid=os.getpid(), url=url, mode=mode, started_at=time.time(), kind=kind,
                        wakeable=wake_handler_installed())
        fd = os.open(locations.desk_info_path(self.data_dir), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(asdict(info), fh)

    def release(self) -> None:
        """Let go of the locks and remove ``desk.json``, so the next desk can start."""
        if self._store_lock is not None:
            self._store_lock()
            self._store_lock = None
        if self._file is not None and fcntl is not None:
            try:
                locations.desk_info_path(self.data_dir).unlink(missing_ok=True)
            finally:
                fcntl.flock(self._file, fcntl.LOCK_UN)
                self._file.close()
                self._file = None


def broker_password(data_dir: Path) -> str:
    """The broker password for this data dir: random, made once, kept in a 0600 file."""
    path = locations.broker_password_path(data_dir)
    if path.exists():
        return path.read_text().strip()
    password = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(password)
    return password


_wake_callbacks: list[Callable[[], None]] = []  # the desks this process runs (the wake signal wakes them)


def install_wake_signal() -> None:
    """Let other processes wake this process's desk with WAKE_SIGNAL (call from the main thread,
    before the desk starts; a desk advertises itself wakeable only when this handler is in place)."""
    if WAKE_SIGNAL is not None:
        signal.signal(WAKE_SIGNAL, _on_wake_signal)


def on_wake(callback: Callable[[], None]) -> Callable[[], None]:
    """Run ``callback`` when another process wakes this one; returns the function that stops it."""
    _wake_callbacks.append(callback)
    return lambda: _wake_callbacks.remove(callback) if callback in _wake_callbacks else None


def _on_wake_signal(signum: int, frame: object) -> None:
    for callback in _wake_callbacks:
        callback()


def wake_handler_installed() -> bool:
    """Whether this process handles WAKE_SIGNAL (only then may its workers send it: unhandled, it kills)."""
    return WAKE_SIGNAL is not None and signal.getsignal(WAKE_SIGNAL) is _on_wake_signal


def wake_desk(info: DeskInfo) -> None:
    """Ask a running desk to tick now (after a submit) rather than at its next interval."""
    if info.wakeable and WAKE_SIGNAL is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(info.pid, WAKE_SIGNAL)
