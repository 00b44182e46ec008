"""What the desk and the workers agree on, in one small module both import (nothing heavy here).

- QUEUES: the queues (priorities) batches are put on, which workers drain in this order;
- RUNNER: the one function a worker runs for a queue entry (stored by name in every entry);
- HAND_BACK_SIGNAL: a stopping worker asks its work-horse, with it, to stop after the item in hand and
  hand its batch back (held: the desk queues it again) instead of finishing it;
- worker names ``bd-<host>-<desk pid>-<n>`` (a worker started by hand: ``bd-<host>-<pid>``) and queue
  entry ids ``bd-<batch>-<attempt>-<ms>``, so the desk can tell its own host's workers from others;
- POISON_KEY: the broker list where workers set aside queue entries they cannot read;
- DESK_WAKE_ENV: how a desk tells its workers to wake it (``pid:signal``) each time a batch ends, so
  the next batch, or a finished job's end step, is queued at once rather than at the desk's next tick.
"""

from __future__ import annotations

import signal
import socket
import time

QUEUES = ("high", "default", "low")  # drained in this order
DEFAULT_QUEUE = "default"  # for a job whose task has no route in the config
RUNNER = "workers.runner.run_batch"
HAND_BACK_SIGNAL = signal.SIGUSR1
WORKER_PREFIX = "bd"  # worker names and queue entry ids start with it
POISON_KEY = "batchdesk:poison"  # newest first: JSON {ts, queue, entry, reason}
DESK_WAKE_ENV = "BATCHDESK_DESK_WAKE"  # "pid:signal" of the desk to wake after each batch (unset: none)


def worker_name(owner_pid: int, seq: int | None = None, host: str | None = None) -> str:
    """The name of a worker on ``host`` (this one by default) started by ``owner_pid`` (its desk), or of
    a worker started by hand (no ``seq``: ``owner_pid`` is its own pid)."""
    host = host or socket.gethostname()
    return f"{WORKER_PREFIX}-{host}-{owner_pid}" + (f"-{seq}" if seq is not None else "")


def is_local_worker(name: str | None) -> bool:
    """Whether a worker name says it runs on this host (only those can be signalled or killed)."""
    return bool(name) and str(name).startswith(f"{WORKER_PREFIX}-{socket.gethostname()}-")


def queue_entry_id(batch_id: int, attempt: int) -> str:
    """A fresh RQ job id for one attempt of a batch (unique: a batch may be queued again)."""
    return f"{WORKER_PREFIX}-{batch_id}-{attempt}-{int(time.time() * 1000) % 100000}"
