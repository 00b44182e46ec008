"""A collection's vectors as one float32 matrix on disk, memory-mapped by every searcher.

The store holds the truth (float16 vectors in chunk rows); reading a million of them for every search
would take seconds, so searchers keep a *snapshot*: ``vectors`` (rows x dim float32), the chunk id and
the document id of each row, and the collection generation it reflects. A snapshot whose generation
is behind the collection's is *topped up*, not rebuilt: rows of documents that are gone or were
written again after it are dropped, and the chunks of documents written after it are read (only
theirs). The ``index`` task's end-of-job step refreshes it beside a SQLite store, so the first search
after a job is warm; on any other host the first search builds its own.

Files (per collection, in ``<index dir>/<collection id>/``): ``snapshot.json`` names the current
``*.vectors.f32``, ``*.chunks.i64`` and ``*.docs.i64``; new files are written under new names and
the pointer is switched atomically, so a reader never sees half a snapshot (files another process
still maps are unlinked, which POSIX keeps alive while mapped).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from data import index_store
from data.store import is_store_url

POINTER = "snapshot.json"
STALE_TMP_SECONDS = 600  # a half-written file of a builder that died is removed after this long
KEEP_BLOCK_ROWS = 65536  # rows copied per step when topping up (memory stays flat)


@dataclass
class Snapshot:
    """The matrix of one collection at one generation."""

    collection_id: int
    generation: int
    vectors: np.ndarray  # (rows, dim) float32, memory-mapped
    chunk_ids: np.ndarray  # (rows,) int64
    doc_ids: np.ndarray  # (rows,) int64

    @property
    def rows(self) -> int:
        return int(self.chunk_ids.shape[0])


def index_dir(store_ref: Path | str, data_dir: Path | None = None) -> Path:
    """Where snapshots live: beside a SQLite store (workers and searchers share it), else in the data dir."""
    if not is_store_url(store_ref):
        return Path(store_ref).expanduser().resolve().parent / "index"
    if data_dir is None:
        raise ValueError("a PostgreSQL store keeps its snapshots in a data dir: give one")
    import hashlib

    return Path(data_dir) / "index" / hashlib.sha256(str(store_ref).encode()).hexdigest()[:16]


def load(directory: Path, collection_id: int) -> Snapshot | None:
    """The snapshot on disk, or None when there is none (or it was replaced while being opened)."""
    folder = directory / str(collection_id)
    try:
        meta = json.loads((folder / POINTER).read_text(encoding="utf-8"))
        rows, dim, name = int(meta["rows"]), int(meta["dim"]), meta["name"]
        shape = (rows, dim)
        vectors = np.memmap(folder / f"{name}.vectors.f32", dtype=np.float32, mode="r", shape=shape) if rows \
            else np.zeros(shape, dtype=np.float32)
        chunk_ids = np.fromfile(folder / f"{name}.chunks.i64", dtype=np.int64)
        doc_ids = np.fromfile(folder / f"{name}.docs.i64", dtype=np.int64)
    except (OSError, ValueError, KeyError):
        return None
    if chunk_ids.shape[0] != rows or doc_ids.shape[0] != rows:
        return None
    return Snapshot(collection_id, int(meta["generation"]), vectors, chunk_ids, doc_ids)


def refresh(directory: Path, collection_id: int, dim: int, previous: Snapshot | None = None) -> Snapshot:
    """A snapshot of the collection as the store has it now, built from ``previous`` (or from nothing):
    the store must be open in this thread."""
    generation = index_store.generation_of(collection_id)
    if generation is None:
        raise LookupError(f"collection {collection_id} is gone")
    if previous is not None and previous.generation == generation:
        return previous
    docs = {row[0]: row[1] for row in index_store.document_rows(collection_id)}
    base = previous.generation if previous is not None else -1
    fresh = sorted(doc for doc, doc_generation in docs.items() if doc_generation > base)
    folder = directory / str(collection_id)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"g{generation}-{os.getpid()}-{secrets.token_hex(3)}"
    rows = _write_files(folder, name, dim, previous, {d for d, g in docs.items() if g <= base}, fresh)
    _switch(folder, name, generation, rows, dim)
    loaded = load(directory, collection_id)
    if loaded is None:  # replaced by a newer one meanwhile and cleaned up: take that one
        raise LookupError(f"the snapshot of collection {collection_id} changed while it was written; search again")
    return loaded


def _write_files(folder: Path, name: str, dim: int, previous: Snapshot | None, keep_docs: set[int],
                 fresh_docs: list[int]) -> int:
    """Write the kept rows of ``previous`` and the fresh documents' chunks; returns the row count."""
    tmp = {kind: folder / f".tmp-{name}.{kind}" for kind in ("vectors.f32", "chunks.i64", "docs.i64")}
    rows = 0
    try:
        with open(tmp["vectors.f32"], "wb") as vec, open(tmp["chunks.i64"], "wb") as cid, \
                open(tmp["docs.i64"], "wb") as did:
            if previous is not None and keep_docs:
                keep = np.fromiter(keep_docs, dtype=np.int64, count=len(keep_docs))
                for start in range(0, previous.rows, KEEP_BLOCK_ROWS):
                    stop = start + KEEP_BLOCK_ROWS
                    mask = np.isin(previous.doc_ids[start:stop], keep)
                    np.ascontiguousarray(previous.vectors[start:stop][mask]).tofile(vec)
                    previous.chunk_ids[start:stop][mask].tofile(cid)
                    previous.doc_ids[start:stop][mask].tofile(did)
                    rows += int(mask.sum())
            rows += _write_fresh(fresh_docs, dim, vec, cid, did)
        for kind, path in tmp.items():
            os.replace(path, folder / f"{name}.{kind}")
    finally:
        for path in tmp.values():
            with contextlib.suppress(OSError):
                path.unlink()
    return rows


