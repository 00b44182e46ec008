"""The embedded broker: one test per fault fixed in stock fakeredis' TCP server, then stock RQ against it."""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import psutil
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from rq import Queue
from rq.serializers import JSONSerializer
from rq.utils import get_version

from batchdesk.broker import defaults as broker_defaults
from batchdesk.broker import listener
from batchdesk.broker.embedded import EmbeddedBroker
from conftest import scaled, wait_for

PASSWORD = "test-password"
RQ = shutil.which("rq", path=os.path.dirname(sys.executable)) or "rq"  # the venv's, else PATH's


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(PASSWORD).start()
    yield broker
    broker.stop()


@pytest.fixture
def client(broker: EmbeddedBroker) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(broker.url) as client:
        yield client


class Raw:
    """A bare TCP connection, so a test sees exactly what the server sends and when it closes."""

    def __init__(self, port: int, timeout: float = 10) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=scaled(timeout))
        self.buf = b""

    def call(self, *args: str) -> bytes:
        """Send one command; return its first reply line (enough for simple strings, errors and integers)."""
        self.sock.sendall(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a.encode()) for a in args))
        return self.line()

    def line(self) -> bytes:
        """The next reply line."""
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def value(self) -> bytes:
        """The next reply, a string: simple (fakeredis sends one where it can) or bulk (as Redis does)."""
        line = self.line()
        if line.startswith(b"$"):
            return self.line()
        assert line.startswith(b"+"), line
        return line[1:]

    def rest(self) -> bytes:
        """Everything the server sends until it closes the connection (a socket timeout fails the test)."""
        data = self.buf
        while chunk := self.sock.recv(65536):
            data += chunk
        self.buf = b""
        return data

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw(broker: EmbeddedBroker) -> Iterator[Raw]:
    conn = Raw(broker.port)
    yield conn
    conn.close()


def blocked_clients(client: redis.Redis) -> int:
    return int(client.info("clients")["blocked_clients"])


def test_listens_on_loopback_with_a_real_port(broker: EmbeddedBroker) -> None:
    assert broker.port > 0
    assert broker.url == f"redis://:{PASSWORD}@127.0.0.1:{broker.port}/0"
    with pytest.raises(ValueError):
        EmbeddedBroker(PASSWORD, host="0.0.0.0")


# (a) client addresses were Python tuple reprs, which redis-py's CLIENT INFO parser chokes on
def test_client_info_and_list_give_ip_port(client: redis.Redis, broker: EmbeddedBroker) -> None:
    client.client_setname("worker-1")
    info = client.client_info()
    assert re.fullmatch(r"127\.0\.0\.1:\d+", str(info["addr"]))
    assert info["laddr"] == f"127.0.0.1:{broker.port}"
    listed = [c["addr"] for c in client.client_list() if c["name"] == "worker-1"]
    assert listed == [info["addr"]]


# (b) INFO was missing; rq reads redis_version from it
def test_info_answers_like_redis(client: redis.Redis) -> None:
    client.set("key", "value", ex=100)
    info = client.info()
    assert info["redis_version"] == "7.2.0"
    assert info["connected_clients"] >= 1
    assert info["used_memory"] > 0
    assert info["role"] == "master"
    assert info["db0"] == {"keys": 1, "expires": 1, "avg_ttl": 0}
    assert "used_memory" not in client.info("server")
    assert get_version(client) == (7, 2, 0)


# (c) an error reply closed the connection
def test_error_reply_keeps_the_connection(raw: Raw) -> None:
    assert raw.call("AUTH", PASSWORD) == b"+OK"
    client_id = raw.call("CLIENT", "ID")
    assert raw.call("NO-SUCH-COMMAND").startswith(b"-ERR unknown command")
    assert raw.call("LPUSH", "only-key").startswith(b"-ERR wrong number of arguments")
    assert raw.call("PING") == b"+PONG"
    assert raw.call("CLIENT", "ID") == client_id


# (d) no TCP_NODELAY on accepted sockets: every pipeline round trip waited ~44 ms on delayed ACKs
def test_accepted_sockets_have_tcp_nodelay(client: redis.Redis, broker: EmbeddedBroker) -> None:
    client.ping()
    accepted = list(broker._server.clients)  # type: ignore[union-attr]
    assert accepted
    assert all(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for s in accepted)


