"""An index watch: documents dropped into the folder enter the collection, and a document deleted or
moved out of the folder leaves it (the task's ``forget`` hook, called by the desk's watch service).
A real desk (embedded broker, a worker process), real files, a real observer, the real model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from batchdesk.config import Settings
from batchdesk.desk.desk import Desk
from batchdesk.watch import control as watch_control
from batchdesk.watch.forget import forget_vanished
from batchdesk.watch.spec import WatchSpec
from conftest import wait_for
from data import index_store
from data.models import SeenFile

pytestmark = pytest.mark.slow


@pytest.fixture
def desk(tmp_path):
    desk = Desk(Settings(data_dir=tmp_path / "data", broker="embedded", workers=1, settle_seconds=0.3)).start()
    yield desk
    desk.stop()


def indexed(path: Path) -> bool:
    return index_store.stored_document("inbox", str(path)) is not None


def test_documents_deleted_or_moved_out_of_a_watched_folder_leave_the_index(desk, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    watch = watch_control.add_watch(desk.settings, WatchSpec(path=str(inbox), task="index",
                                                            options={"collection": "inbox"}))
    first, second, third = (inbox / f"{name}.md" for name in ("rent", "router", "cat"))
    first.write_text("# Rent\n\nThe office rent is due at the end of March.\n")
    second.write_text("# Router\n\nHold the power button for ten seconds to reset the router.\n")
    third.write_text("# Cat\n\nOur cat sleeps on the windowsill in the afternoon.\n")
    real = Path(inbox).resolve()
    wait_for(lambda: all(indexed(real / p.name) for p in (first, second, third)), 60, 0.1, "the drops indexed")
    first.unlink()
    shutil.move(second, tmp_path / "router.md")
    wait_for(lambda: not indexed(real / "rent.md") and not indexed(real / "router.md"), 30, 0.1,
             "the deleted and the moved-away document to leave the index")
    assert indexed(real / "cat.md"), "the document still there stays"
    assert {s.path for s in SeenFile.select().where(SeenFile.watch == watch.id)} == {"cat.md"}
    assert index_store.collections()[0].documents == 1
    (tmp_path / "router.md").rename(second)  # back again: taken and indexed as new
    wait_for(lambda: indexed(real / "router.md"), 60, 0.1, "the returned document indexed again")


def test_a_task_without_a_forget_hook_keeps_its_watch_as_it_was(desk, tmp_path):
    inbox = tmp_path / "plain"
    inbox.mkdir()
    watch = watch_control.add_watch(desk.settings, WatchSpec(path=str(inbox), task="checksum"))
    (inbox / "a.txt").write_text("a")
    wait_for(lambda: SeenFile.select().where(SeenFile.watch == watch.id).count() == 1, 30, 0.1, "a.txt taken")
    (inbox / "a.txt").unlink()
    assert forget_vanished(watch.id, str(inbox), ["a.txt"]) == []
    assert SeenFile.select().where(SeenFile.watch == watch.id).count() == 1
