"""Watch control operations, shared by the CLI, the TUI and the config file: rows in the store.

A running desk's watch service re-reads the Watch rows every half second, so adding, pausing,
resuming or removing a watch from another process takes effect within a tick or two.
Each watch feeds one *rolling* job (``inbox: <folder name>``, source_kind ``watch``) that never
finishes on its own; :func:`rolling_job` finds or makes it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchdesk.config import Settings
from batchdesk.errors import BatchdeskError
from batchdesk.jobs.scan import ScanError, check_folder
from batchdesk.jobs.submit import FOLDER_SOURCE, WATCH_SOURCE, SubmitError, create_job, resolve_task, route
from batchdesk.watch.spec import WatchConfigError, WatchSpec
from data import transitions
from data.models import Job, Setting, Watch
from data.states import JOB_ACTIVE, WatchState
from data.store import write

CONFIG_OWNED_KEY = "watches.from_config"  # paths of the watches that the config file owns
WATCH_JOB_PREFIX = "inbox: "


class WatchError(BatchdeskError):
    """The watch cannot be added or found; the message says what to do."""


def resolve_spec(settings: Settings, spec: WatchSpec, require_folder: bool = True,
                 ignore_id: int | None = None) -> dict[str, Any]:
    """Validate a spec into Watch row fields (absolute path, parsed options, queue)."""
    fields_ = _placement(settings, spec, require_folder, ignore_id)
    task_spec, options = resolve_task(settings, spec.task, spec.options, Path(fields_["path"]))
    return _with_task(settings, fields_, task_spec.name, options, spec.queue)


def _with_task(settings: Settings, fields_: dict[str, Any], task: str, options: dict,
               queue: str | None) -> dict[str, Any]:
    return {**fields_, "task": task, "options": options, "queue": route(settings, task, queue)}


def _placement(settings: Settings, spec: WatchSpec, require_folder: bool, ignore_id: int | None) -> dict[str, Any]:
    """The row fields that do not depend on the task: where, what to take, what to do after."""
    try:
        spec.check()
    except WatchConfigError as exc:
        raise WatchError(str(exc)) from None
    path = Path(spec.path).expanduser().resolve()
    if require_folder:
        try:
            check_folder(path)
        except ScanError as exc:
            raise WatchError(str(exc)) from None
    _check_overlaps(settings, path, spec.recursive, ignore_id)
    return {
        "path": str(path), "recursive": bool(spec.recursive), "include": list(spec.include),
        "exclude": list(spec.exclude), "on_done": spec.on_done, "on_fail": spec.on_fail, "polling": bool(spec.polling),
    }


def _config_fields(settings: Settings, spec: WatchSpec, ignore_id: int | None) -> tuple[dict[str, Any], str | None]:
    """Row fields for a config entry and, when its task or options are bad, the reason.

    A bad task or option value still makes (or updates) the watch, as written, so it is listed in
    error with the reason; the desk keeps it in error (it re-validates before taking a file) until
    the entry is fixed. Anything else (an overlap, a bad value for the watch itself) raises.
    """
    fields_ = _placement(settings, spec, require_folder=False, ignore_id=ignore_id)
    try:
        task_spec, options = resolve_task(settings, spec.task, spec.options, Path(fields_["path"]))
    except SubmitError as exc:
        as_written = json.loads(json.dumps(dict(spec.options), default=str))  # TOML dates -> text
        return _with_task(settings, fields_, spec.task, as_written, spec.queue), str(exc)
    return _with_task(settings, fields_, task_spec.name, options, spec.queue), None


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def _check_overlaps(settings: Settings, path: Path, recursive: bool, ignore_id: int | None) -> None:
    data_dir = Path(settings.data_dir).expanduser().resolve()
    if _inside(path, data_dir) or (_inside(data_dir, path) and (recursive or data_dir == path)):
        raise WatchError(f"cannot watch {path}: it overlaps batchdesk's data folder {data_dir}")
    for other in Watch.select():
        if other.id == ignore_id or other.path == str(path):
            continue
        other_path = Path(other.path)
        if (other.recursive and _inside(path, other_path)) or (recursive and _inside(other_path, path)):
            raise WatchError(f"{path} overlaps watch {other.id} ({other.path}): a file would be taken twice")


def add_watch(settings: Settings, spec: WatchSpec) -> Watch:
    """Add a watch (the folder must exist). Raises if the folder is already watched."""
    fields_ = resolve_spec(settings, spec)
    existing = Watch.get_or_none(Watch.path == fields_["path"])
    if existing is not None:
        raise WatchError(f"{fields_['path']} is already watched (watch {existing.id}); remove it first")
    with write():
        return Watch.create(**fields_, status=WatchState.ACTIVE, created_at=time.time())


def find_watch(ref: str | int) -> Watch:
    """A watch by id or by folder path."""
    text = str(ref).strip()
    if text.isdigit():
        watch = Watch.get_or_none(Watch.id == int(text))
    else:
        watch = Watch.get_or_none(Watch.path == str(Path(text).expanduser().resolve()))
    if watch is None:
        raise WatchError(f"no watch {text!r}; `batchdesk watch list` shows them")
    return watch


def set_paused(ref: str | int, paused: bool) -> Watch:
    """Pause (stop taking files; files dropped meanwhile are taken on resume) or resume a watch."""
    watch = find_watch(ref)
    with write():
        status = WatchState.PAUSED if paused else WatchState.ACTIVE
        Watch.update(status=status, error=None).where(Watch.id == watch.id).execute()
    return Watch.get_by_id(watch.id)


def remove_watch(ref: str | int) -> Watch:
    """Delete a watch and its seen-file memory. Its rolling job becomes an ordinary job: items
    already taken still run, and the job finishes when they have ended."""
    watch = find_watch(ref)
    with write():
        for job in list(Job.select(Job.id).where((Job.watch == watch.id) & Job.status.in_(JOB_ACTIVE))):
            retire_job(job.id)
        Setting.delete().where(Setting.key == f"watch.{watch.id}.after").execute()
        watch.delete_instance()
    return watch


def retire_job(job_id: int) -> None:
    """A rolling job its watch no longer feeds (the watch was removed, or its task changed) becomes an
    ordinary folder job, so it finishes once the items it took have ended."""
    with write():
        Job.update(source_kind=FOLDER_SOURCE).where(Job.id == job_id).execute()
        transitions.settle_job(job_id)


def current_job(watch_id: int) -> Job | None:
    """The watch's newest job (the rolling one while it is active)."""
    return Job.select().where(Job.watch == watch_id).order_by(Job.id.desc()).first()


