"""Watch rows: the CLI group, the [[watches]] config schema and sync, exactly-once taking, and the
after-processing mover (no desk: the store and real files only)."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from batchdesk.cli import main
from batchdesk.config import Settings
from batchdesk.watch import control as watch_control
from batchdesk.watch.after import (
    AfterProcessing,
    free_name,
    move_no_overwrite,
    write_new_file,
)
from batchdesk.watch.service import WatchService, take, walk
from batchdesk.watch.spec import WatchConfigError, WatchSpec, parse_watch_entries
from conftest import wait_for
from data import queries, transitions
from data.models import DONE, FAILED, Batch, Item, Job, SeenFile, Setting, Watch
from data.queries import Outcome
from data.store import open_store


@pytest.fixture
def opened(settings):
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    open_store(settings.store_path)
    return settings


def cli(settings, *args):
    result = CliRunner().invoke(main, ["--data-dir", str(settings.data_dir), "watch", *args], catch_exceptions=False)
    return result


# -- CLI -----------------------------------------------------------------------------------------
def test_cli_add_list_pause_resume_remove(settings, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    r = cli(settings, "add", str(inbox), "--task", "checksum", "--opt", "duplicates=no", "--recursive",
            "--include", "*.pdf", "--exclude", "x*", "--on-done", "move", "--on-fail", "move", "--priority", "low",
            "--polling")
    assert r.exit_code == 0, r.output
    assert "watch 1:" in r.output
    rows = json.loads(cli(settings, "list", "--json").output)
    assert len(rows) == 1
    row = rows[0]
    assert row["path"] == str(inbox.resolve()) and row["task"] == "checksum"
    assert row["options"] == {"duplicates": False} and row["recursive"] and row["polling"]
    assert row["include"] == ["*.pdf"] and row["exclude"] == ["x*"]
    assert (row["on_done"], row["on_fail"], row["priority"], row["status"]) == ("move", "move", "low", "active")

    assert "paused" in cli(settings, "pause", "1").output
    assert json.loads(cli(settings, "list", "--json").output)[0]["status"] == "paused"
    assert "active" in cli(settings, "resume", str(inbox)).output
    text = cli(settings, "list").output
    assert "checksum" in text and str(inbox.resolve()) in text
    assert "removed" in cli(settings, "remove", str(inbox)).output
    assert json.loads(cli(settings, "list", "--json").output) == []


@pytest.mark.parametrize("args, message", [
    (["add", "{missing}", "--task", "checksum"], "folder not found"),
    (["add", "{inbox}", "--task", "nope"], "unknown task"),
    (["add", "{inbox}", "--task", "checksum", "--opt", "nokey"], "key=value"),
    (["add", "{inbox}", "--task", "checksum", "--opt", "bogus=1"], "has no option"),
    (["remove", "7"], "no watch"),
    (["pause", "{missing}"], "no watch"),
])
def test_cli_errors_are_one_line(settings, tmp_path, args, message):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    args = [a.format(missing=tmp_path / "missing", inbox=inbox) for a in args]
    r = cli(settings, *args)
    assert r.exit_code == 2
    assert message in r.output and r.output.count("\n") == 1


def test_cli_refuses_duplicates_and_overlaps(settings, tmp_path):
    (tmp_path / "inbox" / "sub").mkdir(parents=True)
    assert cli(settings, "add", str(tmp_path / "inbox"), "-t", "checksum", "-r").exit_code == 0
    r = cli(settings, "add", str(tmp_path / "inbox"), "-t", "checksum")
    assert r.exit_code == 2 and "already watched" in r.output
    r = cli(settings, "add", str(tmp_path / "inbox" / "sub"), "-t", "checksum")
    assert r.exit_code == 2 and "overlaps watch 1" in r.output
    r = cli(settings, "add", str(tmp_path), "-t", "checksum", "-r")
    assert r.exit_code == 2 and "overlaps" in r.output
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    r = cli(settings, "add", str(settings.data_dir), "-t", "checksum")
    assert r.exit_code == 2 and "data folder" in r.output


# -- config schema -------------------------------------------------------------------------------
def test_watch_entries_parse_with_defaults_and_every_key():
    specs = parse_watch_entries([
        {"path": "~/in", "task": "checksum"},
        {"path": "/x", "task": "extract-text", "options": {"chunk_size": 2000}, "recursive": True,
         "include": "*.pdf", "exclude": ["tmp*"], "on_done": "delete", "on_fail": "move", "priority": "high",
         "polling": True},
    ])
    assert specs[0] == WatchSpec(path="~/in", task="checksum")
    assert specs[1].include == ("*.pdf",) and specs[1].queue == "high" and specs[1].options == {"chunk_size": 2000}
    assert parse_watch_entries(None) == () and parse_watch_entries([]) == ()


@pytest.mark.parametrize("raw, message", [
    ({"path": "/x", "task": "t"}, "array of tables"),
    ("x", "array of tables"),
    ([{"task": "t"}], "'path' is required"),
    ([{"path": "/x"}], "'task' is required"),
    ([{"path": "/x", "task": "t", "colour": 1}], "unknown key(s) colour"),
    ([{"path": "/x", "task": "t", "on_done": "shred"}], "on_done must be one of"),
    ([{"path": "/x", "task": "t", "on_fail": "delete"}], "on_fail must be one of"),
    ([{"path": "/x", "task": "t", "priority": "urgent"}], "priority must be one of"),
    ([{"path": "/x", "task": "t", "recursive": "yes"}], "'recursive' must be true or false"),
    ([{"path": "/x", "task": "t", "include": [1]}], "'include' must be"),
    ([{"path": "/x", "task": "t", "options": "a=1"}], "'options' must be a table"),
    ([{"path": "/x", "task": "t"}, {"path": "/x", "task": "u"}], "watched twice"),
])
def test_parse_watch_entries_errors(raw, message):
    with pytest.raises(WatchConfigError) as exc:
        parse_watch_entries(raw, "cfg.toml")
    assert message in str(exc.value) and "cfg.toml" in str(exc.value)


def test_config_sync_adds_updates_and_removes_its_own(opened, tmp_path):
    a, b, c = (tmp_path / n for n in "abc")
    for d in (a, b, c):
        d.mkdir()
    watch_control.add_watch(opened, WatchSpec(path=str(c), task="checksum"))  # from the CLI
    r = watch_control.sync_config_watches(opened, parse_watch_entries([
        {"path": str(a), "task": "checksum"}, {"path": str(b), "task": "checksum", "on_done": "move"},
        {"path": str(tmp_path / "not-mounted-yet"), "task": "checksum"},
    ]))
    assert sorted(r.added) == sorted([str(a), str(b), str(tmp_path / "not-mounted-yet")]) and not r.errors
    watch_control.set_paused(str(a), True)
    r = watch_control.sync_config_watches(opened, parse_watch_entries([
        {"path": str(a), "task": "checksum", "recursive": True}, {"path": str(tmp_path / "x"), "task": "nope"},
    ]))
    assert r.updated == [str(a)] and r.removed == sorted([str(b), str(tmp_path / "not-mounted-yet")])
    assert r.in_error == [str(tmp_path / "x")] and not r.errors  # in the list, in error (see below)
    assert "unknown task 'nope'" in Watch.get(Watch.path == str(tmp_path / "x")).error
    row = Watch.get(Watch.path == str(a))
    assert row.recursive and row.status == "paused"  # the user's pause is kept
    assert Watch.get_or_none(Watch.path == str(c)) is not None  # not the config's to remove
    assert {w["path"]: w["from_config"] for w in watch_control.list_watches()} == {
        str(a): True, str(c): False, str(tmp_path / "x"): True}
    # same config again: nothing to do
    r = watch_control.sync_config_watches(opened, parse_watch_entries([{"path": str(a), "task": "checksum",
                                                                        "recursive": True}]))
    assert (r.added, r.updated, r.removed) == ([], [], [str(tmp_path / "x")])


def test_config_sync_puts_a_watch_with_bad_options_in_error_until_it_is_fixed(opened, tmp_path):
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    entries = [{"path": str(good), "task": "checksum"},
               {"path": str(bad), "task": "extract-text", "options": {"chunk_size": 10, "encoding": "utf-8"}}]
    r = watch_control.sync_config_watches(opened, parse_watch_entries(entries))
    assert r.added == [str(good), str(bad)] and r.in_error == [str(bad)] and not r.errors
    row = Watch.get(Watch.path == str(bad))
    assert (row.status, row.task, row.options) == ("error", "extract-text", {"chunk_size": 10, "encoding": "utf-8"})
    assert row.error == "option 'chunk_size': 10 is too small; allowed: integer >= 50"
    assert Watch.get(Watch.path == str(good)).status == "active"
    # the same bad entry again changes nothing; a paused watch stays paused, with the reason
    assert watch_control.sync_config_watches(opened, parse_watch_entries(entries)).updated == []
    watch_control.set_paused(str(bad), True)
    entries[1]["options"] = {"chunk_overlap": 900}
    r = watch_control.sync_config_watches(opened, parse_watch_entries(entries))
    assert r.updated == [str(bad)] and r.in_error == [str(bad)]
    row = Watch.get(Watch.path == str(bad))
    assert row.status == "paused" and "option 'chunk_overlap': 900 is not allowed: at most chunk_size/2" in row.error
    watch_control.set_paused(str(bad), False)
    Watch.update(status="error", error="stale").where(Watch.path == str(bad)).execute()
    # fixed in the config file: the watch is active again with the parsed options
    entries[1]["options"] = {"chunk_size": 2000}
    r = watch_control.sync_config_watches(opened, parse_watch_entries(entries))
    assert r.updated == [str(bad)] and not r.in_error
    row = Watch.get(Watch.path == str(bad))
    assert (row.status, row.error) == ("active", None)
    assert (row.options["chunk_size"], row.options["chunk_overlap"]) == (2000, 200)


def test_config_options_that_json_cannot_hold_are_kept_as_text(opened, tmp_path):
    import datetime

    entry = {"path": str(tmp_path), "task": "checksum", "options": {"duplicates": datetime.date(2024, 1, 2)}}
    watch_control.sync_config_watches(opened, parse_watch_entries([entry]))
    row = Watch.get(Watch.path == str(tmp_path))
    assert row.status == "error" and row.options == {"duplicates": "2024-01-02"}
    assert row.error.startswith("option 'duplicates': datetime.date(2024, 1, 2) is not a valid bool")


# -- exactly once --------------------------------------------------------------------------------
def test_take_is_exactly_once_by_path_size_and_mtime(opened, tmp_path):
    (tmp_path / "in").mkdir()
    watch = watch_control.add_watch(opened, WatchSpec(path=str(tmp_path / "in"), task="checksum"))
    job = watch_control.rolling_job(opened, watch)
    assert job.name == "inbox: in" and job.source_kind == "watch" and job.watch_id == watch.id
    assert watch_control.rolling_job(opened, watch).id == job.id  # the same rolling job
    files = [(f"f{i}", i, 100.0 + i) for i in range(1200)]
    assert take(watch.id, job.id, files) == 1200
    assert take(watch.id, job.id, files) == 0
    assert take(watch.id, job.id, [("f1", 1, 101.0), ("f2", 2, 999.0), ("new", 0, 1.0)]) == 2
    job = Job.get_by_id(job.id)
    assert job.items_total == 1202 and job.status == "queued"
    seen = SeenFile.get((SeenFile.watch == watch.id) & (SeenFile.path == "f2"))
    assert seen.mtime == 999.0 and seen.item > 1200
    assert SeenFile.select().where(SeenFile.watch == watch.id).count() == 1201


def test_rolling_job_never_finishes_and_remove_turns_it_into_a_folder_job(opened, tmp_path):
    (tmp_path / "in").mkdir()
    watch = watch_control.add_watch(opened, WatchSpec(path=str(tmp_path / "in"), task="checksum"))
    job = watch_control.rolling_job(opened, watch)
    take(watch.id, job.id, [("a", 1, 1.0)])
    _finish_all(job.id, DONE)
    assert Job.get_by_id(job.id).status != "done"  # rolling: it waits for the next file
    watch_control.remove_watch(watch.id)
    job = Job.get_by_id(job.id)
    # an ordinary job now, whose items have all ended: its end step (the duplicates report) is queued
    assert job.status == "finishing" and job.source_kind == "folder" and job.watch_id is None
    assert [(b.kind, b.status) for b in Batch.select().where(Batch.job == job.id).order_by(Batch.seq)] == [
        ("items", "done"), ("final", "held")]
    assert SeenFile.select().count() == 0


def _finish_all(job_id: int, status: str, error: str | None = None) -> None:
    job = Job.get_by_id(job_id)
    batch = queries.cut_batch(job, 10_000, 1 << 40)
    now = time.time()
    outcomes = [Outcome(i, status, {} if status == DONE else None, error, now, now, 1)
                for i, *_ in queries.pending_in(batch)]
    queries.finish_items(job_id, batch.id, outcomes)
    transitions.finish_batch(batch.id)


# -- after processing ----------------------------------------------------------------------------
def test_move_picks_a_free_name_and_never_overwrites(tmp_path):
    done = tmp_path / "done"
    done.mkdir()
    (done / "a.txt").write_text("old")
    (done / "a-1.txt").write_text("older")
    src = tmp_path / "a.txt"
    src.write_text("new")
    target = move_no_overwrite(src, done, "a.txt")
    assert target == done / "a-2.txt" and target.read_text() == "new" and not src.exists()
    assert (done / "a.txt").read_text() == "old" and (done / "a-1.txt").read_text() == "older"
    assert free_name(done, "noext", 3).name == "noext-3" and free_name(done, "a.tar.gz", 1).name == "a.tar-1.gz"
    (tmp_path / "b").write_text("x")
    (done / "b.error.txt").write_text("taken")
    assert move_no_overwrite(tmp_path / "b", done, "b", also_free=(".error.txt",)) == done / "b-1"
    assert write_new_file(done / "b.error.txt", "e").name == "b.error-1.txt"  # a lost race only


def test_after_processing_moves_once_and_keeps_newer_versions(opened, tmp_path):
    inbox = tmp_path / "in"
    inbox.mkdir()
    watch = watch_control.add_watch(opened, WatchSpec(path=str(inbox), task="checksum", on_done="move",
                                                      on_fail="move"))
    job = watch_control.rolling_job(opened, watch)
    for name in ("ok1", "ok2", "changed"):
        (inbox / name).write_text(name)
    (inbox / "done").mkdir()
    (inbox / "done" / "ok1").write_text("already here")
    stat = {n: os.stat(inbox / n) for n in ("ok1", "ok2", "changed")}
    take(watch.id, job.id, [(n, s.st_size, s.st_mtime) for n, s in stat.items()])
    (inbox / "changed").write_text("a newer, longer version")  # changed after it was taken
    _finish_all(job.id, DONE)
    after = AfterProcessing(watch.id)
    r = after.run(inbox, "move", "move", [job.id])
    assert (r.moved, r.failed_moved, r.errors) == (2, 0, [])
    assert (inbox / "done" / "ok1").read_text() == "already here" and (inbox / "done" / "ok1-1").read_text() == "ok1"
    assert (inbox / "done" / "ok2").read_text() == "ok2"
    assert (inbox / "changed").read_text() == "a newer, longer version"  # the newer version stays
    # a second run, or a restart from the saved cursor, handles nothing again
    assert after.run(inbox, "move", "move", [job.id]).moved == 0
    assert Setting.get(Setting.key == f"watch.{watch.id}.after").value == {str(job.id): 1}
    (inbox / "ok2").write_text("ok2")  # a new file of the same name is not the processed one
    os.utime(inbox / "ok2", (1, 1))
    assert AfterProcessing(watch.id).run(inbox, "move", "move", [job.id]).moved == 0
    assert (inbox / "ok2").exists()


def test_after_processing_failed_files(opened, tmp_path):
    inbox = tmp_path / "in"
    inbox.mkdir()
    watch = watch_control.add_watch(opened, WatchSpec(path=str(inbox), task="checksum", on_fail="move"))
    job = watch_control.rolling_job(opened, watch)
    (inbox / "bad.pdf").write_text("x")
    st = os.stat(inbox / "bad.pdf")
    take(watch.id, job.id, [("bad.pdf", st.st_size, st.st_mtime)])
    _finish_all(job.id, FAILED, "not a PDF: broken header")
    r = AfterProcessing(watch.id).run(inbox, "keep", "move", [job.id])
    assert r.failed_moved == 1 and not (inbox / "bad.pdf").exists()
    assert (inbox / "failed" / "bad.pdf").read_text() == "x"
    assert "not a PDF: broken header" in (inbox / "failed" / "bad.pdf.error.txt").read_text()
    assert SeenFile.select().where(SeenFile.watch == watch.id).count() == 0


def test_after_processing_gives_an_ended_job_a_last_pass(opened, tmp_path):
    inbox = tmp_path / "in"
    inbox.mkdir()
    watch = watch_control.add_watch(opened, WatchSpec(path=str(inbox), task="checksum", on_done="move"))
    job = watch_control.rolling_job(opened, watch)
    after = AfterProcessing(watch.id)
    after.run(inbox, "move", "keep", [job.id])
    (inbox / "a").write_text("a")
    st = os.stat(inbox / "a")
    take(watch.id, job.id, [("a", st.st_size, st.st_mtime)])
    _finish_all(job.id, DONE)
    assert after.run(inbox, "move", "keep", []).moved == 1  # the job is no longer active (retired)
    assert (inbox / "done" / "a").exists()
    assert after.run(inbox, "move", "keep", []).moved == 0
    assert Setting.get(Setting.key == f"watch.{watch.id}.after").value == {}


def test_walk_skips_hidden_reserved_and_symlinked_folders(tmp_path):
    root = tmp_path / "in"
    for rel in ("a", "sub/b", "done/c", "failed/d", ".hid/e", "sub/done/f", ".g"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "h").write_text("x")
    (root / "linkdir").symlink_to(tmp_path / "outside")
    assert sorted(rel for rel, _ in walk(str(root), True)) == ["a", "linkdir", "sub/b", "sub/done/f"]
    assert sorted(rel for rel, _ in walk(str(root), False)) == ["a", "linkdir"]  # the probe refuses linkdir
    with pytest.raises(OSError):
        list(walk(str(tmp_path / "missing"), True))


def test_cli_watch_list_shows_job_counts(settings, tmp_path):
    (tmp_path / "in").mkdir()
    cli(settings, "add", str(tmp_path / "in"), "-t", "checksum")
    open_store(settings.store_path)
    watch = Watch.get()
    job = watch_control.rolling_job(settings, watch)
    take(watch.id, job.id, [("a", 1, 1.0), ("b", 1, 1.0)])
    row = json.loads(cli(settings, "list", "--json").output)[0]
    assert (row["job"], row["queued"], row["done"]) == (job.id, 2, 0)
    assert Path(row["path"]).name == "in"


# -- the service without a desk (no workers: items stay pending) ---------------------------------
@dataclass(frozen=True)
class SettingsWithWatches(Settings):
    """Settings as they will be once config.py has the proposed ``watches`` field."""

    watches: tuple = ()


def test_service_syncs_config_watches_and_switches_jobs_on_a_task_change(tmp_path):
    inbox = tmp_path / "in"
    inbox.mkdir()
    (inbox / "a.txt").write_text("a")
    specs = parse_watch_entries([{"path": str(inbox), "task": "checksum"}])
    settings = SettingsWithWatches(data_dir=tmp_path / "data", settle_seconds=0.1, watches=specs)
    settings.data_dir.mkdir()
    open_store(settings.store_path)
    service = WatchService(settings, reload_seconds=0.0)
    service.start()
    try:
        [watch] = Watch.select()

        def taken(path):
            service.tick()
            return SeenFile.get_or_none((SeenFile.watch == watch.id) & (SeenFile.path == path))

        first = wait_for(lambda: taken("a.txt"), 10)
        old_job = Item.get_by_id(first.item).job_id
        # the config file now says extract-text: the next files go to a new rolling job
        service.stop()
        settings = SettingsWithWatches(data_dir=tmp_path / "data", settle_seconds=0.1,
                                       watches=parse_watch_entries([{"path": str(inbox), "task": "extract-text"}]))
        service = WatchService(settings, reload_seconds=0.0)
        service.start()
        (inbox / "b.txt").write_text("b")
        second = wait_for(lambda: taken("b.txt"), 10)
        new_job = Job.get_by_id(Item.get_by_id(second.item).job_id)
        assert new_job.id != old_job and new_job.task == "extract-text" and new_job.name == "inbox: in"
        old = Job.get_by_id(old_job)
        assert old.source_kind == "folder" and old.status == "queued"  # retired: ends when its item has run
        # no [[watches]] any more: the config's watch goes
        service.stop()
        service = WatchService(SettingsWithWatches(data_dir=tmp_path / "data"), reload_seconds=0.0)
        service.start()
        assert Watch.select().count() == 0
    finally:
        service.stop()


def test_a_stored_watch_with_bad_options_is_in_error_and_the_others_work(opened, tmp_path):
    """Options stored before they were checked (an older version, a hand-edited store): the desk puts
    that watch in error with the reason and runs the other watches."""
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    ok = watch_control.add_watch(opened, WatchSpec(path=str(good), task="checksum"))
    broken = Watch.create(path=str(bad.resolve()), task="command", options={"cmd": "echo {bogus}", "timeout": 5},
                          status="active", created_at=time.time())
    settings = dataclasses.replace(opened, settle_seconds=0.1)
    service = WatchService(settings, reload_seconds=0.0)
    service.start()
    try:
        (good / "a.txt").write_text("a")
        (bad / "b.txt").write_text("b")

        def taken():
            service.tick()
            return SeenFile.get_or_none((SeenFile.watch == ok.id) & (SeenFile.path == "a.txt"))

        wait_for(taken, 30, message="the good watch to take its file")
        row = Watch.get_by_id(broken.id)
        assert row.status == "error"
        assert row.error.startswith("option 'cmd': 'echo {bogus}' is not allowed: unknown placeholder")
        assert Job.select().where(Job.watch == broken.id).count() == 0  # nothing taken into a job
        assert SeenFile.select().where(SeenFile.watch == broken.id).count() == 0
        assert Watch.get_by_id(ok.id).status == "active"
    finally:
        service.stop()


def test_inotify_overflow_triggers_a_rescan(opened, tmp_path):
    service = WatchService(opened)
    service.start()
    try:
        inotify_log = logging.getLogger("watchdog.observers.inotify_c")
        inotify_log.warning("Inotify queue overflowed; filesystem events were lost")
        assert service._overflow.is_set()
        service.tick()
        assert not service._overflow.is_set()
    finally:
        service.stop()
    logging.getLogger("watchdog.observers.inotify_c").warning("Inotify queue overflowed")
    assert not service._overflow.is_set()  # the hook went with the service


_WIRED = "watches" in {f.name for f in dataclasses.fields(Settings)}


@pytest.mark.skipif(not _WIRED, reason="config.py has no 'watches' field yet (see docs/watch.md)")
def test_config_file_watches_parse_and_tell_no_entries_from_no_file(tmp_path):
    from batchdesk.config import load_settings

    config = tmp_path / "config.toml"
    config.write_text('workers = 1\n\n[[watches]]\npath = "~/in"\ntask = "checksum"\non_done = "move"\n'
                      'options = { duplicates = false }\n')
    settings = load_settings(config_file=config)
    assert settings.watches == (WatchSpec(path="~/in", task="checksum", on_done="move",
                                          options={"duplicates": False}),)
    config.write_text("workers = 1\n")  # a config file without [[watches]]: the config owns none
    assert load_settings(config_file=config).watches == ()
    assert load_settings(config_file=tmp_path / "none.toml").watches is None  # no file: leave them be
    config.write_text('[[watches]]\npath = "/x"\ntask = "checksum"\ncolour = "red"\n')
    with pytest.raises(WatchConfigError, match=r"config.toml: \[\[watches\]\] entry 1: unknown key\(s\) colour"):
        load_settings(config_file=config)
