"""The ``batchdesk`` command line (click): the global options, and every command registered.

User mistakes print one clear line on stderr and exit 2; ``--json`` gives machine-readable output
where scripts want it. The commands live by concern: cli.jobs (a job's life), cli.views (reading),
cli.desk (desks and workers), cli.watch (drop folders).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from batchdesk import defaults
from batchdesk.cli import desk, jobs, views
from batchdesk.cli.context import Group, settings_of
from batchdesk.cli.search import search
from batchdesk.cli.service import service
from batchdesk.cli.watch import watch
from batchdesk.config import load_settings
from batchdesk.errors import BatchdeskError


@click.group(cls=Group, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data-dir", type=click.Path(path_type=Path), help="Data folder [env BATCHDESK_DATA_DIR].")
@click.option("--broker", type=click.Choice(defaults.BROKER_MODES),
              help=f"Broker mode [env BATCHDESK_BROKER; default {defaults.BROKER_MODE}].")
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
        sys.exit(exc.exit_code)
    ctx.obj = {"settings": settings}
    if ctx.invoked_subcommand is None:
        ctx.invoke(ui_command)


@main.command("ui")
@click.pass_context
def ui_command(ctx: click.Context) -> None:
    """Open the terminal UI: a live desk for jobs, workers and resources (the default command)."""
    from ui.app import run_app  # only this command loads Textual

    sys.exit(run_app(settings_of(ctx)))


for command in (jobs.run, jobs.submit, jobs.resume, jobs.cancel, jobs.pause, jobs.retry, jobs.failed,
                views.jobs, views.show, views.report, views.info, views.tasks, views.stats, views.health,
                desk.serve, desk.stop, desk.worker, desk.workers, desk.cleanup, desk.samples, watch, search, service):
    main.add_command(command)
