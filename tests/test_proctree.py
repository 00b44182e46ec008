"""Processes that would outlive their item: kill_tree on real process trees, a worker's stop-job and a
worker whose desk died take the item's command down with its whole process group."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

from conftest import REPO, process_alive, scaled, wait_for
from worker_rig import rig_fixture  # noqa: F401  (the rig fixture)
from workers.proctree import kill_tree

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX process groups and sessions")

# A process that starts a child (a shell) in a new session, which starts a grandchild (in the child's
# group), then writes the pids and waits.
TREE = textwrap.dedent("""
    import json, subprocess, sys, time
    child = subprocess.Popen(["sh", "-c", sys.argv[1]], start_new_session=True)
    grandchild = None
    while not grandchild:
        try:
            grandchild = int(open("grandchild").read())
        except (OSError, ValueError):
            time.sleep(0.05)
    open("tree.json", "w").write(json.dumps([child.pid, grandchild]))
    time.sleep(300)
""")
DESCENDANT = "sleep 300 & echo $! > grandchild; wait"
# The subshell exits at once: its sleep is reparented away from the tree, but stays in the child's group.
ORPHAN = "(sleep 300 & echo $! > grandchild); sleep 300"


def start_tree(tmp_path: Path, script: str) -> tuple[subprocess.Popen, list[int]]:
    root = subprocess.Popen([sys.executable, "-c", TREE, script], cwd=tmp_path)
    wait_for(lambda: (tmp_path / "tree.json").exists() and (tmp_path / "tree.json").read_text(), 30, 0.05,
             "the tree to start")
    return root, json.loads((tmp_path / "tree.json").read_text())


def group_alive(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group ``pgid``."""
    alive = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc.pid)
        except (OSError, psutil.Error):
            pass
    return alive


@pytest.mark.parametrize("script", [DESCENDANT, ORPHAN], ids=["descendant", "orphan-in-group"])
def test_kill_tree_reaches_a_grandchild_in_another_session(tmp_path, script):
    # The root shares the test's process group: kill_tree must kill it, never that group (or pytest dies).
    root, (child, grandchild) = start_tree(tmp_path, script)
    try:
        assert os.getpgid(child) == child == os.getpgid(grandchild) != os.getpgid(root.pid) == os.getpgrp()
        kill_tree(root.pid)
        assert root.wait(scaled(30)) == -signal.SIGKILL
        wait_for(lambda: not process_alive(child) and not process_alive(grandchild), 30, 0.05,
                 "the whole tree to die")
    finally:
        for pid in (grandchild, child, root.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_kill_tree_tolerates_gone_processes_and_refuses_nonsense():
    proc = subprocess.Popen(["true"])
    proc.wait()
    kill_tree(proc.pid)  # gone (and reaped): nothing to do
    with pytest.raises(ValueError):
        kill_tree(0)


def kill_group_left(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


@pytest.mark.slow
def test_stop_job_takes_the_items_command_group_down(rig, tmp_path):
    """RQ's stop-job (the desk's cancel after the grace) kills the work-horse; the command item it runs is in a
    session of its own, and a shell that forks: none of that group may outlive the horse."""
    from rq.command import send_stop_job_command
    from rq.job import Job as RQJob
    from rq.serializers import JSONSerializer

    from data.models import Job

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a").write_text("a")
    worker = rig.start_worker()
    job, batch = rig.submit(tmp_path / "in", "command", cmd="sh -c 'echo $$ > {out_dir}/pgid; sleep 300; true'")
    pgid_file = Path(Job.get_by_id(job.id).output_dir) / "pgid"
    wait_for(lambda: pgid_file.exists() and pgid_file.read_text().strip(), 60, 0.1, "the command to start")
    pgid = int(pgid_file.read_text())
    try:
        assert len(group_alive(pgid)) == 2, "sh and its sleep"
        send_stop_job_command(rig.connection, batch.rq_job_id, serializer=JSONSerializer)
        wait_for(lambda: not group_alive(pgid), 30, 0.1, "the command's process group to die with the horse")
        rq_job = RQJob.fetch(batch.rq_job_id, connection=rig.connection, serializer=JSONSerializer)
        assert wait_for(lambda: rq_job.get_status(refresh=True) == "stopped", 30, 0.1, "rq to record the stop")
        assert worker.poll() is None, rig.log()
    finally:
        kill_group_left(pgid)


# A stand-in for a worker whose work-horse does not finish in the grace (it ignores the SIGTERM that
# follow_parent sends), with a command item in a session of its own whose shell left an orphan behind.
STUCK_WORKER = textwrap.dedent("""
    import os, signal, subprocess, sys, time
    sys.path.insert(0, %(repo)r)
    from workers.worker import follow_parent
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    subprocess.Popen(["sh", "-c", "(sleep 300 &); echo $$ > pgid; sleep 300"], start_new_session=True)
    open("worker.pid", "w").write(str(os.getpid()))
    follow_parent(int(sys.argv[1]), grace=0.5)
    time.sleep(300)
""")
DESK = "import os, subprocess, sys, time; subprocess.Popen([sys.executable, '-c', sys.argv[1], str(os.getpid())]); " \
       "time.sleep(300)"


def test_a_worker_whose_desk_died_kills_its_items_whole_tree(tmp_path):
    desk = subprocess.Popen([sys.executable, "-c", DESK, STUCK_WORKER % {"repo": str(REPO)}], cwd=tmp_path)
    try:
        wait_for(lambda: all((tmp_path / f).exists() and (tmp_path / f).read_text() for f in ("pgid", "worker.pid")),
                 30, 0.05, "the worker and its command to start")
        pgid, worker = int((tmp_path / "pgid").read_text()), int((tmp_path / "worker.pid").read_text())
        assert len(group_alive(pgid)) == 3, "sh, its sleep, and the orphaned sleep"
        desk.kill()
        desk.wait(scaled(30))
        wait_for(lambda: not process_alive(worker), 30, 0.1, "the worker to stop after the grace")
        wait_for(lambda: not group_alive(pgid), 30, 0.1, "the command's whole process group to die")
    finally:
        desk.kill()
        for name in ("pgid", "worker.pid"):
            with contextlib.suppress(OSError, ValueError):
                (os.killpg if name == "pgid" else os.kill)(int((tmp_path / name).read_text()), signal.SIGKILL)
