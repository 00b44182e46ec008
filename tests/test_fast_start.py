"""Start fast, stop fast (issue 12, fixed cost), with real processes: workers wake their desk when a batch
ends (the job's end step is queued at once, not at the desk's next tick); a follower notices the end of
its job at once; workers are forked from the desk's template (run batches, niced, in sessions of their
own, replaced when killed, gone with the desk, nothing left behind), or started as processes where the
desk cannot fork."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import replace

import psutil
import pytest

from batchdesk import defaults
from batchdesk.desk.desk import Desk
from batchdesk.desk.info import WAKE_SIGNAL, install_wake_signal
from batchdesk.jobs.submit import JobRequest, submit_folder
from conftest import batchdesk_env, make_files, wait_for
from data.models import Alert, Batch, Item, Job

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


def test_a_follower_reads_a_job_about_to_end_often():
    """While the end step runs, or once the items left end within half a second at their pace so far, `run`
    looks at its job every 10 ms: it exits as soon as the job is done, not up to a progress-bar poll later."""
    from batchdesk.cli.follow import poll_interval

    fast, slow = defaults.FOLLOW_END_POLL_SECONDS, defaults.FOLLOW_POLL_SECONDS
    assert fast < 0.05 < slow
    assert poll_interval(Job(status="finishing")) == fast
    # 9,000 of 10,000 items in 0.9 s: the last 1,000 take ~0.1 s.
    assert poll_interval(Job(status="running", started_at=100.0, items_total=10_000, items_done=8_990,
                             items_failed=10), now=100.9) == fast
    # 1,000 of 10,000 in 0.9 s: ~8 s left; nothing ended yet; not started; queued.
    early = Job(status="running", started_at=100.0, items_total=10_000, items_done=1_000)
    assert poll_interval(early, now=100.9) == slow
    assert poll_interval(Job(status="running", started_at=100.0, items_total=10, items_done=0), now=100.9) == slow
    assert poll_interval(Job(status="running", started_at=None, items_total=10, items_done=9), now=100.9) == slow
    assert poll_interval(Job(status="queued", items_total=10)) == slow


# -- workers forked from the desk's template (workers.zygote) ----------------------------------------


def forking_desk(settings) -> Desk:
    """A desk started while this process has no other thread (an earlier test's broker thread may
    still be ending), so it forks its template as `serve` and a background desk do."""
    wait_for(lambda: threading.active_count() == 1, 30, 0.01, "the other threads of this process to end")
    return Desk(settings).start()


def test_workers_are_forked_from_a_niced_template_and_run_batches(tmp_path, settings):
    settings = replace(settings, worker_nice=7)
    make_files(tmp_path / "in", 300, 1, 64)
    desk = forking_desk(settings)
    try:
        assert desk.zygote is not None, "a desk without threads forks a template"
        template = psutil.Process(desk.zygote.pid)
        assert template.ppid() == os.getpid() and template.nice() == 7
        workers = {psutil.Process(pid) for pid in desk.pool.pids().values()}
        assert {w.ppid() for w in workers} == {template.pid}, "the workers are the template's children"
        assert {w.nice() for w in workers} == {7} and psutil.Process().nice() == 0
        assert all(os.getsid(w.pid) == w.pid for w in workers), "each worker leads a session of its own"
        job, _ = submit_folder(settings, JobRequest(tmp_path / "in", "checksum"))
        desk.wake()
        wait_for(lambda: Job.get_by_id(job.id).status == "done", 60, 0.05, "the job to end")
        ran = {b.worker for b in Batch.select().where((Batch.job == job.id) & (Batch.kind == "items"))}
        assert ran <= set(desk.pool.pids()) and ran
        assert Item.select().where((Item.job == job.id) & (Item.status == "done")).count() == 300
    finally:
        desk.stop()
    assert not template.is_running() and not any(w.is_running() for w in workers), "nothing is left behind"


def test_a_killed_worker_is_reported_and_replaced_from_the_template(tmp_path, settings):
    desk = forking_desk(settings)
    try:
        victim, pid = next(iter(desk.pool.pids().items()))
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: victim not in desk.pool.pids() and desk.pool.size == 2, 30, 0.05, "a replacement worker")
        reason = f"worker {victim} (pid {pid}) was killed by SIGKILL"
        assert Alert.select().where(Alert.message.contains(reason)).exists()
        assert {psutil.Process(p).ppid() for p in desk.pool.pids().values()} == {desk.zygote.pid}
    finally:
        desk.stop()


def test_without_a_template_workers_start_as_processes(tmp_path, settings):
    """A desk with threads (the UI's) must not fork: its workers are `batchdesk worker` processes; and a
    template that died is replaced by the same."""
    make_files(tmp_path / "in", 50, 1, 64)
    busy = threading.Event()
    thread = threading.Thread(target=busy.wait, daemon=True)
    thread.start()
    try:
        desk = Desk(settings).start()
    finally:
        busy.set()
        thread.join()
    try:
        assert desk.zygote is None
        assert {psutil.Process(p).ppid() for p in desk.pool.pids().values()} == {os.getpid()}
        assert all("worker" in psutil.Process(p).cmdline() for p in desk.pool.pids().values())
        job, _ = submit_folder(settings, JobRequest(tmp_path / "in", "checksum"))
        desk.wake()
        wait_for(lambda: Job.get_by_id(job.id).status == "done", 60, 0.05, "the job to end")
    finally:
        desk.stop()


def test_a_dead_template_leaves_the_desk_starting_processes(tmp_path, settings):
    make_files(tmp_path / "in", 50, 1, 64)
    desk = forking_desk(settings)
    try:
        os.kill(desk.zygote.pid, signal.SIGKILL)  # its workers follow it out; the desk starts new ones
        wait_for(lambda: desk.pool.size == 2 and all(psutil.Process(p).ppid() == os.getpid()
                                                     for p in desk.pool.pids().values()), 60, 0.1,
                 "workers started as processes")
        job, _ = submit_folder(settings, JobRequest(tmp_path / "in", "checksum"))
        desk.wake()
        wait_for(lambda: Job.get_by_id(job.id).status == "done", 60, 0.05, "the job to end")
    finally:
        desk.stop()


def test_the_template_and_its_workers_die_with_a_killed_desk(tmp_path):
    """kill -9 of a background desk: its template sees the pipe close and exits, and the workers follow."""
    make_files(tmp_path / "in", 20, 1, 64)
    data = tmp_path / "data"
    env = batchdesk_env(BATCHDESK_BROKER="embedded", BATCHDESK_WORKERS="2", BATCHDESK_LINGER="300")
    out = subprocess.run([sys.executable, "-m", "batchdesk", "--data-dir", str(data), "submit", str(tmp_path / "in"),
                          "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    desk = psutil.Process(json.loads(out.stdout)["desk"])
    wait_for(lambda: len(desk.children(recursive=True)) == 3, 60, 0.05, "the template and its two workers")
    processes = desk.children(recursive=True)
    os.kill(desk.pid, signal.SIGKILL)
    wait_for(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in processes), 60, 0.1,
             "the template and the workers to exit")


# -- an idle desk ---------------------------------------------------------------------------------------


def test_an_idle_background_desk_ticks_slowly_and_a_busy_one_at_its_pace(tmp_path, settings, store):
    """Lingering costs little: with no job to carry the desk looks once a second (a submit and every
    batch's end wake it at once anyway); with work, or drop folders to watch, at DESK_TICK_SECONDS."""
    from batchdesk.desk.info import BACKGROUND, SERVE

    idle = Desk(settings, kind=BACKGROUND)
    assert idle.tick_interval() == defaults.DESK_IDLE_TICK_SECONDS > defaults.DESK_TICK_SECONDS
    assert Desk(settings, kind=SERVE).tick_interval() == defaults.DESK_TICK_SECONDS  # watches tick
    make_files(tmp_path / "in", 3)
    submit_folder(settings, JobRequest(tmp_path / "in", "checksum"))
    assert idle.tick_interval() == defaults.DESK_TICK_SECONDS
