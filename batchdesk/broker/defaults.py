"""The broker's modes and tunables in one place, each with what it is for (the desk's own: :mod:`batchdesk.defaults`).

The code reads them as ``defaults.NAME`` when it needs them, so a test can change one with monkeypatch. Redis's own
limits on a request are not tunables: they stay with the parser (:mod:`batchdesk.broker.resp`). The letters refer to
the fixes listed in :mod:`batchdesk.broker.embedded`.
"""

from __future__ import annotations

from batchdesk.defaults import BROKER_MODES

# -- every mode ------------------------------------------------------------------------------------------------
MODES = BROKER_MODES  # what --broker takes (one list, the settings'); external is chosen by giving a URL instead
CONNECT_TIMEOUT = 5.0  # seconds a client of ours (the desk's, or the check of an external URL) has to connect

# -- embedded: the Redis-protocol server inside the desk -----------------------------------------------------------
AUTH_TIMEOUT = 10.0  # seconds a connection may stay without logging in, from when it opened or sent RESET (j)
MAX_CLIENTS = 1024  # connections served at once; at most half the process's open-file limit (l)
LISTEN_BACKLOG = 511  # connections the kernel holds until we accept them: Redis's tcp-backlog (l)
BLOCK_SLICE = 0.1  # seconds a blocking pop waits before it checks that its client is still there (e)
READ_SIZE = 1 << 16  # bytes read from a client's socket at a time
EMBEDDED_STOP_TIMEOUT = 10.0  # seconds stop() waits for the loop to close every connection
CROSS_PROTOCOL_LOG_EVERY = 60.0  # seconds between two "Possible SECURITY ATTACK" warnings, as Redis: no log flood (k)

# -- managed: a redis-server/valkey-server child ---------------------------------------------------------------
MANAGED_START_TIMEOUT = 20.0  # seconds it has to answer PING; replaying a large append-only file takes a while
MANAGED_STOP_TIMEOUT = 10.0  # seconds it (or a leftover) has to exit after SHUTDOWN or SIGTERM, before SIGKILL
MANAGED_PROBE_TIMEOUT = 1.0  # seconds for each PING while it starts, and for the SHUTDOWN that stops it
MANAGED_START_POLL = 0.02  # seconds between two PINGs while it starts
PORT_ATTEMPTS = 3  # starts tried on fresh ports: a free port can be taken between our probe and the server's bind
LOG_TAIL_LINES = 20  # lines of its log quoted in the error when it does not start
