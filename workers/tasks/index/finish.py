"""The index task's end-of-job step (its final batch): what belongs to the whole job.

* Documents that left the folder leave the index: documents of the job's collection under the job's
  folder whose file no longer exists. (A job records no include/exclude filters, so the rule is the
  file itself: one that still exists is never removed, whatever filters a later job uses; another
  collection and other folders are never touched.)
* The collection's search snapshot is refreshed beside a SQLite store, so the first search after the
  job is warm (searchers top it up themselves otherwise).
* ``index-summary.json`` in the job's output folder says what the index holds and what left it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from peewee import SqliteDatabase

from data import index_store
from data.models import db
from data.states import ItemState
from workers.registry import JobContext
from workers.tasks._common import write_atomic

SUMMARY_FILE = "index-summary.json"
log = logging.getLogger("batchdesk.task.index")


def remove_gone(collection: str, folder: Path) -> list[str]:
    """Take out of the collection its documents under ``folder`` whose file is gone; returns their paths."""
    found = index_store.find_collection(collection)
    if found is None:
        return []
    gone = [(doc_id, path) for doc_id, path in index_store.documents_under(collection, str(folder))
            if not os.path.exists(path)]
    index_store.remove_documents(found.id, [doc_id for doc_id, _ in gone])
    return [path for _, path in gone]


def forget_files(options: Mapping[str, Any], folder: Path, rels: list[str]) -> None:
    """Forget hook: files that left a watched folder leave the index (their paths as the task wrote them)."""
    collection = str(options.get("collection") or "default")
    found = index_store.find_collection(collection)
    if found is None:
        return
    base = os.path.realpath(folder)
    paths = [os.path.join(base, *rel.split("/")) for rel in rels]
    index_store.remove_documents(found.id, index_store.document_ids(collection, paths))


def refresh_snapshot(collection: str) -> int | None:
    """Refresh the collection's snapshot when the store is a local SQLite file; returns its rows."""
    from data import index_snapshot  # numpy: only where a job of the index task ends

    found = index_store.find_collection(collection)
    if found is None or not isinstance(db.obj, SqliteDatabase):
        return None
    directory = index_snapshot.index_dir(Path(db.obj.database))
    previous = index_snapshot.load(directory, found.id)
    return index_snapshot.refresh(directory, found.id, found.dim, previous).rows


def finish_index(job: JobContext) -> Path:
    """Finalize hook: remove what left the folder, refresh the snapshot, write the summary."""
    collection = str(job.options.get("collection") or "default")
    removed = remove_gone(collection, Path(job.source_root))
    counts = {"documents": 0, "unchanged": 0, "embedded": 0, "failed": 0}
    for _rel, status, result, _error in job.results():
        if status != ItemState.DONE:
            counts["failed"] += status == ItemState.FAILED
            continue
        counts["documents"] += 1
        counts["unchanged"] += bool((result or {}).get("unchanged"))
        counts["embedded"] += int((result or {}).get("embedded") or 0)
    rows = refresh_snapshot(collection)
    found = index_store.find_collection(collection)
    summary: dict[str, Any] = {
        "collection": collection, "model": found.model if found else None,
        "collection_documents": found.documents if found else 0, "collection_chunks": found.chunks if found else 0,
        "job": counts, "removed": removed, "snapshot_rows": rows,
    }
    target = Path(job.output_dir) / SUMMARY_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, json.dumps(summary, indent=2) + "\n")
    log.info("job %s: collection %s, %d removed", job.job_id, collection, len(removed))
    return target
