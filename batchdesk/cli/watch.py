"""``batchdesk watch …``: configure drop folders (rows in the store; a running desk picks them up).

Registered on the main group with ``main.add_command(watch)``; errors are BatchdeskErrors, which
the main group prints on one line with exit code 2.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from batchdesk import defaults, locations
from batchdesk.errors import BatchdeskError
from batchdesk.watch.spec import ON_DONE, ON_FAIL, WatchSpec


def _open(ctx: click.Context):
    settings = ctx.obj["settings"]
    from data.store import open_store

    locations.ensure_private_dir(settings.data_dir)
    open_store(settings.store_path)
    return settings


def _desk_running(settings) -> bool:
    from batchdesk.desk.info import read_desk_info

    return read_desk_info(settings.data_dir) is not None


def _parse_opts(pairs: tuple[str, ...]) -> dict[str, str]:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise BatchdeskError(f"--opt takes key=value, not {pair!r}")
        options[key.strip()] = value
    return options


@click.group("watch")
def watch() -> None:
    """Drop folders: every file dropped in a watched folder is processed by its task."""


@watch.command("add")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--task", "-t", required=True, help="Task to run on each dropped file.")
@click.option("--opt", "-o", "opts", multiple=True, metavar="KEY=VALUE", help="Task option (repeatable).")
@click.option("--recursive", "-r", is_flag=True, help="Also take files dropped in subfolders.")
@click.option("--include", multiple=True, metavar="GLOB", help="Only files matching (repeatable).")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip files matching (repeatable).")
@click.option("--on-done", type=click.Choice(ON_DONE), default="keep", show_default=True,
              help="After a file is processed: leave it, move it to PATH/done/, or delete it.")
@click.option("--on-fail", type=click.Choice(ON_FAIL), default="keep", show_default=True,
              help="After a file failed: leave it, or move it to PATH/failed/ with NAME.error.txt.")
@click.option("--priority", "--queue", "queue", type=click.Choice(defaults.QUEUES),
              help="Queue (default: the task's route).")
@click.option("--polling", is_flag=True, help="Poll the folder instead of OS events (network shares).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def add(ctx: click.Context, path: Path, task: str, opts: tuple[str, ...], recursive: bool,
        include: tuple[str, ...], exclude: tuple[str, ...], on_done: str, on_fail: str, queue: str | None,
        polling: bool, as_json: bool) -> None:
    """Watch PATH: files dropped there from now on (and those already there) are processed."""
    from batchdesk.watch import control as watch_control

    settings = _open(ctx)
    spec = WatchSpec(path=str(path), task=task, options=_parse_opts(opts), recursive=recursive,
                     include=include, exclude=exclude, on_done=on_done, on_fail=on_fail, queue=queue,
                     polling=polling)
    row = watch_control.add_watch(settings, spec)
    if as_json:
        click.echo(json.dumps(watch_control.watch_summary(row), indent=2))
        return
    click.echo(f"watch {row.id}: {row.path} -> {row.task}"
               + (f" (on done: {row.on_done}, on fail: {row.on_fail})" if (row.on_done, row.on_fail) != ("keep", "keep") else ""))
    if not _desk_running(settings):
        click.echo("no desk is running: files are taken once one runs (`batchdesk serve` or the TUI)", err=True)


@watch.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """List watches with their status and their rolling job's counts."""
    from batchdesk.watch import control as watch_control

    _open(ctx)
    rows = watch_control.list_watches()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no watches yet: try `batchdesk watch add FOLDER --task checksum`")
        return
    click.echo(f"{'ID':>3}  {'STATUS':<7} {'TASK':<13} {'ON-DONE':<7} {'JOB':>4} {'QUEUED':>7} {'DONE':>8} {'FAILED':>6}  PATH")
    for r in rows:
        click.echo(f"{r['id']:>3}  {r['status']:<7} {r['task']:<13} {r['on_done']:<7} {r['job'] or '-':>4} "
                   f"{r['queued']:>7} {r['done']:>8} {r['failed']:>6}  {r['path']}")
        if r["error"]:
            click.echo(f"     error: {r['error']}")


@watch.command("remove")
@click.argument("ref", metavar="ID|PATH")
@click.pass_context
def remove(ctx: click.Context, ref: str) -> None:
    """Stop watching a folder and forget which files it took (files are not touched)."""
    from batchdesk.watch import control as watch_control

    _open(ctx)
    row = watch_control.remove_watch(ref)
    click.echo(f"watch {row.id} removed: {row.path}")


def _set_paused(ctx: click.Context, ref: str, paused: bool) -> None:
    from batchdesk.watch import control as watch_control

    _open(ctx)
    row = watch_control.set_paused(ref, paused)
    click.echo(f"watch {row.id} is now {'paused' if paused else 'active'}")


@watch.command("pause")
@click.argument("ref", metavar="ID|PATH")
@click.pass_context
def pause(ctx: click.Context, ref: str) -> None:
    """Stop taking new files (files dropped meanwhile are taken on resume)."""
    _set_paused(ctx, ref, True)


@watch.command("resume")
@click.argument("ref", metavar="ID|PATH")
@click.pass_context
def resume(ctx: click.Context, ref: str) -> None:
    """Take files again (also retries a watch in error at once)."""
    _set_paused(ctx, ref, False)
