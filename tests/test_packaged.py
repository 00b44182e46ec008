"""The PyInstaller one-file executable, built from batchdesk.spec and run with no Python behind it.

Building takes ~35 s, so these tests run in CI (CI is set) or when BATCHDESK_TEST_PACKAGED=1.
BATCHDESK_PACKAGED_EXE=/path/to/batchdesk tests an executable that is already built instead of
building one into a temp folder with scripts/build_exe.sh. See docs/packaging.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sqlite3
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import psutil
import pytest

from conftest import REPO, batchdesk_env, desk_pid, make_files, scaled, wait_for

# Read at import time: the autouse _hermetic_env fixture removes BATCHDESK_* before each test runs.
ENABLED = os.environ.get("BATCHDESK_TEST_PACKAGED") == "1" or bool(os.environ.get("CI"))
PREBUILT = os.environ.get("BATCHDESK_PACKAGED_EXE")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(1200),  # the first test also pays for the build
    pytest.mark.skipif(not ENABLED, reason="packaged-executable tests build with PyInstaller (~35 s): "
                                           "set BATCHDESK_TEST_PACKAGED=1 to run them (CI runs them)"),
]


@pytest.fixture(scope="session")
def exe(tmp_path_factory) -> Path:
    """The frozen executable: BATCHDESK_PACKAGED_EXE, or a fresh build by scripts/build_exe.sh."""
    if PREBUILT:
        path = Path(PREBUILT).resolve()
        assert path.is_file(), f"BATCHDESK_PACKAGED_EXE={PREBUILT} does not exist"
        return path
    out = tmp_path_factory.mktemp("pyinstaller")
    env = dict(os.environ, PYTHON=sys.executable, DIST_DIR=str(out / "dist"), BUILD_DIR=str(out / "build"))
    build = subprocess.run(["bash", str(REPO / "scripts" / "build_exe.sh")], cwd=REPO, env=env, check=False,
                           capture_output=True, text=True, timeout=scaled(900))
    assert build.returncode == 0, f"build failed:\n{build.stdout[-4000:]}\n{build.stderr[-8000:]}"
    path = out / "dist" / ("batchdesk.exe" if os.name == "nt" else "batchdesk")
    assert path.is_file(), build.stdout[-2000:]
    return path


def frozen_env() -> dict[str, str]:
    """No BATCHDESK_* of the developer's, no user config, and no Python path to lean on."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BATCHDESK_", "PYTHON")) and k != "VIRTUAL_ENV"}
    env["BATCHDESK_CONFIG"] = "/nonexistent/batchdesk.toml"
    env["BATCHDESK_LINGER"] = "0"  # a background desk stops as soon as its job has ended
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if p and not p.startswith(sys.prefix))  # the venv's python is not on PATH
    return env


def run_exe(exe: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env=frozen_env(),
                          timeout=scaled(timeout), cwd=exe.parent, check=False)


def same_file(a: str | None, b: Path) -> bool:
    try:
        return a is not None and os.path.samefile(a, b)
    except OSError:
        return False


def test_frozen_executable_prints_its_version_and_lists_the_built_in_tasks(exe):
    result = run_exe(exe, "--version", timeout=60)
    assert result.returncode == 0, result.stderr
    assert version("batchdesk") in result.stdout

    result = run_exe(exe, "tasks", "--json", timeout=60)
    assert result.returncode == 0, result.stderr
    names = {t["name"] for t in json.loads(result.stdout)}
    assert {"checksum", "extract-text", "statements", "command"} <= names


def test_run_with_frozen_workers_hashes_every_file(exe, tmp_path):
    """The main job, end to end: 2 worker processes of the executable (forked from the desk's worker
    template); and `worker`, the executable re-run as a worker, still serves the desk's queues."""
    files = make_files(tmp_path / "in", 5000, 1, 8192, nested=7)
    data = tmp_path / "data"
    lingering = frozen_env() | {"BATCHDESK_LINGER": "300"}  # its workers still run when the checks read them
    try:
        proc = subprocess.run(
            [str(exe), "--data-dir", str(data), "--broker", "embedded", "--workers", "2",
             "run", str(tmp_path / "in"), "--json"],
            capture_output=True, text=True, env=lingering, cwd=tmp_path, timeout=scaled(300), check=False,
        )
        assert proc.returncode == 0, proc.stderr[-4000:]

        summary = json.loads(proc.stdout)
        assert (summary["total"], summary["done"], summary["failed"], summary["cancelled"], summary["status"]) == (
            len(files), len(files), 0, 0, "done")

        con = sqlite3.connect(data / "batchdesk.sqlite3")
        rows = con.execute("SELECT path, status, result FROM item").fetchall()
        assert len(rows) == len(files)
        for path, status, result in rows:
            assert status == "done", (path, status)
            assert json.loads(result)["sha256"] == hashlib.sha256(files[path]).hexdigest(), path
        assert con.execute("SELECT items_done, items_failed, items_total, status FROM job").fetchone() == (
            len(files), 0, len(files), "done")

        # The workers: two rows, each the pid of a live process of this executable under the lingering desk.
        workers = dict(con.execute("SELECT name, pid FROM workerrow").fetchall())
        assert len(workers) == 2, workers
        desk = psutil.Process(desk_pid(data))
        under_desk = {p.pid for p in desk.children(recursive=True)}
        for name, pid in workers.items():
            assert pid in under_desk, f"worker {name} (pid {pid}) does not run under the desk {desk.pid}"
            program = psutil.Process(pid).exe()
            assert same_file(program, exe), f"worker {name} (pid {pid}) runs {program}, not the frozen {exe}"
        batch_workers = {w for (w,) in con.execute("SELECT DISTINCT worker FROM batch")}
        assert batch_workers and batch_workers <= set(workers), (batch_workers, workers)

        # `worker` (what scale-out and a desk that cannot fork start) runs frozen against the lingering desk.
        burst = run_exe(exe, "--data-dir", str(data), "worker", "--burst", "--name", "frozen-burst", timeout=120)
        assert burst.returncode == 0, burst.stderr[-4000:]
        assert con.execute("SELECT state FROM workerrow WHERE name = 'frozen-burst'").fetchone() == ("stopped",)
    finally:
        stopped = subprocess.run([str(exe), "--data-dir", str(data), "stop"], capture_output=True, text=True,
                                 env=frozen_env(), timeout=scaled(120), cwd=tmp_path, check=False)
    assert stopped.returncode == 0, stopped.stderr[-4000:]

    log_file = data / "logs" / "workers.log"
    log = log_file.read_text(errors="replace") if log_file.exists() else ""
    assert "Traceback" not in log, log[-4000:]


