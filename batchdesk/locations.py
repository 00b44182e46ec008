"""Where batchdesk keeps things. Every path the program uses is derived here."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs

APP = "batchdesk"


def default_data_dir() -> Path:
    """The per-user data folder (XDG on Linux, Application Support on macOS, AppData on Windows)."""
    return Path(platformdirs.user_data_dir(APP))


def default_config_file() -> Path:
    """The per-user config file, read when neither --config nor BATCHDESK_CONFIG names one."""
    return Path(platformdirs.user_config_dir(APP)) / "config.toml"


def store_path(data_dir: Path) -> Path:
    """The SQLite store of a data dir (when no --store names another)."""
    return data_dir / "batchdesk.sqlite3"


def desk_lock_path(data_dir: Path) -> Path:
    """The lock file a desk holds for its whole life: one desk per data dir."""
    return data_dir / "desk.lock"


def desk_info_path(data_dir: Path) -> Path:
    """Where the running desk says where its broker is (``desk.json``)."""
    return data_dir / "desk.json"


def broker_password_path(data_dir: Path) -> Path:
    """The broker password file (0600), made once per data dir."""
    return data_dir / "broker.password"


def broker_run_dir(data_dir: Path) -> Path:
    """Where a managed or embedded broker keeps its files."""
    return data_dir / "broker"


def outputs_dir(data_dir: Path) -> Path:
    """Where jobs put their outputs unless --output names a folder."""
    return data_dir / "outputs"


def logs_dir(data_dir: Path) -> Path:
    """Where the desk and its workers log (a background desk and workers have no terminal)."""
    return data_dir / "logs"


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (mode 0700: it holds the broker password and everyone's file lists)."""
    path.mkdir(parents=True, exist_ok=True)
    if os.name == "posix":
        os.chmod(path, 0o700)
    return path


def self_command() -> list[str]:
    """The argv prefix that re-runs this program: the frozen executable itself, or python -m batchdesk."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    return [sys.executable, "-m", "batchdesk"]
