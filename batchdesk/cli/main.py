"""The ``batchdesk`` command line (click): the global options, and every command registered.

User mistakes print one clear line on stderr and exit 2; ``--json`` gives machine-readable output
where scripts want it. The commands live by concern: cli.jobs (a job's life), cli.views (reading),
cli.desk (desks and workers), cli.watch (drop folders), cli.search (the index), cli.service
(the user service).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import click

from batchdesk import defaults
from batchdesk.cli.context import Group, settings_of
from batchdesk.config import load_settings
from batchdesk.errors import BatchdeskError

# Every command, by the module that defines it: a command's module (and what it imports) loads only
# when that command runs, so `batchdesk jobs` does not pay for the desk, the broker client or RQ.
COMMANDS = {
    **dict.fromkeys(("run", "submit", "resume", "cancel", "pause", "retry", "failed"), "batchdesk.cli.jobs"),
    **dict.fromkeys(("jobs", "show", "report", "info", "tasks", "stats", "health"), "batchdesk.cli.views"),
    **dict.fromkeys(("serve", "stop", "worker", "workers", "cleanup", "samples"), "batchdesk.cli.desk"),
    "watch": "batchdesk.cli.watch",
    "search": "batchdesk.cli.search",
    "service": "batchdesk.cli.service",
}


class LazyGroup(Group):
    """The main group: its commands are looked up in COMMANDS and imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command name, for --help (which then imports them all)."""
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command, imported from its module the first time it is asked for."""
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            self.add_command(getattr(importlib.import_module(COMMANDS[cmd_name]), cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
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