# (e) BLMOVE returned at once, so an idle worker spun; the other pops must keep blocking too
BLOCKING_POPS: dict[str, Callable[[redis.Redis, int], object]] = {
    "blmove": lambda r, t: r.blmove("src", "dst", t),
    "blpop": lambda r, t: r.blpop(["other", "src"], t),
    "brpoplpush": lambda r, t: r.brpoplpush("src", "dst", t),
    "bzpopmin": lambda r, t: r.bzpopmin(["src"], t),
}


@pytest.mark.parametrize("command", BLOCKING_POPS)
def test_blocking_pop_waits_out_its_timeout(client: redis.Redis, command: str) -> None:
    started = time.monotonic()
    assert BLOCKING_POPS[command](client, 1) is None
    assert 0.9 <= time.monotonic() - started < scaled(3)


@pytest.mark.parametrize("command", BLOCKING_POPS)
def test_blocking_pop_wakes_when_another_client_pushes(
    client: redis.Redis, broker: EmbeddedBroker, command: str
) -> None:
    result: list[object] = []
    with redis.Redis.from_url(broker.url) as blocked:
        waiter = threading.Thread(target=lambda: result.append(BLOCKING_POPS[command](blocked, 10)))
        waiter.start()
        wait_for(lambda: blocked_clients(client) == 1, 10, 0.01, "the pop to block")
        pushed = time.monotonic()
        if command == "bzpopmin":
            client.zadd("src", {"job": 1})
        else:
            client.rpush("src", "job")
        waiter.join(scaled(10))
    assert time.monotonic() - pushed < scaled(1)
    assert result and result[0] is not None
    assert b"job" in (result[0] if isinstance(result[0], (list, tuple)) else [result[0]])


def test_client_that_leaves_while_blocked_does_not_take_the_next_job(client: redis.Redis, raw: Raw) -> None:
    assert raw.call("AUTH", PASSWORD) == b"+OK"
    raw.sock.sendall(b"*3\r\n$5\r\nBLPOP\r\n$5\r\nqueue\r\n$1\r\n0\r\n")
    wait_for(lambda: blocked_clients(client) == 1, 10, 0.01, "the pop to block")
    raw.close()
    wait_for(lambda: blocked_clients(client) == 0, 10, 0.01, "the server to notice the client left")
    client.rpush("queue", "job")
    assert client.lrange("queue", 0, -1) == [b"job"]


# (f) requirepass was not enforced
def test_every_command_needs_auth_first(raw: Raw) -> None:
    assert raw.call("PING") == b"-NOAUTH Authentication required."
    assert raw.call("SET", "k", "v") == b"-NOAUTH Authentication required."
    assert raw.call("HELLO", "3").startswith(b"-NOAUTH HELLO must be called")
    assert raw.call("AUTH", "wrong").startswith(b"-WRONGPASS")
    assert raw.call("AUTH", "someone", PASSWORD).startswith(b"-WRONGPASS")
    assert raw.call("PING") == b"-NOAUTH Authentication required."
    assert raw.call("AUTH", "default", PASSWORD) == b"+OK"
    assert raw.call("PING") == b"+PONG"


def test_redis_py_needs_the_right_password(broker: EmbeddedBroker) -> None:
    for protocol in (2, 3):  # RESP2 sends AUTH, RESP3 (redis-py 8's default) sends HELLO 3 AUTH
        options = {"port": broker.port, "protocol": protocol, "retry": Retry(NoBackoff(), 0)}
        with redis.Redis(**options) as anonymous, pytest.raises(redis.AuthenticationError):  # type: ignore[arg-type]
            anonymous.ping()
        with (
            redis.Redis(password="wrong", **options) as wrong,  # type: ignore[arg-type]
            pytest.raises(redis.AuthenticationError, match="invalid username-password"),
        ):
            wrong.ping()
        with redis.Redis(password=PASSWORD, **options) as right:  # type: ignore[arg-type]
            assert right.ping()


# (g) TOUCH was missing
def test_touch_counts_existing_keys_also_in_a_transaction(client: redis.Redis) -> None:
    client.set("a", 1)
    client.set("b", 2)
    assert client.touch("a", "b", "missing") == 2
    with client.pipeline() as pipe:
        pipe.watch("a")
        pipe.multi()
        pipe.touch("a")
        assert pipe.execute() == [1]


# (h) CLIENT KILL left the victim's TCP connection open, so an idle subscriber never noticed
def test_client_kill_closes_the_victims_connection(client: redis.Redis, raw: Raw) -> None:
    assert raw.call("AUTH", PASSWORD) == b"+OK"
    victim = int(raw.call("CLIENT", "ID")[1:])
    assert client.client_kill_filter(_id=str(victim)) == 1
    assert raw.sock.recv(1) == b""  # EOF, well within the socket's timeout


