"""The store: WAL pragmas, schema version, refusing a newer schema, counters kept with items."""

from __future__ import annotations

import json
import sqlite3

import pytest

from data import queries
from data.models import Job
from data.queries import Outcome
from data.states import ItemState
from data.store import SCHEMA_VERSION, StoreError, close_store, open_store


def _job(**kw) -> Job:
    return Job.create(name="j", source="/tmp", task="checksum", output_dir="/tmp/out", created_at=0, **kw)


def test_pragmas_and_schema_version(store):
    assert store.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.execute_sql("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert store.execute_sql("PRAGMA busy_timeout").fetchone()[0] == 30000


def test_newer_schema_is_refused_with_advice(tmp_path):
    path = tmp_path / "s.db"
    open_store(path)
    close_store()
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.close()
    open_store(tmp_path / "other.db")  # rebind so the next open really opens the file
    with pytest.raises(StoreError, match="newer batchdesk"):
        open_store(path)


def test_counters_follow_item_rows_exactly_once(store):
    job = _job()
    count, total = queries.insert_items(job.id, [(f"f{i}", 10, 0.0) for i in range(5)])
    assert (count, total) == (5, 50)
    ids = [r[0] for r in store.execute_sql("SELECT id FROM item ORDER BY id")]
    outcomes = [Outcome(ids[0], ItemState.DONE, {"x": 1}, None, 1.0, 2.0, 10),
                Outcome(ids[1], ItemState.FAILED, None, "bad", 1.0, 2.0, 10)]
    assert queries.finish_items(job.id, 1, outcomes) == (1, 1)
    # The same outcomes again (a racing second run of the batch) change nothing.
    assert queries.finish_items(job.id, 1, outcomes) == (0, 0)
    assert queries.end_pending(job.id, ItemState.CANCELLED) == 3
    job = Job.get_by_id(job.id)
    assert (job.items_done, job.items_failed, job.items_cancelled, job.bytes_done) == (1, 1, 3, 10)
    assert queries.item_counts(job.id) == {"done": 1, "failed": 1, "cancelled": 3}


def test_a_result_that_is_not_json_fails_only_its_item(store):
    job = _job()
    queries.insert_items(job.id, [(f"f{i}", 10, 0.0) for i in range(3)])
    ids = [r[0] for r in store.execute_sql("SELECT id FROM item ORDER BY id")]
    loop: dict = {}
    loop["self"] = loop
    outcomes = [Outcome(ids[0], ItemState.DONE, {"when": object()}, None, 1.0, 2.0, 10),
                Outcome(ids[1], ItemState.DONE, loop, None, 1.0, 2.0, 10),
                Outcome(ids[2], ItemState.DONE, {"s": "é\n", "n": [1.5, None, True]}, None, 1.0, 2.0, 10)]
    assert queries.finish_items(job.id, 1, outcomes) == (1, 2)
    rows = store.execute_sql("SELECT status, error, result FROM item ORDER BY id").fetchall()
    assert [r[0] for r in rows] == ["failed", "failed", "done"]
    assert "cannot be stored as JSON" in rows[0][1] and "object" in rows[0][1]
    assert "cannot be stored as JSON" in rows[1][1]
    assert json.loads(rows[2][2]) == {"s": "é\n", "n": [1.5, None, True]}
    job = Job.get_by_id(job.id)
    assert (job.items_done, job.items_failed, job.bytes_done) == (1, 2, 10)


def check_cut_batch_ranges(job: Job) -> None:
    """Cutting takes id ranges in order and respects the byte cap (SQLite and PostgreSQL alike)."""
    queries.insert_items(job.id, [(f"f{i}", 100, 0.0) for i in range(10)])
    first = queries.cut_batch(job, max_items=4, max_bytes=10_000)
    second = queries.cut_batch(job, max_items=4, max_bytes=250)
    assert (first.items_count, second.items_count) == (4, 2)
    assert second.first_item == first.last_item + 1
    assert [row[1] for row in queries.pending_in(first)] == ["f0", "f1", "f2", "f3"]
    assert Job.get_by_id(job.id).batches_total == 2
    assert queries.uncut_count(Job.get_by_id(job.id)) == 4


def test_cut_batch_takes_ranges_in_order_and_respects_bytes(store):
    check_cut_batch_ranges(_job())


def _indexes(database) -> set[str]:
    return {r[0] for r in database.execute_sql("SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='item'")}


def _as_schema_3(con: sqlite3.Connection) -> None:
    """Turn a new store's tables into what schema 3 wrote (the job's end step was a flag)."""
    con.execute('ALTER TABLE job RENAME COLUMN reason TO error')
    for column in ("status_at", "paused_by", "waiters", "end_step", "outputs"):
        con.execute(f"ALTER TABLE job DROP COLUMN {column}")
    con.execute("ALTER TABLE job ADD COLUMN finalized INTEGER NOT NULL DEFAULT 0")
    con.execute("ALTER TABLE batch DROP COLUMN kind")


def test_a_version_3_store_is_migrated_keeping_its_jobs(tmp_path):
    path = tmp_path / "old.db"
    open_store(path)
    close_store()
    con = sqlite3.connect(path)
    _as_schema_3(con)
    con.execute("INSERT INTO job (name, source, source_kind, task, options, queue, status, items_total, items_done, "
                "items_failed, items_cancelled, bytes_total, bytes_done, batches_total, batches_done, batch_config, "
                "cut_cursor, output_dir, created_at, error, finalized) VALUES ('j', '/in', 'folder', 'checksum', '{}', "
                "'default', 'failed', 0, 0, 0, 0, 0, 0, 0, 0, '{}', 0, '/out', 1.0, 'it broke', 1)")
    con.execute("PRAGMA user_version = 3")
    con.commit()
    con.close()
    open_store(tmp_path / "other.db")  # rebind so the next open really opens the file
    open_store(path)
    job = Job.get()
    assert (job.status, job.reason, job.waiters, job.outputs, job.end_step) == ("failed", "it broke", [], [], None)
    assert Job._meta.database.execute_sql("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_version_1_store_is_migrated(tmp_path):
    path = tmp_path / "old.db"
    open_store(path)
    close_store()
    con = sqlite3.connect(path)
    # what a store written by schema 1 looks like
    _as_schema_3(con)
    con.execute("ALTER TABLE item DROP COLUMN link")
    con.execute("DROP INDEX item_pending")
    con.execute("DROP INDEX item_failed")
    con.execute("CREATE INDEX item_job_id_status ON item (job_id, status)")
    con.execute("PRAGMA user_version = 1")
    con.commit()
    con.close()
    open_store(tmp_path / "other.db")  # rebind so the next open really opens the file
    open_store(path)
    job = _job()
    queries.insert_items(job.id, [("a", 1, 0.0), ("b", 1, 0.0)], links={"b"})
    assert [r[3] for r in queries.pending_in(queries.cut_batch(job, 10, 100))] == [0, 1]
    assert Job._meta.database.execute_sql("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert _indexes(Job._meta.database) == {"item_job_id", "item_pending", "item_failed"}


@pytest.mark.parametrize("sql, index", [
    ("SELECT id, path, size, link FROM item WHERE job_id=? AND id BETWEEN ? AND ? AND status='pending' ORDER BY id",
     "item_pending"),
    ("SELECT id, size FROM item WHERE job_id=? AND id>? AND status='pending' ORDER BY id LIMIT ?", "item_pending"),
    ("SELECT id, path, error FROM item WHERE job_id=? AND status='failed' AND id>? ORDER BY id LIMIT ?", "item_failed"),
])
def test_status_lookups_use_the_partial_indexes(store, sql, index):
    """Only pending and failed items are indexed by status; the hot queries must find those indexes."""
    plan = " ".join(str(row[-1]) for row in store.execute_sql("EXPLAIN QUERY PLAN " + sql, (1, 1, 1)[: sql.count("?")]))
    assert f"USING INDEX {index}" in plan and "ORDER BY" not in plan, plan


def test_new_stores_use_16k_pages(store):
    assert store.execute_sql("PRAGMA page_size").fetchone()[0] == 16384


def test_peewee_loads_no_postgres_driver_until_a_postgres_store_is_opened():
    import subprocess
    import sys

    pytest.importorskip("psycopg")
    code = (
        "import sys, data.models, data.store, peewee\n"
        "assert 'psycopg' not in sys.modules and 'psycopg2' not in sys.modules, 'a driver was imported'\n"
        "assert peewee.psycopg is None\n"
        "from data.pgdriver import bind_psycopg\n"
        "psycopg = bind_psycopg()\n"
        # what peewee's own import would have set: a PostgreSQL database now uses psycopg 3
        "assert peewee.psycopg is psycopg and peewee.Json_pg3 is not None\n"
        "adapter = peewee.PostgresqlDatabase('x', prefer_psycopg3=True)._adapter\n"
        "assert isinstance(adapter, peewee.Psycopg3Adapter) and adapter.txn_idle is not None\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_pending_in_reads_a_batch_in_chunks(store):
    job = _job()
    queries.insert_items(job.id, [(f"f{i}", 1, 0.0) for i in range(10)])
    batch = queries.cut_batch(job, max_items=8, max_bytes=100)
    first = queries.pending_in(batch, limit=3)
    rest = queries.pending_in(batch, after=first[-1][0], limit=100)
    assert [r[1] for r in first + rest] == [f"f{i}" for i in range(8)], "chunks cover the batch, nothing beyond"
    assert queries.pending_in(batch, after=rest[-1][0], limit=3) == []
