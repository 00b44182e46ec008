"""A Redis-protocol server inside the desk process, for machines without a Redis binary.

It is fakeredis' ``TcpFakeServer`` (fakeredis 2.40) with its request handler taken over, because as shipped it
cannot host a stock ``rq worker`` (rq 3.0, redis-py 8.1). Each fix below is server-side; clients stay stock:

(a) CLIENT LIST / CLIENT INFO showed ``addr``/``laddr`` as a Python tuple repr (``('127.0.0.1', 5000)``).
    redis-py's ``client_info()`` then raises ValueError, which kills a worker at start. We send ``ip:port``.
(b) No INFO. rq reads ``redis_version`` from it (>= 6.2 picks BLMOVE dequeues) and ``rq info`` calls it. We answer
    the sections a client reads: server, clients, memory, persistence, replication, keyspace.
(c) Any error reply closed the connection, so a worker that hit one error looped reconnecting. Errors are now
    ordinary replies; only a malformed request (a protocol error, as in Redis) closes the connection.
(d) No TCP_NODELAY on accepted sockets: with replies written piecemeal, Nagle plus delayed ACKs stalled every
    pipeline round trip by ~44 ms. We set it, and write each batch of pipelined replies in one send.
(e) BLMOVE (rq's single-queue dequeue) returned nil at once when the source list did not exist, so an idle worker
    spun a core. The other blocking pops did block, but inside the handler thread, where a client that went away
    stayed blocked and could still pop the next job into a dead socket (the pool kills idle workers). Now every
    blocking list/zset pop waits in slices of ``_BLOCK_SLICE`` seconds (fakeredis blocks within a slice and is woken
    by a push; BLMOVE runs as LMOVE and waits on the database's change callback); between slices the handler checks
    that its client is still there and that the server is not stopping.
(f) ``requirepass`` was not enforced: PING answered without AUTH. The broker takes a password and refuses every
    command but AUTH and HELLO ... AUTH (what redis-py 8, speaking RESP3, sends) with ``-NOAUTH`` until one of them
    gives the right password; a wrong one gets ``-WRONGPASS``. RESET logs the connection out, as in Redis.
(g) No TOUCH. It is run as EXISTS, which counts existing keys the same way (fakeredis keeps no access times).
(h) CLIENT KILL only marked the victim's fake socket: its TCP connection stayed open and, if idle (a worker's
    pub/sub listener), never learnt it had been dropped from its channels. The victim's connection is now closed,
    as Redis does, so the client reconnects and resubscribes.

The guard below fails at import, with the fakeredis version in the message, if the internals this builds on are
gone; ``batchdesk.broker`` turns that into an error telling the user to use a managed broker instead.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import os
import platform
import select
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import psutil
import redis

try:
    import fakeredis
    import lupa  # noqa: F401  (RQ runs Lua scripts; fakeredis runs them with lupa)
    from fakeredis._clients._tcp_server import TCPFakeRequestHandler, TcpFakeServer, encode_reply
    from fakeredis._core._database import Database
    from fakeredis._socket._base import BaseFakeSocket
    from fakeredis._typing import RaiseErrorTypes
except ImportError as exc:
    raise ImportError(f"the embedded broker needs fakeredis[lua] 2.40 (fakeredis[lua]>=2.40,<2.41): {exc}") from exc
_missing = [
    f"{owner.__name__}.{name}"
    for owner, name in [
        (TCPFakeRequestHandler, "protocol_version"),
        (TCPFakeRequestHandler, "setup"),
        (TCPFakeRequestHandler, "finish"),
        (Database, "add_change_callback"),
        (Database, "remove_change_callback"),
        (BaseFakeSocket, "_process_command"),
    ]
    if not hasattr(owner, name)
]
if _missing:
    raise ImportError(
        f"fakeredis {fakeredis.__version__} lacks {', '.join(_missing)}, which the embedded broker builds on "
        "(checked against 2.40): install fakeredis[lua]>=2.40,<2.41"
    )

REDIS_VERSION = "7.2.0"
_FAKE_VERSION = (7, 2)
_POLL = 0.05  # how often an idle connection looks for pub/sub pushes and for the server stopping
_BLOCK_SLICE = 0.1  # longest stretch a blocking command waits without checking that its client is still there

_NOAUTH = b"-NOAUTH Authentication required.\r\n"
_HELLO_NOAUTH = (
    b"-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> "
    b"AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version "
    b"at the same time\r\n"
)
_WRONGPASS = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
_AUTH_ARITY = b"-ERR wrong number of arguments for 'auth' command\r\n"
# Where each blocking pop keeps its timeout.
_TIMEOUT_ARG = {
    b"blpop": -1,
    b"brpop": -1,
    b"brpoplpush": -1,
    b"blmove": -1,
    b"bzpopmin": -1,
    b"bzpopmax": -1,
    b"blmpop": 1,
    b"bzmpop": 1,
}


class _ProtocolError(Exception):
    pass


class _ClientGone(Exception):
    pass


def _parse_command(buf: bytearray, pos: int) -> tuple[list[bytes], int] | None:
    """One RESP array of bulk strings from ``buf[pos:]``: (fields, end) or None while it is incomplete."""
    fields: list[bytes] = []
    count: int | None = None
    try:
        while count is None or len(fields) < count:
            end = buf.find(b"\r\n", pos)
            if end < 0:
                return None
            marker, number = buf[pos : pos + 1], int(buf[pos + 1 : end])
            if count is None:
                if marker != b"*":
                    raise _ProtocolError("expected '*'")
                count = number
            else:
                if marker != b"$" or number < 0:
                    raise _ProtocolError("expected '$'")
                if len(buf) < end + 2 + number + 2:
                    return None
                fields.append(bytes(buf[end + 2 : end + 2 + number]))
                end += number + 2
            pos = end + 2
    except ValueError as exc:
        raise _ProtocolError("invalid length") from exc
    return fields, pos


def _hostport(address: tuple[Any, ...]) -> str:
    return f"{address[0]}:{address[1]}"


class _Handler(TCPFakeRequestHandler):
    """One client connection: parses its commands, applies fixes (a)-(h) and hands the rest to fakeredis."""

    server: _Server
    disable_nagle_algorithm = True  # StreamRequestHandler.setup() then sets TCP_NODELAY  (d)

    def setup(self) -> None:
        super().setup()
        self.connection.setblocking(True)  # the stock handler made it non-blocking; we select() before reading
        info = self.current_client._client_info  # read when the fake socket is created, which is later  (a)
        info["addr"] = _hostport(self.connection.getpeername())
        info["laddr"] = _hostport(self.connection.getsockname())
        self.authenticated = False
        self.server.connections.add(self.connection)

    def finish(self) -> None:
        self.server.connections.discard(self.connection)
        super().finish()

    def handle(self) -> None:
        buf = bytearray()
        stopping = self.server._shutdown_event
        try:
            while not stopping.is_set():
                self._send(b"".join(self._replies()))  # pub/sub messages other clients published
                if self.current_client.get_socket()._killed:  # by CLIENT KILL: close, as Redis does
                    return
                if not select.select([self.connection], [], [], _POLL)[0]:
                    continue
                chunk = self.connection.recv(1 << 16)
                if not chunk:
                    return
                buf += chunk
                out, pos = bytearray(), 0
                try:
                    while (parsed := _parse_command(buf, pos)) is not None:
                        fields, pos = parsed
                        if fields:
                            out += self._execute(fields)
                except _ProtocolError as exc:
                    self._send(bytes(out) + f"-ERR Protocol error: {exc}\r\n".encode())
                    return
                del buf[:pos]
                self._send(bytes(out))
        except (_ClientGone, OSError, redis.ConnectionError):  # the last: CLIENT KILL while we were busy
            return

    def _send(self, data: bytes) -> None:
        if data:
            self.connection.sendall(data)

    def _replies(self) -> Iterator[bytes]:
        """Encode whatever fakeredis has queued for this client, errors included (c)."""
        while self.current_client.can_read():
            try:
                value = self.current_client.read_response()
            except RaiseErrorTypes as exc:
                value = exc
            yield encode_reply(value, self.protocol_version)

    def _forward(self, fields: list[bytes]) -> bytes:
        """Run one parsed command in fakeredis. It goes straight to the fake socket's command step:
        encoding it back to RESP for fakeredis to parse again cost a fifth of the broker's time."""
        sock = self.current_client.get_socket()
        if sock._killed or not sock._server.connected:  # what the fake socket's sendall() would refuse
            raise _ClientGone
        sock._process_command(fields)
        return b"".join(self._replies())

    def _execute(self, fields: list[bytes]) -> bytes:
        name = fields[0].lower()
        if name == b"auth":
            return self._auth(fields[1:])
        if name == b"hello":
            return self._hello(fields)
        if not self.authenticated:
            return _NOAUTH
        if name == b"info":
            return encode_reply(self.server.info(fields[1:]), self.protocol_version)
        if name == b"touch":
            return self._forward([b"EXISTS", *fields[1:]])
        if name in _TIMEOUT_ARG:
            return self._block(fields, _TIMEOUT_ARG[name])
        reply = self._forward(fields)
        if name == b"reset":
            self.authenticated = False
        return reply

    def _auth(self, args: list[bytes]) -> bytes:
        if len(args) not in (1, 2):
            return _AUTH_ARITY
        if not self._password_ok(args):
            return _WRONGPASS
        self.authenticated = True
        return b"+OK\r\n"

    def _password_ok(self, args: list[bytes]) -> bool:
        """``[password]`` or ``[username, password]``; the broker has one user, ``default``."""
        user_ok = len(args) == 1 or args[0] == b"default"
        return hmac.compare_digest(args[-1], self.server.password) and user_ok

    def _hello(self, fields: list[bytes]) -> bytes:
        """HELLO [protover [AUTH user pass] [SETNAME name]]: check AUTH here, let fakeredis do the rest."""
        lowered = [f.lower() for f in fields]
        if b"auth" in lowered[2:]:
            i = lowered.index(b"auth", 2)
            if i + 2 >= len(fields):
                return b"-ERR Syntax error in HELLO option 'auth'\r\n"
            if not self._password_ok(fields[i + 1 : i + 3]):
                return _WRONGPASS
            self.authenticated = True
            fields = fields[:i] + fields[i + 3 :]
        if not self.authenticated:
            return _HELLO_NOAUTH
        return self._forward(fields)

    def _block(self, fields: list[bytes], timeout_arg: int) -> bytes:
        """Run a blocking pop in slices, so a client that left or a stopping server ends the wait (e)."""
        try:
            timeout = float(fields[timeout_arg])
        except (ValueError, IndexError):
            timeout = -1.0
        if not 0 <= timeout < float("inf") or (fields[0].lower() == b"blmove" and len(fields) != 6):
            return self._forward(fields)  # fakeredis words the error
        deadline = time.monotonic() + timeout if timeout else None
        polled = fields[0].lower() == b"blmove"  # fakeredis' BLMOVE never blocks: run LMOVE, wait for a change
        fields = [b"LMOVE", *fields[1:5]] if polled else list(fields)
        with self._blocked() as changed:
            while True:
                wait = _BLOCK_SLICE if deadline is None else min(_BLOCK_SLICE, deadline - time.monotonic())
                if wait < 0.001:  # "0.000" would mean "forever"
                    return encode_reply(None, self.protocol_version)
                changed.clear()
                if not polled:
                    fields[timeout_arg] = b"%.3f" % wait
                reply = self._forward(fields)
                if reply not in (b"$-1\r\n", b"_\r\n", b"*-1\r\n"):
                    return reply  # a value, an error, or QUEUED inside MULTI
                if self.server._shutdown_event.is_set() or self._client_left():
                    raise _ClientGone
                if polled:
                    changed.wait(wait)

    @contextlib.contextmanager
    def _blocked(self) -> Iterator[threading.Event]:
        """Count this client as blocked; yield an event set whenever a key in its database changes.

        Change callbacks run under the server lock, so they are added and removed under it too.
        """
        changed = threading.Event()
        database = self.current_client.get_socket()._db
        with self.server.fake_server.lock:
            database.add_change_callback(changed.set)
        self.server.blocked.add(self)
        try:
            yield changed
        finally:
            self.server.blocked.discard(self)
            with self.server.fake_server.lock:
                database.remove_change_callback(changed.set)

    def _client_left(self) -> bool:
        if not select.select([self.connection], [], [], 0)[0]:
            return False
        try:
            return bool(self.connection.recv(1, socket.MSG_PEEK) == b"")
        except OSError:
            return True


