"""The settle tracker (injected clock and probe) and the name rules of drop folders."""

from __future__ import annotations

import os

import pytest

from batchdesk.watch.settle import CLOSE, WRITE, SettleTracker, is_temporary, probe_regular, wanted


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeFiles:
    """path -> (size, mtime); counts probes."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[int, float]] = {}
        self.probes = 0

    def __call__(self, path: str):
        self.probes += 1
        return self.files.get(path)


@pytest.fixture
def env():
    clock, files = Clock(), FakeFiles()
    return clock, files, SettleTracker(1.0, probe=files, clock=clock)


def keys(settled):
    return [s.key for s in settled]


def test_file_is_taken_only_after_the_settle_time(env):
    clock, files, tracker = env
    files.files["/in/a"] = (10, 5.0)
    tracker.touch("a", "/in/a")
    assert tracker.poll() == []
    clock.advance(0.99)
    assert tracker.poll() == []
    clock.advance(0.02)
    ready = tracker.poll()
    assert keys(ready) == ["a"] and (ready[0].size, ready[0].mtime, ready[0].path) == (10, 5.0, "/in/a")
    assert len(tracker) == 0
    clock.advance(5)
    assert tracker.poll() == []  # taken once


def test_a_growing_file_restarts_the_settle_clock_without_events(env):
    """A slow writer (10 s of small appends) is taken once, whole, one settle time after it stops."""
    clock, files, tracker = env
    files.files["/in/big"] = (0, 1.0)
    tracker.touch("big", "/in/big")
    taken = []
    for step in range(1, 41):  # appends every 0.25 s for 10 s; nobody touches: only due re-checks see it
        clock.advance(0.25)
        files.files["/in/big"] = (step * 100, 1.0 + step * 0.25)
        taken += tracker.poll()
    assert taken == []
    # Without events a change is only seen at the next due look, so it settles between one and two
    # settle times after the last write (with events: one).
    waited = 0.0
    while not taken and waited < 3:
        clock.advance(0.1)
        waited += 0.1
        taken += tracker.poll()
    assert keys(taken) == ["big"] and taken[0].size == 4000
    assert 1.0 <= waited <= 2.05


def test_events_reset_the_clock_too(env):
    clock, files, tracker = env
    files.files["/in/a"] = (1, 1.0)
    tracker.touch("a", "/in/a")
    tracker.poll()
    clock.advance(0.9)
    files.files["/in/a"] = (2, 1.9)
    tracker.touch("a", "/in/a")
    tracker.poll()
    clock.advance(0.9)
    assert tracker.poll() == []
    clock.advance(0.2)
    assert keys(tracker.poll()) == ["a"]


def burst(clock, files, tracker, path="/in/a", grow=100) -> None:
    """A writer that keeps the file open writes once more (an inotify IN_MODIFY)."""
    size, _mtime = files.files.get(path, (0, 0.0))
    files.files[path] = (size + grow, clock.now)
    tracker.touch(path.rsplit("/", 1)[1], path, WRITE)


def test_a_file_open_for_writing_waits_for_its_close(env):
    """Bursts further apart than the settle time: one take, after the close, of the whole file."""
    clock, files, tracker = env
    taken = []
    for _ in range(6):
        burst(clock, files, tracker)
        taken += tracker.poll()
        for _ in range(12):  # 1.2 s between bursts, polled every 0.1 s
            clock.advance(0.1)
            taken += tracker.poll()
    assert taken == []
    tracker.touch("a", "/in/a", CLOSE)
    taken += tracker.poll()
    assert taken == []  # the settle time counts from the close: a writer that reopens at once is waited for
    clock.advance(1.0)
    taken += tracker.poll()
    assert keys(taken) == ["a"] and taken[0].size == 600


def test_events_of_one_tick_merge_in_order(env):
    clock, files, tracker = env
    burst(clock, files, tracker)
    tracker.touch("a", "/in/a", CLOSE)
    tracker.touch("a", "/in/a")  # a plain look does not undo what the close said
    tracker.poll()
    clock.advance(1.0)
    assert keys(tracker.poll()) == ["a"]
    burst(clock, files, tracker)  # taken, then written again: closed and reopened in the same tick
    tracker.touch("a", "/in/a", CLOSE)
    burst(clock, files, tracker)
    tracker.poll()
    clock.advance(5)
    assert tracker.poll() == []


def test_a_writer_whose_close_never_comes_is_taken_after_the_open_limit():
    """A missed close (lost events, a writer that never closes): the file is not held forever."""
    files, clock = FakeFiles(), Clock()
    tracker = SettleTracker(1.0, probe=files, clock=clock, open_limit_seconds=30.0)
    burst(clock, files, tracker)
    tracker.poll()
    clock.advance(29)
    assert tracker.poll() == []
    burst(clock, files, tracker)  # still at work: the limit counts from the last change
    tracker.poll()
    clock.advance(29)
    assert tracker.poll() == []
    clock.advance(1)
    assert keys(tracker.poll()) == ["a"]


def test_the_open_limit_is_never_below_the_settle_time():
    assert SettleTracker(5.0, open_limit_seconds=1.0).open_limit_seconds == 5.0


def test_a_file_that_vanishes_before_it_settles_is_dropped(env):
    clock, files, tracker = env
    files.files["/in/a"] = (1, 1.0)
    tracker.touch("a", "/in/a")
    tracker.poll()
    del files.files["/in/a"]
    clock.advance(2)
    assert tracker.poll() == [] and len(tracker) == 0
    # and one that is gone by the time its event is looked at never enters
    tracker.touch("b", "/in/b")
    assert tracker.poll() == [] and len(tracker) == 0


def test_a_flood_of_events_costs_one_probe_per_path_per_poll(env):
    _clock, files, tracker = env
    files.files["/in/a"] = (1, 1.0)
    for _ in range(10_000):
        tracker.touch("a", "/in/a")
    tracker.poll()
    assert files.probes == 1 and len(tracker) == 1


def test_observe_seeds_from_a_scan(env):
    clock, files, tracker = env
    files.files["/in/a"] = (3, 1.0)
    tracker.observe("a", "/in/a", 3, 1.0)
    clock.advance(1.0)
    assert keys(tracker.poll()) == ["a"]
    assert files.probes == 1  # only the confirming look


def test_rename_is_a_new_key(env):
    """a.part -> a: the tracker is keyed by the final name (the watcher never feeds it .part names)."""
    clock, files, tracker = env
    files.files["/in/a"] = (5, 1.0)
    tracker.touch("a", "/in/a")
    tracker.poll()
    clock.advance(1.0)
    assert keys(tracker.poll()) == ["a"]


def test_many_files_settle_together(env):
    clock, files, tracker = env
    for i in range(2000):
        files.files[f"/in/{i}"] = (i, 1.0)
        tracker.touch(str(i), f"/in/{i}")
    tracker.poll()
    clock.advance(1.0)
    assert len(tracker.poll()) == 2000


def test_poll_limit_leaves_the_rest_for_the_next_poll(env):
    clock, files, tracker = env
    for i in range(25):
        files.files[f"/in/{i}"] = (i, 1.0)
        tracker.touch(str(i), f"/in/{i}")
    tracker.poll()
    clock.advance(1.0)
    assert [len(tracker.poll(limit=10)) for _ in range(4)] == [10, 10, 5, 0]


def test_zero_settle_still_needs_a_confirming_look():
    files, clock = FakeFiles(), Clock()
    tracker = SettleTracker(0, probe=files, clock=clock)
    files.files["/in/a"] = (1, 1.0)
    tracker.touch("a", "/in/a")
    assert keys(tracker.poll()) == ["a"]
    assert files.probes == 2


@pytest.mark.parametrize("name", ["a.part", "a.PART", "b.tmp", "c.crdownload", "~$report.docx", ".hidden", ".~lock"])
def test_temporary_names_are_never_taken(name):
    assert is_temporary(name)
    assert not wanted(name, recursive=True)


@pytest.mark.parametrize("name", ["a.pdf", "part.txt", "tmp", "report~.docx", "x.partial.txt"])
def test_ordinary_names_are_taken_even_when_they_look_temporary(name):
    assert not is_temporary(name)
    assert wanted(name, recursive=False)


def test_wanted_follows_recursion_reserved_folders_hidden_parts_and_globs():
    assert not wanted("sub/a.pdf", recursive=False)
    assert wanted("sub/a.pdf", recursive=True)
    assert not wanted("done/a.pdf", recursive=True)
    assert not wanted("failed/x/a.pdf", recursive=True)
    assert wanted("sub/done/a.pdf", recursive=True)  # only the top-level done/ and failed/ are reserved
    assert not wanted(".git/config", recursive=True)
    assert not wanted("sub/.cache/a.pdf", recursive=True)
    assert wanted("a.pdf", False, include=("*.pdf",)) and not wanted("a.txt", False, include=("*.pdf",))
    assert not wanted("a.pdf", False, exclude=("a.*",))
    assert not wanted("", True) and not wanted("a//b", True)


def test_probe_regular_gives_size_and_mtime_of_regular_files_only(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"12345")
    assert probe_regular(str(f)) == (5, os.stat(f).st_mtime)
    assert probe_regular(str(tmp_path)) is None
    assert probe_regular(str(tmp_path / "missing")) is None
    (tmp_path / "link").symlink_to(f)
    assert probe_regular(str(tmp_path / "link")) is None
