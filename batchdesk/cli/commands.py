"""The ``batchdesk`` command line (click).

User mistakes print one clear line on stderr and exit 2; a job with failed or cancelled items
exits 1; success exits 0. ``--json`` gives machine-readable output where scripts want it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import click

from batchdesk import defaults
from batchdesk.config import BROKER_MODES, Settings, load_settings
from batchdesk.errors import BatchdeskError
from batchdesk.jobs.submit import JobRequest
from data.models import JOB_ENDED, Job, WorkerRow
from data.states import JobState
from data.store import StoreError, describe_store, is_store_url, open_store
from workers.registry import TaskError


def _settings(ctx: click.Context) -> Settings:
    return ctx.obj["settings"]


def _session(ctx: click.Context):
    """The desk-owning or desk-attached session (imported here: `worker` must start light)."""
    from batchdesk.desk.session import Session

    return Session(_settings(ctx))


class Group(click.Group):
    """Turns BatchdeskError (and store errors) into one line on stderr and a non-zero exit."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (BatchdeskError, StoreError, TaskError) as exc:
            click.echo(f"batchdesk: error: {exc}", err=True)
            sys.exit(getattr(exc, "exit_code", 2))


@click.group(cls=Group, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data-dir", type=click.Path(path_type=Path), help="Data folder [env BATCHDESK_DATA_DIR].")
@click.option("--broker", type=click.Choice(BROKER_MODES), help="Broker mode [env BATCHDESK_BROKER; default auto].")
@click.option("--redis-url", help="Use an external Redis instead [env BATCHDESK_REDIS_URL].")
@click.option("--store", metavar="FILE|URL",
              help="SQLite file, or postgresql://user:pw@host/db for workers on many hosts [env BATCHDESK_STORE].")
@click.option("--workers", type=int, help="Worker processes, overriding the planner [env BATCHDESK_WORKERS].")
@click.option("--config", "config_file", type=click.Path(path_type=Path), help="Config file [env BATCHDESK_CONFIG].")
@click.version_option(package_name="batchdesk")
@click.pass_context
def main(ctx: click.Context, data_dir: Path | None, broker: str | None, redis_url: str | None, store: str | None,
         workers: int | None, config_file: Path | None) -> None:
    """batchdesk: push folders of files through processing tasks, in batches, in the background."""
    try:
        settings = load_settings(
            {"data_dir": data_dir, "broker": broker, "redis_url": redis_url, "store": store, "workers": workers},
            config_file,
        )
    except BatchdeskError as exc:
        click.echo(f"batchdesk: error: {exc}", err=True)
        sys.exit(2)
    ctx.obj = {"settings": settings}
    if ctx.invoked_subcommand is None:
        ctx.invoke(ui_command)


@main.command("ui")
@click.pass_context
def ui_command(ctx: click.Context) -> None:
    """Open the terminal UI: a live desk for jobs, workers and resources (the default command)."""
    from ui.app import run_app

    sys.exit(run_app(_settings(ctx)))


def _parse_opts(pairs: tuple[str, ...]) -> dict[str, str]:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BatchdeskError(f"--opt takes key=value, not {pair!r}")
        options[key.strip()] = value
    return options


job_options = [
    click.option("--task", "-t", default="checksum", show_default=True, help="Task to run on each file."),
    click.option("--opt", "-o", "opts", multiple=True, metavar="KEY=VALUE", help="Task option (repeatable)."),
    click.option("--priority", "--queue", "queue", type=click.Choice(defaults.QUEUES), help="Queue (default: task route)."),
    click.option("--include", multiple=True, metavar="GLOB", help="Only files matching (repeatable)."),
    click.option("--exclude", multiple=True, metavar="GLOB", help="Skip files matching (repeatable)."),
    click.option("--hidden", is_flag=True, help="Include dotfiles."),
    click.option("--name", help="Job name (default: the folder's name)."),
    click.option("--output", type=click.Path(path_type=Path), help="Output folder (default: in the data dir)."),
    click.option("--retries", type=int, help="Batch retries for this job (default: task or global setting)."),
    click.option("--batch-timeout", type=int, metavar="SECONDS", help="Hard limit per batch for this job."),
    click.option("--item-timeout", type=float, metavar="SECONDS", help="Soft limit per item for this job."),
]


def with_job_options(func):
    for option in reversed(job_options):
        func = option(func)
    return func


def _request(folder: Path, task: str, opts: tuple[str, ...], queue: str | None, include: tuple[str, ...],
             exclude: tuple[str, ...], hidden: bool, name: str | None, output: Path | None,
             retries: int | None = None, batch_timeout: int | None = None,
             item_timeout: float | None = None) -> JobRequest:
    policy = {"retries": retries, "batch_timeout": batch_timeout, "item_timeout": item_timeout}
    return JobRequest(folder=folder, task=task, options=_parse_opts(opts), queue=queue, include=include,
                      exclude=exclude, hidden=hidden, name=name, output_dir=output,
                      policy={k: v for k, v in policy.items() if v is not None})


@main.command()
@click.argument("folder", type=click.Path(path_type=Path))
@with_job_options
@click.option("--new", "new_job", is_flag=True, help="Start a new job even if one for this folder is unfinished.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.pass_context
def run(ctx: click.Context, folder: Path, task: str, opts: tuple[str, ...], queue: str | None,
        include: tuple[str, ...], exclude: tuple[str, ...], hidden: bool, name: str | None, output: Path | None,
        retries: int | None, batch_timeout: int | None, item_timeout: float | None,
        new_job: bool, as_json: bool, quiet: bool) -> None:
    """Process every file in FOLDER and wait, showing progress; then print a summary.

    Exit codes: 0 every item done, 1 failed or cancelled items (or a failed report), 2 usage error,
    3 the job paused itself (circuit breaker), 130 interrupted (the job is paused; run again to resume).
    """
    from batchdesk.desk.link import DeskLink
    from batchdesk.jobs.submit import check_request, submit_or_resume

    began = time.monotonic()
    settings = _settings(ctx)
    request = _request(folder, task, opts, queue, include, exclude, hidden, name, output,
                       retries, batch_timeout, item_timeout)
    _open(settings)
    check_request(settings, request)  # a mistake is exit 2 before any desk starts or any job is recorded
    link = DeskLink(settings)
    with _interruptible("interrupted before the job was recorded"):
        link.ensure()  # forks a background desk now, if none runs: it starts while the folder is scanned
        try:
            submission = submit_or_resume(settings, request, resume=not new_job)
        except BaseException:
            link.release()
            raise
    if submission.resumed:
        job = submission.job
        click.echo(f"resuming job {job.id} ({job.items_ended}/{job.items_total} already ended)", err=True)
    for warning in (submission.scan.warnings if submission.scan and not as_json else [])[:20]:
        click.echo(f"warning: {warning}", err=True)
    _follow_to_end(settings, link, submission.job.id, created=not submission.resumed, as_json=as_json,
                   quiet=quiet, began=began)


def _follow_to_end(settings: Settings, link, job_id: int, created: bool, as_json: bool, quiet: bool,
                   began: float) -> None:
    """Wait for the job as one of its waiters, then print the summary and exit with its code."""
    from batchdesk.cli import follow
    from batchdesk.desk.background import DeskStartError
    from batchdesk.jobs.submit import forget_job
    from batchdesk.desk.waiters import this_process
    from data import transitions

    waiter = this_process()
    transitions.add_waiter(job_id, waiter)
    with follow.sigterm_as_interrupt():
        try:
            link.ensure()
            link.wake()
            job = follow.follow(link, job_id, show=not (quiet or as_json), note=lambda text: click.echo(text, err=True))
        except DeskStartError:
            transitions.remove_waiter(job_id, waiter)
            if created:
                forget_job(job_id)  # a command that fails leaves no job behind
            raise
        except KeyboardInterrupt:
            click.echo("\n" + follow.stop_waiting(job_id, waiter), err=True)
            sys.exit(130)
    transitions.remove_waiter(job_id, waiter)
    summary = job_summary(job, command_s=time.monotonic() - began)
    if as_json:
        summary["failed_items"] = _failed_items(job.id, limit=100)
        click.echo(json.dumps(summary, indent=2))
    else:
        _print_summary(summary)
    sys.exit(exit_code(job))


def exit_code(job: Job) -> int:
    """0 every item done, 1 failed or cancelled items or a failed end-of-job step, 3 paused."""
    if job.status == JobState.PAUSED:
        return 3
    return 0 if job.status == JobState.DONE and not job.items_failed and not job.items_cancelled else 1


@contextlib.contextmanager
def _interruptible(message: str):
    """Ctrl-C (or SIGTERM) before a job exists: one line and exit 130, no traceback."""
    from batchdesk.cli.follow import sigterm_as_interrupt

    try:
        with sigterm_as_interrupt():
            yield
    except KeyboardInterrupt:
        click.echo(f"\n{message}", err=True)
        sys.exit(130)


def job_summary(job: Job, command_s: float | None = None) -> dict[str, Any]:
    elapsed = ((job.finished_at or time.time()) - job.started_at) if job.started_at else 0.0
    summary = {
        "job": job.id, "name": job.name, "task": job.task, "status": job.status, "source": job.source,
        "total": job.items_total, "done": job.items_done, "failed": job.items_failed,
        "cancelled": job.items_cancelled, "bytes": job.bytes_total,
        "duration_s": round(elapsed, 3),
        "items_per_s": round(job.items_ended / elapsed, 1) if elapsed > 0 else None,
        "output": job.output_dir, "reports": list(job.outputs or []),
        "reason": job.reason,
        "paused_reason": job.reason if job.status == JobState.PAUSED else None,
        "batch_config": job.batch_config,
    }
    if command_s is not None:
        summary["command_s"] = round(command_s, 3)
    return summary


def _failed_items(job_id: int, limit: int) -> list[dict[str, Any]]:
    from data.models import Item

    return [{"path": i.path, "error": i.error} for i in Item.select(Item.path, Item.error).where(
        (Item.job == job_id) & (Item.status == "failed")).order_by(Item.id).limit(limit)]


def _print_summary(s: dict[str, Any]) -> None:
    rate = f"{s['items_per_s']:,.0f} files/s" if s["items_per_s"] else "-"
    took = f"; the command took {s['command_s']:.2f} s" if "command_s" in s else ""
    click.echo(
        f"job {s['job']} {s['status']}: {s['done']} done, {s['failed']} failed, {s['cancelled']} cancelled "
        f"of {s['total']} in {s['duration_s']:.2f} s ({rate}){took}"
    )
    click.echo(f"output: {s['output']}")
    for path in s["reports"]:
        click.echo(f"report: {path}")
    if s["status"] == JobState.PAUSED:
        click.echo(f"paused: {s['paused_reason']}", err=True)
        click.echo(f"resume it with: batchdesk resume {s['job']}", err=True)
    elif s["status"] in (JobState.FAILED, JobState.CANCELLED) and s["reason"]:
        click.echo(f"{s['status']}: {s['reason']}", err=True)
    if s["failed"]:
        click.echo(f"failed items: batchdesk show {s['job']} --failed", err=True)


@main.command()
@click.argument("folder", type=click.Path(path_type=Path))
@with_job_options
@click.option("--new", "new_job", is_flag=True, help="Accepted as `run` takes it: `submit` always makes a new job.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def submit(ctx: click.Context, folder: Path, task: str, opts: tuple[str, ...], queue: str | None,
           include: tuple[str, ...], exclude: tuple[str, ...], hidden: bool, name: str | None,
           output: Path | None, retries: int | None, batch_timeout: int | None, item_timeout: float | None,
           new_job: bool, as_json: bool) -> None:
    """Submit FOLDER to the desk and return at once (a background desk starts if none runs)."""
    from batchdesk.desk.background import DeskStartError
    from batchdesk.desk.link import DeskLink
    from batchdesk.jobs.submit import check_request, forget_job, submit_or_resume

    settings = _settings(ctx)
    request = _request(folder, task, opts, queue, include, exclude, hidden, name, output,
                       retries, batch_timeout, item_timeout)
    _open(settings)
    check_request(settings, request)
    link = DeskLink(settings)
    link.ensure()
    try:
        job = submit_or_resume(settings, request, resume=False).job
    except BaseException:
        link.release()
        raise
    try:
        desk = link.wait_ready()
    except DeskStartError:
        forget_job(job.id)
        raise
    link.wake()
    if as_json:
        click.echo(json.dumps({"job": job.id, "items": job.items_total, "desk": desk.pid}))
        return
    click.echo(f"job {job.id}: {job.items_total} file(s) queued")
    if link.launched:
        click.echo(f"started a background desk (pid {desk.pid}); it stops {settings.linger_seconds:g} s after "
                   "its last job (`batchdesk stop` ends it now)", err=True)


@main.command()
@click.option("--background", is_flag=True, hidden=True, help="Run as a background desk (what `run` starts).")
@click.option("--notify-fd", type=int, hidden=True, help="Where a background desk says how its start went.")
@click.pass_context
def serve(ctx: click.Context, background: bool, notify_fd: int | None) -> None:
    """Run a headless desk (broker, workers, watches) until Ctrl-C or SIGTERM."""
    from batchdesk.desk.desk import BACKGROUND, install_wake_signal, read_desk_info
    from batchdesk.desk.link import stop_desk

    settings = _settings(ctx)
    if background:
        from batchdesk.desk.background import serve_background

        sys.exit(serve_background(settings, notify_fd if notify_fd is not None else os.open(os.devnull, os.O_WRONLY)))
    _open(settings)
    running = read_desk_info(settings.data_dir)
    if running is not None and running.kind == BACKGROUND:
        click.echo(f"taking over from the background desk (pid {running.pid})", err=True)
        if not stop_desk(running, settings):
            raise BatchdeskError(f"the background desk (pid {running.pid}) did not stop; try `batchdesk stop`")
    elif running is not None:
        raise BatchdeskError(f"a desk is already running for this data dir ({running.kind}, pid {running.pid})")
    from batchdesk.cli.follow import sigterm_as_interrupt

    session = _session(ctx)
    install_wake_signal()
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
        session.close()


@main.command()
@click.pass_context
def stop(ctx: click.Context) -> None:
    """Stop the desk of this data dir (serve, the UI's or a background one); exit 1 if none runs.

    A `run` waiting for a job is interrupted first (its job pauses), so nothing starts the desk again."""
    from batchdesk.desk.desk import read_desk_info
    from batchdesk.desk.link import stop_desk
    from batchdesk.desk.waiters import interrupt_local_waiters

    settings = _settings(ctx)
    _open(settings)
    running = read_desk_info(settings.data_dir)
    if running is None:
        click.echo(f"no desk is running for {settings.data_dir}", err=True)
        sys.exit(1)
    interrupted = interrupt_local_waiters()
    if not stop_desk(running, settings):
        raise BatchdeskError(f"the desk (pid {running.pid}) did not stop within 30 s")
    extra = f"; interrupted {interrupted} waiting command(s)" if interrupted else ""
    click.echo(f"stopped the {running.kind} desk (pid {running.pid}){extra}")


def _open(settings: Settings) -> None:
    """Open the store (creating the private data dir first)."""
    from batchdesk import locations

    locations.ensure_private_dir(settings.data_dir)
    open_store(settings.store_ref)


@main.command()
@click.option("--json", "as_json", is_flag=True)
@click.option("--limit", default=50, show_default=True)
@click.pass_context
def jobs(ctx: click.Context, as_json: bool, limit: int) -> None:
    """List jobs, newest first."""
    open_store(_settings(ctx).store_path)
    rows = [job_summary(j) for j in Job.select().order_by(Job.id.desc()).limit(limit)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no jobs yet: try `batchdesk run FOLDER`")
        return
    click.echo(f"{'ID':>4}  {'STATUS':<9} {'TASK':<13} {'DONE':>8} {'FAILED':>6} {'TOTAL':>8}  NAME")
    for r in rows:
        click.echo(f"{r['job']:>4}  {r['status']:<9} {r['task']:<13} {r['done']:>8} {r['failed']:>6} {r['total']:>8}  {r['name']}")


@main.command()
@click.argument("job_id", type=int)
@click.option("--failed", "only_failed", is_flag=True, help="List the failed items and their reasons.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def show(ctx: click.Context, job_id: int, only_failed: bool, as_json: bool) -> None:
    """Show one job: counters, timing, batch plan, and failed items."""
    from batchdesk.jobs.control import get_job
    from data.models import Item

    open_store(_settings(ctx).store_path)
    job = get_job(job_id)
    summary = job_summary(job)
    failed = [
        {"path": i.path, "error": i.error}
        for i in Item.select(Item.path, Item.error).where((Item.job == job_id) & (Item.status == "failed")).limit(1000)
    ]
    if as_json:
        click.echo(json.dumps({**summary, "failed_items": failed}, indent=2))
        return
    if not only_failed:
        for key, value in summary.items():
            click.echo(f"{key:>13}: {value}")
    for row in failed:
        click.echo(f"FAILED {row['path']}: {row['error']}")


@main.command()
@click.argument("job_id", type=int)
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "xlsx"]), default="csv", show_default=True)
@click.option("-o", "--out", type=click.Path(path_type=Path), help="Output file (default: in the job's output folder).")
@click.pass_context
def report(ctx: click.Context, job_id: int, fmt: str, out: Path | None) -> None:
    """Write a report of every item of JOB_ID with a summary."""
    from batchdesk.jobs.control import get_job
    from batchdesk.jobs.report import write_report

    open_store(_settings(ctx).store_path)
    job = get_job(job_id)
    target = out or Path(job.output_dir) / f"report-job-{job_id}.{fmt}"
    click.echo(str(write_report(job_id, fmt, target)))


RQ_INFO = "RQ_REDIS_URL=\"$(batchdesk{args} info --url)\" rq info --serializer json"


@main.command()
@click.option("--json", "as_json", is_flag=True)
@click.option("--url", "url_only", is_flag=True, help="Print only the broker URL (for RQ_REDIS_URL; exit 1 without a desk).")
@click.pass_context
def info(ctx: click.Context, as_json: bool, url_only: bool) -> None:
    """Where things are: store, broker URL, the desk, workers, and how to inspect the queues with `rq info`."""
    from batchdesk.desk.desk import read_desk_info

    settings = _settings(ctx)
    open_store(settings.store_path)
    desk = read_desk_info(settings.data_dir)
    if url_only:
        if desk is None:
            sys.exit(1)
        click.echo(desk.url)
        return
    workers = [
        {"name": w.name, "pid": w.pid, "state": w.state, "host": w.host}
        for w in WorkerRow.select().where(WorkerRow.state.in_(["idle", "busy"]))
    ] if desk else []
    # The password stays out of the shell history and `ps`: rq reads the URL from RQ_REDIS_URL.
    rq_info = RQ_INFO.format(args=f" --data-dir '{settings.data_dir}'") if desk else None
    data = {
        "data_dir": str(settings.data_dir), "store": describe_store(settings.store_ref),
        "desk": {"pid": desk.pid, "kind": desk.kind, "broker": desk.mode, "url": desk.url} if desk else None,
        "rq_info": rq_info, "workers": workers,
    }
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"data dir: {data['data_dir']}\nstore:    {data['store']}")
    if desk is None:
        click.echo("desk:     not running (start one with `batchdesk serve`, the TUI, or `batchdesk run`)")
        return
    click.echo(f"desk:     pid {desk.pid} ({desk.kind}), {desk.mode} broker at {desk.url}")
    click.echo(f"inspect:  {rq_info}")
    for w in workers:
        click.echo(f"worker:   {w['name']} pid {w['pid']} {w['state']}")


