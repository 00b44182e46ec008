"""The embedded broker's INFO reply (b): the sections a client reads (rq, ``rq info``), shaped as Redis's."""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass

import psutil

from batchdesk.broker.fakeredis_internals import FAKEREDIS_VERSION, REDIS_VERSION, FakeServer

_ALL = {"all", "default", "everything"}  # the section names that ask for every section


@dataclass(frozen=True)
class ServerFacts:
    """What INFO tells about the broker itself, as its loop knows it at the time of the request."""

    run_id: str
    port: int
    started: float  # time.time() when it started
    clients: int
    max_clients: int
    blocked: int


def info_text(sections: list[bytes], fake_server: FakeServer, facts: ServerFacts) -> str:
    """The INFO reply for the ``sections`` asked for (none: the default ones)."""
    wanted = {s.decode(errors="replace").lower() for s in sections} or {"default"}
    show_all = bool(wanted & _ALL)
    sections_text = {
        "server": _server(facts),
        "clients": [
            f"connected_clients:{facts.clients}",
            f"maxclients:{facts.max_clients}",
            f"blocked_clients:{facts.blocked}",
        ],
        "memory": _memory(),
        "persistence": ["loading:0", "aof_enabled:0", "rdb_bgsave_in_progress:0"],
        "replication": ["role:master", "connected_slaves:0"],
        "keyspace": _keyspace(fake_server),
    }
    return "\r\n".join(
        f"# {name.capitalize()}\r\n" + "".join(line + "\r\n" for line in lines)
        for name, lines in sections_text.items()
        if show_all or name in wanted
    )


def _server(facts: ServerFacts) -> list[str]:
    uptime = int(time.time() - facts.started)
    return [
        f"redis_version:{'.'.join(map(str, REDIS_VERSION))}",
        "redis_mode:standalone",
        f"os:{platform.system()} {platform.release()} {platform.machine()}",
        "arch_bits:64",
        f"process_id:{os.getpid()}",
        f"run_id:{facts.run_id}",
        f"tcp_port:{facts.port}",
        f"uptime_in_seconds:{uptime}",
        f"uptime_in_days:{uptime // 86400}",
        f"fakeredis_version:{FAKEREDIS_VERSION}",
    ]


def _memory() -> list[str]:
    rss = psutil.Process().memory_info().rss
    return [
        f"used_memory:{rss}",
        f"used_memory_human:{rss / 2**20:.2f}M",
        f"used_memory_rss:{rss}",
        "maxmemory:0",
        "maxmemory_policy:noeviction",
    ]


def _keyspace(fake_server: FakeServer) -> list[str]:
    with fake_server.lock:
        dbs = {n: db for n, db in fake_server.dbs.items() if len(db)}
        return [
            f"db{n}:keys={len(db)},expires={sum(db[k].expireat is not None for k in list(db))},avg_ttl=0"
            for n, db in sorted(dbs.items())
        ]
