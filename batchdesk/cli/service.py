"""`batchdesk service install|remove|status`: run `batchdesk serve` after login, as a user service.

On Linux a systemd user unit (``~/.config/systemd/user/batchdesk.service``), on macOS a launchd agent
(``~/Library/LaunchAgents/batchdesk.serve.plist``). It runs this very batchdesk (the frozen executable, or
this Python with ``-m batchdesk``) on this data dir (and config file, when one was named), in the data dir,
with the PATH of the shell that installed it (what the tasks' commands and redis-server are found by).
Other settings come from the config file. One such service per user: installing again replaces it.

Where the service manager's command is not there (a container, a minimal system), the file is still written
and the commands to run are printed instead.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from batchdesk import locations
from batchdesk.cli.context import echo_json, settings_of
from batchdesk.config import Settings
from batchdesk.errors import BatchdeskError

UNIT = "batchdesk.service"
LABEL = "batchdesk.serve"
MANAGER_TIMEOUT_SECONDS = 60  # how long systemctl or launchctl may take


@dataclass(frozen=True)
class UserService:
    """A user service file for one platform: where it goes, what it says, and how its manager turns it on and off."""

    manager: str  # the program: systemctl or launchctl
    path: Path
    text: bytes
    start: tuple[tuple[str, ...], ...]  # run after the file is written
    stop: tuple[tuple[str, ...], ...]  # run before it is removed
    forget: tuple[tuple[str, ...], ...]  # run after it is removed
    state: tuple[str, ...]  # says whether it runs


def user_service(platform: str, home: Path, environ: dict[str, str], argv: list[str], data_dir: Path) -> UserService:
    """The service running ``argv`` for ``platform`` (sys.platform); BatchdeskError where there is none."""
    path_env = environ.get("PATH", os.defpath)
    if platform.startswith("linux"):
        config = Path(environ.get("XDG_CONFIG_HOME") or home / ".config")
        user = ("systemctl", "--user")
        return UserService("systemctl", config / "systemd" / "user" / UNIT, systemd_unit(argv, data_dir, path_env),
                           start=((*user, "daemon-reload"), (*user, "enable", "--now", UNIT)),
                           stop=((*user, "disable", "--now", UNIT),), forget=((*user, "daemon-reload"),),
                           state=(*user, "is-active", UNIT))
    if platform == "darwin":
        domain = f"gui/{os.getuid()}"
        path = home / "Library" / "LaunchAgents" / f"{LABEL}.plist"
        return UserService("launchctl", path, launchd_plist(argv, data_dir, path_env),
                           start=(("launchctl", "bootstrap", domain, str(path)),),
                           stop=(("launchctl", "bootout", f"{domain}/{LABEL}"),), forget=(),
                           state=("launchctl", "print", f"{domain}/{LABEL}"))
    raise BatchdeskError(f"no user services on {platform}: they are systemd user units (Linux) and launchd agents "
                         "(macOS); start `batchdesk serve` from your system's startup programs instead")


def systemd_unit(argv: list[str], data_dir: Path, path_env: str) -> bytes:
    """A systemd user unit running ``argv`` (every word quoted: paths may hold spaces, ``%`` and ``$``)."""
    return "\n".join([
        "# Written by `batchdesk service install`; `batchdesk service remove` removes it.",
        "[Unit]",
        "Description=batchdesk: drop-folder watches and background jobs (batchdesk serve)",
        "",
        "[Service]",
        "Type=simple",
        "ExecStart=" + " ".join(_systemd_word(word) for word in argv),
        "WorkingDirectory=" + str(data_dir).replace("%", "%%"),
        "Environment=" + _systemd_word(f"PATH={path_env}"),
        "Restart=on-failure",
        "RestartSec=10",
        "",
        "[Install]",
        "WantedBy=default.target",
        "",
    ]).encode()


def _systemd_word(word: str) -> str:
    escaped = word.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return f'"{escaped}"'


def launchd_plist(argv: list[str], data_dir: Path, path_env: str) -> bytes:
    """A launchd agent running ``argv`` at login, started again if it fails, logging into the data dir."""
    import plistlib  # here: only macOS needs it, and every command imports this module

    log = str(locations.logs_dir(data_dir) / "serve.log")
    return plistlib.dumps({
        "Label": LABEL, "ProgramArguments": argv, "RunAtLoad": True, "KeepAlive": {"SuccessfulExit": False},
        "WorkingDirectory": str(data_dir), "EnvironmentVariables": {"PATH": path_env},
        "StandardOutPath": log, "StandardErrorPath": log, "ProcessType": "Background",
    })


def serve_command(settings: Settings) -> list[str]:
    """This batchdesk's `serve` on this data dir (and the config file, when it is not the default one)."""
    argv = [*locations.self_command(), "--data-dir", str(settings.data_dir)]
    if settings.config_path is not None and settings.config_path != locations.default_config_file():
        argv += ["--config", str(Path(settings.config_path).expanduser().resolve())]
    return [*argv, "serve"]