def test_stop_closes_client_connections_and_is_idempotent(client: redis.Redis, broker: EmbeddedBroker) -> None:
    assert client.ping()
    broker.stop()
    broker.stop()
    with pytest.raises(redis.ConnectionError):
        client.ping()


def test_client_kill_ends_a_blocked_victims_wait_and_connection(client: redis.Redis, raw: Raw) -> None:
    assert raw.call("AUTH", PASSWORD) == b"+OK"
    victim = int(raw.call("CLIENT", "ID")[1:])
    raw.sock.sendall(b"*3\r\n$5\r\nBLPOP\r\n$5\r\nqueue\r\n$1\r\n0\r\n")
    wait_for(lambda: blocked_clients(client) == 1, 10, 0.01, "the pop to block")
    assert client.client_kill_filter(_id=str(victim)) == 1
    assert raw.sock.recv(1) == b""
    wait_for(lambda: blocked_clients(client) == 0, 10, 0.01, "the killed pop to end")


# Pub/sub and blocking pops after the move to one loop thread: pushes and pipelines keep working
def test_published_message_reaches_an_idle_subscriber_at_once(client: redis.Redis, broker: EmbeddedBroker) -> None:
    with redis.Redis.from_url(broker.url) as listener, listener.pubsub(ignore_subscribe_messages=True) as pubsub:
        pubsub.subscribe("news")
        assert pubsub.get_message(timeout=scaled(5)) is None  # the subscribe confirmation, skipped
        wait_for(lambda: client.pubsub_numsub("news") == [(b"news", 1)], 10, 0.01, "the subscription")
        published = time.monotonic()
        assert client.publish("news", "hello") == 1
        message = pubsub.get_message(timeout=scaled(10))
    assert message is not None and message["data"] == b"hello"
    assert time.monotonic() - published < scaled(5)


def test_requests_pipelined_behind_a_blocking_pop_run_after_it(client: redis.Redis, raw: Raw) -> None:
    assert raw.call("AUTH", PASSWORD) == b"+OK"
    raw.sock.sendall(b"*3\r\n$5\r\nBLPOP\r\n$1\r\nq\r\n$2\r\n30\r\n*2\r\n$4\r\nECHO\r\n$5\r\nafter\r\n")
    wait_for(lambda: blocked_clients(client) == 1, 10, 0.01, "the pop to block")
    client.rpush("q", "job")
    assert raw.line() == b"*2"
    assert [raw.line() for _ in range(4)] == [b"$1", b"q", b"$3", b"job"]
    assert raw.value() == b"after"


