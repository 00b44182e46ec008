"""The search engine over the ``index`` task's collections, shared by ``batchdesk search`` and the TUI.

A query is embedded with the collection's own model, scored against the collection's snapshot (one
float32 matrix, memory-mapped and kept by the engine: exact search, ~30 ms at a million chunks), the
best candidates are re-ranked with a keyword score (hybrid ranking, docs/index.md says how much it
helps), and the chunks are read from the store with their documents' metadata. Filters (``--where``)
work on the documents' metadata before scoring.

The engine keeps, per collection, the snapshot and the documents' metadata until the collection's
generation moves (one indexed read per search tells); a stale snapshot is topped up, not rebuilt.
The store must be open in the calling thread; the engine may be shared by threads.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from batchdesk.errors import BatchdeskError
from batchdesk.search_filters import Filters, parse_where
from data import index_snapshot, index_store
from workers import embedders

__all__ = ["Document", "Filters", "Hit", "SearchEngine", "SearchError", "parse_where"]

CANDIDATES_PER_RESULT = 5  # vector candidates re-ranked per result asked for
MIN_CANDIDATES = 50
HYBRID_WEIGHT = 0.2  # keyword score's weight beside the cosine (docs/index.md: measured on the labelled set)
PER_DOCUMENT = 3  # at most this many chunks of one document in a result list
SNIPPET_CHARS = 240
_WORD = re.compile(r"\w+", re.UNICODE)
_STOPWORDS = (
    "the a an and or of to in on for with at by from as is are was were be been it its this that these those "
    "what which who whom how when where why do does did can could should would will shall may might must i we "
    "you he she they them my our your their me us about into over under than then there here not no yes any all "
    "some more most much many few such only own same so too very just also get got has have had")
STOPWORDS = frozenset(_STOPWORDS.split())


class SearchError(BatchdeskError):
    """A search that cannot run (no such collection, a bad filter); the message says what to do."""


@dataclass(frozen=True)
class Hit:
    """One ranked chunk."""

    score: float
    vector_score: float
    keyword_score: float
    collection: str
    document_id: int
    chunk_id: int
    chunk: int
    path: str
    title: str | None
    page: int | None
    page_end: int | None
    heading: str | None
    text: str
    snippet: str
    lang: str | None
    format: str | None
    author: str | None
    created: str | None
    modified: str | None

    def as_json(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.__dataclass_fields__}


@dataclass(frozen=True)
class Document:
    """A document's metadata and its first chunks (the TUI's details)."""

    meta: dict[str, Any]
    chunks: list[tuple[int, int | None, str | None, str]]  # (seq, page, heading, text)


@dataclass
class _Collection:
    """What the engine keeps of one collection between searches."""

    info: index_store.CollectionInfo
    snapshot: index_snapshot.Snapshot
    docs: dict[int, dict[str, Any]]
    masks: dict[Filters, np.ndarray]


def terms_of(text: str) -> list[str]:
    """The query's words that carry meaning (no stop words, no one- or two-letter words), lower case."""
    return [w for w in _WORD.findall(text.lower()) if len(w) > 2 and w not in STOPWORDS]


def _stem(word: str) -> str:
    return word[:5]  # crude, language-agnostic: "invoices"/"invoiced" meet "invoice"


class SearchEngine:
    """Searches the collections of one store (see the module's docstring)."""

    def __init__(self, store_ref: Path | str, data_dir: Path | None = None,
                 load_model: Callable[[str], embedders.Embedder] = embedders.load) -> None:
        self.directory = index_snapshot.index_dir(store_ref, data_dir)
        self.load_model = load_model
        self._collections: dict[str, _Collection] = {}
        self._lock = threading.Lock()

    # -- what there is ---------------------------------------------------------------------------
    def collections(self) -> list[index_store.CollectionInfo]:
        return index_store.collections()

    def document(self, document_id: int, chunks: int = 50) -> Document:
        meta = index_store.document_meta(document_id)
        if meta is None:
            raise SearchError(f"document {document_id} is no longer in the index")
        rows = index_store.document_chunks(document_id, chunks)
        return Document(meta, [(r[2], r[3], r[5], r[6]) for r in rows])

    # -- searching -------------------------------------------------------------------------------
    def search(self, query: str, collection: str = "default", limit: int = 10, where: Filters | None = None,
               hybrid: bool = True) -> list[Hit]:
        """The best chunks for ``query`` in ``collection``, at most ``limit``, filtered by ``where``."""
        if limit < 1:
            raise SearchError("--limit must be at least 1")
        if not query.strip():
            return []
        state = self._state(collection)
        model = self.load_model(state.info.model)
        vector = np.asarray(model.embed([query])[0], dtype=np.float32)
        count = max(MIN_CANDIDATES, limit * CANDIDATES_PER_RESULT)
        candidates = self._candidates(state, vector, where or Filters(), count)
        if not candidates:
            return []
        chunks = index_store.chunks_by_id([chunk_id for chunk_id, _ in candidates])
        terms = terms_of(query) if hybrid else []
        ranked = _rank(candidates, chunks, state.docs, terms)
        return _pick(ranked, state, chunks, terms, limit)

    def _candidates(self, state: _Collection, vector: np.ndarray, where: Filters,
                    count: int) -> list[tuple[int, float]]:
        """(chunk id, cosine) of the best ``count`` rows that pass the filters."""
        snapshot = state.snapshot
        if snapshot.rows == 0:
            return []
        scores = snapshot.vectors @ vector
        if where:
            mask = self._mask(state, where)
            scores = np.where(mask, scores, -np.inf)
        count = min(count, snapshot.rows)
        top = np.argpartition(-scores, count - 1)[:count]
        top = top[np.argsort(-scores[top])]
        return [(int(snapshot.chunk_ids[i]), float(scores[i])) for i in top if np.isfinite(scores[i])]

    def _mask(self, state: _Collection, where: Filters) -> np.ndarray:
        mask = state.masks.get(where)
        if mask is None:
            allowed = np.fromiter((doc_id for doc_id, meta in state.docs.items() if where.accepts(meta)),
                                  dtype=np.int64)
            mask = state.masks[where] = np.isin(state.snapshot.doc_ids, allowed)
        return mask

    def _state(self, name: str) -> _Collection:
        """The collection's cached state, refreshed if the store moved on since."""
        with self._lock:
            cached = self._collections.get(name)
            if cached is not None and index_store.generation_of(cached.info.id) == cached.snapshot.generation:
                return cached
            info = next((c for c in index_store.collections() if c.name == name), None)
            if info is None:
                known = ", ".join(c.name for c in index_store.collections()) or "none yet"
                raise SearchError(f"no collection {name!r} (collections: {known}); index a folder into it with "
                                  f"`batchdesk run FOLDER --task index --opt collection={name}`")
            previous = cached.snapshot if cached is not None and cached.info.id == info.id else None
            snapshot = _snapshot(self.directory, info, previous)
            docs = {row[0]: dict(zip(index_store.DOCUMENT_FIELDS, row, strict=True))
                    for row in index_store.document_rows(info.id)}
            self._collections[name] = state = _Collection(info, snapshot, docs, {})
            return state