@main.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def tasks(ctx: click.Context, as_json: bool) -> None:
    """List every task with its options."""
    from workers import registry

    specs = registry.load(_settings(ctx).plugins)
    data = [
        {"name": s.name, "description": s.description,
         "options": [{"name": o.name, "type": o.type.__name__, "default": o.default, "help": o.help,
                      "choices": list(o.choices), "allowed": o.describe()} for o in s.options]}
        for s in sorted(specs.values(), key=lambda s: s.name)
    ]
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
        return
    for t in data:
        click.echo(f"{t['name']}: {t['description']}")
        for o in t["options"]:
            click.echo(f"    --opt {o['name']}=<{o['type']}>  {o['help']} (default: {o['default']}; allowed: {o['allowed']})")


@main.command()
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
    from workers.worker import run_worker

    settings = _settings(ctx)
    url = redis_url or settings.redis_url
    if not url:
        from batchdesk.desk.desk import read_desk_info

        desk = read_desk_info(settings.data_dir)
        if desk is None:
            raise BatchdeskError("no broker: give --redis-url, or start a desk for this data dir")
        url = desk.url
    plugins = tuple(p for p in os.environ.get("BATCHDESK_PLUGINS", "").split(",") if p) or settings.plugins
    if store is not None and not is_store_url(store):
        store = str(Path(store).expanduser().resolve())
    run_worker(url, store or settings.store_ref, name=name, queues=queues or defaults.QUEUES,
               plugins=plugins, burst=burst, parent_pid=desk_pid, nice=settings.worker_nice)


