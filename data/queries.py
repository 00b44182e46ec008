"""Store operations shared by the desk and the workers, written for the hot path.

Item rows change only here, and always together with the job counters that count them, in one
IMMEDIATE transaction: a crash can never leave counters disagreeing with item rows. Every item
update is guarded by ``status = 'pending'`` so an item is counted exactly once even when two
runs of the same batch race (a re-queued batch whose first worker was not quite dead).
Counters move only by ``x = x + ?`` in SQL, never by a value read into Python, so concurrent
writers (on PostgreSQL, on other hosts) cannot lose an update. The raw SQL is written for SQLite
(``?`` placeholders; booleans as parameters or TRUE/FALSE); :class:`data.store.PostgresStore` runs it as is.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from itertools import groupby
from json import encoder as _json_encoder
from typing import Any, NamedTuple

from data.defaults import RESULTS_READ_ROWS
from data.models import Batch, Job, db
from data.states import BATCH_UNFINISHED, JOB_ACTIVE, BatchKind, BatchState, ItemState, JobState
from data.store import write

# Item statuses are written into the SQL as literals, never as parameters: SQLite uses the partial
# indexes on ``status = 'pending'`` / ``'failed'`` (data.models) only for a literal it sees when planning.
_PENDING, _DONE, _FAILED = f"'{ItemState.PENDING}'", f"'{ItemState.DONE}'", f"'{ItemState.FAILED}'"


class Outcome(NamedTuple):
    """How one item ended in a worker (a tuple: the runner builds one per item)."""

    item_id: int
    status: ItemState  # done or failed
    result: Any  # JSON-serialisable, or None
    error: str | None
    started_at: float
    finished_at: float
    size: int = 0


def insert_items(job_id: int, rows: Iterable[tuple[str, int, float]], links: Collection[str] = ()) -> tuple[int, int]:
    """Bulk-insert ``(rel_path, size, mtime)`` rows as pending items and count them on the job.

    ``links`` names the paths that are symlinks (the runner re-checks where those lead).
    Returns ``(items, bytes)`` added, in one transaction. The scan's own tuples are bound as they
    are (the job id and link flag are constants of the statement): no per-row Python work.
    """
    rows = rows if isinstance(rows, list) else list(rows)
    total = sum(size for _, size, _ in rows)
    sql = ("INSERT INTO item (job_id, path, size, mtime, link, status, attempts) "
           f"VALUES ({{job}}, ?, ?, ?, {{link}}, {_PENDING}, 0)")
    runs = groupby(rows, key=lambda row: row[0] in links) if links else [(False, rows)]
    with write():
        cursor = db.cursor()
        for link, run in runs:
            cursor.executemany(sql.format(job=int(job_id), link="TRUE" if link else "FALSE"), run)
        Job.update(
            items_total=Job.items_total + len(rows),
            bytes_total=Job.bytes_total + total,
            finished_at=None,
        ).where(Job.id == job_id).execute()
    return len(rows), total


def _compact_encoder() -> Callable[[Any], str]:
    """A compact JSON encoder built once and reused.

    ``json.dumps`` builds a new C encoder on every call, which is most of its cost for a small
    result; calling the C encoder directly halves it. Checked at import against ``json`` itself,
    falling back to it if this interpreter's C encoder is missing or differs.
    """
    plain = json.JSONEncoder(separators=(",", ":"))
    make = getattr(_json_encoder, "c_make_encoder", None)
    if make is None:
        return plain.encode
    try:
        fast = make(None, plain.default, _json_encoder.encode_basestring_ascii, None, ":", ",", False, False, True)
        sample = {"s": "é\n\"", "n": [1, 2.5, None, True], "d": {"x": -0.1}}
        if "".join(fast(sample, 0)) != plain.encode(sample):
            return plain.encode
    except TypeError:  # another signature
        return plain.encode
    return lambda value: "".join(fast(value, 0))


_encode = _compact_encoder()


def finish_items(job_id: int, batch_id: int, outcomes: Sequence[Outcome]) -> tuple[int, int]:
    """Record ended items and bump the job's counters in the same transaction.

    Returns ``(done, failed)`` actually applied: items no longer pending (ended by a racing run
    of the same batch, or cancelled meanwhile) are left alone and not counted again. An item whose
    result cannot be stored as JSON is recorded as failed, with the reason.
    """
    done_rows: list[tuple] = []
    failed_rows: list[tuple] = []
    done_bytes = 0
    done_state = ItemState.DONE  # bound once: an enum member lookup costs more than the comparison
    for item_id, status, result, error, started, finished, size in outcomes:
        encoded = None
        if result is not None:
            try:
                encoded = _encode(result)
            except (TypeError, ValueError, RecursionError) as exc:
                status, error = ItemState.FAILED, f"the task returned a result that cannot be stored as JSON: {exc}"
        if status == done_state:
            done_rows.append((encoded, finished - started, started, finished, batch_id, item_id))
            done_bytes += size
        else:
            failed_rows.append((error, encoded, finished - started, started, finished, batch_id, item_id))
    with write():
        cursor = db.cursor()
        done = failed = 0
        if done_rows:
            cursor.executemany(
                f"UPDATE item SET status={_DONE}, result=?, error=NULL, duration=?, started_at=?, finished_at=?, "
                f"batch=?, attempts=attempts+1 WHERE id=? AND status={_PENDING}",
                done_rows,
            )
            done = cursor.rowcount
        if failed_rows:
            cursor.executemany(
                f"UPDATE item SET status={_FAILED}, error=?, result=?, duration=?, started_at=?, finished_at=?, "
                f"batch=?, attempts=attempts+1 WHERE id=? AND status={_PENDING}",
                failed_rows,
            )
            failed = cursor.rowcount
        if done == len(done_rows):
            cursor.execute(
                "UPDATE job SET items_done=items_done+?, items_failed=items_failed+?, bytes_done=bytes_done+? "
                "WHERE id=?",
                (done, failed, done_bytes, job_id),
            )
        else:  # lost a race for some rows (rare): which rows were ours is unknowable, so recount the bytes
            cursor.execute(
                "UPDATE job SET items_done=items_done+?, items_failed=items_failed+?, bytes_done=(SELECT "
                "COALESCE(SUM(size), 0) FROM item WHERE job_id=? AND status=?) WHERE id=?",
                (done, failed, job_id, ItemState.DONE, job_id),
            )
    return done, failed


def end_pending(job_id: int, status: ItemState, error: str | None = None,
                first: int | None = None, last: int | None = None, skip_running: bool = False) -> int:
    """End the job's pending items (optionally only ids in ``first..last``) as cancelled or failed.

    ``skip_running`` leaves items inside running batches to their runner, which stops between items.
    """
    assert status in (ItemState.CANCELLED, ItemState.FAILED)
    where = f"job_id=? AND status={_PENDING}"
    params: list[object] = [job_id]
    if first is not None and last is not None:
        where += " AND id BETWEEN ? AND ?"
        params += [first, last]
    if skip_running:
        where += (" AND NOT EXISTS (SELECT 1 FROM batch b WHERE b.job_id=item.job_id AND b.status=?"
                  " AND item.id BETWEEN b.first_item AND b.last_item)")
        params.append(BatchState.RUNNING)
    column = "items_cancelled" if status == ItemState.CANCELLED else "items_failed"
    with write():
        cursor = db.execute_sql(
            f"UPDATE item SET status=?, error=?, finished_at=? WHERE {where}", [status, error, time.time(), *params]
        )
        changed = cursor.rowcount
        if changed:
            db.execute_sql(f"UPDATE job SET {column}={column}+? WHERE id=?", (changed, job_id))
    return changed


def reset_failed(job_id: int) -> int:
    """Put the job's failed items back to pending (for ``retry --failed``); returns how many."""
    with write():
        changed = db.execute_sql(
            f"UPDATE item SET status={_PENDING}, error=NULL WHERE job_id=? AND status={_FAILED}", (job_id,)
        ).rowcount
        if changed:
            db.execute_sql(
                "UPDATE job SET items_failed=items_failed-?, status=?, status_at=?, finished_at=NULL, reason=NULL, "
                "outputs='[]' WHERE id=?",
                (changed, JobState.QUEUED, time.time(), job_id),
            )
    return changed


