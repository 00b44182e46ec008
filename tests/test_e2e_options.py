"""Bad task options are refused when the work is submitted, by real `batchdesk` processes: `run`,
`submit` and `watch add` exit 2 with one line naming the option, the value and what is allowed, and
nothing is recorded; a config-file watch with bad options is in error while everything else works."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import batchdesk_env, scaled, wait_for

pytestmark = pytest.mark.slow

BAD_OPTIONS = [
    ("checksum", ["duplicates=maybe"], "option 'duplicates': 'maybe' is not a valid bool; allowed: true/false, yes/no"),
    ("command", ["cmd=true", "shell=perhaps"], "option 'shell': 'perhaps' is not a valid bool"),
    ("extract-text", ["chunk_size=10"], "option 'chunk_size': '10' is too small; allowed: integer >= 50"),
    ("extract-text", ["chunk_overlap=900"], "option 'chunk_overlap': '900' is not allowed: at most chunk_size/2 (500)"),
    ("command", ["cmd=true", "timeout=-5"], "option 'timeout': '-5' is too small; allowed: number > 0"),
    ("command", ["cmd=echo {bogus}"], "option 'cmd': 'echo {bogus}' is not allowed: unknown placeholder {bogus}"),
    ("statements", ["rules=/no/such/rules.toml"],
     "option 'rules': '/no/such/rules.toml' is not allowed: rules file not found"),
    ("extract-text", ["encoding=utf-9"], "option 'encoding': 'utf-9' is not allowed: unknown encoding"),
]


def cli(data: Path, *args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "batchdesk", "--data-dir", str(data), *args],
                          capture_output=True, text=True, env=env or batchdesk_env(BATCHDESK_BROKER="embedded"),
                          timeout=scaled(timeout))


def rows(data: Path, table: str) -> int:
    """Rows in a store table (0 when nothing ever created the store)."""
    store = data / "batchdesk.sqlite3"
    if not store.exists():
        return 0
    con = sqlite3.connect(store)
    try:
        return con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    finally:
        con.close()


def assert_refused(result: subprocess.CompletedProcess, message: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.parametrize("task, opts, message", BAD_OPTIONS, ids=[f"{t}-{o[-1]}" for t, o, _ in BAD_OPTIONS])
def test_run_refuses_bad_options_and_records_no_job(tmp_path, task, opts, message):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("hello")
    args = [a for opt in opts for a in ("--opt", opt)]
    result = cli(tmp_path / "data", "--workers", "1", "run", str(tmp_path / "in"), "--task", task, *args)
    assert_refused(result, message)
    assert rows(tmp_path / "data", "job") == 0 and rows(tmp_path / "data", "item") == 0


@pytest.fixture
def desk_with_config(tmp_path):
    """`serve` with a config file watching a good inbox and one with a bad option value."""
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    config = tmp_path / "config.toml"
    config.write_text(f'[[watches]]\npath = "{good}"\ntask = "checksum"\n\n'
                      f'[[watches]]\npath = "{bad}"\ntask = "extract-text"\noptions = {{ chunk_size = 10 }}\n')
    env = batchdesk_env(BATCHDESK_BROKER="embedded", BATCHDESK_WORKERS="1", BATCHDESK_CONFIG=str(config))
    data = tmp_path / "data"
    proc = subprocess.Popen([sys.executable, "-m", "batchdesk", "--data-dir", str(data), "serve"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: json.loads(cli(data, "info", "--json", env=env).stdout)["desk"], 60, 0.2, "the desk")
        yield data, env, good, bad
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(scaled(60))


def test_a_running_desk_refuses_bad_options_and_keeps_a_bad_config_watch_in_error(tmp_path, desk_with_config):
    data, env, good, bad = desk_with_config
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("hello")
    assert_refused(cli(data, "submit", str(tmp_path / "in"), "--task", "extract-text", "--opt", "chunk_overlap=900",
                       env=env), "option 'chunk_overlap': '900' is not allowed: at most chunk_size/2 (500)")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    assert_refused(cli(data, "watch", "add", str(inbox), "--task", "command", "--opt", "cmd=echo {bogus}", env=env),
                   "option 'cmd': 'echo {bogus}' is not allowed: unknown placeholder {bogus}")
    assert_refused(cli(data, "watch", "add", str(inbox), "--task", "checksum", "--opt", "duplicates=perhaps",
                       env=env), "option 'duplicates': 'perhaps' is not a valid bool")

    def watches() -> dict[str, dict]:
        return {w["path"]: w for w in json.loads(cli(data, "watch", "list", "--json", env=env).stdout)}

    wait_for(lambda: watches()[str(bad)]["status"] == "error", 60, 0.2, "the bad config watch in error")
    error = watches()[str(bad)]["error"]
    assert "option 'chunk_size': 10 is too small; allowed: integer >= 50" in error
    assert set(watches()) == {str(good), str(bad)}  # nothing added by the refused `watch add`
    listed = cli(data, "watch", "list", env=env)
    assert listed.returncode == 0 and "error: option 'chunk_size'" in listed.stdout
    assert cli(data, "jobs", env=env).returncode == 0  # the bad entry breaks no other command
    # the good watch works: a file dropped there is processed
    (good / "a.txt").write_text("dropped")
    wait_for(lambda: watches()[str(good)]["done"] == 1, 60, 0.2, "the good watch to process its file")
    assert watches()[str(good)]["status"] == "active"
    con = sqlite3.connect(data / "batchdesk.sqlite3")
    try:
        source = str((tmp_path / "in").resolve())
        assert con.execute("SELECT COUNT(*) FROM job WHERE source = ?", (source,)).fetchone() == (0,)
    finally:
        con.close()
