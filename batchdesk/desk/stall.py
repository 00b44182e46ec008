"""A headless desk that hangs says where, and one that cannot stop still lets go of its data dir.

Two guards for the processes that run nothing but a desk (`serve`, a background desk):

- ``SIGQUIT`` (``kill -QUIT PID``) writes every thread's stack to the desk's stderr (the data dir's
  ``logs/desk.log`` for a background desk) and the desk goes on: how to see what a desk that seems stuck
  is doing, without a debugger.
- :func:`stop_within`: a stop that has not finished after its deadline is a bug; the stacks go to the log,
  the desk's process tree (broker, template, workers and their commands) is killed and the process
  exits, so the lock on the data dir is released and the next desk re-queues what was left, as after a
  crash. Without it a hung stop held the data dir until somebody killed it by hand.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable

from workers.proctree import kill_tree

log = logging.getLogger("batchdesk.stall")


def dump_stacks_on_sigquit() -> None:
    """``kill -QUIT`` this process: its threads' stacks go to stderr, and it goes on."""
    if hasattr(signal, "SIGQUIT"):
        faulthandler.register(signal.SIGQUIT, file=sys.stderr, all_threads=True, chain=False)


def stop_within(seconds: float, stop: Callable[[], None]) -> None:
    """Call ``stop``; if it has not returned after ``seconds``, log the stacks, kill this process's
    tree and exit (status 1)."""
    timer = threading.Timer(seconds, _give_up, args=(seconds,))
    timer.daemon = True
    timer.start()
    try:
        stop()
    finally:
        timer.cancel()


def _give_up(seconds: float) -> None:
    log.error("the desk did not stop within %g s: its threads' stacks follow; killing its processes", seconds)
    try:
        sys.stderr.flush()
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        sys.stderr.flush()
    finally:
        kill_tree(os.getpid())  # everything it started; never itself
        os._exit(1)