class _Server(TcpFakeServer):
    """TcpFakeServer with our handler, a password, daemon handler threads and a record of open connections."""

    def __init__(self, address: tuple[str, int], password: str) -> None:
        super().__init__(address, server_version=_FAKE_VERSION)
        self.RequestHandlerClass = _Handler
        self.daemon_threads = True  # a handler stuck in a long fakeredis wait must not hold up stop() or exit
        self.password = password.encode()
        self.connections: set[socket.socket] = set()
        self.blocked: set[_Handler] = set()
        self.started = time.time()
        self.run_id = os.urandom(20).hex()

    def server_bind(self) -> None:
        if os.name == "nt":  # there SO_REUSEADDR would let another process bind our port too
            self.allow_reuse_address = False
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)  # type: ignore[attr-defined]
        super().server_bind()

    def info(self, sections: list[bytes]) -> str:
        """A Redis-shaped INFO reply (b)."""
        wanted = {s.decode(errors="replace").lower() for s in sections} or {"default"}
        show_all = bool(wanted & {"all", "default", "everything"})
        rss = psutil.Process().memory_info().rss
        uptime = int(time.time() - self.started)
        with self.fake_server.lock:
            dbs = {n: db for n, db in self.fake_server.dbs.items() if len(db)}
            keyspace = [
                f"db{n}:keys={len(db)},expires={sum(db[k].expireat is not None for k in list(db))},avg_ttl=0"
                for n, db in sorted(dbs.items())
            ]
        sections_text = {
            "server": [
                f"redis_version:{REDIS_VERSION}",
                "redis_mode:standalone",
                f"os:{platform.system()} {platform.release()} {platform.machine()}",
                "arch_bits:64",
                f"process_id:{os.getpid()}",
                f"run_id:{self.run_id}",
                f"tcp_port:{self.server_address[1]}",
                f"uptime_in_seconds:{uptime}",
                f"uptime_in_days:{uptime // 86400}",
                f"fakeredis_version:{fakeredis.__version__}",
            ],
            "clients": [f"connected_clients:{len(self.connections)}", f"blocked_clients:{len(self.blocked)}"],
            "memory": [
                f"used_memory:{rss}",
                f"used_memory_human:{rss / 2**20:.2f}M",
                f"used_memory_rss:{rss}",
                "maxmemory:0",
                "maxmemory_policy:noeviction",
            ],
            "persistence": ["loading:0", "aof_enabled:0", "rdb_bgsave_in_progress:0"],
            "replication": ["role:master", "connected_slaves:0"],
            "keyspace": keyspace,
        }
        return "\r\n".join(
            f"# {name.capitalize()}\r\n" + "".join(line + "\r\n" for line in lines)
            for name, lines in sections_text.items()
            if show_all or name in wanted
        )


class EmbeddedBroker:
    """The embedded broker: a loopback, password-protected Redis-protocol server on a daemon thread."""

    def __init__(self, password: str, host: str = "127.0.0.1", port: int = 0) -> None:
        if not password:
            raise ValueError("the embedded broker needs a password")
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"the embedded broker listens on loopback only, not {host}")
        self._password = password
        self._address = (host, port)
        self._server: _Server | None = None
        self._stopped = False

    def start(self) -> EmbeddedBroker:
        """Bind, listen and serve; connections are accepted from when this returns."""
        if self._server is not None:
            raise RuntimeError("the embedded broker was already started")
        self._server = _Server(self._address, self._password)
        threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": _POLL},
            name=f"embedded-broker:{self.port}",
            daemon=True,
        ).start()
        return self

    def stop(self) -> None:
        """Stop serving, close the listening socket and every client connection. Safe to call twice."""
        if self._server is None or self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        for connection in list(self._server.connections):
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self._server.server_close()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the embedded broker has not been started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"redis://:{quote(self._password, safe='')}@{self._address[0]}:{self.port}/0"
