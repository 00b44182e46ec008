"""A headless desk (`serve`) driven by a second process: submit, info, stock `rq info`, cancel, stop."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import batchdesk_env, make_files, wait_for

pytestmark = pytest.mark.slow

ENV = batchdesk_env(BATCHDESK_PLUGINS="fixture_tasks:slow", BATCHDESK_BROKER="embedded", BATCHDESK_WORKERS="2")


def cli(data: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "batchdesk", "--data-dir", str(data), *args],
                            capture_output=True, text=True, env=ENV, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def desk(tmp_path):
    data = tmp_path / "data"
    proc = subprocess.Popen([sys.executable, "-m", "batchdesk", "--data-dir", str(data), "serve"], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: json.loads(cli(data, "info", "--json").stdout)["desk"], 30, 0.1, "the desk to start")
    yield data, proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)


def job(data: Path, job_id: int) -> dict:
    return json.loads(cli(data, "show", str(job_id), "--json").stdout)


def test_submit_to_running_desk_and_stock_rq_info_sees_it(tmp_path, desk):
    data, proc = desk
    make_files(tmp_path / "in", 300, 1, 32)
    submitted = json.loads(cli(data, "submit", str(tmp_path / "in"), "--task", "fixture_tasks:slow",
                               "--opt", "ms=20", "--json").stdout)
    assert submitted["items"] == 300
    info = json.loads(cli(data, "info", "--json").stdout)
    assert info["desk"]["broker"] == "embedded" and info["desk"]["url"].startswith("redis://:")
    wait_for(lambda: job(data, submitted["job"])["status"] == "running", 30, 0.1, "the job to start")
    rq = shutil.which("rq", path=str(Path(sys.executable).parent)) or "rq"
    out = subprocess.run([rq, "info", "--url", info["desk"]["url"], "--serializer", "json"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "default" in out.stdout and "worker" in out.stdout
    assert any(w["name"] in out.stdout for w in info["workers"]), out.stdout
    # The command `info` suggests keeps the password out of the shell history and `ps`, and works as is.
    password = info["desk"]["url"].split(":")[2].split("@")[0]
    assert password not in info["rq_info"], info["rq_info"]
    shell_env = {**ENV, "PATH": os.pathsep.join([str(Path(sys.executable).parent), ENV.get("PATH", "")])}
    suggested = subprocess.run(["bash", "-c", info["rq_info"]], capture_output=True, text=True, env=shell_env,
                               timeout=60)
    assert suggested.returncode == 0 and "default" in suggested.stdout, suggested.stderr
    wait_for(lambda: job(data, submitted["job"])["status"] == "done", 90, 0.2, "the job to finish")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0
    assert json.loads(cli(data, "info", "--json").stdout)["desk"] is None


def test_cancel_pause_resume_from_another_process(tmp_path, desk):
    data, _ = desk
    make_files(tmp_path / "in", 400, 1, 32)
    job_id = json.loads(cli(data, "submit", str(tmp_path / "in"), "--task", "fixture_tasks:slow",
                            "--opt", "ms=25", "--json").stdout)["job"]
    wait_for(lambda: job(data, job_id)["done"] > 20, 30, 0.1, "some progress")
    assert "paused" in cli(data, "pause", str(job_id)).stdout
    paused_at = job(data, job_id)["done"]
    # While paused, no new batch starts: progress stops within one batch of each worker.
    wait_for(lambda: json.loads(cli(data, "show", str(job_id), "--json").stdout)["done"] == job(data, job_id)["done"],
             30, 0.5, "progress to stop")
    assert job(data, job_id)["done"] < 400 and job(data, job_id)["done"] >= paused_at
    assert "running" in cli(data, "resume", str(job_id), "--no-wait").stdout
    wait_for(lambda: job(data, job_id)["done"] > paused_at + 10, 30, 0.1, "progress after resume")
    assert "cancelled" in cli(data, "cancel", str(job_id)).stdout
    final = wait_for(lambda: (lambda j: j if j["done"] + j["failed"] + j["cancelled"] == 400 else None)(job(data, job_id)),
                     60, 0.2, "every item to end")
    assert final["status"] == "cancelled" and final["cancelled"] > 0 and final["failed"] == 0
    again = cli(data, "cancel", str(job_id), check=False)
    assert again.returncode == 2 and "already cancelled" in again.stderr
