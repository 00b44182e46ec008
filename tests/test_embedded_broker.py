"""The embedded broker: one test per fault fixed in stock fakeredis' TCP server, then stock RQ against it."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from rq import Queue
from rq.serializers import JSONSerializer
from rq.utils import get_version

from batchdesk.embedded_broker import EmbeddedBroker

PASSWORD = "test-password"
RQ = shutil.which("rq", path=os.path.dirname(sys.executable)) or "rq"  # the venv's, else PATH's


def wait_until(condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


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

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def call(self, *args: str) -> bytes:
        """Send one command; return its first reply line (enough for simple strings, errors and integers)."""
        self.sock.sendall(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a.encode()) for a in args))
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

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
    accepted = list(broker._server.connections)  # type: ignore[union-attr]
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
    assert 0.9 <= time.monotonic() - started < 3


@pytest.mark.parametrize("command", BLOCKING_POPS)
def test_blocking_pop_wakes_when_another_client_pushes(
    client: redis.Redis, broker: EmbeddedBroker, command: str
) -> None:
    result: list[object] = []
    with redis.Redis.from_url(broker.url) as blocked:
        waiter = threading.Thread(target=lambda: result.append(BLOCKING_POPS[command](blocked, 10)))
        waiter.start()
        wait_until(lambda: blocked_clients(client) == 1, what="the pop to block")
        pushed = time.monotonic()
        if command == "bzpopmin":
            client.zadd("src", {"job": 1})
        else:
            client.rpush("src", "job")
        waiter.join(10)
    assert time.monotonic() - pushed < 1
    assert result and result[0] is not None
    assert b"job" in (result[0] if isinstance(result[0], (list, tuple)) else [result[0]])


def test_client_that_leaves_while_blocked_does_not_take_the_next_job(client: redis.Redis, raw: Raw) -> None:
    assert raw.call("AUTH", PASSWORD) == b"+OK"
    raw.sock.sendall(b"*3\r\n$5\r\nBLPOP\r\n$5\r\nqueue\r\n$1\r\n0\r\n")
    wait_until(lambda: blocked_clients(client) == 1, what="the pop to block")
    raw.close()
    wait_until(lambda: blocked_clients(client) == 0, what="the server to notice the client left")
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
    assert raw.sock.recv(1) == b""  # EOF, well within the socket's 10 s timeout


def test_stop_closes_client_connections_and_is_idempotent(client: redis.Redis, broker: EmbeddedBroker) -> None:
    assert client.ping()
    broker.stop()
    broker.stop()
    with pytest.raises(redis.ConnectionError):
        client.ping()


@pytest.mark.slow
def test_stock_rq_worker_runs_a_json_job(client: redis.Redis, broker: EmbeddedBroker) -> None:
    job = Queue("default", connection=client, serializer=JSONSerializer).enqueue("operator.add", 2, 3)
    done = subprocess.run(
        [RQ, "worker", "--burst", "--url", broker.url, "--serializer", "json", "default"],
        capture_output=True,
        text=True,
        timeout=120,
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
        wait_until(lambda: blocked_clients(client) == 1, timeout=60, what="the worker to block in its dequeue")
        job = Queue("default", connection=client, serializer=JSONSerializer).enqueue("operator.add", 20, 22)
        output, _ = worker.communicate(timeout=60)
    finally:
        worker.kill()
    assert worker.returncode == 0, output
    job.refresh()
    assert job.return_value() == 42


@pytest.mark.slow
def test_rq_info_lists_the_queue(client: redis.Redis, broker: EmbeddedBroker) -> None:
    Queue("batchdesk-test", connection=client, serializer=JSONSerializer).enqueue("operator.add", 1, 1)
    done = subprocess.run([RQ, "info", "--url", broker.url], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "batchdesk-test" in done.stdout
