"""The baseline as a user would write it: list a folder, sha256 every file on ``multiprocessing.Pool``.

    python -m bench.pool_script FOLDER [PROCESSES]

Prints the number of files hashed. ``bench_fixed`` times this whole process (interpreter start-up
included) against the whole ``batchdesk run`` command; ``common.pool_hash`` runs the same functions
in-process. Standard library only, so the script starts as fast as a user's would.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import sys
from pathlib import Path


def list_files(root: Path) -> list[str]:
    """Every regular file under ``root`` (recursive scandir), as absolute paths."""
    out: list[str] = []
    stack = [str(root)]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    out.append(entry.path)
    return out


def hash_file(path: str) -> tuple[str, str]:
    """The baseline's unit of work: sha256 of the whole file, read in one go."""
    with open(path, "rb") as fh:
        return path, hashlib.sha256(fh.read()).hexdigest()


def pool_chunksize(count: int, processes: int) -> int:
    """About 16 chunks per process (tail imbalance stays small), at most 500 files per chunk."""
    return max(1, min(500, count // (processes * 16)))


def main(argv: list[str]) -> int:
    folder, processes = Path(argv[0]), int(argv[1]) if len(argv) > 1 else 2
    paths = list_files(folder)
    with multiprocessing.Pool(processes) as pool:
        results = dict(pool.imap_unordered(hash_file, paths, pool_chunksize(len(paths), processes)))
    print(len(results))
    return 0 if len(results) == len(paths) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
