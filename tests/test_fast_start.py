"""Start fast, stop fast (issue 12, fixed cost), with real processes: workers wake their desk when a batch
ends (the job's end step is queued at once, not at the desk's next tick); a follower notices the end of
its job at once."""

from __future__ import annotations

import pytest

from batchdesk import defaults
from batchdesk.desk.desk import Desk
from batchdesk.desk.info import WAKE_SIGNAL, install_wake_signal
from batchdesk.jobs.submit import JobRequest, submit_folder
from conftest import make_files, wait_for
from data.models import Batch, Job

pytestmark = pytest.mark.slow


@pytest.fixture
def wakeable():
    """This process handles the desk's wake signal, as `serve` and a background desk do."""
    import signal

    previous = signal.getsignal(WAKE_SIGNAL)
    install_wake_signal()
    yield
    signal.signal(WAKE_SIGNAL, previous)


def test_workers_wake_the_desk_when_a_batch_ends(tmp_path, settings, monkeypatch, wakeable):
    """A desk that would tick only once a minute still runs a job of two batches and its end step in
    seconds: each worker wakes it when a batch ends, so the end step is queued at once."""
    monkeypatch.setattr(defaults, "DESK_TICK_SECONDS", 120.0)
    make_files(tmp_path / "in", 200, 1, 64)
    desk = Desk(settings).start()
    try:
        job, _ = submit_folder(settings, JobRequest(tmp_path / "in", "checksum"))
        desk.wake()
        wait_for(lambda: Job.get_by_id(job.id).status == "done", 60, 0.05, "the job and its report to end")
        final = Batch.get((Batch.job == job.id) & (Batch.kind == "final"))
        assert final.status == "done"
    finally:
        desk.stop()


def test_a_follower_reads_a_finishing_job_often():
    """While the end step runs, `run` looks at its job every 10 ms: it exits as soon as the job is done."""
    from batchdesk.cli.follow import poll_interval

    assert poll_interval(Job(status="finishing")) == defaults.FOLLOW_END_POLL_SECONDS < 0.05
    assert poll_interval(Job(status="running")) == defaults.FOLLOW_POLL_SECONDS
