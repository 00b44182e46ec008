"""A headless desk (`serve`) driven by a second process: submit, info, stock `rq info`, cancel, stop.

The jobs run ``fixture_tasks:metered``: an item ends only with a permit the test hands out, so every
step happens while the job is in the state the test needs, however slow the machine is.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from batchdesk.desk.info import read_desk_info
from conftest import batchdesk_env, job_row, make_files, query_store, scaled, wait_for
from fixture_tasks import Permits

pytestmark = pytest.mark.slow

ENV = batchdesk_env(BATCHDESK_PLUGINS="fixture_tasks:metered", BATCHDESK_BROKER="embedded", BATCHDESK_WORKERS="2")


def cli(data: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "batchdesk", "--data-dir", str(data), *args],
                            capture_output=True, text=True, env=ENV, timeout=scaled(120))
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def desk(tmp_path):
    data = tmp_path / "data"
    proc = subprocess.Popen([sys.executable, "-m", "batchdesk", "--data-dir", str(data), "serve"], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: read_desk_info(data) or proc.poll() is not None, 30, 0.1, "the desk to start")
    assert proc.poll() is None, proc.communicate()
    yield data, proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(scaled(60))


@pytest.fixture
def permits(tmp_path) -> Permits:
    return Permits(tmp_path / "permits")


def submit(data: Path, folder: Path, permits: Permits) -> dict:
    """A metered job of ``folder``, submitted by another process to the running desk."""
    return json.loads(cli(data, "submit", str(folder), "--task", "fixture_tasks:metered",
                          "--opt", f"permits={permits.folder}", "--json").stdout)


def running_batches(data: Path, job_id: int) -> int:
    return query_store(data, "SELECT COUNT(*) FROM batch WHERE job_id=? AND status='running'", job_id)[0][0]


def test_submit_to_running_desk_and_stock_rq_info_sees_it(tmp_path, desk, permits):
    data, proc = desk
    make_files(tmp_path / "in", 300, 1, 32)
    submitted = submit(data, tmp_path / "in", permits)  # no permit yet: the job runs and cannot end
    job_id = submitted["job"]
    assert submitted["items"] == 300
    info = json.loads(cli(data, "info", "--json").stdout)
    assert info["desk"]["broker"] == "embedded" and info["desk"]["url"].startswith("redis://:")
    wait_for(lambda: job_row(data, job_id).get("status") == "running", 30, 0.1, "the job to start")
    rq = shutil.which("rq", path=str(Path(sys.executable).parent)) or "rq"
    out = subprocess.run([rq, "info", "--url", info["desk"]["url"], "--serializer", "json"],
                         capture_output=True, text=True, timeout=scaled(30))
    assert out.returncode == 0, out.stderr
    assert "default" in out.stdout and "worker" in out.stdout
    assert any(w["name"] in out.stdout for w in info["workers"]), out.stdout
    # The command `info` suggests keeps the password out of the shell history and `ps`, and works as is.
    password = info["desk"]["url"].split(":")[2].split("@")[0]
    assert password not in info["rq_info"], info["rq_info"]
    shell_env = {**ENV, "PATH": os.pathsep.join([str(Path(sys.executable).parent), ENV.get("PATH", "")])}
    suggested = subprocess.run(["bash", "-c", info["rq_info"]], capture_output=True, text=True, env=shell_env,
                               timeout=scaled(60))
    assert suggested.returncode == 0 and "default" in suggested.stdout, suggested.stderr
    permits.grant(300)
    wait_for(lambda: job_row(data, job_id)["status"] == "done", 90, 0.2, "the job to finish")
    assert json.loads(cli(data, "show", str(job_id), "--json").stdout)["done"] == 300
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(scaled(60)) == 0
    assert json.loads(cli(data, "info", "--json").stdout)["desk"] is None


def test_pause_holds_every_batch_resume_goes_on_and_cancel_ends_the_rest_from_another_process(
    tmp_path, desk, permits
):
    data, _ = desk
    make_files(tmp_path / "in", 400, 1, 32)
    permits.grant(30)
    job_id = submit(data, tmp_path / "in", permits)["job"]
    wait_for(lambda: job_row(data, job_id)["done"] == 30, 30, 0.1, "the 30 permitted items to end")
    assert "paused" in cli(data, "pause", str(job_id)).stdout
    # Permits to spare: each worker ends the item in hand with one, then holds its batch; a worker that
    # went on would take them all and block on its next item, its batch still running.
    permits.grant(10)
    wait_for(lambda: running_batches(data, job_id) == 0, 30, 0.1, "every batch of the paused job to be held")
    paused = job_row(data, job_id)
    assert paused["status"] == "paused" and permits.left() >= 10 - 2
    assert paused["done"] == permits.granted - permits.left()
    assert "running" in cli(data, "resume", str(job_id), "--no-wait").stdout
    permits.grant(20)
    wait_for(lambda: job_row(data, job_id)["done"] == permits.granted, 30, 0.1, "progress after resume")
    # Each worker is now stuck on an item in hand for want of a permit: the job cannot end before the cancel.
    assert "cancelling" in cli(data, "cancel", str(job_id), "--no-wait").stdout
    permits.grant(2)  # the items in hand end (within the cancel grace) with their real outcome
    final = wait_for(lambda: (lambda j: j if j["done"] + j["failed"] + j["cancelled"] == 400 else None)(
        job_row(data, job_id)), 60, 0.2, "every item to end")
    assert final["status"] == "cancelled" and final["cancelled"] > 0 and final["failed"] == 0
    shown = json.loads(cli(data, "show", str(job_id), "--json").stdout)
    assert (shown["status"], shown["done"], shown["cancelled"]) == ("cancelled", final["done"], final["cancelled"])
    again = cli(data, "cancel", str(job_id), check=False)
    assert again.returncode == 2 and "already cancelled" in again.stderr
