"""Commands that run or steer a desk and its workers: `serve`, `stop`, `worker`, `workers`, and the
store's upkeep: `cleanup`, `samples`."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click

from batchdesk import defaults
from batchdesk.cli.context import settings_of, with_store
from batchdesk.desk.info import BACKGROUND, SERVE, install_wake_signal, read_desk_info
from batchdesk.desk.link import stop_desk
from batchdesk.errors import BatchdeskError
from data.store import is_store_url


@click.command()
@click.option("--background", is_flag=True, hidden=True, help="Run as a background desk (what `run` starts).")
@click.option("--notify-fd", type=int, hidden=True, help="Where a background desk says how its start went.")
@click.pass_context
def serve(ctx: click.Context, background: bool, notify_fd: int | None) -> None:
    """Run a headless desk (broker, workers, watches) until Ctrl-C or SIGTERM."""
    from batchdesk.cli.follow import sigterm_as_interrupt  # imports here: `stop` and `worker` stay light
    from batchdesk.desk.session import Session
    from batchdesk.desk.stall import dump_stacks_on_sigquit, stop_within

    if background:
        from batchdesk.desk.background import serve_background

        notify = notify_fd if notify_fd is not None else os.open(os.devnull, os.O_WRONLY)
        sys.exit(serve_background(settings_of(ctx), notify))
    settings = with_store(ctx)
    running = read_desk_info(settings.data_dir)
    if running is not None and running.kind == BACKGROUND:
        click.echo(f"taking over from the background desk (pid {running.pid})", err=True)
        if not stop_desk(running, settings):
            raise BatchdeskError(f"the background desk (pid {running.pid}) did not stop; try `batchdesk stop`")
    elif running is not None:
        raise BatchdeskError(f"a desk is already running for this data dir ({running.kind}, pid {running.pid})")
    session = Session(settings, kind=SERVE)
    install_wake_signal()
    dump_stacks_on_sigquit()
    try:
        with sigterm_as_interrupt():
            session.ensure_desk()
            assert session.desk is not None and session.desk.broker is not None
            click.echo(f"desk running ({session.desk.broker.mode} broker); Ctrl-C to stop", err=True)
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        click.echo("stopping: workers stop after the item in hand; the rest resumes at the next start", err=True)
    finally:
        stop_within(defaults.STOP_STALL_SECONDS, session.close)


@click.command()
@click.pass_context
def stop(ctx: click.Context) -> None:
    """Stop the desk of this data dir (serve, the UI's or a background one); exit 1 if none runs.

    A `run` waiting for a job is interrupted first (its job pauses), so nothing starts the desk again."""
    from batchdesk.desk.waiters import interrupt_local_waiters

    settings = with_store(ctx)
    running = read_desk_info(settings.data_dir)
    if running is None:
        click.echo(f"no desk is running for {settings.data_dir}", err=True)
        sys.exit(1)
    interrupted = interrupt_local_waiters()
    if not stop_desk(running, settings):
        raise BatchdeskError(f"the desk (pid {running.pid}) did not stop within 30 s")
    extra = f"; interrupted {interrupted} waiting command(s)" if interrupted else ""
    click.echo(f"stopped the {running.kind} desk (pid {running.pid}){extra}")


@click.command()
@click.option("--redis-url", "redis_url", envvar="BATCHDESK_REDIS_URL", help="Broker URL [env BATCHDESK_REDIS_URL].")
@click.option("--store", metavar="FILE|URL",
              help="Store file or postgresql:// URL (default: the top-level --store, else the data dir's file).")
@click.option("--name", help="Worker name.")
@click.option("--queue", "queues", multiple=True, type=click.Choice(defaults.QUEUES), help="Queues, in order.")
@click.option("--burst", is_flag=True, help="Exit when the queues are empty.")
@click.option("--desk-pid", type=int, hidden=True, help="Stop when this process (the desk) dies.")
@click.pass_context
def worker(ctx: click.Context, redis_url: str | None, store: str | None, name: str | None,
           queues: tuple[str, ...], burst: bool, desk_pid: int | None) -> None:
    """Run one worker process (the desk starts these; run more on other machines to scale out)."""
    from workers.worker import run_worker  # here: the other commands need not import the worker side

    settings = settings_of(ctx)
    url = redis_url or settings.redis_url
    if not url:
        desk = read_desk_info(settings.data_dir)
        if desk is None:
            raise BatchdeskError("no broker: give --redis-url, or start a desk for this data dir")
        url = desk.url
    plugins = tuple(p for p in os.environ.get("BATCHDESK_PLUGINS", "").split(",") if p) or settings.plugins
    if store is not None and not is_store_url(store):
        store = str(Path(store).expanduser().resolve())
    run_worker(url, store or settings.store_ref, name=name, queues=queues or defaults.QUEUES,
               plugins=plugins, burst=burst, parent_pid=desk_pid, nice=settings.worker_nice)


@click.command()
@click.argument("count", required=False)
@click.pass_context
def workers(ctx: click.Context, count: str | None) -> None:
    """Show the worker pool, or set its size: a number, or `auto` to let the planner decide."""
    from batchdesk.dashboard import pool_status
    from batchdesk.desk.sizing import set_desired_workers

    with_store(ctx)
    if count is not None:
        try:
            wanted = None if count == "auto" else int(count)
        except ValueError:
            raise BatchdeskError(f"give a number of workers or 'auto', not {count!r}") from None
        set_desired_workers(wanted)
        click.echo("asked the desk to let the planner choose" if wanted is None
                   else f"asked the desk for {wanted} worker(s)")
    status = pool_status()
    target = status.target if status.target is not None else "-"
    click.echo(f"pool target: {target}  ({status.reason or 'no desk yet'})")


@click.command()
@click.option("--days", type=float, help="Retention in days (default: the retention_days setting).")
@click.pass_context
def cleanup(ctx: click.Context, days: float | None) -> None:
    """Forget ended jobs, samples and alerts older than the retention (outputs on disk are kept)."""
    from batchdesk.jobs.cleanup import cleanup as purge

    settings = with_store(ctx)
    purged = purge(settings.retention_days if days is None else days)
    click.echo(f"removed {purged.jobs} job(s), {purged.watch_items} old item(s) of watch jobs, "
               f"{purged.samples} sample(s), {purged.alerts} alert(s)")


@click.command()
@click.argument("dest", type=click.Path(path_type=Path), default=Path("batchdesk-samples"))
def samples(dest: Path) -> None:
    """Copy the bundled sample files (documents, statements) to DEST to try the tasks on."""
    import shutil
    from importlib.resources import as_file, files

    if dest.exists() and any(dest.iterdir()):
        raise BatchdeskError(f"{dest} exists and is not empty; choose another folder")
    with as_file(files("data") / "samples") as source:
        shutil.copytree(source, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    click.echo(str(dest.resolve()))
