"""Telling people that a job ended: the desk runs the on_done command (the summary in its environment and on
its stdin) and shows a desktop notification; a failing or hanging command is an alert, never a failed job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import replace

import psutil
import pytest

from batchdesk.config import ConfigError, load_settings
from batchdesk.desk.desk import Desk
from batchdesk.jobs.submit import JobRequest, submit_folder
from batchdesk.notify import notification_command
from conftest import batchdesk_env, make_files, scaled, wait_for
from data.models import Alert, Job

HOOK = """
import json, os, sys
out = sys.argv[1]
seen = {"argv": sys.argv[2:], "env": {k: v for k, v in os.environ.items() if k.startswith(("BATCHDESK", "RQ_"))},
        "stdin": json.load(sys.stdin)}
with open(out + ".part", "w") as fh:
    json.dump(seen, fh)
os.replace(out + ".part", out)
"""

FAKE_NOTIFY_SEND = """#!/bin/sh
printf '%s\\n' "$@" > "{log}.part" && mv "{log}.part" "{log}"
"""


@pytest.mark.slow
def test_the_desk_runs_on_done_with_the_summary_and_notifies(tmp_path):
    """A real `run` (its background desk runs the command); the command writes what it got to a file."""
    make_files(tmp_path / "in", 8, 1, 64)
    (tmp_path / "hook.py").write_text(HOOK)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "notify-send").write_text(FAKE_NOTIFY_SEND.format(log=tmp_path / "notified"))
    (bin_dir / "notify-send").chmod(0o755)
    config = tmp_path / "batchdesk.toml"
    config.write_text(f"notify = true\non_done = {json.dumps([sys.executable, str(tmp_path / 'hook.py')])}\n"
                      f"on_done_timeout = {scaled(30)}\n")
    config.write_text(config.read_text().replace("]\n", f', "{tmp_path / "seen.json"}", "an arg"]\n', 1))
    env = batchdesk_env(BATCHDESK_CONFIG=str(config), PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
                        BATCHDESK_PLUGINS="fixture_tasks:flaky")
    result = subprocess.run([sys.executable, "-m", "batchdesk", "--data-dir", str(tmp_path / "data"), "--broker",
                             "embedded", "--workers", "1", "run", str(tmp_path / "in"), "--task",
                             "fixture_tasks:flaky", "--opt", "rate=0.5", "--json"],
                            capture_output=True, text=True, env=env, timeout=scaled(120))
    assert result.returncode == 1, result.stderr  # some items failed (on purpose)
    ran = json.loads(result.stdout)
    wait_for(lambda: (tmp_path / "seen.json").exists() and (tmp_path / "notified").exists(), 60, 0.1,
             "the on_done command and the notification")
    seen = json.loads((tmp_path / "seen.json").read_text())
    assert seen["argv"] == ["an arg"]
    env_seen = seen["env"]
    assert 0 < ran["failed"] < 8
    assert {k: env_seen[k] for k in ("BATCHDESK_JOB_ID", "BATCHDESK_JOB_STATUS", "BATCHDESK_JOB_TOTAL",
                                     "BATCHDESK_JOB_DONE", "BATCHDESK_JOB_FAILED", "BATCHDESK_JOB_TASK",
                                     "BATCHDESK_JOB_OUTPUT", "BATCHDESK_JOB_REPORTS", "BATCHDESK_JOB_SKIPPED")} == {
        "BATCHDESK_JOB_ID": "1", "BATCHDESK_JOB_STATUS": "done", "BATCHDESK_JOB_TOTAL": "8",
        "BATCHDESK_JOB_DONE": str(ran["done"]), "BATCHDESK_JOB_FAILED": str(ran["failed"]),
        "BATCHDESK_JOB_TASK": "fixture_tasks:flaky", "BATCHDESK_JOB_OUTPUT": ran["output"],
        "BATCHDESK_JOB_REPORTS": "", "BATCHDESK_JOB_SKIPPED": "0"}
    assert not [k for k in env_seen if not k.startswith("BATCHDESK_JOB_")], "none of batchdesk's own settings"
    summary = seen["stdin"]
    assert (summary["job"], summary["status"], summary["done"], summary["failed"]) == (1, "done", ran["done"],
                                                                                        ran["failed"])
    assert summary["failed_items"] == ran["failed_items"]
    assert (tmp_path / "notified").read_text().splitlines()[:2] == ["--app-name=batchdesk", "batchdesk: job 1 done"]


@pytest.fixture
def desk_with(settings, tmp_path):
    """Start a real desk (real workers) with these setting overrides; stopped after the test."""
    desks = []

    def start(**overrides):
        configured = replace(settings, **overrides)
        desks.append(Desk(configured).start())
        return desks[-1], configured

    yield start
    for desk in desks:
        desk.stop(grace=2)


def finish_a_job(desk, settings, folder):
    make_files(folder, 3, 1, 16)
    job, _ = submit_folder(settings, JobRequest(folder, "checksum"))
    desk.wake()
    wait_for(lambda: Job.get_by_id(job.id).status == "done", 60, 0.1, "the job to be done")
    return job


def alert_about(job_id):
    return Alert.select().where((Alert.job == job_id) & Alert.message.contains("on_done")).first()


@pytest.mark.slow
def test_a_failing_on_done_command_is_an_alert_not_a_failed_job(desk_with, tmp_path):
    script = "import sys; sys.stderr.write('the mail server said no'); sys.exit(3)"
    desk, settings = desk_with(on_done=(sys.executable, "-c", script))
    job = finish_a_job(desk, settings, tmp_path / "in")
    alert = wait_for(lambda: alert_about(job.id), 30, 0.1, "the alert")
    assert alert.message == f"the on_done command for job {job.id} failed: it exited with 3: the mail server said no"
    assert Job.get_by_id(job.id).status == "done"


@pytest.mark.slow
def test_an_on_done_command_past_its_time_limit_is_killed_with_its_children(desk_with, tmp_path):
    marker = uuid.uuid4().hex
    script = (f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)',"
              f" '{marker}']); time.sleep(600)")
    desk, settings = desk_with(on_done=(sys.executable, "-c", script, marker), on_done_timeout=1.0)
    job = finish_a_job(desk, settings, tmp_path / "in")
    alert = wait_for(lambda: alert_about(job.id), 30, 0.1, "the alert")
    assert alert.message == f"the on_done command for job {job.id} failed: it took longer than 1 s and was killed"

    def leftovers():
        return [p for p in psutil.process_iter(["cmdline"]) if marker in " ".join(p.info["cmdline"] or [])]

    wait_for(lambda: not leftovers(), 10, 0.1, "the command and its child to be gone")
    assert Job.get_by_id(job.id).status == "done"


@pytest.mark.slow
def test_a_command_that_cannot_start_is_an_alert(desk_with, tmp_path):
    desk, settings = desk_with(on_done=(str(tmp_path / "no-such-program"),))
    job = finish_a_job(desk, settings, tmp_path / "in")
    alert = wait_for(lambda: alert_about(job.id), 30, 0.1, "the alert")
    assert alert.message == f"the on_done command for job {job.id} failed: cannot start it: No such file or directory"


def test_settings_for_job_ends(tmp_path, monkeypatch):
    config = tmp_path / "c.toml"
    config.write_text('notify = "yes"\non_done = "notify-me --job \'a b\'"\n')
    settings = load_settings({}, config)
    assert settings.notify is True and settings.on_done == ("notify-me", "--job", "a b")
    assert settings.on_done_timeout == 60.0 and load_settings({}, tmp_path / "none.toml").notify is False
    monkeypatch.setenv("BATCHDESK_NOTIFY", "maybe")
    with pytest.raises(ConfigError, match=r"bad value for 'notify'.*true/false"):
        load_settings({}, config)


def test_the_notification_command_per_platform(monkeypatch):
    assert notification_command("darwin", 'job "1" done', "a\\b") == [
        "osascript", "-e", 'display notification "a\\\\b" with title "job \\"1\\" done"']
    monkeypatch.setenv("PATH", "/nonexistent")
    assert notification_command("linux", "t", "b") is None  # no notify-send: nothing, and no error
