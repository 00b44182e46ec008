"""Drop folders end to end: a real desk (embedded broker, a worker process), real files, real
watchdog observers. Every wait is a condition with a deadline; "nothing happened" is checked
against a marker file dropped afterwards and taken first."""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from batchdesk.config import Settings
from batchdesk.desk.desk import Desk
from batchdesk.watch import control as watch_control
from batchdesk.watch.service import WatchService
from batchdesk.watch.spec import WatchSpec
from conftest import make_files, scaled, wait_for
from data.models import Alert, Item, Job, SeenFile, Watch

pytestmark = pytest.mark.slow

SETTLE = 0.3
_markers = itertools.count()


@pytest.fixture
def desks(tmp_path):
    """Start desks on one data dir (one at a time); all are stopped at the end."""
    started: list[Desk] = []

    def start(**overrides) -> Desk:
        settings = Settings(**{"data_dir": tmp_path / "data", "broker": "embedded", "workers": 1,
                               "settle_seconds": SETTLE, **overrides})
        desk = Desk(settings).start()
        started.append(desk)
        return desk

    yield start
    for desk in started:
        desk.stop()


@pytest.fixture
def inbox(tmp_path) -> Path:
    path = tmp_path / "inbox"
    path.mkdir()
    return path


def service(desk: Desk) -> WatchService:
    return next(s for s in desk.services if isinstance(s, WatchService))


def add(desk: Desk, inbox: Path, **kw) -> Watch:
    kw.setdefault("task", "checksum")
    return watch_control.add_watch(desk.settings, WatchSpec(path=str(inbox), **kw))


def items(watch_id: int) -> list[Item]:
    return list(Item.select().join(Job).where(Job.watch == watch_id).order_by(Item.id))


def paths(watch_id: int) -> list[str]:
    return [i.path for i in items(watch_id)]


def ended(watch_id: int, count: int) -> bool:
    rows = items(watch_id)
    return len(rows) >= count and all(i.status in ("done", "failed") for i in rows)


def marker(folder: Path, watch_id: int) -> str:
    """Drop a file and wait until it is taken: everything dropped before it has been looked at."""
    name = f"marker-{next(_markers)}.txt"
    (folder / name).write_text(name)
    wait_for(lambda: name in paths(watch_id), 15, message=f"{name} taken")
    return name


def test_single_drop_is_processed_promptly(desks, inbox):
    desk = desks()
    watch = add(desk, inbox)  # added while the desk runs: picked up by the next reload
    wait_for(lambda: service(desk).runtimes.get(watch.id) and service(desk).runtimes[watch.id].state == "active", 10)
    (inbox / "a.txt").write_text("hello")
    written = time.time()
    wait_for(lambda: ended(watch.id, 1), 15, message="a.txt processed")
    [item] = items(watch.id)
    assert (item.path, item.status, item.size) == ("a.txt", "done", 5)
    assert item.result["sha256"] == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    assert item.started_at - (written + SETTLE) < scaled(2.0)  # processing starts within 2 s of settling
    job = Job.get_by_id(item.job_id)
    assert job.name == "inbox: inbox" and job.source_kind == "watch" and job.status == "running"


def test_slow_write_is_processed_once_whole(desks, inbox):
    desk = desks()
    watch = add(desk, inbox)
    taken_early = []

    def writer():
        with open(inbox / "slow.bin", "wb") as fh:
            for _ in range(30):  # 3 s of small appends, each well within the settle time of the last
                fh.write(b"x" * 100)
                fh.flush()
                time.sleep(0.1)  # the writer's pace; meanwhile nothing may be taken (a non-event, checked below)
            taken_early.extend(paths(watch.id))

    thread = threading.Thread(target=writer)
    thread.start()
    thread.join()
    assert taken_early == []
    wait_for(lambda: ended(watch.id, 1), 15)
    marker(inbox, watch.id)
    slow = [i for i in items(watch.id) if i.path == "slow.bin"]
    assert len(slow) == 1 and slow[0].size == 3000 and slow[0].result["size"] == 3000


