"""checksum: sha256, size and detected type of every file, plus a duplicates report for the job.

Per-item result: ``{"sha256": hex, "size": bytes, "type": kind}`` where ``kind`` comes from the
file's first bytes (see :func:`workers.tasks._common.sniff_type`: pdf, docx, xlsx, zip, png, jpeg,
gif, gzip, html, json, csv, text, binary, empty, ...).

The hot path is kept to one ``open`` and one ``read`` for files under 1 MiB (no ``stat``: a short
read from a regular file means end of file), reading into a per-thread 1 MiB buffer that is reused
for every file (``os.readv``; allocating a fresh 1 MiB ``bytes`` per file costs more than hashing a
small file). The type is sniffed from the first 64 KiB already read. Larger files are hashed in
1 MiB chunks so memory stays flat. Without ``os.readv`` (Windows) the first read is 64 KiB.

Job report (finalize): ``duplicates.csv`` in the job's output folder, one row per file that shares
its sha256 with at least one other file: ``group, sha256, size, copies, path``, biggest groups by
size first. Empty files are left out (they are all "identical"). The grouping is one SQL query over
the job's results as a table of the store (``JobContext.table``): a job of millions of files is never
held in memory, and no result is decoded in Python.
"""

from __future__ import annotations

import csv
import logging
import os
import threading
from hashlib import sha256
from pathlib import Path

from workers.registry import ItemError, JobContext, Option, TaskContext, task
from workers.tasks._common import sniff_type

CHUNK = 1 << 20
HEAD = 1 << 16  # bytes kept for type detection (the whole file when it is smaller)
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0)
DUPLICATES_FILE = "duplicates.csv"
log = logging.getLogger("batchdesk.task.checksum")

OPTIONS = (
    Option(
        "duplicates",
        bool,
        True,
        "write duplicates.csv (groups of files with identical sha256) to the job's output folder",
    ),
)


def write_duplicates(job: JobContext) -> Path | None:
    """Finalize hook: group the job's done items by sha256 and write ``duplicates.csv``."""
    if not OPTIONS[0].parse(job.options.get("duplicates")):  # parsed or raw ("false") options alike
        return None
    out_dir = Path(job.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / DUPLICATES_FILE
    part = target.with_name(f".{target.name}.part")
    group = 0
    with job.table({"sha256": str, "size": int}) as table, open(part, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["group", "sha256", "size", "copies", "path"])
        last = None
        for sha, size, copies, rel in table.rows(_DUPLICATES_SQL):
            if sha != last:
                group, last = group + 1, sha
            writer.writerow([group, sha, size, copies, rel])
    os.replace(part, target)
    log.info("job %s: %d duplicate groups written to %s", job.job_id, group, target)
    return target


# Files of a size > 0 whose sha256 another such file shares, biggest first, each group's paths in order.
_DUPLICATES_SQL = (
    "SELECT f.sha256, f.size, d.copies, f.path FROM {table} f "
    "JOIN (SELECT sha256, COUNT(*) AS copies FROM {table} WHERE size > 0 GROUP BY sha256 HAVING COUNT(*) > 1) d "
    "ON d.sha256 = f.sha256 WHERE f.size > 0 ORDER BY f.size DESC, f.sha256, f.path"
)


_readv = getattr(os, "readv", None)  # POSIX; Windows falls back to os.read
_local = threading.local()


def _buffer() -> tuple[bytearray, memoryview]:
    """A 1 MiB read buffer per thread, reused for every file: no allocation on the hot path."""
    try:
        return _local.buf, _local.view
    except AttributeError:
        _local.buf = bytearray(CHUNK)
        _local.view = memoryview(_local.buf)
        return _local.buf, _local.view


@task(
    "checksum",
    description="sha256, size and detected type of every file; duplicates.csv for the job",
    options=OPTIONS,
    finalize=write_duplicates,
    cost_per_item=0.00002,
    cost_per_byte=1.5e-9,
    str_path=True,
)
def checksum(path: str | Path, ctx: TaskContext) -> dict:
    """sha256, size and detected type of one file (one open + one read below 1 MiB)."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
        try:
            if _readv is not None:
                buf, view = _buffer()
                size = _readv(fd, [buf])
                digest = sha256(view[:size])
                head = bytes(view[: size if size < HEAD else HEAD])
                if size == CHUNK:
                    update = digest.update
                    while n := _readv(fd, [buf]):
                        update(view[:n])
                        size += n
            else:
                head = os.read(fd, HEAD)
                digest = sha256(head)
                size = len(head)
                if size == HEAD:
                    while chunk := os.read(fd, CHUNK):
                        digest.update(chunk)
                        size += len(chunk)
        finally:
            os.close(fd)
    except OSError as exc:
        raise ItemError(f"cannot read file: {exc.strerror or exc}") from None
    return {"sha256": digest.hexdigest(), "size": size, "type": sniff_type(head, size < HEAD)}
