"""Telling people that a job ended: a desktop notification (``notify = true``) and the ``on_done`` command.

The desk that ran the job does both, as one of its services (batchdesk.desk.desk.default_services), so they
work for jobs nobody watches (`submit`, a background desk after its `run` was closed). Every
JOB_END_CHECK_SECONDS it looks for jobs that ended (done, failed, cancelled) since it started and tells each
ending once; a job ended again after `batchdesk retry` is told again.

- The notification: ``notify-send`` where it is installed (Linux desktops), ``osascript`` on macOS; elsewhere
  nothing. It never fails a job, and a failure to show one is only logged.
- ``on_done``: the command (argv: no shell runs unless the user writes one) with the job's summary in
  ``BATCHDESK_JOB_*`` environment variables (:func:`hook_env`) and as JSON on its stdin (the summary of
  ``batchdesk show --json``, failed items included, the first FAILED_ITEMS of them). It runs in a session of its
  own, without batchdesk's own settings in its environment, and is killed with everything it started after
  ``on_done_timeout`` seconds. A command that fails, cannot start or times out raises an alert; the job's
  outcome stays what it was. A command still running when the desk stops is left to finish on its own.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from typing import IO, Any

from batchdesk import defaults
from batchdesk.config import Settings
from batchdesk.jobs.summary import failed_items, summarize
from data.alerts import raise_alert
from data.models import Job
from data.states import JOB_ENDED
from workers.environment import external_env
from workers.proctree import kill_tree

log = logging.getLogger("batchdesk.notify")
FAILED_ITEMS = 100  # failed items in the JSON an on_done command reads
STDERR_KEPT = 300  # characters of a failed on_done command's stderr the alert quotes


def job_end_services(settings: Settings) -> list[JobEnds]:
    """The desk service that tells job ends, when the settings ask for it (``notify`` or ``on_done``)."""
    return [JobEnds(settings)] if settings.notify or settings.on_done else []


class JobEnds:
    """A desk service: finds the jobs that ended and tells each ending (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._since = time.time()
        self._told: dict[int, float] = {}  # job id -> the status_at of the ending told
        self._children: list[_Child] = []
        self._next = 0.0

    def start(self) -> None:
        """Jobs that ended before now were the previous desk's to tell."""
        self._since = time.time()

    def tick(self) -> None:
        """Reap the commands started, and tell the endings found, at most every JOB_END_CHECK_SECONDS."""
        self._children = [child for child in self._children if not child.ended()]
        now = time.monotonic()
        if now >= self._next:
            self._next = now + defaults.JOB_END_CHECK_SECONDS
            self._tell_new_endings()

    def stop(self) -> None:
        """A job that ended since the last tick is still told (a background desk stops right after its last job)."""
        try:
            self._tell_new_endings()
        except Exception:
            log.exception("could not tell the last job endings")

    def _tell_new_endings(self) -> None:
        cutoff = max(self._since, time.time() - defaults.JOB_END_WINDOW_SECONDS)
        self._told = {job_id: at for job_id, at in self._told.items() if at >= cutoff}
        ended = Job.select().where(Job.status.in_(JOB_ENDED) & (Job.status_at >= cutoff)).order_by(Job.status_at)
        for job in list(ended):
            at = float(job.status_at or 0)
            if self._told.get(job.id) != at:
                self._told[job.id] = at
                self._tell(job)

    def _tell(self, job: Job) -> None:
        summary = summarize(job)
        if self.settings.notify:
            argv = notification_command(sys.platform, *notification_text(summary))
            if argv is not None:
                self._start(argv, None, {}, defaults.NOTIFY_TIMEOUT_SECONDS, None)
        if self.settings.on_done:
            summary["failed_items"] = failed_items(job.id, limit=FAILED_ITEMS)
            self._start(list(self.settings.on_done), json.dumps(summary, default=str), hook_env(summary),
                        self.settings.on_done_timeout, job.id)

    def _start(self, argv: list[str], stdin: str | None, env: dict[str, str], timeout: float,
               job_id: int | None) -> None:
        """Start a command; with ``job_id`` (the on_done command) its failures are alerts, else only logged."""
        try:
            self._children.append(_Child(argv, stdin, env, timeout, job_id))
        except OSError as exc:
            _report(job_id, f"cannot start it: {exc.strerror or exc}", argv)


def notification_text(s: dict[str, Any]) -> tuple[str, str]:
    """(title, body) of a job's desktop notification."""
    title = f"batchdesk: job {s['job']} {s['status']}"
    body = (f"{s['name']} ({s['task']}): {s['done']} done, {s['failed']} failed, {s['cancelled']} cancelled of "
            f"{s['total']} in {s['duration_s']:.1f} s")
    return title, body + (f"\n{s['reason']}" if s["reason"] else "")


def notification_command(platform: str, title: str, body: str) -> list[str] | None:
    """The command that shows a desktop notification on ``platform`` (sys.platform), or None where there is none."""
    if platform == "darwin":
        return ["osascript", "-e", f"display notification {_applescript(body)} with title {_applescript(title)}"]
    notify_send = shutil.which("notify-send")
    return [notify_send, "--app-name=batchdesk", title, body] if notify_send else None


def _applescript(text: str) -> str:
    """``text`` as an AppleScript string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def hook_env(s: dict[str, Any]) -> dict[str, str]:
    """The job's summary as BATCHDESK_JOB_* variables (empty text where it has no value; REPORTS: one path a line)."""
    names = {"ID": "job", "NAME": "name", "TASK": "task", "STATUS": "status", "SOURCE": "source", "OUTPUT": "output",
             "TOTAL": "total", "DONE": "done", "FAILED": "failed", "CANCELLED": "cancelled", "BYTES": "bytes",
             "DURATION_S": "duration_s", "REASON": "reason"}
    env = {f"BATCHDESK_JOB_{name}": "" if s[key] is None else str(s[key]) for name, key in names.items()}
    env["BATCHDESK_JOB_REPORTS"] = "\n".join(s["reports"])
    env["BATCHDESK_JOB_SKIPPED"] = str((s.get("skipped") or {}).get("files", 0))
    return env


class _Child:
    """A command the service started: reaped on the desk's ticks, killed (whole) past its time limit."""

    def __init__(self, argv: list[str], stdin: str | None, env: dict[str, str], timeout: float,
                 job_id: int | None) -> None:
        self.argv, self.timeout, self.job_id = argv, timeout, job_id
        self.deadline = time.monotonic() + timeout
        self.stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115  (kept until the command ends)
        with tempfile.TemporaryFile() as feed:  # a file, not a pipe: a command that never reads cannot block us
            feed.write((stdin or "").encode())
            feed.seek(0)
            try:
                self.proc = subprocess.Popen(argv, stdin=feed, stdout=subprocess.DEVNULL, stderr=self.stderr,
                                             env=external_env(env), start_new_session=True)
            except OSError:
                self.stderr.close()
                raise

    def ended(self) -> bool:
        """Whether it has ended (or was killed for its time limit); a failure is reported once, here."""
        code = self.proc.poll()
        if code is None and time.monotonic() < self.deadline:
            return False
        if code is None:
            kill_tree(self.proc.pid)
            self.proc.wait()
            _report(self.job_id, f"it took longer than {self.timeout:g} s and was killed", self.argv)
        elif code != 0:
            self.stderr.seek(0)
            said = self.stderr.read().decode(errors="replace").strip()[-STDERR_KEPT:]
            _report(self.job_id, f"it exited with {code}" + (f": {said}" if said else ""), self.argv)
        self.stderr.close()
        return True


def _report(job_id: int | None, problem: str, argv: list[str]) -> None:
    """A failed on_done command is an alert on its job; a failed notification only a line in the desk's log."""
    if job_id is None:
        log.info("the desktop notification (%s) failed: %s", argv[0], problem)
        return
    raise_alert("job", f"the on_done command for job {job_id} failed: {problem}", job_id)