def _snapshot(directory: Path, info: index_store.CollectionInfo,
              previous: index_snapshot.Snapshot | None) -> index_snapshot.Snapshot:
    """The collection's snapshot: the one on disk (topped up when behind), else a new one."""
    on_disk = index_snapshot.load(directory, info.id)
    if on_disk is not None and (previous is None or on_disk.generation >= previous.generation):
        previous = on_disk
    try:
        return index_snapshot.refresh(directory, info.id, info.dim, previous)
    except LookupError:  # replaced while we wrote ours: take it from the store again
        return index_snapshot.refresh(directory, info.id, info.dim, None)
    except OSError as exc:
        raise SearchError(f"cannot write the search snapshot in {directory}: {exc.strerror or exc}") from exc


def _rank(candidates: list[tuple[int, float]], chunks: dict[int, tuple[Any, ...]], docs: dict[int, dict[str, Any]],
          terms: Sequence[str]) -> list[tuple[float, float, float, int]]:
    """(score, cosine, keyword score, chunk id), best first: the cosine plus the weighted share of the
    query's terms (by their rarity among the candidates) found in the chunk, its heading or its title."""
    present = [(chunk_id, cosine) for chunk_id, cosine in candidates if chunk_id in chunks]
    if not terms:
        return [(cosine, cosine, 0.0, chunk_id) for chunk_id, cosine in present]
    stems = [_stem(t) for t in terms]
    found: dict[int, set[str]] = {}
    for chunk_id, _ in present:
        row = chunks[chunk_id]
        title = (docs.get(row[1]) or {}).get("title") or ""
        words = {_stem(w) for w in _WORD.findall(" ".join((title, row[5] or "", row[6])).lower())}
        found[chunk_id] = {s for s in stems if s in words}
    weight = {s: math.log(1 + len(present) / (1 + sum(s in f for f in found.values()))) for s in stems}
    total = sum(weight.values()) or 1.0
    ranked = []
    for chunk_id, cosine in present:
        keyword = sum(weight[s] for s in found[chunk_id]) / total
        ranked.append((cosine + HYBRID_WEIGHT * keyword, cosine, keyword, chunk_id))
    ranked.sort(reverse=True)
    return ranked


def _pick(ranked: Iterable[tuple[float, float, float, int]], state: _Collection, chunks: dict[int, tuple[Any, ...]],
          terms: Sequence[str], limit: int) -> list[Hit]:
    """The first ``limit`` hits, at most PER_DOCUMENT of any one document."""
    hits: list[Hit] = []
    per_doc: dict[int, int] = {}
    for score, cosine, keyword, chunk_id in ranked:
        _, doc_id, seq, page, page_end, heading, text = chunks[chunk_id]
        if per_doc.get(doc_id, 0) >= PER_DOCUMENT:
            continue
        per_doc[doc_id] = per_doc.get(doc_id, 0) + 1
        meta = state.docs.get(doc_id) or {}
        hits.append(Hit(round(score, 4), round(cosine, 4), round(keyword, 4), state.info.name, doc_id, chunk_id, seq,
                        meta.get("path", ""), meta.get("title"), page, page_end, heading, text,
                        snippet(text, terms), meta.get("lang"), meta.get("format"), meta.get("author"),
                        meta.get("created"), meta.get("modified")))
        if len(hits) >= limit:
            break
    return hits


def snippet(text: str, terms: Sequence[str], width: int = SNIPPET_CHARS) -> str:
    """About ``width`` characters of the chunk on one line, around the first query term found in it."""
    flat = " ".join(text.split())
    if len(flat) <= width:
        return flat
    low = flat.lower()
    hits = [i for i in (low.find(_stem(t)) for t in terms) if i >= 0]
    start = max(0, min(hits) - width // 3) if hits else 0
    start = flat.rfind(" ", 0, start) + 1 if start else 0
    piece = flat[start:start + width].rsplit(" ", 1)[0]
    return ("…" if start else "") + piece + ("…" if start + len(piece) < len(flat) else "")
