"""`batchdesk run` end to end: a real subprocess, real worker processes, a real broker over TCP.

Each test names the broker mode it tests (``auto`` depends on the machine).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import time

import pytest

from conftest import batchdesk_env, make_files, process_alive, require_redis_server, scaled, wait_for

pytestmark = pytest.mark.slow


def run_cli(data_dir, *args, env=None, timeout=240):
    return subprocess.run(
        [sys.executable, "-m", "batchdesk", "--data-dir", str(data_dir), *args],
        capture_output=True, text=True, env=env or batchdesk_env(), timeout=scaled(timeout),
    )


def assert_every_hash(data_dir, files):
    con = sqlite3.connect(data_dir / "batchdesk.sqlite3")
    rows = con.execute("SELECT path, status, result, attempts FROM item").fetchall()
    assert len(rows) == len(files)
    for path, status, result, attempts in rows:
        assert status == "done", (path, status)
        assert json.loads(result)["sha256"] == hashlib.sha256(files[path]).hexdigest()
        assert attempts == 1
    job = con.execute("SELECT items_done, items_failed, items_total, status FROM job").fetchone()
    assert job == (len(files), 0, len(files), "done")


@pytest.mark.parametrize("mode", ["embedded", "managed"])
def test_run_hashes_every_file(tmp_path, mode):
    if mode == "managed":
        require_redis_server()
    files = make_files(tmp_path / "in", 3000, 1, 8192, nested=7)
    result = run_cli(tmp_path / "data", "--broker", mode, "--workers", "2", "run", str(tmp_path / "in"), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["done"], summary["failed"], summary["status"]) == (3000, 0, "done")
    assert_every_hash(tmp_path / "data", files)
    batches = sqlite3.connect(tmp_path / "data" / "batchdesk.sqlite3").execute(
        "SELECT COUNT(*), SUM(items_count) FROM batch WHERE status='done'").fetchone()
    assert batches[0] >= 2 and batches[1] == 3000, "the job was cut into batches that cover every file"


def test_run_against_external_redis(tmp_path, redis_url):
    files = make_files(tmp_path / "in", 1500, 1, 4096)
    result = run_cli(tmp_path / "data", "--redis-url", redis_url, "--workers", "2", "run", str(tmp_path / "in"),
                     "--json")
    assert result.returncode == 0, result.stderr
    assert_every_hash(tmp_path / "data", files)


def test_failed_items_give_exit_code_1_and_reasons(tmp_path):
    (tmp_path / "in").mkdir()
    for i in range(20):
        (tmp_path / "in" / f"f{i}.txt").write_text(str(i))
    env = batchdesk_env(BATCHDESK_PLUGINS="fixture_tasks:flaky")
    result = run_cli(tmp_path / "data", "--broker", "embedded", "--workers", "1", "run", str(tmp_path / "in"),
                     "--task", "fixture_tasks:flaky", "--opt", "rate=0.5", "--json", env=env)
    assert result.returncode == 1, result.stderr
    summary = json.loads(result.stdout)
    assert summary["failed"] > 0 and summary["done"] + summary["failed"] == 20
    ran = summary["failed_items"]
    assert len(ran) == summary["failed"] and all(f["error"] == f"flaky failure on {f['path']}" for f in ran)
    shown = run_cli(tmp_path / "data", "show", str(summary["job"]), "--json", env=env)
    assert json.loads(shown.stdout)["failed_items"] == ran


@pytest.mark.parametrize("args,message", [
    (["run", "/definitely/not/here"], "folder not found"),
    (["run", "{empty}"], "no files to process"),
    (["run", "{empty}", "--task", "nope"], "unknown task 'nope'"),
    (["run", "{empty}", "--opt", "novalue"], "--opt takes key=value"),
    (["show", "999"], "no job 999"),
])
def test_user_mistakes_print_one_line_and_exit_2(tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    args = [a.replace("{empty}", str(tmp_path / "empty")) for a in args]
    result = run_cli(tmp_path / "data", "--broker", "embedded", *args, timeout=60)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_plugin_module_is_one_clear_line(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("a")
    env = batchdesk_env(BATCHDESK_PLUGINS="no_such_module:task")
    result = run_cli(tmp_path / "data", "--broker", "embedded", "run", str(tmp_path / "in"),
                     "--task", "no_such_module:task", env=env, timeout=60)
    assert result.returncode == 2 and "cannot load task 'no_such_module:task'" in result.stderr
    assert "Traceback" not in result.stderr


def test_samples_command_copies_the_bundled_samples(tmp_path):
    result = run_cli(tmp_path / "data", "samples", str(tmp_path / "s"), timeout=60)
    assert result.returncode == 0, result.stderr
    copied = sorted(p.name for p in (tmp_path / "s").rglob("*") if p.is_file())
    assert copied and any(name.endswith(".pdf") for name in copied) and any(name.endswith(".csv") for name in copied)
    again = run_cli(tmp_path / "data", "samples", str(tmp_path / "s"), timeout=60)
    assert again.returncode == 2 and "not empty" in again.stderr


def test_per_job_retries_and_time_limits_are_recorded(tmp_path):
    make_files(tmp_path / "in", 5, 1, 16)
    result = run_cli(tmp_path / "data", "--broker", "embedded", "--workers", "1", "run", str(tmp_path / "in"),
                     "--retries", "7", "--batch-timeout", "90", "--item-timeout", "2.5", "--json", timeout=60)
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)["batch_config"]
    assert (config["retries"], config["timeout"], config["item_timeout"]) == (7, 90, 2.5)


LAUNCH_SCRIPT = """
import sys, threading
from batchdesk.config import load_settings
from batchdesk.desk.link import DeskLink
from batchdesk.jobs.submit import JobRequest, submit_or_resume
from data.store import open_store
if sys.argv[2] == "spawn":
    threading.Thread(target=threading.Event().wait, daemon=True).start()  # a thread: fork is unsafe now
