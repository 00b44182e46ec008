"""The pieces of search on their own: schema 5's migration, `--where` filters, snippets, ranking input."""

from __future__ import annotations

import sqlite3

import pytest

from batchdesk.search import snippet, terms_of
from batchdesk.search_filters import FilterError, Filters, parse_where
from data.models import IndexCollection, Job
from data.store import SCHEMA_VERSION, close_store, open_store


def test_a_version_4_store_gets_the_index_tables_and_keeps_its_jobs(tmp_path):
    path = tmp_path / "old.db"
    open_store(path)
    Job.create(name="j", source="/in", task="checksum", output_dir="/out", created_at=1.0)
    close_store()
    con = sqlite3.connect(path)
    for table in ("indexchunk", "indexdocument", "indexcollection"):
        con.execute(f"DROP TABLE {table}")
    con.execute("PRAGMA user_version = 4")
    con.commit()
    con.close()
    open_store(tmp_path / "other.db")  # rebind so the next open really opens the file
    open_store(path)
    assert Job.get().name == "j" and IndexCollection.select().count() == 0
    assert Job._meta.database.execute_sql("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5
    close_store()


DOC = {"path": "/docs/reports/q3-report.pdf", "title": "Quarterly report", "author": "Ana Ruiz", "format": "pdf",
       "lang": "en", "pages": 12, "words": 3400, "created": "2023-05-04T10:00:00", "modified": "2024-01-02T00:00:00"}


@pytest.mark.parametrize("where,accepted", [
    ([], True),
    (["author=ana ruiz"], True),
    (["author=Someone"], False),
    (["format=PDF", "lang=en"], True),
    (["pages=12"], True),
    (["path=*.pdf"], True),
    (["path=q3-*"], True),
    (["path=/docs/reports/*"], True),
    (["path=/other/*"], False),
    (["after=2023"], True),
    (["after=2023-05-04"], True),
    (["after=2023-05-05"], False),
    (["before=2023-05-05"], True),
    (["before=2023-05"], False),
    (["after=2023-01", "before=2024"], True),
])
def test_where_filters_match_a_documents_metadata(where, accepted):
    assert parse_where(where).accepts(DOC) is accepted


def test_a_document_without_its_own_date_is_filtered_on_its_modification_date():
    assert parse_where(["after=2024"]).accepts({**DOC, "created": None})
    assert not parse_where(["after=2024"]).accepts({**DOC, "created": None, "modified": None})


@pytest.mark.parametrize("pair,message", [
    ("colour=blue", "key=value with a key of title, author"),
    ("author", "key=value"),
    ("lang=", "needs a value"),
    ("after=yesterday", "YYYY, YYYY-MM or YYYY-MM-DD"),
])
def test_bad_filters_say_what_is_allowed(pair, message):
    with pytest.raises(FilterError, match=message):
        parse_where([pair])


def test_filters_are_hashable_and_empty_ones_are_false():
    assert not Filters() and parse_where(["lang=en"]) == parse_where(["lang=EN"])
    assert len({parse_where(["lang=en"]), parse_where(["lang=en"])}) == 1


def test_snippets_show_the_text_around_the_first_query_term():
    text = ("Lorem ipsum dolor sit amet. " * 20) + "The refrigerant pressure is checked every two years. " + "x " * 200
    cut = snippet(text, terms_of("when is the refrigerant checked"))
    assert "refrigerant pressure" in cut and cut.startswith("…") and cut.endswith("…") and len(cut) <= 250
    assert snippet("short text", ["nothing"]) == "short text"
    assert terms_of("What is the Najdorf variation?") == ["najdorf", "variation"]