def cut_batch(job: Job, max_items: int, max_bytes: int, after: int | None = None) -> Batch | None:
    """Cut the next batch of ``job``: the next pending ids after ``after`` (default: the cut cursor).

    A batch is an id range; nothing is written to the item rows, so cutting costs one indexed read,
    summed inside SQLite; only when the byte cap binds are the sizes walked here.
    """
    start = job.cut_cursor if after is None else after
    taken = next_pending(job.id, start, None, max_items, max_bytes)
    if taken is None:
        return None
    count, first, last, size = taken
    with write():
        batch = add_batch(job.id, first, last, count, size, BatchState.QUEUED)
        if after is None:
            Job.update(cut_cursor=last).where(Job.id == job.id).execute()
    if after is None:
        job.cut_cursor = last
    return batch


Taken = tuple[int, int, int, int]  # (items, first id, last id, bytes) of a run of pending items


def next_pending(job_id: int, after: int, upto: int | None, max_items: int, max_bytes: int) -> Taken | None:
    """The job's next pending items after id ``after`` (up to id ``upto``, when given): at most ``max_items``
    of them and ``max_bytes`` (at least one item); None when there is none."""
    bound = "" if upto is None else " AND id<=?"
    pending = f"SELECT id, size FROM item WHERE job_id=? AND id>?{bound} AND status={_PENDING} ORDER BY id LIMIT ?"
    params = (job_id, after, *(() if upto is None else (upto,)), max(1, max_items))
    count, first, last, size = db.execute_sql(
        f"SELECT COUNT(*), MIN(id), MAX(id), COALESCE(SUM(size), 0) FROM ({pending}) AS next_items", params
    ).fetchone()
    if not count:
        return None
    if size > max_bytes and count > 1:
        taken: list[int] = []
        size = 0
        for item_id, item_size in db.execute_sql(pending, params).fetchall():
            if taken and size + item_size > max_bytes:
                break
            taken.append(item_id)
            size += item_size
        count, last = len(taken), taken[-1]
    return count, first, last, size


