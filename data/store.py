"""Opening the store: SQLite in WAL mode, pragmas, schema version and migrations.

Every process (desk, CLI, each worker) opens the same file. WAL lets readers run beside one
writer; a busy timeout absorbs short write contention, and read-then-write transactions use
``atomic("IMMEDIATE")`` (see :func:`write`) so two writers never deadlock on lock upgrade.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from peewee import SqliteDatabase

from data.models import ALL_MODELS, db

SCHEMA_VERSION = 1
STORE_FILENAME = "batchdesk.sqlite3"

PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": "normal",
    "busy_timeout": 30_000,
    "foreign_keys": 1,
    "cache_size": -32_000,
    "temp_store": "memory",
}

# version -> function that upgrades the schema from version-1 to version.
MIGRATIONS: dict[int, Callable[[SqliteDatabase], None]] = {}


class StoreError(Exception):
    """The store cannot be opened or is from a newer batchdesk; the message says what to do."""


def open_store(path: Path | str) -> SqliteDatabase:
    """Open (creating if needed) the store at ``path``, bind the models to it, connect this thread.

    Calling it again with the same path only connects the calling thread (connections are
    per thread); a different path closes the old store and binds the new one.
    """
    path = Path(path).expanduser().resolve()
    current = db.obj
    if current is not None and Path(current.database) == path:
        current.connect(reuse_if_open=True)
        return current
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the data folder {path.parent}: {exc.strerror}") from exc
    if current is not None and not current.is_closed():
        current.close()
    database = SqliteDatabase(str(path), pragmas=PRAGMAS, check_same_thread=False, timeout=30)
    db.initialize(database)
    try:
        database.connect(reuse_if_open=True)
        _migrate(database)
    except StoreError:
        raise
    except Exception as exc:
        raise StoreError(f"cannot open the store {path}: {exc}") from exc
    return database


def close_store() -> None:
    """Close this thread's connection to the store, if any."""
    if db.obj is not None and not db.obj.is_closed():
        db.obj.close()


def _migrate(database: SqliteDatabase) -> None:
    with database.atomic("IMMEDIATE"):
        version = database.execute_sql("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the store was written by a newer batchdesk (schema {version} > {SCHEMA_VERSION}): "
                "upgrade batchdesk or point --data-dir elsewhere"
            )
        if version == 0:
            database.create_tables(ALL_MODELS, safe=True)
        else:
            for target in range(version + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[target](database)
        if version != SCHEMA_VERSION:
            database.execute_sql(f"PRAGMA user_version = {SCHEMA_VERSION}")


@contextmanager
def write() -> Iterator[None]:
    """A short read-then-write transaction that takes the write lock up front (BEGIN IMMEDIATE)."""
    with db.atomic("IMMEDIATE"):
        yield
