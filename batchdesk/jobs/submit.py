"""Submitting work: a folder becomes a Job with one pending Item per file.

Submission only writes the store. The running desk's feeder cuts batches and enqueues them, so a
submit works the same from the CLI, the TUI, a watch or a second process attached to the desk.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchdesk import defaults, locations
from batchdesk.config import Settings
from batchdesk.errors import BatchdeskError
from batchdesk.jobs.changed import UNCHANGED_KEY, describe_unchanged, earlier_work
from batchdesk.jobs.scan import ScanResult, check_folder, scan_folder
from batchdesk.planner import Readings, plan_batch, plan_workers
from data import queries, transitions
from data.models import Job
from data.states import JOB_ACTIVE, JobState
from data.store import write
from workers import registry
from workers.throttle import RateLimit

# What a job's items come from (Job.source_kind): a folder scanned once, or a watch feeding its rolling job.
FOLDER_SOURCE, WATCH_SOURCE = "folder", "watch"


class SubmitError(BatchdeskError):
    """The job cannot be submitted (bad task, bad options, bad queue)."""


class NothingChanged(BatchdeskError):
    """Every file of the folder was done, unchanged, by earlier jobs: no job is recorded (not a mistake)."""

    exit_code = 0

    def __init__(self, unchanged: dict[str, Any], output_dir: Path) -> None:
        super().__init__(f"nothing to do: {describe_unchanged(unchanged)}")
        self.unchanged, self.output_dir = unchanged, output_dir


@dataclass(frozen=True)
class JobRequest:
    """Everything a user chooses when starting a job from a folder."""

    folder: Path
    task: str
    options: Mapping[str, Any] | None = None
    queue: str | None = None
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    hidden: bool = False
    name: str | None = None
    output_dir: Path | None = None
    policy: Mapping[str, Any] | None = None  # this job's retries / time limits (see failure_policy)
    # take only the new and changed files (batchdesk.jobs.changed): what `run` and `submit` do unless `--all`
    only_changed: bool = False


POLICY_KEYS = ("retries", "retry_backoff", "batch_timeout", "item_timeout")


def failure_policy(settings: Settings, task: str, overrides: Mapping[str, Any] | None = None) -> dict:
    """Retries and time limits for a job: the global settings, then the task's, then the job's own."""
    merged: dict[str, Any] = {"retries": settings.retries, "retry_backoff": list(settings.retry_backoff),
                              "batch_timeout": settings.batch_timeout, "item_timeout": settings.item_timeout}
    layers = ((settings.task_policies.get(task) or {}, f"task_policies.{task}"), (overrides or {}, "the job"))
    for layer, where in layers:
        unknown = sorted(set(layer) - set(POLICY_KEYS))
        if unknown:
            raise SubmitError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(POLICY_KEYS)}")
        merged.update({k: v for k, v in layer.items() if v is not None})
    try:
        return {"retries": int(merged["retries"]), "backoff": [float(x) for x in merged["retry_backoff"]],
                "timeout": int(merged["batch_timeout"]), "item_timeout": float(merged["item_timeout"])}
    except (TypeError, ValueError) as exc:
        raise SubmitError(f"bad retry/time-limit setting for task {task!r}: {exc}") from exc


def resolve_task(settings: Settings, name: str, options: Mapping[str, Any] | None,
                 source: Path | None = None) -> tuple[registry.TaskSpec, dict]:
    """Look the task up and validate its options (``source``: the folder, for files named relative
    to it); errors name what to fix."""
    try:
        spec = registry.get(name, settings.plugins)
        return spec, spec.parse_options(dict(options or {}), source_root=source)
    except registry.TaskError as exc:
        raise SubmitError(str(exc)) from exc


def route(settings: Settings, task: str, queue: str | None) -> str:
    """The queue for a job: the one asked for, else the task's configured route, else default."""
    chosen = queue or settings.routes.get(task) or defaults.DEFAULT_QUEUE
    if chosen not in defaults.QUEUES:
        raise SubmitError(f"unknown queue/priority {chosen!r}; use one of {', '.join(defaults.QUEUES)}")
    return chosen


@dataclass(frozen=True)
class Submission:
    """What a submit did: the job it recorded or took up, and the scan (warnings) when it scanned."""

    job: Job
    scan: ScanResult | None  # None when an unfinished job was resumed instead
    resumed: bool


def check_request(settings: Settings, request: JobRequest) -> None:
    """The mistakes a submit can show before it scans anything (folder, task, options, queue, limits),
    so a command fails with them before it starts a desk."""
    check_folder(request.folder)
    spec, _ = resolve_task(settings, request.task, request.options)
    route(settings, request.task, request.queue)
    failure_policy(settings, spec.name, request.policy)


