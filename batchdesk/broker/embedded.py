"""A Redis-protocol server inside the desk process, for machines without a Redis binary.

It serves a fakeredis 2.40 ``FakeServer`` over TCP. fakeredis ships a TCP server (``TcpFakeServer``), but as shipped
it cannot host a stock ``rq worker`` (rq 3.0, redis-py 8.1) and a client that never logs in can make it use memory and
CPU, so the broker serves the connections itself. Each fix below is server-side; clients stay stock:

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
    thread of its own and waits in slices of ``BLOCK_SLICE`` seconds (fakeredis blocks within a slice and is woken by
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

Where each part lives, in ``batchdesk.broker``: ``resp`` reads requests (j, k); ``connection`` runs one client's
commands (a, c, e-h); ``loop`` is the one thread that serves them all (d, e, h-l); ``listener`` its listening socket
(l); ``info`` the INFO reply (b); ``defaults`` the tunables named above. ``fakeredis_internals`` fails at import, with
the fakeredis version in the message, if the internals this builds on are gone; ``modes`` turns that into an error
telling the user to use a managed broker instead.
"""

from __future__ import annotations

import ipaddress
import threading
from urllib.parse import quote

from batchdesk.broker import defaults
from batchdesk.broker.loop import BrokerLoop


class EmbeddedBroker:
    """The embedded broker: a loopback, password-protected Redis-protocol server on a daemon thread."""

    def __init__(self, password: str, host: str = "127.0.0.1", port: int = 0) -> None:
        if not password:
            raise ValueError("the embedded broker needs a password")
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"the embedded broker listens on loopback only, not {host}")
        self._password = password
        self._address = (host, port)
        self._server: BrokerLoop | None = None
        self._thread: threading.Thread | None = None
        self._port = 0
        self._stopped = False

    def start(self) -> EmbeddedBroker:
        """Bind, listen and serve; connections are accepted from when this returns."""
        if self._server is not None:
            raise RuntimeError("the embedded broker was already started")
        self._server = BrokerLoop(self._address, self._password)
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
        self._thread.join(defaults.EMBEDDED_STOP_TIMEOUT)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the embedded broker has not been started")
        return self._port

    @property
    def url(self) -> str:
        return f"redis://:{quote(self._password, safe='')}@{self._address[0]}:{self.port}/0"
