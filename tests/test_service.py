"""`batchdesk service install|remove|status` in a fake home, with a fake systemctl that records what it is asked
(the real user's systemd is never touched)."""

from __future__ import annotations

import json
import os
import plistlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from batchdesk.cli.service import user_service
from conftest import batchdesk_env, scaled

FAKE_SYSTEMCTL = """#!/bin/sh
echo "$*" >> "{log}"
if [ "$2" = "is-active" ]; then echo active; fi
if [ -n "$FAIL_ON" ] && [ "$2" = "$FAIL_ON" ]; then echo "Failed to connect to bus: No medium found" >&2; exit 1; fi
"""


@pytest.fixture
def home(tmp_path):
    """A fake HOME (and XDG_CONFIG_HOME inside it), and a PATH holding only the fake systemctl."""
    home = tmp_path / "home with space"
    (home / ".config").mkdir(parents=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    systemctl = bin_dir / "systemctl"
    systemctl.write_text(FAKE_SYSTEMCTL.format(log=tmp_path / "systemctl.log"))
    systemctl.chmod(0o755)
    return home


def service(tmp_path, home, *args, path=None, config=(), **extra):
    """`batchdesk --data-dir DATA [--config FILE] service ARGS` with the user's own config file (none here)."""
    env = batchdesk_env(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
                        PATH=path if path is not None else str(tmp_path / "bin"), **extra)
    del env["BATCHDESK_CONFIG"]
    return subprocess.run([sys.executable, "-m", "batchdesk", "--data-dir", str(tmp_path / "da%z $dir"), *config,
                           "service", *args], capture_output=True, text=True, env=env, timeout=scaled(60))


def calls(tmp_path):
    log = tmp_path / "systemctl.log"
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="systemd user units are Linux's")
def test_install_writes_the_unit_enables_it_and_remove_takes_it_away(tmp_path, home):
    unit = home / ".config" / "systemd" / "user" / "batchdesk.service"
    data = tmp_path / "da%z $dir"
    result = service(tmp_path, home, "install")
    assert result.returncode == 0, result.stderr
    text = unit.read_text()
    exec_start = f'ExecStart="{sys.executable}" "-m" "batchdesk" "--data-dir" "{tmp_path}/da%%z $$dir" "serve"'
    assert exec_start in text.splitlines()
    assert f"WorkingDirectory={tmp_path}/da%%z $dir" in text.splitlines()
    assert f'Environment="PATH={tmp_path / "bin"}"' in text.splitlines()
    assert "WantedBy=default.target" in text and "Restart=on-failure" in text
    assert calls(tmp_path) == ["--user daemon-reload", "--user enable --now batchdesk.service"]
    assert data.is_dir() and (data / "logs").is_dir()
    if shutil.which("systemd-analyze"):  # systemd's own reading of the unit, where it is installed
        check = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True,
                               timeout=scaled(60))
        assert check.returncode == 0 or "batchdesk.service:" not in check.stderr, check.stderr

    state = json.loads(service(tmp_path, home, "status", "--json").stdout)
    assert state == {"installed": True, "path": str(unit), "manager": "systemctl", "state": "active"}

    removed = service(tmp_path, home, "remove")
    assert removed.returncode == 0, removed.stderr
    assert not unit.exists() and f"removed {unit}" in removed.stdout
    assert calls(tmp_path)[2:] == ["--user is-active batchdesk.service", "--user disable --now batchdesk.service",
                                   "--user daemon-reload"]
    again = service(tmp_path, home, "remove")
    assert again.returncode == 0 and "no batchdesk service is installed" in again.stdout
    assert "not installed" in service(tmp_path, home, "status").stdout


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="systemd user units are Linux's")
def test_without_systemctl_it_says_what_to_run_and_a_failing_one_is_exit_1(tmp_path, home):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = service(tmp_path, home, "install", path=str(empty))
    assert result.returncode == 0, result.stderr
    assert ("systemctl not found; to start it, run: systemctl --user daemon-reload && "
            "systemctl --user enable --now batchdesk.service") in result.stdout
    assert (home / ".config" / "systemd" / "user" / "batchdesk.service").exists()

    failing = service(tmp_path, home, "install", FAIL_ON="enable", config=("--config", str(tmp_path / "my.toml")))
    assert failing.returncode == 1
    assert "`systemctl --user enable --now batchdesk.service` failed: Failed to connect to bus" in failing.stderr
    assert "updated" in failing.stdout  # the file is there: running the command by hand finishes the job
    unit = (home / ".config" / "systemd" / "user" / "batchdesk.service").read_text()
    assert f'"--config" "{tmp_path}/my.toml" "serve"' in unit, "a config file named on the command line is kept"


def test_the_launchd_agent_for_macos(tmp_path):
    argv = ["/Applications/batchdesk", "--data-dir", "/Users/me/data", "serve"]
    agent = user_service("darwin", Path("/Users/me"), {"PATH": "/usr/bin:/opt/homebrew/bin"}, argv,
                         Path("/Users/me/data"))
    assert agent.path == Path("/Users/me/Library/LaunchAgents/batchdesk.serve.plist")
    plist = plistlib.loads(agent.text)
    assert plist["ProgramArguments"] == argv and plist["RunAtLoad"] is True
    assert plist["KeepAlive"] == {"SuccessfulExit": False}
    assert plist["EnvironmentVariables"] == {"PATH": "/usr/bin:/opt/homebrew/bin"}
    assert plist["StandardErrorPath"] == "/Users/me/data/logs/serve.log"
    assert agent.start == (("launchctl", "bootstrap", f"gui/{os.getuid()}", str(agent.path)),)
    assert agent.stop == (("launchctl", "bootout", f"gui/{os.getuid()}/batchdesk.serve"),)


def test_no_user_service_on_other_platforms():
    from batchdesk.errors import BatchdeskError

    with pytest.raises(BatchdeskError, match="no user services on win32"):
        user_service("win32", Path("C:/Users/me"), {}, ["batchdesk.exe", "serve"], Path("C:/data"))
