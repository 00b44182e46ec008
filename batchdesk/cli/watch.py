"""``batchdesk watch …``: configure drop folders (rows in the store; a running desk picks them up).

Registered on the main group with ``main.add_command(watch)``; errors are BatchdeskErrors, which
the main group prints on one line with exit code 2.
"""

from __future__ import annotations

from pathlib import Path

import click

from batchdesk.cli.context import (
    echo_json,
    exclude_option,
    include_option,
    opt_option,
    parse_opts,
    priority_option,
    with_store,
)
from batchdesk.desk.info import read_desk_info
from batchdesk.watch import control as watch_control
from batchdesk.watch.spec import KEEP, ON_DONE, ON_FAIL, WatchSpec
from data.states import WatchState


@click.group("watch")
def watch() -> None:
    """Drop folders: every file dropped in a watched folder is processed by its task."""


@watch.command("add")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--task", "-t", required=True, help="Task to run on each dropped file.")
@opt_option
@click.option("--recursive", "-r", is_flag=True, help="Also take files dropped in subfolders.")
@include_option
@exclude_option
@click.option("--on-done", type=click.Choice(ON_DONE), default=KEEP, show_default=True,
              help="After a file is processed: leave it, move it to PATH/done/, or delete it.")
@click.option("--on-fail", type=click.Choice(ON_FAIL), default=KEEP, show_default=True,
              help="After a file failed: leave it, or move it to PATH/failed/ with NAME.error.txt.")
@priority_option
@click.option("--polling", is_flag=True, help="Poll the folder instead of OS events (network shares).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def add(ctx: click.Context, path: Path, task: str, opts: tuple[str, ...], recursive: bool,
        include: tuple[str, ...], exclude: tuple[str, ...], on_done: str, on_fail: str, queue: str | None,
        polling: bool, as_json: bool) -> None:
    """Watch PATH: files dropped there from now on (and those already there) are processed."""
    settings = with_store(ctx)
    spec = WatchSpec(path=str(path), task=task, options=parse_opts(opts), recursive=recursive,
                     include=include, exclude=exclude, on_done=on_done, on_fail=on_fail, queue=queue,
                     polling=polling)
    row = watch_control.add_watch(settings, spec)
    if as_json:
        echo_json(watch_control.watch_summary(row))
        return
    after = f" (on done: {row.on_done}, on fail: {row.on_fail})" if (row.on_done, row.on_fail) != (KEEP, KEEP) else ""
    click.echo(f"watch {row.id}: {row.path} -> {row.task}{after}")
    if read_desk_info(settings.data_dir) is None:
        click.echo("no desk is running: files are taken once one runs (`batchdesk serve` or the TUI)", err=True)


@watch.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """List watches with their status and their rolling job's counts."""
    with_store(ctx)
    rows = watch_control.list_watches()
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no watches yet: try `batchdesk watch add FOLDER --task checksum`")
        return
    click.echo(f"{'ID':>3}  {'STATUS':<7} {'TASK':<13} {'ON-DONE':<7} {'JOB':>4} {'QUEUED':>7} {'DONE':>8} "
               f"{'FAILED':>6}  PATH")
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
    with_store(ctx)
    row = watch_control.remove_watch(ref)
    click.echo(f"watch {row.id} removed: {row.path}")


def _set_paused(ctx: click.Context, ref: str, paused: bool) -> None:
    with_store(ctx)
    row = watch_control.set_paused(ref, paused)
    click.echo(f"watch {row.id} is now {WatchState.PAUSED if paused else WatchState.ACTIVE}")


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
