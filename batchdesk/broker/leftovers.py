"""The managed server's pid file, and the clean-up it allows: stopping a server a dead desk left running."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import psutil

from batchdesk.broker import defaults
from batchdesk.broker.server_binary import SERVER_NAMES

log = logging.getLogger("batchdesk.broker")

PID_FILE = "server.pid"  # in the managed server's data dir, while it runs


def write_pid_file(path: Path, pid: int) -> None:
    """Record ``pid`` in ``path`` atomically: a reader never sees half a number."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(f"{pid}\n")
    os.replace(temporary, path)


def remove_pid_file(path: Path, pid: int) -> None:
    """Remove ``path`` if it still names ``pid``: not a later server's, after a second stop()."""
    with contextlib.suppress(OSError, ValueError):
        if int(path.read_text()) == pid:
            path.unlink()


def reap_leftover(pid_path: Path, data_dir: Path) -> None:
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
            server.wait(defaults.MANAGED_STOP_TIMEOUT)
        except psutil.TimeoutExpired:
            server.kill()
            server.wait(defaults.MANAGED_STOP_TIMEOUT)
    pid_path.unlink(missing_ok=True)


def _leftover_server(pid_path: Path, data_dir: Path) -> psutil.Process | None:
    try:
        server = psutil.Process(int(pid_path.read_text()))
        if server.name() in SERVER_NAMES and Path(server.cwd()).resolve() == data_dir.resolve():
            return server
    except (OSError, ValueError, psutil.Error):  # no pid file, not a pid, no such process, not ours to look at
        pass
    return None
