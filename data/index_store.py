"""The document index in the store: collections, documents with their metadata, chunks with vectors.

Written by the ``index`` task (one document at a time, each in one write transaction: its old chunks
go, its new ones come, the collection's counters and generation move with them) and read by the
search engine and the snapshot builder (:mod:`data.index_snapshot`). Vectors are float16 bytes in
the chunk rows; this module never interprets them. Raw SQL is written for SQLite and runs as is on
PostgreSQL (:class:`data.store.PostgresStore`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import astuple, dataclass, fields
from typing import Any, NamedTuple

from data.models import IndexCollection, db
from data.store import write

IN_GROUP = 500  # ids per ``IN (...)`` list: well below SQLite's and psycopg's parameter limits


class IndexMismatch(Exception):
    """The collection holds vectors of another model: mixing models in one collection is refused."""


@dataclass
class DocumentRecord:
    """What the index keeps of one file besides its chunks (the metadata search filters on)."""

    path: str
    hash: str
    size: int
    mtime: float
    format: str | None = None
    title: str | None = None
    author: str | None = None
    created: str | None = None
    modified: str | None = None
    pages: int | None = None
    words: int = 0
    lang: str | None = None


_DOC_COLUMNS = [f.name for f in fields(DocumentRecord)]


class ChunkRow(NamedTuple):
    """One chunk as stored: its place in the document and its float16 vector bytes."""

    seq: int
    page: int | None
    page_end: int | None
    heading: str | None
    start_char: int
    end_char: int
    text: str
    vector: bytes


class StoredDocument(NamedTuple):
    """What the task needs to know to skip an unchanged file."""

    id: int
    collection_id: int
    hash: str
    chunks: int
    model: str


def find_collection(name: str) -> IndexCollection | None:
    return IndexCollection.get_or_none(IndexCollection.name == name)


def stored_document(collection: str, path: str) -> StoredDocument | None:
    """The indexed version of ``path`` in ``collection``, if there is one."""
    row = db.execute_sql(
        "SELECT d.id, d.collection_id, d.hash, d.chunks, c.model FROM indexdocument d "
        "JOIN indexcollection c ON c.id = d.collection_id WHERE c.name = ? AND d.path = ?",
        (collection, path)).fetchone()
    return StoredDocument(*row) if row else None


def _mismatch(collection: str, stored: str, dim: int, model: str) -> IndexMismatch:
    return IndexMismatch(f"collection {collection!r} holds vectors of model {stored!r} ({dim} dimensions), not "
                         f"{model!r}: models are never mixed in a collection; index into another collection, or "
                         "leave the model option empty")


def check_model(collection: str, model: str) -> None:
    """Refuse a model that differs from the one the collection was built with."""
    found = find_collection(collection)
    if found is not None and found.model != model:
        raise _mismatch(collection, found.model, found.dim, model)


def _collection_for_write(name: str, model: str, dim: int, now: float) -> tuple[int, int]:
    """(id, next generation) of the collection, created on first use; inside a write transaction."""
    row = db.execute_sql("SELECT id, model, dim, generation FROM indexcollection WHERE name = ?", (name,)).fetchone()
    if row is None:
        created = IndexCollection.create(name=name, model=model, dim=dim, created_at=now, updated_at=now)
        return created.id, 1
    if row[1] != model or row[2] != dim:
        raise _mismatch(name, row[1], row[2], model)
    return row[0], row[3] + 1


def write_document(collection: str, model: str, dim: int, doc: DocumentRecord, chunks: Sequence[ChunkRow]) -> int:
    """Insert the document or replace its chunks, in one transaction; returns its id."""
    now = time.time()
    with write():
        collection_id, generation = _collection_for_write(collection, model, dim, now)
        old = db.execute_sql("SELECT id, chunks FROM indexdocument WHERE collection_id = ? AND path = ?",
                             (collection_id, doc.path)).fetchone()
        values = [*astuple(doc), len(chunks), generation, now]
        names = [*_DOC_COLUMNS, "chunks", "generation", "indexed_at"]
        if old is None:
            marks = ", ".join("?" * (len(names) + 1))
            db.execute_sql(f"INSERT INTO indexdocument (collection_id, {', '.join(names)}) VALUES ({marks})",
                           (collection_id, *values))
            doc_id = db.execute_sql("SELECT id FROM indexdocument WHERE collection_id = ? AND path = ?",
                                    (collection_id, doc.path)).fetchone()[0]
        else:
            doc_id = old[0]
            db.execute_sql("DELETE FROM indexchunk WHERE document_id = ?", (doc_id,))
            assignments = ", ".join(f"{name} = ?" for name in names)
            db.execute_sql(f"UPDATE indexdocument SET {assignments} WHERE id = ?", (*values, doc_id))
        db.cursor().executemany(
            "INSERT INTO indexchunk (document_id, seq, page, page_end, heading, start_char, end_char, text, vector) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", [(doc_id, *chunk) for chunk in chunks])
        db.execute_sql(
            "UPDATE indexcollection SET generation = ?, documents = documents + ?, chunks = chunks + ?, updated_at = ? "
            "WHERE id = ?", (generation, 0 if old else 1, len(chunks) - (old[1] if old else 0), now, collection_id))
    return int(doc_id)


def remove_documents(collection_id: int, doc_ids: Sequence[int]) -> int:
    """Take documents (and their chunks) out of a collection; returns how many went."""
    removed = 0
    for start in range(0, len(doc_ids), IN_GROUP):
        group = list(doc_ids[start:start + IN_GROUP])
        marks = ", ".join("?" * len(group))
        with write():
            gone, chunks = db.execute_sql(
                "SELECT COUNT(*), COALESCE(SUM(chunks), 0) FROM indexdocument "
                f"WHERE collection_id = ? AND id IN ({marks})", (collection_id, *group)).fetchone()
            if not gone:
                continue
            db.execute_sql(f"DELETE FROM indexchunk WHERE document_id IN ({marks})", group)
            db.execute_sql(f"DELETE FROM indexdocument WHERE collection_id = ? AND id IN ({marks})",
                           (collection_id, *group))
            db.execute_sql("UPDATE indexcollection SET generation = generation + 1, documents = documents - ?, "
                           "chunks = chunks - ?, updated_at = ? WHERE id = ?",
                           (gone, chunks, time.time(), collection_id))
            removed += gone
    return removed


def document_ids(collection: str, paths: Sequence[str]) -> list[int]:
    """Ids of the collection's documents at these paths (the ones it has)."""
    found: list[int] = []
    for start in range(0, len(paths), IN_GROUP):
        group = list(paths[start:start + IN_GROUP])
        marks = ", ".join("?" * len(group))
        found += [row[0] for row in db.execute_sql(
            "SELECT d.id FROM indexdocument d JOIN indexcollection c ON c.id = d.collection_id "
            f"WHERE c.name = ? AND d.path IN ({marks})", (collection, *group))]
    return found