class SlowWriter(threading.Thread):
    """Keeps ``path`` open and writes ``bursts`` bursts of 1 MiB of random bytes, ``pause`` s apart (longer
    than the settle time), like a download or a scanner; notes what the inbox looked like just before the close."""

    def __init__(self, path: Path, bursts: int = 4, pause: float = 1.2) -> None:
        super().__init__(daemon=True)
        self.path, self.bursts, self.pause = path, bursts, pause
        self.digest = hashlib.sha256()
        self.before_close: tuple[bool, list[str]] | None = None
        self.closed = threading.Event()

    def run(self) -> None:
        with open(self.path, "wb") as fh:
            for n in range(self.bursts):
                if n:
                    time.sleep(self.pause)  # the pause is the point: a writer at work, between bursts
                data = os.urandom(1 << 20)
                fh.write(data)
                fh.flush()
                self.digest.update(data)
            done = self.path.parent / "done"
            self.before_close = (self.path.exists(), sorted(os.listdir(done)) if done.exists() else [])
        self.closed.set()


@pytest.mark.parametrize("on_done", ["keep", "move"])
def test_a_file_written_slowly_while_open_is_one_item_of_the_final_file(desks, inbox, on_done):
    desk = desks(settle_seconds=0.5)
    watch = add(desk, inbox, on_done=on_done)
    wait_for(lambda: service(desk).runtimes.get(watch.id) and service(desk).runtimes[watch.id].state == "active", 10)
    writer = SlowWriter(inbox / "slow.bin")
    writer.start()
    assert writer.closed.wait(scaled(60)), "the writer finished"
    marker(inbox, watch.id)  # taken no earlier than slow.bin: its settle clock starts after the close
    wait_for(lambda: ended(watch.id, 2), 30, message="slow.bin and the marker processed")
    slow = [i for i in items(watch.id) if i.path == "slow.bin"]
    assert [(i.status, i.size, i.result["size"]) for i in slow] == [("done", 4 << 20, 4 << 20)]
    assert slow[0].result["sha256"] == writer.digest.hexdigest()
    if on_done == "move":
        assert writer.before_close == (True, [])  # nothing moved while the writer had the file open
        wait_for(lambda: (inbox / "done" / "slow.bin").exists(), 15, message="slow.bin moved")
        data = (inbox / "done" / "slow.bin").read_bytes()
        assert hashlib.sha256(data).hexdigest() == writer.digest.hexdigest()


def test_a_burst_of_2000_files_becomes_batches_of_one_rolling_job(desks, inbox):
    desk = desks()
    watch = add(desk, inbox)
    wait_for(lambda: service(desk).runtimes.get(watch.id) and service(desk).runtimes[watch.id].state == "active", 10)
    files = make_files(inbox, 2000, seed=7)
    wait_for(lambda: ended(watch.id, 2000), 60, message="2,000 files processed")
    rows = items(watch.id)
    assert sorted(i.path for i in rows) == sorted(files) and all(i.status == "done" for i in rows)
    job = Job.get_by_id(rows[0].job_id)
    assert job.items_total == 2000 and job.items_done == 2000
    assert job.batches_total <= 100  # batches, not one queue entry per file
    assert SeenFile.select().where(SeenFile.watch == watch.id).count() == 2000


def test_rename_into_place_from_part_name(desks, inbox):
    desk = desks()
    watch = add(desk, inbox)
    (inbox / "big.bin.part").write_bytes(b"y" * 10_000)
    for name in ("~$doc.docx", ".hidden", "x.tmp", "y.crdownload"):
        (inbox / name).write_text("temp")
    marker(inbox, watch.id)
    assert [p for p in paths(watch.id) if not p.startswith("marker")] == []
    os.rename(inbox / "big.bin.part", inbox / "big.bin")
    wait_for(lambda: "big.bin" in paths(watch.id), 15)
    [big] = [i for i in items(watch.id) if i.path == "big.bin"]
    assert big.size == 10_000


