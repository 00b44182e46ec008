"""command: run a user command template on every file.

``cmd`` is a template such as ``gzip -k {path}`` or ``convert {path} {out_dir}/{stem}.png``.
Placeholders, filled per file:

=============  ==============================================================================
``{path}``     absolute path of the input file
``{name}``     file name (``report 1.pdf``)
``{stem}``     file name without its extension (``report 1``)
``{ext}``      the extension with its dot (``.pdf``; empty if none), so ``{stem}{ext}`` = ``{name}``
``{rel}``      path relative to the job's source folder (``sub/report 1.pdf``)
``{out_dir}``  the folder mirroring the input's folder under the job's output folder (created)
=============  ==============================================================================

Without ``shell`` the template is split like a POSIX shell would (``shlex``) and each argument is
filled separately, so a file name with spaces or quotes stays one argument and nothing is ever
interpreted by a shell. With ``shell=true`` the template runs under ``/bin/sh -c`` (``cmd.exe`` on
Windows) with every value shell-quoted. ``{{`` and ``}}`` are literal braces.

A value that would start an argument with ``-`` gets ``./`` in front, with or without ``shell``, so
a file named ``-rf`` or ``--help`` is never read as an option: ``cp {path} {name}`` runs
``cp /in/-rf ./-rf``, and ``{stem}.png`` for ``-x.txt`` is ``./-x.png`` (the same file). Inside an
argument nothing changes (``--out={name}`` stays ``--out=-rf``). ``{path}`` and ``{out_dir}`` are
absolute, so never start with ``-``.

The command runs in ``{out_dir}`` (so relative output files land under the output folder), with
stdin closed and ``BATCHDESK_INPUT``, ``BATCHDESK_REL`` and ``BATCHDESK_OUT_DIR`` in its environment
(and no other ``BATCHDESK_*`` variable: see workers.environment), in a process group of its own:
after ``timeout`` seconds the whole group, and every process the command started, is killed and
the item fails "timed out after N s". The same happens when the item is interrupted, and when its
work-horse is killed (a cancel past its grace, a batch's hard time limit, a worker stopped cold or
whose desk died): nothing the command started outlives its item. Output goes to temporary files,
never to memory, so a chatty command cannot exhaust the worker. A non-zero exit fails the item with
"exit code N: <last line of stderr>".

Item result: ``exit_code``, ``stderr_tail`` (last 2,000 characters), ``stdout_tail`` (``stdout=tail``)
or ``stdout_path`` (``stdout=file``: ``<name>.stdout`` under the output folder), ``duration``,
``argv`` (or ``command`` with ``shell=true``). A failed item's ``ItemError`` carries the same dict as
its ``result``. On Windows, ``shell=true`` uses ``cmd.exe`` and a timeout kills the
command's process tree.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import signal
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from workers.environment import external_env
from workers.proctree import kill_tree
from workers.registry import CheckContext, ItemError, Option, TaskContext, task
from workers.tasks._common import output_file, relative_to_output

TAIL = 2000  # characters of stderr (and of stdout, with stdout=tail) kept in the item's result
DEFAULT_TIMEOUT = 300.0  # seconds
PLACEHOLDERS = ("path", "name", "stem", "ext", "rel", "out_dir")
WINDOWS = sys.platform == "win32"
_WORD_BREAKS = frozenset(" \t\n;&|()<>")  # after one of these, a shell command line starts a new word


@functools.lru_cache(maxsize=64)
def parse_template(template: str, shell: bool) -> tuple[str, ...]:
    """Validate the template once: known placeholders only, and (no shell) split into arguments."""
    try:
        for _literal, field, spec, conversion in string.Formatter().parse(template):
            if field is None:
                continue
            if field not in PLACEHOLDERS or spec or conversion:
                known = " ".join(f"{{{p}}}" for p in PLACEHOLDERS)
                raise ItemError(f"unknown placeholder {{{field}}} in cmd; use {known} (or {{{{ }}}} for braces)")
    except ValueError as exc:
        raise ItemError(f"bad cmd template: {exc}") from None
    if shell:
        return (template,)
    try:
        args = tuple(shlex.split(template, posix=not WINDOWS))
    except ValueError as exc:
        raise ItemError(f"bad cmd template: {exc}") from None
    if not args:
        raise ItemError("option 'cmd' is empty")
    return args


def _check_template(cmd: str, ctx: CheckContext) -> None:
    """The run-time check of ``cmd``, at submit (split as the job's ``shell`` option says)."""
    parse_template(cmd, bool(ctx.options.get("shell")))


OPTIONS = (
    Option(
        "cmd",
        str,
        None,
        "command template, e.g. 'gzip -k {path}' (a value that would start an argument with '-' gets './' "
        "in front)",
        required=True,
        check=_check_template,
        allowed="placeholders {path} {name} {stem} {ext} {rel} {out_dir} ({{ }} for braces)",
    ),
    Option("shell", bool, False, "run the command through the shell (values are shell-quoted)"),
    Option("timeout", float, DEFAULT_TIMEOUT, "seconds before the command's process group is killed", above=0),
    Option(
        "stdout",
        str,
        "tail",
        "what to keep of stdout: tail (last 2,000 chars in the result), file (<name>.stdout), discard",
        choices=("tail", "file", "discard"),
    ),
)


def _quote(value: str) -> str:
    return subprocess.list2cmdline([value]) if WINDOWS else shlex.quote(value)


def _fill(template: str, values: dict[str, str], shell: bool) -> str:
    """Fill one argument's template (with ``shell``, the whole command line, values quoted).

    A value starting with ``-`` where an argument starts gets ``./`` in front: a file named ``-rf``
    must stay a file name, never become an option (``./-rf`` is the same file).
    """
    filled = ""
    for literal, field, _spec, _conversion in string.Formatter().parse(template):
        filled += literal
        if field is None:
            continue
        value = values[field]
        starts_argument = not filled or (shell and filled[-1] in _WORD_BREAKS)
        if starts_argument and value.startswith("-"):
            value = "./" + value
        filled += _quote(value) if shell else value
    return filled


def _command_line(template: str, shell: bool, values: dict[str, str]) -> tuple[str | list[str], dict[str, Any]]:
    """The command to run, and how the item's result shows it (``command`` with a shell, else ``argv``)."""
    parts = parse_template(template, shell)
    if shell:
        line = _fill(parts[0], values, shell=True)
        return line, {"command": line}
    argv = [_fill(part, values, shell=False) for part in parts]
    return argv, {"argv": argv}


def _popen_options(out_dir: Path, env: dict[str, str], shell: bool) -> dict[str, Any]:
    """In ``out_dir``, stdin closed, in a process group of its own (so a timeout kills it whole)."""
    options: dict[str, Any] = {"cwd": out_dir, "env": env, "stdin": subprocess.DEVNULL, "shell": shell}
    if sys.platform == "win32":
        options["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
    else:
        options["start_new_session"] = True
    return options


def _stdout_sink(keep: str, stdout_path: Path | None) -> IO[bytes]:
    """Where stdout goes: ``<name>.stdout`` (stdout=file), a temporary file for its tail, or nowhere."""
    if stdout_path is not None:
        return open(stdout_path, "wb")
    return tempfile.TemporaryFile() if keep == "tail" else open(os.devnull, "wb")


def _run(cmd: str | list[str], popen: dict[str, Any], out: IO[bytes], err: IO[bytes],
         timeout: float) -> tuple[int, bool, float]:
    """Run the command to its end, or to its timeout and then kill it with everything it started.
    Returns (exit code, timed out, seconds)."""
    program = cmd if isinstance(cmd, str) else cmd[0]
    started = time.monotonic()
    try:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, **popen)
    except FileNotFoundError:
        raise ItemError(f"command not found: {program}") from None
    except PermissionError:
        raise ItemError(f"command is not executable: {program}") from None
    except OSError as exc:
        raise ItemError(f"cannot start command: {exc}") from None
    timed_out = False
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        kill_tree(proc.pid)
        code = proc.wait()
    finally:
        if proc.poll() is None:  # interrupted (e.g. the worker is stopping): leave nothing behind
            kill_tree(proc.pid)
            proc.wait()
    return code, timed_out, round(time.monotonic() - started, 3)


def _tail(fh: IO[bytes]) -> str:
    fh.flush()
    size = fh.seek(0, os.SEEK_END)
    fh.seek(max(0, size - TAIL * 4))
    return fh.read().decode("utf-8", "replace")[-TAIL:]


def _exit_reason(code: int, stderr_tail: str) -> str:
    """``exit code N (killed by SIGX): <the last line of stderr>``."""
    last = next((line.strip() for line in reversed(stderr_tail.splitlines()) if line.strip()), "")
    reason = f"exit code {code}"
    if code < 0 and not WINDOWS:
        with contextlib.suppress(ValueError):
            reason += f" (killed by {signal.Signals(-code).name})"
    return f"{reason}: {last}" if last else reason


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@task(
    "command",
    description="run a command template on every file (e.g. 'gzip -k {path}')",
    options=OPTIONS,
    cost_per_item=0.05,
    cost_per_byte=1e-8,
)
def command(path: Path, ctx: TaskContext) -> dict:
    """Run the ``cmd`` template on one file; fail it on a non-zero exit or a timeout."""
    opts = ctx.options
    template = opts.get("cmd")
    if not template or not str(template).strip():
        raise ItemError("option 'cmd' is required, e.g. --opt cmd='gzip -k {path}'")
    shell = bool(opts.get("shell", False))
    timeout = float(DEFAULT_TIMEOUT if opts.get("timeout") is None else opts["timeout"])
    if timeout <= 0:
        raise ItemError("option 'timeout' must be a positive number of seconds")
    keep = str(opts.get("stdout") or "tail")
    path = Path(path).absolute()
    out_dir = ctx.output_path("").parent
    values = {"path": str(path), "name": path.name, "stem": path.stem, "ext": path.suffix, "rel": ctx.rel_path,
              "out_dir": str(out_dir)}
    cmd, shown = _command_line(str(template), shell, values)
    env = external_env({"BATCHDESK_INPUT": str(path), "BATCHDESK_REL": ctx.rel_path, "BATCHDESK_OUT_DIR": str(out_dir)})
    stdout_path = output_file(ctx, path, ".stdout") if keep == "file" else None
    with tempfile.TemporaryFile() as err, _stdout_sink(keep, stdout_path) as out:
        code, timed_out, duration = _run(cmd, _popen_options(out_dir, env, shell), out, err, timeout)
        result: dict[str, Any] = {"exit_code": code, "stderr_tail": _tail(err), "duration": duration, **shown}
        if keep == "tail":
            result["stdout_tail"] = _tail(out)
        elif stdout_path:
            result["stdout_path"] = relative_to_output(ctx.output_dir, stdout_path)
    if timed_out:
        raise ItemError(f"timed out after {_seconds(timeout)} s", result=result)
    if code != 0:
        raise ItemError(_exit_reason(code, result["stderr_tail"]), result=result)
    return result
