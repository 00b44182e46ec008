"""Opening the store: SQLite in WAL mode (the default), or PostgreSQL for workers on many hosts.

SQLite: every process (desk, CLI, each worker) opens the same file. WAL lets readers run beside
one writer; a busy timeout absorbs short write contention, and read-then-write transactions use
``atomic("IMMEDIATE")`` (see :func:`write`) so two writers never deadlock on lock upgrade. WAL's
index is shared memory, so the file must stay on one host: never put it on a network share.

PostgreSQL (``postgresql://user:pw@host:5432/db``): every process on every host connects to the
same server. :class:`PostgresStore` speaks the dialect batchdesk's SQL is written in, so the rest
of the code has one code path: ``?`` placeholders, ``BEGIN IMMEDIATE`` as "one writer at a time"
(a transaction-scoped advisory lock), ``INSERT OR REPLACE`` as an upsert on the primary key, and
the schema version in a one-row table instead of ``PRAGMA user_version``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from peewee import Database, OnConflict, PostgresqlDatabase, SqliteDatabase

from data.defaults import BUSY_TIMEOUT_SECONDS, SQLITE_PRAGMAS
from data.models import ALL_MODELS, INDEX_MODELS, ITEM_STATUS_INDEXES, db
from data.pgdriver import bind_psycopg

SCHEMA_VERSION = 5  # the schema this code writes; older stores are migrated up to it (MIGRATIONS)
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
POSTGRES_EXTRA = "pip install 'batchdesk[postgres]'"  # how to get the driver, for the error saying it is missing
# PostgreSQL advisory locks (per database): write() takes the first per transaction ("bdesk" in
# ASCII), the running desk holds the second for its whole life. The schema version's table.
WRITE_LOCK_KEY = 0x626465736B
DESK_LOCK_KEY = WRITE_LOCK_KEY + 1
VERSION_TABLE = "batchdesk_schema"


def _add_item_link(database: Database) -> None:
    """2: items remember whether they were symlinks at scan time (the runner re-checks only those)."""
    from peewee import BooleanField
    from playhouse.migrate import SchemaMigrator, migrate

    migrate(SchemaMigrator.from_database(database).add_column("item", "link", BooleanField(default=False)))


def _partial_status_indexes(database: Database) -> None:
    """3: the (job, status) index becomes partial indexes for pending and failed items only."""
    database.execute_sql("DROP INDEX IF EXISTS item_job_id_status")
    for sql in ITEM_STATUS_INDEXES:
        database.execute_sql(sql)


def _end_step_as_batch(database: Database) -> None:
    """4: a job's end-of-job step is a final batch run by a worker (a claim that expires with its
    heartbeat) instead of a ``finalized`` flag set before the work; jobs say why they are paused,
    cancelled or failed, who waits for them, and which files their end step wrote."""
    from peewee import CharField, FloatField
    from playhouse.migrate import SchemaMigrator, migrate

    from data.models import JSONField
    from data.states import BatchKind

    migrator = SchemaMigrator.from_database(database)
    migrate(
        migrator.rename_column("job", "error", "reason"),
        migrator.drop_column("job", "finalized"),
        migrator.add_column("job", "status_at", FloatField(null=True)),
        migrator.add_column("job", "paused_by", CharField(null=True)),
        migrator.add_column("job", "waiters", JSONField(default=list)),
        migrator.add_column("job", "end_step", CharField(null=True)),
        migrator.add_column("job", "outputs", JSONField(default=list)),
        migrator.add_column("batch", "kind", CharField(default=BatchKind.ITEMS)),
    )


def _document_index(database: Database) -> None:
    """5: the ``index`` task's collections, documents and chunks (with their vectors)."""
    database.create_tables(INDEX_MODELS, safe=True)


# version -> function that upgrades the schema from version-1 to version (SQLite and PostgreSQL alike).
MIGRATIONS: dict[int, Callable[[Database], None]] = {2: _add_item_link, 3: _partial_status_indexes,
                                                     4: _end_step_as_batch, 5: _document_index}


class StoreError(Exception):
    """The store cannot be opened or is from a newer batchdesk; the message says what to do."""


def is_store_url(ref: Path | str | None) -> bool:
    """True for a PostgreSQL URL, False for a SQLite file path."""
    return isinstance(ref, str) and ref.lower().startswith(POSTGRES_SCHEMES)


