"""Job reports: every item of a job plus a summary, as CSV, JSON or XLSX.

The store must already be open (``data.store.open_store(path)``). Items are read in keyset-paged
chunks of :data:`CHUNK` rows and written as they come, so a job of a million items never sits in
memory (openpyxl's write-only mode streams the XLSX too).

Columns of the items table (all formats)::

    id, path, status, size, attempts, duration_s, started, finished, error, result

``result`` is the task's result as compact JSON (a JSON object in the JSON report; cut to 32,000
characters in XLSX, the cell limit). Times are local ISO 8601 with offset.

The summary: job id, name, task, source, output folder, status, created/started/finished, items
total / done / failed / cancelled / pending, bytes total / done, ``duration_s`` (job start to finish,
or to now while it runs; from the items' own times when the job has none), ``throughput_items_per_s``
(items ended done or failed per second of that duration), ``success_rate`` (done / (done + failed);
cancelled items are not failures; empty when nothing ended), ``cpu_s`` (sum of item durations),
``mean_item_s``, ``generated``.

Formats:

* ``csv``: the items table goes to ``out``; the summary goes to a sibling file
  ``<out stem>.summary.csv`` (two columns: ``key,value``), so the items file stays one clean table.
* ``json``: ``{"summary": {...}, "items": [{...}, ...]}`` in one file.
* ``xlsx``: sheet "Summary" (key / value) and sheet "Items" (the table).

Files are written through a temporary sibling and renamed, so a reader never sees half a report.
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from batchdesk.errors import BatchdeskError
from data.models import Item, Job, db
from data.states import JOB_ENDED, ItemState

CHUNK = 2000  # item rows read per query while a report is written
FORMATS = ("csv", "json", "xlsx")  # every report format (the CLI's --format, the UI's report buttons)
ITEM_COLUMNS = ["id", "path", "status", "size", "attempts", "duration_s", "started", "finished", "error", "result"]
XLSX_CELL_LIMIT = 32_000  # characters a cell keeps (Excel's limit is 32,767)


class ReportError(BatchdeskError, ValueError):
    """A report cannot be written (unknown job or format); the message says what to fix."""


def write_report(job_id: int, fmt: str, out: Path) -> Path:
    """Write job ``job_id``'s report in ``fmt`` (csv | json | xlsx) to ``out``; return ``out``.

    For ``csv`` the summary is written beside it as ``<out stem>.summary.csv``.
    """
    fmt = (fmt or "").lower().lstrip(".")
    if fmt not in FORMATS:
        raise ReportError(f"unknown report format {fmt!r}; use one of {', '.join(FORMATS)}")
    job = Job.get_or_none(Job.id == job_id)
    if job is None:
        raise ReportError(f"no job {job_id} in the store")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    summary = report_summary(job)
    writer = {"csv": _write_csv, "json": _write_json, "xlsx": _write_xlsx}[fmt]
    part = out.with_name(f".{out.name}.{os.getpid()}.part")
    try:
        writer(job, summary, part, out)
        os.replace(part, out)
    finally:
        if part.exists():
            part.unlink()
    return out


def summary_path(out: Path) -> Path:
    """Where the CSV format puts the summary for an items file at ``out``."""
    out = Path(out)
    return out.with_name(f"{out.stem}.summary.csv")


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def _iso(ts: float | None) -> str:
    """A Unix time as local ISO 8601 with its offset (what a person and a spreadsheet both read)."""
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


@dataclass
class _Totals:
    """What one GROUP BY over a job's items says: counts per status, CPU time, first and last times, bytes."""

    counts: dict[str, int] = field(default_factory=dict)
    cpu: float = 0.0
    first: float | None = None  # the earliest item start
    last: float | None = None  # the latest item finish
    bytes_total: int = 0
    bytes_done: int = 0

    def count(self, status: ItemState) -> int:
        """Items in ``status`` (0 when none)."""
        return self.counts.get(status, 0)


def _item_totals(job_id: int) -> _Totals:
    """The job's items summed per status in one query (no row of them is held in memory)."""
    meta = Item._meta
    col = {name: meta.fields[name].column_name
           for name in ("job", "status", "duration", "started_at", "finished_at", "size")}
    cursor = db.execute_sql(
        f"SELECT {col['status']}, COUNT(*), SUM({col['duration']}), MIN({col['started_at']}), "
        f"MAX({col['finished_at']}), SUM({col['size']}) FROM {meta.table_name} WHERE {col['job']} = ? "
        f"GROUP BY {col['status']}",
        (job_id,),
    )
    totals = _Totals()
    for status, count, dur, min_started, max_finished, size in cursor.fetchall():
        totals.counts[status] = count
        totals.cpu += dur or 0.0
        if min_started is not None:
            totals.first = min_started if totals.first is None else min(totals.first, min_started)
        if max_finished is not None:
            totals.last = max_finished if totals.last is None else max(totals.last, max_finished)
        totals.bytes_total += size or 0
        if status == ItemState.DONE:
            totals.bytes_done = size or 0
    return totals


def _span(job: Job, totals: _Totals) -> tuple[float | None, float | None, float | None]:
    """(started, finished, duration): the job's own times, else its items'; a job still running is
    measured up to now (finished None)."""
    ended = job.status in JOB_ENDED
    started: float | None = job.started_at if job.started_at is not None else totals.first
    finished: float | None = job.finished_at if job.finished_at is not None else (totals.last if ended else None)
    end = finished if finished is not None else (None if ended else time.time())
    duration = max(0.0, end - started) if started is not None and end is not None else None
    return started, finished, duration


