"""Chaos: a 20,000-item job while a random worker process is killed (SIGKILL) every few seconds.

Prints items lost (must be 0), items counted twice in the store (must be 0), and items whose work
ran more than once (expected: the items a killed worker had done but not yet committed).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import psutil

from bench.common import Section, cli_env, dataset, emit, log, scaled, scratch, table, verdict

HERE = Path(__file__).resolve().parent


def _killer(run: subprocess.Popen, every: float, stop: threading.Event, kills: list[int]) -> None:
    rng = random.Random(7)
    while not stop.wait(every):
        try:
            workers = [c for c in psutil.Process(run.pid).children() if "worker" in c.cmdline()]
        except psutil.Error:
            return
        if workers:
            victim = rng.choice(workers)
            try:
                victim.send_signal(signal.SIGKILL)
                kills.append(victim.pid)
            except psutil.Error:
                pass


def run(items: int, every: float) -> Section:
    folder = dataset("small", items)
    data = scratch("chaos-data")
    executions = data.parent / f"{data.name}-executions.log"
    env = cli_env(BATCHDESK_PLUGINS="chaos_task:record",
                  PYTHONPATH=os.pathsep.join([str(HERE), cli_env()["PYTHONPATH"]]))
    command = [sys.executable, "-m", "batchdesk", "--data-dir", str(data), "--broker", "embedded", "--workers", "2",
               "run", str(folder), "--task", "chaos_task:record", "--opt", "ms=0.5", "--opt", f"log={executions}",
               "-q", "--json"]
    stop, kills = threading.Event(), []
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killer = threading.Thread(target=_killer, args=(proc, every, stop, kills), daemon=True)
    killer.start()
    _, err = proc.communicate(timeout=1800)
    stop.set()
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        log(err[-2000:])
    con = sqlite3.connect(data / "batchdesk.sqlite3")
    statuses = dict(con.execute("SELECT status, COUNT(*) FROM item GROUP BY status").fetchall())
    counters = con.execute("SELECT items_done, items_failed, items_cancelled, items_total FROM job").fetchone()
    counted_twice = con.execute("SELECT COUNT(*) FROM item WHERE attempts > 1 AND status = 'done'").fetchone()[0]
    ran = Counter(executions.read_text().splitlines()) if executions.exists() else Counter()
    lost = items - statuses.get("done", 0)
    rows = [[items, len(kills), f"{elapsed:.1f}", lost, counted_twice, sum(1 for n in ran.values() if n > 1),
             "yes" if counters[0] == statuses.get("done", 0) and counters[3] == items else "NO"]]
    notes = [
        f"items lost (must be 0): {lost} {verdict(lost == 0)}",
        f"items counted twice in the store (must be 0): {counted_twice} {verdict(counted_twice == 0)}",
        "work redone = items whose task ran again because a killed worker had not committed them yet "
        "(the store still counts each once)",
        f"exit code {proc.returncode}",
    ]
    return Section("Chaos: random worker SIGKILLs during one job",
                   table(["items", "workers killed", "seconds", "lost", "counted twice", "work redone",
                          "counters match rows"], rows), notes)


def main(argv: list[str] | None = None) -> list[Section]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--every", type=float, default=2.0, help="seconds between kills")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    return [run(scaled(args.items, args.quick, 2000), args.every)]


if __name__ == "__main__":
    emit(main())
