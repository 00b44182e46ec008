"""The data layer's tunables: how a SQLite store is opened, and how many rows are read at a time.

The schema's own constants (its version, the PostgreSQL lock keys and version table) are facts of the
schema, not tunables: they stay in :mod:`data.store`.
"""

from __future__ import annotations

# A writer waits this long for another writer's lock before SQLite gives up ("database is locked").
BUSY_TIMEOUT_SECONDS = 30

# Set on every SQLite connection.
SQLITE_PRAGMAS: dict[str, int | str] = {
    "page_size": 16384,  # new stores only (then fixed by WAL): ~20 % cheaper item inserts, ~10 % cheaper updates
    "journal_mode": "wal",  # readers run beside one writer
    "synchronous": "normal",  # safe with WAL: a power cut may lose the last commits, never corrupt the file
    "busy_timeout": BUSY_TIMEOUT_SECONDS * 1000,  # milliseconds
    "foreign_keys": 1,  # a job's batches and items go with it
    "cache_size": -32_000,  # KiB of page cache per connection
    "temp_store": "memory",  # sorts and temporary indexes never touch the disk
}

# Item rows read per query when a job's results are walked (its end-of-job report): each chunk is read
# in full before the caller writes, and memory stays flat for any job size.
RESULTS_READ_ROWS = 2000
