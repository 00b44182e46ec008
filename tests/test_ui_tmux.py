"""The real program in a real terminal (tmux): `batchdesk --data-dir TMP ui` starts, shows every panel,
runs a job submitted from another process, and quits only after the user confirms (the job then
resumes at the next start)."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from conftest import batchdesk_env, make_files, scaled, wait_for

TMUX = shutil.which("tmux") or ("/usr/bin/tmux" if Path("/usr/bin/tmux").exists() else None)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(TMUX is None, reason="tmux is not installed: this test drives the real program in tmux"),
]

BATCHDESK = str(Path(sys.executable).with_name("batchdesk"))
TITLES = ("Jobs", "Resources", "Workers", "Queues", "Alerts & events")


class Tmux:
    """One tmux server on a private socket, so the user's tmux is never touched."""

    def __init__(self, name: str) -> None:
        self.socket = name
        self.session = "ui"

    def run(self, *args: str) -> str:
        return subprocess.run([TMUX, "-L", self.socket, *args], capture_output=True, text=True, check=False,
                              timeout=scaled(30)).stdout

    def start(self, command: str, width: int = 160, height: int = 48) -> None:
        self.run("new-session", "-d", "-s", self.session, "-x", str(width), "-y", str(height), command)

    def resize(self, width: int, height: int) -> None:
        self.run("resize-window", "-t", self.session, "-x", str(width), "-y", str(height))

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", self.session, *keys)

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.session)

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 30.0, what: str = "") -> str:
        """The screen once ``predicate`` holds for it; a timeout shows the last screen."""
        shown = [""]

        def matches() -> str:
            shown[0] = self.screen()
            return shown[0] if predicate(shown[0]) else ""

        try:
            return wait_for(matches, timeout, 0.2, what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the screen was:\n{shown[0]}") from None

    def kill(self) -> None:
        self.run("kill-server")


def test_batchdesk_ui_in_tmux(tmp_path):
    data = tmp_path / "data"
    make_files(tmp_path / "in", 300)  # 2 minutes of work at least: the test quits long before the end
    env = batchdesk_env(BATCHDESK_PLUGINS="fixture_tasks:slow", BATCHDESK_BROKER="embedded", BATCHDESK_WORKERS="1")
    exports = " ".join(f"{key}={shlex.quote(value)}" for key, value in env.items()
                       if key.startswith("BATCHDESK_") or key in ("PYTHONPATH", "PATH", "HOME", "LANG"))
    # COLUMNS/LINES (set in some pytest environments) would pin the app to 80x24 whatever the pane size.
    command = (f"env -u COLUMNS -u LINES {exports} TERM=xterm-256color {shlex.quote(BATCHDESK)} "
               f"--data-dir {shlex.quote(str(data))} ui; echo BATCHDESK-EXITED-$?; sleep 60")
    tmux = Tmux(f"batchdesk-test-{tmp_path.name}")
    tmux.start(command)
    try:
        screen = tmux.wait_for(lambda s: all(f"─ {t} ─" in s for t in TITLES) and "desk: running in this process" in s,
                               timeout=60, what="every panel and a running desk")
        assert "no jobs yet" in screen
        # Another process submits to the desk this UI started (the CLI attaches to it).
        out = subprocess.run([BATCHDESK, "--data-dir", str(data), "submit", str(tmp_path / "in"),
                              "--task", "fixture_tasks:slow", "--opt", "ms=400", "--json"],
                             capture_output=True, text=True, check=False, env=env, timeout=scaled(60))
        assert out.returncode == 0, out.stderr
        job_id = json.loads(out.stdout)["job"]
        def job_row(screen: str) -> str:
            return next((line for line in screen.splitlines() if f" {job_id} in " in line), "")

        # its own row says running (the status line's "desk: running" must not count)
        tmux.wait_for(lambda s: "running" in job_row(s) and "/0/300" in job_row(s), timeout=60,
                      what="the job running in the jobs panel")
        # An 80x24 terminal: the job's row keeps its key columns, the workers their full pids, the footer its keys.
        tmux.resize(80, 24)
        screen = tmux.wait_for(lambda s: len(s.splitlines()[0]) <= 80 and "q Quit" in s.splitlines()[-1],
                               what="the app redrawn at 80x24")
        row = job_row(screen)
        assert "running" in row and "%" in row and "/0/300" in row, screen
        pids = [str(p.pid) for p in psutil.Process(int(json.loads(out.stdout)["desk"])).children()
                if "worker" in " ".join(p.cmdline())]
        assert pids and all(pid in screen for pid in pids), (pids, screen)
        for key in ("q Quit", "? Help", "n New job", "f Search"):
            assert key in screen.splitlines()[-1], screen
        tmux.keys("q")
        screen = tmux.wait_for(lambda s: "Quit anyway?" in s, what="the quit confirmation")
        assert "1 job(s) still running" in screen
        tmux.keys("n")
        tmux.wait_for(lambda s: "Quit anyway?" not in s and "─ Jobs ─" in s, what="the app again")
        tmux.keys("q")
        tmux.wait_for(lambda s: "Quit anyway?" in s, what="the quit confirmation again")
        tmux.keys("y")
        screen = tmux.wait_for(lambda s: "BATCHDESK-EXITED-" in s, timeout=60, what="the program to exit")
        assert "BATCHDESK-EXITED-0" in screen
    finally:
        tmux.kill()
    # The desk went away with the app; the job is unfinished, to resume at the next start.
    info = subprocess.run([BATCHDESK, "--data-dir", str(data), "info", "--json"], capture_output=True, text=True,
                          check=False, env=env, timeout=scaled(60))
    assert json.loads(info.stdout)["desk"] is None
    jobs = subprocess.run([BATCHDESK, "--data-dir", str(data), "jobs", "--json"], capture_output=True, text=True,
                          check=False, env=env, timeout=scaled(60))
    job = next(j for j in json.loads(jobs.stdout) if j["job"] == job_id)
    assert job["status"] in ("queued", "running") and job["done"] < 300
