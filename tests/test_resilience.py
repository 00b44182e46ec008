"""Failure handling with real workers: timeouts, retries into the dead-letter list, the circuit
breaker, shared rate limits, cancel of a stuck batch, retry of failed items."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import replace

import pytest

from batchdesk.desk.desk import Desk
from batchdesk.jobs import control
from batchdesk.jobs.submit import JobRequest, submit_folder
from conftest import TESTS, process_alive, wait_for
from data.models import Alert, Batch, Item, Job

pytestmark = pytest.mark.slow

PLUGINS = ("fixture_tasks:slow", "fixture_tasks:flaky", "fixture_tasks:hang")


@pytest.fixture
def run_desk(tmp_path, settings, monkeypatch):
    """Start a desk with the test tasks enabled and the given setting overrides; stopped after."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.syspath_prepend(str(TESTS))
    desks = []

    def start(**overrides) -> tuple[Desk, object]:
        configured = replace(settings, plugins=PLUGINS, **overrides)
        desks.append(Desk(configured).start())
        return desks[-1], configured

    yield start
    for desk in desks:
        desk.stop(grace=2)


def files(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text(name)
    return folder


def submit(settings, desk, folder, task, **options):
    job, _ = submit_folder(settings, JobRequest(folder, task, {k: str(v) for k, v in options.items()}))
    desk.wake()
    return job


def ended(job_id):
    job = Job.get_by_id(job_id)
    return job if job.status in ("done", "failed", "cancelled") else None


def test_soft_item_timeout_fails_only_that_item(tmp_path, run_desk):
    desk, settings = run_desk(item_timeout=0.5, workers=1)
    job = submit(settings, desk, files(tmp_path / "in", ["a", "hang-1", "b", "c"]), "fixture_tasks:hang")
    job = wait_for(lambda: ended(job.id), 60, 0.1, "the job to end")
    assert (job.status, job.items_done, job.items_failed) == ("done", 3, 1)
    assert Item.get(Item.path == "hang-1").error == "timed out after 0.5 s"
    assert Batch.select().where(Batch.status == "done").count() == job.batches_total


def test_hard_batch_timeout_retries_then_dead_letter(tmp_path, run_desk):
    desk, settings = run_desk(batch_timeout=2, retries=1, retry_backoff=(0.2,), workers=1)
    job = submit(settings, desk, files(tmp_path / "in", ["a", "b", "hang-1", "z"]), "fixture_tasks:hang")
    job = wait_for(lambda: ended(job.id), 90, 0.1, "the job to end")
    # Items done before the hang are kept; the hang and what came after it in the batch fail with its reason.
    assert (job.items_done, job.items_failed) == (2, 2)
    for path in ("hang-1", "z"):
        item = Item.get(Item.path == path)
        assert item.status == "failed" and "batch failed after 2 attempt(s)" in item.error, item.error
        assert "time limit" in item.error
    dead = control.dead_batches(job.id)
    assert len(dead) == 1 and dead[0].attempts == 2
    assert Alert.select().where(Alert.message.contains("is dead")).exists()


def test_circuit_breaker_pauses_a_failing_job(tmp_path, run_desk):
    desk, settings = run_desk(breaker_min_items=20, workers=1)
    folder = files(tmp_path / "in", [f"f{i:03d}" for i in range(400)])
    job = submit(settings, desk, folder, "fixture_tasks:flaky", rate=0.9)
    wait_for(lambda: Job.get_by_id(job.id).status == "paused", 60, 0.1, "the breaker to trip")
    alert = wait_for(lambda: Alert.get_or_none(Alert.kind == "breaker"), 10, message="the breaker alert")
    assert f"job {job.id} paused itself" in alert.message
    # Paused means no new batch starts: what is in flight settles, then nothing moves.
    wait_for(lambda: not Batch.select().where((Batch.job == job.id) & (Batch.status == "running")).exists(), 30)
    job = Job.get_by_id(job.id)
    assert job.items_done + job.items_failed < 400
    control.cancel(job.id)
    wait_for(lambda: (lambda j: j.items_ended == 400)(Job.get_by_id(job.id)), 30, 0.1, "every item to end")


def test_rate_limit_is_shared_by_all_workers(tmp_path, run_desk):
    desk, settings = run_desk(rate_limits={"fixture_tasks:slow": "10/s"}, workers=2)
    job = submit(settings, desk, files(tmp_path / "in", [f"f{i:02d}" for i in range(45)]), "fixture_tasks:slow", ms=1)
    wait_for(lambda: ended(job.id), 60, 0.1, "the job to end")
    starts = [int(i.started_at) for i in Item.select().where(Item.job == job.id)]
    per_second = Counter(starts)
    assert max(per_second.values()) <= 10, per_second
    assert len({b.worker for b in Batch.select().where(Batch.job == job.id)}) == 2, "both workers took part"


def test_cancel_kills_a_stuck_batch_after_the_grace_period(tmp_path, run_desk, monkeypatch):
    monkeypatch.setattr("batchdesk.defaults.CANCEL_GRACE_SECONDS", 1.0)
    desk, settings = run_desk(workers=1)
    job = submit(settings, desk, files(tmp_path / "in", ["a", "hang-1", "x", "y"]), "fixture_tasks:hang")
    wait_for(lambda: Item.get(Item.path == "a").status == "done", 30, 0.1, "the first item (flushed by the heartbeat)")
    control.cancel(job.id)
    job = wait_for(lambda: (lambda j: j if j.items_ended == 4 else None)(Job.get_by_id(job.id)), 60, 0.1,
                   "every item to end")
    assert (job.status, job.items_done, job.items_cancelled, job.items_failed) == ("cancelled", 1, 3, 0)


def test_retry_failed_reruns_only_failed_items(tmp_path, run_desk):
    desk, settings = run_desk(workers=1, breaker_min_items=1000)
    folder = files(tmp_path / "in", [f"f{i:02d}" for i in range(40)])
    job = submit(settings, desk, folder, "fixture_tasks:flaky", rate=0.3)
    job = wait_for(lambda: ended(job.id), 60, 0.1, "the first run")
    first_failed = {i.path for i in Item.select().where((Item.job == job.id) & (Item.status == "failed"))}
    assert 0 < len(first_failed) < 40
    Job.update(options={"rate": 0.0}).where(Job.id == job.id).execute()  # the cause is fixed
    assert control.retry_failed(job.id) == len(first_failed)
    desk.wake()
    job = wait_for(lambda: ended(job.id), 60, 0.1, "the retry")
    assert (job.status, job.items_done, job.items_failed) == ("done", 40, 0)
    attempts = {i.path: i.attempts for i in Item.select().where(Item.job == job.id)}
    assert all(attempts[p] == (2 if p in first_failed else 1) for p in attempts)


def test_stopping_the_desk_kills_a_stuck_work_horse(tmp_path, run_desk):
    desk, settings = run_desk(workers=1)
    submit(settings, desk, files(tmp_path / "in", ["hang-1"]), "fixture_tasks:hang")
    batch = wait_for(lambda: Batch.get_or_none((Batch.status == "running") & Batch.pid.is_null(False)), 30,
                     message="the batch to start")
    desk.stop(grace=1)
    wait_for(lambda: not process_alive(batch.pid), 15, 0.1, "the stuck work-horse to be killed")


def test_low_free_ram_shrinks_the_pool_and_the_batches(tmp_path, run_desk, monkeypatch):
    from batchdesk.desk.monitor import Health
    from batchdesk.planner import Readings
    from data.models import Setting

    monkeypatch.setattr("batchdesk.defaults.MONITOR_SECONDS", 0.1)
    monkeypatch.setattr("batchdesk.defaults.RESIZE_SECONDS", 0.1)
    calm = Readings(cores=3, load1=0.0, ram_available=16 * 2**30)
    monkeypatch.setattr("batchdesk.planner.Readings.now", classmethod(lambda cls: calm))
    desk, settings = run_desk(workers=None)
    start = desk.pool.target
    assert start == 3
    monkeypatch.setattr("batchdesk.desk.monitor.Monitor.sample", lambda self, workers, queued: Health(
        cpu=50, ram_used=1, ram_free=200 * 2**20, iowait=0, disk_free=50 * 2**30, load1=0))
    wait_for(lambda: desk.pool.target < start and "free RAM low" in Setting.get(Setting.key == "pool").value["reason"],
             10, 0.05, "the pool to shrink, saying why")
    assert desk._capacity().under_pressure
    job = submit(settings, desk, files(tmp_path / "in", [f"f{i}" for i in range(50)]), "fixture_tasks:slow")
    assert "free RAM is low" in desk.feeder.plan(job, desk.pool.target, under_pressure=True).reason


def test_high_priority_queue_is_drained_first(tmp_path, run_desk):
    desk, settings = run_desk(workers=0)  # nothing runs until both jobs are queued
    low, _ = submit_folder(settings, JobRequest(files(tmp_path / "low", ["a", "b"]), "fixture_tasks:slow",
                                                queue="low"))
    high, _ = submit_folder(settings, JobRequest(files(tmp_path / "high", ["a", "b"]), "fixture_tasks:slow",
                                                 queue="high"))
    desk.wake()
    wait_for(lambda: Batch.select().where(Batch.status == "queued").count() >= 2, 10, message="both jobs queued")
    from data.models import Setting

    Setting.insert(key="workers.desired", value=1).on_conflict_replace().execute()
    desk.resize()
    wait_for(lambda: ended(low.id) and ended(high.id), 60, 0.1, "both jobs to finish")
    first_low = min(i.started_at for i in Item.select().where(Item.job == low.id))
    last_high = max(i.finished_at for i in Item.select().where(Item.job == high.id))
    assert last_high <= first_low, "the high queue was drained before the low one"


def test_breaker_trips_on_the_item_that_reaches_min_items():
    from workers.throttle import Breaker

    breaker = Breaker(threshold=0.5, min_items=4)
    assert [breaker.record(failed) for failed in (True, True, True)] == [False, False, False]
    assert breaker.record(False) is True  # 3 of 4 failed, and now there are enough items to judge
    breaker.rebase(job_done=10, job_failed=2)
    assert not breaker.tripped and breaker.counts == (10, 2)
    assert breaker.record(True) is False  # 3 of 13
