"""The task registry: the only functions a worker will ever run on a file.

A task is a plain function ``(path, ctx) -> dict``. It registers with :func:`task`
(built-ins in ``workers/tasks/``), through the ``batchdesk.tasks`` entry-point group, or as a
``module:function`` reference that the user enabled in the config file. Workers refuse any
task name that is not in the registry, so a queue entry can never name arbitrary code.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from importlib.metadata import entry_points
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from workers.defaults import TASK_COST_PER_BYTE, TASK_COST_PER_ITEM

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from data.results_table import ResultsTable

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "batchdesk.tasks"


_TASK_LOGGER = logging.getLogger("batchdesk.task")


class TaskError(Exception):
    """Raised for a bad task name or bad task options; the message tells the user what to fix."""


class ItemError(Exception):
    """Raised by a task to fail one item with a reason a person can read (no traceback kept).

    ``result`` (JSON-serialisable) is recorded on the failed item, e.g. a command's exit code and stderr.
    """

    def __init__(self, *args: object, result: dict[str, Any] | None = None) -> None:
        super().__init__(*args)
        self.result = result


TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
FALSE_WORDS = frozenset({"false", "no", "off", "0"})
BOOL_ALLOWED = "true/false, yes/no, on/off, 1/0"
_TYPE_WORDS: dict[type, str] = {int: "integer", float: "number", str: "text", bool: BOOL_ALLOWED}


@dataclass(frozen=True)
class CheckContext:
    """What an option's ``check`` sees besides its value: every option of the task (parsed, defaults
    filled) for cross-option rules, and the job's source folder when it is known."""

    options: Mapping[str, Any]
    source_root: Path | None = None


OptionCheck = Callable[[Any, CheckContext], None]