def _control(ctx: click.Context, action: str, job_id: int) -> None:
    from batchdesk.jobs import control

    open_store(_settings(ctx).store_path)
    job = getattr(control, action)(job_id)
    click.echo(f"job {job.id} is now {job.status}")


@main.command()
@click.argument("job_id", type=int)
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="Wait until items in hand have ended (at most the cancel grace) and show the final counts.")
@click.pass_context
def cancel(ctx: click.Context, job_id: int, wait: bool) -> None:
    """Cancel a job: pending items end cancelled at once; items in hand end (or are killed after 10 s)."""
    from batchdesk.jobs import control
    from batchdesk.desk.desk import desk_lock_held, read_desk_info, wake_desk

    settings = _settings(ctx)
    _open(settings)
    job = control.cancel(job_id, desk_running=desk_lock_held(settings.data_dir))
    desk = read_desk_info(settings.data_dir)
    if desk is not None:
        wake_desk(desk)
    deadline = time.monotonic() + defaults.CANCEL_GRACE_SECONDS + 20
    while wait and job.status == JobState.CANCELLING and time.monotonic() < deadline:
        time.sleep(0.1)
        job = control.get_job(job_id)
    left = job.items_total - job.items_ended
    tail = f"; {left} item(s) in hand still ending" if left else ""
    click.echo(f"job {job.id} {job.status}: {job.items_done} done, {job.items_failed} failed, "
               f"{job.items_cancelled} cancelled of {job.items_total}{tail}")


