"""The runner's change check: a watch job's file that changes while its task reads it is not recorded
with that result; it is read again at the end of the batch, and fails after a few attempts.

The batch runs in-process on a real SQLite store and real files; the task appends to the file it reads
(a writer still at work), as many times as the test says.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from batchdesk.jobs.submit import create_job
from batchdesk.watch import control as watch_control
from batchdesk.watch.after import AfterProcessing
from batchdesk.watch.service import take
from batchdesk.watch.spec import WatchSpec
from data import queries
from data.models import Batch, Item, Job, SeenFile
from data.store import open_store
from workers import registry, reread, runner
from workers.defaults import REREAD_ATTEMPTS
from workers.registry import TaskContext, task

APPENDS: dict[str, int] = {}  # file name -> how many more reads append to it
READS: dict[str, int] = {}


@task("append-while-read", description="test: reads a file, then appends to it as often as the test says")
def append_while_read(path: Path, ctx: TaskContext) -> dict:
    data = path.read_bytes()
    READS[path.name] = READS.get(path.name, 0) + 1
    if APPENDS.get(path.name, 0) > 0:
        APPENDS[path.name] -= 1
        with open(path, "ab") as fh:
            fh.write(b" and more")
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


@pytest.fixture
def inbox(settings, tmp_path, monkeypatch):
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    open_store(settings.store_path)
    monkeypatch.setattr(runner.CONFIG, "store", settings.store_path)
    monkeypatch.setattr(reread, "REREAD_PAUSE_SECONDS", 0.05)
    APPENDS.clear()
    READS.clear()
    folder = tmp_path / "inbox"
    folder.mkdir()
    return folder


def run_all(job: Job) -> Batch:
    batch = queries.cut_batch(Job.get_by_id(job.id), 1000, 1 << 40)
    runner.run_batch(batch.id)
    return Batch.get_by_id(batch.id)


def item(job: Job, name: str) -> Item:
    return Item.get((Item.job == job.id) & (Item.path == name))


def test_a_file_that_changes_while_read_is_read_again_or_fails(settings, inbox):
    watch = watch_control.add_watch(settings, WatchSpec(path=str(inbox), task="append-while-read"))
    job = watch_control.rolling_job(settings, watch)
    for name in ("steady.txt", "once.txt", "always.txt"):
        (inbox / name).write_text(f"the first version of {name}")
    APPENDS.update({"once.txt": 1, "always.txt": 99})
    take(watch.id, job.id, [(n, os.stat(inbox / n).st_size, os.stat(inbox / n).st_mtime)
                            for n in ("steady.txt", "once.txt", "always.txt")])
    batch = run_all(job)

    assert batch.status == "done"
    assert READS == {"steady.txt": 1, "once.txt": 2, "always.txt": REREAD_ATTEMPTS}
    steady, once, always = (item(job, n) for n in ("steady.txt", "once.txt", "always.txt"))
    assert (steady.status, steady.attempts) == ("done", 1)
    # read again once it held still: the result, the item and the SeenFile row are the version read
    final = (inbox / "once.txt").read_bytes()
    st = os.stat(inbox / "once.txt")
    assert (once.status, once.error) == ("done", None)
    assert once.result == {"sha256": hashlib.sha256(final).hexdigest(), "size": len(final)}
    assert (once.size, once.mtime) == (st.st_size, st.st_mtime)
    seen = SeenFile.get((SeenFile.watch == watch.id) & (SeenFile.path == "once.txt"))
    assert (seen.size, seen.mtime, seen.item) == (st.st_size, st.st_mtime, once.id)
    # never held still: failed with the reason, never recorded with a result of a moving file
    assert (always.status, always.result) == ("failed", None)
    assert always.error == f"changed while being read ({REREAD_ATTEMPTS} attempts)"
    job = Job.get_by_id(job.id)
    assert (job.items_done, job.items_failed) == (2, 1)
    # on-done move takes the version that was read; a file changed since its read stays in the inbox
    with open(inbox / "steady.txt", "ab") as fh:
        fh.write(b"!")
    result = AfterProcessing(watch.id).run(inbox, "move", "keep", [job.id])
    assert (result.moved, result.errors) == (1, [])
    assert (inbox / "done" / "once.txt").read_bytes() == final
    assert sorted(p.name for p in inbox.iterdir() if p.is_file()) == ["always.txt", "steady.txt"]


def test_on_done_delete_spares_a_file_changed_since_its_read(settings, inbox):
    watch = watch_control.add_watch(settings, WatchSpec(path=str(inbox), task="append-while-read", on_done="delete"))
    job = watch_control.rolling_job(settings, watch)
    for name in ("a.txt", "b.txt"):
        (inbox / name).write_text(name)
    take(watch.id, job.id, [(n, os.stat(inbox / n).st_size, os.stat(inbox / n).st_mtime) for n in ("a.txt", "b.txt")])
    run_all(job)
    st = os.stat(inbox / "b.txt")
    (inbox / "b.txt").write_text("b.txt")  # rewritten with the same size: only the mtime differs
    os.utime(inbox / "b.txt", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    result = AfterProcessing(watch.id).run(inbox, "delete", "keep", [job.id])
    assert (result.deleted, result.errors) == (1, [])
    assert [p.name for p in inbox.iterdir()] == ["b.txt"]


def test_a_folder_job_is_not_checked(settings, inbox):
    """A folder job's task may rewrite its input on purpose: that is not a change to read again."""
    (inbox / "a.txt").write_text("in place")
    APPENDS["a.txt"] = 1
    spec = registry.get("append-while-read")
    st = os.stat(inbox / "a.txt")
    job = create_job(settings, spec, {}, "default", inbox, "folder job", files=[("a.txt", st.st_size, st.st_mtime)])
    run_all(job)
    assert READS == {"a.txt": 1} and item(job, "a.txt").status == "done"
