"""Poison broker entries (malformed job hashes, bad queue entries, missing hashes) are set aside with a
log line and an alert, and the same worker process goes on to run good batches."""

from __future__ import annotations

import json

import pytest

from conftest import wait_for
from data.models import Alert, Batch, Job, WorkerRow
from worker_rig import ended, rig_fixture  # noqa: F401  (the rig fixture)

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
    done = wait_for(lambda: rig.ended(job.id), 60, 0.1, "the good job to end")
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
    assert wait_for(lambda: rig.ended(job.id), 60, 0.1, "the good job to end").status == "done", rig.log()
    assert worker.poll() is None, rig.log()


def test_single_queue_worker_clears_its_intermediate_queue(rig, tmp_path):
    """A worker on one queue dequeues by BLMOVE into rq's intermediate list; a poison entry must not stay
    there (rq's maintenance would trip over it again)."""
    spoiled_job(rig, "poison-single", "created_at", "yesterday")
    worker = rig.start_worker("rig-w1", "default")
    job, _ = rig.submit(files(tmp_path / "in", ["a"]), "checksum")
    assert wait_for(lambda: rig.ended(job.id), 60, 0.1, "the good job to end").status == "done", rig.log()
    assert [e["entry"] for e in poisoned(rig)] == ["poison-single"]
    assert rig.connection.lrange(rig.queue().key + ":intermediate", 0, -1) == []
    assert worker.poll() is None, rig.log()


def test_poison_in_rq_maintenance_does_not_stop_the_worker(rig, tmp_path):
    """rq cleans its registries and intermediate lists at start and every few minutes, fetching each job:
    a poison entry there must not make the worker quit (and be restarted, forever)."""
    rig.connection.rpush(rig.queue().key + ":intermediate", "../../etc/passwd")
    worker = rig.start_worker()
    job, _ = rig.submit(files(tmp_path / "in", ["a"]), "checksum")
    assert wait_for(lambda: rig.ended(job.id), 60, 0.1, "the good job to end").status == "done", rig.log()
    assert worker.poll() is None, rig.log()
    assert Alert.select().where(Alert.message.contains("maintenance")).exists()
    assert Job.get_by_id(job.id).items_done == 1


@pytest.fixture
def webhook_hits():
    """A local HTTP server that records every request a webhook would make."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    hits: list[str] = []

    class Record(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(204)
            self.end_headers()

        do_POST = do_GET

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Record)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    server.server_close()


def test_a_batch_job_asking_for_callbacks_or_webhooks_is_refused_and_they_never_run(rig, tmp_path, webhook_hits):
    """rq runs a job's callbacks (any importable name) and sends its webhooks (any URL) itself; batchdesk sets
    neither, so a queue entry with them is hostile: refused, and failing it sends no webhook and retries nothing."""
    url, hits = webhook_hits
    marker = tmp_path / "callback-ran"
    hooks = json.dumps([{"url": f"{url}/{status}", "job_status": status} for status in ("finished", "failed")])
    hostile = {"hostile-success": ("success_callback_name", "hostile_callback.touch"),
               "hostile-failure": ("failure_callback_name", "hostile_callback.touch"),
               "hostile-stopped": ("stopped_callback_name", "hostile_callback.touch"),
               "hostile-webhooks": ("webhooks", hooks)}
    queue = rig.queue()
    for job_id, (field, value) in hostile.items():
        job = queue.create_job("workers.runner.run_batch", args=(999999,), job_id=job_id, description=str(marker))
        job.save()
        rig.connection.hset(job.key, field, value)
        rig.connection.rpush(queue.key, job_id)
    foreign = queue.create_job("os.getcwd", job_id="hostile-foreign", description=str(marker))
    foreign.save()
    rig.connection.hset(foreign.key, mapping={"webhooks": hooks, "retries_left": 5})
    rig.connection.rpush(queue.key, foreign.id)
    worker = rig.start_worker()
    job, _ = rig.submit(files(tmp_path / "in", ["a"]), "checksum")
    assert wait_for(lambda: rig.ended(job.id), 60, 0.1, "the good job to end").status == "done", rig.log()
    from rq.job import Job as RQJob

    for job_id in [*hostile, foreign.id]:
        refused = RQJob.fetch(job_id, connection=rig.connection)
        assert refused.get_status() == "failed" and "refused job" in refused.latest_result().exc_string, job_id
    hostile = RQJob.fetch("hostile-webhooks", connection=rig.connection)
    assert "callbacks or webhooks" in hostile.latest_result().exc_string
    assert not marker.exists() and hits == []
    assert rig.log().count("refused job hostile-foreign") == 1, "a refused job is not retried"
    assert worker.poll() is None
