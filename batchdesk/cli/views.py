"""Commands that read: `jobs`, `show`, `report`, `info`, `tasks`, `health`, `stats`."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from batchdesk import defaults
from batchdesk.cli.context import echo_json, settings_of, with_store
from batchdesk.cli.summary import detail_lines, failed_items, shown, status_text, summarize
from batchdesk.dashboard import LIVE_WORKER_STATES
from batchdesk.desk.info import read_desk_info
from batchdesk.desk.monitor import CpuMeter, read_health
from batchdesk.jobs import control
from batchdesk.jobs.report import FORMATS, write_report
from batchdesk.jobs.stats import stats as job_stats
from batchdesk.jobs.summary import desk_serves
from data.models import Alert, Job, WorkerRow
from data.store import describe_store, is_store_url

# The command `info` suggests: rq reads the URL from RQ_REDIS_URL, so the password stays out of the
# shell history and the process list.
RQ_INFO = "RQ_REDIS_URL=\"$(batchdesk{args} info --url)\" rq info --serializer json"


@click.command()
@click.option("--json", "as_json", is_flag=True)
@click.option("--limit", default=50, show_default=True)
@click.pass_context
def jobs(ctx: click.Context, as_json: bool, limit: int) -> None:
    """List jobs, newest first; a job that waits for a desk that does not run says "(no desk)"."""
    settings = with_store(ctx)
    serves = desk_serves(settings.data_dir, is_store_url(settings.store_ref))
    rows = [summarize(j, desk_serves=serves) for j in Job.select().order_by(Job.id.desc()).limit(limit)]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no jobs yet: try `batchdesk run FOLDER`")
        return
    now = time.time()
    click.echo(f"{'ID':>4}  {'STATUS':<17} {'TASK':<13} {'DONE':>8} {'FAILED':>6} {'CANCELLED':>9} {'TOTAL':>8} "
               f"{'AGE':>5}  NAME")
    for r in rows:
        click.echo(f"{r['job']:>4}  {status_text(r):<17} {shown(r['task']):<13} {r['done']:>8} {r['failed']:>6} "
                   f"{r['cancelled']:>9} {r['total']:>8} {_age(now - r['created_at']):>5}  {shown(r['name'])}")
    if any(r["without_desk"] for r in rows):
        click.echo("(no desk): no desk runs, so nothing moves these jobs; `batchdesk resume ID` (or `serve`, or the "
                   "UI) goes on with them")


def _age(seconds: float) -> str:
    """``42s``, ``12m``, ``5h``, ``3d``: how long ago, in the largest whole unit."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{max(0, int(seconds))}s"


@click.command()
@click.argument("job_id", type=int)
@click.option("--failed", "only_failed", is_flag=True, help="List the failed items and their reasons.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def show(ctx: click.Context, job_id: int, only_failed: bool, as_json: bool) -> None:
    """Show one job: times, counters, task options, batch plan, and failed items."""
    settings = with_store(ctx)
    summary = summarize(control.get_job(job_id), desk_serves=desk_serves(settings.data_dir,
                                                                          is_store_url(settings.store_ref)))
    failed = failed_items(job_id, limit=1000)
    if as_json:
        echo_json({**summary, "failed_items": failed})
        return
    if not only_failed:
        for label, value in detail_lines(summary):
            click.echo(f"{label:>11}: {value}")
    for row in failed:
        click.echo(f"FAILED {shown(row['path'])}: {shown(row['error'])}")


@click.command()
@click.argument("job_id", type=int)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="csv", show_default=True)
@click.option("-o", "--out", type=click.Path(path_type=Path), help="Output file (default: in the job's output folder).")
@click.pass_context
def report(ctx: click.Context, job_id: int, fmt: str, out: Path | None) -> None:
    """Write a report of every item of JOB_ID with a summary."""
    with_store(ctx)
    job = control.get_job(job_id)
    target = out or Path(job.output_dir) / f"report-job-{job_id}.{fmt}"
    click.echo(str(write_report(job_id, fmt, target)))


@click.command()
@click.option("--json", "as_json", is_flag=True)
@click.option("--url", "url_only", is_flag=True,
              help="Print only the broker URL (for RQ_REDIS_URL; exit 1 without a desk).")
