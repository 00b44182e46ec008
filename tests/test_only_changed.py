"""Do only what changed: a new job of a folder leaves out the files an earlier done job of the same task and
options did, unchanged (size and mtime); `--all` redoes them. The earlier jobs are real (submitted, then moved
through the store's own transitions here); the command-line tests run real workers."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from batchdesk.jobs.submit import JobRequest, NothingChanged, submit_folder
from conftest import batchdesk_env, scaled
from data.models import Item, Job
from job_states import run_through
from workers import registry

TASK = "extract-text"  # a task that writes one output per file and has no end-of-job report


@pytest.fixture
def folder(tmp_path, store):
    root = tmp_path / "in"
    root.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (root / name).write_text(f"text of {name}\n")
    return root


def again(settings, folder, task=TASK, only_changed=True, **options):
    return submit_folder(settings, JobRequest(folder, task, options, only_changed=only_changed))[0]


def paths(job):
    return sorted(i.path for i in Item.select().where(Item.job == job.id))


def test_a_new_job_takes_only_new_and_changed_files(settings, folder):
    first = again(settings, folder)
    run_through(first.id, failed={"c.txt": "could not read it"})
    (folder / "d.txt").write_text("new\n")
    (folder / "a.txt").write_text("changed, and longer than before\n")
    os.utime(folder / "b.txt", ns=(0, os.stat(folder / "b.txt").st_mtime_ns))  # read again: not a change
    second = again(settings, folder)
    assert paths(second) == ["a.txt", "c.txt", "d.txt"]  # changed, failed before, new
    assert second.batch_config["unchanged"] == {"files": 1, "bytes": len("text of b.txt\n"), "jobs": [first.id]}
    assert second.output_dir == first.output_dir  # the outputs of the files left out are there already
    assert second.items_total == 3 and second.bytes_total == sum((folder / p).stat().st_size for p in paths(second))

    run_through(second.id)
    os.utime(folder / "b.txt", ns=(0, os.stat(folder / "b.txt").st_mtime_ns + 10**6))  # touched: a change
    third = again(settings, folder)
    assert paths(third) == ["b.txt"]
    assert third.batch_config["unchanged"] == {"files": 3, "bytes": third.batch_config["unchanged"]["bytes"],
                                               "jobs": [second.id, first.id]}


def test_nothing_changed_records_no_job(settings, folder):
    first = again(settings, folder)
    run_through(first.id)
    with pytest.raises(NothingChanged) as caught:
        again(settings, folder)
    assert caught.value.unchanged == {"files": 3, "bytes": caught.value.unchanged["bytes"], "jobs": [first.id]}
    assert "3 unchanged file(s)" in str(caught.value) and "--all" in str(caught.value)
    assert Job.select().count() == 1


def test_what_counts_as_the_same_work(settings, folder, tmp_path):
    first = again(settings, folder, chunk_size="1000")
    run_through(first.id)
    assert paths(again(settings, folder, chunk_size="2000")) == ["a.txt", "b.txt", "c.txt"], "other options"
    assert paths(again(settings, folder, only_changed=False, chunk_size="1000")) == ["a.txt", "b.txt", "c.txt"]
    other_out = submit_folder(settings, JobRequest(folder, TASK, {"chunk_size": "1000"}, only_changed=True,
                                                   output_dir=tmp_path / "elsewhere"))[0]
    assert paths(other_out) == ["a.txt", "b.txt", "c.txt"], "another output folder lacks the earlier outputs"


def test_unfinished_and_ended_other_ways_do_not_count(settings, folder):
    running = again(settings, folder)  # never ended: its items are pending
    assert paths(again(settings, folder)) == ["a.txt", "b.txt", "c.txt"]
    assert Job.get_by_id(running.id).status == "queued"


def test_earlier_outputs_gone_means_everything_again(settings, folder):
    first = again(settings, folder)
    run_through(first.id)
    for path in sorted(os.walk(first.output_dir, topdown=False)):
        for name in path[2]:
            os.unlink(os.path.join(path[0], name))
        os.rmdir(path[0])
    assert paths(again(settings, folder)) == ["a.txt", "b.txt", "c.txt"]


def test_a_task_may_ask_to_see_every_file_each_time(settings, folder):
    """A task that must redo every file whatever changed says so (TaskSpec.skip_unchanged=False)."""
    assert registry.get("checksum").skip_unchanged is True
    spec = registry.get(TASK)
    registry._REGISTRY[TASK] = dataclasses.replace(spec, skip_unchanged=False)
    try:
        run_through(again(settings, folder).id)
        assert paths(again(settings, folder)) == ["a.txt", "b.txt", "c.txt"]
    finally:
        registry._REGISTRY[TASK] = spec


@pytest.mark.slow
def test_a_report_after_a_skip_still_covers_the_whole_folder(tmp_path):
    """checksum's duplicates.csv of a job that left unchanged files out finds a new file equal to one of them,
    and forgets a file that left the folder since."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.txt").write_text("same words\n")
    (folder / "b.txt").write_text("other words\n")
    (folder / "gone.txt").write_text("other words\n")
    data = tmp_path / "data"
    assert cli(data, "run", str(folder)).returncode == 0
    (folder / "gone.txt").unlink()
    (folder / "copy-of-a.txt").write_text("same words\n")
    second = cli(data, "run", str(folder), "--json")
    assert second.returncode == 0, second.stderr
    summary = json.loads(second.stdout)
    assert (summary["total"], summary["skipped"]["files"]) == (1, 2)
    report = Path(summary["reports"][0]).read_text()
    assert "copy-of-a.txt" in report and "a.txt" in report and "gone.txt" not in report, report


