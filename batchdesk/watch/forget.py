"""Files that left a watched folder: a task that keeps something per file (``TaskSpec.forget``, e.g. the
index's documents) forgets them, and the watch forgets it took them (so one that comes back is taken
again). Only files the watch had taken count, and only if they are still gone when looked at here.
Tasks without a ``forget`` hook are not affected: their watches behave as before."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from batchdesk.watch.runtime import seen_map
from data.models import SeenFile, Watch
from data.store import write
from workers import registry

log = logging.getLogger("batchdesk.watch")


def forget_vanished(watch_id: int, root: str, gone: list[str], plugins: tuple[str, ...] = ()) -> list[str]:
    """Let the watch's task forget the files in ``gone`` (relative paths) it had taken; returns those."""
    if not gone:
        return []
    row = Watch.get_or_none(Watch.id == watch_id)
    if row is None:
        return []
    try:
        spec = registry.get(row.task, plugins)
    except registry.TaskError:
        return []  # the watch is in error for it already
    if spec.forget is None:
        return []
    taken = seen_map(watch_id, gone)
    rels = [rel for rel in gone if rel in taken and not os.path.lexists(os.path.join(root, *rel.split("/")))]
    if not rels:
        return []
    try:
        spec.forget(row.options or {}, Path(root), rels)
    except Exception:  # a task's bug must not stop the desk's watches; the files are looked at again later
        log.exception("watch %s: task %s could not forget %d file(s)", watch_id, row.task, len(rels))
        return []
    with write():
        SeenFile.delete().where((SeenFile.watch == watch_id) & SeenFile.path.in_(rels)).execute()
    log.info("watch %s: %d file(s) left the folder and were forgotten", watch_id, len(rels))
    return rels
