"""The task registry: the only functions a worker will ever run on a file.

A task is a plain function ``(path, ctx) -> dict``. It registers with :func:`task`
(built-ins in ``workers/tasks/``), through the ``batchdesk.tasks`` entry-point group, or as a
``module:function`` reference that the user enabled in the config file. Workers refuse any
task name that is not in the registry, so a queue entry can never name arbitrary code.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, replace
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable, Mapping

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "batchdesk.tasks"


_TASK_LOGGER = logging.getLogger("batchdesk.task")


class TaskError(Exception):
    """Raised for a bad task name or bad task options; the message tells the user what to fix."""


class ItemError(Exception):
    """Raised by a task to fail one item with a reason a person can read (no traceback kept)."""


@dataclass(frozen=True)
class Option:
    """One documented task option: what the CLI's ``--opt``, the TUI and the config file accept."""

    name: str
    type: type = str
    default: Any = None
    help: str = ""
    choices: tuple[str, ...] = ()
    required: bool = False  # no default: leaving it out (or empty) is an error naming the option

    def parse(self, raw: Any) -> Any:
        """Convert a raw value (usually a string from the command line) to this option's type."""
        if self.required and (raw is None or (isinstance(raw, str) and not raw.strip())):
            raise TaskError(f"option {self.name!r} is required" + (f": {self.help}" if self.help else ""))
        if raw is None:
            return self.default
        if self.type is bool and isinstance(raw, str):
            value: Any = raw.strip().lower() in {"1", "true", "yes", "on"}
        else:
            try:
                value = self.type(raw)
            except (TypeError, ValueError) as exc:
                raise TaskError(f"option {self.name!r}: {raw!r} is not a valid {self.type.__name__}") from exc
        if self.choices and value not in self.choices:
            raise TaskError(f"option {self.name!r}: choose one of {', '.join(self.choices)}")
        return value


@dataclass
class TaskContext:
    """What a task gets besides the path: its options, where outputs go, a logger, a progress hook."""

    options: Mapping[str, Any]
    output_dir: Path
    rel_path: str
    source_root: Path
    logger: logging.Logger = _TASK_LOGGER
    progress: Callable[[float], None] = lambda fraction: None

    def output_path(self, suffix: str = "", name: str | None = None) -> Path:
        """Path under the job's output folder that mirrors the input's relative path.

        It never escapes the output folder (``..`` and absolute parts are refused) and the
        parent folder is created.
        """
        rel = Path(self.rel_path)
        if name is not None:
            rel = rel.with_name(name)
        if suffix:
            rel = rel.with_name(rel.name + suffix)
        target = (self.output_dir / rel).resolve()
        root = self.output_dir.resolve()
        if root != target and root not in target.parents:
            raise ItemError(f"output path {rel} would leave the output folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        return target


@dataclass
class JobContext:
    """What a task's job-level ``finalize`` hook gets when a job ends: where to write reports."""

    job_id: int
    options: Mapping[str, Any]
    output_dir: Path
    source_root: Path
    results: Callable[[], Any]  # iterates (rel_path, status, result dict | None, error | None)


TaskFunc = Callable[[Path, TaskContext], dict]
FinalizeFunc = Callable[[JobContext], None]


@dataclass(frozen=True)
class TaskSpec:
    """A registered task: its function, documented options and an optional job-level report hook."""

    name: str
    func: TaskFunc
    description: str = ""
    options: tuple[Option, ...] = ()
    finalize: FinalizeFunc | None = None
    # Rough cost model for the planner's first batches: seconds per item plus seconds per byte.
    cost_per_item: float = 0.0005
    cost_per_byte: float = 2e-9
    # A task that only opens the file may take the path as a plain str: on overhead-bound jobs
    # (tiny files) building a Path per item costs as much as the work.
    str_path: bool = False

    def parse_options(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Validate user options against the schema, filling defaults; unknown keys are an error."""
        known = {opt.name: opt for opt in self.options}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise TaskError(
                f"task {self.name!r} has no option {', '.join(unknown)}; "
                f"known: {', '.join(known) or 'none'}"
            )
        return {name: opt.parse(raw.get(name)) for name, opt in known.items()}


_REGISTRY: dict[str, TaskSpec] = {}
_loaded = False


def task(
    name: str,
    *,
    description: str = "",
    options: tuple[Option, ...] = (),
    finalize: FinalizeFunc | None = None,
    cost_per_item: float = 0.0005,
    cost_per_byte: float = 2e-9,
    str_path: bool = False,
) -> Callable[[TaskFunc], TaskFunc]:
    """Decorator that registers a built-in or plugin task under ``name``."""

    def register(func: TaskFunc) -> TaskFunc:
        _REGISTRY[name] = TaskSpec(
            name=name,
            func=func,
            description=description or _first_line(func.__doc__),
            options=options,
            finalize=finalize,
            cost_per_item=cost_per_item,
            cost_per_byte=cost_per_byte,
            str_path=str_path,
        )
        return func

    return register


def load(enabled_refs: tuple[str, ...] = ()) -> dict[str, TaskSpec]:
    """Import built-in tasks, entry-point plugins and user-enabled ``module:function`` tasks.

    A plugin that fails to import is logged and skipped: one broken plugin must not stop the desk.
    """
    global _loaded
    if not _loaded:
        importlib.import_module("workers.tasks")
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                ep.load()
            except Exception as exc:  # a broken third-party plugin
                log.warning("task plugin %s failed to load: %s", ep.name, exc)
        _loaded = True
    for ref in enabled_refs:
        if ref not in _REGISTRY:
            _REGISTRY[ref] = _spec_from_ref(ref)
    return dict(_REGISTRY)


def _spec_from_ref(ref: str) -> TaskSpec:
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise TaskError(f"task reference {ref!r} must look like 'package.module:function'")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise TaskError(f"cannot load task {ref!r}: {exc}") from exc
    if isinstance(obj, TaskSpec):
        return replace(obj, name=ref)  # jobs record the name they were asked for
    if not callable(obj):
        raise TaskError(f"task {ref!r} is not callable")
    return TaskSpec(name=ref, func=obj, description=_first_line(obj.__doc__))


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().split("\n", 1)[0]


def get(name: str, enabled_refs: tuple[str, ...] = ()) -> TaskSpec:
    """Look a task up by name; an unknown name is a :class:`TaskError` listing the known ones."""
    tasks = load(enabled_refs)
    if ":" in name and name not in enabled_refs and name not in tasks:
        raise TaskError(
            f"task {name!r} is not enabled: add it to 'plugins' in the config file to allow it"
        )
    try:
        return tasks[name]
    except KeyError:
        raise TaskError(f"unknown task {name!r}; known tasks: {', '.join(sorted(tasks))}") from None
