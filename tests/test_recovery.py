"""Faults injected for real: a worker killed with SIGKILL mid-batch, the whole desk killed,
and a hostile queue entry. The store must end with every item done exactly once."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys

import pytest
from rq import Queue
from rq.serializers import JSONSerializer

from batchdesk.desk.desk import Desk
from batchdesk.jobs.submit import JobRequest, submit_folder
from conftest import TESTS, batchdesk_env, make_files, process_alive, scaled, wait_desk_gone, wait_for
from data.models import Alert, Batch, Job
from fixture_tasks import set_pace

pytestmark = pytest.mark.slow


@pytest.fixture
def plugin_path(monkeypatch):
    """Worker subprocesses import the test tasks from tests/."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.syspath_prepend(str(TESTS))


def assert_exactly_once(job_id: int, total: int) -> None:
    job = Job.get_by_id(job_id)
    assert (job.items_done, job.items_failed, job.items_cancelled, job.items_total) == (total, 0, 0, total)
    rows = Job._meta.database.execute_sql(
        "SELECT status, COUNT(*), SUM(attempts) FROM item WHERE job_id=? GROUP BY status", (job_id,)).fetchall()
    assert rows == [("done", total, total)], "each item recorded done exactly once"


def test_worker_killed_mid_batch_job_still_completes(tmp_path, settings, plugin_path):
    from dataclasses import replace

    settings = replace(settings, plugins=("fixture_tasks:paced",))
    make_files(tmp_path / "in", 600, 1, 64)
    pace = tmp_path / "pace"
    set_pace(pace, 50)  # a batch (300 items, half the job) takes 15 s at least: the kill comes mid-batch
    desk = Desk(settings).start()
    try:
        job, _ = submit_folder(settings, JobRequest(tmp_path / "in", "fixture_tasks:paced", {"pace": str(pace)}))
        desk.wake()
        running = wait_for(lambda: Batch.get_or_none((Batch.job == job.id) & (Batch.status == "running")
                                                     & (Batch.pid.is_null(False))), 30, message="a running batch")
        victim = running.worker
        pid = desk.pool.pids()[victim]
        os.kill(pid, signal.SIGKILL)
        # Its work-horse, orphaned, runs on at 50 ms an item until the desk kills it and queues the batch again.
        wait_for(lambda: Batch.get_by_id(running.id).attempts >= 2, 60, 0.1, "the killed batch to run again")
        set_pace(pace, 0)  # the rest at full speed
        wait_for(lambda: Job.get_by_id(job.id).status == "done", 120, 0.1, "job to finish after the kill")
        assert_exactly_once(job.id, 600)
        assert Alert.select().where(Alert.message.contains("killed by SIGKILL")).exists()
        assert victim not in desk.pool.pids() and desk.pool.size == 2, "a replacement worker was started"
    finally:
        desk.stop()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_desk_stopped_then_restarted_completes_job(tmp_path, plugin_path, sig):
    # Enough items for more batches than workers: a warm stop (SIGTERM) finishes the batches in
    # hand and leaves the rest for the next run.
    total = 6000
    make_files(tmp_path / "in", total, 1, 16)
    data = tmp_path / "data"
    pace = tmp_path / "pace"
    set_pace(pace, 20)  # 60 s of work at least: the signal comes mid-job
    env = batchdesk_env(BATCHDESK_PLUGINS="fixture_tasks:paced")
    args = [sys.executable, "-m", "batchdesk", "--data-dir", str(data), "--broker", "embedded", "--workers", "2",
            "run", str(tmp_path / "in"), "--task", "fixture_tasks:paced", "--opt", f"pace={pace}", "-q", "--json"]
    first = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def some_done():
        try:
            con = sqlite3.connect(data / "batchdesk.sqlite3")
            return (con.execute("SELECT items_done FROM job").fetchone() or (0,))[0] >= 50
        except sqlite3.Error:
            return False

    wait_for(some_done, 60, 0.1, "some items done")
    first.send_signal(sig)
    code = first.wait(scaled(60))
    assert code == (-signal.SIGKILL if sig == signal.SIGKILL else 130), "SIGTERM stops cleanly, like Ctrl-C"
    wait_desk_gone(data, 10, "the lock to be released")
    set_pace(pace, 0)  # the second run goes at full speed
    second = subprocess.run(args, env=env, capture_output=True, text=True, timeout=scaled(180))
    assert second.returncode == 0, second.stderr
    con = sqlite3.connect(data / "batchdesk.sqlite3")
    assert con.execute("SELECT COUNT(*) FROM job").fetchone()[0] == 1, "the second run resumed the same job"
    assert con.execute("SELECT status, items_done, items_failed FROM job").fetchone() == ("done", total, 0)
    assert con.execute("SELECT status, COUNT(*), SUM(attempts) FROM item GROUP BY status").fetchall() == [
        ("done", total, total)]
    # The killed desk's workers noticed and stopped by themselves.
    pids = [row[0] for row in con.execute("SELECT pid FROM workerrow")]
    wait_for(lambda: not any(process_alive(p) for p in pids), 90, 0.2, "orphaned workers to exit")


