"""What every command shares: the settings, the store opened for the command, the job options of
`run`/`submit`, `--opt` parsing and `--json` output (one helper each, as rq's CLI does it)."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from batchdesk import defaults, locations
from batchdesk.config import Settings
from batchdesk.errors import BatchdeskError
from data.store import StoreError, open_store

F = TypeVar("F", bound=Callable[..., Any])


def _user_errors() -> tuple[type[Exception], ...]:
    """The errors that are the user's to fix. A task error can only come from the task registry, which
    a light command (`jobs`) never imports, so it is looked up only where the registry was loaded."""
    registry = sys.modules.get("workers.registry")
    return (BatchdeskError, StoreError, *((registry.TaskError,) if registry is not None else ()))


class Group(click.Group):
    """Turns BatchdeskError (and store and task errors) into one line on stderr and a non-zero exit."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; a user-facing error ends it with one line and its exit code."""
        try:
            return super().invoke(ctx)
        except Exception as exc:
            if not isinstance(exc, _user_errors()):
                raise
            click.echo(f"batchdesk: error: {exc}", err=True)
            sys.exit(getattr(exc, "exit_code", 2))


def settings_of(ctx: click.Context) -> Settings:
    """The settings the main group built (command line > environment > config file > defaults)."""
    settings: Settings = ctx.obj["settings"]
    return settings


def with_store(ctx: click.Context) -> Settings:
    """Open the store for this command (creating the private data dir first); returns the settings."""
    settings = settings_of(ctx)
    locations.ensure_private_dir(settings.data_dir)
    open_store(settings.store_ref)
    return settings


def echo_json(data: Any) -> None:
    """Print ``data`` as indented JSON (``--json``): what scripts parse, so dates and paths become text."""
    click.echo(json.dumps(data, indent=2, default=str))


def parse_opts(pairs: tuple[str, ...]) -> dict[str, str]:
    """``--opt key=value`` pairs as a dict (the task validates the values)."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise BatchdeskError(f"--opt takes key=value, not {pair!r}")
        options[key.strip()] = value
    return options


# The options a job and a watch share (`run`, `submit`, `watch add`), defined once.
opt_option = click.option("--opt", "-o", "opts", multiple=True, metavar="KEY=VALUE", help="Task option (repeatable).")
priority_option = click.option("--priority", "--queue", "queue", type=click.Choice(defaults.QUEUES),
                               help="Queue (default: the task's route).")
include_option = click.option("--include", multiple=True, metavar="GLOB", help="Only files matching (repeatable).")
exclude_option = click.option("--exclude", multiple=True, metavar="GLOB", help="Skip files matching (repeatable).")


def task_options(func: F) -> F:
    """``--task`` and ``--opt``, shared by `run` and `submit`."""
    func = opt_option(func)
    return click.option("--task", "-t", default="checksum", show_default=True, help="Task to run on each file.")(func)


_JOB_OPTIONS = [
    priority_option,
    include_option,
    exclude_option,
    click.option("--hidden", is_flag=True, help="Include dotfiles."),
    click.option("--name", help="Job name (default: the folder's name)."),
    click.option("--output", type=click.Path(path_type=Path), help="Output folder (default: in the data dir)."),
    click.option("--retries", type=int, help="Batch retries for this job (default: task or global setting)."),
    click.option("--batch-timeout", type=int, metavar="SECONDS", help="Hard limit per batch for this job."),
    click.option("--item-timeout", type=float, metavar="SECONDS", help="Soft limit per item for this job."),
    click.option("--new", "new_job", is_flag=True,
                 help="A new job even if one for this folder is unfinished (`submit` always makes one)."),
    click.option("--all", "redo_all", is_flag=True,
                 help="Every file, also those an earlier job of this task and options did unchanged."),
]


def job_request(func: F) -> F:
    """FOLDER and every job option, handed to the command as one ``request: JobRequest`` (and ``new_job``)."""

    @functools.wraps(func)
    def build(*args: Any, folder: Path, task: str, opts: tuple[str, ...], queue: str | None,
              include: tuple[str, ...], exclude: tuple[str, ...], hidden: bool, name: str | None,
              output: Path | None, retries: int | None, batch_timeout: int | None, item_timeout: float | None,
              redo_all: bool, **kwargs: Any) -> Any:
        from batchdesk.jobs.submit import JobRequest  # here: the commands that take no job stay light

        policy = {"retries": retries, "batch_timeout": batch_timeout, "item_timeout": item_timeout}
        request = JobRequest(folder=folder, task=task, options=parse_opts(opts), queue=queue, include=include,
                             exclude=exclude, hidden=hidden, name=name, output_dir=output,
                             policy={k: v for k, v in policy.items() if v is not None}, only_changed=not redo_all)
        return func(*args, request=request, **kwargs)

    wrapped: Any = build
    for option in reversed(_JOB_OPTIONS):
        wrapped = option(wrapped)
    wrapped = task_options(wrapped)
    return click.argument("folder", type=click.Path(path_type=Path))(wrapped)
