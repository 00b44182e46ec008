"""Poison broker entries (malformed job hashes, bad queue entries, missing hashes) are set aside with a
log line and an alert, and the same worker process goes on to run good batches."""

from __future__ import annotations

import json

import pytest
from conftest import wait_for
from worker_rig import ended, rig  # noqa: F401  (rig is a fixture)

from data.models import Alert, Batch, Job, WorkerRow

pytestmark = pytest.mark.slow
POISON_KEY = "batchdesk:poison"  # where a worker sets poison entries aside (the desk may show them)


def files(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text(name)
    return folder


def spoiled_job(rig, job_id: str, field: str | bytes, value: str) -> None:
    """A well-formed RQ job hash with one field spoiled, then its queue entry (in that order: an idle
    worker would take a good job at once)."""
    queue = rig.queue()
    job = queue.create_job("workers.runner.run_batch", args=(999999,), job_id=job_id)
    job.save()
    rig.connection.hset(job.key, field, value)
    rig.connection.rpush(queue.key, job_id)


def push_poison(rig) -> dict[str, str]:
    """Every poison form, in the default queue; returns queue entry -> what is wrong with it."""
    spoiled_job(rig, "poison-field", b"\xff\xfebad", "x")
    spoiled_job(rig, "poison-date", "created_at", "yesterday")
    queue_key = rig.queue().key
    rig.connection.rpush(queue_key, "../../etc/passwd")
    rig.connection.rpush(queue_key, "bd-no-such-hash")
    rig.connection.rpush(queue_key, b"\xff\xfe-not-utf8")
    return {"poison-field": "UnicodeDecodeError", "poison-date": "yesterday", "../../etc/passwd": "ValueError",
            "bd-no-such-hash": "missing", "\\xff\\xfe-not-utf8": "ValueError"}


def poisoned(rig) -> list[dict]:
    return [json.loads(raw) for raw in rig.connection.lrange(POISON_KEY, 0, -1)]


def test_poison_entries_are_set_aside_and_the_worker_goes_on(rig, tmp_path):
    expected = push_poison(rig)
    worker = rig.start_worker()
    job, batch = rig.submit(files(tmp_path / "in", ["a", "b"]), "checksum")
    done = wait_for(lambda: ended(job.id), 60, 0.1, "the good job to end")
    assert done.status == "done" and done.items_done == 2, rig.log()
    assert worker.poll() is None, "the worker kept running\n" + rig.log()
    assert Batch.get_by_id(batch.id).worker == "rig-w1" and WorkerRow.get(WorkerRow.name == "rig-w1").pid == worker.pid
    entries = {e["entry"]: e for e in poisoned(rig)}
    assert set(entries) == set(expected), entries
    for entry, why in expected.items():
        assert entries[entry]["queue"] == "default" and why in entries[entry]["reason"], entries[entry]
    assert rig.connection.llen(rig.queue().key) == 0
    alerts = [a.message for a in Alert.select().where((Alert.kind == "worker") & (Alert.level == "error"))]
    assert len(alerts) == len(expected) and all("set aside" in a for a in alerts), alerts
    assert "set aside" in rig.log()


def test_a_poison_entry_arriving_while_idle_does_not_stop_the_worker(rig, tmp_path):
    worker = rig.start_worker()
    spoiled_job(rig, "poison-late", "created_at", "yesterday")
    wait_for(lambda: poisoned(rig), 60, 0.1, "the poison entry to be set aside")
    job, _ = rig.submit(files(tmp_path / "in", ["a"]), "checksum")
    assert wait_for(lambda: ended(job.id), 60, 0.1, "the good job to end").status == "done", rig.log()
    assert worker.poll() is None, rig.log()


def test_single_queue_worker_clears_its_intermediate_queue(rig, tmp_path):
    """A worker on one queue dequeues by BLMOVE into rq's intermediate list; a poison entry must not stay
    there (rq's maintenance would trip over it again)."""
    spoiled_job(rig, "poison-single", "created_at", "yesterday")
    worker = rig.start_worker("rig-w1", "default")
    job, _ = rig.submit(files(tmp_path / "in", ["a"]), "checksum")
    assert wait_for(lambda: ended(job.id), 60, 0.1, "the good job to end").status == "done", rig.log()
    assert [e["entry"] for e in poisoned(rig)] == ["poison-single"]
    assert rig.connection.lrange(rig.queue().key + ":intermediate", 0, -1) == []
    assert worker.poll() is None, rig.log()


def test_poison_in_rq_maintenance_does_not_stop_the_worker(rig, tmp_path):
    """rq cleans its registries and intermediate lists at start and every few minutes, fetching each job:
    a poison entry there must not make the worker quit (and be restarted, forever)."""
    rig.connection.rpush(rig.queue().key + ":intermediate", "../../etc/passwd")
    worker = rig.start_worker()
    job, _ = rig.submit(files(tmp_path / "in", ["a"]), "checksum")
    assert wait_for(lambda: ended(job.id), 60, 0.1, "the good job to end").status == "done", rig.log()
    assert worker.poll() is None, rig.log()
    assert Alert.select().where(Alert.message.contains("maintenance")).exists()
    assert Job.get_by_id(job.id).items_done == 1