def describe_store(ref: Path | str) -> str:
    """The store for messages: a URL without its password, or the file path."""
    if not is_store_url(ref):
        return str(ref)
    parts = urlsplit(str(ref))
    if parts.password is None:
        return str(ref)
    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def open_store(ref: Path | str) -> Database:
    """Open (creating if needed) the store at ``ref``, bind the models to it, connect this thread.

    ``ref`` is a SQLite file path or a ``postgresql://`` URL. Calling it again with the same ref
    only connects the calling thread (connections are per thread); a different ref closes the old
    store and binds the new one.
    """
    if is_store_url(ref):
        key = "postgresql://" + str(ref).split("://", 1)[1]
    else:
        path = Path(ref).expanduser().resolve()
        key = str(path)
    current = db.obj
    if current is not None and current.database == key:
        current.connect(reuse_if_open=True)
        return current
    if is_store_url(ref):
        database: SqliteDatabase | PostgresStore = PostgresStore(key)
    else:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the data folder {path.parent}: {exc.strerror}") from exc
        database = SqliteDatabase(key, pragmas=SQLITE_PRAGMAS, check_same_thread=False, timeout=BUSY_TIMEOUT_SECONDS)
    if current is not None and not current.is_closed():
        current.close()
    db.initialize(database)
    try:
        database.connect(reuse_if_open=True)
        _migrate(database)
    except Exception as exc:
        if not database.is_closed():
            database.close()
        db.initialize(None)  # not left half-open: the next open_store tries again, migrations included
        if isinstance(exc, StoreError):
            raise
        raise StoreError(f"cannot open the store {describe_store(key)}: {exc}".strip()) from exc
    return database


def is_postgres() -> bool:
    """Whether the open store is PostgreSQL (for the few statements whose SQL differs from SQLite's)."""
    return isinstance(db.obj, PostgresStore)


def close_store() -> None:
    """Close this thread's connection to the store, if any."""
    if db.obj is not None and not db.obj.is_closed():
        db.obj.close()


def _migrate(database: SqliteDatabase | PostgresStore) -> None:
    with database.atomic("IMMEDIATE"):
        version = database.user_version
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
            database.user_version = SCHEMA_VERSION


def hold_desk_lock(ref: Path | str) -> Callable[[], None]:
    """One desk per store, on whatever host. On PostgreSQL: a session advisory lock on a connection
    of its own, held until the returned function is called or the process dies; StoreError when
    another desk holds it. On SQLite there is nothing to do (the data dir's lock file guards it)."""
    if not is_store_url(ref):
        return lambda: None
    psycopg = _psycopg()
    try:
        conn = psycopg.connect(str(ref), autocommit=True)
        held = conn.execute(f"SELECT pg_try_advisory_lock({DESK_LOCK_KEY})").fetchone()[0]
    except psycopg.Error as exc:
        raise StoreError(f"cannot open the store {describe_store(ref)}: {exc}") from exc
    if not held:
        conn.close()
        raise StoreError(f"another batchdesk desk is running for the store {describe_store(ref)} (one desk per "
                         "store): submit on that desk's machine, and run only `batchdesk worker` here")
    return conn.close


@contextmanager
def write() -> Iterator[None]:
    """A short read-then-write transaction that takes the write lock up front (BEGIN IMMEDIATE;
    on PostgreSQL, BEGIN plus the store's advisory lock)."""
    with db.atomic("IMMEDIATE"):
        yield