def test_hostile_queue_entry_never_runs(tmp_path, settings):
    marker = tmp_path / "pwned"
    desk = Desk(settings).start()
    try:
        queue = Queue("default", connection=desk.broker.connection(), serializer=JSONSerializer)
        hostile = queue.enqueue_call(func="os.system", args=(f"touch {marker}",))
        wrong_args = queue.enqueue_call(func="workers.runner.run_batch", args=("1; rm -rf /",))
        wait_for(lambda: hostile.get_status(refresh=True).value == "failed"
                 and wrong_args.get_status(refresh=True).value == "failed", 30, message="the jobs to be refused")
        assert "is not batchdesk's batch runner" in hostile.latest_result().exc_string
        assert "exactly one integer batch id" in wrong_args.latest_result().exc_string
        assert not marker.exists()
    finally:
        desk.stop()


def test_workers_run_below_the_desk(tmp_path, settings):
    from dataclasses import replace

    import psutil

    settings = replace(settings, worker_nice=7, workers=1)
    make_files(tmp_path / "in", 40, 1, 64)
    desk = Desk(settings).start()
    try:
        (pid,) = desk.pool.pids().values()
        assert psutil.Process(pid).nice() == 7
        assert psutil.Process().nice() == 0, "the desk keeps its own priority"
        job, _ = submit_folder(settings, JobRequest(tmp_path / "in", "checksum"))
        desk.wake()
        wait_for(lambda: Job.get_by_id(job.id).status == "done", 60, 0.1, "the job to finish at that priority")
    finally:
        desk.stop()


def test_worker_nice_is_validated(monkeypatch):
    from batchdesk.config import ConfigError, load_settings

    monkeypatch.setenv("BATCHDESK_WORKER_NICE", "3")
    assert load_settings().worker_nice == 3
    monkeypatch.setenv("BATCHDESK_WORKER_NICE", "25")
    with pytest.raises(ConfigError, match="worker_nice must be between 0 and 19"):
        load_settings()


def test_the_feeder_counts_workers_started_elsewhere(tmp_path, settings, monkeypatch):
    """A worker the desk did not start (another machine, or by hand) gets batches queued for it too."""
    from dataclasses import replace

    monkeypatch.setattr("batchdesk.defaults.RESIZE_SECONDS", 0.2)
    desk = Desk(replace(settings, workers=1)).start()
    other = None
    try:
        wait_for(lambda: desk._capacity().workers == 1 and desk.pool.size == 1, 30, 0.1, "the desk's own worker")
        other = subprocess.Popen(
            [sys.executable, "-m", "batchdesk", "--data-dir", str(tmp_path / "elsewhere"), "worker",
             "--redis-url", desk.broker.url, "--store", str(settings.store_path), "--name", "elsewhere-1"],
            env=batchdesk_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: desk._capacity().workers == 2, 60, 0.1, "the desk to count the other worker")
        assert "1 more worker(s) elsewhere" in desk.pool_reason
        other.terminate()
        other.wait(scaled(30))
        wait_for(lambda: desk._capacity().workers == 1, 60, 0.1, "the desk to stop counting it")
    finally:
        if other is not None and other.poll() is None:
            other.kill()
        desk.stop()


def test_a_stopping_desk_hands_running_batches_back(tmp_path, settings, plugin_path):
    """Stopping does not wait for a batch to finish: its work-horse stops after the item in hand,
    keeps what ended, and the batch is held until the next desk queues it again."""
    from dataclasses import replace

    settings = replace(settings, plugins=("fixture_tasks:paced",), workers=1)
    make_files(tmp_path / "in", 60, 1, 64)
    pace = tmp_path / "pace"
    set_pace(pace, 200)  # 12 s of work at least: the desk stops mid-batch
    desk = Desk(settings).start()
    try:
        job, _ = submit_folder(settings, JobRequest(tmp_path / "in", "fixture_tasks:paced", {"pace": str(pace)}))
        desk.wake()
        wait_for(lambda: Job.get_by_id(job.id).items_done >= 3, 60, 0.05, "some items to end")
    finally:
        desk.stop()
    stopped = Job.get_by_id(job.id)
    assert stopped.items_done < 60, "the batch was not run to its end"
    assert [b.status for b in Batch.select().where(Batch.job == job.id)] == ["held"]
    set_pace(pace, 0)
    desk = Desk(settings).start()
    try:
        wait_for(lambda: Job.get_by_id(job.id).status == "done", 120, 0.1, "the job to finish after a restart")
        assert_exactly_once(job.id, 60)
    finally:
        desk.stop()


def test_a_worker_killed_before_it_could_say_so_leaves_the_workers_list(tmp_path, settings):
    """A worker killed (or stopped by a signal before its handlers were in place) never marks its row
    stopped: the desk that reaps it does, so the UI's workers panel and `info` stop listing it."""
    from dataclasses import replace

    from batchdesk.dashboard import workers
    from data.models import WorkerRow

    desk = Desk(replace(settings, workers=1)).start()
    try:
        ((name, pid),) = desk.pool.pids().items()
        wait_for(lambda: [w.name for w in workers()] == [name], 30, message="the worker's row")
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: name not in [w.name for w in workers()] and len(workers()) == 1, 60, 0.1,
                 "the killed worker gone from the list and its replacement in it")
        assert WorkerRow.get(WorkerRow.name == name).state == "dead"
    finally:
        desk.stop()