@click.pass_context
def info(ctx: click.Context, as_json: bool, url_only: bool) -> None:
    """Where things are: store, broker URL, the desk, workers, and how to inspect the queues with `rq info`."""
    settings = with_store(ctx)
    desk = read_desk_info(settings.data_dir)
    if url_only:
        if desk is None:
            sys.exit(1)
        click.echo(desk.url)
        return
    workers = [{"name": w.name, "pid": w.pid, "state": w.state, "host": w.host}
               for w in WorkerRow.select().where(WorkerRow.state.in_(LIVE_WORKER_STATES))] if desk else []
    rq_info = RQ_INFO.format(args=f" --data-dir '{settings.data_dir}'") if desk else None
    data = {
        "data_dir": str(settings.data_dir), "store": describe_store(settings.store_ref),
        "desk": {"pid": desk.pid, "kind": desk.kind, "broker": desk.mode, "url": desk.url} if desk else None,
        "rq_info": rq_info, "workers": workers,
    }
    if as_json:
        echo_json(data)
        return
    click.echo(f"data dir: {data['data_dir']}\nstore:    {data['store']}")
    if desk is None:
        click.echo("desk:     not running (start one with `batchdesk serve`, the TUI, or `batchdesk run`)")
        return
    click.echo(f"desk:     pid {desk.pid} ({desk.kind}), {desk.mode} broker at {desk.url}")
    click.echo(f"inspect:  {rq_info}")
    for w in workers:
        click.echo(f"worker:   {w['name']} pid {w['pid']} {w['state']}")


@click.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def tasks(ctx: click.Context, as_json: bool) -> None:
    """List every task with its options and what each allows."""
    from batchdesk.tasks import available  # here: the task registry loads every task's libraries

    specs = available(settings_of(ctx).plugins)
    data: list[dict[str, Any]] = [
        {"name": s.name, "description": s.description,
         "options": [{"name": o.name, "type": o.type.__name__, "default": o.default, "help": o.help,
                      "choices": list(o.choices), "allowed": o.describe()} for o in s.options]}
        for s in sorted(specs.values(), key=lambda s: s.name)
    ]
    if as_json:
        echo_json(data)
        return
    for t in data:
        click.echo(f"{t['name']}: {t['description']}")
        for o in t["options"]:
            click.echo(f"    --opt {o['name']}=<{o['type']}>  {o['help']} "
                       f"(default: {o['default']}; allowed: {o['allowed']})")


@click.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def stats(ctx: click.Context, as_json: bool) -> None:
    """Throughput, success rate, average item and batch duration, per task and overall."""
    with_store(ctx)
    rows = job_stats()
    if as_json:
        echo_json(rows)
        return
    click.echo(f"{'TASK':<22} {'JOBS':>5} {'DONE':>9} {'FAILED':>7} {'SUCCESS':>8} {'ITEMS/S':>9} {'ITEM ms':>8} "
               f"{'BATCH s':>8}")
    for r in rows:
        click.echo(f"{r['task']:<22} {r['jobs']:>5} {r['done']:>9} {r['failed']:>7} "
                   f"{_cell(r['success_rate'], '>8.1%')} {_cell(r['items_per_s'], '>9,.0f')} "
                   f"{_cell(r['avg_item_ms'], '>8.2f')} {_cell(r['avg_batch_s'], '>8.2f')}")


def _cell(value: Any, spec: str) -> str:
    """A table cell: the value formatted, or "-" where there is nothing to show (no items ended)."""
    return format(value, spec) if value is not None else "-"


@click.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def health(ctx: click.Context, as_json: bool) -> None:
    """Machine health now and recent alerts; exits 1 when a threshold is tripped (the CPU's by other programs:
    our own workers keeping it busy is no problem)."""
    settings = with_store(ctx)
    meter = CpuMeter()
    time.sleep(defaults.HEALTH_READING_SECONDS)  # the CPU is measured over a moment, not over our own start-up
    now = read_health(settings.data_dir, meter)
    alerts: list[dict[str, Any]] = [{"ts": a.ts, "level": a.level, "kind": a.kind, "message": a.message}
              for a in Alert.select().order_by(Alert.ts.desc()).limit(20)]
    problems = [message for _, message in now.problems()]
    if as_json:
        echo_json({"health": now.__dict__, "problems": problems, "alerts": alerts})
    else:
        click.echo(f"CPU {now.cpu:.0f}% ({now.own_cpu:.0f}% our workers)  RAM free {now.ram_free / 2**30:.1f} GiB  "
                   f"iowait {now.iowait:.0f}%  disk free {now.disk_free / 2**30:.1f} GiB  load {now.load1:.2f}")
        for message in problems:
            click.echo(f"ALERT {message}")
        for a in alerts:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(a["ts"]))
            click.echo(f"{when} {a['level']:<7} {a['kind']:<8} {a['message']}")
    sys.exit(1 if problems else 0)