def _write_fresh(doc_ids: list[int], dim: int, vec: BinaryIO, cid: BinaryIO, did: BinaryIO) -> int:
    """Append the chunks of these documents, read from the store in groups; returns how many."""
    rows = 0
    batch: list[tuple[int, int, bytes]] = []

    def flush() -> None:
        nonlocal rows
        if not batch:
            return
        matrix = np.frombuffer(b"".join(v for _, _, v in batch), dtype="<f2").reshape(len(batch), dim)
        matrix.astype(np.float32).tofile(vec)
        np.fromiter((c for c, _, _ in batch), dtype=np.int64, count=len(batch)).tofile(cid)
        np.fromiter((d for _, d, _ in batch), dtype=np.int64, count=len(batch)).tofile(did)
        rows += len(batch)
        batch.clear()

    for row in index_store.vectors_of(doc_ids):
        batch.append(row)
        if len(batch) >= KEEP_BLOCK_ROWS:
            flush()
    flush()
    return rows


def _switch(folder: Path, name: str, generation: int, rows: int, dim: int) -> None:
    """Point ``snapshot.json`` at the new files (unless a newer snapshot is there already), then
    remove files no pointer names any more."""
    pointer = folder / POINTER
    try:
        current = json.loads(pointer.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        current = None
    if current is None or int(current.get("generation", -1)) <= generation:
        tmp = folder / f".tmp-{name}.json"
        tmp.write_text(json.dumps({"name": name, "generation": generation, "rows": rows, "dim": dim}),
                       encoding="utf-8")
        os.replace(tmp, pointer)
    _clean(folder)


def _clean(folder: Path) -> None:
    try:
        named = json.loads((folder / POINTER).read_text(encoding="utf-8"))["name"]
    except (OSError, ValueError, KeyError):
        return
    now = time.time()
    for path in folder.iterdir():
        if path.name == POINTER or path.name.startswith(named + "."):
            continue
        with contextlib.suppress(OSError):
            if not path.name.startswith(".tmp-") or now - path.stat().st_mtime > STALE_TMP_SECONDS:
                path.unlink()