def report_summary(job: Job) -> dict[str, Any]:
    """Counts, duration, throughput and success rate of a job, from one GROUP BY over its items."""
    totals = _item_totals(job.id)
    done, failed = totals.count(ItemState.DONE), totals.count(ItemState.FAILED)
    cancelled = totals.count(ItemState.CANCELLED)
    total = sum(totals.counts.values())
    started, finished, duration = _span(job, totals)
    processed = done + failed
    return {
        "job_id": job.id,
        "name": job.name,
        "task": job.task,
        "source": job.source,
        "output_dir": job.output_dir,
        "status": job.status,
        "created": _iso(job.created_at),
        "started": _iso(started),
        "finished": _iso(finished),
        "items_total": total,
        "done": done,
        "failed": failed,
        "cancelled": cancelled,
        "pending": total - done - failed - cancelled,
        "bytes_total": job.bytes_total or totals.bytes_total,
        "bytes_done": totals.bytes_done,
        "duration_s": round(duration, 3) if duration is not None else None,
        "throughput_items_per_s": round(processed / duration, 2) if duration else None,
        "success_rate": round(done / processed, 4) if processed else None,
        "cpu_s": round(totals.cpu, 3),
        "mean_item_s": round(totals.cpu / processed, 6) if processed else None,
        "generated": _iso(time.time()),
    }


def iter_items(job_id: int, chunk: int | None = None) -> Iterator[tuple]:
    """Yield ``(id, path, status, size, attempts, duration, started_at, finished_at, error, result_json)``
    in id order, ``chunk`` rows per query (keyset paging: each query starts after the last id)."""
    meta = Item._meta
    names = ("id", "path", "status", "size", "attempts", "duration", "started_at", "finished_at", "error", "result")
    cols = ", ".join(meta.fields[n].column_name for n in names)
    id_col, job_col = meta.fields["id"].column_name, meta.fields["job"].column_name
    sql = f"SELECT {cols} FROM {meta.table_name} WHERE {job_col} = ? AND {id_col} > ? ORDER BY {id_col} LIMIT ?"
    chunk = chunk or CHUNK
    last = 0
    while True:
        rows = db.execute_sql(sql, (job_id, last, chunk)).fetchall()
        if not rows:
            return
        yield from rows
        if len(rows) < chunk:
            return
        last = rows[-1][0]


def _row(item: tuple) -> list[Any]:
    item_id, path, status, size, attempts, duration, started, finished, error, result = item
    return [
        item_id,
        path,
        status,
        size,
        attempts,
        round(duration, 6) if duration is not None else None,
        _iso(started),
        _iso(finished),
        error or "",
        result or "",
    ]


# --------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------


def _write_csv(job: Job, summary: dict[str, Any], part: Path, out: Path) -> None:
    with open(part, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(ITEM_COLUMNS)
        for item in iter_items(job.id):
            writer.writerow(["" if v is None else v for v in _row(item)])
    side = summary_path(out)
    side_part = side.with_name(f".{side.name}.part")
    with open(side_part, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["key", "value"])
        for key, value in summary.items():
            writer.writerow([key, "" if value is None else value])
    os.replace(side_part, side)


def _write_json(job: Job, summary: dict[str, Any], part: Path, out: Path) -> None:
    with open(part, "w", encoding="utf-8") as fh:
        fh.write('{"summary": ')
        fh.write(json.dumps(summary, ensure_ascii=False))
        fh.write(', "items": [')
        sep = "\n"
        for item in iter_items(job.id):
            row = dict(zip(ITEM_COLUMNS, _row(item), strict=True))
            raw = item[-1]
            try:
                row["result"] = json.loads(raw) if raw else None
            except ValueError:
                row["result"] = raw
            row["error"] = row["error"] or None
            fh.write(sep)
            fh.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")))
            sep = ",\n"
        fh.write("\n]}\n")


def _write_xlsx(job: Job, summary: dict[str, Any], part: Path, out: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Font

    wb = Workbook(write_only=True)
    bold = Font(bold=True)

    def cell(ws: Any, value: Any, font: Any = None) -> Any:
        if isinstance(value, str):
            value = ILLEGAL_CHARACTERS_RE.sub("", value)[:XLSX_CELL_LIMIT]
        c = WriteOnlyCell(ws, value=value)
        if isinstance(value, str):
            c.data_type = "s"  # text stays text: a path or error starting with "=" is no formula
        if font is not None:
            c.font = font
        return c

    ws = wb.create_sheet("Summary")
    ws.column_dimensions["A"].width = 24
    ws.column_dimensions["B"].width = 60
    ws.append([cell(ws, "key", bold), cell(ws, "value", bold)])
    for key, value in summary.items():
        ws.append([cell(ws, key), cell(ws, value)])

    items = wb.create_sheet("Items")
    for col, width in zip("ABCDEFGHIJ", (8, 50, 10, 12, 9, 11, 26, 26, 50, 80), strict=True):
        items.column_dimensions[col].width = width
    items.freeze_panes = "A2"
    items.append([cell(items, name, bold) for name in ITEM_COLUMNS])
    for item in iter_items(job.id):
        items.append([cell(items, v) for v in _row(item)])
    wb.save(part)
