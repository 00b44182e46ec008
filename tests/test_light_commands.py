"""Small commands stay light: what `batchdesk jobs`, `show`, `info`, `submit` and the start of `run` import.

Issue 12 measured `jobs` at 0.69 s and `submit` at 0.82 s of CPU, most of it imports (redis-py alone
0.22 s, pulled in through the config module). Timing asserts are worthless on a shared machine, so this
checks the structure instead: each command, run for real in a process of its own, must not load the
heavy libraries it does not need (the broker client, RQ, the UI, the PostgreSQL driver, the document
libraries), and a bare ``import batchdesk.cli`` loads none of the commands' modules.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import batchdesk_env, make_files

# Libraries no small command needs: the broker client and RQ (only a desk and its workers talk to the
# broker), the desk's embedded broker, the UI, the PostgreSQL driver, the document and PDF libraries.
HEAVY = ("redis", "rq", "fakeredis", "lupa", "textual", "psycopg", "psycopg2", "openpyxl", "pypdf", "pypdfium2",
         "docx", "reportlab", "watchdog")

# Runs the CLI in this process and prints, at exit, every module it loaded.
PROBE = r"""
import atexit, json, sys
atexit.register(lambda: sys.__stderr__.write("\nMODULES " + json.dumps(sorted(sys.modules)) + "\n"))
from batchdesk.cli import main
main(sys.argv[1:], prog_name="batchdesk")
"""


def loaded_by(data: Path, *args: str, code: str = PROBE) -> set[str]:
    """The modules a real `batchdesk --data-dir DATA ARGS` process loaded (it must succeed)."""
    out = subprocess.run([sys.executable, "-c", code, "--data-dir", str(data), *args], capture_output=True,
                         text=True, env=batchdesk_env(BATCHDESK_BROKER="embedded", BATCHDESK_WORKERS="1"),
                         timeout=120)
    assert out.returncode == 0, out.stderr
    line = next(x for x in out.stderr.splitlines() if x.startswith("MODULES "))
    return set(json.loads(line.removeprefix("MODULES ")))


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


@pytest.fixture
def desk_dir(tmp_path):
    """A data dir with one finished job and a background desk running for it (stopped at the end)."""
    data, folder = tmp_path / "data", tmp_path / "in"
    make_files(folder, 3)
    env = batchdesk_env(BATCHDESK_BROKER="embedded", BATCHDESK_WORKERS="1", BATCHDESK_LINGER="120")
    run = subprocess.run([sys.executable, "-m", "batchdesk", "--data-dir", str(data), "run", str(folder), "-q"],
                         capture_output=True, text=True, env=env, timeout=180)
    assert run.returncode == 0, run.stderr
    yield data, folder
    subprocess.run([sys.executable, "-m", "batchdesk", "--data-dir", str(data), "stop"], capture_output=True,
                   env=env, timeout=120)


def test_importing_the_cli_loads_no_command_module_and_nothing_heavy():
    code = "import json, sys, batchdesk.cli; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=batchdesk_env(),
                         timeout=60, check=True)
    modules = set(json.loads(out.stdout))
    assert heavy(modules) == []
    commands = {"batchdesk.cli.jobs", "batchdesk.cli.views", "batchdesk.cli.desk", "batchdesk.cli.watch",
                "batchdesk.cli.search", "batchdesk.cli.service"}
    assert sorted(modules & commands) == []
    assert "rich" not in modules and "psutil" not in modules


@pytest.mark.slow
def test_small_commands_load_nothing_heavy(desk_dir):
    data, folder = desk_dir
    for args in (["jobs"], ["show", "1"], ["info"], ["submit", str(folder), "--all"]):  # --all: its files are unchanged
        assert heavy(loaded_by(data, *args)) == [], args
    # a checksum job is checked against its own task: no other task's module is imported
    others = {"workers.tasks.extract_text", "workers.tasks.statements", "workers.tasks.index", "workers.tasks.command"}
    assert "workers.tasks.checksum" in (submitted := loaded_by(data, "submit", str(folder), "--all"))
    assert sorted(submitted & others) == []
    # the job that `submit` queued on the running desk ends (the desk did the work, not the command)
    jobs = subprocess.run([sys.executable, "-m", "batchdesk", "--data-dir", str(data), "jobs", "--json"],
                          capture_output=True, text=True, env=batchdesk_env(), timeout=60, check=True)
    assert len(json.loads(jobs.stdout)) == 3


@pytest.mark.slow
def test_run_attaching_to_a_running_desk_loads_no_broker_client(desk_dir):
    """`run` only writes the store and waits: with a desk up it needs no redis, rq or UI either."""
    data, folder = desk_dir
    modules = loaded_by(data, "run", str(folder), "--new", "--all", "--json")
    assert heavy(modules) == []


def test_jobs_on_a_fresh_data_dir_loads_nothing_heavy(tmp_path):
    assert heavy(loaded_by(tmp_path / "data", "jobs")) == []


def test_a_headless_desk_starts_its_embedded_broker_without_numpy(tmp_path):
    """fakeredis imports numpy (0.1 s) only for vector-set commands, which no client of the broker sends: a desk
    with one thread loads the broker without it, and numpy still imports afterwards (the index needs it)."""
    probe = """
import sys, tempfile
from pathlib import Path
from batchdesk.broker.modes import start_broker
broker = start_broker("embedded", Path(sys.argv[1]), "pw", None)
client = broker.connection()
client.set("k", "v")
print("numpy loaded:", "numpy" in sys.modules)
import numpy
broker.stop()
"""
    out = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], capture_output=True, text=True,
                         env=batchdesk_env(), timeout=120)
    assert out.returncode == 0, out.stderr
    assert "numpy loaded: False" in out.stdout
