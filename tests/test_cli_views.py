"""What `jobs` and `show` print: times, options, the plan as lines, jobs left without a desk, names that hold a
newline. The jobs are real (submitted, then moved through the store's own transitions in this process)."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from batchdesk.cli import main
from batchdesk.desk.info import DeskLock
from batchdesk.jobs.submit import JobRequest, submit_folder
from data.store import close_store, open_store
from job_states import run_through, start

LABELLED = re.compile(r"^ *[a-z][a-z -]*: |^FAILED ")  # "label: value" or a failed item


@pytest.fixture
def cli(settings):
    """Invoke `batchdesk --data-dir ... ARGS`; returns the result (the store stays open for the test)."""
    open_store(settings.store_ref)

    def invoke(*args: str):
        result = CliRunner().invoke(main, ["--data-dir", str(settings.data_dir), *args], catch_exceptions=False)
        open_store(settings.store_ref)  # the command opened its own: the test reads on
        return result

    yield invoke
    close_store()


def submit(settings, folder, names, task="checksum", **options):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text(name)
    job, _ = submit_folder(settings, JobRequest(folder, task, options))
    return job


def test_show_prints_times_options_and_the_plan_as_lines(settings, cli, tmp_path):
    job = submit(settings, tmp_path / "in", ["a.txt", "line\nbreak.txt", "\x1b[2Jclear.txt"], duplicates="no")
    run_through(job.id, failed={"line\nbreak.txt": "cannot read\nit", "\x1b[2Jclear.txt": "gone"})
    result = cli("show", str(job.id))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line for line in lines if not LABELLED.match(line)] == [], result.output
    fields = {m[1]: m[2] for line in lines if (m := re.match(r"^ *([a-z][a-z -]*): (.*)$", line))}
    for label in ("created", "started", "finished"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d.*", fields[label]), (label, result.output)
    assert fields["options"] == "duplicates=false"
    assert re.fullmatch(r"\d+ items per batch \(at most [\d,]+ MiB\), planned for 2 worker\(s\)", fields["plan"])
    assert fields["retries"] == "3 per batch (after 0.2 s, 0.4 s, 0.8 s)"
    assert fields["time limits"] == "3600 s per batch, none per item"
    assert fields["breaker"] == "pauses the job once more than 50% of at least 20 items have failed"
    assert not any("{" in line for line in lines), "the plan is not a Python dict"
    assert fields["status"] == "done" and fields["items"].startswith("3 total: 1 done, 2 failed, 0 cancelled")
    failed = [line for line in lines if line.startswith("FAILED ")]
    assert failed == ["FAILED \\x1b[2Jclear.txt: gone", "FAILED line\\nbreak.txt: cannot read\\nit"]


def test_show_json_has_times_options_and_the_failed_items(settings, cli, tmp_path):
    job = submit(settings, tmp_path / "in", ["a.txt", "b.txt"])
    run_through(job.id, failed={"b.txt": "bad"})
    data = json.loads(cli("show", str(job.id), "--json").output)
    assert data["options"] == {"duplicates": True}
    assert data["created_at"] <= data["started_at"] <= data["finished_at"]
    assert data["failed_items"] == [{"path": "b.txt", "error": "bad"}]
    assert data["without_desk"] is False


def test_jobs_shows_age_cancelled_and_jobs_left_without_a_desk(settings, cli, tmp_path):
    done = submit(settings, tmp_path / "one\nfolder", ["a.txt"])
    run_through(done.id)
    running = submit(settings, tmp_path / "two", ["a.txt", "b.txt"])
    start(running.id)
    queued = submit(settings, tmp_path / "three", ["a.txt"])
    result = cli("jobs")
    header, *rows = result.output.splitlines()
    assert re.search(r"STATUS .* CANCELLED .* AGE +NAME$", header), header
    assert len(rows) == 3 + 1, result.output  # three jobs and the line that says what "no desk" means
    by_id = {int(row.split()[0]): row for row in rows[:3]}
    assert "running (no desk)" in by_id[running.id] and "queued (no desk)" in by_id[queued.id]
    assert re.search(r" done +checksum +1 +0 +0 +1 +\d+s  one\\nfolder$", by_id[done.id]), by_id[done.id]
    assert "batchdesk resume" in rows[3]
    listed = {row["job"]: row for row in json.loads(cli("jobs", "--json").output)}
    assert [listed[j.id]["without_desk"] for j in (done, running, queued)] == [False, True, True]
    assert listed[done.id]["created_at"] <= listed[done.id]["finished_at"]

    lock = DeskLock(settings.data_dir, settings.store_ref)
    lock.take()  # a desk holds the data dir now (as `serve` would)
    try:
        result = cli("jobs")
        assert "no desk" not in result.output and len(result.output.splitlines()) == 4
        assert not any(row["without_desk"] for row in json.loads(cli("jobs", "--json").output))
        assert "status: running\n" in cli("show", str(running.id)).output
    finally:
        lock.release()
    shown = cli("show", str(running.id)).output
    assert "status: running (no desk: nothing runs it until a desk starts" in shown
