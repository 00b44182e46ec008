"""After processing: move (or delete) a watched folder's files once their items have ended.

Runs in the desk (the watch service's tick), never in a worker. It follows the *batches* of each
of the watch's active jobs: a batch that is done, dead or cancelled has all of its items ended, and
batches are few, so "what ended since the last tick" is one small query per job. A cursor (the
highest batch id below which every batch is finished and handled) is kept in the Setting table so
a restart carries on; anything re-handled after a crash is harmless because a file is only touched
while it still has the size and mtime its item was taken with (a newer version is left alone).

Nothing is ever overwritten: ``done/report.pdf`` exists -> ``done/report-1.pdf``, and so on.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from batchdesk.watch.settle import DONE_DIR, FAILED_DIR
from batchdesk.watch.spec import DELETE, KEEP, MOVE
from data.models import SeenFile, Setting, db
from data.states import BatchState, ItemState
from data.store import write

log = logging.getLogger("batchdesk.watch")

# A batch in one of these states has all of its items ended (retry_wait and failed batches go again).
BATCH_ENDED = (BatchState.DONE, BatchState.DEAD, BatchState.CANCELLED)
MAX_SUFFIX = 100_000  # report.pdf .. report-99999.pdf: past that a folder is taken to be broken
ERROR_SUFFIX = ".error.txt"  # beside a file moved to failed/: why it failed


def free_name(directory: Path, name: str, n: int) -> Path:
    """``name`` with a numeric suffix before its extension: report.pdf -> report-3.pdf."""
    if n == 0:
        return directory / name
    stem, dot, ext = name.rpartition(".")
    if not stem:  # no extension (or a leading-dot name)
        return directory / f"{name}-{n}"
    return directory / f"{stem}-{n}{dot}{ext}"


def move_no_overwrite(src: Path, dest_dir: Path, name: str, also_free: tuple[str, ...] = ()) -> Path:
    """Move ``src`` into ``dest_dir`` as ``name`` (or ``name-N.ext``), never replacing a file there.

    ``also_free`` lists suffixes that must be free too (``.error.txt`` beside a failed file).
    Uses a hard link + unlink (atomic no-replace on POSIX); where links are not supported it falls
    back to an existence check and a rename.
    """
    dest_dir.mkdir(parents=True, exist_ok=True)
    use_link = hasattr(os, "link")
    for n in range(MAX_SUFFIX):
        target = free_name(dest_dir, name, n)
        if any(os.path.lexists(str(target) + suffix) for suffix in also_free):
            continue
        if use_link:
            try:
                os.link(src, target, follow_symlinks=False)
            except FileExistsError:
                continue
            except OSError as exc:
                if exc.errno in (errno.ENOENT,):
                    raise
                use_link = False  # EPERM / ENOTSUP / EXDEV (FAT, SMB, a mount point): rename instead
            else:
                os.unlink(src)
                return target
        if os.path.lexists(target):
            continue
        os.rename(src, target)
        return target
    raise FileExistsError(f"no free name for {name} in {dest_dir}")


def write_new_file(path: Path, text: str) -> Path:
    """Create ``path`` with ``text`` without replacing anything (suffix -N on a clash).

    The text is written to a temporary name first and then hard-linked into place, so the file
    appears whole: a reader never sees it empty or half written.
    """
    part = path.parent / f".{path.name}.{os.getpid()}.part"
    part.write_text(text, encoding="utf-8")
    try:
        for n in range(MAX_SUFFIX):
            target = free_name(path.parent, path.name, n) if n else path
            try:
                os.link(part, target)  # fails on an existing name: never replaces
                return target
            except FileExistsError:
                continue
        raise FileExistsError(f"no free name for {path}")
    finally:
        part.unlink(missing_ok=True)


@dataclass
class AfterResult:
    """What one pass did to a watch's files, and what it could not do (for an alert)."""

    moved: int = 0
    deleted: int = 0
    failed_moved: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class _JobCursor:
    batch: int = 0  # every batch of the job with id <= this is finished and handled
    handled: set[int] = field(default_factory=set)  # finished batches above the cursor, already handled