@main.command()
@click.argument("job_id", type=int)
@click.pass_context
def pause(ctx: click.Context, job_id: int) -> None:
    """Pause a job: no new batch of it starts until resumed."""
    _control(ctx, "pause", job_id)


@main.command()
@click.argument("job_id", type=int)
@click.option("--wait/--no-wait", default=True, help="Wait for the job with a progress bar, as `run` does.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.pass_context
def resume(ctx: click.Context, job_id: int, wait: bool, as_json: bool, quiet: bool) -> None:
    """Resume a paused or interrupted job (a desk starts if none runs) and, by default, wait for it."""
    from batchdesk.jobs import control
    from batchdesk.desk.link import DeskLink

    began = time.monotonic()
    settings = _settings(ctx)
    _open(settings)
    job = control.get_job(job_id)
    if job.status in JOB_ENDED:
        raise BatchdeskError(f"job {job_id} already ended ({job.status})")
    if job.status == JobState.PAUSED:
        job = control.resume(job_id)
        click.echo(f"job {job.id} is now {job.status}", err=wait)
    link = DeskLink(settings)
    if not wait:
        link.wait_ready()
        link.wake()
        return
    _follow_to_end(settings, link, job_id, created=False, as_json=as_json, quiet=quiet, began=began)


@main.command()
@click.argument("job_id", type=int)
@click.option("--failed", "failed_only", is_flag=True, default=True, help="Re-run the failed items (the default).")
@click.pass_context
def retry(ctx: click.Context, job_id: int, failed_only: bool) -> None:
    """Re-run a job's failed items as new batches."""
    from batchdesk.jobs import control

    open_store(_settings(ctx).store_path)
    count = control.retry_failed(job_id)
    click.echo(f"job {job_id}: {count} failed item(s) queued again")


@main.command()
@click.option("--retry", "retry_batch", type=int, metavar="BATCH", help="Retry one dead batch.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def failed(ctx: click.Context, retry_batch: int | None, as_json: bool) -> None:
    """The dead-letter list: batches that used up their retries."""
    from batchdesk.jobs import control

    open_store(_settings(ctx).store_path)
    if retry_batch is not None:
        click.echo(f"batch {retry_batch}: {control.retry_dead(retry_batch)} item(s) queued again")
        return
    rows = [{"batch": b.id, "job": b.job_id, "seq": b.seq, "attempts": b.attempts, "items": b.items_count,
             "error": b.error} for b in control.dead_batches()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    elif not rows:
        click.echo("no dead batches")
    for r in rows if not as_json else []:
        click.echo(f"batch {r['batch']} (job {r['job']} #{r['seq']}, {r['items']} items, {r['attempts']} attempts): {r['error']}")


@main.command()
@click.option("--days", type=float, help="Retention in days (default: the retention_days setting).")
@click.pass_context
def cleanup(ctx: click.Context, days: float | None) -> None:
    """Forget ended jobs, samples and alerts older than the retention (outputs on disk are kept)."""
    from batchdesk.jobs.cleanup import cleanup as purge

    settings = _settings(ctx)
    open_store(settings.store_path)
    purged = purge(settings.retention_days if days is None else days)
    click.echo(f"removed {purged.jobs} job(s), {purged.watch_items} old item(s) of watch jobs, "
               f"{purged.samples} sample(s), {purged.alerts} alert(s)")


@main.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def stats(ctx: click.Context, as_json: bool) -> None:
    """Throughput, success rate, average item and batch duration, per task and overall."""
    from batchdesk.jobs.stats import stats as job_stats

    open_store(_settings(ctx).store_path)
    rows = job_stats()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'TASK':<22} {'JOBS':>5} {'DONE':>9} {'FAILED':>7} {'SUCCESS':>8} {'ITEMS/S':>9} {'ITEM ms':>8} {'BATCH s':>8}")
    for r in rows:
        fmt = lambda v, spec: format(v, spec) if v is not None else "-"  # noqa: E731
        click.echo(f"{r['task']:<22} {r['jobs']:>5} {r['done']:>9} {r['failed']:>7} {fmt(r['success_rate'], '>8.1%')} "
                   f"{fmt(r['items_per_s'], '>9,.0f')} {fmt(r['avg_item_ms'], '>8.2f')} {fmt(r['avg_batch_s'], '>8.2f')}")


@main.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def health(ctx: click.Context, as_json: bool) -> None:
    """Machine health now and recent alerts; exits 1 when a threshold is tripped."""
    from batchdesk.desk.monitor import read_health
    from data.models import Alert

    settings = _settings(ctx)
    open_store(settings.store_path)
    now = read_health(settings.data_dir)
    alerts = [{"ts": a.ts, "level": a.level, "kind": a.kind, "message": a.message}
              for a in Alert.select().order_by(Alert.ts.desc()).limit(20)]
    problems = [message for _, message in now.problems()]
    if as_json:
        click.echo(json.dumps({"health": now.__dict__, "problems": problems, "alerts": alerts}, indent=2))
    else:
        click.echo(f"CPU {now.cpu:.0f}%  RAM free {now.ram_free / 2**30:.1f} GiB  iowait {now.iowait:.0f}%  "
                   f"disk free {now.disk_free / 2**30:.1f} GiB  load {now.load1:.2f}")
        for message in problems:
            click.echo(f"ALERT {message}")
        for a in alerts:
            click.echo(f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(a['ts']))} {a['level']:<7} {a['kind']:<8} {a['message']}")
    sys.exit(1 if problems else 0)


from batchdesk.cli.watch import watch  # noqa: E402  (drop folders: `batchdesk watch …`)

main.add_command(watch)

@main.command()
@click.argument("count", required=False)
@click.pass_context
def workers(ctx: click.Context, count: str | None) -> None:
    """Show the worker pool, or set its size: a number, or `auto` to let the planner decide."""
    from batchdesk.desk.desk import set_desired_workers
    from batchdesk.dashboard import pool_status

    open_store(_settings(ctx).store_path)
    if count is not None:
        try:
            wanted = None if count == "auto" else int(count)
        except ValueError:
            raise BatchdeskError(f"give a number of workers or 'auto', not {count!r}") from None
        set_desired_workers(wanted)
        click.echo("asked the desk to let the planner choose" if wanted is None else f"asked the desk for {wanted} worker(s)")
    status = pool_status()
    click.echo(f"pool target: {status.target if status.target is not None else '-'}  ({status.reason or 'no desk yet'})")


@main.command()
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


if __name__ == "__main__":  # pragma: no cover
    main()
