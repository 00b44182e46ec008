"""A job's done results as a table of the store (what checksum's duplicates report groups in SQL): the same
rows as the whole-folder results, pulled out of the JSON by the store, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from data import queries
from data.models import Job, db
from data.results_table import TABLE, folder_results_table, rows_table
from job_states import run_through
from test_store_postgres import pg_server, pg_url  # noqa: F401  (the server and a fresh database per test)

FIELDS = {"sha256": str, "size": int}


def _job(source: Path, files: dict[str, dict | None]) -> int:
    """A job over ``files`` (path -> its result, or None: the item failed), run through in this process."""
    job = Job.create(name="j", source=str(source), task="checksum", output_dir=str(source.parent / "out"),
                     created_at=time.time())
    queries.insert_items(job.id, [(path, 1, 0.0) for path in files])
    run_through(job.id, failed={p: "cannot read file" for p, r in files.items() if r is None},
                results={p: r for p, r in files.items() if r is not None})
    return job.id


def _folder_history(tmp_path: Path) -> tuple[Path, int, int]:
    """An earlier job over a.txt, b.txt and gone.txt, then a job that took only b.txt (failed now) and the
    new c.txt; gone.txt has left the folder since."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (source / name).write_text(name)
    first = _job(source, {"a.txt": {"sha256": "aa", "size": 5}, "b.txt": {"sha256": "bb", "size": 7},
                          "gone.txt": {"sha256": "aa", "size": 5}})
    second = _job(source, {"b.txt": None, "c.txt": {"sha256": "aa", "size": 5, "type": "text"}})
    return source, first, second


def _assert_table_matches_folder_results(tmp_path: Path) -> None:
    source, first, second = _folder_history(tmp_path)
    with folder_results_table(second, [first], str(source), FIELDS) as table:
        rows = sorted(table.rows("SELECT path, sha256, size FROM {table}"))
    # c.txt from this job; a.txt left to the earlier one; b.txt failed now (its earlier result no longer
    # counts); gone.txt has left the folder.
    assert rows == [("a.txt", "aa", 5), ("c.txt", "aa", 5)]
    with rows_table(lambda: queries.iter_folder_results(second, [first], str(source)), FIELDS) as in_memory:
        assert sorted(in_memory.rows("SELECT path, sha256, size FROM {table}")) == rows, "both tables agree"
    with folder_results_table(second, [first], str(source), FIELDS) as table:  # dropped after use: made again
        grouped = list(table.rows("SELECT sha256, COUNT(*) FROM {table} GROUP BY sha256 HAVING COUNT(*) > ?", (1,)))
    assert grouped == [("aa", 2)]


def test_the_table_holds_the_whole_folders_done_results(store, tmp_path):
    _assert_table_matches_folder_results(tmp_path)
    assert not db.execute_sql(f"SELECT name FROM sqlite_temp_master WHERE name = '{TABLE}'").fetchall()


@pytest.mark.slow
def test_the_table_holds_the_whole_folders_done_results_on_postgres(request, tmp_path):
    from data.store import open_store

    open_store(request.getfixturevalue("pg_url"))
    _assert_table_matches_folder_results(tmp_path)


@pytest.mark.parametrize("fields", [{"path": str}, {"a; DROP TABLE item": str}, {"size": bytes}])
def test_a_field_that_is_no_plain_column_is_refused(store, tmp_path, fields):
    with pytest.raises(ValueError, match="a plain name"), folder_results_table(1, [], str(tmp_path), fields):
        pass
