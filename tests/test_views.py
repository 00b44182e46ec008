"""batchdesk.views: the read-only aggregate queries behind the dashboards."""

from __future__ import annotations

import logging
import re
import time

import fakeredis
import pytest
from rq import Queue
from rq.serializers import JSONSerializer

from batchdesk import dashboard as views
from data.models import Alert, Item, Job, ResourceSample, Setting, WorkerRow
from data.store import write
from test_ui_support import (
    BATCH_CONFIG,
    FIXED_NOW,
    POOL,
    seed_items,
    seed_many_jobs,
    seed_store,
)

NOW = FIXED_NOW


@pytest.fixture
def seeded(store):
    seed_store(NOW)
    return store


def by_id(rows):
    return {row.id: row for row in rows}


def test_jobs_overview_newest_first_with_progress_rate_eta_age(seeded):
    rows = views.jobs_overview(NOW)
    assert [r.id for r in rows] == [6, 5, 4, 3, 2, 1]
    jobs = by_id(rows)
    running = jobs[2]
    assert (running.total, running.done, running.failed, running.ended, running.remaining) == (
        5000, 2100, 37, 2137, 2863)
    assert running.progress == pytest.approx(2137 / 5000)
    assert running.elapsed == pytest.approx(590)
    assert running.rate == pytest.approx(2137 / 590)
    assert running.eta == pytest.approx(2863 / (2137 / 590))
    assert running.age == pytest.approx(600)
    done = jobs[1]
    assert done.rate == pytest.approx(1200 / 590) and done.eta is None and done.progress == 1.0
    queued = jobs[3]
    assert queued.rate is None and queued.eta is None and queued.elapsed is None and queued.progress == 0.0
    paused = jobs[4]
    assert paused.eta is None and paused.active  # no ETA while paused: nothing runs
    cancelled = jobs[5]
    assert cancelled.progress == 1.0 and cancelled.rate == pytest.approx(4000 / 890)
    assert views.jobs_overview(NOW, limit=2)[0].id == 6


def test_job_row_edge_cases():
    row = views.job_row((1, "j", "t", "running", "default", 10, 10, 0, 0, NOW - 5, NOW - 4, None), NOW)
    assert row.eta == 0.0 and row.rate == pytest.approx(2.5)
    fresh = views.job_row((1, "j", "t", "running", "default", 10, 0, 0, 0, NOW, NOW, None), NOW)
    assert fresh.rate is None and fresh.eta is None  # started this instant: no rate yet, no division by zero
    empty_done = views.job_row((1, "j", "t", "done", "default", 0, 0, 0, 0, NOW, NOW, NOW), NOW)
    assert empty_done.progress == 1.0
    clock_skew = views.job_row((1, "j", "t", "queued", "default", 3, 0, 0, 0, NOW + 10, None, None), NOW)
    assert clock_skew.age == 0.0


def test_refresh_reads_counters_never_item_rows(seeded, caplog):
    """The dashboard refresh must not scan items: it reads job counters (one row per job)."""
    def statements(call) -> list[str]:
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="peewee"):
            call()
        return [r.msg[0] if isinstance(r.msg, tuple) else r.getMessage() for r in caplog.records if r.name == "peewee"]

    def touches_items(sql: str) -> bool:
        return re.search(r'\b"?item"?\b', sql, re.IGNORECASE) is not None

    refresh = statements(lambda: views.dashboard(now=NOW))
    assert refresh, "peewee logs every statement at DEBUG"
    assert not [sql for sql in refresh if touches_items(sql)]
    assert any(touches_items(sql) for sql in statements(lambda: views.failed_items(2)))  # the check can fail


def test_job_detail_plan_and_counters(seeded):
    detail = views.job_detail(2, NOW)
    assert detail.row.status == "running" and detail.source == "/data/in/invoices"
    assert detail.output_dir == "/data/out/job-2" and detail.source_kind == "folder"
    assert (detail.batch_size, detail.workers) == (250, 2)
    assert detail.reason == BATCH_CONFIG["reason"] and detail.batch_reason == BATCH_CONFIG["batch_reason"]
    assert (detail.bytes_total, detail.bytes_done) == (5000 * 4096, 2100 * 4096)
    assert views.job_detail(1, NOW).options == {"duplicates": True}
    assert views.job_detail(999, NOW) is None


def test_throughput_series_buckets_item_finish_times(seeded):
    series = views.throughput_series(1, buckets=10, now=NOW)
    assert len(series) == 10
    width = 590 / 10
    assert sum(series) * width == pytest.approx(1200)  # every ended item lands in a bucket
    assert min(series) > 0
    assert views.throughput_series(3, buckets=10, now=NOW) == []  # not started
    assert views.throughput_series(999) == []


def test_failed_items_filter_paging_and_counts(seeded):
    page = views.failed_items(2, limit=10)
    assert len(page) == 10 and all(item.error for item in page)
    assert [i.id for i in page] == sorted(i.id for i in page)
    nxt = views.failed_items(2, limit=10, after_id=page[-1].id)
    assert nxt[0].id > page[-1].id
    assert len(views.failed_items(2, limit=1000)) == 37
    denied = views.failed_items(2, "PERMISSION", limit=1000)
    assert denied and all("permission denied" in i.error for i in denied)
    assert views.failed_count(2, "permission") == len(denied)
    by_path = views.failed_items(2, "dir1/", limit=1000)
    assert by_path and all(i.path.startswith("dir1/") for i in by_path)
    assert views.failed_count(2) == 37  # the counter, no filter
    assert views.failed_count(999) == 0