class AfterProcessing:
    """Per watch: follows its jobs' finished batches and applies on_done / on_fail."""

    def __init__(self, watch_id: int) -> None:
        self.watch_id = watch_id
        self.key = f"watch.{watch_id}.after"
        self._cursors: dict[int, _JobCursor] | None = None
        self._saved: dict[int, int] = {}

    def _load(self) -> dict[int, _JobCursor]:
        if self._cursors is None:
            row = Setting.get_or_none(Setting.key == self.key)
            stored = row.value if row is not None and isinstance(row.value, dict) else {}
            self._cursors = {int(k): _JobCursor(int(v)) for k, v in stored.items()}
            self._saved = {k: c.batch for k, c in self._cursors.items()}
        return self._cursors

    def run(self, root: Path, on_done: str, on_fail: str, job_ids: list[int]) -> AfterResult:
        """Handle the items of batches that finished since the last call (``job_ids``: the watch's
        active jobs; a job followed before and no longer active gets a last pass, then is dropped)."""
        cursors = self._load()
        result = AfterResult()
        # Jobs that just ended (a retired rolling job) get one last pass for their final batches.
        for job_id in sorted(set(job_ids) | set(cursors)):
            cursor = cursors.setdefault(job_id, _JobCursor())
            rows = db.execute_sql(
                "SELECT id, first_item, last_item, status FROM batch WHERE job_id=? AND id>? ORDER BY id",
                (job_id, cursor.batch),
            ).fetchall()
            for batch_id, first, last, status in rows:
                if status not in BATCH_ENDED or batch_id in cursor.handled:
                    continue
                if on_done != KEEP or on_fail != KEEP:
                    self._handle_batch(root, on_done, on_fail, job_id, batch_id, first, last, result)
                cursor.handled.add(batch_id)
            for batch_id, _first, _last, _status in rows:  # advance over the finished prefix
                if batch_id not in cursor.handled:
                    break
                cursor.batch = batch_id
            cursor.handled = {b for b in cursor.handled if b > cursor.batch}
        for job_id in [j for j in cursors if j not in job_ids]:
            del cursors[job_id]  # the job ended and had its last pass: nothing more will finish
        self._save()
        return result

    def _save(self) -> None:
        current = {k: c.batch for k, c in (self._cursors or {}).items()}
        if current != self._saved:
            with write():
                value = {str(k): v for k, v in current.items()}
                Setting.insert(key=self.key, value=value).on_conflict_replace().execute()
            self._saved = current

    def _handle_batch(self, root: Path, on_done: str, on_fail: str, job_id: int, batch_id: int,
                      first: int, last: int, result: AfterResult) -> None:
        statuses = [s for s, policy in ((ItemState.DONE, on_done), (ItemState.FAILED, on_fail)) if policy != KEEP]
        marks = ",".join("?" * len(statuses))
        items = db.execute_sql(
            f"SELECT id, path, status, error, size, mtime FROM item WHERE job_id=? AND id BETWEEN ? AND ? "
            f"AND status IN ({marks}) AND (batch=? OR batch IS NULL) ORDER BY id",
            (job_id, first, last, *statuses, batch_id),
        ).fetchall()
        forget: list[tuple[str, int]] = []
        for item_id, rel, status, error, size, mtime in items:
            src = root / rel
            if not _same_file(src, size, mtime):
                continue  # already moved, deleted by the user, or replaced by a newer version
            try:
                if status == ItemState.DONE and on_done == DELETE:
                    os.unlink(src)
                    result.deleted += 1
                elif status == ItemState.DONE and on_done == MOVE:
                    move_no_overwrite(src, (root / DONE_DIR / rel).parent, src.name)
                    result.moved += 1
                elif status == ItemState.FAILED and on_fail == MOVE:
                    target = move_no_overwrite(src, (root / FAILED_DIR / rel).parent, src.name,
                                               also_free=(ERROR_SUFFIX,))
                    write_new_file(Path(str(target) + ERROR_SUFFIX), _error_text(rel, job_id, item_id, error))
                    result.failed_moved += 1
                    forget.append((rel, item_id))
            except FileNotFoundError:
                continue  # vanished meanwhile
            except OSError as exc:
                result.errors.append(f"{rel}: {exc.strerror or exc}")
        if forget:
            # A file moved to failed/ is forgotten: dropping it back into the inbox retries it.
            with write():
                for rel, item_id in forget:
                    SeenFile.delete().where(
                        (SeenFile.watch == self.watch_id) & (SeenFile.path == rel) & (SeenFile.item == item_id)
                    ).execute()


def _same_file(path: Path, size: int, mtime: float) -> bool:
    """Whether ``path`` is still the version its item was taken with (a symlink: its target's)."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return st.st_size == size and st.st_mtime == mtime


def _error_text(rel: str, job_id: int, item_id: int, error: str | None) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
    return (f"file:  {rel}\njob:   {job_id} (item {item_id})\nwhen:  {when}\n"
            f"error: {error or 'unknown error'}\n")
