"""Commands on a job's life: `run`, `submit`, `resume`, `cancel`, `pause`, `retry`, `failed`.

`run` and `resume` follow their job to its end as one of its waiters (a `run` owns its job: see
docs/job-endings.md); their exit codes: 0 every item done, 1 failed or cancelled items (or a failed
report), 2 usage error, 3 the job paused itself, 130 interrupted (the job is paused).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import NoReturn

import click

from batchdesk import defaults
from batchdesk.cli import follow
from batchdesk.cli.context import echo_json, job_request, with_store
from batchdesk.cli.summary import command_began, exit_code, failed_items, print_summary, skipped_text, summarize
from batchdesk.config import Settings
from batchdesk.desk.background import DeskStartError
from batchdesk.desk.info import desk_lock_held, read_desk_info, wake_desk
from batchdesk.desk.link import DeskLink
from batchdesk.desk.waiters import this_process
from batchdesk.errors import BatchdeskError
from batchdesk.jobs import control
from batchdesk.jobs.submit import JobRequest, NothingChanged, check_request, forget_job, submit_or_resume
from data import transitions
from data.states import JOB_ENDED, JobState


@click.command()
@job_request
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.pass_context
def run(ctx: click.Context, request: JobRequest, new_job: bool, as_json: bool, quiet: bool) -> None:
    """Process every file in FOLDER and wait, showing progress; then print a summary.

    Exit codes: 0 every item done, 1 failed or cancelled items (or a failed report), 2 usage error,
    3 the job paused itself (circuit breaker), 130 interrupted (the job is paused; run again to resume).
    """
    began = command_began()
    settings = with_store(ctx)
    check_request(settings, request)  # a mistake is exit 2 before any desk starts or any job is recorded
    link = DeskLink(settings)
    with _interruptible("interrupted before the job was recorded"):
        link.ensure()  # forks a background desk now, if none runs: it starts while the folder is scanned
        try:
            submission = submit_or_resume(settings, request, resume=not new_job)
        except NothingChanged as nothing:  # not a failure: the desk lingers, as after any run
            _nothing_to_do(nothing, as_json)
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


def _follow_to_end(settings: Settings, link: DeskLink, job_id: int, created: bool, as_json: bool, quiet: bool,
                   began: float) -> None:
    """Wait for the job as one of its waiters, then print the summary and exit with its code."""
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
    summary = summarize(job, command_s=time.monotonic() - began)
    if as_json:
        echo_json({**summary, "failed_items": failed_items(job.id, limit=100)})
    else:
        print_summary(summary)
    sys.exit(exit_code(job))


def _nothing_to_do(nothing: NothingChanged, as_json: bool) -> NoReturn:
    """Every file was done, unchanged, by earlier jobs: say so (no job was recorded) and exit 0."""
    if as_json:
        echo_json({"job": None, "status": "unchanged", "total": 0, "skipped": nothing.unchanged,
                   "output": str(nothing.output_dir)})
    else:
        click.echo(str(nothing))
    sys.exit(0)


@contextlib.contextmanager
def _interruptible(message: str) -> Iterator[None]:
    """Ctrl-C (or SIGTERM) before a job exists: one line and exit 130, no traceback."""
    try:
        with follow.sigterm_as_interrupt():
            yield
    except KeyboardInterrupt:
        click.echo(f"\n{message}", err=True)
        sys.exit(130)


@click.command()
@job_request
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def submit(ctx: click.Context, request: JobRequest, new_job: bool, as_json: bool) -> None:
    """Submit FOLDER to the desk and return at once (a background desk starts if none runs)."""
    settings = with_store(ctx)
    check_request(settings, request)
    link = DeskLink(settings)
    link.ensure()
    try:
        job = submit_or_resume(settings, request, resume=False).job
    except NothingChanged as nothing:
        _nothing_to_do(nothing, as_json)
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
        echo_json({"job": job.id, "items": job.items_total, "desk": desk.pid, "skipped": summarize(job)["skipped"]})
        return
    click.echo(f"job {job.id}: {job.items_total} file(s) queued")
    if (skipped := skipped_text(summarize(job))) is not None:
        click.echo(skipped)
    if link.launched:
        click.echo(f"started a background desk (pid {desk.pid}); it stops {settings.linger_seconds:g} s after "
                   "its last job (`batchdesk stop` ends it now)", err=True)


@click.command()
@click.argument("job_id", type=int)
@click.option("--wait/--no-wait", default=True, help="Wait for the job with a progress bar, as `run` does.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.pass_context
def resume(ctx: click.Context, job_id: int, wait: bool, as_json: bool, quiet: bool) -> None:
    """Resume a paused or interrupted job (a desk starts if none runs) and, by default, wait for it."""
    began = command_began()
    settings = with_store(ctx)
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


@click.command()
@click.argument("job_id", type=int)
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="Wait until items in hand have ended (at most the cancel grace) and show the final counts.")
@click.pass_context
def cancel(ctx: click.Context, job_id: int, wait: bool) -> None:
    """Cancel a job: pending items end cancelled at once; items in hand end (or are killed after 10 s)."""
    settings = with_store(ctx)
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


@click.command()
@click.argument("job_id", type=int)
@click.pass_context
def pause(ctx: click.Context, job_id: int) -> None:
    """Pause a job: no new batch of it starts until resumed."""
    with_store(ctx)
    job = control.pause(job_id)
    click.echo(f"job {job.id} is now {job.status}")


@click.command()
@click.argument("job_id", type=int)
@click.pass_context
def retry(ctx: click.Context, job_id: int) -> None:
    """Re-run a job's failed items as new batches (or write a failed report again)."""
    with_store(ctx)
    count = control.retry_failed(job_id)
    click.echo(f"job {job_id}: {count} failed item(s) queued again" if count else
               f"job {job_id}: its report is written again")


@click.command()
@click.option("--retry", "retry_batch", type=int, metavar="BATCH", help="Retry one dead batch.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def failed(ctx: click.Context, retry_batch: int | None, as_json: bool) -> None:
    """The dead-letter list: batches that used up their retries."""
    with_store(ctx)
    if retry_batch is not None:
        click.echo(f"batch {retry_batch}: {control.retry_dead(retry_batch)} item(s) queued again")
        return
    rows = [{"batch": b.id, "job": b.job_id, "seq": b.seq, "attempts": b.attempts, "items": b.items_count,
             "error": b.error} for b in control.dead_batches()]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no dead batches")
    for r in rows:
        click.echo(f"batch {r['batch']} (job {r['job']} #{r['seq']}, {r['items']} items, {r['attempts']} attempts): "
                   f"{r['error']}")
