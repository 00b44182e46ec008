"""A running batch hands back the rest of its range when the desk asks: with real worker processes and a
real store, the runner keeps every item it has started (also one past the boundary it was asked for),
the rest becomes a new batch that another worker runs, and no item ever runs twice. The split itself
(data.transitions.split_batch) is guarded like every transition."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from conftest import wait_for
from data import queries, transitions
from data.models import Batch, Item, Job
from data.states import BatchState
from sched_tasks import runs
from worker_rig import WorkerRig

PLUGINS = ("sched_tasks:tally",)


class Rig(WorkerRig):
    """The worker rig with the test tasks enabled in its workers too."""

    def env(self) -> dict[str, str]:
        return {**super().env(), "BATCHDESK_PLUGINS": ",".join(self.settings.plugins)}


@pytest.fixture
def rig(settings, tmp_path):
    rig = Rig(replace(settings, plugins=PLUGINS), tmp_path)
    yield rig
    rig.close()


def files(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"f{i}").write_text(str(i))
    return folder


def item_ids(job_id: int) -> list[int]:
    return [i.id for i in Item.select(Item.id).where(Item.job == job_id).order_by(Item.id)]


def held_batch(job_id: int) -> Batch | None:
    return Batch.get_or_none((Batch.job == job_id) & (Batch.status == BatchState.HELD))


def started(log: Path, name: str) -> bool:
    return name in runs(log)


@pytest.mark.slow
@pytest.mark.parametrize("asked_at, kept", [(0, 3), (6, 6)], ids=["behind-the-item-in-hand", "ahead"])
def test_a_running_batch_hands_back_the_rest_and_no_item_runs_twice(rig, tmp_path, asked_at, kept):
    """Asked to hand back after item ``asked_at`` while item 3 (0-based: f3) runs: it keeps every item up to
    the one in hand, or up to ``asked_at`` when that is further; another worker runs the rest."""
    log = tmp_path / "tally.log"
    job, batch = rig.submit(files(tmp_path / "in", 10), "sched_tasks:tally", log=str(log), ms="700")
    ids = item_ids(job.id)
    rig.start_worker("rig-w1")
    wait_for(lambda: started(log, "f3"), 60, 0.02, "the 4th item to start")
    transitions.ask_hand_backs({batch.id: ids[asked_at]})
    rest = wait_for(lambda: held_batch(job.id), 60, 0.05, "the batch to hand back its rest")
    assert (Batch.get_by_id(batch.id).last_item, rest.first_item, rest.last_item) == (ids[kept], ids[kept + 1], ids[-1])
    assert rest.items_count == 10 - kept - 1 and Batch.get_by_id(batch.id).items_count == kept + 1
    assert Job.get_by_id(job.id).batches_total == 2
    rig.start_worker("rig-w2")
    rig.queues.enqueue(rest, job)
    done = wait_for(lambda: rig.ended(job.id), 90, 0.1, "the job to end")
    assert done.status == "done" and done.items_done == 10, rig.log()
    tally = runs(log)
    assert {name: len(pids) for name, pids in tally.items()} == {f"f{i}": 1 for i in range(10)}, tally
    first_horses = {tally[f"f{i}"][0] for i in range(kept + 1)}
    rest_horses = {tally[f"f{i}"][0] for i in range(kept + 1, 10)}
    assert len(first_horses) == 1 and not first_horses & rest_horses, "the rest ran in another batch"
    by_batch = {i.id: i.batch for i in Item.select(Item.id, Item.batch).where(Item.job == job.id)}
    assert [by_batch[i] for i in ids] == [batch.id] * (kept + 1) + [rest.id] * (9 - kept)


@pytest.mark.slow
def test_a_request_for_a_batch_that_ended_changes_nothing(rig, tmp_path):
    log = tmp_path / "tally.log"
    job, batch = rig.submit(files(tmp_path / "in", 3), "sched_tasks:tally", log=str(log), ms="10")
    rig.start_worker("rig-w1")
    wait_for(lambda: rig.ended(job.id), 60, 0.1, "the job to end")
    transitions.ask_hand_backs({batch.id: item_ids(job.id)[0]})
    assert transitions.split_batch(batch.id, item_ids(job.id)[0], BatchState.RUNNING) is None
    assert [b.status for b in Batch.select().where(Batch.job == job.id)] == ["done"]


def cut(store, tmp_path, count: int = 6) -> tuple[Job, Batch]:
    """A job of ``count`` pending items in one queued batch (no desk, no workers)."""
    from batchdesk.config import Settings
    from batchdesk.jobs.submit import JobRequest, submit_folder

    settings = Settings(data_dir=tmp_path / "data", broker="embedded", workers=2)
    job, _ = submit_folder(settings, JobRequest(files(tmp_path / "in", count), "checksum"))
    return job, queries.cut_batch(job, 100, 2**40)


def test_split_batch_is_guarded_by_the_state_it_expects(store, tmp_path):
    job, batch = cut(store, tmp_path)
    ids = item_ids(job.id)
    assert transitions.split_batch(batch.id, ids[1], BatchState.RUNNING) is None, "it is queued, not running"
    Batch.update(status=BatchState.HELD).where(Batch.id == batch.id).execute()
    rest = transitions.split_batch(batch.id, ids[1], BatchState.HELD)
    assert rest is not None and rest.status == BatchState.HELD and rest.seq == 2
    assert (rest.first_item, rest.last_item, rest.items_count) == (ids[2], ids[-1], 4)
    kept = Batch.get_by_id(batch.id)
    assert (kept.first_item, kept.last_item, kept.items_count) == (ids[0], ids[1], 2)
    assert kept.bytes_count + rest.bytes_count == sum(i.size for i in Item.select().where(Item.job == job.id))
    assert transitions.split_batch(rest.id, ids[-1], BatchState.HELD) is None, "nothing lies after the last item"


def test_no_split_for_a_cancelling_job_or_when_nothing_pending_follows(store, tmp_path):
    job, batch = cut(store, tmp_path)
    ids = item_ids(job.id)
    Batch.update(status=BatchState.RUNNING).where(Batch.id == batch.id).execute()
    queries.end_pending(job.id, queries.ItemState.CANCELLED, first=ids[3], last=ids[-1])
    assert transitions.split_batch(batch.id, ids[2], BatchState.RUNNING) is None, "its rest already ended"
    transitions.cancel_job(job.id)
    assert Job.get_by_id(job.id).status == "cancelling"
    assert transitions.split_batch(batch.id, ids[0], BatchState.RUNNING) is None, "a cancelling job's batch stays whole"
    assert Batch.select().where(Batch.job == job.id).count() == 1


def test_hand_back_requests_are_one_control_row(store):
    assert transitions.hand_back_asks() == {}
    transitions.ask_hand_backs({3: 17, 4: 40})
    assert transitions.hand_back_asks() == {3: 17, 4: 40}
    transitions.ask_hand_backs({})
    assert transitions.hand_back_asks() == {}