@dataclass(frozen=True)
class Option:
    """One documented task option: what the CLI's ``--opt``, the TUI and the config file accept.

    Constraints are declared here once and enforced when a job or watch is submitted, so a bad
    value is refused before any item runs: ``choices``, ``min`` / ``max`` (inclusive) and ``above``
    (exclusive) for numbers, and ``check(value, ctx)`` for any other rule (a format, another
    option): it raises ``ValueError`` (or :class:`TaskError` / :class:`ItemError`) saying what is
    wrong, and ``allowed`` says in a few words what it accepts (shown by :meth:`describe`).
    """

    name: str
    type: type = str
    default: Any = None
    help: str = ""
    choices: tuple[str, ...] = ()
    required: bool = False  # no default: leaving it out (or empty) is an error naming the option
    min: float | None = None
    max: float | None = None
    above: float | None = None
    check: OptionCheck | None = None
    allowed: str = ""

    def describe(self) -> str:
        """What the option accepts, in one line: ``integer >= 50``, ``one of a, b``, ``number > 0``."""
        if self.choices:
            text = "one of " + self._choice_list()
        elif self.type is str and self.allowed:
            text = ""
        else:
            text = _TYPE_WORDS.get(self.type, self.type.__name__) + self._bounds()
        text = ", ".join(part for part in (text, self.allowed) if part)
        return f"required; {text}" if self.required else text

    def _choice_list(self) -> str:
        """``auto, ymd`` but ``auto, ",", ";"``: punctuation choices are quoted so the list reads."""
        return ", ".join(c if str(c).replace("_", "").replace("-", "").isalnum() else f'"{c}"' for c in self.choices)

    def _bounds(self) -> str:
        low = f" >= {self.min:g}" if self.min is not None else f" > {self.above:g}" if self.above is not None else ""
        if self.max is None:
            return low
        if self.min is not None:
            return f" from {self.min:g} to {self.max:g}"
        return f"{low}, <= {self.max:g}" if low else f" <= {self.max:g}"

    def parse(self, raw: Any) -> Any:
        """Convert a raw value (usually a string from the command line) to this option's type and
        check its type, choices and bounds (``check`` needs the other options: see parse_options)."""
        if self.required and (raw is None or (isinstance(raw, str) and not raw.strip())):
            raise TaskError(f"option {self.name!r} is required" + (f": {self.help}" if self.help else ""))
        if raw is None:
            return self.default
        value = self._bool(raw) if self.type is bool else self._convert(raw)
        if self.choices and value not in self.choices:
            raise TaskError(f"option {self.name!r}: {raw!r} is not allowed; choose one of {self._choice_list()}")
        if self.min is None and self.max is None and self.above is None:
            return value
        if value != value:
            raise self._refuse(raw, "is not a number")
        if (self.min is not None and value < self.min) or (self.above is not None and value <= self.above):
            raise self._refuse(raw, "is too small")
        if self.max is not None and value > self.max:
            raise self._refuse(raw, "is too large")
        return value

    def _convert(self, raw: Any) -> Any:
        try:
            return self.type(raw)
        except (TypeError, ValueError) as exc:
            raise self._refuse(raw, f"is not a valid {self.type.__name__}") from exc

    def _bool(self, raw: Any) -> bool:
        """true/false, yes/no, on/off, 1/0 in any case (or a real bool): anything else is a mistake."""
        if isinstance(raw, bool):
            return raw
        word = raw.strip().lower() if isinstance(raw, str) else str(raw) if isinstance(raw, int) else None
        if word in TRUE_WORDS or word in FALSE_WORDS:
            return word in TRUE_WORDS
        raise self._refuse(raw, "is not a valid bool")

    def _refuse(self, raw: Any, problem: str) -> TaskError:
        return TaskError(f"option {self.name!r}: {raw!r} {problem}; allowed: {self.describe()}")

    def run_check(self, value: Any, shown: Any, ctx: CheckContext) -> None:
        """Apply ``check`` (skipped when there is no value at all); its reason becomes a TaskError."""
        if self.check is None or value is None:
            return
        try:
            self.check(value, ctx)
        except (ValueError, TaskError, ItemError) as exc:
            raise TaskError(f"option {self.name!r}: {shown!r} is not allowed: {exc}") from None


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
    # The done rows of results() as a table of the store, given the result fields to pull out (see table()).
    results_table: Callable[[Mapping[str, type]], AbstractContextManager[ResultsTable]] | None = None

    def table(self, fields: Mapping[str, type]) -> AbstractContextManager[ResultsTable]:
        """The done results as a table ``path, <fields>`` to group and sort in SQL (``with job.table(
        {"sha256": str, "size": int}) as t: t.rows("SELECT ... FROM {table} ...")``): a temporary table
        of the store, filled by the store itself; built from results() when the context has no store."""
        if self.results_table is not None:
            return self.results_table(fields)
        from data.results_table import rows_table

        return rows_table(self.results, fields)


TaskFunc = Callable[[Path, TaskContext], dict]
# A task's ``preload(options)``: loads what every batch of it needs (a model) into the worker process
# before it forks the batch's work-horse, once per worker; the store is open in the calling thread.
PreloadFunc = Callable[[Mapping[str, Any]], None]
# A task's ``forget(options, folder, rel_paths)``: files that left a watched folder (deleted, moved away);
# the task forgets what it kept of them (the index: their documents). Called by the desk, store open.
ForgetFunc = Callable[[Mapping[str, Any], Path, list[str]], None]
# What a finalize hook returns: the paths it wrote (relative to the output folder, or absolute inside it).
Written = Iterable[str | Path] | str | Path | None
FinalizeFunc = Callable[[JobContext], Written]


