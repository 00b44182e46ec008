"""The managed mode: a real ``valkey-server``/``redis-server`` run as our child, locked down.

Loopback only, a password, an append-only file in a private data dir. It dies with the desk (Linux, see
:mod:`batchdesk.broker.keeper`), and its pid file lets the next start stop one a killed desk left running
(:mod:`batchdesk.broker.leftovers`).
"""

from __future__ import annotations

import contextlib
import functools
import socket
from pathlib import Path
from urllib.parse import quote

from batchdesk import locations
from batchdesk.broker import defaults
from batchdesk.broker.handle import BrokerError, BrokerHandle
from batchdesk.broker.keeper import ServerKeeper, wait_until_up
from batchdesk.broker.leftovers import PID_FILE, reap_leftover, remove_pid_file, write_pid_file

_LOG_FILE = "server.log"  # in its data dir: what the server prints, quoted when it does not start


def start_managed(binary: str, data_dir: Path, password: str) -> BrokerHandle:
    """Run ``binary`` as our child and wait until it answers PING with our password."""
    locations.ensure_private_dir(data_dir)  # its append-only file holds every queued job
    pid_path = data_dir / PID_FILE
    reap_leftover(pid_path, data_dir)
    log_path = data_dir / _LOG_FILE
    attempt = 0
    while True:
        attempt += 1
        port = _free_port()
        with open(log_path, "ab") as log_file:
            log_start = log_file.tell()
            keeper = ServerKeeper(binary, log_file)
        child = keeper.child
        assert child.stdin is not None
        write_pid_file(pid_path, child.pid)  # now, not once it answers: a desk killed while it loads leaves one too
        with contextlib.suppress(BrokenPipeError):  # it died before reading its config: the wait below says why
            child.stdin.write(_config(port, password, data_dir).encode())
            child.stdin.close()
        url = f"redis://:{quote(password, safe='')}@127.0.0.1:{port}/0"
        stop = functools.partial(_stop, keeper, url, pid_path)
        failure = wait_until_up(child, url)
        if failure is None:
            return BrokerHandle("managed", url, stop)
        stop()
        tail = _log_tail(log_path, log_start)
        if "Address already in use" not in tail or attempt == defaults.PORT_ATTEMPTS:
            raise BrokerError(f"{binary} did not start ({failure}); the end of {log_path}:\n{tail}")


def _free_port() -> int:
    """A loopback port nobody listens on now (someone may before the server binds it: hence the attempts)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _config(port: int, password: str, data_dir: Path) -> str:
    """The server's configuration. It goes in on stdin ("-"), so the password never shows in the process list."""
    config = {
        "bind": "127.0.0.1",
        "port": str(port),
        "protected-mode": "yes",
        "requirepass": password,
        "dir": str(data_dir.resolve()),
        "appendonly": "yes",
        "save": "",
        "daemonize": "no",
        "logfile": "",
    }
    return "".join(f"{key} {_quote_config(value)}\n" for key, value in config.items())


def _quote_config(value: str) -> str:
    """A redis.conf argument that survives any character: double-quoted, everything but letters and digits escaped."""
    return '"' + "".join(chr(b) if chr(b).isalnum() and b < 128 else f"\\x{b:02x}" for b in value.encode()) + '"'


def _stop(keeper: ServerKeeper, url: str, pid_path: Path) -> None:
    keeper.stop(url)
    remove_pid_file(pid_path, keeper.child.pid)


def _log_tail(path: Path, start: int) -> str:
    """The last lines the server wrote to its log from ``start`` on."""
    with open(path, "rb") as log:
        log.seek(start)
        return "\n".join(log.read().decode(errors="replace").splitlines()[-defaults.LOG_TAIL_LINES :])
