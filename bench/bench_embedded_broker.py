#!/usr/bin/env python3
"""Embedded broker under idle and hostile clients: what a connection costs the desk process.

The broker runs alone in a child process (so its CPU and RSS are its own); this process is the clients:

  idle CPU     the broker's CPU share over a few seconds with N connections open and silent,
               once unauthenticated and once authenticated (an idle worker's pool connection)
  bulk RSS     the broker's RSS before and after a client that never logs in declares a 100 MiB bulk
               string and sends it (real Redis refuses a bulk over 16 KiB before AUTH)
  pipeline     round trip of a pipeline of 10 commands (SET, GET, INCR, ... ), mean over N rounds

    python bench/bench_embedded_broker.py [--idle 500] [--rounds 2000] [--window 5]
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import redis

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common
from bench.common import Section, log, table

PASSWORD = "bench-secret"
MIB = 2**20
_CHILD = (
    "import sys\n"
    "from batchdesk.broker.embedded import EmbeddedBroker\n"
    f"broker = EmbeddedBroker({PASSWORD!r}).start()\n"
    "print(broker.port, flush=True)\n"
    "sys.stdin.read()\n"
)


@contextlib.contextmanager
def broker_process() -> Iterator[tuple[psutil.Process, int]]:
    """The embedded broker in a child process: (its process, its port); stopped by closing its stdin."""
    child = subprocess.Popen([sys.executable, "-c", _CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdin is not None
        port = int(child.stdout.readline())
        yield psutil.Process(child.pid), port
    finally:
        if child.stdin:
            child.stdin.close()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def cpu_share(proc: psutil.Process, window: float) -> float:
    """The share of one core ``proc`` used over ``window`` seconds."""
    before = sum(proc.cpu_times()[:2])
    time.sleep(window)
    return (sum(proc.cpu_times()[:2]) - before) / window


def idle_cpu(count: int, window: float, authenticate: bool) -> float:
    with broker_process() as (proc, port):
        conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
        try:
            if authenticate:
                for conn in conns:
                    conn.sendall(b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(PASSWORD), PASSWORD.encode()))
                for conn in conns:
                    assert conn.recv(64) == b"+OK\r\n"
            time.sleep(1)  # let accepts and thread starts settle
            return cpu_share(proc, window)
        finally:
            for conn in conns:
                conn.close()


def bulk_rss(size: int) -> tuple[float, float, str]:
    """RSS (MiB) before and after an unauthenticated client sends a ``size``-byte bulk, and how it ended."""
    with broker_process() as (proc, port):
        before = proc.memory_info().rss
        outcome = "accepted"
        with socket.create_connection(("127.0.0.1", port)) as conn:
            try:
                conn.sendall(b"*2\r\n$4\r\nAUTH\r\n$%d\r\n" % size)
                chunk = b"x" * MIB
                for _ in range(size // MIB):
                    conn.sendall(chunk)
                conn.sendall(b"\r\n")
            except OSError as exc:
                outcome = f"dropped ({type(exc).__name__})"
            conn.settimeout(10)
            with contextlib.suppress(OSError):
                outcome += f", reply {conn.recv(200).strip()!r}"
        return before / MIB, proc.memory_info().rss / MIB, outcome


def pipeline_round_trip(rounds: int) -> float:
    """Mean seconds per round trip of a 10-command pipeline."""
    with broker_process() as (_, port), redis.Redis(port=port, password=PASSWORD) as client:
        client.ping()

        def one_round(i: int) -> None:
            with client.pipeline(transaction=False) as pipe:
                for j in range(5):
                    pipe.set(f"k{j}", i)
                    pipe.incr(f"n{j}")
                pipe.execute()

        for i in range(100):  # warm up
            one_round(i)
        started = time.perf_counter()
        for i in range(rounds):
            one_round(i)
        return (time.perf_counter() - started) / rounds


def main(argv: list[str] | None = None) -> list[Section]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idle", type=int, default=500, help="idle connections")
    parser.add_argument("--rounds", type=int, default=2000, help="pipeline round trips")
    parser.add_argument("--window", type=float, default=5.0, help="seconds of idle CPU measured")
    parser.add_argument("--bulk-mib", type=int, default=100)
    args = parser.parse_args(argv)
    log(f"idle CPU, {args.idle} unauthenticated connections")
    unauth = idle_cpu(args.idle, args.window, authenticate=False)
    log(f"idle CPU, {args.idle} authenticated connections")
    auth = idle_cpu(args.idle, args.window, authenticate=True)
    log(f"RSS, {args.bulk_mib} MiB unauthenticated bulk")
    before, after, outcome = bulk_rss(args.bulk_mib * MIB)
    log(f"pipeline, {args.rounds} rounds")
    per_round = pipeline_round_trip(args.rounds)
    rows = [
        [f"idle CPU, {args.idle} unauthenticated connections", f"{unauth:.1%} of a core"],
        [f"idle CPU, {args.idle} authenticated connections", f"{auth:.1%} of a core"],
        [
            f"RSS before / after a {args.bulk_mib} MiB unauthenticated bulk",
            f"{before:.0f} / {after:.0f} MiB ({outcome})",
        ],
        [f"pipeline of 10 commands, mean of {args.rounds} round trips", f"{per_round * 1e6:.0f} µs"],
    ]
    section = Section("Embedded broker: idle and hostile clients", table(["measure", "value"], rows))
    common.emit([section])
    return [section]


if __name__ == "__main__":
    main()
