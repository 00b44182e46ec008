"""The environment for programs we start that are not batchdesk (redis-server, a task's command).

A PyInstaller one-file build points LD_LIBRARY_PATH (and friends) at its unpacked bundle, so an
outside program would load our bundled libssl/libcrypto instead of its own. Restore what the
user had before the bundle started.
"""

from __future__ import annotations

import os
import sys

_LIBRARY_VARS = ("LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH", "LIBPATH")


def external_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """``os.environ`` as the user had it (outside a frozen bundle), plus ``extra``."""
    env = dict(os.environ)
    if getattr(sys, "frozen", False):
        for var in _LIBRARY_VARS:
            original = env.pop(var + "_ORIG", None)
            if original is None:
                env.pop(var, None)
            else:
                env[var] = original
        for key in [k for k in env if k.startswith("_PYI_")]:
            del env[key]
    env.update(extra or {})
    return env