@dataclass(frozen=True)
class TaskSpec:
    """A registered task: its function, documented options and an optional job-level report hook."""

    name: str
    func: TaskFunc
    description: str = ""
    options: tuple[Option, ...] = ()
    finalize: FinalizeFunc | None = None
    # Rough cost model for the planner's first batches: seconds per item plus seconds per byte.
    cost_per_item: float = TASK_COST_PER_ITEM
    cost_per_byte: float = TASK_COST_PER_BYTE
    # A task that only opens the file may take the path as a plain str: on overhead-bound jobs
    # (tiny files) building a Path per item costs as much as the work.
    str_path: bool = False
    preload: PreloadFunc | None = None  # see PreloadFunc: called by workers.worker before a batch's fork
    forget: ForgetFunc | None = None  # see ForgetFunc: called by the desk's watch service
    # Whether a new job of a folder may leave out the files an earlier job of this task (and options) did,
    # unchanged. Its end-of-job step still sees the whole folder (JobContext.results includes them).
    skip_unchanged: bool = True

    def parse_options(self, raw: Mapping[str, Any], source_root: Path | None = None) -> dict[str, Any]:
        """Validate user options against the schema, filling defaults; unknown keys are an error.

        Every submit path (CLI, TUI, watches, config file) calls this, so a bad value is one
        :class:`TaskError` before any job exists. ``source_root`` (the job's folder, when known)
        lets a check find files named relative to it.
        """
        known = {opt.name: opt for opt in self.options}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise TaskError(
                f"task {self.name!r} has no option {', '.join(unknown)}; "
                f"known: {', '.join(known) or 'none'}"
            )
        values = {name: opt.parse(raw.get(name)) for name, opt in known.items()}
        ctx = CheckContext(MappingProxyType(values), Path(source_root) if source_root is not None else None)
        for name, opt in known.items():
            opt.run_check(values[name], raw.get(name, values[name]), ctx)
        return values


_REGISTRY: dict[str, TaskSpec] = {}
_loaded = False


def task(
    name: str,
    *,
    description: str = "",
    options: tuple[Option, ...] = (),
    finalize: FinalizeFunc | None = None,
    cost_per_item: float = TASK_COST_PER_ITEM,
    cost_per_byte: float = TASK_COST_PER_BYTE,
    str_path: bool = False,
    preload: PreloadFunc | None = None,
    forget: ForgetFunc | None = None,
    skip_unchanged: bool = True,
) -> Callable[[TaskFunc], TaskFunc]:
    """Decorator that registers a built-in or plugin task under ``name``."""

    def register(func: TaskFunc) -> TaskFunc:
        home = _built_in().get(name)
        if home is not None and func.__module__ != home and not func.__module__.startswith(home + "."):
            log.warning("task %s from %s ignored: a built-in task has that name", name, func.__module__)
            return func
        _REGISTRY[name] = TaskSpec(
            name=name,
            func=func,
            description=description or _first_line(func.__doc__),
            options=options,
            finalize=finalize,
            cost_per_item=cost_per_item,
            cost_per_byte=cost_per_byte,
            str_path=str_path,
            preload=preload,
            forget=forget,
            skip_unchanged=skip_unchanged,
        )
        return func

    return register


def load(enabled_refs: tuple[str, ...] = ()) -> dict[str, TaskSpec]:
    """Import built-in tasks, entry-point plugins and user-enabled ``module:function`` tasks.

    A plugin that fails to import is logged and skipped: one broken plugin must not stop the desk.
    """
    global _loaded
    if not _loaded:
        for module in _built_in().values():
            importlib.import_module(module)
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


def _built_in() -> dict[str, str]:
    from workers.tasks import BUILT_IN  # the package's table only: it imports no task module

    return BUILT_IN


def get(name: str, enabled_refs: tuple[str, ...] = ()) -> TaskSpec:
    """Look a task up by name; an unknown name is a :class:`TaskError` listing the known ones. A built-in
    task is found by importing its own module only (its name is reserved: no plugin can take it)."""
    if not _loaded and name in _built_in():
        importlib.import_module(_built_in()[name])
        if name in _REGISTRY:
            return _REGISTRY[name]
    tasks = load(enabled_refs)
    if ":" in name and name not in enabled_refs and name not in tasks:
        raise TaskError(
            f"task {name!r} is not enabled: add it to 'plugins' in the config file to allow it"
        )
    try:
        return tasks[name]
    except KeyError:
        raise TaskError(f"unknown task {name!r}; known tasks: {', '.join(sorted(tasks))}") from None