def _this_service() -> UserService:
    """This platform's service: where its file is and its manager's commands (`remove`, `status`: not its text)."""
    return user_service(sys.platform, Path.home(), dict(os.environ), [], Path())


@click.group()
def service() -> None:
    """Run `batchdesk serve` after login: a systemd user unit (Linux) or launchd agent (macOS)."""


@service.command()
@click.pass_context
def install(ctx: click.Context) -> None:
    """Write the user service for this batchdesk and data dir, enable it and start it."""
    settings = settings_of(ctx)
    locations.ensure_private_dir(settings.data_dir)
    locations.logs_dir(settings.data_dir).mkdir(exist_ok=True)
    unit = user_service(sys.platform, Path.home(), dict(os.environ), serve_command(settings), settings.data_dir)
    existed = unit.path.exists()
    unit.path.parent.mkdir(parents=True, exist_ok=True)
    unit.path.write_bytes(unit.text)
    click.echo(f"{'updated' if existed else 'wrote'} {unit.path}: runs {shlex.join(serve_command(settings))}")
    _manage(unit, unit.start, "to start it")


@service.command()
def remove() -> None:
    """Stop and disable the user service, and remove its file."""
    unit = _this_service()
    if not unit.path.exists():
        click.echo(f"no batchdesk service is installed ({unit.path})")
        return
    _manage(unit, unit.stop, "to stop it", must=False)
    unit.path.unlink()
    click.echo(f"removed {unit.path}")
    _manage(unit, unit.forget, "to forget it", must=False)


@service.command()
@click.option("--json", "as_json", is_flag=True)
def status(as_json: bool) -> None:
    """Whether the user service is installed and running."""
    unit = _this_service()
    installed = unit.path.exists()
    state = _state(unit) if installed else None
    if as_json:
        echo_json({"installed": installed, "path": str(unit.path), "manager": unit.manager, "state": state})
        return
    if not installed:
        click.echo(f"not installed ({unit.path}): `batchdesk service install` installs it")
        return
    click.echo(f"installed: {unit.path}\nstate: {state or f'unknown ({unit.manager} not found)'}")


def _manage(unit: UserService, commands: tuple[tuple[str, ...], ...], purpose: str, must: bool = True) -> None:
    """Run the service manager's commands; without the manager, say what to run. A command that fails ends with
    exit 1 when ``must`` (the file is written: running the commands by hand finishes the job)."""
    if not commands:
        return
    wanted = " && ".join(shlex.join(command) for command in commands)
    if shutil.which(unit.manager) is None:
        click.echo(f"{unit.manager} not found; {purpose}, run: {wanted}")
        return
    for command in commands:
        done = subprocess.run(command, capture_output=True, text=True, timeout=MANAGER_TIMEOUT_SECONDS)
        if done.returncode != 0:
            said = (done.stderr or done.stdout).strip().splitlines()
            click.echo(f"`{shlex.join(command)}` failed: {said[-1] if said else f'exit {done.returncode}'}", err=True)
            if must:
                click.echo(f"{purpose}, fix that and run: {wanted}", err=True)
                sys.exit(1)
            return
        click.echo(f"ran: {shlex.join(command)}")


def _state(unit: UserService) -> str | None:
    """What the manager says of the service (systemd: active, inactive, failed ...), None without the manager."""
    if shutil.which(unit.manager) is None:
        return None
    done = subprocess.run(unit.state, capture_output=True, text=True, timeout=MANAGER_TIMEOUT_SECONDS)
    if unit.manager == "systemctl":
        return done.stdout.strip() or "unknown"
    return "loaded" if done.returncode == 0 else "not loaded"
