"""A bare worker rig for tests: the embedded broker, a real SQLite store, and real worker processes
started the way the desk's pool starts them (broker and store URLs by environment), but no desk,
so nothing re-queues, retries or kills behind the test's back. Import ``rig_fixture`` (the ``rig`` fixture)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import redis
from rq import Queue, Worker
from rq.serializers import JSONSerializer

from batchdesk.broker.embedded import EmbeddedBroker
from batchdesk.config import Settings
from batchdesk.desk.feeder import Capacity, Feeder
from batchdesk.desk.queues import BatchQueues
from batchdesk.jobs.submit import JobRequest, submit_folder
from conftest import batchdesk_env, scaled, wait_for
from data import queries
from data.models import Batch, Job
from data.store import close_store, open_store

PASSWORD = "rig-broker-secret"


class WorkerRig:
    """Broker + store + worker processes for one test."""

    def __init__(self, settings: Settings, logs: Path) -> None:
        self.settings = settings
        self.logs = logs
        self.broker = EmbeddedBroker(PASSWORD).start()
        self.connection = redis.Redis.from_url(self.broker.url)
        open_store(settings.store_ref)
        self.queues = BatchQueues(settings, self.connection)
        self.feeder = Feeder(settings, self.queues)
        self.workers: dict[str, subprocess.Popen] = {}

    def env(self) -> dict[str, str]:
        """What the desk's pool gives a worker: the broker and store by environment."""
        return batchdesk_env(BATCHDESK_REDIS_URL=self.broker.url, BATCHDESK_STORE=str(self.settings.store_ref))

    def start_worker(self, name: str = "rig-w1", *queues: str) -> subprocess.Popen:
        """A real worker process, listening once this returns."""
        args = [sys.executable, "-m", "batchdesk", "--data-dir", str(self.settings.data_dir), "worker", "--name", name]
        for queue in queues:
            args += ["--queue", queue]
        with open(self.logs / f"{name}.log", "ab") as out:
            proc = subprocess.Popen(args, env=self.env(), stdout=out, stderr=subprocess.STDOUT)
        self.workers[name] = proc
        wait_for(lambda: name in {w.name for w in Worker.all(connection=self.connection)} or proc.poll() is not None,
                 60, 0.1, f"worker {name} to listen")
        assert proc.poll() is None, self.log(name)
        return proc

    def log(self, name: str = "rig-w1") -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-4000:]

    def submit(self, folder: Path, task: str, **options: str) -> tuple[Job, Batch]:
        """A job of ``folder`` with all its items in one batch, queued as the desk's feeder does."""
        job, _ = submit_folder(self.settings, JobRequest(folder, task, options))
        batch = queries.cut_batch(job, 1_000_000, 2**62)
        self.queues.enqueue(batch, job)
        return job, Batch.get_by_id(batch.id)

    def ended(self, job_id: int) -> Job | None:
        """The job once it has ended. The rig plays the desk's feeder here: a job whose items have all
        ended has its end step (a final batch) queued for the workers, as a desk would."""
        self.feeder.feed(Capacity(workers=1))
        return ended(job_id)

    def queue(self, name: str = "default") -> Queue:
        return Queue(name, connection=self.connection, serializer=JSONSerializer)

    def close(self) -> None:
        for proc in self.workers.values():
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(scaled(30))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.connection.close()
        self.broker.stop()
        close_store()


@pytest.fixture(name="rig")
def rig_fixture(settings, tmp_path):
    rig = WorkerRig(settings, tmp_path)
    yield rig
    rig.close()


def ended(job_id: int) -> Job | None:
    job = Job.get_by_id(job_id)
    return job if job.status in ("done", "failed", "cancelled") else None
