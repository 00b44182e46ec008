"""Paths from items cannot escape the job's folder; outside programs don't get the frozen bundle's libraries."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from workers.environment import external_env
from workers.registry import ItemError
from workers.runner import _PathGuard


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "ok.txt").write_text("ok")
    (tmp_path / "secret.txt").write_text("secret")
    os.symlink(tmp_path / "secret.txt", root / "leak.txt")
    os.symlink(tmp_path, root / "escape")
    os.symlink(root / "sub" / "ok.txt", root / "alias.txt")
    return root


def test_plain_and_inside_symlink_paths_resolve(root):
    guard = _PathGuard(root)
    assert Path(guard.resolve("sub/ok.txt")).read_text() == "ok"
    assert Path(guard.resolve("alias.txt", link=True)).read_text() == "ok"


@pytest.mark.parametrize("rel", ["../secret.txt", "sub/../../secret.txt", "/etc/passwd", "leak.txt",
                                 "escape/secret.txt"])
def test_escaping_paths_are_refused(root, rel):
    from batchdesk.jobs.scan import scan_folder

    # An item recorded as a symlink is re-checked: where it leads may have changed since the scan.
    link = rel in scan_folder(root, hidden=True).links or rel == "leak.txt"
    with pytest.raises(ItemError, match="refused path"):
        _PathGuard(root).resolve(rel, link)


def test_scan_flags_inside_symlinks(root):
    from batchdesk.jobs.scan import scan_folder

    assert scan_folder(root).links == {"alias.txt"}


def test_external_env_restores_library_path_when_frozen(monkeypatch):
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setenv("LD_LIBRARY_PATH", "/tmp/_MEI123")
    monkeypatch.setenv("LD_LIBRARY_PATH_ORIG", "/usr/local/lib")
    monkeypatch.setenv("_PYI_APPLICATION_HOME_DIR", "/tmp/_MEI123")
    env = external_env({"X": "1"})
    assert env["LD_LIBRARY_PATH"] == "/usr/local/lib" and env["X"] == "1"
    assert not any(k.startswith("_PYI_") for k in env) and "LD_LIBRARY_PATH_ORIG" not in env


def test_external_env_unchanged_from_source(monkeypatch):
    monkeypatch.delattr(sys, "frozen", raising=False)
    monkeypatch.setenv("LD_LIBRARY_PATH", "/opt/lib")
    assert external_env()["LD_LIBRARY_PATH"] == "/opt/lib"


def test_data_dir_and_broker_password_are_private(settings):
    import stat

    from batchdesk.desk.desk import Desk
    from batchdesk.locations import broker_password_path, desk_info_path

    desk = Desk(settings).start()
    try:
        assert stat.S_IMODE(settings.data_dir.stat().st_mode) == 0o700
        for path in (broker_password_path(settings.data_dir), desk_info_path(settings.data_dir)):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert desk.broker.url.startswith("redis://:") and "@127.0.0.1:" in desk.broker.url
    finally:
        desk.stop()


def test_external_env_carries_no_batchdesk_secret(monkeypatch):
    """Programs we start (a task's command, redis-server) are not batchdesk: none of its settings, which may
    hold the broker's or the store's password, reach them; the per-item variables are added by the caller."""
    monkeypatch.setenv("BATCHDESK_REDIS_URL", "redis://:pw-broker@127.0.0.1:6379/0")
    monkeypatch.setenv("BATCHDESK_STORE", "postgresql://bd:pw-store@db/batchdesk")
    monkeypatch.setenv("BATCHDESK_PLUGINS", "mine:task")
    monkeypatch.setenv("RQ_REDIS_URL", "redis://:pw-rq@127.0.0.1:6379/0")
    monkeypatch.setenv("HOME_GROWN", "kept")
    env = external_env({"BATCHDESK_INPUT": "/in/a.txt"})
    assert not any("pw-" in value for value in env.values())
    assert [k for k in env if k.startswith("BATCHDESK_")] == ["BATCHDESK_INPUT"]
    assert "RQ_REDIS_URL" not in env and env["HOME_GROWN"] == "kept"