def submit_or_resume(settings: Settings, request: JobRequest, resume: bool = True) -> Submission:
    """Submit a folder; with ``resume``, an unfinished job for the same folder and task is taken up
    instead (a paused one is resumed). The store must be open."""
    if resume:
        existing = find_resumable(request.folder, request.task)
        if existing is not None:
            if existing.status == JobState.PAUSED:
                transitions.resume_job(existing.id)
            return Submission(Job.get_by_id(existing.id), None, True)
    job, scan = submit_folder(settings, request)
    return Submission(job, scan, False)


def forget_job(job_id: int) -> None:
    """Delete a job that a failed command created (its items and batches go with it)."""
    with write():
        Job.delete().where(Job.id == job_id).execute()


def submit_folder(settings: Settings, request: JobRequest) -> tuple[Job, ScanResult]:
    """Scan the folder and record the job and its items. The store must be open."""
    spec, options = resolve_task(settings, request.task, request.options, Path(request.folder).expanduser())
    queue = route(settings, request.task, request.queue)
    scan = scan_folder(request.folder, request.include, request.exclude, request.hidden)
    policy = failure_policy(settings, spec.name, request.policy)
    earlier = earlier_work(spec, options, scan.root, request.output_dir) if request.only_changed else None
    files, unchanged = earlier.split(scan.files) if earlier else (scan.files, None)
    if earlier and unchanged and not files:
        raise NothingChanged(unchanged, earlier.output_dir)
    job = create_job(settings, spec, options, queue, source=scan.root, name=request.name or scan.root.name,
                     output_dir=request.output_dir or (earlier.output_dir if earlier else None), files=files,
                     links=scan.links, policy=policy, unchanged=unchanged if unchanged and unchanged["files"] else None)
    return job, scan


def create_job(
    settings: Settings,
    spec: registry.TaskSpec,
    options: dict,
    queue: str,
    source: Path,
    name: str,
    output_dir: Path | None = None,
    files: list[tuple[str, int, float]] | None = None,
    source_kind: str = FOLDER_SOURCE,
    watch_id: int | None = None,
    links: set[str] | frozenset[str] = frozenset(),
    policy: dict | None = None,
    unchanged: dict | None = None,
) -> Job:
    """Create the Job row, its output folder and (when given) its items, with the planner's first plan
    (``unchanged``: the files it leaves out, as batchdesk.jobs.changed counts them)."""
    now = time.time()
    files = files or []
    readings = Readings.now()
    workers = plan_workers(readings, settings.workers)
    total_bytes = sum(size for _, size, _ in files)
    batch = plan_batch(len(files), total_bytes / max(1, len(files)), workers.count,
                       spec.cost_per_item, spec.cost_per_byte, ram_available=readings.ram_available)
    with write():
        job = Job.create(
            name=name, source=str(source), source_kind=source_kind, watch=watch_id, task=spec.name,
            options=options, queue=queue, output_dir="", created_at=now, status_at=now,
            end_step="report" if spec.finalize is not None else None,
            batch_config={
                "batch_size": batch.size, "max_bytes": batch.max_bytes, "workers": workers.count,
                "reason": f"{batch.reason}; workers: {workers.reason}",
                **(policy or failure_policy(settings, spec.name)),
                "rate_limit": rate_limit_for(settings, spec.name, queue),
                "breaker": {"threshold": settings.breaker_threshold, "min_items": settings.breaker_min_items},
                **({UNCHANGED_KEY: unchanged} if unchanged else {}),
            },
        )
        out = (Path(output_dir).expanduser().resolve() if output_dir
               else locations.outputs_dir(settings.data_dir) / f"job-{job.id}")
        if out == Path(source) or Path(source) in out.parents:
            raise SubmitError(f"the output folder {out} is inside the source folder: its outputs would be "
                              "picked up as inputs; choose an --output outside it")
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SubmitError(f"cannot create output folder {out}: {exc.strerror}") from exc
        job.output_dir = str(out)
        job.save(only=[Job.output_dir])
        # Same transaction as the job row: the desk never sees a job without its items.
        if files:
            queries.insert_items(job.id, files, links)
    return Job.get_by_id(job.id)


def rate_limit_for(settings: Settings, task: str, queue: str) -> dict | None:
    """The configured shared rate limit for this task (else its queue), as the runner reads it."""
    for scope, key in ((f"task:{task}", task), (f"queue:{queue}", f"queue:{queue}")):
        if key in settings.rate_limits:
            return RateLimit.parse(scope, settings.rate_limits[key]).to_json()
    return None


def find_resumable(source: Path, task: str) -> Job | None:
    """An unfinished job for the same folder and task: running the folder again resumes it."""
    return (
        Job.select()
        .where((Job.source == str(Path(source).expanduser().resolve())) & (Job.task == task)
               & (Job.status.in_([*JOB_ACTIVE, JobState.FINISHING])) & (Job.source_kind == FOLDER_SOURCE))
        .order_by(Job.id.desc())
        .first()
    )
