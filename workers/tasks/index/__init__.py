"""index: documents into a searchable collection (text -> chunks -> vectors -> metadata -> store).

Per file: its sha256 is compared with the indexed version; unchanged content embeds nothing
(``embedded: 0``). Otherwise the text is read with the extract-text extractors, tidied and cut into
overlapping chunks that keep their page and heading, the chunks are embedded with the collection's
model (:mod:`workers.embedders`), and the document's metadata (title, author, created and modified
dates, pages, words, language, hash, path) and its chunks replace the old version in one store
transaction (:func:`data.index_store.write_document`). That commit happens before the item's own
result is recorded, so an item is never ``done`` without its chunks; a crash in between runs the item
again, which then finds the content unchanged.

Item result: ``collection``, ``chunks`` (this file's chunks now in the index), ``embedded`` (chunks
embedded by this run), ``format``, ``pages``, ``words``, ``lang``, ``warnings`` when there are some.

End of job (:mod:`workers.tasks.index.finish`): documents of the collection under the job's folder
whose file is gone leave the index, the search snapshot is refreshed, and ``index-summary.json`` is
written to the job's output folder. A watch's files that leave its folder leave the index at once
(the ``forget`` hook, called by the desk's watch service).

Options: ``collection`` (default ``default``), ``model`` (empty: the collection's model, or the default
for a new collection), ``chunk_size`` / ``chunk_overlap`` (characters), ``encoding``, ``max_mb``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from data import index_store
from data.models import db
from workers import embedders
from workers.registry import CheckContext, ItemError, Option, TaskContext, task
from workers.tasks._common import ENCODING_ALLOWED, check_encoding
from workers.tasks.index.document import Chunk, Prepared, detect_language, file_hash, prepare
from workers.tasks.index.finish import finish_index, forget_files

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger("batchdesk.task.index")
COLLECTION_CHARS = 100


def _check_collection(name: str, ctx: CheckContext) -> None:
    if not name.strip() or len(name) > COLLECTION_CHARS or any(ch in name for ch in "/\\\n\t"):
        raise ValueError(f"a name of 1 to {COLLECTION_CHARS} characters without slashes")


def _check_model(spec: str, ctx: CheckContext) -> None:
    """A known model; and, when this process has the store open (a submit does), the collection's own."""
    try:
        canonical = embedders.check_spec(spec)
    except embedders.EmbedderError as exc:
        raise ValueError(str(exc)) from None
    if db.obj is not None and not db.obj.is_closed():
        try:
            index_store.check_model(str(ctx.options["collection"]), canonical)
        except index_store.IndexMismatch as exc:
            raise ValueError(str(exc)) from None


def _at_most_half_a_chunk(overlap: int, ctx: CheckContext) -> None:
    if overlap > ctx.options["chunk_size"] // 2:
        raise ValueError(f"at most chunk_size/2 ({ctx.options['chunk_size'] // 2})")


OPTIONS = (
    Option("collection", str, "default", "the collection (index) the documents go into", check=_check_collection,
           allowed="a name without slashes"),
    Option("model", str, "", "embedding model; empty: the collection's, or minilm-static-256 for a new one",
           check=_check_model,
           allowed="empty, minilm-static-256, static:FOLDER, openai:MODEL@URL, wordllama or a plugin's"),
    Option("chunk_size", int, 1000, "characters per chunk", min=200, max=8000),
    Option("chunk_overlap", int, 150, "characters shared by consecutive chunks", min=0,
           check=_at_most_half_a_chunk, allowed="at most chunk_size/2"),
    Option("encoding", str, "auto", "encoding of TXT/MD/HTML/JSON/CSV inputs; auto = BOM, then utf-8, cp1252, latin-1",
           check=check_encoding, allowed=ENCODING_ALLOWED),
    Option("max_mb", int, 256, "refuse inputs larger than this many MiB", min=1, max=4096),
)  # fmt: skip

_models: dict[str, str] = {}  # collection -> the model spec it uses (a collection never changes model)


def model_for(options: Mapping[str, Any]) -> str:
    """The model spec for these options: the one asked for, else the collection's, else the default."""
    asked = str(options.get("model") or "").strip()
    if asked:
        return embedders.canonical(asked)
    collection = str(options.get("collection") or "default")
    if collection not in _models:
        found = index_store.find_collection(collection)
        if found is None:
            return embedders.DEFAULT_MODEL  # not cached: the first document of it may come from another model
        _models[collection] = found.model
    return _models[collection]


def preload(options: Mapping[str, Any]) -> None:
    """In the worker, before it forks the batch's work-horse: the model, the language detector and the
    document libraries, so every batch of this worker shares them."""
    embedders.load(model_for(options))
    detect_language("warm up the language identifier with a sentence long enough to be classified")
    import docx  # noqa: F401

    from workers import pdf  # noqa: F401


def _embed_texts(prepared: Prepared) -> list[str]:
    """What is embedded for a chunk: its text led by the document's title and the chunk's heading, so
    a chunk deep in a document still carries what the document is about."""
    title = prepared.record.title or ""
    return [" \n".join(part for part in (title, chunk.heading or "", chunk.text) if part) for chunk in prepared.chunks]


def _rows(chunks: list[Chunk], vectors: np.ndarray) -> list[index_store.ChunkRow]:
    half = vectors.astype("<f2")
    return [index_store.ChunkRow(c.seq, c.page, c.page_end, c.heading, c.start, c.end, c.text, half[i].tobytes())
            for i, c in enumerate(chunks)]


@task(
    "index",
    description="documents -> chunks, vectors and metadata in a searchable collection (batchdesk search)",
    options=OPTIONS,
    finalize=finish_index,
    preload=preload,
    forget=forget_files,
    cost_per_item=0.02,
    cost_per_byte=1e-7,
    str_path=True,
)
def index_document(path: str | Path, ctx: TaskContext) -> dict[str, Any]:
    """Index one document: unchanged content is skipped, changed content replaces its chunks."""
    options = ctx.options
    collection = str(options.get("collection") or "default")
    full = os.path.abspath(path)
    digest, size, mtime = file_hash(full)
    embedder = embedders.load(model_for(options))  # loaded once per worker (preload), then cached
    stored = index_store.stored_document(collection, full)
    if stored is not None and stored.model != embedder.name:
        raise ItemError(f"collection {collection!r} uses model {stored.model!r}, not {embedder.name!r}")
    if stored is not None and stored.hash == digest:
        return {"collection": collection, "chunks": stored.chunks, "embedded": 0, "unchanged": True}
    try:
        prepared = prepare(full, digest, size, mtime, options)
    except ItemError:
        if stored is not None:  # the file changed into something unreadable: its old text must not be found
            index_store.remove_documents(stored.collection_id, [stored.id])
        raise
    rows = _rows(prepared.chunks, embedder.embed(_embed_texts(prepared))) if prepared.chunks else []
    try:
        index_store.write_document(collection, embedder.name, embedder.dim, prepared.record, rows)
    except index_store.IndexMismatch as exc:
        raise ItemError(str(exc)) from None
    record = prepared.record
    result: dict[str, Any] = {"collection": collection, "chunks": len(prepared.chunks),
                              "embedded": len(prepared.chunks), "format": record.format, "pages": record.pages,
                              "words": record.words, "lang": record.lang}
    if prepared.warnings:
        result["warnings"] = prepared.warnings
    return result
