"""The embedded broker's loop: one thread reads, runs and answers every connection, as Redis does (i).

Idle, it sleeps in the selector: an idle connection costs a socket and a few KiB, no thread and no CPU. Replies to a
pipeline go out in one send (d); a blocking pop goes to a thread of its own while it waits (e); a client's CLIENT KILL
victim is closed (h); a connection that does not log in in time is closed (j); a web page's request is dropped (k);
past the client limit a connection is refused (l).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import redis

from batchdesk.broker import defaults
from batchdesk.broker.connection import BLOCKING_POPS, ClientGone, Connection, CrossProtocol
from batchdesk.broker.fakeredis_internals import new_fake_server
from batchdesk.broker.info import ServerFacts, info_text
from batchdesk.broker.listener import MAX_CLIENTS_REACHED, listen, max_clients
from batchdesk.broker.resp import ProtocolError, parse_command, protocol_error_reply

log = logging.getLogger("batchdesk.broker")

_MAY_KILL = {b"client", b"exec"}  # commands that can CLIENT KILL a connection (h)


class BrokerLoop:
    """The listening socket, the fakeredis server and the loop (``serve``) that runs every connection (i)."""

    def __init__(self, address: tuple[str, int], password: str) -> None:
        self.password = password.encode()
        self.fake_server = new_fake_server()
        self.max_clients = max_clients()
        self.clients: dict[socket.socket, Connection] = {}
        self.blocked: set[Connection] = set()
        self.stopping = threading.Event()
        self.started = time.time()
        self.run_id = os.urandom(20).hex()
        self.socket = listen(address)
        self._selector = selectors.DefaultSelector()
        self._wakeup, self._waker = socket.socketpair()
        for end in (self._wakeup, self._waker):
            end.setblocking(False)
        self._selector.register(self.socket, selectors.EVENT_READ, self._accept)
        self._selector.register(self._wakeup, selectors.EVENT_READ, self._drain_wakeups)
        self._login_deadlines: dict[Connection, float] = {}  # in deadline order: each is now + AUTH_TIMEOUT
        self._pushed: set[Connection] = set()
        self._finished: collections.deque[tuple[Connection, bytes | None]] = collections.deque()
        self._lock = threading.Lock()  # orders a blocking pop's end against the loop's
        self._closed = False
        self._loop_thread: int | None = None
        self._cross_protocol_logged = -defaults.CROSS_PROTOCOL_LOG_EVERY

    # -- the loop ------------------------------------------------------------------------------------------------

    def serve(self) -> None:
        """Accept, read, run and answer until ``stop``. Idle, it sleeps in the selector: no polling (i)."""
        self._loop_thread = threading.get_ident()
        try:
            while not self.stopping.is_set():
                for key, events in self._selector.select(self._next_deadline()):
                    if isinstance(key.data, Connection):
                        self._guard(key.data, self._ready, events)
                    else:
                        key.data()
                self._tend()
        finally:
            self._close_all()

    def stop(self) -> None:
        self.stopping.set()
        self._wake()

    def pushed(self, conn: Connection) -> None:
        """``conn`` has a reply its own command did not ask for (a pub/sub message): the loop writes it out."""
        self._pushed.add(conn)
        if threading.get_ident() != self._loop_thread:
            self._wake()

    def info(self, sections: list[bytes]) -> str:
        """The INFO reply (b), with this broker's facts."""
        facts = ServerFacts(
            run_id=self.run_id,
            port=self.socket.getsockname()[1],
            started=self.started,
            clients=len(self.clients),
            max_clients=self.max_clients,
            blocked=len(self.blocked),
        )
        return info_text(sections, self.fake_server, facts)

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
        for _ in range(defaults.LISTEN_BACKLOG):
            try:
                sock, _ = self.socket.accept()
            except OSError:  # none waiting (BlockingIOError), or one that gave up before we took it
                return
            sock.setblocking(False)
            if len(self.clients) >= self.max_clients:
                with contextlib.suppress(OSError):
                    sock.send(MAX_CLIENTS_REACHED)
                sock.close()
                continue
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # (d)
                conn = Connection(self, sock)
            except OSError:  # it reset before we could look at it
                sock.close()
                continue
            self.clients[sock] = conn
            self._await_login(conn)
            self._watch(conn, selectors.EVENT_READ)

    def _guard(self, conn: Connection, action: Callable[..., None], *args: Any) -> None:
        """Run ``action`` for ``conn`` unless it has been closed; a fault in it costs that client, not every client."""
        if self.clients.get(conn.sock) is not conn:  # closed by a client served earlier in this turn
            return
        try:
            action(conn, *args)
        except Exception:
            log.exception("embedded broker: dropping the client at %s after an internal error", conn.address)
            self._close(conn)

    def _ready(self, conn: Connection, events: int) -> None:
        """``conn``'s socket has a request for us, or room for the replies it could not take before."""
        if events & selectors.EVENT_WRITE:
            self._send(conn)
            if conn.out:
                return
        elif not self._receive(conn):
            return
        self._serve(conn)

    def _deliver(self, conn: Connection) -> None:
        """Write out the pub/sub messages published to ``conn`` (i)."""
        conn.out += conn.replies()
        self._flush(conn)

    def _receive(self, conn: Connection) -> bool:
        """Append what the client sent to its input; False if there was nothing (if it left, it is closed)."""
        try:
            chunk = conn.sock.recv(defaults.READ_SIZE)
        except BlockingIOError:
            return False
        except OSError:
            chunk = b""
        if not chunk:
            self._close(conn)
            return False
        conn.inbuf += chunk
        return True

    def _serve(self, conn: Connection) -> None:
        """Run the complete requests in ``conn``'s input, then send their replies in one write (d).

        A blocking pop ends the run: it goes to a thread of its own once the replies before it are out (e).
        """
        pos = 0
        try:
            while not conn.closing and (parsed := parse_command(conn.inbuf, pos, conn.authenticated)) is not None:
                fields, end = parsed
                name = fields[0].lower() if fields else b""
                if conn.authenticated and name in BLOCKING_POPS:
                    self._send(conn)
                    if not conn.out:
                        del conn.inbuf[:end]
                        self._block(conn, fields)
                        return
                    break  # the pop waits until the replies before it are taken (``_ready`` comes back here)
                pos = end
                if fields:
                    self._run(conn, name, fields)
        except ProtocolError as exc:
            conn.out += protocol_error_reply(exc)
            conn.closing = True
        except CrossProtocol:
            self._warn_cross_protocol(conn)
            self._close(conn)  # without a reply, as Redis does
            return
        except ClientGone:
            self._close(conn)
            return
        del conn.inbuf[:pos]
        self._flush(conn)

    def _run(self, conn: Connection, name: bytes, fields: list[bytes]) -> None:
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

    def _await_login(self, conn: Connection) -> None:
        self._login_deadlines.pop(conn, None)
        self._login_deadlines[conn] = time.monotonic() + defaults.AUTH_TIMEOUT

    def _warn_cross_protocol(self, conn: Connection) -> None:
        now = time.monotonic()
        if now - self._cross_protocol_logged >= defaults.CROSS_PROTOCOL_LOG_EVERY:
            self._cross_protocol_logged = now
            log.warning(
                "Possible SECURITY ATTACK detected. It looks like somebody is sending POST or Host: commands to the "
                "embedded broker from %s. This is likely due to an attacker attempting to use Cross Protocol "
                "Scripting to compromise the desk. Connection aborted.",
                conn.address,
            )

    # -- blocking pops (e) ---------------------------------------------------------------------------------------

    def _block(self, conn: Connection, fields: list[bytes]) -> None:
        """Hand a blocking pop to a thread of its own; it reports back through ``_finished`` (e)."""
        self._watch(conn, 0)
        conn.busy = True
        threading.Thread(target=self._wait, args=(conn, fields), name="embedded-broker-pop", daemon=True).start()

    def _wait(self, conn: Connection, fields: list[bytes]) -> None:
        """The blocking pop's thread: run it, then hand the reply (None: drop the client) back to the loop."""
        try:
            reply: bytes | None = conn.block(fields)
        except (ClientGone, OSError, redis.ConnectionError):  # the last: CLIENT KILL while it waited
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

    def _resume(self, conn: Connection, reply: bytes | None) -> None:
        if reply is None:
            self._close(conn)
            return
        conn.out += reply + conn.replies()  # and what was published to it meanwhile
        self._serve(conn)  # what it pipelined behind the pop

    # -- output and closing --------------------------------------------------------------------------------------

    def _send(self, conn: Connection) -> None:
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

    def _flush(self, conn: Connection) -> None:
        """Send what the socket takes; then wait for requests, or, if some output is left, for room to send it.
        A client that does not read its replies is not read from either, so it cannot make us buffer without end."""
        self._send(conn)
        if conn.closing:
            self._close(conn)
        else:
            self._watch(conn, selectors.EVENT_WRITE if conn.out else selectors.EVENT_READ)

    def _watch(self, conn: Connection, events: int) -> None:
        if events == conn.events:
            return
        if not conn.events:
            self._selector.register(conn.sock, events, conn)
        elif not events:
            self._selector.unregister(conn.sock)
        else:
            self._selector.modify(conn.sock, events, conn)
        conn.events = events

    def _close(self, conn: Connection) -> None:
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
