"""What a watch is made of, and reading ``[[watches]]`` tables from the TOML config file.

A leaf module (no store, no registry): :mod:`batchdesk.config` can call
:func:`parse_watch_entries` while it loads the settings, so a typo fails at start with a message
naming the entry and the key. Checking the task and the folder happens when the desk syncs the
entries into the store (:func:`batchdesk.watch.control.sync_config_watches`)::

    [[watches]]
    path = "~/Inbox/invoices"     # required: the folder to watch
    task = "extract-text"         # required: a registered task
    options = { chunk_size = 2000 }
    recursive = false             # also files in subfolders
    include = ["*.pdf"]           # globs on the relative path or the file name
    exclude = []
    on_done = "move"              # keep | move (to PATH/done/) | delete
    on_fail = "move"              # keep | move (to PATH/failed/, with NAME.error.txt)
    priority = "default"          # high | default | low (default: the task's route)
    polling = false               # poll instead of OS events (network shares)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from batchdesk import defaults
from batchdesk.errors import BatchdeskError

# What happens to a watched file once its item ended: left where it is, moved (to PATH/done/ or
# PATH/failed/), or deleted (done files only: a failed one is kept for a person to look at).
KEEP, MOVE, DELETE = "keep", "move", "delete"
ON_DONE = (KEEP, MOVE, DELETE)
ON_FAIL = (KEEP, MOVE)
# The keys a [[watches]] entry may have ("priority" and "queue" are the same setting).
KEYS = ("path", "task", "options", "recursive", "include", "exclude", "on_done", "on_fail", "priority",
        "queue", "polling")


class WatchConfigError(BatchdeskError):
    """A bad watch definition; the message names the entry and the key."""


@dataclass(frozen=True)
class WatchSpec:
    """A watch as the user asked for it (path not yet resolved, options not yet validated)."""

    path: str
    task: str
    options: Mapping[str, Any] = field(default_factory=dict)
    recursive: bool = False
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    on_done: str = KEEP
    on_fail: str = KEEP
    queue: str | None = None  # None: the task's route, else default
    polling: bool = False

    def check(self) -> WatchSpec:
        """This spec, if its values are allowed; else a WatchConfigError naming the bad one."""
        if self.on_done not in ON_DONE:
            raise WatchConfigError(f"on_done must be one of {', '.join(ON_DONE)}, not {self.on_done!r}")
        if self.on_fail not in ON_FAIL:
            raise WatchConfigError(f"on_fail must be one of {', '.join(ON_FAIL)}, not {self.on_fail!r}")
        if self.queue is not None and self.queue not in defaults.QUEUES:
            raise WatchConfigError(f"priority must be one of {', '.join(defaults.QUEUES)}, not {self.queue!r}")
        if not str(self.path).strip():
            raise WatchConfigError("path is empty")
        if not str(self.task).strip():
            raise WatchConfigError("task is empty")
        return self


def parse_watch_entries(raw: Any, source: str = "the config file") -> tuple[WatchSpec, ...]:
    """``[[watches]]`` (a list of tables) -> WatchSpecs; errors name the entry and the key."""
    if raw is None:
        return ()
    if isinstance(raw, Mapping) or not isinstance(raw, (list, tuple)):
        raise WatchConfigError(f"{source}: 'watches' must be an array of tables ([[watches]] entries)")
    specs: list[WatchSpec] = []
    paths: set[str] = set()
    for n, entry in enumerate(raw, 1):
        where = f"{source}: [[watches]] entry {n}"
        if isinstance(entry, WatchSpec):
            specs.append(entry.check())
            continue
        if not isinstance(entry, Mapping):
            raise WatchConfigError(f"{where} must be a table")
        unknown = sorted(set(entry) - set(KEYS))
        if unknown:
            raise WatchConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(KEYS)}")
        for key in ("path", "task"):
            if not isinstance(entry.get(key), str) or not entry[key].strip():
                raise WatchConfigError(f"{where}: '{key}' is required (a string)")
        options = entry.get("options", {})
        if not isinstance(options, Mapping):
            raise WatchConfigError(f"{where}: 'options' must be a table, e.g. options = {{ key = \"value\" }}")
        try:
            spec = WatchSpec(
                path=entry["path"], task=entry["task"], options=dict(options),
                recursive=_bool(entry, "recursive"), include=_globs(entry, "include"),
                exclude=_globs(entry, "exclude"), on_done=str(entry.get("on_done", KEEP)),
                on_fail=str(entry.get("on_fail", KEEP)),
                queue=entry.get("priority", entry.get("queue")), polling=_bool(entry, "polling"),
            ).check()
        except WatchConfigError as exc:
            raise WatchConfigError(f"{where}: {exc}") from None
        if spec.path in paths:
            raise WatchConfigError(f"{where}: path {spec.path!r} is watched twice")
        paths.add(spec.path)
        specs.append(spec)
    return tuple(specs)


def _bool(entry: Mapping[str, Any], key: str) -> bool:
    value = entry.get(key, False)
    if not isinstance(value, bool):
        raise WatchConfigError(f"'{key}' must be true or false, not {value!r}")
    return value


def _globs(entry: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = entry.get(key, ())
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise WatchConfigError(f"'{key}' must be a glob or a list of globs")
    return tuple(value)
