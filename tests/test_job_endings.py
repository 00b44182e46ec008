"""Every row of docs/job-endings.md with real processes: who owns the desk (a `run` and the background
desk it starts, a `run` attached to `serve` or the UI, `serve`, a lingering background desk) against how
the job or the desk ends (done, a failed report, cancel, the breaker, a user's pause, Ctrl-C, SIGTERM,
kill -9). Each test waits on conditions, with deadlines that scale with the machine (tests/conftest.py)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import (
    REPO,
    TESTS,
    batchdesk_env,
    desk_pid,
    job_row,
    make_files,
    process_alive,
    query_store,
    scaled,
    wait_for,
)
from fixture_tasks import set_pace

pytestmark = pytest.mark.slow

PLUGINS = "fixture_tasks:paced,fixture_tasks:bad_report,fixture_tasks:slow_report"
PACE_MS = 200  # an item's time while a test needs the job unfinished: 400 items on 2 workers take 40 s or more


def env(**extra: str) -> dict[str, str]:
    return batchdesk_env(BATCHDESK_PLUGINS=PLUGINS, BATCHDESK_BROKER="embedded", BATCHDESK_WORKERS="2", **extra)


def cli(data: Path, *args: str, environ: dict[str, str] | None = None,
        timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "batchdesk", "--data-dir", str(data), *args],
                          capture_output=True, text=True, env=environ or env(), timeout=scaled(timeout))


def start(data: Path, *args: str, environ: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "batchdesk", "--data-dir", str(data), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environ or env())


def finish(proc: subprocess.Popen, timeout: float = 180) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=scaled(timeout))
    return proc.returncode, out, err


def each_item_once(data: Path) -> bool:
    return query_store(data, "SELECT COUNT(*) FROM item WHERE status != 'done' OR attempts != 1") == [(0,)]


def nothing_left(data: Path) -> bool:
    """No desk for the data dir and none of its workers alive."""
    pids = [pid for (pid,) in query_store(data, "SELECT pid FROM workerrow")]
    return desk_pid(data) is None and not any(process_alive(pid) for pid in pids)


def slow_run(data: Path, folder: Path, *extra: str, environ: dict[str, str] | None = None,
             ms: float = PACE_MS) -> subprocess.Popen:
    """`run` of ``folder`` with ``fixture_tasks:paced`` at ``ms`` an item; ``full_speed(data)`` lets the job
    finish (the pace file is read as each item starts)."""
    set_pace(pace_file(data), ms)
    return start(data, "run", str(folder), "--task", "fixture_tasks:paced", "--opt", f"pace={pace_file(data)}",
                 *extra, environ=environ)


def pace_file(data: Path) -> Path:
    return data.parent / "pace"


def full_speed(data: Path) -> None:
    set_pace(pace_file(data), 0)


def group_alive(pgid: int) -> bool:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


# -- `run`, which starts a background desk of its own ------------------------------------------------
def test_run_returns_with_its_report_written_five_times_in_a_row(tmp_path):
    make_files(tmp_path / "in", 40, 1, 64)
    (tmp_path / "in" / "copy.bin").write_bytes((tmp_path / "in" / "f000000.bin").read_bytes())
    data = tmp_path / "data"
    lingering = env(BATCHDESK_LINGER="60")
    try:
        for attempt in range(5):
            command = ("run", str(tmp_path / "in"), "--new", "--all", "--json")  # --all: the files are unchanged
            code, out, err = finish(start(data, *command, environ=lingering))
            assert code == 0, err
            summary = json.loads(out)
            assert summary["status"] == "done" and [Path(p).name for p in summary["reports"]] == ["duplicates.csv"]
            report = Path(summary["reports"][0]).read_text()
            assert "copy.bin" in report and "f000000.bin" in report, f"run {attempt + 1}: {report!r}"
    finally:
        assert cli(data, "stop").returncode == 0
    assert query_store(data, "SELECT COUNT(*), SUM(status='done') FROM job") == [(5, 5)]


def test_statements_run_lists_both_reports(tmp_path):
    folder = tmp_path / "statements"
    shutil.copytree(REPO / "data" / "samples" / "statements", folder)
    code, out, err = finish(start(tmp_path / "data", "run", str(folder), "--task", "statements", "--json"))
    summary = json.loads(out)
    assert code == 0, err
    names = sorted(Path(p).name for p in summary["reports"])
    assert names == ["statements_report.csv", "statements_report.xlsx"]
    assert all(Path(p).stat().st_size > 0 for p in summary["reports"])
    assert not list(Path(summary["output"]).glob(".*.part"))


def test_a_failing_report_fails_the_job_with_its_reason_and_an_alert(tmp_path):
    make_files(tmp_path / "in", 5)
    code, _, err = finish(start(tmp_path / "data", "run", str(tmp_path / "in"), "--task", "fixture_tasks:bad_report"))
    assert code == 1, err
    assert "failed: the fixture_tasks:bad_report report failed: RuntimeError: the disk is full" in err
    row = job_row(tmp_path / "data")
    assert (row["status"], row["done"]) == ("failed", 5) and "disk is full" in row["reason"]
    assert query_store(tmp_path / "data", "SELECT level, kind FROM alert WHERE message LIKE '%disk is full%'") == [
        ("error", "job")]


def test_a_report_cut_short_by_a_crash_is_written_at_the_next_start(tmp_path):
    make_files(tmp_path / "in", 5)
    data = tmp_path / "data"
    runner = start(data, "run", str(tmp_path / "in"), "--task", "fixture_tasks:slow_report", "--opt", "report_ms=4000")
    out_dir = data / "outputs" / "job-1"
    wait_for(lambda: (out_dir / "runs.txt").exists(), 60, 0.05, "the report to start")
    assert job_row(data)["status"] == "finishing"
    from workers.proctree import kill_tree

    desk = desk_pid(data)
    runner.kill()  # the whole machine "crashes": the command, the desk, its workers and the report
    kill_tree(desk)
    wait_for(lambda: not process_alive(desk), 30, 0.1, "the desk to die")
    assert not (out_dir / "report.txt").exists()
    code, out, err = finish(start(data, "resume", "1", "--json"))
    assert code == 0, err
    assert json.loads(out)["reports"] == [str(out_dir / "report.txt")]
    assert (out_dir / "runs.txt").read_text() == "run\nrun\n" and (out_dir / "report.txt").read_text() == "5 items\n"


def test_the_circuit_breaker_ends_run_with_exit_3_and_the_way_to_resume(tmp_path):
    make_files(tmp_path / "in", 200)
    data = tmp_path / "data"
    began = time.monotonic()
    code, out, err = finish(start(data, "run", str(tmp_path / "in"), "--task", "command", "--opt", "cmd=false",
                                  "--json"), timeout=120)
    assert code == 3, err
    assert time.monotonic() - began < scaled(60)
    summary = json.loads(out)
    assert summary["status"] == "paused" and "paused itself" in summary["paused_reason"]
    assert 20 <= summary["failed"] < 200
    code, out, err = finish(start(data, "run", str(tmp_path / "in"), "--task", "command", "--opt", "cmd=false"))
    assert code == 3 and "resuming job 1" in err and "resume it with: batchdesk resume 1" in err, err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupting_run_pauses_its_job_and_the_same_command_resumes_it(tmp_path, sig):
    make_files(tmp_path / "in", 400, 1, 32)
    data = tmp_path / "data"
    runner = slow_run(data, tmp_path / "in")
    wait_for(lambda: job_row(data).get("done", 0) > 20, 60, 0.1, "some progress")
    runner.send_signal(sig)
    code, _, err = finish(runner, 60)
    assert code == 130 and "interrupted: job 1 paused with" in err and "run the same command again" in err, err
    row = job_row(data)
    assert (row["status"], row["paused_by"]) == ("paused", "interrupt")
    wait_for(lambda: nothing_left(data), 60, 0.1, "the idle background desk to leave nothing behind")
    code, out, err = finish(slow_run(data, tmp_path / "in", "--json", ms=0))
    assert code == 0 and "resuming job 1" in err, err
    assert json.loads(out)["done"] == 400 and each_item_once(data)


def test_kill_9_of_run_pauses_its_job_and_leaves_nothing_running(tmp_path):
    make_files(tmp_path / "in", 400, 1, 32)
    data = tmp_path / "data"
    runner = slow_run(data, tmp_path / "in")
    wait_for(lambda: job_row(data).get("done", 0) > 20, 60, 0.1, "some progress")
    runner.kill()
    runner.wait(scaled(10))
    wait_for(lambda: job_row(data)["status"] == "paused", 30, 0.1, "the desk to pause the job")
    assert job_row(data)["paused_by"] == "waiter_gone"
    assert query_store(data, "SELECT COUNT(*) FROM alert WHERE message LIKE '%is gone%'") == [(1,)]
    wait_for(lambda: nothing_left(data), 60, 0.1, "the background desk and its workers to stop")


def test_cancel_ends_pending_items_at_once_and_items_in_hand_with_their_real_outcome(tmp_path):
    make_files(tmp_path / "in", 6)
    data = tmp_path / "data"
    # Each item says it started, then runs until the test lets it end (the file `go`).
    marker = "sh -c 'touch {out_dir}/{stem}.started; while [ ! -e {out_dir}/go ]; do sleep 0.05; done'"
    runner = start(data, "run", str(tmp_path / "in"), "--task", "command", "--opt", f"cmd={marker}",
                   "--opt", "shell=false")
    out_dir = data / "outputs" / "job-1"
    wait_for(lambda: len(list(out_dir.glob("*.started"))) == 2, 60, 0.05, "two items in hand")
    cancelled = cli(data, "cancel", "1", "--no-wait")
    assert cancelled.returncode == 0, cancelled.stderr
    # The four pending items end cancelled while the two in hand still run.
    wait_for(lambda: job_row(data)["cancelled"] == 4, 10, 0.05, "the pending items to be cancelled")
    assert job_row(data)["done"] == 0
    (out_dir / "go").touch()  # within the cancel grace: the two in hand end with their real outcome
    code, out, err = finish(runner, 60)
    assert code == 1, err
    assert "job 1 cancelled: 2 done, 0 failed, 4 cancelled of 6" in out


def test_cancel_kills_an_item_in_hand_after_the_grace_with_all_it_started(tmp_path):
    make_files(tmp_path / "in", 2)
    data = tmp_path / "data"
    command = "sh -c 'echo $$ > {out_dir}/{stem}.pgid; sleep 300; true'"
    runner = start(data, "run", str(tmp_path / "in"), "--task", "command", "--opt", f"cmd={command}")
    out_dir = data / "outputs" / "job-1"
    wait_for(lambda: all((out_dir / f"f00000{i}.pgid").exists() and (out_dir / f"f00000{i}.pgid").read_text()
                         for i in (0, 1)), 60, 0.05, "both commands to start")
    groups = [int((out_dir / f"f00000{i}.pgid").read_text()) for i in (0, 1)]
    result = cli(data, "cancel", "1")
    assert result.returncode == 0 and "job 1 cancelled: 0 done, 0 failed, 2 cancelled of 2" in result.stdout
    wait_for(lambda: not any(group_alive(g) for g in groups), 15, 0.1, "the commands' process groups to end")
    code, out, _ = finish(runner, 60)
    assert code == 1 and "2 cancelled of 2" in out


def test_two_runs_started_at_once_share_one_desk(tmp_path):
    make_files(tmp_path / "a", 200, 1, 32, seed=1)
    make_files(tmp_path / "b", 200, 1, 32, seed=2)
    data = tmp_path / "data"
    runs = [slow_run(data, tmp_path / name, "--json", ms=25) for name in ("a", "b")]
    results = [finish(r) for r in runs]
    for code, _, err in results:
        assert code == 0 and "another batchdesk desk" not in err, err
    assert query_store(data, "SELECT COUNT(*), SUM(status='done'), SUM(items_done) FROM job") == [(2, 2, 400)]
    desks = {name.rsplit("-", 2)[1] for (name,) in query_store(data, "SELECT DISTINCT worker FROM batch")}
    assert len(desks) == 1, f"the batches ran on the workers of one desk, not {desks}"


def test_a_run_whose_desk_cannot_start_leaves_no_job_and_no_process(tmp_path):
    make_files(tmp_path / "in", 3)
    data = tmp_path / "data"
    result = cli(data, "--redis-url", "redis://:secret@127.0.0.1:1/0", "run", str(tmp_path / "in"), timeout=120)
    assert result.returncode == 2 and "cannot use the Redis server" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert query_store(data, "SELECT COUNT(*) FROM job") == [(0,)]
    assert desk_pid(data) is None


def test_a_pause_from_elsewhere_is_reported_and_run_keeps_waiting(tmp_path):
    make_files(tmp_path / "in", 300, 1, 32)
    data = tmp_path / "data"
    runner = slow_run(data, tmp_path / "in", "-q")
    wait_for(lambda: job_row(data).get("done", 0) > 20, 60, 0.1, "some progress")
    assert cli(data, "pause", "1").returncode == 0
    wait_for(lambda: runner.poll() is not None or job_row(data)["status"] == "paused", 10, 0.1, "the pause")
    time.sleep(1.0)  # proves a non-event: over one second, the paused job stays paused and `run` keeps waiting
    assert runner.poll() is None, runner.communicate()
    full_speed(data)
    assert cli(data, "resume", "1", "--no-wait").returncode == 0
    code, _, err = finish(runner)
    assert code == 0 and "job 1 was paused (paused by the user)" in err, err
    assert job_row(data)["done"] == 300 and each_item_once(data)


# -- `run` attached to `serve` or the UI, and `serve` itself ------------------------------------------
@pytest.fixture
def serve(tmp_path):
    data = tmp_path / "data"
    proc = start(data, "serve")
    wait_for(lambda: desk_pid(data) == proc.pid, 60, 0.1, "serve's desk")
    yield data, proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(scaled(60))


def test_ctrl_c_on_a_run_attached_to_serve_pauses_its_job_and_says_so(tmp_path, serve):
    data, desk = serve
    make_files(tmp_path / "in", 400, 1, 32)
    runner = slow_run(data, tmp_path / "in")
    wait_for(lambda: job_row(data).get("done", 0) > 20, 60, 0.1, "some progress")
    assert desk_pid(data) == desk.pid, "run attached to serve's desk"
    runner.send_signal(signal.SIGINT)
    code, _, err = finish(runner, 60)
    assert code == 130 and "interrupted: job 1 paused" in err and "stopping workers" not in err, err
    assert job_row(data)["status"] == "paused" and desk.poll() is None
    desk.send_signal(signal.SIGTERM)
    assert desk.wait(scaled(60)) == 0 and "stopping: workers stop after the item in hand" in desk.stderr.read()
    wait_for(lambda: nothing_left(data), 30, 0.1, "serve's workers to stop")


def test_cancel_under_serve_ends_the_items_command_and_all_it_started(tmp_path, serve):
    data, desk = serve
    make_files(tmp_path / "in", 1)
    command = "sh -c 'echo $$ > {out_dir}/{stem}.pgid; sleep 300; true'"
    submitted = cli(data, "submit", str(tmp_path / "in"), "--task", "command", "--opt", f"cmd={command}", "--json")
    assert submitted.returncode == 0, submitted.stderr
    pgid_file = data / "outputs" / "job-1" / "f000000.pgid"
    wait_for(lambda: pgid_file.exists() and pgid_file.read_text().strip(), 60, 0.05, "the command to start")
    group = int(pgid_file.read_text())
    assert cli(data, "cancel", "1", "--no-wait").returncode == 0
    wait_for(lambda: not group_alive(group), 15 + 10, 0.1, "the command's process group to end after the grace")
    wait_for(lambda: job_row(data)["status"] == "cancelled", 10, 0.1, "the job to end cancelled")
    assert desk.poll() is None


def test_a_run_attached_to_the_ui_desk_carries_on_when_the_ui_quits(tmp_path, settings, monkeypatch):
    from batchdesk.desk.info import UI
    from batchdesk.desk.session import Session
    from data.store import close_store

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), str(REPO), os.environ.get("PYTHONPATH", "")]))
    make_files(tmp_path / "in", 400, 1, 32)
    data = settings.data_dir
    ui = Session(replace(settings, plugins=tuple(PLUGINS.split(","))), kind=UI)
    ui.ensure_desk()
    try:
        runner = slow_run(data, tmp_path / "in")
        wait_for(lambda: job_row(data).get("done", 0) > 20, 60, 0.1, "some progress on the UI's desk")
    finally:
        ui.close()  # quit the UI: its desk stops, batches are handed back
        close_store()
    full_speed(data)
    code, _, err = finish(runner)
    assert code == 0, err
    assert job_row(data)["done"] == 400 and each_item_once(data)


# -- the background desk itself ----------------------------------------------------------------------
def test_a_background_desk_lingers_for_the_next_run_then_stops(tmp_path):
    make_files(tmp_path / "in", 20)
    data = tmp_path / "data"
    lingering = env(BATCHDESK_LINGER="4")
    assert cli(data, "run", str(tmp_path / "in"), environ=lingering).returncode == 0
    first = desk_pid(data)
    assert first is not None and process_alive(first), "the desk lingers after the job"
    assert cli(data, "run", str(tmp_path / "in"), "--new", "--all", environ=lingering).returncode == 0
    assert desk_pid(data) == first, "the next run attached to the warm desk"
    wait_for(lambda: nothing_left(data) and not process_alive(first), 60, 0.2, "the idle desk to stop by itself")


def test_stop_ends_the_desk_and_interrupts_a_waiting_run(tmp_path):
    make_files(tmp_path / "in", 400, 1, 32)
    data = tmp_path / "data"
    runner = slow_run(data, tmp_path / "in", environ=env(BATCHDESK_LINGER="600"))
    wait_for(lambda: job_row(data).get("done", 0) > 20, 60, 0.1, "some progress")
    desk = desk_pid(data)
    stopped = cli(data, "stop")
    assert stopped.returncode == 0 and f"stopped the background desk (pid {desk})" in stopped.stdout, stopped.stderr
    code, _, err = finish(runner, 30)
    assert code == 130 and "interrupted: job 1 paused" in err
    assert nothing_left(data) and not process_alive(desk)
    again = cli(data, "stop")
    assert again.returncode == 1 and "no desk is running" in again.stderr


def test_killing_the_background_desk_mid_job_is_recovered_by_the_waiting_run(tmp_path):
    make_files(tmp_path / "in", 400, 1, 32)
    data = tmp_path / "data"
    runner = slow_run(data, tmp_path / "in", "--json")
    wait_for(lambda: job_row(data).get("done", 0) > 20, 60, 0.1, "some progress")
    first = desk_pid(data)
    os.kill(first, signal.SIGKILL)
    # Still paced: the batches in hand cannot end the job on their own before the run notices.
    wait_for(lambda: desk_pid(data) not in (None, first), 60, 0.05, "the waiting run to start a new desk")
    full_speed(data)
    code, out, err = finish(runner)
    assert code == 0, err
    assert json.loads(out)["done"] == 400 and each_item_once(data)


def test_serve_takes_over_from_a_lingering_background_desk(tmp_path):
    make_files(tmp_path / "in", 5)
    data = tmp_path / "data"
    assert cli(data, "run", str(tmp_path / "in"), environ=env(BATCHDESK_LINGER="600")).returncode == 0
    background = desk_pid(data)
    proc = start(data, "serve")
    try:
        wait_for(lambda: desk_pid(data) == proc.pid, 60, 0.1, "serve to take over")
        assert not process_alive(background)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(scaled(60))
