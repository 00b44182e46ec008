"""Cleanup, statistics and health: what they keep, remove and report."""

from __future__ import annotations

import json
import subprocess
import sys

from batchdesk.desk.monitor import Health, Monitor
from batchdesk.jobs.cleanup import DAY, cleanup
from batchdesk.jobs.stats import stats
from conftest import batchdesk_env, scaled
from data import queries
from data.models import Alert, Item, Job, ResourceSample
from data.queries import Outcome


def _job(task: str, status: str, finished: float | None, started: float | None = None, items: int = 0) -> Job:
    job = Job.create(name=task, source="/s", task=task, output_dir="/o", created_at=0, status=status,
                     started_at=started)
    queries.insert_items(job.id, [(f"f{i}", 1, 0.0) for i in range(items)])
    Job.update(finished_at=finished).where(Job.id == job.id).execute()
    return Job.get_by_id(job.id)


def test_cleanup_removes_only_old_ended_jobs_and_samples(store):
    now = 1000 * DAY
    old = _job("checksum", "done", now - 40 * DAY, items=2)
    recent = _job("checksum", "done", now - 1 * DAY, items=2)
    running = _job("checksum", "running", None, items=2)
    ResourceSample.create(ts=now - 40 * DAY, cpu=1, ram_used=1, ram_free=1)
    ResourceSample.create(ts=now, cpu=1, ram_used=1, ram_free=1)
    purged = cleanup(30, now=now)
    assert (purged.jobs, purged.samples) == (1, 1)
    assert {j.id for j in Job.select()} == {recent.id, running.id}
    assert Item.select().where(Item.job == old.id).count() == 0
    assert Item.select().count() == 4


def test_stats_per_task_and_overall(store):
    a = _job("checksum", "done", 110.0, started=100.0, items=4)
    ids = [i.id for i in Item.select().where(Item.job == a.id)]
    queries.finish_items(a.id, 1, [Outcome(ids[0], "done", {}, None, 100, 100.5, 1),
                                   Outcome(ids[1], "done", {}, None, 100, 100.5, 1),
                                   Outcome(ids[2], "done", {}, None, 100, 100.5, 1),
                                   Outcome(ids[3], "failed", None, "x", 100, 101.5, 1)])
    b = _job("command", "done", 20.0, started=10.0)
    rows = {r["task"]: r for r in stats()}
    assert rows["checksum"]["success_rate"] == 0.75 and rows["checksum"]["items_per_s"] == 0.4
    assert rows["checksum"]["avg_item_ms"] == 750.0
    assert rows["(all)"]["jobs"] == 2 and rows["(all)"]["done"] == 3
    assert b.id in {j.id for j in Job.select()}


def test_health_thresholds_and_alerts_once_a_minute(store, tmp_path, monkeypatch):
    sick = Health(cpu=99, ram_used=1, ram_free=100 * 2**20, iowait=80, disk_free=10 * 2**20, load1=4)
    assert {kind for kind, _ in sick.problems()} == {"cpu", "ram", "iowait", "disk"} and sick.under_pressure
    assert not Health(cpu=10, ram_used=1, ram_free=8 * 2**30, iowait=0, disk_free=50 * 2**30, load1=0).problems()
    monkeypatch.setattr("batchdesk.desk.monitor.read_health", lambda data_dir, meter: sick)
    monitor = Monitor(tmp_path)
    monitor.sample(workers=2, queued=3)
    monitor.sample(workers=2, queued=3)
    assert ResourceSample.select().count() == 2
    assert Alert.select().count() == 4, "each kind alerts once, not on every sample"


def test_health_and_stats_commands(tmp_path):
    env = batchdesk_env()
    base = [sys.executable, "-m", "batchdesk", "--data-dir", str(tmp_path / "d")]
    health = subprocess.run([*base, "health", "--json"], capture_output=True, text=True, env=env, timeout=scaled(60))
    data = json.loads(health.stdout)
    assert health.returncode == (1 if data["problems"] else 0)
    assert set(data["health"]) >= {"cpu", "ram_free", "iowait", "disk_free"}
    out = subprocess.run([*base, "stats", "--json"], capture_output=True, text=True, env=env, timeout=scaled(60))
    assert out.returncode == 0 and json.loads(out.stdout) == []
    clean = subprocess.run([*base, "cleanup", "--days", "1"], capture_output=True, text=True, env=env,
                           timeout=scaled(60))
    assert clean.returncode == 0 and "removed 0 job(s)" in clean.stdout


def test_cleanup_trims_a_rolling_watch_job_and_keeps_counters_true(store):
    now = 1000 * DAY
    job = Job.create(name="inbox", source="/s", task="checksum", output_dir="/o", created_at=0, status="running",
                     source_kind="watch")
    queries.insert_items(job.id, [(f"f{i}", 10, 0.0) for i in range(4)])
    ids = [i.id for i in Item.select().where(Item.job == job.id).order_by(Item.id)]
    queries.finish_items(job.id, 1, [Outcome(ids[0], "done", {}, None, 0, now - 40 * DAY, 10),
                                     Outcome(ids[1], "failed", None, "x", 0, now - 40 * DAY, 10),
                                     Outcome(ids[2], "done", {}, None, 0, now - DAY, 10)])
    purged = cleanup(30, now=now)
    assert purged.watch_items == 2 and purged.jobs == 0
    job = Job.get_by_id(job.id)
    assert (job.items_total, job.items_done, job.items_failed, job.bytes_total, job.bytes_done) == (2, 1, 0, 20, 10)
    assert queries.item_counts(job.id) == {"done": 1, "pending": 1}