settings = load_settings({"data_dir": sys.argv[1], "broker": "embedded", "workers": 2})
open_store(settings.store_ref)
link = DeskLink(settings)
link.ensure()
job = submit_or_resume(settings, JobRequest(sys.argv[3], "checksum")).job
print(job.id, link.wait_ready().pid, flush=True)
"""


@pytest.mark.parametrize("how", ["fork", "spawn"])
def test_a_command_launches_a_background_desk_that_runs_its_job(tmp_path, how):
    """A command with no desk to attach to launches one: forked while it has no threads (the desk starts
    while the folder is scanned), else as a new process; either way the job runs once and the desk,
    with nothing left to do and linger 0, leaves nothing behind."""
    files = make_files(tmp_path / "in", 30, 1, 64)
    result = subprocess.run([sys.executable, "-c", LAUNCH_SCRIPT, str(tmp_path / "data"), how, str(tmp_path / "in")],
                            capture_output=True, text=True, env=batchdesk_env(), timeout=scaled(120))
    assert result.returncode == 0, result.stderr
    job_id, desk_pid = map(int, result.stdout.split())
    con = sqlite3.connect(tmp_path / "data" / "batchdesk.sqlite3")
    wait_for(lambda: con.execute("SELECT status FROM job WHERE id=?", (job_id,)).fetchone()[0] == "done", 60, 0.1,
             "the job to be done")
    assert con.execute("SELECT COUNT(*), SUM(status='done') FROM item").fetchone() == (len(files), len(files))
    wait_for(lambda: not process_alive(desk_pid), 60, 0.1, "the idle background desk to exit")


SLOW_START = "import time\ntime.sleep({seconds})\n"


def test_the_summary_times_the_whole_command_start_up_included(tmp_path):
    """`run` says how long the whole command took beside the job's own time: the interpreter's start-up and
    the imports count (here a sitecustomize that sleeps 4 s before batchdesk is even imported)."""
    make_files(tmp_path / "in", 5, 1, 16)
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(SLOW_START.format(seconds=4))
    env = batchdesk_env()
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path / "site"), env["PYTHONPATH"]])
    began = time.monotonic()
    result = run_cli(tmp_path / "data", "--broker", "embedded", "--workers", "1", "run", str(tmp_path / "in"),
                     "--json", env=env, timeout=90)
    wall = time.monotonic() - began
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["command_s"] >= 4.0 + summary["duration_s"] * 0.5, summary
    assert wall - summary["command_s"] < scaled(1.5), (wall, summary["command_s"])
    text = run_cli(tmp_path / "data", "--broker", "embedded", "--workers", "1", "run", str(tmp_path / "in"),
                   "--new", "--all", env=env, timeout=90)
    took = re.search(r"in ([0-9.]+) s .*; the command took ([0-9.]+) s$", text.stdout.splitlines()[0])
    assert took and float(took[2]) >= 4.0 > float(took[1]), text.stdout


def test_a_shell_that_became_batchdesk_is_not_timed_from_its_own_start(tmp_path):
    """`sh -c 'pip install ... && batchdesk run ...'` runs its last command in the shell's own process (by
    exec): "the command took" must not count what the shell ran before (here 4 s of `sleep`)."""
    make_files(tmp_path / "in", 3, 1, 16)
    command = (f"sleep 4; exec {sys.executable} -m batchdesk --data-dir {tmp_path / 'data'} --broker embedded "
               f"--workers 1 run {tmp_path / 'in'} --json")
    began = time.monotonic()
    result = subprocess.run(["sh", "-c", command], capture_output=True, text=True, env=batchdesk_env(),
                            timeout=scaled(120))
    wall = time.monotonic() - began
    assert result.returncode == 0, result.stderr
    assert wall - json.loads(result.stdout)["command_s"] >= 4.0, (wall, result.stdout)