SAMPLES = REPO / "data" / "samples"


@pytest.mark.parametrize("task,folder", [("extract-text", "documents"), ("statements", "statements")])
def test_optional_dependencies_match_the_unfrozen_run(exe, tmp_path, task, folder):
    """PDFium, python-docx and the bundled rules file work frozen: same per-file outcome as from source."""
    source = SAMPLES / folder
    if not source.is_dir() or not any(p.is_file() for p in source.rglob("*")):
        pytest.skip(f"no samples in {source}")

    def outcomes(data: Path) -> dict[str, tuple]:
        con = sqlite3.connect(data / "batchdesk.sqlite3")
        found = {}
        for path, status, result, error in con.execute("SELECT path, status, result, error FROM item"):
            result = json.loads(result) if result else {}
            # Leave out values that name a folder (the bundled rules file lives in the unpack dir).
            kept = {k: v for k, v in result.items() if not (isinstance(v, str) and os.sep in v)}
            found[path] = (status, error, json.dumps(kept, sort_keys=True))
        return found

    args = ["--broker", "embedded", "--workers", "1", "run", str(source), "--task", task, "--json"]
    frozen = subprocess.run([str(exe), "--data-dir", str(tmp_path / "frozen"), *args], capture_output=True,
                            text=True, env=frozen_env(), timeout=scaled(300), cwd=tmp_path, check=False)
    plain = subprocess.run([sys.executable, "-m", "batchdesk", "--data-dir", str(tmp_path / "plain"), *args],
                           capture_output=True, text=True, env=batchdesk_env(), timeout=scaled(300), cwd=REPO,
                           check=False)
    assert frozen.returncode == plain.returncode, (frozen.stderr[-3000:], plain.stderr[-3000:])
    assert outcomes(tmp_path / "frozen") == outcomes(tmp_path / "plain")


@pytest.mark.skipif(os.name != "posix", reason="drives the TUI through a pseudo-terminal")
def test_tui_starts_and_quits(exe, tmp_path):
    """Textual (lazily loaded widgets) and ui/*.tcss are in the bundle: the TUI draws and quits cleanly."""
    import pty
    import select
    import signal

    pid, fd = pty.fork()
    if pid == 0:  # child: become the TUI
        env = frozen_env()
        env.update(TERM="xterm-256color", COLUMNS="120", LINES="40")
        os.execve(str(exe), [str(exe), "--data-dir", str(tmp_path / "data"), "--broker", "embedded", "ui"], env)

    import fcntl
    import struct
    import termios

    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))

    output = bytearray()

    def pump() -> None:
        """Read what the TUI has drawn so far (a short select: this is also the poll interval)."""
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            with contextlib.suppress(OSError):  # the TUI exited and the pty closed
                output.extend(os.read(fd, 65536))

    def drawn() -> bool:
        pump()
        return b"Jobs" in output  # the first panel's title: the bundle is unpacked and the screen laid out

    status: list[int] = []

    def exited() -> bool:
        pump()
        done, code = os.waitpid(pid, os.WNOHANG)
        if done:
            status.append(code)
        return bool(done)

    def screen() -> str:
        return re.sub(rb"\x1b\[[0-9;?]*[ -/]*[@-~]", b"", bytes(output)).decode("utf-8", "replace")

    try:
        wait_for(drawn, 60, 0, "the TUI to draw its first screen")
        os.write(fd, b"\x11")  # Ctrl+Q
        wait_for(exited, 20, 0, "the TUI to quit on Ctrl+Q")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; screen:\n{screen()[-3000:]}") from None
    finally:
        if not status:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    assert "Traceback" not in screen(), screen()[-4000:]
    assert os.waitstatus_to_exitcode(status[0]) == 0, screen()[-3000:]
    assert len(output) > 1000, "the TUI drew next to nothing"