# -- PostgreSQL ---------------------------------------------------------------------------------
class PostgresStore(PostgresqlDatabase):
    """PostgreSQL (psycopg 3) with the SQLite dialect batchdesk's SQL is written in.

    - ``?`` placeholders in raw SQL (``execute_sql``, ``cursor().executemany``) become ``%s``;
    - ``atomic("IMMEDIATE")`` (:func:`write`) serialises writers like SQLite's write lock, with a
      transaction-scoped advisory lock taken right after BEGIN, before any row is read;
    - ``on_conflict_replace()`` becomes ``ON CONFLICT (primary key) DO UPDATE`` of every column;
    - FloatField is DOUBLE PRECISION (Unix times need it; peewee's default REAL keeps 7 digits);
    - NUMERIC results (SUM over a BIGINT) come back as int or float, as from SQLite, not Decimal;
    - a NUL character in a string is dropped (PostgreSQL text cannot hold it; an error message
      quoting a corrupt file may), instead of failing the whole transaction;
    - ``user_version`` is kept in a one-row table.
    """

    def __init__(self, url: str, **kwargs: Any) -> None:
        _psycopg()
        super().__init__(url, prefer_psycopg3=True, field_types={"FLOAT": "DOUBLE PRECISION"}, **kwargs)

    def _connect(self):
        conn = super()._connect()  # type: ignore[misc]  # peewee's stubs leave out its private _connect
        conn.cursor_factory = _qmark_cursor()
        conn.adapters.register_loader("numeric", _number_loader())
        for dumper in _nul_free_dumpers():
            conn.adapters.register_dumper(str, dumper)
        return conn

    def begin(self, lock_type: str | None = None) -> None:
        super().begin()  # SQLite's lock types are no isolation levels
        if lock_type == "IMMEDIATE":
            self.cursor().execute(f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")

    def conflict_update(self, oc: Any, query: Any) -> Any:  # oc: peewee's OnConflict (its private _action)
        """``on_conflict_replace()``: an upsert on the primary key, every other column updated."""
        if (oc._action or "").upper() == "REPLACE":
            meta = query.model._meta
            oc = OnConflict(conflict_target=[meta.primary_key],
                            preserve=[f for f in meta.sorted_fields if f is not meta.primary_key])
        return super().conflict_update(oc, query)

    @property
    def user_version(self) -> int:
        if not self.table_exists(VERSION_TABLE):
            return 0
        row = self.execute_sql(f"SELECT MAX(version) FROM {VERSION_TABLE}").fetchone()
        return row[0] or 0

    @user_version.setter
    def user_version(self, version: int) -> None:
        self.execute_sql(f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version INTEGER NOT NULL)")
        self.execute_sql(f"DELETE FROM {VERSION_TABLE}")
        self.execute_sql(f"INSERT INTO {VERSION_TABLE} (version) VALUES (?)", (int(version),))


def _psycopg():
    try:
        return bind_psycopg()
    except ImportError:
        raise StoreError(f"a PostgreSQL store needs the psycopg driver: {POSTGRES_EXTRA}") from None


# A quoted literal or identifier (copied as is but for doubling %), a ``?`` or a bare ``%``.
_SQL_TOKEN = re.compile(r"'(?:[^']|'')*'|\"[^\"]*\"|[?%]")


@functools.lru_cache(maxsize=1024)
def qmark_to_format(sql: str) -> str:
    """Rewrite SQLite-style ``?`` placeholders as psycopg's ``%s`` (and a literal ``%`` as ``%%``)."""
    return _SQL_TOKEN.sub(lambda m: "%s" if m.group() == "?" else m.group().replace("%", "%%"), sql)


@functools.cache
def _qmark_cursor() -> type:
    import psycopg

    class QmarkCursor(psycopg.Cursor):
        """Runs peewee's own SQL (``%s``) as is and batchdesk's raw SQL (``?``) rewritten."""

        def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
            if isinstance(query, str) and "?" in query:
                query = qmark_to_format(query)
            return super().execute(query, params, **kwargs)

        def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> Any:
            if isinstance(query, str) and "?" in query:
                query = qmark_to_format(query)
            return super().executemany(query, params_seq, **kwargs)

    return QmarkCursor


@functools.cache
def _number_loader() -> type:
    from psycopg.adapt import Loader

    class NumberLoader(Loader):
        def load(self, data: Any) -> int | float:
            text = bytes(data)
            try:
                return int(text)
            except ValueError:
                return float(text)

    return NumberLoader


@functools.cache
def _nul_free_dumpers() -> tuple[type, ...]:
    from psycopg.types.string import StrBinaryDumper, StrDumperUnknown

    def without_nul(base: type) -> type:
        class NulFree(base):
            def dump(self, obj: str) -> Any:
                return super().dump(obj.replace("\x00", "") if "\x00" in obj else obj)

        return NulFree

    # StrDumperUnknown: psycopg's default for str (the server infers the type from the column).
    return without_nul(StrDumperUnknown), without_nul(StrBinaryDumper)
