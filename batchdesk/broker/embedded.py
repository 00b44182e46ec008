"""A Redis-protocol server inside the desk process, for machines without a Redis binary.

It serves a fakeredis 2.40 ``FakeServer`` over TCP. fakeredis ships a TCP server (``TcpFakeServer``), but as shipped
it cannot host a stock ``rq worker`` (rq 3.0, redis-py 8.1) and a client that never logs in can make it use memory and
CPU, so this module serves the connections itself. Each fix below is server-side; clients stay stock:

(a) CLIENT LIST / CLIENT INFO showed ``addr``/``laddr`` as a Python tuple repr (``('127.0.0.1', 5000)``).
    redis-py's ``client_info()`` then raises ValueError, which kills a worker at start. We send ``ip:port``.
(b) No INFO. rq reads ``redis_version`` from it (>= 6.2 picks BLMOVE dequeues) and ``rq info`` calls it. We answer
    the sections a client reads: server, clients, memory, persistence, replication, keyspace.
(c) Any error reply closed the connection, so a worker that hit one error looped reconnecting. Errors are now
    ordinary replies; only a malformed request (a protocol error, as in Redis) closes the connection.
(d) No TCP_NODELAY on accepted sockets: with replies written piecemeal, Nagle plus delayed ACKs stalled every
    pipeline round trip by ~44 ms. We set it, and write each batch of pipelined replies in one send.
(e) BLMOVE (rq's single-queue dequeue) returned nil at once when the source list did not exist, so an idle worker
    spun a core. The other blocking pops did block, but where a client that went away stayed blocked and could still
    pop the next job into a dead socket (the pool kills idle workers). Now every blocking list/zset pop runs on a
    thread of its own and waits in slices of ``_BLOCK_SLICE`` seconds (fakeredis blocks within a slice and is woken by
    a push; BLMOVE runs as LMOVE and waits on the database's change callback); between slices it checks that its
    client is still there and that the server is not stopping.
(f) ``requirepass`` was not enforced: PING answered without AUTH. The broker takes a password and refuses every
    command but AUTH and HELLO ... AUTH (what redis-py 8, speaking RESP3, sends) with ``-NOAUTH`` until one of them
    gives the right password; a wrong one gets ``-WRONGPASS``. RESET logs the connection out, as in Redis.
(g) No TOUCH. It is run as EXISTS, which counts existing keys the same way (fakeredis keeps no access times).
(h) CLIENT KILL only marked the victim's fake socket: its TCP connection stayed open and, if idle (a worker's
    pub/sub listener), never learnt it had been dropped from its channels. The victim's connection is now closed,
    as Redis does, so the client reconnects and resubscribes.
(i) A thread per connection, each polling its socket (every 10 ms in fakeredis, 50 ms in our first version): 500
    idle connections took a third of a core, whether or not they had logged in. As in Redis, one thread (a selector
    loop) now reads, runs and answers every connection; only a blocking pop gets a thread, while it waits (e).
    An idle connection costs a socket and a few KiB, no thread and no CPU; a pub/sub message is written out as soon
    as it is published, because the subscriber's fake socket tells the loop.
(j) A client that had not logged in could make the desk buffer anything it declared (a 400 MiB argument before AUTH).
    Before AUTH, Redis's limits now hold: at most 10 arguments and 16 KiB an argument, checked as each length
    arrives (``-ERR Protocol error: unauthenticated multibulk length`` / ``... bulk length``, then the connection
    closes). And a connection that has not logged in ``AUTH_TIMEOUT`` seconds after it opened (or after RESET) is
    closed; Redis has no such deadline, but our clients log in at once.
(k) Only RESP arrays were read. Inline commands (``PING\\r\\n``, as typed into telnet) now are, split as Redis splits
    them, and so Redis's guard against cross-protocol requests from web pages holds: a ``POST`` or ``Host:`` command
    closes the connection without a reply, with Redis's "Possible SECURITY ATTACK" warning in the log.
(l) A listen backlog of 5 (socketserver's) and no connection limit. We use Redis's backlog, 511, and its
    ``maxclients`` refusal (``-ERR max number of clients reached``) past ``MAX_CLIENTS`` connections, fewer where the
    process may open few files, so the broker cannot take the file descriptors the rest of the desk needs.

The guard below fails at import, with the fakeredis version in the message, if the internals this builds on are
gone; ``batchdesk.broker`` turns that into an error telling the user to use a managed broker instead.
"""

