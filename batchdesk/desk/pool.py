"""The worker pool: local worker processes that it starts, reaps, respawns and stops.

Workers are forked from the desk's worker template (:mod:`workers.zygote`) when the desk has one:
milliseconds and almost no CPU each, the worker side being imported already. Else (the UI's desk,
not Linux, the template gone) they are started from this program's own command (the frozen
executable re-runs itself with ``worker``). The broker URL, password included, travels in the
environment or the template's pipe, never on the command line, so ``ps`` does not show it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from batchdesk import defaults, locations
from workers.priority import lower_priority
from workers.proctree import kill_tree
from workers.protocol import DESK_WAKE_ENV, HAND_BACK_SIGNAL, worker_name
from workers.zygote import ForkedWorker, Zygote, ZygoteError

log = logging.getLogger("batchdesk.pool")


@dataclass
class WorkerProcess:
    """A worker process this pool started; ``retiring`` once it was asked to stop (its exit is no death)."""

    name: str
    process: subprocess.Popen | ForkedWorker
    started_at: float = field(default_factory=time.time)
    retiring: bool = False


@dataclass(frozen=True)
class Death:
    """A worker that ended without being asked to."""

    name: str
    pid: int
    returncode: int

    @property
    def reason(self) -> str:
        """What happened, for the alert and the re-queued batch: the signal or the exit code."""
        if self.returncode < 0:
            return f"worker {self.name} (pid {self.pid}) was killed by {signal.Signals(-self.returncode).name}"
        return f"worker {self.name} (pid {self.pid}) exited with code {self.returncode}"


class WorkerPool:
    """Keeps ``target`` worker processes alive."""

    def __init__(self, redis_url: str, store: Path | str, data_dir: Path, plugins: tuple[str, ...] = (),
                 nice: int = defaults.WORKER_NICE, wake_signal: int | None = None,
                 zygote: Zygote | None = None) -> None:
        self.redis_url = redis_url
        self.store = store
        self.data_dir = data_dir
        self.plugins = plugins
        self.nice = nice
        self.wake_signal = wake_signal  # the workers signal this process so when a batch ends (None: never)
        self.zygote = zygote  # the template workers are forked from (None: they are started as processes)
        self.target = 0
        self.workers: dict[str, WorkerProcess] = {}
        self._seq = 0

    @property
    def size(self) -> int:
        """Workers running and not retiring (what counts toward ``target``)."""
        return sum(1 for w in self.workers.values() if not w.retiring)

    def pids(self) -> dict[str, int]:
        """Every worker this pool started that has not been reaped: name -> pid."""
        return {name: w.process.pid for name, w in self.workers.items()}

    def resize(self, target: int) -> None:
        """Start or retire workers until ``target`` are running. Retiring is a warm stop (SIGTERM)."""
        self.target = max(0, target)
        while self.size < self.target:
            self._spawn()
        active = [w for w in self.workers.values() if not w.retiring]
        for worker in active[self.target:]:
            worker.retiring = True
            self._signal(worker, signal.SIGTERM)
            self._hand_back(worker)

    def reap(self) -> tuple[list[str], list[Death]]:
        """Collect ended workers; respawn the ones that died unexpectedly. Returns the names of every
        worker collected (retired ones too) and the deaths among them."""
        exited, deaths = [], []
        for name, worker in list(self.workers.items()):
            code = worker.process.poll()
            if code is None:
                continue
            del self.workers[name]
            exited.append(name)
            if not worker.retiring:
                deaths.append(Death(name, worker.process.pid, code))
                log.warning(deaths[-1].reason)
        if deaths:
            self.resize(self.target)
        return exited, deaths

    def stop(self, grace: float = defaults.STOP_GRACE_SECONDS) -> None:
        """Warm-stop every worker: it takes no new batch, and the one in hand stops after its current
        item and goes back to the queue; kill what is left after ``grace``."""
        self.target = 0
        for worker in self.workers.values():
            worker.retiring = True
            self._signal(worker, signal.SIGTERM)
            self._hand_back(worker)
        deadline = time.monotonic() + grace
        for worker in self.workers.values():
            try:
                worker.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker %s did not stop in %.0f s; killing it", worker.name, grace)
                self._kill_group(worker)
                worker.process.wait()
        self.workers.clear()

    def _spawn(self) -> WorkerProcess:
        self._seq += 1
        name = worker_name(os.getpid(), self._seq)
        logs = locations.logs_dir(self.data_dir)
        logs.mkdir(parents=True, exist_ok=True)
        # URLs go by environment, not argv: a store URL, like the broker's, may carry a password.
        env = {"BATCHDESK_REDIS_URL": self.redis_url, "BATCHDESK_STORE": str(self.store),
               "BATCHDESK_PLUGINS": ",".join(self.plugins), "BATCHDESK_WORKER_NICE": str(self.nice)}
        if self.wake_signal is not None:
            env[DESK_WAKE_ENV] = f"{os.getpid()}:{int(self.wake_signal)}"
        process = self._fork(name, env, logs / "workers.log") or self._start(name, env, logs / "workers.log")
        lower_priority(self.nice, process.pid)  # at once: its start-up then yields to the desk's own work
        worker = WorkerProcess(name, process)
        self.workers[name] = worker
        return worker

    def _fork(self, name: str, env: dict[str, str], log_path: Path) -> ForkedWorker | None:
        """A worker forked from the template, or None (no template, or it failed: start a process)."""
        if self.zygote is None or not self.zygote.alive:
            return None
        run = {"redis_url": self.redis_url, "store": str(self.store), "name": name, "plugins": list(self.plugins),
               "nice": self.nice}
        try:
            return self.zygote.spawn(name, env, str(log_path), run)
        except ZygoteError as exc:  # the desk closes it when it stops; its workers run on meanwhile
            log.warning("%s; starting workers as new processes from now on", exc)
            self.zygote = None
            return None

    def _start(self, name: str, env: dict[str, str], log_path: Path) -> subprocess.Popen:
        """A worker started as a new ``batchdesk worker`` process."""
        command = [*locations.self_command(), "worker", "--name", name, "--desk-pid", str(os.getpid())]
        with open(log_path, "ab") as log_file:
            return subprocess.Popen(
                command, env=dict(os.environ, **env), stdin=subprocess.DEVNULL, stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in the terminal goes to the desk, which stops workers warmly
            )

    @staticmethod
    def _signal(worker: WorkerProcess, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            worker.process.send_signal(sig)

    @staticmethod
    def _hand_back(worker: WorkerProcess) -> None:
        """Ask the worker's work-horse to stop after the item in hand and hand its batch back."""
        try:
            horses = psutil.Process(worker.process.pid).children()
        except psutil.Error:
            return
        for horse in horses:
            with contextlib.suppress(psutil.Error):
                horse.send_signal(HAND_BACK_SIGNAL)

    @staticmethod
    def _kill_group(worker: WorkerProcess) -> None:
        """Kill a worker, its work-horse and every process an item's command started."""
        kill_tree(worker.process.pid)