def rolling_job(settings: Settings, watch: Watch) -> Job:
    """The active job this watch feeds; a new one if there is none (or its task/options/queue changed)."""
    job = (Job.select().where((Job.watch == watch.id) & (Job.source_kind == WATCH_SOURCE)
                              & Job.status.in_(JOB_ACTIVE)).order_by(Job.id.desc()).first())
    spec, options = resolve_task(settings, watch.task, watch.options, Path(watch.path))
    if job is not None and (job.task, job.options, job.queue, job.source) == (spec.name, options, watch.queue,
                                                                              watch.path):
        return job
    return create_job(settings, spec, options, watch.queue, source=Path(watch.path),
                      name=WATCH_JOB_PREFIX + (Path(watch.path).name or watch.path),
                      source_kind=WATCH_SOURCE, watch_id=watch.id)


def watch_summary(watch: Watch) -> dict[str, Any]:
    """A watch as the CLI and the UI list it: its row, and its rolling job's counts."""
    job = current_job(watch.id)
    counts = {"job": None, "queued": 0, "done": 0, "failed": 0}
    if job is not None:
        counts = {"job": job.id, "queued": max(0, job.items_total - job.items_ended),
                  "done": job.items_done, "failed": job.items_failed}
    return {
        "id": watch.id, "path": watch.path, "status": watch.status, "error": watch.error, "task": watch.task,
        "options": watch.options, "recursive": watch.recursive, "include": watch.include,
        "exclude": watch.exclude, "on_done": watch.on_done, "on_fail": watch.on_fail, "priority": watch.queue,
        "polling": watch.polling, "from_config": watch.path in config_owned(), **counts,
    }


def list_watches() -> list[dict[str, Any]]:
    """Every watch (by id) as :func:`watch_summary` gives it."""
    return [watch_summary(w) for w in Watch.select().order_by(Watch.id)]


def config_owned() -> set[str]:
    """The paths of the watches the config file owns (removed when their entry goes)."""
    row = Setting.get_or_none(Setting.key == CONFIG_OWNED_KEY)
    return set(row.value or []) if row is not None else set()


@dataclass
class SyncResult:
    """What syncing the config file's watches changed, and what it could not (for alerts)."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # entries that could not become a watch (alerted)
    in_error: list[str] = field(default_factory=list)  # watches whose task or options are bad (status error)


def sync_config_watches(settings: Settings, specs: Iterable[WatchSpec]) -> SyncResult:
    """Make the store's watches match the config file's ``[[watches]]``.

    Entries are added or updated (by path; a watch added from the CLI for the same folder is taken
    over); watches that came from the config file and are no longer in it are removed. A user's
    pause is kept. An entry with a bad task or bad options is stored as written, in status error
    with the reason (see :func:`_config_fields`); any other bad entry (an overlap) is reported and
    left as it was.
    """
    result = SyncResult()
    owned = config_owned()
    keep: set[str] = set()
    for spec in specs:
        path = str(Path(spec.path).expanduser().resolve())
        keep.add(path)
        existing = Watch.get_or_none(Watch.path == path)
        try:
            fields_, problem = _config_fields(settings, spec, existing.id if existing is not None else None)
        except BatchdeskError as exc:
            result.errors.append(f"watch {path}: {exc}")
            continue
        if problem is not None:
            result.in_error.append(path)
        if _store_config_watch(existing, fields_, problem):
            (result.added if existing is None else result.updated).append(path)
    for path in sorted(owned - keep):
        watch = Watch.get_or_none(Watch.path == path)
        if watch is not None:
            remove_watch(watch.id)
            result.removed.append(path)
    with write():
        Setting.insert(key=CONFIG_OWNED_KEY, value=sorted(keep)).on_conflict_replace().execute()
    return result


def _store_config_watch(existing: Watch | None, fields_: dict[str, Any], problem: str | None) -> bool:
    """Create or update a config watch; False when the row already says the same."""
    state: dict[str, Any] = {}
    if problem is not None:
        paused = existing is not None and existing.status == WatchState.PAUSED
        state = {"error": problem} if paused else {"status": WatchState.ERROR, "error": problem}
    with write():
        if existing is None:
            Watch.create(**{"status": WatchState.ACTIVE, **fields_, **state}, created_at=time.time())
            return True
        changes = {k: v for k, v in fields_.items() if getattr(existing, k) != v}
        if not changes:
            return False
        if problem is None and existing.status == WatchState.ERROR:
            state = {"status": WatchState.ACTIVE, "error": None}  # fixed in the config: the desk opens it again
        Watch.update(**changes, **state).where(Watch.id == existing.id).execute()
    return True