from __future__ import annotations

import collections
import contextlib
import hmac
import ipaddress
import logging
import os
import platform
import re
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import psutil
import redis

try:
    import fakeredis
    import lupa  # noqa: F401  (RQ runs Lua scripts; fakeredis runs them with lupa)
    from fakeredis import FakeRedisConnection, FakeServer
    from fakeredis._clients._tcp_server import encode_reply
    from fakeredis._core._database import Database
    from fakeredis._socket._base import BaseFakeSocket
    from fakeredis._typing import RaiseErrorTypes
except ImportError as exc:
    raise ImportError(f"the embedded broker needs fakeredis[lua] 2.40 (fakeredis[lua]>=2.40,<2.41): {exc}") from exc
_missing = [
    f"{owner.__name__}.{name}"
    for owner, name in [
        (FakeRedisConnection, "get_socket"),
        (Database, "add_change_callback"),
        (Database, "remove_change_callback"),
        (BaseFakeSocket, "_process_command"),
        (BaseFakeSocket, "put_response"),
    ]
    if not hasattr(owner, name)
]
if _missing:
    raise ImportError(
        f"fakeredis {fakeredis.__version__} lacks {', '.join(_missing)}, which the embedded broker builds on "
        "(checked against 2.40): install fakeredis[lua]>=2.40,<2.41"
    )

log = logging.getLogger("batchdesk.broker")

REDIS_VERSION = "7.2.0"
AUTH_TIMEOUT = 10.0  # seconds a connection may stay without logging in (j)
MAX_CLIENTS = 1024  # connections served at once, at most half the process's open-file limit (l)
_FAKE_VERSION = (7, 2)
_BACKLOG = 511  # Redis's tcp-backlog (l)
_BLOCK_SLICE = 0.1  # longest stretch a blocking command waits without checking that its client is still there
_STOP_TIMEOUT = 10.0  # longest stop() waits for the loop to close every connection
_READ_SIZE = 1 << 16
# Redis's limits on a request (networking.c): the longest inline request or length line, the largest argument and
# argument count, and the far smaller ones before AUTH (j).
_INLINE_MAX = 64 * 1024
_BULK_MAX = 512 * 2**20
_MULTIBULK_MAX = 2**31 - 1
_UNAUTHENTICATED_BULK_MAX = 16384
_UNAUTHENTICATED_MULTIBULK_MAX = 10
_ARRAY, _BULK = ord("*"), ord("$")  # the type bytes of a RESP request
_CROSS_PROTOCOL = {b"post", b"host:"}  # (k)
_CROSS_PROTOCOL_LOG_EVERY = 60.0  # seconds, as Redis: the warning must not become a way to flood the log
_MAY_KILL = {b"client", b"exec"}  # commands that can CLIENT KILL a connection (h)

_NOAUTH = b"-NOAUTH Authentication required.\r\n"
_HELLO_NOAUTH = (
    b"-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> "
    b"AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version "
    b"at the same time\r\n"
)
_WRONGPASS = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
_AUTH_ARITY = b"-ERR wrong number of arguments for 'auth' command\r\n"
_MAX_CLIENTS_REACHED = b"-ERR max number of clients reached\r\n"
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
# One inline argument, as Redis's sdssplitargs reads it: bare characters, then maybe one quoted part, which must end
# the argument. "Double quotes" take C escapes (\n, \x41, ...); in 'single quotes' only \' is one.
_INLINE_GAP = re.compile(rb"[ \n\r\t\0]*")
_INLINE_ARG = re.compile(
    rb"""([^ \n\r\t\0"']*)(?:"((?:\\.|[^"\\])*+)"|'((?:\\'|[^'])*+)')?(?=[ \n\r\t\0]|\Z)""", re.DOTALL
)
_INLINE_ESCAPE = re.compile(rb"\\(x[0-9a-fA-F]{2}|.)", re.DOTALL)
_INLINE_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"a": b"\a"}