def test_restart_catch_up_without_duplicates(desks, inbox):
    desk = desks()
    watch = add(desk, inbox)
    (inbox / "a.txt").write_text("a")
    wait_for(lambda: ended(watch.id, 1), 15)
    desk.stop()
    (inbox / "b.txt").write_text("b")  # arrive while batchdesk is not running
    (inbox / "c.txt").write_text("c")
    desk = desks()
    wait_for(lambda: ended(watch.id, 3), 15, message="catch-up")
    marker(inbox, watch.id)
    assert sorted(p for p in paths(watch.id) if not p.startswith("marker")) == ["a.txt", "b.txt", "c.txt"]
    assert len({i.job_id for i in items(watch.id)}) == 1  # the same rolling job across restarts


def test_duplicate_events_and_changed_file(desks, inbox):
    desk = desks()
    watch = add(desk, inbox)
    target = inbox / "a.txt"
    target.write_text("one")
    wait_for(lambda: ended(watch.id, 1), 15)
    st = os.stat(target)
    # the same file again: rewritten with the same bytes and times, touched with the same mtime
    target.write_text("one")
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    marker(inbox, watch.id)
    assert paths(watch.id).count("a.txt") == 1
    # changed after processing: processed again, and its SeenFile row follows
    target.write_text("one and two")
    wait_for(lambda: paths(watch.id).count("a.txt") == 2, 15)
    newest = [i for i in items(watch.id) if i.path == "a.txt"][-1]
    seen = SeenFile.get((SeenFile.watch == watch.id) & (SeenFile.path == "a.txt"))
    assert (seen.item, seen.size) == (newest.id, 11)


def test_deleted_watch_folder_errors_and_recovers(desks, inbox):
    desk = desks()
    watch = add(desk, inbox)
    (inbox / "a.txt").write_text("a")
    wait_for(lambda: ended(watch.id, 1), 15)
    shutil.rmtree(inbox)
    wait_for(lambda: Watch.get_by_id(watch.id).status == "error", 10, message="watch in error")
    row = Watch.get_by_id(watch.id)
    assert "folder not found" in row.error and "retrying" in row.error
    assert Alert.select().where((Alert.kind == "watch") & (Alert.level == "error")).count() == 1
    inbox.mkdir()
    (inbox / "b.txt").write_text("b")  # there before the watch recovers: caught up
    wait_for(lambda: Watch.get_by_id(watch.id).status == "active", 15, message="watch recovered")
    wait_for(lambda: "b.txt" in paths(watch.id), 15)
    (inbox / "c.txt").write_text("c")  # and events flow again
    wait_for(lambda: "c.txt" in paths(watch.id), 15)
    assert Alert.select().where((Alert.kind == "watch") & (Alert.level == "error")).count() == 1
    assert Alert.select().where((Alert.kind == "watch") & Alert.message.contains("recovered")).count() == 1


def test_on_done_move_never_overwrites(desks, inbox):
    desk = desks()
    watch = add(desk, inbox, on_done="move")
    (inbox / "done").mkdir()
    (inbox / "done" / "x.txt").write_text("old")
    (inbox / "x.txt").write_text("new")
    wait_for(lambda: (inbox / "done" / "x-1.txt").exists(), 15, message="x.txt moved")
    assert (inbox / "done" / "x.txt").read_text() == "old" and (inbox / "done" / "x-1.txt").read_text() == "new"
    assert not (inbox / "x.txt").exists()
    (inbox / "x.txt").write_text("newer!")  # same name again, a new file: processed, moved beside
    wait_for(lambda: (inbox / "done" / "x-2.txt").exists(), 15)
    name = marker(inbox, watch.id)
    wait_for(lambda: (inbox / "done" / name).exists(), 15)
    assert sorted(p for p in paths(watch.id) if not p.startswith("marker")) == ["x.txt", "x.txt"]  # done/ not watched


