"""One client of the embedded broker: its socket, its buffers, its fakeredis connection, and how its commands run.

The fixes to fakeredis that are a matter of one connection live here: ``ip:port`` addresses (a), errors as ordinary
replies (c), blocking pops that wait in slices on a thread of their own (e), AUTH (f), TOUCH (g), noticing CLIENT KILL
(h), and telling the loop about pub/sub pushes (i). The loop (:mod:`batchdesk.broker.loop`) does the I/O.
"""

from __future__ import annotations

import contextlib
import hmac
import socket
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from batchdesk.broker import defaults
from batchdesk.broker.fakeredis_internals import FakeRedisConnection, RaiseErrorTypes, encode_reply

if TYPE_CHECKING:
    from batchdesk.broker.loop import BrokerLoop

# The blocking pops, and where each keeps its timeout.
BLOCKING_POPS = {
    b"blpop": -1,
    b"brpop": -1,
    b"brpoplpush": -1,
    b"blmove": -1,
    b"bzpopmin": -1,
    b"bzpopmax": -1,
    b"blmpop": 1,
    b"bzmpop": 1,
}
_CROSS_PROTOCOL = {b"post", b"host:"}  # (k)
_NIL_REPLIES = (b"$-1\r\n", b"_\r\n", b"*-1\r\n")  # what a blocking pop that timed out answers (RESP2 and RESP3)

_NOAUTH = b"-NOAUTH Authentication required.\r\n"
_HELLO_NOAUTH = (
    b"-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> "
    b"AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version "
    b"at the same time\r\n"
)
_WRONGPASS = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
_AUTH_ARITY = b"-ERR wrong number of arguments for 'auth' command\r\n"
_HELLO_AUTH_SYNTAX = b"-ERR Syntax error in HELLO option 'auth'\r\n"


class ClientGone(Exception):
    """The client left, or was killed, before its command could run or while it waited."""


class CrossProtocol(Exception):
    """A ``POST`` or ``Host:`` command: an HTTP request, most likely sent by a web page (k)."""


class Connection:
    """One client: its socket, its fakeredis connection and its buffers. Runs its commands with fixes (a)-(h)."""

    def __init__(self, server: BrokerLoop, sock: socket.socket) -> None:
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

        self.fake_socket.put_response = put_response  # type: ignore[method-assign,assignment]  # on this instance

    @property
    def protocol_version(self) -> int:
        """The RESP version this connection has negotiated with HELLO."""
        return int(self.fake_socket._client_info.protocol_version)

    @property
    def killed(self) -> bool:
        """CLIENT KILL has dropped it from fakeredis; its TCP connection is for the loop to close (h)."""
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
            raise ClientGone
        self._running = True
        try:
            sock._process_command(fields)
        finally:
            self._running = False
        return self.replies()

    def execute(self, name: bytes, fields: list[bytes]) -> bytes:
        """The reply to one request that does not block; ``name`` is its command, in lower case."""
        if name in _CROSS_PROTOCOL:
            raise CrossProtocol
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
                return _HELLO_AUTH_SYNTAX
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
        timeout_arg = BLOCKING_POPS[fields[0].lower()]
        try:
            timeout = float(fields[timeout_arg])
        except (ValueError, IndexError):
            timeout = -1.0
        if not 0 <= timeout < float("inf") or (fields[0].lower() == b"blmove" and len(fields) != 6):
            return self._forward(fields)  # fakeredis words the error
        deadline = time.monotonic() + timeout if timeout else None
        polled = fields[0].lower() == b"blmove"  # fakeredis' BLMOVE never blocks: run LMOVE, wait for a change
        fields = [b"LMOVE", *fields[1:5]] if polled else list(fields)
        longest = defaults.BLOCK_SLICE
        with self._blocked() as changed:
            while True:
                wait = longest if deadline is None else min(longest, deadline - time.monotonic())
                if wait < 0.001:  # "0.000" would mean "forever"
                    return encode_reply(None, self.protocol_version)
                changed.clear()
                if not polled:
                    fields[timeout_arg] = b"%.3f" % wait
                reply = self._forward(fields)
                if reply not in _NIL_REPLIES:
                    return reply  # a value, an error, or QUEUED inside MULTI
                if self.server.stopping.is_set() or self._client_left():
                    raise ClientGone
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


def _hostport(address: tuple[Any, ...]) -> str:
    return f"{address[0]}:{address[1]}"
