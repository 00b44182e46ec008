"""Scanning a folder for the files a job will process.

Recursive, fast (``os.scandir``), never following a symlink out of the root, skipping dotfiles
unless asked, with include/exclude globs matched against the relative path and the file name.
"""

from __future__ import annotations

import errno
import fnmatch
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_ISREG

from batchdesk.errors import BatchdeskError

_NOT_A_FILE_INSIDE = "it points outside the folder or not to a file"
_NOT_A_REGULAR_FILE = "not a regular file (a named pipe, a socket or a device)"


class ScanError(BatchdeskError):
    """The folder cannot be scanned (missing, not a folder, unreadable, nothing to process)."""


@dataclass
class ScanResult:
    """The files a job will take from a folder, and what was left out (with warnings a person can read)."""

    root: Path
    files: list[tuple[str, int, float]] = field(default_factory=list)  # (rel posix path, size, mtime)
    skipped: int = 0
    warnings: list[str] = field(default_factory=list)
    links: set[str] = field(default_factory=set)  # files that are symlinks (to files inside the root)

    @property
    def bytes(self) -> int:
        """The size of every file taken (the planner sizes batches from it)."""
        return sum(size for _, size, _ in self.files)


def matches(rel: str, include: tuple[str, ...], exclude: tuple[str, ...]) -> bool:
    """Whether a relative path passes the include and exclude globs (against path or file name)."""
    name = rel.rsplit("/", 1)[-1]

    def hit(patterns: tuple[str, ...]) -> bool:
        return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(name, p) for p in patterns)

    return (not include or hit(include)) and not hit(exclude)


def check_folder(folder: Path) -> Path:
    """Resolve ``folder`` and fail with a clear message if it cannot be a job's source."""
    folder = Path(folder).expanduser()
    if not folder.exists():
        raise ScanError(f"folder not found: {folder}")
    if not folder.is_dir():
        raise ScanError(f"not a folder: {folder} (give the folder that holds the files)")
    if not os.access(folder, os.R_OK | os.X_OK):
        raise ScanError(f"cannot read folder {folder}: permission denied")
    return folder.resolve()


def scan_folder(
    folder: Path,
    include: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
    hidden: bool = False,
) -> ScanResult:
    """List the files under ``folder`` that a job should process; errors if there are none."""
    root = check_folder(folder)
    result = ScanResult(root=root)
    keep = (lambda rel: matches(rel, include, exclude)) if include or exclude else None
    _walk(root, root, "", hidden, keep, result)
    if not result.files:
        detail = f" ({result.skipped} file(s) filtered out)" if result.skipped else ""
        raise ScanError(f"no files to process in {root}{detail}")
    return result


def _by_name(entry: os.DirEntry) -> str:
    return entry.name


def _walk(root: Path, directory: Path | str, prefix: str, hidden: bool,
          keep: Callable[[str], bool] | None, result: ScanResult) -> None:
    """Append the files under ``directory`` to ``result`` in name order, folders depth first.

    The hot path (a regular file) costs one ``stat`` and no extra objects: the file type comes
    from the directory listing itself.
    """
    try:
        entries = sorted(os.scandir(directory), key=_by_name)
    except OSError as exc:
        if directory == root:
            raise ScanError(f"cannot read folder {root}: {exc.strerror}") from exc
        result.warnings.append(f"skipped unreadable folder {prefix or '.'}: {exc.strerror}")
        return
    files = result.files
    for entry in entries:
        name = entry.name
        if not hidden and name.startswith("."):
            result.skipped += 1
            continue
        rel = prefix + name
        try:
            if entry.is_file(follow_symlinks=False):
                if keep is None or keep(rel):
                    stat = entry.stat(follow_symlinks=False)
                    files.append((rel, stat.st_size, stat.st_mtime))
                else:
                    result.skipped += 1
            elif entry.is_dir(follow_symlinks=False):
                _walk(root, entry.path, rel + "/", hidden, keep, result)
            elif entry.is_symlink():
                _add_symlink(root, entry.path, rel, keep, result)
            else:  # reading a pipe would block a worker; a socket or a device has no content to process
                result.skipped += 1
                result.warnings.append(f"skipped {rel}: {_NOT_A_REGULAR_FILE}")
        except OSError as exc:  # vanished between listing and stat, or unreadable
            result.warnings.append(f"skipped {rel}: {exc.strerror}")


def _add_symlink(root: Path, path: str, rel: str, keep: Callable[[str], bool] | None, result: ScanResult) -> None:
    """Take a symlink that leads to a file inside the root (as that file); skip any other with a warning.

    ``os.path.realpath`` and ``os.stat`` rather than ``Path.resolve``, which raises RuntimeError on a
    symlink loop (before Python 3.13); ``os.stat`` says ELOOP instead.
    """
    try:
        stat = os.stat(path)
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.ENOENT, errno.ENOTDIR):
            raise  # unreadable: the caller warns with the reason
        reason = "a symlink loop" if exc.errno == errno.ELOOP else _NOT_A_FILE_INSIDE
    else:
        if S_ISREG(stat.st_mode) and Path(os.path.realpath(path)).is_relative_to(root):
            if keep is None or keep(rel):
                result.links.add(rel)
                result.files.append((rel, stat.st_size, stat.st_mtime))
            else:
                result.skipped += 1
            return
        reason = _NOT_A_FILE_INSIDE
    result.skipped += 1
    result.warnings.append(f"skipped symlink {rel}: {reason}")