def test_a_client_that_does_not_read_its_replies_holds_up_no_one(client: redis.Redis, raw: Raw) -> None:
    client.set("big", b"x" * 2**20)
    assert raw.call("AUTH", PASSWORD) == b"+OK"
    raw.sock.sendall(b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n" * 30)  # 30 MiB of replies it never reads
    started = time.monotonic()
    assert client.ping()
    assert time.monotonic() - started < scaled(10)  # a loop stuck writing to that client would never answer


# (i) a connection costs no thread (idle ones cost no CPU either: bench/bench_embedded_broker.py)
def test_idle_connections_cost_no_thread(broker: EmbeddedBroker) -> None:
    before = threading.active_count()
    conns = [Raw(broker.port) for _ in range(60)]
    try:
        for conn in conns[:30]:
            assert conn.call("AUTH", PASSWORD) == b"+OK"
        assert conns[-1].call("PING").startswith(b"-NOAUTH")
        assert threading.active_count() - before < 5
    finally:
        for conn in conns:
            conn.close()


def test_two_hundred_clients_connect_and_maxclients_is_at_least_256(broker: EmbeddedBroker) -> None:
    """Room for 32 workers (a few connections each), the desk, the TUI and `rq info`, many times over."""
    conns = [redis.Redis.from_url(broker.url) for _ in range(200)]
    try:
        assert all(conn.ping() for conn in conns)
        assert conns[0].info("clients")["connected_clients"] == 200
        assert conns[0].info("clients")["maxclients"] >= 256
    finally:
        for conn in conns:
            conn.close()


# (j) before AUTH, Redis's limits: 10 arguments, 16 KiB an argument; and a deadline to log in
def test_unauthenticated_bulk_over_16k_is_refused_before_it_arrives(broker: EmbeddedBroker) -> None:
    allowed = Raw(broker.port)
    assert allowed.call("AUTH", "p" * 16384).startswith(b"-WRONGPASS")
    allowed.close()
    refused = Raw(broker.port)
    refused.sock.sendall(b"*2\r\n$4\r\nAUTH\r\n$16385\r\n")
    assert refused.rest() == b"-ERR Protocol error: unauthenticated bulk length\r\n"
    refused.close()


def test_a_100_mib_unauthenticated_bulk_does_not_grow_the_desk(broker: EmbeddedBroker) -> None:
    desk = psutil.Process()
    before = desk.memory_info().rss
    chunk = b"x" * 2**20
    with socket.create_connection(("127.0.0.1", broker.port), timeout=scaled(30)) as attacker:
        try:
            attacker.sendall(b"*2\r\n$4\r\nAUTH\r\n$%d\r\n" % (100 * len(chunk)))
            for _ in range(100):  # the whole body but its CRLF: a server that buffers it holds it all now
                attacker.sendall(chunk)
            hung_up = False
        except (BrokenPipeError, ConnectionResetError):
            hung_up = True
        grown = desk.memory_info().rss - before
    assert hung_up, "the broker took the whole 100 MiB"
    assert grown < 20 * 2**20, f"the desk grew by {grown / 2**20:.0f} MiB"


def test_unauthenticated_multibulk_over_10_is_refused(broker: EmbeddedBroker) -> None:
    refused = Raw(broker.port)
    refused.sock.sendall(b"*11\r\n")
    assert refused.rest() == b"-ERR Protocol error: unauthenticated multibulk length\r\n"
    refused.close()
    allowed = Raw(broker.port)
    assert allowed.call("AUTH", PASSWORD) == b"+OK"
    assert allowed.call("MSET", *[f"k{i}" for i in range(10)]) == b"+OK"  # 11 arguments
    assert allowed.call("SET", "big", "v" * 100_000) == b"+OK"
    allowed.close()


def test_a_connection_that_does_not_log_in_is_closed(broker: EmbeddedBroker, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(broker_defaults, "AUTH_TIMEOUT", 1.0)
    logged_in, silent, chatty, logged_out = (Raw(broker.port, 30) for _ in range(4))
    assert logged_in.call("AUTH", PASSWORD) == b"+OK"
    assert logged_out.call("AUTH", PASSWORD) == b"+OK"
    assert logged_out.call("RESET") == b"+RESET"  # logged out: it has AUTH_TIMEOUT to log in again
    started = time.monotonic()
    assert silent.rest() == b""
    assert logged_out.rest() == b""
    assert time.monotonic() - started < scaled(20)

    def hung_up() -> bool:
        try:
            reply = chatty.call("PING")
        except ConnectionError:
            return True
        assert reply.startswith(b"-NOAUTH"), reply
        return False

    # one that keeps talking without logging in goes the same way
    wait_for(hung_up, 10, 0.01, "the broker to close a connection that talks but never logs in")
    assert logged_in.call("PING") == b"+PONG"
    for conn in (logged_in, silent, chatty, logged_out):
        conn.close()


# (k) inline commands, as Redis takes them, and Redis's guard against requests from web pages
def test_inline_commands_parse_quotes_and_escapes_and_unbalanced_quotes_are_refused(broker: EmbeddedBroker) -> None:
    raw = Raw(broker.port)
    raw.sock.sendall(b"PING\r\n")
    assert raw.line() == b"-NOAUTH Authentication required."
    raw.sock.sendall(b"  AUTH  %s\n\r\n" % PASSWORD.encode())
    assert raw.line() == b"+OK"
    raw.sock.sendall(b"SET key \"a b\\x41\\t\\\"\"\r\nGET key\r\nECHO 'it\\'s'\r\nECHO \"\"\r\n")
    assert [raw.value() for _ in range(4)] == [b"OK", b'a bA\t"', b"it's", b""]
    raw.sock.sendall(b"ECHO \"unbalanced\r\n")
    assert raw.rest() == b"-ERR Protocol error: unbalanced quotes in request\r\n"
    raw.close()


@pytest.mark.parametrize(
    "request_bytes",
    [b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"],
    ids=["post", "get-then-host"],
)
def test_a_web_request_is_dropped_without_a_reply(
    broker: EmbeddedBroker, caplog: pytest.LogCaptureFixture, request_bytes: bytes
) -> None:
    raw = Raw(broker.port)
    with caplog.at_level(logging.WARNING):
        raw.sock.sendall(request_bytes)
        assert raw.rest() == b""
    assert "Possible SECURITY ATTACK" in caplog.text
    raw.close()


def test_host_closes_a_logged_in_connection_too(raw: Raw) -> None:
    assert raw.call("AUTH", PASSWORD) == b"+OK"
    raw.sock.sendall(b"*2\r\n$5\r\nHost:\r\n$9\r\nlocalhost\r\n")
    assert raw.rest() == b""


@pytest.mark.parametrize(
    ("request_bytes", "error"),
    [
        (b"*1\r\nx\r\n", b"expected '$', got 'x'"),
        (b"*x\r\n", b"invalid multibulk length"),
        (b"*1\r\n$-1\r\n", b"invalid bulk length"),
        (b"*1\r\n$" + b"1" * 70_000, b"too big bulk count string"),
        (b"*" + b"1" * 70_000, b"too big mbulk count string"),
        (b"x" * 70_000, b"too big inline request"),
    ],
    ids=["no-dollar", "bad-count", "negative-bulk", "long-bulk-line", "long-count-line", "long-inline"],
)
def test_protocol_errors_are_worded_as_redis_words_them(raw: Raw, request_bytes: bytes, error: bytes) -> None:
    raw.sock.sendall(request_bytes)
    assert raw.rest() == b"-ERR Protocol error: " + error + b"\r\n"


# (l) Redis's listen backlog, and its maxclients refusal
def test_listen_backlog_is_redis_511() -> None:
    server = listener.listen(("127.0.0.1", 0))  # listening, not accepting
    port = server.getsockname()[1]
    waiting: list[socket.socket] = []
    try:
        # a backlog of 5 would leave the 7th hanging in connect()
        waiting.extend(socket.create_connection(("127.0.0.1", port), timeout=scaled(3)) for _ in range(100))
    finally:
        for conn in waiting:
            conn.close()
        server.close()


def admitted_now(port: int) -> bool:
    conn = Raw(port)
    try:
        return conn.call("PING").startswith(b"-NOAUTH")
    finally:
        conn.close()


def test_connections_past_max_clients_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(broker_defaults, "MAX_CLIENTS", 3)
    broker = EmbeddedBroker(PASSWORD).start()
    admitted = [Raw(broker.port) for _ in range(3)]
    try:
        assert all(conn.call("AUTH", PASSWORD) == b"+OK" for conn in admitted)
        assert Raw(broker.port).rest() == b"-ERR max number of clients reached\r\n"
        admitted.pop().close()
        wait_for(lambda: admitted_now(broker.port), 10, 0.01, "room for a client once one has left")
    finally:
        for conn in admitted:
            conn.close()
        broker.stop()


@pytest.mark.slow
def test_stock_rq_worker_runs_a_json_job(client: redis.Redis, broker: EmbeddedBroker) -> None:
    job = Queue("default", connection=client, serializer=JSONSerializer).enqueue("operator.add", 2, 3)
    done = subprocess.run(
        [RQ, "worker", "--burst", "--url", broker.url, "--serializer", "json", "default"],
        capture_output=True,
        text=True,
        timeout=scaled(120),
    )
    assert done.returncode == 0, done.stderr
    job.refresh()
    assert job.get_status() == "finished"
    assert job.return_value() == 5


@pytest.mark.slow
def test_idle_rq_worker_blocks_and_wakes_for_a_new_job(client: redis.Redis, broker: EmbeddedBroker) -> None:
    worker = subprocess.Popen(
        [RQ, "worker", "--max-jobs", "1", "--url", broker.url, "--serializer", "json", "default"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(lambda: blocked_clients(client) == 1, 60, 0.01, "the worker to block in its dequeue")
        job = Queue("default", connection=client, serializer=JSONSerializer).enqueue("operator.add", 20, 22)
        output, _ = worker.communicate(timeout=scaled(60))
    finally:
        worker.kill()
    assert worker.returncode == 0, output
    job.refresh()
    assert job.return_value() == 42


@pytest.mark.slow
def test_rq_info_lists_the_queue(client: redis.Redis, broker: EmbeddedBroker) -> None:
    Queue("batchdesk-test", connection=client, serializer=JSONSerializer).enqueue("operator.add", 1, 1)
    done = subprocess.run([RQ, "info", "--url", broker.url], capture_output=True, text=True, timeout=scaled(60))
    assert done.returncode == 0, done.stderr
    assert "batchdesk-test" in done.stdout