def add_batch(job_id: int, first: int, last: int, count: int, size: int, status: BatchState,
              kind: BatchKind = BatchKind.ITEMS) -> Batch:
    """A new batch of the job (the next ``seq``), counted on the job. Call inside a write transaction."""
    seq = (Batch.select(Batch.seq).where(Batch.job == job_id).order_by(Batch.seq.desc()).scalar() or 0) + 1
    batch = Batch.create(job=job_id, seq=seq, kind=kind, first_item=first, last_item=last, items_count=count,
                         bytes_count=size, status=status, queued_at=time.time())
    Job.update(batches_total=Job.batches_total + 1).where(Job.id == job_id).execute()
    return batch


def pending_count(batch: Batch) -> int:
    """The batch's items still pending (those a runner may still start)."""
    return db.execute_sql(
        f"SELECT COUNT(*) FROM item WHERE job_id=? AND id BETWEEN ? AND ? AND status={_PENDING}",
        (batch.job_id, batch.first_item, batch.last_item),
    ).fetchone()[0]


def nth_pending(batch: Batch, n: int) -> int | None:
    """The id of the batch's ``n``-th pending item (1-based), or None when it has fewer."""
    row = db.execute_sql(
        f"SELECT id FROM item WHERE job_id=? AND id BETWEEN ? AND ? AND status={_PENDING} ORDER BY id "
        "LIMIT 1 OFFSET ?", (batch.job_id, batch.first_item, batch.last_item, max(0, n - 1)),
    ).fetchone()
    return row[0] if row else None


def uncut_count(job: Job) -> int:
    """Pending items of the job not yet cut into a batch."""
    return db.execute_sql(
        f"SELECT COUNT(*) FROM item WHERE job_id=? AND id>? AND status={_PENDING}", (job.id, job.cut_cursor)
    ).fetchone()[0]


PendingRow = tuple[int, str, int, int, float]  # (id, rel_path, size, is_link, mtime)


def pending_in(batch: Batch, after: int | None = None, limit: int | None = None) -> list[PendingRow]:
    """The batch's items still pending, as ``(id, rel_path, size, is_link, mtime)``: all of them, or the
    first ``limit`` with an id above ``after``."""
    first = batch.first_item if after is None else max(batch.first_item, after + 1)
    sql = (f"SELECT id, path, size, link, mtime FROM item WHERE job_id=? AND id BETWEEN ? AND ? AND status={_PENDING} "
           "ORDER BY id")
    params: tuple[int, ...] = (batch.job_id, first, batch.last_item)
    if limit is not None:
        sql, params = sql + " LIMIT ?", (*params, limit)
    return db.execute_sql(sql, params).fetchall()


def active_jobs() -> list[Job]:
    """Jobs whose items may still run (queued, running, paused), oldest first."""
    return list(Job.select().where(Job.status.in_(JOB_ACTIVE)).order_by(Job.id))


def unfinished_batches(job_id: int | None = None) -> list[Batch]:
    """Batches not closed yet (of one job, or of all), oldest first."""
    query = Batch.select().where(Batch.status.in_(BATCH_UNFINISHED))
    if job_id is not None:
        query = query.where(Batch.job == job_id)
    return list(query.order_by(Batch.id))


def running_batches() -> list[Batch]:
    """Batches a work-horse holds."""
    return list(Batch.select().where(Batch.status == BatchState.RUNNING))


def iter_results(job_id: int, chunk: int = RESULTS_READ_ROWS) -> Iterator[tuple[str, str, Any, str | None]]:
    """Every item of the job as ``(rel_path, status, result, error)``, read in id order in chunks
    (each chunk read in full before the caller writes anything)."""
    last = 0
    while rows := db.execute_sql(
        "SELECT id, path, status, result, error FROM item WHERE job_id=? AND id>? ORDER BY id LIMIT ?",
        (job_id, last, chunk),
    ).fetchall():
        for _, path, status, result, error in rows:
            yield path, status, json.loads(result) if result is not None else None, error
        last = rows[-1][0]


def iter_folder_results(job_id: int, earlier: Sequence[int], source: str) -> Iterator[tuple[str, str, Any, str | None]]:
    """What a report on the whole folder covers: the job's items, then the done items of the earlier jobs it
    left its unchanged files to (``earlier``, newest first), each path once, and only files still in the
    folder ``source`` (a file removed since an earlier job is no longer part of it)."""
    seen: set[str] = set()
    for row in iter_results(job_id):
        seen.add(row[0])
        yield row
    for earlier_id in earlier:
        for row in iter_results(earlier_id):
            path, status = row[0], row[1]
            if status == ItemState.DONE and path not in seen and os.path.isfile(os.path.join(source, path)):
                seen.add(path)
                yield row


def item_counts(job_id: int) -> dict[str, int]:
    """Counts per status straight from the item rows (for checks and reports, not for UI refreshes)."""
    rows = db.execute_sql(
        "SELECT status, COUNT(*) FROM item WHERE job_id=? GROUP BY status", (job_id,)
    ).fetchall()
    return dict(rows)
