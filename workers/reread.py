"""Items of a watch job whose file changed while the task read it: set aside and read again.

A watched inbox can hand the runner a file that a writer is still changing (one taken on the settle
rule, or reopened by its writer). After the task returns, the runner compares the file's size and
mtime with those recorded when the file was taken (one ``stat``). A file that changed is not recorded
as done, since the result may mix two versions: the item is set aside, still pending, and read again
at the end of the batch after a pause. A read counts only if the file held still through it (the same
size and mtime before and after); the item's recorded size and mtime, and its SeenFile row, then
become the ones that were read, so after-processing moves exactly that version and the watch does not
take it again. After ``REREAD_ATTEMPTS`` reads the item fails with "changed while being read (N attempts)";
the watch takes the file again, as a new version, once it settles.

Only watch jobs are checked: a folder job's task may rewrite its input on purpose (a ``command`` such
as ``mogrify {path}``), which must not count as a change, and a folder job's files are not an inbox.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from data.models import Item, SeenFile
from data.queries import Outcome, PendingRow
from data.states import ItemState
from data.store import write
from workers.defaults import REREAD_ATTEMPTS, REREAD_PAUSE_SECONDS


@dataclass
class _Aside:
    item_id: int
    rel: str
    link: int
    path: str
    size: int
    mtime: float
    reads: int


def _look(path: str | Path) -> tuple[int, float] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime


class Rereads:
    """Per batch of a watch job: the items set aside because their file changed while read."""

    def __init__(self, add: Callable[[Outcome], None]) -> None:
        self.add = add  # records an ended item (the runner's pending outcomes)
        self._aside: list[_Aside] = []
        self._reads: dict[int, int] = {}  # item id -> reads so far, while it is being read again

    def rows(self, pending: Iterable[PendingRow]) -> Iterator[PendingRow]:
        """The batch's pending items, then the ones set aside, after a pause, until none is left.

        An item read again comes with the size and mtime its file has just before the read.
        """
        yield from pending
        while self._aside:
            aside, self._aside = self._aside, []
            time.sleep(REREAD_PAUSE_SECONDS)
            for item in aside:
                self._reads[item.item_id] = item.reads
                size, mtime = _look(item.path) or (item.size, item.mtime)
                yield item.item_id, item.rel, size, item.link, mtime

    def changed(self, item_id: int, rel: str, link: int, path: str | Path, size: int, mtime: float,
                started: float) -> bool:
        """After the task returned: whether the file is no longer ``size``/``mtime`` (then the item is
        set aside, or failed after ``REREAD_ATTEMPTS`` reads, and must not be recorded as done).

        A file gone since the read has not changed: its read was whole (unlinking does not cut it).
        """
        try:
            st = os.stat(path)  # the one extra call per item on the hot path
        except OSError:
            st = None
        if st is None or (st.st_size == size and st.st_mtime == mtime):
            if self._reads and self._reads.pop(item_id, 0):  # read again, and this time it held still
                _record_read(item_id, size, mtime)
            return False
        reads = self._reads.pop(item_id, 0) + 1
        if reads >= REREAD_ATTEMPTS:
            self.add(Outcome(item_id, ItemState.FAILED, None, f"changed while being read ({reads} attempts)",
                             started, time.time(), size))
        else:
            self._aside.append(_Aside(item_id, rel, link, str(path), size, mtime, reads))
        return True


def _record_read(item_id: int, size: int, mtime: float) -> None:
    """The item ends with the version it read: its size and mtime, and its watch's SeenFile row."""
    with write():
        Item.update(size=size, mtime=mtime).where(Item.id == item_id).execute()
        SeenFile.update(size=size, mtime=mtime).where(SeenFile.item == item_id).execute()
