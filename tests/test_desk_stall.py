"""A desk that hangs says where (SIGQUIT), and one whose stop hangs still lets go of everything."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

from batchdesk.desk.info import read_desk_info
from conftest import REPO, batchdesk_env, process_alive, scaled, wait_for

pytestmark = pytest.mark.slow

# A process that starts a child (as a desk starts its broker and workers), then stops with a stop that hangs.
HANGING_STOP = textwrap.dedent("""
    import subprocess, sys, time
    from batchdesk.desk.stall import stop_within

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    print(child.pid, flush=True)

    def wedged_stop():
        time.sleep(300)

    stop_within(0.5, wedged_stop)
    print("stop returned", flush=True)
""")


def test_a_stop_that_hangs_dumps_the_stacks_kills_the_tree_and_exits():
    proc = subprocess.Popen([sys.executable, "-c", HANGING_STOP], cwd=REPO, env=batchdesk_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=scaled(60))
    child = int(out.split()[0])
    assert proc.returncode == 1, err
    assert "stop returned" not in out
    assert "did not stop within 0.5 s" in err, err
    assert "in wedged_stop" in err, "the hung thread's stack is in the log"
    wait_for(lambda: not process_alive(child), 10, 0.05, "the child to be killed")


def test_sigquit_dumps_a_serving_desks_stacks_and_it_goes_on(tmp_path):
    data = tmp_path / "data"
    log = tmp_path / "serve.err"
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "batchdesk", "--data-dir", str(data), "serve"],
                                env=batchdesk_env(BATCHDESK_WORKERS="1"), stdout=subprocess.DEVNULL, stderr=err)
    try:
        wait_for(lambda: read_desk_info(data) or proc.poll() is not None, 30, 0.1, "the desk to start")
        assert proc.poll() is None, log.read_text()
        proc.send_signal(signal.SIGQUIT)
        wait_for(lambda: "Current thread" in log.read_text(), 10, 0.05, "the stacks in the log")
        text = log.read_text()
        assert "Thread 0x" in text and 'File "' in text, text
        assert proc.poll() is None, "the desk goes on after SIGQUIT"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(scaled(60)) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