class _ProtocolError(Exception):
    """A malformed request: the client gets ``-ERR Protocol error: <message>`` and the connection closes."""


class _ClientGone(Exception):
    pass


class _CrossProtocol(Exception):
    """A ``POST`` or ``Host:`` command: an HTTP request, most likely sent by a web page (k)."""


def _parse_command(buf: bytearray, pos: int, authenticated: bool) -> tuple[list[bytes], int] | None:
    """One request from ``buf[pos:]``, as Redis reads it: (arguments, end), or None while it is incomplete.

    A RESP array of bulk strings, or else an inline command (a line of words). Before AUTH the array is held to
    Redis's smaller limits, each checked as soon as its length arrives, so a client without the password never gets
    more than a few KiB buffered (j).
    """
    if pos == len(buf):
        return None
    if buf[pos] != _ARRAY:
        return _parse_inline(buf, pos)
    header = _header(buf, pos, "too big mbulk count string")
    if header is None:
        return None
    count, pos = header
    if count is None or count > _MULTIBULK_MAX:
        raise _ProtocolError("invalid multibulk length")
    if count > _UNAUTHENTICATED_MULTIBULK_MAX and not authenticated:
        raise _ProtocolError("unauthenticated multibulk length")
    fields: list[bytes] = []
    while len(fields) < count:
        header = _header(buf, pos, "too big bulk count string")
        if header is None:
            return None
        if buf[pos] != _BULK:
            raise _ProtocolError(f"expected '$', got '{chr(buf[pos])}'")
        length, start = header
        if length is None or not 0 <= length <= _BULK_MAX:
            raise _ProtocolError("invalid bulk length")
        if length > _UNAUTHENTICATED_BULK_MAX and not authenticated:
            raise _ProtocolError("unauthenticated bulk length")
        if len(buf) < start + length + 2:
            return None
        fields.append(bytes(buf[start : start + length]))
        pos = start + length + 2
    return fields, pos


def _header(buf: bytearray, pos: int, too_long: str) -> tuple[int | None, int] | None:
    """The length on the line at ``buf[pos]`` (after its one-character type) and where the next line starts: None
    while the line is incomplete; the length is None if it is not a number."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        if len(buf) - pos > _INLINE_MAX:
            raise _ProtocolError(too_long)
        return None
    digits = buf[pos + 1 : end]
    if digits.isdigit() or (digits[:1] == b"-" and digits[1:].isdigit()):
        return int(digits), end + 2
    return None, end + 2


def _parse_inline(buf: bytearray, pos: int) -> tuple[list[bytes], int] | None:
    end = buf.find(b"\n", pos)
    if end < 0:
        if len(buf) - pos > _INLINE_MAX:
            raise _ProtocolError("too big inline request")
        return None
    line = bytes(buf[pos:end])
    return _split_inline(line[:-1] if line.endswith(b"\r") else line), end + 1


def _split_inline(line: bytes) -> list[bytes]:
    """The arguments of an inline command, split as Redis's sdssplitargs splits them (k)."""
    args: list[bytes] = []
    pos = 0
    while (pos := _INLINE_GAP.match(line, pos).end()) < len(line):  # type: ignore[union-attr]
        match = _INLINE_ARG.match(line, pos)
        if match is None:
            raise _ProtocolError("unbalanced quotes in request")
        bare, double, single = match.groups()
        if double is not None:
            bare += _INLINE_ESCAPE.sub(_unescape, double)
        elif single is not None:
            bare += single.replace(b"\\'", b"'")
        args.append(bare)
        pos = match.end()
    return args


def _unescape(match: re.Match[bytes]) -> bytes:
    escaped = match.group(1)
    if len(escaped) == 3:  # x and two hex digits
        return bytes([int(escaped[1:], 16)])
    return _INLINE_ESCAPES.get(escaped, escaped)


def _protocol_error(exc: _ProtocolError) -> bytes:
    message = str(exc).replace("\r", " ").replace("\n", " ")  # as Redis's addReplyErrorFormat does
    return f"-ERR Protocol error: {message}\r\n".encode("latin-1")