def test_on_fail_move_writes_the_reason_and_a_redrop_retries(desks, inbox):
    desk = desks()
    watch = add(desk, inbox, task="extract-text", on_done="move", on_fail="move", recursive=True)
    (inbox / "sub").mkdir()
    (inbox / "sub" / "good.txt").write_text("some words to extract")
    (inbox / "empty.txt").write_bytes(b"")
    wait_for(lambda: (inbox / "failed" / "empty.txt.error.txt").exists(), 15, message="failure moved")
    assert (inbox / "failed" / "empty.txt").exists() and not (inbox / "empty.txt").exists()
    assert "empty file" in (inbox / "failed" / "empty.txt.error.txt").read_text()
    wait_for(lambda: (inbox / "done" / "sub" / "good.txt").exists(), 15)
    # moving a failed file back into the inbox retries it (it fails again, next to the first one)
    os.rename(inbox / "failed" / "empty.txt", inbox / "empty.txt")
    wait_for(lambda: (inbox / "failed" / "empty-1.txt.error.txt").exists(), 15)
    assert paths(watch.id).count("empty.txt") == 2


def test_vanished_symlinked_and_paused(desks, inbox, tmp_path):
    desk = desks()
    watch = add(desk, inbox)
    other = tmp_path / "other"
    other.mkdir()
    second = add(desk, other)
    (tmp_path / "secret.txt").write_text("outside")
    (inbox / "link.txt").symlink_to(tmp_path / "secret.txt")
    (inbox / "gone.txt").write_text("short-lived")
    (inbox / "gone.txt").unlink()
    marker(inbox, watch.id)
    assert [p for p in paths(watch.id) if not p.startswith("marker")] == []
    # paused: takes nothing while the other watch goes on; catches up on resume
    watch_control.set_paused(watch.id, True)
    wait_for(lambda: service(desk).runtimes[watch.id].state == "paused", 10)
    (inbox / "while-paused.txt").write_text("p")
    marker(other, second.id)
    assert "while-paused.txt" not in paths(watch.id)
    watch_control.set_paused(watch.id, False)
    wait_for(lambda: "while-paused.txt" in paths(watch.id), 15)


def test_symlink_loops_in_the_inbox_are_ignored_with_a_warning(desks, inbox, caplog):
    caplog.set_level("WARNING", logger="batchdesk.watch")
    desk = desks()
    watch = add(desk, inbox)
    os.symlink("b", inbox / "a")
    os.symlink("a", inbox / "b")
    os.symlink("self", inbox / "self")
    marker(inbox, watch.id)
    assert [p for p in paths(watch.id) if not p.startswith("marker")] == []
    for name in ("a", "b", "self"):
        assert sum(f"{inbox / name}: a symlink loop" in r.getMessage() for r in caplog.records) == 1
    desk.stop()
    desk = desks()  # the catch-up scan at start walks past them too
    (inbox / "after.txt").write_text("after")
    wait_for(lambda: ended(watch.id, 2) and "after.txt" in paths(watch.id), 15)
    assert Watch.get_by_id(watch.id).status == "active"


def test_polling_watch_takes_only_the_included_files(desks, inbox):
    desk = desks()
    watch = add(desk, inbox, polling=True, include=("*.csv",))
    (inbox / "a.csv").write_text("a,b\n1,2\n")
    (inbox / "skip.txt").write_text("not included")
    wait_for(lambda: ended(watch.id, 1), 15)
    assert paths(watch.id) == ["a.csv"]


def test_removing_a_watch_leaves_its_job_to_end_with_its_report(desks, inbox):
    desk = desks()
    watch = add(desk, inbox)
    (inbox / "a.txt").write_text("a")
    wait_for(lambda: ended(watch.id, 1), 15)
    job_id = items(watch.id)[0].job_id
    watch_control.remove_watch(watch.id)
    wait_for(lambda: watch.id not in service(desk).runtimes, 10)
    # an ordinary job now: done once its end step (checksum's duplicates report) has run on a worker
    wait_for(lambda: Job.get_by_id(job_id).status == "done", 30, message="the job's report")
    assert [Path(p).name for p in Job.get_by_id(job_id).outputs] == ["duplicates.csv"]