def test_failed_filter_treats_like_wildcards_literally(store):
    seed_store(NOW, items=False)
    seed_items(3, 0, 0, 0, NOW, NOW)
    with write():
        Item.insert_many([{"job": 3, "path": "a_b.txt", "status": "failed", "attempts": 1, "error": "100% broken"},
                          {"job": 3, "path": "axb.txt", "status": "failed", "attempts": 1, "error": "x"}]).execute()
    assert [i.path for i in views.failed_items(3, "a_b")] == ["a_b.txt"]
    assert [i.path for i in views.failed_items(3, "100%")] == ["a_b.txt"]
    assert views.failed_count(3, "%") == 1


def test_resource_series_window_and_health_badges(seeded):
    series = views.resource_series(window=300, now=NOW)
    assert len(series.ts) == 150 and series.ts == sorted(series.ts)
    assert series.latest("cpu") == 97.0 and series.age == pytest.approx(0)
    assert [kind for kind, _ in series.problems] == ["cpu"]
    assert "97%" in dict(series.problems)["cpu"]
    assert len(views.resource_series(window=60, now=NOW).ts) == 31
    empty = views.resource_series(window=60, now=NOW + 3600)
    assert empty.empty and empty.latest("cpu") is None and empty.problems == ()


def test_resource_badges_for_ram_disk_iowait(store):
    with write():
        ResourceSample.create(ts=NOW, cpu=10, ram_used=2**30, ram_free=2**20, iowait=80, disk_free=2**20)
    kinds = [kind for kind, _ in views.resource_series(now=NOW).problems]
    assert kinds == ["ram", "iowait", "disk"]


def test_workers_live_only_with_job_and_batch(seeded):
    workers = views.workers(NOW)
    assert [w.name for w in workers] == ["bd-host-2", "bd-host-1"]  # by start time; the dead one is left out
    busy = workers[1]
    assert (busy.state, busy.job, busy.job_name, busy.batch, busy.batch_seq) == ("busy", 2, "invoices", 70, 7)
    assert busy.uptime == pytest.approx(590) and busy.rss == 95 * 2**20
    idle = workers[0]
    assert (idle.job, idle.job_name, idle.batch) == (None, None, None)


def test_idle_worker_hides_a_stale_job(store):
    with write():
        WorkerRow.create(name="w", host="h", pid=1, state="idle", job=5, batch=9, started_at=NOW, heartbeat_at=NOW)
    assert views.workers(NOW)[0].job is None


def test_pool_status_and_step(store):
    assert views.pool_status() == views.PoolView(None, "", None)
    assert views.pool_status().step(1) == 2  # nothing planned yet: from 1
    with write():
        Setting.insert(key="pool", value=POOL).execute()
    pool = views.pool_status()
    assert (pool.target, pool.reason, pool.desired) == (2, POOL["reason"], None)
    assert pool.step(1) == 3 and pool.step(-1) == 1 and pool.step(-5) == 1
    with write():
        Setting.insert(key="workers.desired", value=5).execute()
    assert views.pool_status().desired == 5
    assert views.pool_status().step(1) == 6  # a desired count not applied yet counts as the target
    with write():
        Setting.update(value=32).where(Setting.key == "workers.desired").execute()
    assert views.pool_status().step(1) == 32  # capped at MAX_WORKERS


def test_queue_depths_like_rq_info():
    connection = fakeredis.FakeRedis()
    high = Queue("high", connection=connection, serializer=JSONSerializer)
    for n in range(3):
        high.enqueue_call("workers.runner.run_batch", args=(n,))
    low = Queue("low", connection=connection, serializer=JSONSerializer)
    job = low.enqueue_call("workers.runner.run_batch", args=(9,))
    low.failed_job_registry.add(job, ttl=-1)
    # A running job's execution, as a worker records it (RQ 3 keys started entries by execution).
    connection.zadd(low.started_job_registry.key, {f"{job.id}:exec-1": time.time() + 600})
    depths = {d.name: d for d in views.queue_depths(connection)}
    assert list(depths) == ["high", "default", "low"]
    assert (depths["high"].queued, depths["high"].started, depths["high"].failed) == (3, 0, 0)
    assert depths["default"].queued == 0
    assert (depths["low"].queued, depths["low"].started, depths["low"].failed) == (1, 1, 1)


def test_alerts_newest_first_after_id(seeded):
    alerts = views.alerts()
    assert [a.kind for a in alerts] == ["cpu", "watch", "worker"]
    assert views.alerts(after_id=alerts[1].id) == [alerts[0]]
    assert views.alerts(limit=1) == [alerts[0]]
    with write():
        Alert.create(ts=NOW, level="error", kind="breaker", message="circuit open", job=2)
    newest = views.alerts(after_id=alerts[0].id)
    assert [(a.kind, a.job) for a in newest] == [("breaker", 2)]


def test_dashboard_and_running_work(seeded):
    dash = views.dashboard(now=NOW, alerts_after=0)
    assert len(dash.jobs) == 6 and dash.now == NOW
    assert dash.running_jobs == 1 and dash.active_jobs == 3
    assert len(dash.workers) == 2 and dash.pool.target == 2 and len(dash.alerts) == 3
    assert not dash.resources.empty
    assert views.running_work() == 2  # queued + running; paused jobs run nothing


def test_overview_scales_to_a_thousand_jobs(store):
    seed_many_jobs(1000)
    rows = views.jobs_overview(NOW)
    assert len(rows) == 1000 and rows[0].id == 1000
    assert Job.select().count() == 1000