def _hostport(address: tuple[Any, ...]) -> str:
    return f"{address[0]}:{address[1]}"


def _max_clients() -> int:
    """``MAX_CLIENTS``, within half this process's open-file limit, and within the 512 sockets that select(), the
    selector Windows has, can watch (l)."""
    try:
        import resource
    except ImportError:  # Windows
        return min(MAX_CLIENTS, 500)
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return MAX_CLIENTS if soft == resource.RLIM_INFINITY else min(MAX_CLIENTS, max(16, soft // 2))


def _listen(address: tuple[str, int]) -> socket.socket:
    family = socket.AF_INET6 if ipaddress.ip_address(address[0]).version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if os.name == "nt":  # there SO_REUSEADDR would let another process bind our port too
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)  # type: ignore[attr-defined]
        else:  # a restarted desk can take its port back from connections still in TIME_WAIT
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(_BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class _Connection:
    """One client: its socket, its fakeredis connection and its buffers. Runs its commands with fixes (a)-(h)."""

    def __init__(self, server: _Server, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        self.inbuf = bytearray()
        self.out = bytearray()
        self.authenticated = False
        self.busy = False  # a thread runs its blocking pop; the loop leaves it alone meanwhile (e)
        self.closing = False  # close once ``out`` has been sent (best effort): after a protocol error, say
        self.events = 0  # what the loop's selector watches its socket for
        self._running = False  # one of its own commands runs: what it queues is that command's reply
        self.fake = FakeRedisConnection(
            server=server.fake_server,
            client_info={
                "addr": _hostport(sock.getpeername()),  # (a)
                "laddr": _hostport(sock.getsockname()),
                "fd": sock.fileno(),
            },
            protocol=2,  # RESP2 until the client sends HELLO, as with a real server
        )
        self.fake_socket = self.fake.get_socket()
        self._watch_pushes()

    def _watch_pushes(self) -> None:
        """Tell the loop when something other than our own command queues a reply here (a pub/sub message), so the
        loop writes it out at once instead of polling every connection for one (i)."""
        put = self.fake_socket.put_response

        def put_response(message: Any) -> None:
            put(message)
            if not self._running:
                self.server.pushed(self)

        self.fake_socket.put_response = put_response  # type: ignore[method-assign,assignment]

    @property
    def protocol_version(self) -> int:
        """The RESP version this connection has negotiated with HELLO."""
        return int(self.fake_socket._client_info.protocol_version)

    @property
    def killed(self) -> bool:
        return bool(self.fake_socket._killed)

    @property
    def address(self) -> str:
        return str(self.fake_socket._client_info["addr"])

    def replies(self) -> bytes:
        """Encode whatever fakeredis has queued for this client, errors included (c)."""
        out = bytearray()
        while self.fake.can_read():
            try:
                value = self.fake.read_response()
            except RaiseErrorTypes as exc:
                value = exc
            out += encode_reply(value, self.protocol_version)
        return bytes(out)

    def _forward(self, fields: list[bytes]) -> bytes:
        """Run one parsed command in fakeredis. It goes straight to the fake socket's command step:
        encoding it back to RESP for fakeredis to parse again cost a fifth of the broker's time."""
        sock = self.fake_socket
        if sock._killed or not sock._server.connected:  # what the fake socket's sendall() would refuse
            raise _ClientGone
        self._running = True
        try:
            sock._process_command(fields)
        finally:
            self._running = False
        return self.replies()

    def execute(self, name: bytes, fields: list[bytes]) -> bytes:
        """The reply to one request that does not block; ``name`` is its command, in lower case."""
        if name in _CROSS_PROTOCOL:
            raise _CrossProtocol
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

    def block(self, fields: list[bytes]) -> bytes:
        """Run a blocking pop in slices, so a client that left or a stopping server ends the wait (e).
        Runs on a thread of its own."""
        timeout_arg = _TIMEOUT_ARG[fields[0].lower()]
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
                if self.server.stopping.is_set() or self._client_left():
                    raise _ClientGone
                if polled:
                    changed.wait(wait)

    @contextlib.contextmanager
    def _blocked(self) -> Iterator[threading.Event]:
        """Count this client as blocked; yield an event set whenever a key in its database changes.

        Change callbacks run under the server lock, so they are added and removed under it too.
        """
        changed = threading.Event()
        database = self.fake_socket._db
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
        try:
            return self.sock.recv(1, socket.MSG_PEEK) == b""
        except BlockingIOError:  # nothing to read: still there
            return False
        except OSError:
            return True

    def close(self) -> None:
        self.sock.close()
        self.fake.disconnect()


class _Server:
    """The listening socket, the fakeredis server and the loop (``serve``) that runs every connection (i)."""

    def __init__(self, address: tuple[str, int], password: str) -> None:
        self.password = password.encode()
        self.fake_server = FakeServer(server_type="redis", version=_FAKE_VERSION)
        self.max_clients = _max_clients()
        self.clients: dict[socket.socket, _Connection] = {}
        self.blocked: set[_Connection] = set()
        self.stopping = threading.Event()
        self.started = time.time()
        self.run_id = os.urandom(20).hex()
        self.socket = _listen(address)
        self._selector = selectors.DefaultSelector()
        self._wakeup, self._waker = socket.socketpair()
        for end in (self._wakeup, self._waker):
            end.setblocking(False)
        self._selector.register(self.socket, selectors.EVENT_READ, self._accept)
        self._selector.register(self._wakeup, selectors.EVENT_READ, self._drain_wakeups)
        self._login_deadlines: dict[_Connection, float] = {}  # in deadline order: each is now + AUTH_TIMEOUT
        self._pushed: set[_Connection] = set()
        self._finished: collections.deque[tuple[_Connection, bytes | None]] = collections.deque()
        self._lock = threading.Lock()  # orders a blocking pop's end against the loop's
        self._closed = False
        self._loop_thread: int | None = None
        self._cross_protocol_logged = -_CROSS_PROTOCOL_LOG_EVERY

    # -- the loop ------------------------------------------------------------------------------------------------

    def serve(self) -> None:
        """Accept, read, run and answer until ``stop``. Idle, it sleeps in the selector: no polling (i)."""
        self._loop_thread = threading.get_ident()
        try:
            while not self.stopping.is_set():
                for key, events in self._selector.select(self._next_deadline()):
                    if isinstance(key.data, _Connection):
                        self._guard(key.data, self._ready, events)
                    else:
                        key.data()
                self._tend()
        finally:
            self._close_all()

    def stop(self) -> None:
        self.stopping.set()
        self._wake()

    def pushed(self, conn: _Connection) -> None:
        """``conn`` has a reply its own command did not ask for (a pub/sub message): the loop writes it out."""
        self._pushed.add(conn)
        if threading.get_ident() != self._loop_thread:
            self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # full: a wake-up is pending anyway; closed: the loop has ended
            self._waker.send(b"\0")

    def _drain_wakeups(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while self._wakeup.recv(4096):
                pass

    def _next_deadline(self) -> float | None:
        """Seconds until the first connection's time to log in runs out; None (sleep until woken) if none is due."""
        first = next(iter(self._login_deadlines.values()), None)
        return None if first is None else max(0.0, first - time.monotonic())

    def _tend(self) -> None:
        """After each wake-up: the blocking pops that ended, pub/sub pushes, connections past their time to log in."""
        while self._finished:
            conn, reply = self._finished.popleft()
            conn.busy = False
            self._guard(conn, self._resume, reply)
        while self._pushed:
            conn = self._pushed.pop()
            if not conn.busy:
                self._guard(conn, self._deliver)
        now = time.monotonic()
        while self._login_deadlines:
            conn, deadline = next(iter(self._login_deadlines.items()))
            if deadline > now:
                break
            del self._login_deadlines[conn]
            self._close(conn)

    # -- connections ---------------------------------------------------------------------------------------------

    def _accept(self) -> None:
        """Take the connections waiting in the backlog; past ``max_clients``, refuse them as Redis does (l)."""
        for _ in range(_BACKLOG):
            try:
                sock, _ = self.socket.accept()
            except OSError:  # none waiting (BlockingIOError), or one that gave up before we took it
                return
            sock.setblocking(False)
            if len(self.clients) >= self.max_clients:
                with contextlib.suppress(OSError):
                    sock.send(_MAX_CLIENTS_REACHED)
                sock.close()
                continue
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # (d)
                conn = _Connection(self, sock)
            except OSError:  # it reset before we could look at it
                sock.close()
                continue
            self.clients[sock] = conn
            self._await_login(conn)
            self._watch(conn, selectors.EVENT_READ)

    def _guard(self, conn: _Connection, action: Callable[..., None], *args: Any) -> None:
        """Run ``action`` for ``conn`` unless it has been closed; a fault in it costs that client, not every client."""
        if self.clients.get(conn.sock) is not conn:  # closed by a client served earlier in this turn
            return
        try:
            action(conn, *args)
        except Exception:
            log.exception("embedded broker: dropping the client at %s after an internal error", conn.address)
            self._close(conn)

    def _ready(self, conn: _Connection, events: int) -> None:
        """``conn``'s socket has a request for us, or room for the replies it could not take before."""
        if events & selectors.EVENT_WRITE:
            self._send(conn)
            if conn.out:
                return
        elif not self._receive(conn):
            return
        self._serve(conn)

    def _deliver(self, conn: _Connection) -> None:
        """Write out the pub/sub messages published to ``conn`` (i)."""
        conn.out += conn.replies()
        self._flush(conn)

    def _receive(self, conn: _Connection) -> bool:
        """Append what the client sent to its input; False if there was nothing (if it left, it is closed)."""
        try:
            chunk = conn.sock.recv(_READ_SIZE)
        except BlockingIOError:
            return False
        except OSError:
            chunk = b""
        if not chunk:
            self._close(conn)
            return False
        conn.inbuf += chunk
        return True

    def _serve(self, conn: _Connection) -> None:
        """Run the complete requests in ``conn``'s input, then send their replies in one write (d).

        A blocking pop ends the run: it goes to a thread of its own once the replies before it are out (e).
        """
        pos = 0
        try:
            while not conn.closing and (parsed := _parse_command(conn.inbuf, pos, conn.authenticated)) is not None:
                fields, end = parsed
                name = fields[0].lower() if fields else b""
                if conn.authenticated and name in _TIMEOUT_ARG:
                    self._send(conn)
                    if not conn.out:
                        del conn.inbuf[:end]
                        self._block(conn, fields)
                        return
                    break  # the pop waits until the replies before it are taken (``_ready`` comes back here)
                pos = end
                if fields:
                    self._run(conn, name, fields)
        except _ProtocolError as exc:
            conn.out += _protocol_error(exc)
            conn.closing = True
        except _CrossProtocol:
            self._warn_cross_protocol(conn)
            self._close(conn)  # without a reply, as Redis does
            return
        except _ClientGone:
            self._close(conn)
            return
        del conn.inbuf[:pos]
        self._flush(conn)

    def _run(self, conn: _Connection, name: bytes, fields: list[bytes]) -> None:
        logged_in = conn.authenticated
        conn.out += conn.execute(name, fields)
        if conn.authenticated and not logged_in:
            self._login_deadlines.pop(conn, None)
        elif logged_in and not conn.authenticated:  # RESET
            self._await_login(conn)
        if name in _MAY_KILL:
            for victim in [c for c in self.clients.values() if c.killed]:  # (h)
                if victim is conn:
                    conn.closing = True  # after the reply to its own CLIENT KILL, as in Redis
                else:
                    self._close(victim)

    def _await_login(self, conn: _Connection) -> None:
        self._login_deadlines.pop(conn, None)
        self._login_deadlines[conn] = time.monotonic() + AUTH_TIMEOUT

    def _warn_cross_protocol(self, conn: _Connection) -> None:
        now = time.monotonic()
        if now - self._cross_protocol_logged >= _CROSS_PROTOCOL_LOG_EVERY:
            self._cross_protocol_logged = now
            log.warning(
                "Possible SECURITY ATTACK detected. It looks like somebody is sending POST or Host: commands to the "
                "embedded broker from %s. This is likely due to an attacker attempting to use Cross Protocol "
                "Scripting to compromise the desk. Connection aborted.",
                conn.address,
            )

    def _block(self, conn: _Connection, fields: list[bytes]) -> None:
        """Hand a blocking pop to a thread of its own; it reports back through ``_finished`` (e)."""
        self._watch(conn, 0)
        conn.busy = True
        threading.Thread(target=self._wait, args=(conn, fields), name="embedded-broker-pop", daemon=True).start()

    def _wait(self, conn: _Connection, fields: list[bytes]) -> None:
        """The blocking pop's thread: run it, then hand the reply (None: drop the client) back to the loop."""
        try:
            reply: bytes | None = conn.block(fields)
        except (_ClientGone, OSError, redis.ConnectionError):  # the last: CLIENT KILL while it waited
            reply = None
        except Exception:
            log.exception("embedded broker: a blocking command failed; dropping its client")
            reply = None
        with self._lock:
            if not self._closed:
                self._finished.append((conn, reply))
                self._wake()
                return
        conn.close()

    def _resume(self, conn: _Connection, reply: bytes | None) -> None:
        if reply is None:
            self._close(conn)
            return
        conn.out += reply + conn.replies()  # and what was published to it meanwhile
        self._serve(conn)  # what it pipelined behind the pop

    def _send(self, conn: _Connection) -> None:
        """Write as much of ``conn``'s output as its socket takes now."""
        if not conn.out:
            return
        try:
            del conn.out[: conn.sock.send(conn.out)]
        except BlockingIOError:
            pass
        except OSError:  # it is gone: nothing it sent after this will be answered
            conn.out.clear()
            conn.closing = True

    def _flush(self, conn: _Connection) -> None:
        """Send what the socket takes; then wait for requests, or, if some output is left, for room to send it.
        A client that does not read its replies is not read from either, so it cannot make us buffer without end."""
        self._send(conn)
        if conn.closing:
            self._close(conn)
        else:
            self._watch(conn, selectors.EVENT_WRITE if conn.out else selectors.EVENT_READ)

    def _watch(self, conn: _Connection, events: int) -> None:
        if events == conn.events:
            return
        if not conn.events:
            self._selector.register(conn.sock, events, conn)
        elif not events:
            self._selector.unregister(conn.sock)
        else:
            self._selector.modify(conn.sock, events, conn)
        conn.events = events

    def _close(self, conn: _Connection) -> None:
        if conn.busy:  # its pop's thread sees the connection end and reports back; it is closed then
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)
            return
        if self.clients.pop(conn.sock, None) is None:
            return
        self._login_deadlines.pop(conn, None)
        self._watch(conn, 0)
        conn.close()

    def _close_all(self) -> None:
        with self._lock:
            self._closed = True
        for conn in list(self.clients.values()):
            self._close(conn)
        self._selector.close()
        for sock in (self.socket, self._wakeup, self._waker):
            sock.close()

    # -- INFO ----------------------------------------------------------------------------------------------------

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
                f"tcp_port:{self.socket.getsockname()[1]}",
                f"uptime_in_seconds:{uptime}",
                f"uptime_in_days:{uptime // 86400}",
                f"fakeredis_version:{fakeredis.__version__}",
            ],
            "clients": [
                f"connected_clients:{len(self.clients)}",
                f"maxclients:{self.max_clients}",
                f"blocked_clients:{len(self.blocked)}",
            ],
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
        self._thread: threading.Thread | None = None
        self._port = 0
        self._stopped = False

    def start(self) -> EmbeddedBroker:
        """Bind, listen and serve; connections are accepted from when this returns."""
        if self._server is not None:
            raise RuntimeError("the embedded broker was already started")
        self._server = _Server(self._address, self._password)
        self._port = int(self._server.socket.getsockname()[1])
        self._thread = threading.Thread(target=self._server.serve, name=f"embedded-broker:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the listening socket and every client connection. Safe to call twice."""
        if self._server is None or self._thread is None or self._stopped:
            return
        self._stopped = True
        self._server.stop()
        self._thread.join(_STOP_TIMEOUT)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the embedded broker has not been started")
        return self._port

    @property
    def url(self) -> str:
        return f"redis://:{quote(self._password, safe='')}@{self._address[0]}:{self.port}/0"
