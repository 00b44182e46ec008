"""peewee without its PostgreSQL driver until a PostgreSQL store is opened.

peewee imports psycopg (and psycopg2) at import time whenever they are installed: 50-120 ms in
every process (CLI, desk, each worker), although most stores are SQLite files. :func:`import_peewee`
imports peewee with the drivers hidden; :func:`bind_psycopg` hands psycopg to peewee when a
PostgreSQL store is opened, setting exactly the names peewee's own import would have set.
peewee is pinned to 4.x; ``tests/test_store.py`` checks that those names still exist, and the
PostgreSQL tests run the whole store through the bound driver.
"""

from __future__ import annotations

import sys
from types import ModuleType

_DRIVERS = ("psycopg", "psycopg2", "psycopg2cffi")


def import_peewee() -> ModuleType:
    """Import peewee without letting it import a PostgreSQL driver (unless one is loaded already)."""
    if "peewee" in sys.modules or any(name in sys.modules for name in _DRIVERS):
        import peewee

        return peewee
    for name in _DRIVERS:
        sys.modules[name] = None  # type: ignore[assignment]  # makes `import name` raise ImportError
    try:
        import peewee
    finally:
        for name in _DRIVERS:
            del sys.modules[name]
    return peewee


def bind_psycopg() -> ModuleType:
    """Import psycopg and give it to peewee (a no-op when peewee found it at import)."""
    import peewee
    import psycopg
    from psycopg.pq import TransactionStatus
    from psycopg.types.json import Json, Jsonb

    names = vars(peewee)  # its driver globals, which peewee's stubs do not declare
    if names["psycopg"] is None:
        names.update(psycopg=psycopg, TransactionStatus=TransactionStatus, Json_pg3=Json, Jsonb_pg3=Jsonb)
        adapter = peewee.Psycopg3Adapter
        adapter.txn_idle = TransactionStatus.IDLE
        adapter.txn_inerror = TransactionStatus.INERROR
        adapter.txn_unknown = TransactionStatus.UNKNOWN
    return psycopg
