"""A job's done results as a table a report can group and sort in SQL.

A whole-folder report (checksum's duplicates) reads tens of thousands of results. Decoding each
result's JSON in Python and copying it into a scratch database cost a 50,000-file job ~0.2 s at its
end; here the store pulls the named fields out of the JSON itself (``json_extract`` on SQLite,
``->>`` on PostgreSQL) into a temporary table of the worker's own connection, in one statement per
job, and the report's query runs where the rows already are, in bounded memory.

The rows are :func:`data.queries.iter_folder_results`' done ones: the job's items, then the done items
of the earlier jobs it left its unchanged files to (newest first), each path once, and only files still
in the folder. :func:`rows_table` builds the same table from rows in hand (a job context made without a
store: a plugin's own tests), in an in-memory SQLite database.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from data.models import db
from data.states import ItemState
from data.store import is_postgres

TABLE = "folder_results"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_SQL_TYPES = {str: "TEXT", int: "BIGINT", float: "DOUBLE PRECISION"}
_PG_CASTS = {str: "", int: "::BIGINT", float: "::DOUBLE PRECISION"}
_DONE = ItemState.DONE


class ResultsTable:
    """The table ``folder_results`` (columns ``path``, then one per field asked for) and how to query it."""

    name = TABLE

    def __init__(self, execute: Callable[[str, Sequence[Any]], Iterable[tuple]]) -> None:
        self._execute = execute

    def rows(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple]:
        """Run ``sql`` (``{table}`` stands for the table's name; ``?`` placeholders) and iterate its rows."""
        yield from self._execute(sql.format(table=self.name), params)


def _columns(fields: Mapping[str, type]) -> str:
    for name, kind in fields.items():
        if not _NAME.match(name) or name in ("path", "status", "earlier") or kind not in _SQL_TYPES:
            raise ValueError(f"result field {name!r} ({kind!r}): a plain name other than path/status/earlier, "
                             "of type str, int or float")
    return ", ".join(f"{name} {_SQL_TYPES[kind]}" for name, kind in fields.items())


def _extract(fields: Mapping[str, type]) -> str:
    """The SQL that pulls each field out of an item's ``result`` JSON, in the store's dialect."""
    if is_postgres():
        return ", ".join(f"(CAST(result AS json) ->> '{name}'){_PG_CASTS[kind]}" for name, kind in fields.items())
    return ", ".join(f"json_extract(result, '$.{name}')" for name in fields)


@contextlib.contextmanager
def folder_results_table(job_id: int, earlier: Sequence[int], source: str,
                         fields: Mapping[str, type]) -> Iterator[ResultsTable]:
    """The job's whole-folder done results as a temporary table of this thread's store connection,
    dropped on exit."""
    columns, values = _columns(fields), _extract(fields)
    db.execute_sql(f"DROP TABLE IF EXISTS {TABLE}")
    db.execute_sql(f"CREATE TEMPORARY TABLE {TABLE} (path TEXT, status TEXT, earlier INTEGER, {columns})")
    try:
        db.execute_sql(f"INSERT INTO {TABLE} SELECT path, status, 0, {values} FROM item WHERE job_id = ?", (job_id,))
        if earlier:
            _add_earlier(earlier, source, values)
        db.execute_sql(f"DELETE FROM {TABLE} WHERE status <> ?", (_DONE,))
        yield ResultsTable(db.execute_sql)
    finally:
        db.execute_sql(f"DROP TABLE IF EXISTS {TABLE}")


def _add_earlier(earlier: Sequence[int], source: str, values: str) -> None:
    """The earlier jobs' done items for paths this job did not take (the newest job's first), then
    without the files that have left the folder since."""
    db.execute_sql(f"CREATE INDEX {TABLE}_path ON {TABLE} (path)")
    for earlier_id in earlier:
        db.execute_sql(
            f"INSERT INTO {TABLE} SELECT i.path, i.status, 1, {values} FROM item i WHERE i.job_id = ? "
            f"AND i.status = ? AND NOT EXISTS (SELECT 1 FROM {TABLE} f WHERE f.path = i.path)", (earlier_id, _DONE))
    paths = [path for (path,) in db.execute_sql(f"SELECT path FROM {TABLE} WHERE earlier = 1").fetchall()]
    gone = [(path,) for path in paths if not os.path.isfile(os.path.join(source, path))]
    if gone:
        db.cursor().executemany(f"DELETE FROM {TABLE} WHERE earlier = 1 AND path = ?", gone)


@contextlib.contextmanager
def rows_table(results: Callable[[], Iterable[tuple[str, str, Any, str | None]]],
               fields: Mapping[str, type]) -> Iterator[ResultsTable]:
    """The same table from ``(rel_path, status, result, error)`` rows in hand, in an in-memory SQLite database."""
    columns = _columns(fields)
    memory = sqlite3.connect(":memory:")
    try:
        memory.execute(f"CREATE TABLE {TABLE} (path TEXT, {columns})")
        marks = ", ".join("?" * (len(fields) + 1))
        memory.executemany(f"INSERT INTO {TABLE} VALUES ({marks})", (
            (path, *(result.get(name) for name in fields))
            for path, status, result, _error in results() if status == _DONE and result))
        yield ResultsTable(memory.execute)
    finally:
        memory.close()
