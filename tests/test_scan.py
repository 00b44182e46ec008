"""Scanning folders: filters, dotfiles, symlinks, odd names and clear errors."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest

from batchdesk.jobs.scan import ScanError, scan_folder
from conftest import batchdesk_env, scaled

LOOPS = ("a", "b", "self")


def make_loops(folder) -> None:
    """``a -> b``, ``b -> a`` and ``self -> self`` beside one normal file."""
    folder.mkdir(exist_ok=True)
    (folder / "normal.txt").write_text("fine")
    os.symlink("b", folder / "a")
    os.symlink("a", folder / "b")
    os.symlink("self", folder / "self")


def test_nested_unicode_spaces_zero_byte(tmp_path):
    (tmp_path / "a b").mkdir()
    (tmp_path / "a b" / "résumé ü.txt").write_text("hé")
    (tmp_path / "deep" / "er").mkdir(parents=True)
    (tmp_path / "deep" / "er" / "empty.bin").write_bytes(b"")
    (tmp_path / ".hidden").write_text("x")
    result = scan_folder(tmp_path)
    assert sorted(rel for rel, _, _ in result.files) == ["a b/résumé ü.txt", "deep/er/empty.bin"]
    assert {rel: size for rel, size, _ in result.files}["deep/er/empty.bin"] == 0
    assert result.skipped == 1
    assert len(scan_folder(tmp_path, hidden=True).files) == 3


def test_include_and_exclude_globs_filter_relative_paths(tmp_path):
    for name in ("a.pdf", "b.csv", "sub/c.pdf", "sub/d.tmp"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(name)
    files = lambda **kw: sorted(rel for rel, _, _ in scan_folder(tmp_path, **kw).files)  # noqa: E731
    assert files(include=("*.pdf",)) == ["a.pdf", "sub/c.pdf"]
    assert files(exclude=("sub/*",)) == ["a.pdf", "b.csv"]


def test_symlink_out_of_root_is_skipped_inside_is_kept(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    root = tmp_path / "root"
    root.mkdir()
    (root / "real.txt").write_text("ok")
    os.symlink(outside, root / "leak.txt")
    os.symlink(root / "real.txt", root / "alias.txt")
    os.symlink(tmp_path, root / "loop")
    result = scan_folder(root)
    assert sorted(rel for rel, _, _ in result.files) == ["alias.txt", "real.txt"]
    assert any("leak.txt" in w for w in result.warnings)


def test_symlink_loops_are_skipped_with_a_warning(tmp_path):
    make_loops(tmp_path)
    os.symlink("missing", tmp_path / "dangling")
    result = scan_folder(tmp_path)
    assert [rel for rel, _, _ in result.files] == ["normal.txt"]
    assert sorted(result.warnings) == sorted(
        [f"skipped symlink {name}: a symlink loop" for name in LOOPS]
        + ["skipped symlink dangling: it points outside the folder or not to a file"])
    assert result.skipped == 4


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_or_a_socket_is_skipped_with_a_warning(tmp_path):
    """Reading a named pipe would block a worker for good; a socket has nothing to read: neither becomes an item,
    and the user is told, not left to wonder why the count is one short."""
    import socket

    (tmp_path / "a.txt").write_text("text")
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "sub").mkdir()
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / "sub" / "sock"))
    try:
        result = scan_folder(tmp_path)
    finally:
        server.close()
    assert [rel for rel, _, _ in result.files] == ["a.txt"]
    assert sorted(result.warnings) == [
        "skipped pipe: not a regular file (a named pipe, a socket or a device)",
        "skipped sub/sock: not a regular file (a named pipe, a socket or a device)"]
    assert result.skipped == 2


@pytest.mark.slow
def test_run_on_a_folder_with_symlink_loops(tmp_path):
    make_loops(tmp_path / "in")
    proc = subprocess.run(
        [sys.executable, "-m", "batchdesk", "--data-dir", str(tmp_path / "data"), "--broker", "embedded",
         "--workers", "1", "run", str(tmp_path / "in"), "--quiet"],
        capture_output=True, text=True, env=batchdesk_env(), timeout=scaled(240),
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    for name in LOOPS:
        assert f"warning: skipped symlink {name}: a symlink loop" in proc.stderr, proc.stderr
    rows = sqlite3.connect(tmp_path / "data" / "batchdesk.sqlite3").execute("SELECT path, status FROM item").fetchall()
    assert rows == [("normal.txt", "done")]


@pytest.mark.parametrize("setup,message", [
    (lambda p: p / "missing", "folder not found"),
    (lambda p: (p / "f.txt").write_text("x") and p / "f.txt", "not a folder"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "no files to process"),
])
def test_missing_file_or_empty_folder_is_a_clear_scan_error(tmp_path, setup, message):
    with pytest.raises(ScanError, match=message):
        scan_folder(setup(tmp_path))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads everything; permission errors cannot be provoked")
def test_unreadable_folder_is_a_permission_denied_scan_error(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "x").write_text("x")
    locked.chmod(0)
    try:
        with pytest.raises(ScanError, match="permission denied"):
            scan_folder(locked)
    finally:
        locked.chmod(0o700)
