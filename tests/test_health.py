"""`batchdesk health`: its CPU problem means other programs keep the CPU busy, never our own workers at work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest

from batchdesk import defaults
from batchdesk.desk.desk import Desk
from batchdesk.desk.monitor import Health
from batchdesk.jobs.submit import JobRequest, submit_folder
from conftest import TESTS, batchdesk_env, scaled, wait_for
from data.models import Job, WorkerRow
from data.states import JobState, WorkerState

GIB = 2**30


def reading(cpu: float, own: float) -> Health:
    return Health(cpu=cpu, ram_used=GIB, ram_free=8 * GIB, iowait=0.0, disk_free=100 * GIB, load1=0.0, own_cpu=own)


def test_the_cpu_problem_counts_only_what_other_programs_use():
    assert reading(cpu=100, own=97).problems() == []  # our workers at work: what they are for
    assert reading(cpu=100, own=40).problems() == []  # the user's programs get what they ask; ours yield
    (kind, message), = reading(cpu=99, own=1).problems()
    assert kind == "cpu" and message == "CPU at 99%, 98% of it other programs (> 95%)"
    assert reading(cpu=99, own=0).problems()[0][0] == "cpu"  # a sample that cannot tell counts it all


@pytest.mark.slow
def test_health_exits_0_while_our_own_workers_keep_the_cpu_busy(settings, tmp_path, monkeypatch):
    """Two real workers spinning on both cores: `health` sees the CPU busy, says how much of it is ours,
    and finds no problem in it (before, the busy CPU alone made it exit 1)."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.syspath_prepend(str(TESTS))
    cores = os.cpu_count() or 1
    configured = replace(settings, plugins=("busy_tasks:spin",), workers=cores, worker_nice=0)
    (tmp_path / "in").mkdir()
    for n in range(cores):
        (tmp_path / "in" / f"f{n}").write_text("x")
    stop = tmp_path / "stop"
    desk = Desk(configured).start()
    try:
        job, _ = submit_folder(configured, JobRequest(tmp_path / "in", "busy_tasks:spin", {"until": str(stop)}))
        desk.wake()
        busy = (WorkerRow.state == WorkerState.BUSY)
        wait_for(lambda: WorkerRow.select().where(busy).count() == cores, 60, 0.1, "every worker to be busy")
        result = subprocess.run(
            [sys.executable, "-m", "batchdesk", "--data-dir", str(configured.data_dir), "health", "--json"],
            capture_output=True, text=True, env=batchdesk_env(BATCHDESK_PLUGINS="busy_tasks:spin"),
            timeout=scaled(60))
        health = json.loads(result.stdout)
        assert health["health"]["own_cpu"] > 100 / cores / 2, health  # most of a core at least is ours
        assert not any(p.startswith("CPU") for p in health["problems"]), health
        assert result.returncode == (1 if health["problems"] else 0)
    finally:
        stop.touch()
        wait_for(lambda: Job.get_by_id(job.id).status == JobState.DONE, 60, 0.1, "the spinning job to end")
        desk.stop(grace=2)
    assert defaults.CPU_HIGH < 100
