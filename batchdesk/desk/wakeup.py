"""A wake-up a thread can wait on and a signal handler can set: a non-blocking self-pipe.

``threading.Event`` cannot be set from a signal handler. Its ``set()`` takes a lock, and a Python
signal handler runs on the main thread between two bytecodes, perhaps while that very thread holds
the same lock inside ``set()``, ``clear()`` or ``wait()``: the handler then waits for itself forever.
That is how a background desk hung with its data dir locked and its workers running: a worker's
"batch ended, wake up" signal landed while the desk's main thread was inside ``Event.set()`` in
``Desk.stop``. Writing a byte to a pipe takes no lock.
"""

from __future__ import annotations

import contextlib
import os
import select


class Wakeup:
    """Set (from any thread or a signal handler), wait with a timeout, clear. Until cleared it stays
    set, so it also serves as a one-way latch (a stop request)."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._closed = False

    def set(self) -> None:
        """Wake the waiter (a full pipe means a wake-up is pending already); nothing once closed."""
        if not self._closed:
            with contextlib.suppress(BlockingIOError, OSError):
                os.write(self._write, b"\0")

    def wait(self, timeout: float) -> bool:
        """Block until set or ``timeout`` seconds passed; True if set."""
        return bool(select.select([self._read], [], [], max(0.0, timeout))[0])

    def clear(self) -> None:
        """Take every pending wake-up."""
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read, 4096):
                pass

    def close(self) -> None:
        """Let the pipe go (once nothing can set or wait on it any more)."""
        if self._closed:
            return
        self._closed = True
        for fd in (self._read, self._write):
            with contextlib.suppress(OSError):
                os.close(fd)