def documents_under(collection: str, folder: str) -> list[tuple[int, str]]:
    """(id, path) of the collection's documents inside ``folder`` (an absolute path, no trailing slash)."""
    prefix = folder.rstrip("/\\") + ("\\" if "\\" in folder and "/" not in folder else "/")
    return db.execute_sql(
        "SELECT d.id, d.path FROM indexdocument d JOIN indexcollection c ON c.id = d.collection_id "
        "WHERE c.name = ? AND substr(d.path, 1, ?) = ?", (collection, len(prefix), prefix)).fetchall()


# -- reading, for searches --------------------------------------------------------------------------
class CollectionInfo(NamedTuple):
    id: int
    name: str
    model: str
    dim: int
    generation: int
    documents: int
    chunks: int
    updated_at: float


def collections() -> list[CollectionInfo]:
    """Every collection with its size, by name."""
    rows = db.execute_sql("SELECT id, name, model, dim, generation, documents, chunks, updated_at "
                          "FROM indexcollection ORDER BY name").fetchall()
    return [CollectionInfo(*row) for row in rows]


def generation_of(collection_id: int) -> int | None:
    """The collection's generation (None once it is gone): one indexed read, done before every search."""
    row = db.execute_sql("SELECT generation FROM indexcollection WHERE id = ?", (collection_id,)).fetchone()
    return None if row is None else int(row[0])


DOCUMENT_FIELDS = ("id", "generation", "path", "title", "author", "created", "modified", "lang", "format",
                   "pages", "words", "chunks", "hash", "size", "indexed_at")


def document_rows(collection_id: int) -> list[tuple[Any, ...]]:
    """Every document of the collection as a tuple of :data:`DOCUMENT_FIELDS`, by id."""
    return db.execute_sql(f"SELECT {', '.join(DOCUMENT_FIELDS)} FROM indexdocument WHERE collection_id = ? "
                          "ORDER BY id", (collection_id,)).fetchall()


def document_meta(doc_id: int) -> dict[str, Any] | None:
    """One document's :data:`DOCUMENT_FIELDS` by name, or None when it is no longer indexed."""
    row = db.execute_sql(f"SELECT {', '.join(DOCUMENT_FIELDS)} FROM indexdocument WHERE id = ?", (doc_id,)).fetchone()
    return dict(zip(DOCUMENT_FIELDS, row, strict=True)) if row else None


def vectors_of(doc_ids: Iterable[int]) -> Iterator[tuple[int, int, bytes]]:
    """(chunk id, document id, float16 vector bytes) of these documents' chunks, in groups."""
    ids = list(doc_ids)
    for start in range(0, len(ids), IN_GROUP):
        group = ids[start:start + IN_GROUP]
        marks = ", ".join("?" * len(group))
        rows = db.execute_sql(f"SELECT id, document_id, vector FROM indexchunk WHERE document_id IN ({marks}) "
                              "ORDER BY id", group).fetchall()
        for chunk_id, doc_id, vector in rows:
            yield chunk_id, doc_id, bytes(vector)


CHUNK_FIELDS = ("id", "document_id", "seq", "page", "page_end", "heading", "text")


def chunks_by_id(chunk_ids: Sequence[int]) -> dict[int, tuple[Any, ...]]:
    """Chunk id -> tuple of :data:`CHUNK_FIELDS` (chunks deleted meanwhile are missing)."""
    found: dict[int, tuple[Any, ...]] = {}
    for start in range(0, len(chunk_ids), IN_GROUP):
        group = [int(i) for i in chunk_ids[start:start + IN_GROUP]]
        marks = ", ".join("?" * len(group))
        for row in db.execute_sql(f"SELECT {', '.join(CHUNK_FIELDS)} FROM indexchunk WHERE id IN ({marks})", group):
            found[row[0]] = tuple(row)
    return found


def document_chunks(doc_id: int, limit: int = 1000) -> list[tuple[Any, ...]]:
    """The first ``limit`` chunks of a document, as tuples of :data:`CHUNK_FIELDS`, in order."""
    return db.execute_sql(f"SELECT {', '.join(CHUNK_FIELDS)} FROM indexchunk WHERE document_id = ? ORDER BY seq "
                          "LIMIT ?", (doc_id, limit)).fetchall()