def cli(data, *args):
    return subprocess.run([sys.executable, "-m", "batchdesk", "--data-dir", str(data), "--broker", "embedded",
                           "--workers", "1", *args], capture_output=True, text=True, env=batchdesk_env(),
                          timeout=scaled(120))


@pytest.mark.slow
def test_run_again_says_what_it_skipped_and_all_redoes_it(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.txt", "b.txt"):
        (folder / name).write_text(f"text of {name}\n")
    data = tmp_path / "data"
    assert cli(data, "run", str(folder), "--task", TASK).returncode == 0
    (folder / "c.txt").write_text("new\n")
    second = cli(data, "run", str(folder), "--task", TASK)
    assert second.returncode == 0, second.stderr
    lines = second.stdout.splitlines()
    assert lines[0].startswith("job 2 done: 1 done, 0 failed, 0 cancelled of 1 in")
    assert lines[1] == "2 unchanged file(s) skipped (done in job 1; --all to redo them)"
    assert (data / "outputs" / "job-1" / "c.txt.txt").read_text() == "new\n", "the outputs stay together"

    size = sum(p.stat().st_size for p in folder.iterdir())
    nothing = cli(data, "run", str(folder), "--task", TASK, "--json")
    assert nothing.returncode == 0, nothing.stderr
    assert json.loads(nothing.stdout) == {"job": None, "status": "unchanged", "total": 0,
                                          "skipped": {"files": 3, "bytes": size, "jobs": [2, 1]},
                                          "output": str(data / "outputs" / "job-1")}
    text = cli(data, "submit", str(folder), "--task", TASK)
    assert text.returncode == 0 and text.stdout == (
        "nothing to do: 3 unchanged file(s) skipped (done in jobs 2, 1; --all to redo them)\n")

    everything = cli(data, "run", str(folder), "--task", TASK, "--all", "--json")
    assert everything.returncode == 0, everything.stderr
    summary = json.loads(everything.stdout)
    assert (summary["job"], summary["done"], summary["skipped"]) == (3, 3, None)
    assert summary["output"] == str(data / "outputs" / "job-3")
