"""A task's ``preload`` hook runs in the worker process before it forks the batch's work-horse: once per
worker and task options, inherited by every work-horse, and never in a worker that gets no such batch.
Real worker processes over the embedded broker (tests/worker_rig.py)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from batchdesk.jobs.submit import JobRequest, submit_folder
from conftest import make_files, wait_for
from data import queries
from data.models import Item, Job
from worker_rig import rig_fixture  # noqa: F401  (the rig fixture)

pytestmark = pytest.mark.slow
PLUGIN = "preload_tasks:preloading"


def _submit(rig, folder: Path, task: str, queue: str, **options: str) -> Job:
    job, _ = submit_folder(rig.settings, JobRequest(folder, task, options, queue=queue))
    rig.queues.enqueue(queries.cut_batch(job, 1_000_000, 2**62), job)
    return job


def _worker_env(rig, monkeypatch, marks: Path):
    monkeypatch.setenv("BD_PRELOAD_MARKS", str(marks))
    rig.settings = replace(rig.settings, plugins=(PLUGIN,))
    plain = rig.env
    monkeypatch.setattr(rig, "env", lambda: {**plain(), "BATCHDESK_PLUGINS": PLUGIN})


def test_preload_runs_once_per_worker_before_the_fork_and_only_where_needed(rig, monkeypatch, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    _worker_env(rig, monkeypatch, marks)
    indexing = rig.start_worker("rig-high", "high")
    other = rig.start_worker("rig-low", "low")
    folder = tmp_path / "in"
    make_files(folder, 5)
    jobs = [_submit(rig, folder, PLUGIN, "high") for _ in range(2)]
    jobs.append(_submit(rig, folder, PLUGIN, "high", flavour="spicy"))
    jobs.append(_submit(rig, folder, "checksum", "low"))
    for job in jobs:
        done = wait_for(lambda job=job: rig.ended(job.id), 60, 0.1, "the job to end")
        assert done.status == "done", rig.log("rig-high")
    calls = [(int(p.name.split("-")[1]), json.loads(p.read_text())) for p in sorted(marks.iterdir())]
    assert sorted(options["flavour"] for _, options in calls) == ["plain", "spicy"], "once per task options"
    assert {pid for pid, _ in calls} == {indexing.pid}, "only in the worker that got such batches, never the other"
    for job in jobs[:3]:
        for item in Item.select().where(Item.job == job.id):
            assert item.result["preloaded_in"] == indexing.pid != item.result["pid"], \
                "the work-horse inherited what its worker preloaded"
    assert other.poll() is None and indexing.poll() is None


def test_an_index_worker_holds_the_model_and_a_checksum_worker_does_not(rig, tmp_path):
    indexing = rig.start_worker("rig-high", "high")
    other = rig.start_worker("rig-low", "low")
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "note.md").write_text("# Note\n\nThe preload hook loads the embedding model before the fork.\n")
    for job in (_submit(rig, folder, "index", "high"), _submit(rig, folder, "checksum", "low")):
        done = wait_for(lambda job=job: rig.ended(job.id), 60, 0.1, "the job to end")
        assert done.status == "done", rig.log("rig-high")

    def maps(pid: int) -> str:
        return Path(f"/proc/{pid}/maps").read_text()

    assert "tokenizers" in maps(indexing.pid), "the worker process itself loaded the model's tokenizer"
    assert "tokenizers" not in maps(other.pid), "a worker that never indexes pays nothing"
    assert "_multiarray_umath" not in maps(other.pid), "... not even numpy"
