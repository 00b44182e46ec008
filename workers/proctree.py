"""Kill a process with everything it started, including process groups that left its own.

A ``command`` item runs in a session of its own (so a timeout can kill the command's whole group),
which also means that killing the work-horse, or the worker's process group, does not reach it: the
command lives on with parent pid 1. Everything that ends a work-horse or a worker (RQ's stop-job and
hard timeout, a cold stop, a worker whose desk died, the desk's own kill paths) calls
:func:`kill_tree` instead of killing one pid or one group.
"""

from __future__ import annotations

import contextlib
import os
import signal

import psutil


def kill_tree(pid: int, sig: int = signal.SIGKILL) -> None:
    """Send ``sig`` to ``pid``, to all its descendants, and to every process group one of them leads.

    The tree is collected before anything is signalled (a killed parent's children are reparented
    to init and could no longer be found). A group is signalled only when a process of the tree
    leads it: that reaches the members already reparented away (the rest of a killed command's
    pipeline), whereas a group the tree merely belongs to may hold other programs (a shell
    pipeline the desk runs in). The caller's own process and group are never signalled. Processes
    that end meanwhile are no error; reaping the root, if it is the caller's child, is the caller's.
    """
    if pid <= 0:
        raise ValueError(f"kill_tree needs a process id, not {pid}")
    try:
        root = psutil.Process(pid)
        tree = [*reversed(root.children(recursive=True)), root]  # deepest first, the root last
    except psutil.NoSuchProcess:
        return
    tree = [proc for proc in tree if proc.pid != os.getpid()]
    for group in _groups_led(tree):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, sig)
    for proc in tree:
        with contextlib.suppress(psutil.Error):  # gone, a zombie, or its pid reused (psutil checks)
            proc.send_signal(sig)


def _groups_led(tree: list[psutil.Process]) -> list[int]:
    """The process groups led by a member of ``tree``, but never the caller's own (none on Windows)."""
    if not hasattr(os, "killpg"):
        return []
    own = os.getpgrp()
    groups = []
    for proc in tree:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getpgid(proc.pid) == proc.pid != own:
                groups.append(proc.pid)
    return groups
