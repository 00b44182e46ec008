"""The environment for programs we start that are not batchdesk (redis-server, a task's command).

A PyInstaller one-file build points LD_LIBRARY_PATH (and friends) at its unpacked bundle, so an
outside program would load our bundled libssl/libcrypto instead of its own. Restore what the
user had before the bundle started.

Nor do they get batchdesk's own settings: ``BATCHDESK_REDIS_URL`` carries the broker's password,
``BATCHDESK_STORE`` may carry a PostgreSQL one, and ``RQ_REDIS_URL`` is RQ's name for the broker URL.
Every ``BATCHDESK_*`` variable is dropped (a rule with no exceptions to keep up to date); what a
program needs from us (a command's ``BATCHDESK_INPUT`` ...) its caller passes as ``extra``.
"""

from __future__ import annotations

import os
import sys

_LIBRARY_VARS = ("LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH", "LIBPATH")
_OURS_PREFIX = "BATCHDESK_"
_SECRET_VARS = ("RQ_REDIS_URL",)


def external_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """``os.environ`` as the user had it (outside a frozen bundle), without batchdesk's settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OURS_PREFIX) and k not in _SECRET_VARS}
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
